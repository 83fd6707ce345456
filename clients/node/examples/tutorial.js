#!/usr/bin/env node
// The seed's tutorial (mp_throttle's tutorial.rst) in Node.js, with worker
// processes and the shared throttle service.
//
//   node clients/node/examples/tutorial.js [--stats] [--run SECONDS]
//       [--address HOST:PORT | --server PATH]
//
// Uses the server at --address (or $THROTTLE_ADDRESS); without one it
// starts --server (default build/server/throttle_server) on 127.0.0.1 with a
// free port and stops it at the end. Creates the throttle "tutorial" of 4
// per 1 s, forks 4 worker processes running the seed's loop, starts the
// throttle, sleeps 5 s, stops it and prints the seed's four lines. With
// --stats it prints latest() and mean() every 0.5 s for 10 s instead, as in
// "Get the stats". Each worker writes "<name>: <n> grants, kill flag set"
// to stderr when its loop ends.
'use strict';

const childProcess = require('node:child_process');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { parseArgs } = require('node:util');
const { Throttle, ThrottleError } = require('..');

const sleep = (seconds) => new Promise((r) => setTimeout(r, seconds * 1000));

async function work(tank, name) {
  let grants = 0;
  try {
    while (!tank.killFlag.isSet()) {
      // Block until 'fuel' is available.
      if ((await tank.awaitFuel()).fuel) grants += 1;
      // do something and repeat.
    }
  } catch (error) {
    if (!(error instanceof ThrottleError)) throw error;
    process.stderr.write(`${name}: ${error.message}\n`);
    return 1;
  }
  process.stderr.write(`${name}: ${grants} grants, kill flag set\n`);
  return 0;
}

// multiprocessing.Pool(processes, initializer=work, initargs=(throttle,))
// in miniature: forks this script `processes` times; each child makes its
// own Throttle from the parent's and runs work() with it.
class Pool {
  constructor({ processes, initargs: [throttle] }) {
    this.children = [];
    for (let i = 1; i <= processes; i++) {
      this.children.push(
        childProcess.fork(__filename, ['--worker', `Worker-${i}`, JSON.stringify(throttle)], {
          stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
        }),
      );
    }
  }

  // Resolves the number of workers that failed once all have exited.
  join() {
    return Promise.all(
      this.children.map(
        (child) =>
          new Promise((resolve) => {
            if (child.exitCode !== null) resolve(child.exitCode);
            else child.on('exit', (code) => resolve(code));
          }),
      ),
    ).then((codes) => codes.filter((c) => c !== 0).length);
  }

  terminate() {
    for (const child of this.children) if (child.exitCode === null) child.kill();
  }
}

// Starts throttle_server on 127.0.0.1 with a free port.
async function startServer(binary, dir) {
  const portFile = path.join(dir, 'port');
  const server = childProcess.spawn(binary, ['--listen=127.0.0.1:0', `--port_file=${portFile}`], {
    stdio: ['ignore', 'inherit', 'inherit'],
  });
  const deadline = Date.now() + 60000;
  while (Date.now() < deadline && server.exitCode === null) {
    try {
      const port = parseInt(fs.readFileSync(portFile, 'utf8'), 10);
      if (port > 0) return { server, address: `127.0.0.1:${port}` };
    } catch {
      // not written yet
    }
    await sleep(0.02);
  }
  server.kill('SIGKILL');
  throw new Error('tutorial: throttle_server did not start');
}

async function tutorial(address, args) {
  // throttle = mp_throttle.Throttle(4,1)
  const throttle = new Throttle(address, 'tutorial');
  await throttle.create(4, 1, { replace: true });

  const workerpool = new Pool({ processes: 4, initializer: work, initargs: [throttle] });
  try {
    // Not in the seed: let every worker reach awaitFuel first, so that none
    // misses the first grants (the server hands out no fuel ahead of time).
    const deadline = Date.now() + 60000;
    while ((await throttle.info()).waitingStreams < 4 && Date.now() < deadline) {
      await sleep(0.02);
    }

    await throttle.start();
    if (args.stats) {
      for (let i = 0; i < 20; i++) {
        console.log(await throttle.latest());
        console.log(await throttle.mean());
        await sleep(0.5);
      }
    } else {
      await sleep(Number(args.run));
    }
    const [runtime, totalEmissions, meanTimeBetweenProcesses, meanProcessesPerSecond] =
      await throttle.stop();
    console.log(`Runtime: ${runtime}`);
    console.log(`Total: ${totalEmissions}`);
    console.log(`Time between processes: ${meanTimeBetweenProcesses}`);
    console.log(`Processes per second: ${meanProcessesPerSecond}`);
  } catch (error) {
    workerpool.terminate();
    throw error;
  } finally {
    throttle.close();
  }
  const failed = await workerpool.join();
  if (failed > 0) throw new Error(`${failed} worker(s) failed`);
}

async function main() {
  if (process.argv[2] === '--worker') {
    const tank = Throttle.fromJSON(JSON.parse(process.argv[4]));
    const code = await work(tank, process.argv[3]);
    tank.close();
    process.exit(code);
  }
  const { values: args } = parseArgs({
    options: {
      address: { type: 'string', default: process.env.THROTTLE_ADDRESS || '' },
      server: {
        type: 'string',
        default: path.join(__dirname, '..', '..', '..', 'build', 'server', 'throttle_server'),
      },
      stats: { type: 'boolean', default: false },
      run: { type: 'string', default: '5' },
    },
  });
  let server = null;
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'throttle_tutorial.'));
  let address = args.address;
  try {
    if (!address) ({ server, address } = await startServer(args.server, dir));
    await tutorial(address, args);
  } finally {
    if (server) {
      const exited = new Promise((r) => server.on('exit', r));
      server.kill('SIGTERM');
      await exited;
    }
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

main().catch((error) => {
  console.error(error.message || error);
  process.exit(1);
});
