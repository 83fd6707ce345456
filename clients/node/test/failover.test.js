// Failover through the Node client: two high-available servers on one
// etcd, the client on the multi-address target "ipv4:HOST:P1,HOST:P2". A
// worker process (examples/worker.js) and an in-process worker loop with a
// finite timeout keep getting fuel, with no error and no restart, after a
// kill -9 of the leader and after a SIGTERM hand-over; the controller sees
// UNAVAILABLE, and only that, during the gap. See docs/clients.md,
// "Failover: reaching the leader".
'use strict';

const assert = require('node:assert/strict');
const path = require('node:path');
const { test } = require('node:test');
const { performance } = require('node:perf_hooks');
const { Throttle, ThrottleError } = require('..');
const {
  SERVER,
  findEtcd,
  waitFor,
  sleep,
  Etcd,
  HaServer,
  WorkerProcess,
  freePorts,
  ipv4Target,
} = require('./support');

const NODE_WORKER = path.join(__dirname, '..', 'examples', 'worker.js');
const LEASE_TTL_SECONDS = 1;
// A worker gets fuel again within this long of the leader's death: the
// lease's TTL, etcd's expiry check (0.5 s), and the client's reconnect
// backoff (at most 2 s), with room for a loaded machine.
const REFUELED_WITHIN = LEASE_TTL_SECONDS + 10;
// Deadline of every wait on a condition here, seconds.
const DEADLINE = 30;
// Grants each worker must get to count as going again.
const GRANTS = 3;
// The finite timeout of the in-process worker: longer than any failover, so
// it must never pass.
const LOOP_TIMEOUT = 20;

// The seed's worker loop in this process, with a finite timeout: counts
// each awaitFuel outcome and keeps any error it rejected with. close()
// closes its Throttle (which ends a wait); `done` settles when the loop
// ends.
class LoopWorker {
  constructor(target, name, timeout) {
    this.tank = new Throttle(target, name, { workerId: 'loop' });
    this.outcomes = { fuel: 0, stopped: 0, timed_out: 0 };
    this.errors = [];
    this.done = this.run(timeout);
  }

  async run(timeout) {
    try {
      while (!this.tank.killFlag.isSet()) {
        this.outcomes[(await this.tank.awaitFuel(timeout)).outcome] += 1;
      }
    } catch (error) {
      this.errors.push(error);
    }
  }

  grants() {
    return this.outcomes.fuel;
  }

  async close() {
    this.tank.close();
    await this.done;
  }
}

// Calls `call` until it resolves (every 50 ms, up to DEADLINE); resolves
// { result, codes }: codes are the status names of the calls that failed
// first. Rejects with the last ThrottleError if none succeeded.
async function served(call) {
  const codes = [];
  const deadline = performance.now() + DEADLINE * 1000;
  for (;;) {
    try {
      return { result: await call(), codes };
    } catch (error) {
      if (!(error instanceof ThrottleError)) throw error;
      codes.push(error.codeName);
      if (performance.now() >= deadline) throw error;
    }
    await sleep(0.05);
  }
}

// Resolves true once `promise` settled, false if `seconds` pass first.
function within(promise, seconds) {
  let timer;
  const late = new Promise((resolve) => (timer = setTimeout(() => resolve(false), seconds * 1000)));
  return Promise.race([promise.then(() => true), late]).finally(() => clearTimeout(timer));
}

const logs = (...servers) => servers.map((s) => `--- ${s.address}:\n${s.log()}`).join('\n');

