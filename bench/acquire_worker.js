#!/usr/bin/env node
// A throttle_bench worker (--worker_command) running the Node client's loop,
// as a user writes it:
//
//   while (!tank.killFlag.isSet()) await tank.awaitFuel();
//
// through clients/node (its node_modules from clients/setup.sh). Records
// the time (process.hrtime, CLOCK_MONOTONIC on Linux, as throttle_bench's
// own workers) at which each awaitFuel() resolved with fuel, and each
// call's wait, and writes them in throttle_bench's worker output format:
// three arrays of little-endian int64, each after its length (grant times,
// message times: none here, latencies).
//
//   node bench/acquire_worker.js --address=HOST:PORT --throttle=NAME \
//       --out=FILE [--streams=1] [--ask_ahead=N]
//
// --streams > 1 runs that many loops at once, each with a Throttle of its
// own. --ask_ahead is the Throttle's askAhead option (0: exact counts);
// unset: the client's default.
'use strict';

const fs = require('node:fs');
const path = require('node:path');
const { parseArgs } = require('node:util');
const { Throttle, ThrottleError } = require(path.join(__dirname, '..', 'clients', 'node'));

async function loop(tank, times, waits, errors) {
  try {
    while (!tank.killFlag.isSet()) {
      const asked = process.hrtime.bigint();
      if ((await tank.awaitFuel()).fuel) {
        const now = process.hrtime.bigint();
        times.push(now);
        waits.push(now - asked);
      }
    }
  } catch (error) {
    if (!(error instanceof ThrottleError)) throw error;
    errors.push(error.message);
  }
}

function int64s(values) {
  const out = new BigInt64Array(values.length + 1);
  out[0] = BigInt(values.length);
  for (let i = 0; i < values.length; i++) out[i + 1] = values[i];
  return Buffer.from(out.buffer);
}

async function main() {
  const { values: args } = parseArgs({
    options: {
      address: { type: 'string' },
      throttle: { type: 'string' },
      out: { type: 'string' },
      streams: { type: 'string', default: '1' },
      ask_ahead: { type: 'string' },
    },
  });
  if (!args.address || !args.throttle || !args.out) {
    process.stderr.write('usage: acquire_worker.js --address=HOST:PORT --throttle=NAME --out=FILE [--streams=N]\n');
    return 2;
  }
  const tanks = [];
  for (let i = 0; i < Number(args.streams); i++) {
    const options = { workerId: `bench-node-${process.pid}-${i}` };
    if (args.ask_ahead !== undefined) options.askAhead = Number(args.ask_ahead);
    tanks.push(new Throttle(args.address, args.throttle, options));
  }
  const times = [];
  const waits = [];
  const errors = [];
  await Promise.all(tanks.map((tank) => loop(tank, times, waits, errors)));
  for (const tank of tanks) tank.close();
  for (const error of errors) process.stderr.write(`worker call ended: ${error}\n`);
  times.sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
  fs.writeFileSync(args.out, Buffer.concat([int64s(times), int64s([]), int64s(waits)]));
  return errors.length ? 1 : 0;
}

main().then(
  (code) => process.exit(code),
  (error) => {
    console.error(error);
    process.exit(1);
  },
);
