// Priorities against the real server: two workers of different classes
// (new Throttle(..., { priority })) wait on one throttle; when it starts,
// the higher class gets the fuel first and the lower one the grant after;
// a bad class is INVALID_ARGUMENT naming it.
'use strict';

const assert = require('node:assert/strict');
const { describe, test } = require('node:test');
const { FuelOutcome } = require('..');
const { GENEROUS, awaitWaiting, serverFixture } = require('./support');

// One grant per this many seconds: the lower class's comes that long after
// the higher class's, so the order is plain on a loaded machine too.
const PER = 5;

describe('priorities', () => {
  const fixture = serverFixture();

  test('the higher class gets the fuel while both wait', async () => {
    const low = fixture.throttle('prio', { workerId: 'low', priority: 0 });
    const high = fixture.throttle('prio', { workerId: 'high', priority: 7 });
    await low.create(1, PER);
    // Both wait before the throttle starts, the lower class first.
    const order = [];
    const lowDone = low.awaitFuel(GENEROUS + PER).then((outcome) => {
      order.push('low');
      return outcome;
    });
    assert.ok(await awaitWaiting(low, 1));
    const highDone = high.awaitFuel(GENEROUS).then((outcome) => {
      order.push('high');
      return outcome;
    });
    assert.ok(await awaitWaiting(low, 2));
    await low.start();
    assert.equal(await highDone, FuelOutcome.FUEL);
    // The grant was the higher class's: the lower one still waits.
    assert.deepEqual(order, ['high']);
    assert.equal((await low.info()).waitingStreams, 1);
    assert.equal(await lowDone, FuelOutcome.FUEL);
    assert.deepEqual(order, ['high', 'low']);
    assert.equal((await low.info()).totalEmissions, 2);
  });

  test('the starvation bound is created, listed and updated', async () => {
    const t = fixture.throttle('prio_bound');
    assert.equal((await t.create(10, 1, { starvationBound: 2.5 })).starvationBound, 2.5);
    assert.equal((await t.info()).starvationBound, 2.5);
    const info = await t.update({ starvationBound: 4 });
    assert.equal(info.starvationBound, 4);
    assert.equal(info.maxN, 10);
    assert.equal((await t.update({ starvationBound: null })).starvationBound, 0);
    await assert.rejects(t.update({ starvationBound: -1 }), (error) => {
      assert.equal(error.codeName, 'INVALID_ARGUMENT');
      assert.match(error.details, /config\.starvation_bound/);
      return true;
    });
  });

  test('a bad class is INVALID_ARGUMENT naming it', async () => {
    const t = fixture.throttle('prio_bad', { priority: 10 });
    await t.create(10, 1);
    await t.start();
    await assert.rejects(t.awaitFuel(GENEROUS), (error) => {
      assert.equal(error.codeName, 'INVALID_ARGUMENT');
      assert.match(error.details, /priority must be in \[0, 9\], got 10/);
      return true;
    });
  });
});
