// Per-worker statistics with real processes: three Node workers
// (examples/worker.js) of different worker_ids get fuel from the real
// server; the Node controller's mean() and latest() with
// { includeWorkers: true } list what each got, exactly as the workers
// counted it, and the fairness index matches those counts.
'use strict';

const assert = require('node:assert/strict');
const path = require('node:path');
const { test } = require('node:test');
const { Throttle } = require('..');
const { GENEROUS, Server, WorkerProcess, awaitWaiting, waitFor } = require('./support');

const NODE_WORKER = path.join(__dirname, '..', 'examples', 'worker.js');
const GRANTS = 30; // the run lasts until the server has counted this many

function jain(xs) {
  const sum = xs.reduce((a, x) => a + x, 0);
  return (sum * sum) / (xs.length * xs.reduce((a, x) => a + x * x, 0));
}

test('the controller reads what each worker got', async (t) => {
  const server = await new Server(['--throttle=stats max_n=20 per=1']).start();
  t.after(() => server.close());
  const controller = new Throttle(server.address, 'stats');
  t.after(() => controller.close());
  const ids = ['node-a', 'node-b', 'node-c'];
  const workers = {};
  for (const id of ids) {
    workers[id] = new WorkerProcess([
      process.execPath,
      NODE_WORKER,
      `--address=${server.address}`,
      '--throttle=stats',
      `--worker_id=${id}`,
    ]);
    t.after(() => workers[id].kill());
  }
  assert.ok(await awaitWaiting(controller, ids.length), server.log());
  const started = Date.now();
  await controller.start();
  assert.ok(await waitFor(async () => (await controller.info()).totalEmissions >= GRANTS));
  await controller.stop();
  const got = {};
  for (const id of ids) {
    assert.equal(await workers[id].wait(GENEROUS), 0, workers[id].lines().join('\n'));
    got[id] = workers[id].grants();
  }

  const mean = await controller.mean({ includeWorkers: true });
  const report = JSON.stringify({ got, mean });
  assert.deepEqual(mean.workers.map((w) => w.workerId).sort(), ids, report);
  for (const w of mean.workers) {
    assert.equal(w.grants, got[w.workerId], report);
    assert.equal(w.emissions, 0, report);
    assert.equal(w.others, false, report);
    assert.ok(Math.abs(w.grantsPerSecond - w.grants / mean.runtimeSeconds) < 1e-6, report);
  }
  const grants = mean.workers.map((w) => w.grants);
  assert.deepEqual(grants, [...grants].sort((a, b) => b - a), report); // most first
  assert.equal(
    Object.values(got).reduce((a, x) => a + x, 0),
    mean.totalEmissions,
    report,
  );
  // Jain's index of the counts (weight 1 each), well above the 1/3 of one
  // worker taking all.
  assert.ok(Math.abs(mean.fairnessIndex - jain(Object.values(got))) < 1e-9, report);
  assert.ok(mean.fairnessIndex > 0.5, report);

  const latest = await controller.latest(60, { includeWorkers: true });
  assert.equal(latest.windowSeconds, 60);
  if (Date.now() - started < 50_000) {
    // the whole run lies in the window
    const inWindow = Object.fromEntries(latest.workers.map((w) => [w.workerId, w.grants]));
    assert.deepEqual(inWindow, got, JSON.stringify(latest));
  }
  // Without includeWorkers: the seed's pairs, as before.
  assert.equal((await controller.latest(1)).length, 2);
  assert.equal((await controller.mean()).length, 2);
  assert.equal((await controller.meanDetails()).fairness_index, mean.fairnessIndex);
});
