// Helpers of the Node client's tests: the real throttle_server binary on
// 127.0.0.1:0 and worker processes, all cleaned up by the test.
//
// Environment (set by clients/node/run_tests.sh):
//   THROTTLE_SERVER   path of throttle_server (required)
//   THROTTLE_ETCD     path of etcd (failover; default: etcd on PATH, else
//                     /usr/bin/etcd)
//   THROTTLE_MAKE_CERTS  path of tests/support/make_certs.sh (TLS; default:
//                     found from this directory)
'use strict';

const childProcess = require('node:child_process');
const crypto = require('node:crypto');
const fs = require('node:fs');
const http = require('node:http');
const net = require('node:net');
const os = require('node:os');
const path = require('node:path');

const SERVER = process.env.THROTTLE_SERVER || '';
const MAKE_CERTS =
  process.env.THROTTLE_MAKE_CERTS ||
  path.join(__dirname, '..', '..', '..', 'tests', 'support', 'make_certs.sh');
// Deadline of every wait on a condition: generous, for a loaded 2-core box.
const GENEROUS = 60;

const sleep = (seconds) => new Promise((r) => setTimeout(r, seconds * 1000));

// Polls `condition` (sync or async) until true; false after `timeout` s.
async function waitFor(condition, timeout = GENEROUS, interval = 0.02) {
  const deadline = Date.now() + timeout * 1000;
  while (!(await condition())) {
    if (Date.now() >= deadline) return false;
    await sleep(interval);
  }
  return true;
}

// Waits until n AwaitFuel streams wait on the throttle.
function awaitWaiting(throttle, n, timeout = GENEROUS) {
  return waitFor(async () => (await throttle.info()).waitingStreams >= n, timeout);
}

// Resolves the exit code of `child` (null if `timeout` s pass first).
function exitOf(child, timeout = GENEROUS) {
  if (child.exitCode !== null) return Promise.resolve(child.exitCode);
  return new Promise((resolve) => {
    const timer = setTimeout(() => resolve(null), timeout * 1000);
    child.once('exit', (code, signal) => {
      clearTimeout(timer);
      resolve(code === null ? signal : code);
    });
  });
}

// throttle_server on 127.0.0.1 (port 0 picks a free one); its output goes
// to a log file in its temporary directory. stop() sends SIGTERM and waits
// (SIGKILL after 30 s); close() also removes the directory.
class Server {
  constructor(flags = [], port = 0) {
    if (!SERVER) throw new Error('THROTTLE_SERVER is not set');
    this.flags = flags;
    this.port = port;
    this.dir = fs.mkdtempSync(path.join(os.tmpdir(), 'throttle_nodetest.'));
    this.logPath = path.join(this.dir, 'server.log');
    this.process = null;
  }

  get address() {
    return `127.0.0.1:${this.port}`;
  }

  async start() {
    const portFile = path.join(this.dir, `port.${process.hrtime.bigint()}`);
    const log = fs.openSync(this.logPath, 'a');
    this.process = childProcess.spawn(
      SERVER,
      [`--listen=127.0.0.1:${this.port}`, `--port_file=${portFile}`, ...this.flags],
      { stdio: ['ignore', log, log] },
    );
    fs.closeSync(log);
    const up = await waitFor(() => {
      if (this.process.exitCode !== null) return true;
      try {
        this.port = parseInt(fs.readFileSync(portFile, 'utf8'), 10) || 0;
      } catch {
        return false;
      }
      return this.port > 0;
    });
    if (!up || this.process.exitCode !== null) {
      await this.stop();
      throw new Error(`throttle_server did not start:\n${this.log()}`);
    }
    return this;
  }

  // SIGTERM and wait; resolves the exit code.
  async stop() {
    const child = this.process;
    if (child === null) return null;
    this.process = null;
    if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGTERM');
      let code = await exitOf(child, 30);
      if (code === null) {
        child.kill('SIGKILL');
        code = await exitOf(child);
      }
      return code;
    }
    return child.exitCode;
  }

  log() {
    try {
      return fs.readFileSync(this.logPath, 'utf8');
    } catch {
      return '';
    }
  }

  async close() {
    await this.stop();
    fs.rmSync(this.dir, { recursive: true, force: true });
  }
}

