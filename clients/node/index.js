// throttle-client: Node.js client of the shared throttle service.
//
// A thin promise-based layer over @grpc/grpc-js with the API of the Python
// library mp_throttle. The contract, proto/throttle/v1/throttle.proto, is
// loaded at run time (by @grpc/proto-loader) from the directory named by
// $THROTTLE_PROTO_DIR, else from the copy an `npm pack` tarball carries,
// else from ../../proto.
//
// The seed's tutorial in one process, runnable as written against a server
// at $THROTTLE_ADDRESS (default 127.0.0.1:50051); from outside this
// directory, require the path of clients/node instead of 'throttle-client':
//
//   const { Throttle } = require('throttle-client');
//
//   const address = process.env.THROTTLE_ADDRESS || '127.0.0.1:50051';
//   const sleep = (seconds) => new Promise((r) => setTimeout(r, seconds * 1000));
//
//   // A worker: normally one per process, each with its own Throttle.
//   async function worker(name) {
//     const tank = new Throttle(address, 'crawl');
//     let grants = 0;
//     while (!tank.killFlag.isSet()) {
//       const outcome = await tank.awaitFuel(); // or awaitFuel(timeoutSeconds)
//       if (outcome.fuel) grants += 1;          // do one piece of work here
//     }
//     tank.close(); // every later call rejects with CANCELLED
//     console.log(`${name}: ${grants} grants, kill flag set`);
//   }
//
//   async function main() {
//     const throttle = new Throttle(address, 'crawl');
//     await throttle.create(4, 1, { replace: true }); // the seed's Throttle(4, 1)
//     const workers = [worker('Worker-1'), worker('Worker-2')];
//     await throttle.start();
//     await sleep(2);
//     const [runtime, total, between, perSecond] = await throttle.stop();
//     await Promise.all(workers); // each saw FuelOutcome.STOPPED
//     console.log(`Runtime: ${runtime}\nTotal: ${total}`);
//     console.log(`Time between processes: ${between}\nProcesses per second: ${perSecond}`);
//     throttle.close();
//   }
//
//   main().catch((error) => {
//     console.error(error.message);
//     process.exit(1);
//   });
//
// Errors reject with ThrottleError, whose .code is the numeric gRPC status
// code and .codeName its name ("NOT_FOUND", ...). Intervals (awaitFuel's
// timeout, what is left of it for each call and retry) are measured on
// performance.now(), a monotonic clock, never on Date.now().
'use strict';

const fs = require('node:fs');
const path = require('node:path');
const { performance } = require('node:perf_hooks');
const grpc = require('@grpc/grpc-js');
const protoLoader = require('@grpc/proto-loader');
const { AcquireStream, whenEnded, DEFAULT_ASK_AHEAD } = require('./acquire');
const { LocalShare } = require('./degrade');
const { Watch } = require('./watch');

// The directory of throttle/v1/throttle.proto: $THROTTLE_PROTO_DIR, else
// the copy inside an installed package (npm pack puts it there:
// scripts/copy-proto.js), else the repository's proto/ (the source tree).
function protoDir() {
  if (process.env.THROTTLE_PROTO_DIR) return process.env.THROTTLE_PROTO_DIR;
  const packaged = path.join(__dirname, 'proto');
  if (fs.existsSync(path.join(packaged, 'throttle', 'v1', 'throttle.proto'))) return packaged;
  return path.join(__dirname, '..', '..', 'proto');
}
const PROTO_DIR = protoDir();

const packageDefinition = protoLoader.loadSync('throttle/v1/throttle.proto', {
  includeDirs: [PROTO_DIR],
  keepCase: true, // field names as in the proto: max_n, per_seconds, ...
  longs: Number, // int64 as Number (all values here fit in 2^53)
  enums: String, // enum values by name: 'MODE_SMOOTH', 'END_REASON_STOPPED'
  defaults: true, // unset fields read as their default (grants 0, ...)
});
const proto = grpc.loadPackageDefinition(packageDefinition).throttle.v1;

const MODES = {
  smooth: 'MODE_SMOOTH',
  window: 'MODE_WINDOW',
  bucket: 'MODE_BUCKET',
  unbounded: 'MODE_UNBOUNDED',
  'monitor-only': 'MODE_MONITOR_ONLY',
  monitor_only: 'MODE_MONITOR_ONLY',
};

// What a worker does while the server cannot be reached
// (ThrottleConfig.degradation; docs/clients.md, "When the server is gone").
const DEGRADATIONS = {
  wait: 'DEGRADATION_WAIT',
  fail_fast: 'DEGRADATION_FAIL_FAST',
  local_share: 'DEGRADATION_LOCAL_SHARE',
};

// The name of each numeric gRPC status code: 5 -> 'NOT_FOUND'.
const CODE_NAMES = Object.fromEntries(
  Object.entries(grpc.status).map(([name, code]) => [code, name]),
);

// A failed call. `code` is the gRPC status code (grpc.status.NOT_FOUND ...),
// `codeName` its name, `details` the server's message. The code says what
// to do next: see proto/throttle/v1/throttle.proto.
class ThrottleError extends Error {
  constructor(code, details = '') {
    const codeName = CODE_NAMES[code] || `CODE_${code}`;
    super(details ? `${codeName}: ${details}` : codeName);
    this.name = 'ThrottleError';
    this.code = code;
    this.codeName = codeName;
    this.details = details;
  }

  static fromGrpc(error) {
    return new ThrottleError(
      typeof error.code === 'number' ? error.code : grpc.status.UNKNOWN,
      error.details || error.message || '',
    );
  }
}

// What awaitFuel() resolves: one of four frozen objects, the same outcomes
// as the C++ library's FuelOutcome (kFuel, kStopped, kTimedOut, kTooLate)
// and the Python client's (FUEL, STOPPED, TIMED_OUT, TOO_LATE). Each has
// `outcome` (the name the three clients share: 'fuel', 'stopped',
// 'timed_out', 'too_late', also its toString() and toJSON()) and the
// booleans `fuel`, `stopped`, `timedOut`, `tooLate`.
// Compare with `===` or read a boolean: an outcome object is always truthy,
// so `if (await tank.awaitFuel())` no longer tells fuel from the others.
function fuelOutcome(name) {
  return Object.freeze({
    outcome: name,
    fuel: name === 'fuel',
    stopped: name === 'stopped',
    timedOut: name === 'timed_out',
    tooLate: name === 'too_late',
    toString: () => name,
    toJSON: () => name,
  });
}

const FuelOutcome = Object.freeze({
  // One grant: do one piece of work.
  FUEL: fuelOutcome('fuel'),
  // The throttle was stopped (the seed's kill_flag): killFlag is set.
  STOPPED: fuelOutcome('stopped'),
  // The timeout passed without a grant (killFlag unchanged; also when the
  // server stayed unreachable).
  TIMED_OUT: fuelOutcome('timed_out'),
  // Only with { failIfLate: true }: the server expected the next grant
  // later than the timeout allows, and the call did not wait.
  TOO_LATE: fuelOutcome('too_late'),
});

// What awaitFuelCount() resolves: the outcome (FUEL only with all the
// grants asked for) and the grants received; with TOO_LATE also
// expectedWait, the seconds the server expected the next grant to take.
const fuelResult = (outcome, grants, expectedWait) =>
  Object.freeze(expectedWait === undefined ? { outcome, grants } : { outcome, grants, expectedWait });

// The FuelOutcome of each outcome's name.
const OUTCOMES = Object.freeze({
  fuel: FuelOutcome.FUEL,
  stopped: FuelOutcome.STOPPED,
  timed_out: FuelOutcome.TIMED_OUT,
});

