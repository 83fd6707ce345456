#!/usr/bin/env node
// A worker process running the seed's loop through throttle-client, with
// the output protocol of the C++ tests/test_worker (for mixed-fleet tests):
// "ready" once, one "fuel" line per grant, then "stopped", or
// "error <CODE>: <details>" and exit code 1.
//
//   node clients/node/examples/worker.js --address HOST:PORT \
//       --throttle NAME [--worker_id ID]
'use strict';

const fs = require('node:fs');
const { parseArgs } = require('node:util');
const { Throttle, ThrottleError } = require('..');

// Written synchronously, so that every line is out even if the process is
// killed right after (as a flushed printf in the C++ worker).
const say = (line) => fs.writeSync(1, `${line}\n`);

async function main() {
  const { values: args } = parseArgs({
    options: {
      address: { type: 'string' },
      throttle: { type: 'string' },
      worker_id: { type: 'string', default: '' },
    },
  });
  if (!args.address || !args.throttle) {
    process.stderr.write('usage: worker.js --address HOST:PORT --throttle NAME [--worker_id ID]\n');
    return 2;
  }
  const tank = new Throttle(args.address, args.throttle, { workerId: args.worker_id });
  say('ready');
  try {
    while (!tank.killFlag.isSet()) {
      if ((await tank.awaitFuel()).fuel) say('fuel');
    }
  } catch (error) {
    if (!(error instanceof ThrottleError)) throw error;
    say(`error ${error.message}`);
    return 1;
  } finally {
    tank.close();
  }
  say('stopped');
  return 0;
}

main().then(
  (code) => process.exit(code),
  (error) => {
    console.error(error);
    process.exit(1);
  },
);