// A worker process that prints "ready", "fuel" per grant and "stopped"
// (examples/worker.js, tests/test_worker); its stdout is collected.
class WorkerProcess {
  constructor(argv) {
    this.output = '';
    this.child = childProcess.spawn(argv[0], argv.slice(1), {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    this.child.stdout.setEncoding('utf8');
    this.child.stdout.on('data', (s) => (this.output += s));
    this.child.stderr.setEncoding('utf8');
    this.child.stderr.on('data', (s) => (this.output += s));
    this.closed = new Promise((r) => this.child.on('close', r));
  }

  lines() {
    return this.output.split('\n').filter((l) => l !== '');
  }

  grants() {
    return this.lines().filter((l) => l === 'fuel').length;
  }

  // Resolves the exit code once the process ended and its output was read.
  async wait(timeout = GENEROUS) {
    const code = await exitOf(this.child, timeout);
    if (code !== null) await this.closed;
    return code;
  }

  kill() {
    if (this.child.exitCode === null && this.child.signalCode === null) {
      this.child.kill('SIGKILL');
    }
  }
}

// An in-process Throttle service on 127.0.0.1:0 whose AwaitFuel answers
// UNAVAILABLE ("shutting down") at once, as a server going down does, so
// that awaitFuel keeps calling again. Records each call's wait limit in
// seconds (null when unset) in .waitLimits; onCall(n), if given, runs at the
// start of the n-th call (1, 2, ...). Other methods: UNIMPLEMENTED.
// Resolves { address, waitLimits, close() }.
async function unavailableServer(onCall) {
  const grpc = require('@grpc/grpc-js');
  const { proto } = require('..');
  const waitLimits = [];
  const server = new grpc.Server();
  server.addService(proto.Throttle.service, {
    AwaitFuel(call) {
      const limit = call.request.wait_limit;
      waitLimits.push(limit ? Number(limit.seconds) + limit.nanos / 1e9 : null);
      if (onCall) onCall(waitLimits.length);
      call.emit('error', { code: grpc.status.UNAVAILABLE, details: 'shutting down' });
    },
  });
  const port = await new Promise((resolve, reject) => {
    server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (error, p) =>
      error ? reject(error) : resolve(p),
    );
  });
  return {
    address: `127.0.0.1:${port}`,
    waitLimits,
    close: () => server.forceShutdown(),
  };
}

// Starts one server for the enclosing describe() (before/after hooks) and
// returns { server, throttle(name, options) }: throttles made with it are
// closed before the server is.
function serverFixture() {
  const { before, after } = require('node:test');
  const { Throttle } = require('..');
  const fixture = { server: null, handles: [] };
  fixture.throttle = (name, options) => {
    const t = new Throttle(fixture.server.address, name, options);
    fixture.handles.push(t);
    return t;
  };
  before(async () => {
    fixture.server = await new Server().start();
  });
  after(async () => {
    for (const t of fixture.handles) t.close();
    await fixture.server.close();
  });
  return fixture;
}

// Resolves n different TCP ports of 127.0.0.1 that are free now (held
// together while picked, so that they differ).
async function freePorts(n) {
  const servers = [];
  try {
    for (let i = 0; i < n; i += 1) {
      const server = net.createServer();
      servers.push(server);
      await new Promise((resolve, reject) => {
        server.once('error', reject);
        server.listen(0, '127.0.0.1', resolve);
      });
    }
    return servers.map((s) => s.address().port);
  } finally {
    await Promise.all(servers.map((s) => new Promise((r) => s.close(() => r()))));
  }
}

// The etcd binary: $THROTTLE_ETCD, else etcd on PATH, else /usr/bin/etcd;
// '' if there is none (as tests/support/etcd_process.cc).
function findEtcd() {
  const executable = (file) => {
    try {
      fs.accessSync(file, fs.constants.X_OK);
      return fs.statSync(file).isFile();
    } catch {
      return false;
    }
  };
  if (process.env.THROTTLE_ETCD) return process.env.THROTTLE_ETCD;
  const dirs = (process.env.PATH || '').split(':').filter((d) => d !== '');
  return [...dirs.map((d) => path.join(d, 'etcd')), '/usr/bin/etcd'].find(executable) || '';
}

// Resolves whether the etcd at `endpoint` says it is healthy.
function etcdHealthy(endpoint) {
  return new Promise((resolve) => {
    const request = http.get(`http://${endpoint}/health`, { timeout: 1000 }, (response) => {
      let body = '';
      response.setEncoding('utf8');
      response.on('data', (s) => (body += s));
      response.on('end', () => resolve(body.includes('"true"')));
    });
    request.on('timeout', () => request.destroy());
    request.on('error', () => resolve(false));
  });
}

// A single etcd member on free ports of 127.0.0.1, with the fast raft
// timings of tests/support/etcd_process.cc (--election-timeout=500
// --heartbeat-interval=50: a 1 s lease is granted as asked and its expiry
// seen within about 0.5 s). Its data and log are in a temporary directory.
// start() waits (up to GENEROUS) until /health answers true; close() stops
// it (SIGTERM, SIGKILL after 10 s) and removes the directory.
class Etcd {
  constructor() {
    this.binary = findEtcd();
    if (!this.binary) {
      throw new Error(
        'no etcd on PATH or at /usr/bin/etcd: install etcd-server (scripts/setup.sh does)',
      );
    }
    this.dir = fs.mkdtempSync(path.join(os.tmpdir(), 'throttle_etcd.'));
    this.logPath = path.join(this.dir, 'etcd.log');
    this.clientPort = 0;
    this.process = null;
  }