// The most grants one awaitFuelCount() asks for: the server's limit on a
// stream's outstanding demand (AcquireRequest.demand).
const MAX_COUNT = 1000000000;

// The ends of an AwaitFuel call that say nothing of the server being back:
// it could not be reached, went away, or did not answer in time.
const NOT_AN_ANSWER = [
  grpc.status.UNAVAILABLE,
  grpc.status.CANCELLED,
  grpc.status.DEADLINE_EXCEEDED,
];

// The error of every call after close(), and of a call close() ended.
const CLOSED = 'throttle-client Throttle is closed';

// The monotonic time in milliseconds, for intervals.
const monotonicMs = () => performance.now();

// A grpc-js deadline `seconds` from now: a wall-clock Date, as grpc-js takes
// it (it turns it back into a timeout when the call starts).
const grpcDeadline = (seconds) => new Date(Date.now() + seconds * 1000);

// Reconnection delays: `initial` seconds, doubling up to `max`, each times
// a random factor in [0.8, 1.2) (the C++ library's policy).
class Backoff {
  constructor(initial = 0.05, max = 2.0, random = Math.random) {
    this.initial = Math.max(initial, 0.001);
    this.max = Math.max(max, this.initial);
    this.base = this.initial;
    this.random = random;
  }

  nextDelay() {
    const delay = this.base * (0.8 + 0.4 * this.random());
    this.base = Math.min(this.base * 2, this.max);
    return delay;
  }

  reset() {
    this.base = this.initial;
  }
}

// The channel options of a Throttle: gRPC's reconnect backoff made the
// client's own (`initial` seconds, growing x1.6 with +-20% jitter up to
// `max`), so that after an outage a worker reconnects within about `max`
// of the server's return. grpc-js's default (1 s up to 120 s) governs how
// soon a waiting call can reach a server that came back, whatever
// awaitFuel's own backoff. `extra` options come last and may override.
// (grpc-js has no grpc.min_reconnect_backoff_ms; C-core clients set it.)
function channelOptions(initial, max, extra = {}) {
  const ms = (seconds) => Math.min(Math.max(Math.round(seconds * 1000), 1), 2 ** 31 - 1);
  const initialMs = ms(initial);
  return {
    'grpc.initial_reconnect_backoff_ms': initialMs,
    'grpc.max_reconnect_backoff_ms': Math.max(initialMs, ms(max)),
    ...extra,
  };
}

// --- TLS, mTLS and bearer tokens ---------------------------------------
//
// The `security` option of a Throttle: {caFile, certFile, keyFile, token,
// tokenFile, serverName}, the same settings as the C++ library,
// throttlectl and the Python client's ChannelSecurity.
//   caFile              PEM file of the CA that signed the server's
//                       certificate (unset: the system's roots)
//   certFile, keyFile   PEM client certificate and its private key, for a
//                       server that requires them (mTLS); both or neither
//   token               a bearer token, sent as "authorization: Bearer
//                       TOKEN" on every call
//   tokenFile           or a file whose first line (trimmed) is the token
//   serverName          the name the server's certificate must hold (a DNS
//                       name or an IP address of its subject alternative
//                       names), also the calls' :authority; unset: the
//                       host of the target's first address (grpc-js).
//                       Set it for a multi-address target
//                       ('ipv4:10.0.0.1:50051,10.0.0.2:50051'): grpc-js
//                       checks every server's certificate against the first
//                       address, so the second server's certificate fails
//                       unless it holds that address too. The name every
//                       server of the cluster has in its certificate; one
//                       name, without a port. TLS only.
// Nothing set: plaintext; any of caFile, certFile, keyFile: TLS. A token
// and a serverName need TLS (gRPC refuses call credentials on a plaintext
// channel). The files are read when the Throttle is made (it opens its
// channel then).

// The environment variable of each setting, read when a Throttle is given
// neither `security` nor `credentials` (an explicit `security` wins whole:
// the environment is then not read, so `security: {}` is plaintext).
const SECURITY_ENV = Object.freeze({
  caFile: 'THROTTLE_TLS_CA',
  certFile: 'THROTTLE_TLS_CERT',
  keyFile: 'THROTTLE_TLS_KEY',
  token: 'THROTTLE_TOKEN',
  tokenFile: 'THROTTLE_TOKEN_FILE',
  serverName: 'THROTTLE_TLS_SERVER_NAME',
});

// The `security` settings `given`, completed by the environment variables
// (SECURITY_ENV; unset or empty: not set), as the C++ library's
// ChannelSecurityFromEnvironment(flags) and throttlectl do: a setting given
// wins over its variable, and the pairs are taken whole (certFile or
// keyFile keeps both THROTTLE_TLS_CERT and THROTTLE_TLS_KEY out, token or
// tokenFile both THROTTLE_TOKEN and THROTTLE_TOKEN_FILE), so that a setting
// never pairs with half of a pair from the environment. `env` defaults to
// process.env. new Throttle(address, name, {security:
// securityFromEnv({caFile: 'ca.pem'})}).
function securityFromEnv(given = {}, env = process.env) {
  const security = {};
  const groups = [['caFile'], ['certFile', 'keyFile'], ['token', 'tokenFile'], ['serverName']];
  for (const group of groups) {
    const fromEnv = !group.some((key) => given[key]);
    for (const key of group) {
      const value = fromEnv ? env[SECURITY_ENV[key]] : given[key];
      if (value) security[key] = value;
    }
  }
  for (const key of Object.keys(given)) {
    if (!(key in SECURITY_ENV)) security[key] = given[key]; // refused later, by name
  }
  return security;
}

const invalid = (message) => new ThrottleError(grpc.status.INVALID_ARGUMENT, message);

// Reads the file of the setting `name`; ThrottleError INVALID_ARGUMENT
// naming the setting and the file if it cannot be read, or (`pem`) holds
// no PEM block.
function readSetting(name, file, pem = true) {
  let data;
  try {
    data = fs.readFileSync(file);
  } catch (error) {
    throw invalid(`${name}: cannot read ${file}: ${error.code || error.message}`);
  }
  if (pem && !data.includes('-----BEGIN ')) throw invalid(`${name}: ${file} holds no PEM block`);
  return data;
}

// A header value grpc-js can send: printable ASCII, no surrounding spaces.
function checkToken(name, token) {
  if (!/^[\x21-\x7e]([\x20-\x7e]*[\x21-\x7e])?$/.test(token)) {
    throw invalid(
      `${name}: a bearer token is printable ASCII without surrounding spaces or line breaks`,
    );
  }
}

// One name: grpc-js would take anything, and a list or a stray space would
// only show at the handshake.
function checkServerName(name, serverName) {
  if (!/^[\x21-\x7e]+$/.test(serverName)) {
    throw invalid(
      `${name}: ${JSON.stringify(serverName)}: the name holds a space, a control ` +
        'or a non-ASCII character',
    );
  }
  if (serverName.includes(',')) {
    throw invalid(
      `${name}: ${JSON.stringify(serverName)}: one name, not a list: the name every ` +
        'server of the target has in its certificate',
    );
  }
}

// The grpc-js channel options of `security`: the certificate's name
// (grpc.ssl_target_name_override) and the calls' :authority
// (grpc.default_authority, as C-core makes it of the name) when serverName
// is set. Checked by securityCredentials.
function securityChannelOptions(security) {
  const name = security && security.serverName;
  if (name === undefined || name === null || name === '') return {};
  return {
    'grpc.ssl_target_name_override': String(name),
    'grpc.default_authority': String(name),
  };
}

