// The adaptive ceiling through the Node client against the real server:
// create() with adaptive settings (defaults filled in when listed),
// report() of outcomes moving the rate (info.currentMaxN, also in
// latest() with workers and in watch snapshots), update() of
// adaptive alone, and the errors: FAILED_PRECONDITION on a throttle that
// is not adaptive, INVALID_ARGUMENT naming the count, TypeError for an
// unknown adaptive setting. Waits are on conditions with generous
// deadlines.
'use strict';

const assert = require('node:assert/strict');
const { describe, test } = require('node:test');
const { ThrottleError } = require('..');
const { serverFixture, waitFor } = require('./support');

describe('adaptive ceiling', () => {
  const fixture = serverFixture();
  const throttle = fixture.throttle;

  test('defaults are filled in and the rate starts at maxN', async () => {
    const t = throttle('adaptive-defaults');
    const info = await t.create(100, 1, { adaptive: {} });
    assert.deepEqual(info.adaptive, {
      floorN: 1,
      targetRejectionRatio: 0.05,
      window: 1,
      increaseN: 1,
      decreaseFactor: 0.5,
      minOutcomes: 10,
    });
    assert.equal(info.currentMaxN, 100);
    assert.equal((await throttle('adaptive-none').create(100, 1)).adaptive, null);
  });

  test('reported rejections lower the rate', async () => {
    const t = throttle('adaptive-report');
    await t.create(100, 1, {
      adaptive: { floorN: 10, window: 0.1, decreaseFactor: 0.5, minOutcomes: 1 },
    });
    await t.start();
    assert.equal(await t.report({ rejections: 10 }), 100);
    // The window of 100 ms ends: the server halves the rate.
    assert.ok(await waitFor(async () => (await t.info()).currentMaxN === 50));
    assert.equal((await t.info()).maxN, 100); // the ceiling stays
    // latest() with workers and every watch snapshot carry the rate in
    // effect too; the plain latest() stays the seed's pair.
    assert.equal((await t.latest(1, { includeWorkers: true })).currentMaxN, 50);
    const pair = await t.latest(1);
    assert.ok(Array.isArray(pair) && pair.length === 2, `${pair}`);
    const watch = t.watch({ interval: 0.1 });
    try {
      const { value } = await watch.next();
      assert.deepEqual([value.info.currentMaxN, value.info.maxN], [50, 100]);
    } finally {
      watch.cancel();
    }
  });

  test('update of adaptive alone', async () => {
    const t = throttle('adaptive-update');
    await t.create(100, 1, { mode: 'window' });
    const info = await t.update({ adaptive: { floorN: 20 } });
    assert.equal(info.adaptive.floorN, 20);
    assert.equal(info.mode, 'window');
    assert.equal((await t.update({ adaptive: null })).adaptive, null);
  });

  test('errors', async () => {
    const plain = throttle('adaptive-plain');
    await plain.create(100, 1);
    await plain.start();
    await assert.rejects(plain.report({ successes: 1 }), (error) => {
      assert.ok(error instanceof ThrottleError);
      assert.equal(error.codeName, 'FAILED_PRECONDITION');
      return true;
    });
    const t = throttle('adaptive-bad');
    await t.create(100, 1, { adaptive: { minOutcomes: 1 } });
    await t.start();
    await assert.rejects(t.report({ successes: -1 }), (error) => {
      assert.equal(error.codeName, 'INVALID_ARGUMENT');
      assert.match(error.message, /successes must be in \[0, 1000000\], got -1/);
      return true;
    });
    await assert.rejects(
      throttle('adaptive-floor').create(100, 1, { adaptive: { floorN: 200 } }),
      (error) => {
        assert.match(error.message, /config\.adaptive\.floor_n/);
        return true;
      },
    );
    await assert.rejects(
      throttle('adaptive-type').create(100, 1, { adaptive: { floor: 2 } }),
      TypeError,
    );
  });
});