  get endpoint() {
    return `127.0.0.1:${this.clientPort}`;
  }

  async start() {
    for (let attempt = 0; attempt < 3; attempt += 1) {
      // Fresh ports if another process took ours.
      const [clientPort, peerPort] = await freePorts(2);
      this.clientPort = clientPort;
      const client = `http://127.0.0.1:${clientPort}`;
      const peer = `http://127.0.0.1:${peerPort}`;
      this.process = childProcess.spawn(
        this.binary,
        [
          '--name=s1',
          `--data-dir=${path.join(this.dir, 'data')}`,
          `--listen-client-urls=${client}`,
          `--advertise-client-urls=${client}`,
          `--listen-peer-urls=${peer}`,
          `--initial-advertise-peer-urls=${peer}`,
          `--initial-cluster=s1=${peer}`,
          '--initial-cluster-state=new',
          '--election-timeout=500',
          '--heartbeat-interval=50',
          '--logger=zap',
          `--log-outputs=${this.logPath}`,
        ],
        { stdio: 'ignore' },
      );
      const child = this.process;
      const up = await waitFor(
        async () => child.exitCode !== null || (await etcdHealthy(this.endpoint)),
      );
      if (up && child.exitCode === null) return this;
      await this.stop();
    }
    throw new Error(`etcd did not become healthy:\n${this.log().slice(-4000)}`);
  }

  async stop() {
    const child = this.process;
    if (child === null) return;
    this.process = null;
    if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGTERM');
      if ((await exitOf(child, 10)) === null) {
        child.kill('SIGKILL');
        await exitOf(child);
      }
    }
  }

  log() {
    try {
      return fs.readFileSync(this.logPath, 'utf8');
    } catch {
      return '';
    }
  }

  async close() {
    await this.stop();
    fs.rmSync(this.dir, { recursive: true, force: true });
  }
}

// A high-available throttle_server (--etcd_endpoints) on a fixed port of
// 127.0.0.1: it leads or stands by with that port closed, so it cannot pick
// port 0. start() resolves once the server campaigns (its log says
// "campaigning"); leading() tells whether it has led since, from its
// --port_file, which a server writes each time it starts leading. start()
// again after stop() or kill() restarts it on the same port. kill() is
// SIGKILL (a crash: the lease stays until its TTL passes).
class HaServer extends Server {
  constructor(etcd, port, cluster, { leaseTtl = '1s', flags = [] } = {}) {
    super(
      [
        `--etcd_endpoints=${etcd.endpoint}`,
        `--cluster=${cluster}`,
        `--lease_ttl=${leaseTtl}`,
        ...flags,
      ],
      port,
    );
    this.portFile = null;
  }