// The grpc-js ChannelCredentials of `security` (see above). `names` are the
// settings' names for the messages: the option's keys, or the environment
// variables. Throws ThrottleError INVALID_ARGUMENT naming them for an
// unknown key, settings that cannot work (a certificate without its key, a
// token and a token file, a token or a serverName without TLS, a
// serverName that is not one name), a file that cannot be read or an empty
// token file.
function securityCredentials(security, names) {
  if (security === null || typeof security !== 'object') {
    throw invalid(
      'security: an object {caFile, certFile, keyFile, token, tokenFile, serverName}',
    );
  }
  const unknown = Object.keys(security).filter((k) => !(k in SECURITY_ENV));
  if (unknown.length > 0) {
    throw invalid(
      `security: unknown setting ${unknown.join(', ')}; ` +
        `one of ${Object.keys(SECURITY_ENV).join(', ')}`,
    );
  }
  const set = (key) =>
    security[key] !== undefined && security[key] !== null && security[key] !== '';
  if (set('certFile') !== set('keyFile')) {
    throw invalid(
      `${names.certFile} and ${names.keyFile} go together ` +
        '(a client certificate and its private key)',
    );
  }
  if (set('token') && set('tokenFile')) {
    throw invalid(`${names.token} and ${names.tokenFile}: give one of them, not both`);
  }
  const tls = set('caFile') || set('certFile');
  if ((set('token') || set('tokenFile')) && !tls) {
    throw invalid(
      `${set('token') ? names.token : names.tokenFile} needs TLS: set ${names.caFile} ` +
        `(or ${names.certFile} and ${names.keyFile}); ` +
        'gRPC refuses call credentials on a plaintext channel',
    );
  }
  if (set('serverName')) {
    checkServerName(names.serverName, String(security.serverName));
    if (!tls) {
      throw invalid(
        `${names.serverName} needs TLS: it is the name the server's certificate is ` +
          `checked against, and this channel would be plaintext; set ${names.caFile} ` +
          `(or ${names.certFile} and ${names.keyFile})`,
      );
    }
  }
  if (set('token')) checkToken(names.token, String(security.token));
  if (!tls) return grpc.credentials.createInsecure();
  const ssl = grpc.credentials.createSsl(
    set('caFile') ? readSetting(names.caFile, security.caFile) : null,
    set('keyFile') ? readSetting(names.keyFile, security.keyFile) : null,
    set('certFile') ? readSetting(names.certFile, security.certFile) : null,
  );
  let token = set('token') ? String(security.token) : null;
  if (set('tokenFile')) {
    const text = readSetting(names.tokenFile, security.tokenFile, false).toString('utf8');
    token = text.split(/\r?\n/)[0].trim();
    if (token === '') {
      throw invalid(
        `${names.tokenFile}: ${security.tokenFile} is empty (the token is its first line)`,
      );
    }
    checkToken(`${names.tokenFile} ${security.tokenFile}`, token);
  }
  if (token === null) return ssl;
  const bearer = grpc.credentials.createFromMetadataGenerator((_params, callback) => {
    const metadata = new grpc.Metadata();
    metadata.set('authorization', `Bearer ${token}`);
    callback(null, metadata);
  });
  return grpc.credentials.combineChannelCredentials(ssl, bearer);
}

// The option names of the settings, for messages: security.caFile, ...
const SECURITY_OPTION_NAMES = Object.freeze(
  Object.fromEntries(Object.keys(SECURITY_ENV).map((k) => [k, `security.${k}`])),
);

// The seed's kill_flag. In a worker, set by awaitFuel()/hasFuel() when the
// server says the throttle stopped and cleared by the next grant (it was
// restarted); in the controller set by stop() and cleared by start().
class KillFlag {
  constructor() {
    this.flag = false;
  }
  isSet() {
    return this.flag;
  }
  set() {
    this.flag = true;
  }
  clear() {
    this.flag = false;
  }
}

function toDuration(seconds) {
  const nanos = Math.round(Math.max(seconds, 0) * 1e9);
  return { seconds: Math.floor(nanos / 1e9), nanos: nanos % 1e9 };
}

// A google.protobuf.Duration of `seconds`, negative ones too (seconds and
// nanos of one sign), for the server to judge.
function signedDuration(seconds) {
  const sign = seconds < 0 ? -1 : 1;
  const { seconds: whole, nanos } = toDuration(Math.abs(seconds));
  return { seconds: sign * whole, nanos: sign * nanos };
}

const fromDuration = (d) => Number(d.seconds) + d.nanos / 1e9;

// The ThrottleConfig of create() and configure(). catchUp must be a
// finite number of seconds (ThrottleError INVALID_ARGUMENT otherwise); its
// range is the server's to check.
function toConfig(
  maxN,
  per,
  {
    mode,
    burst = 0,
    manualEmit = false,
    catchUp,
    warmUp,
    warmUpFrom,
    starvationBound,
    adaptive,
    degradation,
    localShareFor,
  } = {},
) {
  const config = {
    max_n: maxN,
    per_seconds: per,
    mode: toMode(mode),
    burst,
    manual_emit: manualEmit,
  };
  if (catchUp !== undefined && catchUp !== null) config.catch_up = toCatchUp(catchUp);
  if (warmUp !== undefined && warmUp !== null) config.warm_up = toSeconds('warmUp', warmUp);
  if (warmUpFrom !== undefined && warmUpFrom !== null) {
    config.warm_up_from = toFraction(warmUpFrom);
  }
  if (starvationBound !== undefined && starvationBound !== null) {
    config.starvation_bound = toSeconds('starvationBound', starvationBound);
  }
  if (adaptive !== undefined && adaptive !== null) config.adaptive = toAdaptive(adaptive);
  if (degradation !== undefined && degradation !== null) {
    config.degradation = toDegradation(degradation);
  }
  if (localShareFor !== undefined && localShareFor !== null) {
    config.local_share_for = toSeconds('localShareFor', localShareFor);
  }
  return config;
}

// The Degradation of `degradation`: 'wait', 'fail_fast', 'local_share' or
// the proto's name ('DEGRADATION_FAIL_FAST', ...). ThrottleError
// INVALID_ARGUMENT naming the setting and the value otherwise.
function toDegradation(degradation) {
  if (Object.values(DEGRADATIONS).includes(degradation)) return degradation;
  const known = typeof degradation === 'string' && Object.hasOwn(DEGRADATIONS, degradation);
  if (!known) {
    throw invalid(
      `degradation: ${JSON.stringify(degradation)}: one of ${Object.keys(DEGRADATIONS).join(', ')}`,
    );
  }
  return DEGRADATIONS[degradation];
}

// The adaptive settings (an object of floorN, targetRejectionRatio,
// window (seconds), increaseN, decreaseFactor, minOutcomes; each unset or
// 0: the server's default) as an AdaptiveConfig. TypeError for what is not
// an object or an unknown setting; the ranges are the server's to check.
const ADAPTIVE_FIELDS = {
  floorN: 'floor_n',
  targetRejectionRatio: 'target_rejection_ratio',
  window: 'window',
  increaseN: 'increase_n',
  decreaseFactor: 'decrease_factor',
  minOutcomes: 'min_outcomes',
};
function toAdaptive(adaptive) {
  if (typeof adaptive !== 'object' || Array.isArray(adaptive)) {
    throw new TypeError(`adaptive: ${String(adaptive)}: an object of ${Object.keys(ADAPTIVE_FIELDS).join(', ')}`);
  }
  const out = {};
  for (const [key, value] of Object.entries(adaptive)) {
    const field = ADAPTIVE_FIELDS[key];
    if (field === undefined) {
      throw new TypeError(
        `adaptive: unknown setting ${JSON.stringify(key)}; one of ${Object.keys(ADAPTIVE_FIELDS).join(', ')}`,
      );
    }
    if (value === undefined || value === null) continue;
    out[field] = field === 'window' ? toSeconds('adaptive.window', value) : value;
  }
  return out;
}

