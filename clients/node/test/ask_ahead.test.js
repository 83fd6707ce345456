// Asking ahead where fuel is unlimited (docs/acquire-client-spec.md), against
// the real server: on a monitor-only throttle a fast loop of awaits has the
// server count at most askAhead grants beyond those used, and some beyond
// at some point; askAhead 0, a limited mode and a slow worker keep the
// counts exact; a message saying the fuel is no longer unlimited makes the
// demand exact again. The pace is measured on a clock the tests set
// (acquireStream.paceNow), so that "fast" and "slow" do not depend on the
// machine.
'use strict';

const assert = require('node:assert/strict');
const { describe, test } = require('node:test');
const { FuelOutcome } = require('..');
const { serverFixture } = require('./support');

const { FUEL } = FuelOutcome;

// A pace clock (ms) that moves `step` ms each time it is read, and
// `pause` ms more every `every` reads (0: never).
function steppingClock(step, every = 0, pause = 0) {
  let now = 1000;
  let reads = 0;
  return () => {
    reads += 1;
    now += step + (every > 0 && reads % every === 0 ? pause : 0);
    return now;
  };
}

// Runs `n` awaits on `worker` (which used `before` grants already),
// reading the server's total emissions after each; returns the totals
// beyond the grants used so far, one per await.
async function loopAhead(worker, controller, n, before = 0) {
  const ahead = [];
  for (let used = before + 1; used <= before + n; used++) {
    assert.equal(await worker.awaitFuel(), FUEL);
    const total = (await controller.info()).totalEmissions;
    ahead.push(total - used);
  }
  return ahead;
}

describe('asking ahead', () => {
  const fixture = serverFixture();
  const throttle = fixture.throttle;

  async function started(name, maxN, per, settings) {
    const controller = throttle(name);
    await controller.create(maxN, per, settings);
    await controller.start();
    return controller;
  }

  test('a fast loop on a monitor-only throttle asks at most askAhead ahead', async () => {
    const controller = await started('fast', 1, 1, { mode: 'monitor-only' });
    const worker = throttle('fast'); // askAhead 16 by default
    assert.equal(worker.options.askAhead, 16);
    worker.acquireStream.paceNow = steppingClock(0.05); // 20 grants a ms
    const ahead = await loopAhead(worker, controller, 300);
    for (const [i, a] of ahead.entries()) {
      assert.ok(a >= 0 && a <= 16, `after await ${i + 1}: ${a} beyond the used`);
    }
    assert.ok(
      ahead.some((a) => a > 0),
      'never asked ahead',
    );
  });

  test('a pause in a fast loop withdraws nothing and overshoots nothing', async () => {
    const controller = await started('pauses', 1, 1, { mode: 'monitor-only' });
    const worker = throttle('pauses', { askAhead: 8 });
    // 20 grants a ms, with a 10 ms pause (no pace) every 37 grants.
    worker.acquireStream.paceNow = steppingClock(0.05, 37, 10);
    const ahead = await loopAhead(worker, controller, 300);
    for (const [i, a] of ahead.entries()) {
      assert.ok(a >= 0 && a <= 8, `after await ${i + 1}: ${a} beyond the used`);
    }
    assert.ok(ahead.some((a) => a > 0), 'never asked ahead');
  });

  test('on the real clock a tight loop stays within askAhead', async () => {
    const controller = await started('tight', 1, 1, { mode: 'monitor-only' });
    const worker = throttle('tight', { askAhead: 8 });
    for (let used = 1; used <= 20; used++) {
      for (let i = 0; i < 200; i++) assert.equal(await worker.awaitFuel(), FUEL);
      const total = (await controller.info()).totalEmissions;
      const ahead = total - used * 200;
      assert.ok(ahead >= 0 && ahead <= 8, `after ${used * 200} awaits: ${ahead} beyond`);
    }
  });

  test('askAhead 0 keeps a monitor-only count exact', async () => {
    const controller = await started('exact', 1, 1, { mode: 'monitor-only' });
    const worker = throttle('exact', { askAhead: 0 });
    worker.acquireStream.paceNow = () => 1000; // the fastest pace there is
    const ahead = await loopAhead(worker, controller, 200);
    assert.deepEqual(new Set(ahead), new Set([0]));
    assert.equal(worker.surplus, 0);
  });

  test('a limited mode never asks ahead', async () => {
    const controller = await started('limited', 1000000, 1); // smooth
    const worker = throttle('limited');
    worker.acquireStream.paceNow = () => 1000;
    const ahead = await loopAhead(worker, controller, 200);
    assert.deepEqual(new Set(ahead), new Set([0]));
    assert.equal(worker.surplus, 0);
  });

  test('a slow worker asks for nothing ahead', async () => {
    const controller = await started('slow', 1, 1, { mode: 'monitor-only' });
    const worker = throttle('slow');
    worker.acquireStream.paceNow = steppingClock(2); // a grant every 2 ms
    const ahead = await loopAhead(worker, controller, 100);
    assert.deepEqual(new Set(ahead), new Set([0]));
    assert.equal(worker.surplus, 0);
  });

  test('exact again once a message says the fuel is not unlimited', async () => {
    const controller = await started('switch', 1, 1, { mode: 'monitor-only' });
    const worker = throttle('switch');
    worker.acquireStream.paceNow = steppingClock(0.05);
    const ahead = await loopAhead(worker, controller, 100);
    assert.ok(ahead.some((a) => a > 0), 'never asked ahead');
    await controller.configure(1000000, 1); // smooth: limited
    // The kept grants go first; then every await waits for its own grant,
    // and the grants asked ahead are withdrawn or used.
    const after = await loopAhead(worker, controller, 100, 100);
    assert.ok(after.every((a) => a >= 0 && a <= 16), String(after));
    assert.equal(after[after.length - 1], 0, String(after));
    assert.equal(worker.surplus, 0);
  });

  test('a bad askAhead is INVALID_ARGUMENT', () => {
    for (const bad of [-1, 1.5, '16', null]) {
      assert.throws(
        () => throttle('bad', { askAhead: bad }),
        (error) => error.codeName === 'INVALID_ARGUMENT' && /askAhead/.test(error.details),
      );
    }
  });
});