  async start() {
    if (this.process !== null) throw new Error('HaServer.start: already running');
    this.portFile = path.join(this.dir, `port.${process.hrtime.bigint()}`);
    const logFrom = this.log().length;
    const log = fs.openSync(this.logPath, 'a');
    const child = childProcess.spawn(
      SERVER,
      [`--listen=${this.address}`, `--port_file=${this.portFile}`, ...this.flags],
      { stdio: ['ignore', log, log] },
    );
    this.process = child;
    fs.closeSync(log);
    const campaigning = await waitFor(
      () => child.exitCode !== null || this.log().slice(logFrom).includes('event=campaigning'),
    );
    if (!campaigning || child.exitCode !== null) {
      await this.stop();
      throw new Error(`throttle_server did not campaign:\n${this.log().slice(logFrom)}`);
    }
    return this;
  }

  // Whether this run of the server has led (it may have lost the lead since).
  leading() {
    return this.portFile !== null && fs.existsSync(this.portFile);
  }

  // SIGKILL and wait.
  async kill() {
    const child = this.process;
    if (child === null) return;
    this.process = null;
    if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGKILL');
      await exitOf(child);
    }
  }
}

// The gRPC target that names every server: "ipv4:HOST:PORT,HOST:PORT"
// (gRPC's pick_first takes the first address that accepts).
function ipv4Target(...servers) {
  return `ipv4:${servers.map((s) => s.address).join(',')}`;
}

// A test PKI made by tests/support/make_certs.sh in a temporary directory
// (ca.pem; server.pem/key for 127.0.0.1 and localhost; worker, controller,
// admin, tenant-b .pem/.key with the URI SAN spiffe://throttle.test/NAME;
// rogue-ca.pem, rogue.pem/key from another CA), and the policy and token
// files of a test written next to them. close() removes it all.
class Pki {
  constructor() {
    this.dir = fs.mkdtempSync(path.join(os.tmpdir(), 'throttle_pki.'));
    const made = childProcess.spawnSync('bash', [MAKE_CERTS, this.dir], {
      encoding: 'utf8',
      timeout: GENEROUS * 1000,
    });
    if (made.status !== 0) {
      this.close();
      throw new Error(
        `${MAKE_CERTS} failed (${made.error || made.signal || made.status}):\n` +
          `${made.stdout}${made.stderr}`,
      );
    }
  }

  // The path of a file of the PKI: path('ca.pem').
  path(name) {
    return path.join(this.dir, name);
  }

  // Writes a file (a policy, a token file) here; returns its path.
  write(name, text) {
    fs.writeFileSync(this.path(name), text);
    return this.path(name);
  }

  // A token file (--token_file) for {NAME: TOKEN}; returns its path.
  tokens(tokens) {
    const hash = (t) => crypto.createHash('sha256').update(t).digest('hex');
    return this.write(
      'tokens.txt',
      Object.entries(tokens)
        .map(([name, token]) => `${name} sha256:${hash(token)}\n`)
        .join(''),
    );
  }

  // throttle_server's TLS flags: its certificate, and with clientCa client
  // certificates required (mTLS).
  serverFlags({ clientCa = true } = {}) {
    const flags = [`--tls_cert=${this.path('server.pem')}`, `--tls_key=${this.path('server.key')}`];
    if (clientCa) flags.push(`--tls_client_ca=${this.path('ca.pem')}`);
    return flags;
  }

  // A Throttle `security` option that trusts ca.pem, with the client
  // certificate `client` ('worker', ...) if given; `extra` is merged last.
  security(client, extra = {}) {
    const security = { caFile: this.path('ca.pem') };
    if (client) {
      security.certFile = this.path(`${client}.pem`);
      security.keyFile = this.path(`${client}.key`);
    }
    return { ...security, ...extra };
  }

  close() {
    fs.rmSync(this.dir, { recursive: true, force: true });
  }
}

module.exports = {
  SERVER,
  MAKE_CERTS,
  Pki,
  GENEROUS,
  sleep,
  waitFor,
  awaitWaiting,
  Server,
  WorkerProcess,
  serverFixture,
  unavailableServer,
  freePorts,
  findEtcd,
  Etcd,
  HaServer,
  ipv4Target,
};