// An AdaptiveConfig as listed (defaults filled in), or null.
function fromAdaptive(a) {
  if (!a) return null;
  return {
    floorN: a.floor_n,
    targetRejectionRatio: a.target_rejection_ratio,
    window: a.window ? fromDuration(a.window) : 0,
    increaseN: a.increase_n,
    decreaseFactor: a.decrease_factor,
    minOutcomes: a.min_outcomes,
  };
}

// catchUp as a google.protobuf.Duration: a finite number of seconds
// (ThrottleError INVALID_ARGUMENT otherwise); its range is the server's to
// check.
function toCatchUp(catchUp) {
  return toSeconds('catchUp', catchUp);
}

// `value` (the setting `name`) as a google.protobuf.Duration: a finite
// number of seconds (ThrottleError INVALID_ARGUMENT otherwise).
function toSeconds(name, value) {
  if (typeof value !== 'number' || !Number.isFinite(value)) {
    throw invalid(`${name}: ${String(value)}: a finite number of seconds`);
  }
  return signedDuration(value);
}

// warmUpFrom as sent: a number (ThrottleError INVALID_ARGUMENT otherwise);
// its range, (0, 1], is the server's to check.
function toFraction(warmUpFrom) {
  if (typeof warmUpFrom !== 'number') {
    throw invalid(`warmUpFrom: ${String(warmUpFrom)}: a number in (0, 1]`);
  }
  return warmUpFrom;
}

// The settings of update() and the ThrottleConfig fields they set.
const PARTIAL_FIELDS = {
  maxN: 'max_n',
  per: 'per_seconds',
  mode: 'mode',
  burst: 'burst',
  manualEmit: 'manual_emit',
  catchUp: 'catch_up',
  warmUp: 'warm_up',
  warmUpFrom: 'warm_up_from',
  starvationBound: 'starvation_bound',
  adaptive: 'adaptive',
  degradation: 'degradation',
  localShareFor: 'local_share_for',
};

// { config, update_mask } of the settings given (not undefined), for a
// partial ConfigureThrottle. TypeError for an unknown setting or none.
function toPartialConfig(settings) {
  const config = {};
  const paths = [];
  for (const [key, value] of Object.entries(settings || {})) {
    const field = PARTIAL_FIELDS[key];
    if (field === undefined) {
      throw new TypeError(
        `update: unknown setting ${JSON.stringify(key)}; one of ${Object.keys(PARTIAL_FIELDS).join(', ')}`,
      );
    }
    if (value === undefined) continue;
    paths.push(field);
    if (field === 'catch_up') {
      if (value === null) continue; // in the mask, unset: the default
      config.catch_up = toCatchUp(value);
    } else if (field === 'warm_up') {
      if (value === null) continue; // in the mask, unset: no warm-up
      config.warm_up = toSeconds('warmUp', value);
    } else if (field === 'warm_up_from') {
      if (value === null) continue; // in the mask, unset: 1/3
      config.warm_up_from = toFraction(value);
    } else if (field === 'starvation_bound') {
      if (value === null) continue; // in the mask, unset: none
      config.starvation_bound = toSeconds('starvationBound', value);
    } else if (field === 'adaptive') {
      if (value === null) continue; // in the mask, unset: not adaptive
      config.adaptive = toAdaptive(value);
    } else if (field === 'degradation') {
      if (value === null) continue; // in the mask, unset: wait
      config.degradation = toDegradation(value);
    } else if (field === 'local_share_for') {
      if (value === null) continue; // in the mask, unset: none
      config.local_share_for = toSeconds('localShareFor', value);
    } else {
      config[field] = field === 'mode' ? toMode(value) : value;
    }
  }
  if (paths.length === 0) {
    throw new TypeError(
      `update needs at least one of ${Object.keys(PARTIAL_FIELDS).join(', ')}`,
    );
  }
  return { config, update_mask: { paths } };
}

function toMode(mode) {
  if (mode === undefined) return 'MODE_SMOOTH';
  if (Object.values(MODES).includes(mode)) return mode;
  if (MODES[mode] === undefined) {
    throw new RangeError(`unknown mode ${JSON.stringify(mode)}`);
  }
  return MODES[mode];
}

function fromDegradation(degradation) {
  if (!degradation || degradation === 'DEGRADATION_UNSPECIFIED') return 'wait';
  return Object.keys(DEGRADATIONS).find((k) => DEGRADATIONS[k] === degradation) || degradation;
}

function fromInfo(t) {
  const c = t.config || {};
  const mode = Object.keys(MODES).find((k) => MODES[k] === c.mode);
  return {
    name: t.name,
    maxN: c.max_n,
    per: c.per_seconds,
    mode: mode || c.mode,
    burst: c.burst,
    manualEmit: c.manual_emit,
    // Seconds; null from a server that lists none (one from before
    // catch_up).
    catchUp: c.catch_up ? fromDuration(c.catch_up) : null,
    // Seconds (0: no warm-up), and the fraction a ramp starts from (the
    // server fills in 1/3 when warmUp is set).
    warmUp: c.warm_up ? fromDuration(c.warm_up) : 0,
    warmUpFrom: c.warm_up_from || 0,
    // Seconds; 0: no starvation bound (priorities).
    starvationBound: c.starvation_bound ? fromDuration(c.starvation_bound) : 0,
    // The adaptive settings (defaults filled in) or null, and the maxN in
    // effect (the adaptive ceiling's rate; maxN otherwise).
    adaptive: fromAdaptive(c.adaptive),
    currentMaxN: t.current_max_n,
    // 'wait' (also when listed unspecified), 'fail_fast' or 'local_share';
    // localShareFor in seconds, 0 without (local share only).
    degradation: fromDegradation(c.degradation),
    localShareFor: c.local_share_for ? fromDuration(c.local_share_for) : 0,
    state: String(t.state).replace(/^STATE_/, '').toLowerCase(),
    waitingStreams: t.waiting_streams,
    totalEmissions: t.total_emissions,
  };
}

// A watch's interval or window as a google.protobuf.Duration: a finite
// number of seconds (ThrottleError INVALID_ARGUMENT naming `name`
// otherwise); its range is the server's to check.
function toWatchDuration(value, name) {
  if (typeof value !== 'number' || !Number.isFinite(value)) {
    throw invalid(`${name}: ${String(value)}: a finite number of seconds`);
  }
  return signedDuration(value);
}

// The snapshot of a WatchThrottleResponse: { time (a Date, the server's
// clock), info (as info()), latest ([seconds between, per second] over the
// watch's window, as latest()), mean (as mean()), changed, message (the
// whole response, field names as in the proto) }.
function fromSnapshot(message) {
  const time = message.time || { seconds: 0, nanos: 0 };
  const latest = message.latest || {};
  const mean = message.mean || {};
  return {
    time: new Date(Number(time.seconds) * 1000 + time.nanos / 1e6),
    info: fromInfo(message.throttle || {}),
    latest: [latest.seconds_between_emissions, latest.emissions_per_second],
    mean: [mean.mean_seconds_between_emissions, mean.mean_emissions_per_second],
    changed: message.changed,
    message,
  };
}

// Sleeps `seconds`, or less if `signal` aborts.
function sleep(seconds, signal) {
  return new Promise((resolve) => {
    if (signal.aborted) {
      resolve();
      return;
    }
    const timer = setTimeout(done, seconds * 1000);
    function done() {
      clearTimeout(timer);
      signal.removeEventListener('abort', done);
      resolve();
    }
    signal.addEventListener('abort', done);
  });
}