test('workers ride through a crash and a hand-over', async (t) => {
  assert.ok(SERVER, 'THROTTLE_SERVER is not set');
  assert.ok(findEtcd(), 'no etcd on PATH or at /usr/bin/etcd: install etcd-server');
  // Cleanups run last first, also when an assertion fails.
  const cleanups = [];
  t.after(async () => {
    for (const cleanup of cleanups.reverse()) await cleanup();
  });
  const etcd = new Etcd();
  cleanups.push(() => etcd.close());
  await etcd.start();

  const [p1, p2] = await freePorts(2);
  const a = new HaServer(etcd, p1, 'failover');
  cleanups.push(() => a.close());
  await a.start();
  assert.ok(await waitFor(() => a.leading(), DEADLINE), a.log());
  const b = new HaServer(etcd, p2, 'failover');
  cleanups.push(() => b.close());
  await b.start();

  const target = ipv4Target(a, b);
  const controller = new Throttle(target, 'crawl');
  cleanups.push(() => controller.close());
  await controller.create(20, 1);
  await controller.start();

  const worker = new WorkerProcess([
    process.execPath,
    NODE_WORKER,
    `--address=${target}`,
    '--throttle=crawl',
    '--worker_id=process',
  ]);
  cleanups.push(() => worker.kill());
  const loop = new LoopWorker(target, 'crawl', LOOP_TIMEOUT);
  cleanups.push(() => loop.close());

  const counts = () => [worker.grants(), loop.grants()];
  // Waits until both workers got GRANTS more grants than at `since`.
  const refueled = async ([processFrom, loopFrom]) => {
    assert.ok(
      await waitFor(
        () => worker.grants() >= processFrom + GRANTS && loop.grants() >= loopFrom + GRANTS,
        DEADLINE,
      ),
      `no fuel: ${worker.lines().slice(-5)} ${JSON.stringify(loop.outcomes)} ` +
        `${loop.errors}\n${logs(a, b)}`,
    );
  };
  await refueled([0, 0]);

  // kill -9 of the leader: the standby leads after about the TTL.
  let since = counts();
  const killed = performance.now();
  await a.kill();
  const { result: info, codes: gapCodes } = await served(() => controller.info());
  assert.equal(info.state, 'running');
  assert.deepEqual([...new Set(gapCodes)].filter((c) => c !== 'UNAVAILABLE'), [], String(gapCodes));
  assert.ok(await waitFor(() => b.leading(), DEADLINE), logs(a, b));
  await refueled(since);
  const crashGap = (performance.now() - killed) / 1000;
  assert.ok(crashGap < REFUELED_WITHIN, `${crashGap} s\n${logs(a, b)}`);
  assert.equal(worker.child.exitCode, null, worker.lines().slice(-5).join('\n'));
  assert.deepEqual(loop.errors, []);

  // The crashed server comes back as a standby; SIGTERM of the leader hands
  // over to it.
  await a.start();
  assert.ok(!a.leading(), logs(a, b));
  since = counts();
  const terminated = performance.now();
  assert.equal(await b.stop(), 0, b.log());
  assert.ok(await waitFor(() => a.leading(), DEADLINE), logs(a, b));
  await refueled(since);
  const handoverGap = (performance.now() - terminated) / 1000;
  assert.ok(handoverGap < REFUELED_WITHIN, `${handoverGap} s\n${logs(a, b)}`);
  assert.equal(worker.child.exitCode, null, worker.lines().slice(-5).join('\n'));

  // Stop: both workers end on the kill flag, cleanly.
  await controller.stop();
  assert.equal(await worker.wait(DEADLINE), 0, worker.lines().slice(-5).join('\n'));
  assert.equal(worker.lines().at(-1), 'stopped');
  assert.deepEqual(worker.lines().filter((l) => l.startsWith('error')), []);
  assert.ok(await within(loop.done, DEADLINE), JSON.stringify(loop.outcomes));
  assert.deepEqual(loop.errors, []);
  assert.equal(loop.outcomes.timed_out, 0, JSON.stringify(loop.outcomes));
  assert.equal(loop.outcomes.stopped, 1, JSON.stringify(loop.outcomes));
  t.diagnostic(
    `kill -9 -> fuel ${crashGap.toFixed(2)} s, SIGTERM -> fuel ${handoverGap.toFixed(2)} s; ` +
      `grants: process ${worker.grants()}, loop ${loop.grants()}; ` +
      `calls failed in the gap: ${gapCodes.length}, ${[...new Set(gapCodes)]}`,
  );
});
