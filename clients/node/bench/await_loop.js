#!/usr/bin/env node
// Grants per second of the seed's worker loop through the Node client,
// `while (!tank.killFlag.isSet()) await tank.awaitFuel();`, in N worker
// processes on one monitor-only throttle (every await is answered at once,
// so the loop measures the client, the call path and the server). A
// benchmark, not a test: it asserts nothing.
//
//   node clients/node/bench/await_loop.js --server PATH [--processes N]
//       [--seconds S] [--client DIR]
//
// Starts PATH on 127.0.0.1:0, creates the throttle 'bench' (monitor-only),
// starts N workers that wait on it, starts it once all wait, stops it after
// S seconds (default 5) and prints the server's total and runtime and the
// grants per second. --client DIR is the client the workers require
// (default: this one), e.g. an older checkout of clients/node to compare
// with.
'use strict';

const childProcess = require('node:child_process');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { parseArgs } = require('node:util');

const sleep = (seconds) => new Promise((r) => setTimeout(r, seconds * 1000));

async function worker({ address, client }) {
  const { Throttle } = require(client);
  const tank = new Throttle(address, 'bench');
  let grants = 0;
  process.stdout.write('ready\n');
  while (!tank.killFlag.isSet()) {
    if ((await tank.awaitFuel()).fuel) grants += 1;
  }
  tank.close();
  process.stdout.write(`grants ${grants}\n`);
}

// Resolves the port PATH listens on once it has written its port file.
async function startServer(binary, dir) {
  const portFile = path.join(dir, 'port');
  const log = fs.openSync(path.join(dir, 'server.log'), 'a');
  const server = childProcess.spawn(
    binary,
    ['--listen=127.0.0.1:0', `--port_file=${portFile}`],
    { stdio: ['ignore', log, log] },
  );
  fs.closeSync(log);
  for (let i = 0; i < 600; i++) {
    if (server.exitCode !== null) break;
    const port = fs.existsSync(portFile) ? parseInt(fs.readFileSync(portFile, 'utf8'), 10) : 0;
    if (port > 0) return { server, address: `127.0.0.1:${port}` };
    await sleep(0.05);
  }
  server.kill('SIGKILL');
  throw new Error(`${binary} did not start: ${fs.readFileSync(path.join(dir, 'server.log'))}`);
}

async function main() {
  const { values: args } = parseArgs({
    options: {
      server: { type: 'string' },
      processes: { type: 'string', default: '1' },
      seconds: { type: 'string', default: '5' },
      client: { type: 'string', default: path.join(__dirname, '..') },
      worker: { type: 'boolean', default: false },
      address: { type: 'string' },
    },
  });
  const client = path.resolve(args.client);
  if (args.worker) return worker({ address: args.address, client });
  if (!args.server) throw new Error('usage: await_loop.js --server PATH [--processes N]');
  const { Throttle } = require(client);
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'throttle_bench.'));
  const { server, address } = await startServer(args.server, dir);
  const workers = [];
  try {
    const controller = new Throttle(address, 'bench');
    await controller.create(1, 1, { mode: 'monitor-only' });
    const n = Number(args.processes);
    for (let i = 0; i < n; i++) {
      const child = childProcess.spawn(
        process.execPath,
        [__filename, '--worker', `--address=${address}`, `--client=${client}`],
        { stdio: ['ignore', 'pipe', 'inherit'] },
      );
      child.stdout.setEncoding('utf8');
      child.output = '';
      child.stdout.on('data', (s) => (child.output += s));
      child.done = new Promise((r) => child.on('close', r));
      workers.push(child);
    }
    while ((await controller.info()).waitingStreams < n) await sleep(0.02);
    await controller.start();
    await sleep(Number(args.seconds));
    const [runtime, total] = await controller.stop();
    await Promise.all(workers.map((w) => w.done));
    const perWorker = workers.map((w) => Number(/grants (\d+)/.exec(w.output)?.[1]));
    controller.close();
    console.log(
      `processes ${n} runtime ${runtime.toFixed(3)} s total ${total} ` +
        `grants/s ${Math.round(total / runtime)} per worker ${perWorker.join(',')}`,
    );
  } finally {
    for (const w of workers) if (w.exitCode === null) w.kill('SIGKILL');
    server.kill('SIGTERM');
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

main().then(
  () => process.exit(0),
  (error) => {
    console.error(error);
    process.exit(1);
  },
);