// A handle on the throttle `name` of the server at `address` ("host:port").
//
// Options: workerId (for the server's logs, <= 128 bytes), weight (share
// relative to other waiting workers, 1..1000), priority (this worker's
// priority class, 0..9, default 0, the lowest: the server serves the
// highest class waiting first; a lower class waits while a higher one
// waits unless the throttle has a starvationBound), backoffInitial and
// backoffMax (seconds between reconnection attempts), deadlineSlack (added
// to the wait limit of an AwaitFuel call to form its deadline: awaitFuel
// with timeout 0, or against a server without Acquire), callTimeout
// (deadline of unary calls, seconds), waitForReady (false: unary calls to an
// unreachable server fail at once with UNAVAILABLE; true: they wait for it
// up to callTimeout; awaitFuel always waits), security (TLS, mTLS, a
// bearer token, the server's name for a multi-address target: {caFile,
// certFile, keyFile, token, tokenFile, serverName}, see above; unset: from
// the environment variables THROTTLE_TLS_CA, THROTTLE_TLS_CERT,
// THROTTLE_TLS_KEY, THROTTLE_TOKEN, THROTTLE_TOKEN_FILE,
// THROTTLE_TLS_SERVER_NAME, none set: plaintext; an explicit `security` wins
// whole, the environment is then not read, so `security: {}` is
// plaintext), credentials (grpc-js ChannelCredentials of your own, instead
// of security; the environment is then not read either), channelOptions
// (extra grpc-js options; the reconnect backoff is set from backoffInitial
// and backoffMax, see channelOptions()), askAhead (an integer >= 0, default
// 16: while the server says the throttle's fuel is unlimited, monitor-only,
// the handle asks ahead of its awaitFuel calls what they took in about the
// last millisecond, at most this many, and hands the grants out as they
// come, topping up when half are used: in a fast loop a grant then costs no
// round trip, while a worker slower than a grant a millisecond asks for
// nothing ahead. Grants are counted as emissions when the server sends
// them, so when the handle closes or the throttle stops up to this many may
// be counted and unused. 0: ask only for what the calls wait for, exact
// counts. Limited modes never ask ahead. As TankOptions::ask_ahead in C++).
//
// Throws ThrottleError INVALID_ARGUMENT naming the setting for security
// settings that cannot work (a token without TLS, a certificate without
// its key, a file that cannot be read, ...) or both security and
// credentials. The handle keeps no token in its options: this.options.
// security holds the settings without `token`, and toJSON() writes those,
// so a literal token never reaches another process's argv or a log; give
// a process made by fromJSON() its token by tokenFile (or, when its
// parent had no explicit security, by THROTTLE_TOKEN).
class Throttle {
  constructor(address, name, options = {}) {
    const { security, credentials } = options;
    if (security !== undefined && credentials != null) {
      throw invalid('security and credentials: give one of them, not both');
    }
    let channelCredentials = credentials;
    let securityOptions = {}; // serverName's channel options
    if (channelCredentials == null) {
      const effective = security === undefined ? securityFromEnv() : security;
      channelCredentials = securityCredentials(
        effective,
        security === undefined ? SECURITY_ENV : SECURITY_OPTION_NAMES,
      );
      securityOptions = securityChannelOptions(effective);
    }
    this.address = address;
    this.name = name;
    this.options = {
      workerId: '',
      weight: 1,
      priority: 0,
      backoffInitial: 0.05,
      backoffMax: 2.0,
      deadlineSlack: 0.2,
      callTimeout: 10,
      waitForReady: false,
      askAhead: DEFAULT_ASK_AHEAD,
      ...options,
    };
    const { askAhead } = this.options;
    if (!Number.isInteger(askAhead) || askAhead < 0) {
      throw invalid(`askAhead: ${String(askAhead)}: an integer >= 0 (0: never ask ahead)`);
    }
    if (security !== undefined) {
      const { token, ...files } = security; // eslint-disable-line no-unused-vars
      this.options.security = files;
    }
    this.killFlag = new KillFlag();
    this.client = new proto.Throttle(
      address,
      channelCredentials,
      channelOptions(this.options.backoffInitial, this.options.backoffMax, {
        ...securityOptions, // the caller's options may override them
        ...this.options.channelOptions,
      }),
    );
    this.active = new Set(); // calls in flight, for close()
    this.closed = new AbortController();
    // Graceful degradation: the policy and share the server last sent, the
    // outage and the local pacer, one for the Acquire stream and the
    // AwaitFuel calls of this handle (degrade.js).
    this.local = new LocalShare();
    this.acquireStream = new AcquireStream({
      open: (waitForReady) => this.client.Acquire(new grpc.Metadata({ waitForReady })),
      first: () => ({
        throttle: this.name,
        worker_id: this.options.workerId,
        weight: this.options.weight,
        priority: this.options.priority,
      }),
      backoff: new Backoff(this.options.backoffInitial, this.options.backoffMax),
      granted: () => this.killFlag.clear(),
      stopped: () => this.killFlag.set(),
      error: (status) => this.callError(status),
      closedError: () => new ThrottleError(grpc.status.CANCELLED, CLOSED),
    }, askAhead, this.local);
  }

  // The spare grants kept for the next awaitFuel or hasFuel: received
  // beyond what the waiters asked for, or asked ahead.
  get surplus() {
    return this.acquireStream.kept;
  }

  set surplus(n) {
    this.acquireStream.kept = n;
  }

  // What another process needs to make the same handle
  // (Throttle.fromJSON(JSON.parse(JSON.stringify(throttle)))).
  toJSON() {
    const { credentials, ...options } = this.options; // eslint-disable-line no-unused-vars
    return { address: this.address, name: this.name, options };
  }

  static fromJSON({ address, name, options }) {
    return new Throttle(address, name, options);
  }

  // Closes the handle for good: every call in flight (an awaitFuel waiting
  // in another task included) and every later call rejects with
  // ThrottleError CANCELLED "throttle-client Throttle is closed" at once,
  // and killFlag is set so that the seed's loop ends. Closes the channel.
  // Closing again does nothing. (As Tank::Close() in C++ and close() in
  // Python.)
  close() {
    if (this.closed.signal.aborted) return;
    this.closed.abort();
    this.killFlag.set();
    this.acquireStream.close();
    for (const call of this.active) call.cancel();
    this.client.close();
  }

  // Throws the "closed" ThrottleError after close().
  checkOpen() {
    if (this.closed.signal.aborted) throw new ThrottleError(grpc.status.CANCELLED, CLOSED);
  }

  // A failed call's ThrottleError; the "closed" one if close() ended it.
  callError(error) {
    if (error.code === grpc.status.CANCELLED && this.closed.signal.aborted) {
      return new ThrottleError(grpc.status.CANCELLED, CLOSED);
    }
    return ThrottleError.fromGrpc(error);
  }

  unary(method, request) {
    return new Promise((resolve, reject) => {
      this.checkOpen();
      const deadline = grpcDeadline(this.options.callTimeout);
      const metadata = new grpc.Metadata({ waitForReady: this.options.waitForReady });
      const call = this.client[method](request, metadata, { deadline }, (error, response) => {
        this.active.delete(call);
        if (error) reject(this.callError(error));
        else resolve(response);
      });
      this.active.add(call);
    });
  }

  // --- worker side -------------------------------------------------------

  // Waits until one grant of fuel is available to this worker. Resolves a
  // FuelOutcome: FUEL with one grant (do one piece of work); STOPPED if the
  // throttle was stopped (killFlag is then set); TIMED_OUT if `timeout`
  // seconds passed without a grant (killFlag unchanged). No timeout waits
  // for ever; 0 (or less) takes fuel only if it is available at once. The
  // timeout is measured on the monotonic clock.
  //
  // A grant kept from earlier (see below) is handed out at once. Otherwise
  // the call waits on the handle's one Acquire stream
  // (docs/acquire-client-spec.md): opened by the first call that needs it,
  // with wait for ready (it waits for a server that is not up yet), and
  // kept open while the throttle runs, so a grant costs one message each
  // way. Many awaitFuel calls of one handle may wait at once; grants go to
  // them in the order they called. The timeout is kept here: when it
  // passes, the call's demand is withdrawn from the server. A grant the
  // server sent before the withdrawal reached it is kept for the next
  // awaitFuel or hasFuel (dropped when the throttle is seen stopped), as
  // are the grants asked ahead on a monitor-only throttle (see askAhead).
  // When the server ends the stream with UNAVAILABLE or cancels it
  // (restart, shutdown, failover) the calls keep waiting and a new stream
  // is opened after a backoff delay. A timeout of 0 makes one AwaitFuel call instead
  // (count 1, wait_limit 0: the server's answer is exact), as does every
  // call against a server without Acquire (UNIMPLEMENTED), retried as
  // above. Rejects with ThrottleError otherwise (NOT_FOUND: no such
  // throttle or it was deleted; INVALID_ARGUMENT; CANCELLED once the
  // handle is closed, also when close() is called while this waits).
  //
  // The open stream keeps the process alive until close(), as any call in
  // flight does.
  //
  // { failIfLate: true } (deadline-aware admission, with a finite timeout
  // > 0): the server says at once when the grant is not expected within
  // the timeout -- given the workers waiting ahead, their weights and the
  // rate -- and this resolves TOO_LATE instead of waiting it out
  // (awaitFuelCount(1, timeout, { failIfLate: true }) also gives the
  // expected wait). An estimate: an admitted wait may still time out when
  // others join ahead or the rate changes. Such a wait uses AwaitFuel
  // calls, not the Acquire stream, which has no such check. Ignored
  // without a timeout or with one <= 0.
  //
  // While the server cannot be reached the throttle's degradation policy
  // applies, as the server last told this handle (on a grant of either
  // kind): 'wait' as above; 'fail_fast' rejects with ThrottleError
  // UNAVAILABLE (code 14); 'local_share' grants locally at the handle's
  // last share for up to localShareFor, then as fail fast. The AwaitFuel
  // calls (failIfLate, timeout 0, a server without Acquire) follow the same
  // policy from the same state as the stream; see awaitFuelCalls().
  async awaitFuel(timeout, { failIfLate = false } = {}) {
    return (await this.fuel(1, timeout, failIfLate)).outcome;
  }

  // Waits until `n` grants (an integer >= 1) are available to this worker,
  // as awaitFuel does for one, and asks the server for all n at once.
  // Resolves {outcome, grants}: outcome FuelOutcome.FUEL with grants === n;
  // TIMED_OUT or STOPPED with the grants received before (0 <= grants < n:
  // each was counted by the server, the worker may use them). A timeout of
  // 0 or less makes one AwaitFuel call with count n and wait_limit 0: the
  // grants available at once. Rejects as awaitFuel does (the grants
  // received before an error are then lost to the worker); with
  // INVALID_ARGUMENT at once if n is not an integer in [1, 1000000000].
  // { failIfLate: true } as in awaitFuel, checked again after each grant
  // for the next: TOO_LATE with the grants received before (use them) and
  // expectedWait, the seconds the server expected the next grant to take.
  async awaitFuelCount(n, timeout, { failIfLate = false } = {}) {
    this.checkOpen();
    if (!Number.isInteger(n) || n < 1 || n > MAX_COUNT) {
      throw invalid(`n: ${n}: the number of grants is an integer in [1, ${MAX_COUNT}]`);
    }
    return this.fuel(n, timeout, failIfLate);
  }

  // awaitFuel for `n` grants: resolves {outcome, grants[, expectedWait]}.
  async fuel(n, timeout, failIfLate = false) {
    this.checkOpen();
    let got = this.acquireStream.takeKept(n);
    if (got === n) {
      this.acquireStream.tookKept(n);
      return fuelResult(FuelOutcome.FUEL, n);
    }
    const finite = timeout !== undefined && timeout !== null && timeout !== Infinity;
    const deadline = finite ? monotonicMs() + Math.max(timeout, 0) * 1000 : Infinity;
    if (finite && timeout > 0 && failIfLate) return this.awaitFuelCalls(n, got, deadline, true);
    if (!(finite && timeout <= 0)) {
      const { got: more, outcome } = await this.acquireStream.acquire(n - got, deadline, got);
      got += more;
      if (outcome !== 'unsupported') return fuelResult(OUTCOMES[outcome], got);
    }
    return this.awaitFuelCalls(n, got, deadline);
  }

  // The wait of fuel() by AwaitFuel calls, for the n - got grants still
  // missing, until `deadline` (monotonicMs(); Infinity: none): one call
  // asking for them all; while the server answers UNAVAILABLE or cancels
  // the call (restart, shutdown) another after a backoff delay. With
  // `failIfLate`, each call asks fail_if_late.
  //
  // Graceful degradation (docs/clients.md, "AwaitFuel calls follow the same
  // policy"): the calls share this.local with the Acquire stream. A call
  // ending UNAVAILABLE (or cancelled by the server) starts the outage, any
  // answer of the server ends it (callAwaitFuel). During it, after each
  // failed attempt: wait retries as above; fail fast rejects with
  // UNAVAILABLE at once; local share takes a local grant when one is due
  // (a poll takes one due now or is not granted; a wait sleeps until the
  // next one, retrying the server on the backoff meanwhile; a fail-if-late
  // wait whose next one is due after its timeout is TOO_LATE at once).
  async awaitFuelCalls(n, got, deadline, failIfLate = false) {
    const finite = deadline !== Infinity;
    const backoff = new Backoff(this.options.backoffInitial, this.options.backoffMax);
    for (;;) {
      const { grants, end, status, expectedWait } = await this.callAwaitFuel(
        n - got,
        deadline,
        failIfLate,
      );
      const taken = Math.min(grants, n - got);
      got += taken;
      if (end === 'END_REASON_STOPPED') {
        // Fuel that fell due just before the stop: use it, drop the rest.
        this.killFlag.set();
        this.acquireStream.kept = 0;
        return fuelResult(got === n ? FuelOutcome.FUEL : FuelOutcome.STOPPED, got);
      }
      if (grants > 0) {
        this.killFlag.clear();
        this.acquireStream.keep(grants - taken);
      }
      if (got === n) return fuelResult(FuelOutcome.FUEL, n);
      if (end === 'END_REASON_WAIT_LIMIT_PASSED') return fuelResult(FuelOutcome.TIMED_OUT, got);
      if (end === 'END_REASON_TOO_LATE') return fuelResult(FuelOutcome.TOO_LATE, got, expectedWait);
      switch (status.code) {
        case grpc.status.OK:
          throw new ThrottleError(
            grpc.status.INTERNAL,
            'AwaitFuel stream ended without its grants or an end reason',
          );
        case grpc.status.DEADLINE_EXCEEDED:
          // Our own deadline: the server was unreachable or its answer late.
          if (finite) return fuelResult(FuelOutcome.TIMED_OUT, got);
          break;
        case grpc.status.CANCELLED:
          this.checkOpen(); // our own close(): reject
        // Else the server cancelled the call (a shutdown past its grace
        // period): like UNAVAILABLE.
        // falls through
        case grpc.status.UNAVAILABLE: {
          this.local.serverLost(monotonicMs());
          let delay = backoff.nextDelay();
          if (!this.local.waitsForServer) {
            const degraded = await this.degradedWait(n, got, deadline, failIfLate, delay);
            if (degraded.result) return degraded.result;
            got = degraded.got;
            continue;
          }
          if (finite) {
            const remaining = (deadline - monotonicMs()) / 1000;
            if (remaining <= 0) return fuelResult(FuelOutcome.TIMED_OUT, got);
            delay = Math.min(delay, remaining);
          }
          await sleep(delay, this.closed.signal); // timers are monotonic
          this.checkOpen();
          continue;
        }
        default:
          break;
      }
      throw ThrottleError.fromGrpc(status);
    }
  }

  // Between two AwaitFuel attempts during an outage under a policy other
  // than wait: takes the local grants due (LocalShare.awaitStep) until the
  // next attempt, `delay` seconds from now. Resolves {got} to attempt again
  // or {result} to end the wait with; rejects with UNAVAILABLE under fail
  // fast.
  async degradedWait(n, got, deadline, failIfLate, delay) {
    const retryAt = monotonicMs() + delay * 1000;
    for (;;) {
      const now = monotonicMs();
      const step = this.local.awaitStep(n - got, now, deadline, failIfLate);
      got += step.grants; // local: not emissions, unseen by the server
      switch (step.next) {
        case 'fuel':
          return { result: fuelResult(FuelOutcome.FUEL, n) };
        case 'fail':
          throw new ThrottleError(grpc.status.UNAVAILABLE, this.local.failDetails(this.name));
        case 'timed_out':
          return { result: fuelResult(FuelOutcome.TIMED_OUT, got) };
        case 'too_late':
          return { result: fuelResult(FuelOutcome.TOO_LATE, got, step.expectedWaitMs / 1000) };
        default:
          break;
      }
      if (now >= deadline) return { result: fuelResult(FuelOutcome.TIMED_OUT, got) };
      if (now >= retryAt || step.next === 'retry') return { got };
      const wakeAt = Math.min(retryAt, deadline, step.wakeAt);
      await sleep((wakeAt - now) / 1000, this.closed.signal); // timers are monotonic
      this.checkOpen();
    }
  }

  // One AwaitFuel call for `count` grants that ends at `deadline`
  // (monotonicMs()) at the latest; resolves {grants, end, status,
  // expectedWait (seconds, with END_REASON_TOO_LATE)} once the stream has
  // ended and every message was read.
  callAwaitFuel(count, deadline, failIfLate = false) {
    return new Promise((resolve) => {
      const request = {
        throttle: this.name,
        count,
        worker_id: this.options.workerId,
        weight: this.options.weight,
        priority: this.options.priority,
        fail_if_late: failIfLate,
      };
      const callOptions = {};
      if (deadline !== Infinity) {
        // What is left of the wait, on the monotonic clock; grpc-js's
        // deadline is a wall-clock Date computed from it now, as the call
        // starts.
        const remaining = Math.max(deadline - monotonicMs(), 0) / 1000;
        request.wait_limit = toDuration(remaining);
        callOptions.deadline = grpcDeadline(remaining + this.options.deadlineSlack);
      }
      // Wait for a server that is (re)starting instead of failing at once --
      // unless the throttle's policy is not to wait (degrade.js).
      const metadata = new grpc.Metadata({ waitForReady: this.local.waitsForServer });
      const result = { grants: 0, end: 'END_REASON_UNSPECIFIED', status: null };
      const call = this.client.AwaitFuel(request, metadata, callOptions);
      this.active.add(call);
      call.on('data', (response) => {
        // The server answered: its policy and share, and the outage is over.
        this.local.update(response);
        this.local.serverBack();
        result.grants += Math.max(Number(response.grants) || 0, 0);
        if (response.end && response.end !== 'END_REASON_UNSPECIFIED') {
          result.end = response.end;
        }
        if (response.expected_wait) result.expectedWait = fromDuration(response.expected_wait);
      });
      whenEnded(call, (status) => {
        this.active.delete(call);
        if (!NOT_AN_ANSWER.includes(status.code)) this.local.serverBack(); // NOT_FOUND, ...
        result.status = status;
        resolve(result);
      });
    });
  }

  // Takes one grant if one is available right now; never waits. Resolves
  // false if none is (the server says no while other workers wait in
  // awaitFuel) or the throttle is stopped (killFlag is then set).
  // checkFuel() also says when to try again.
  async hasFuel() {
    return (await this.checkFuel()).granted;
  }

  // hasFuel that says when to try again: resolves {granted, stopped,
  // retryAfter}. retryAfter, when neither granted nor stopped and the
  // throttle runs: the seconds until a grant is expected for a worker that
  // starts waiting now (an estimate, not a reservation); null otherwise.
  async checkFuel() {
    this.checkOpen();
    if (this.acquireStream.takeKept(1) === 1) {
      return { granted: true, stopped: false, retryAfter: null };
    }
    const response = await this.unary('HasFuel', {
      throttle: this.name,
      worker_id: this.options.workerId,
    });
    if (response.stopped) {
      this.killFlag.set();
      return { granted: false, stopped: true, retryAfter: null };
    }
    if (response.granted) this.killFlag.clear();
    const retryAfter = response.retry_after ? fromDuration(response.retry_after) : null;
    return { granted: response.granted, stopped: false, retryAfter };
  }

  // Reports n emissions (a throttle created with manualEmit, the seed's
  // auto_emit=False); resolves the throttle's total emissions.
  // FAILED_PRECONDITION if it counts at grant time or is not running.
  async emit(n = 1) {
    const response = await this.unary('Emit', {
      throttle: this.name,
      count: n,
      worker_id: this.options.workerId,
    });
    return response.total_emissions;
  }

  // Reports how the work went downstream to a throttle with an adaptive
  // ceiling: `successes` accepted and `rejections` rejected (or failed)
  // since the last report, each in [0, 1000000]. Resolves the throttle's
  // maxN in effect. FAILED_PRECONDITION if the throttle is not adaptive or
  // was never started; INVALID_ARGUMENT for a bad count.
  async report({ successes = 0, rejections = 0 } = {}) {
    const response = await this.unary('Report', {
      throttle: this.name,
      worker_id: this.options.workerId,
      successes,
      rejections,
    });
    return response.current_max_n;
  }

  // --- controller side ---------------------------------------------------

  // Creates the throttle: maxN grants per `per` seconds (the seed's
  // Throttle(maxN, per)). Options: mode ('smooth' (default), 'window',
  // 'bucket', 'unbounded', 'monitor-only'), burst, manualEmit, catchUp
  // (seconds, in [0, per]: how far the grant schedule may fall behind
  // after a stall and still be caught up; 0: no catch-up; unset or null:
  // the server's default, 1% of per but at least per / maxN; see
  // ThrottleConfig.catch_up), warmUp (seconds: after a start, and a start
  // after a stop at least as long, the rate ramps linearly from warmUpFrom
  // (default 1/3) x the rate to the full rate; see ThrottleConfig.warm_up),
  // starvationBound (seconds: a lower priority class waiting that got no
  // grant for this long gets the next one; see
  // ThrottleConfig.starvation_bound), adaptive (an object of floorN,
  // targetRejectionRatio, window, increaseN, decreaseFactor, minOutcomes,
  // {} for every default: the rate
  // moves between floorN and maxN by what workers report(); see
  // ThrottleConfig.adaptive), degradation ('wait' (default), 'fail_fast' or
  // 'local_share': what workers do while the server cannot be reached; see
  // ThrottleConfig.degradation), localShareFor (seconds, in (0, 3600],
  // required with 'local_share' and only with it: how long workers grant
  // themselves their last share), replace (delete an existing throttle of this
  // name first instead of failing with ALREADY_EXISTS). Resolves the
  // throttle's info. Rejects with ThrottleError INVALID_ARGUMENT for a bad
  // value (the server's message names the field; the client's names
  // degradation or localShareFor and the value for one that is not a name
  // or a number), RangeError for an unknown mode.
  async create(maxN, per, { replace = false, ...settings } = {}) {
    const request = { name: this.name, config: toConfig(maxN, per, settings) };
    try {
      return fromInfo((await this.unary('CreateThrottle', request)).throttle);
    } catch (error) {
      if (!replace || error.code !== grpc.status.ALREADY_EXISTS) throw error;
    }
    await this.delete();
    return fromInfo((await this.unary('CreateThrottle', request)).throttle);
  }

  // Replaces the configuration whole, with the settings of create()
  // (catchUp unset: the default again; mode smooth, burst 0 unless given):
  // to change some settings only, use update(). Waiting workers stay and
  // are served at the new rate. Resolves the throttle's info.
  async configure(maxN, per, settings = {}) {
    const response = await this.unary('ConfigureThrottle', {
      name: this.name,
      config: toConfig(maxN, per, settings),
    });
    return fromInfo(response.throttle);
  }

  // Changes only the settings given -- maxN, per, mode, burst,
  // manualEmit, catchUp, warmUp, warmUpFrom, starvationBound, adaptive,
  // degradation, localShareFor, meaning what they mean in create() (catchUp
  // null: the server's default again; degradation null: wait; localShareFor
  // null: none, as the wait and fail_fast policies need) -- and keeps the
  // others: update({ maxN:
  // 200 }) on a bucket throttle keeps its mode and burst. A mode other than
  // bucket resets burst to 0 unless burst is given too. Waiting workers
  // stay. Resolves the throttle's info. Rejects with ThrottleError
  // INVALID_ARGUMENT for a bad merged config (the server checks it whole),
  // TypeError for an unknown setting or none, RangeError for an unknown
  // mode.
  async update(settings) {
    const response = await this.unary('ConfigureThrottle', {
      name: this.name,
      ...toPartialConfig(settings),
    });
    return fromInfo(response.throttle);
  }

  // Deletes the throttle; its waiting workers get NOT_FOUND.
  async delete() {
    await this.unary('DeleteThrottle', { name: this.name });
  }

  // Every throttle of the server, sorted by name.
  async listThrottles() {
    const response = await this.unary('ListThrottles', {});
    return response.throttles.map(fromInfo);
  }

  // This throttle as listed by the server: {name, maxN, per, mode, burst,
  // manualEmit, catchUp, warmUp, warmUpFrom, starvationBound, adaptive,
  // currentMaxN, degradation, localShareFor, state, waitingStreams,
  // totalEmissions}.
  async info() {
    const found = (await this.listThrottles()).find((t) => t.name === this.name);
    if (!found) {
      throw new ThrottleError(grpc.status.NOT_FOUND, `no throttle named '${this.name}'`);
    }
    return found;
  }

  // Starts (or resumes) the throttle. FAILED_PRECONDITION if it runs.
  async start() {
    await this.unary('Start', { throttle: this.name });
    this.killFlag.clear();
  }

  // Stops the throttle and sets the kill flag: every waiting worker's
  // awaitFuel resolves FuelOutcome.STOPPED with its killFlag set. Resolves the seed's
  // tuple [runtime, totalEmissions, meanTimeBetween, meanPerSecond].
  // FAILED_PRECONDITION if it is not running.
  async stop() {
    const r = await this.unary('Stop', { throttle: this.name });
    this.killFlag.set();
    return [
      r.runtime_seconds,
      r.total_emissions,
      r.mean_seconds_between_emissions,
      r.mean_emissions_per_second,
    ];
  }

  // [seconds between emissions, emissions per second] over the last
  // `window` seconds (0 < window <= 60), as the seed's latest() (this pair
  // stays as it is). With { includeWorkers: true }: an object with those
  // two, the window's emissions and length, currentMaxN (the maxN in
  // effect now, as info().currentMaxN) and `workers` (what each worker_id
  // got in the window, at 100 ms resolution; see workerStats).
  async latest(window = 1, options = {}) {
    const includeWorkers = Boolean(options && options.includeWorkers);
    const r = await this.unary('Latest', {
      throttle: this.name,
      window: toDuration(window),
      include_workers: includeWorkers,
    });
    if (!includeWorkers) return [r.seconds_between_emissions, r.emissions_per_second];
    return {
      secondsBetween: r.seconds_between_emissions,
      perSecond: r.emissions_per_second,
      emissions: r.emissions,
      windowSeconds: r.window_seconds,
      // The maxN in effect (the adaptive ceiling's rate, else maxN; 0 from
      // a server from before it), as info().currentMaxN.
      currentMaxN: r.current_max_n,
      workers: r.workers.map(workerStats),
    };
  }

  // [mean seconds between emissions, mean per second] since the first
  // start, as the seed's mean(). With { includeWorkers: true }: an object
  // with those two, the runtime, the total, Jain's fairness index of the
  // grants per worker and `workers` (what each worker_id got).
  async mean(options = {}) {
    const includeWorkers = Boolean(options && options.includeWorkers);
    const r = await this.unary('Mean', { throttle: this.name, include_workers: includeWorkers });
    if (!includeWorkers) return [r.mean_seconds_between_emissions, r.mean_emissions_per_second];
    return {
      secondsBetween: r.mean_seconds_between_emissions,
      perSecond: r.mean_emissions_per_second,
      runtimeSeconds: r.runtime_seconds,
      totalEmissions: r.total_emissions,
      fairnessIndex: r.fairness_index,
      workers: r.workers.map(workerStats),
    };
  }

  // The whole MeanResponse (runtime_seconds, total_emissions,
  // lowest_gap_seconds, highest_gap_seconds, state, ...).
  async meanDetails() {
    return this.unary('Mean', { throttle: this.name });
  }

  // A live view of the throttle (WatchThrottle; watch.js): an async
  // iterator of snapshots {time, info, latest, mean, changed, message},
  // the first at once, then one every `interval` seconds (in [0.1, 60];
  // unset: the server's 1 s) and one at once on each change of state or
  // configuration, until its cancel() (or a `break` out of for-await).
  // `window` (seconds, in (0, 60]; unset: the interval) is that of each
  // snapshot's latest. `reconnect` (default true): a lost stream is opened
  // again after the backoff; false: the iteration rejects with the error.
  // Does not block: the stream opens on the first next(). Throws
  // ThrottleError INVALID_ARGUMENT naming interval or window for a value
  // that is not a finite number; a value out of range rejects the first
  // next() with the server's INVALID_ARGUMENT, and an unknown or deleted
  // throttle rejects with NOT_FOUND.
  watch({ interval, window, reconnect = true } = {}) {
    const request = { throttle: this.name };
    if (interval !== undefined) request.interval = toWatchDuration(interval, 'interval');
    if (window !== undefined) request.window = toWatchDuration(window, 'window');
    return new Watch(
      {
        open: () => this.client.WatchThrottle(request),
        snapshot: fromSnapshot,
        error: (error) => this.callError(error),
        closed: () => this.closed.signal.aborted,
        track: (call) => this.active.add(call),
        untrack: (call) => this.active.delete(call),
        backoff: new Backoff(this.options.backoffInitial, this.options.backoffMax),
      },
      { reconnect },
    );
  }
}

// One WorkerStats message as the client shows it.
function workerStats(w) {
  return {
    workerId: w.worker_id,
    grants: w.grants,
    emissions: w.emissions,
    grantsPerSecond: w.grants_per_second,
    others: w.others,
  };
}

module.exports = {
  Throttle,
  ThrottleError,
  FuelOutcome,
  Watch,
  Backoff,
  KillFlag,
  channelOptions,
  SECURITY_ENV,
  securityFromEnv,
  status: grpc.status,
  proto,
};
