// Deadline-aware admission against the real server: awaitFuel(timeout,
// { failIfLate: true }) resolves TOO_LATE at once -- well before its
// timeout -- when the next grant is an hour away; awaitFuelCount gives the
// expected wait (and the grants got before); checkFuel() the retry-after;
// where the grant is near, a failIfLate wait gets it.
'use strict';

const assert = require('node:assert/strict');
const { describe, test } = require('node:test');
const { FuelOutcome } = require('..');
const { GENEROUS, serverFixture } = require('./support');

const HOUR = 3600;
// A timeout the hour-away grant cannot meet, long enough that waiting it
// out would show.
const TIMEOUT = 30;

describe('deadline-aware admission', () => {
  const fixture = serverFixture();
  const hourly = async (name) => {
    const t = fixture.throttle(name);
    await t.create(1, HOUR);
    await t.start();
    return t;
  };

  test('too late is told at once with the expected wait', async () => {
    const t = await hourly('hourly');
    assert.equal(await t.awaitFuel(TIMEOUT), FuelOutcome.FUEL);
    const started = performance.now();
    const outcome = await t.awaitFuel(TIMEOUT, { failIfLate: true });
    assert.equal(outcome, FuelOutcome.TOO_LATE);
    assert.ok(outcome.tooLate);
    assert.equal(String(outcome), 'too_late');
    const result = await t.awaitFuelCount(1, TIMEOUT, { failIfLate: true });
    assert.ok((performance.now() - started) / 1000 < TIMEOUT);
    assert.equal(result.outcome, FuelOutcome.TOO_LATE);
    assert.equal(result.grants, 0);
    assert.ok(result.expectedWait > HOUR - 60, String(result.expectedWait));
    assert.ok(result.expectedWait <= HOUR, String(result.expectedWait));
    assert.equal(t.killFlag.isSet(), false);
    assert.equal((await t.info()).totalEmissions, 1);
  });

  test('the check repeats after each grant', async () => {
    const t = await hourly('hourly_n');
    // The first of two is free, the second an hour on.
    const result = await t.awaitFuelCount(2, TIMEOUT, { failIfLate: true });
    assert.equal(result.outcome, FuelOutcome.TOO_LATE);
    assert.equal(result.grants, 1);
    assert.ok(result.expectedWait > HOUR - 60, String(result.expectedWait));
    assert.equal((await t.info()).totalEmissions, 1);
  });

  test('checkFuel gives the retry-after', async () => {
    const t = await hourly('hourly_check');
    assert.deepEqual(await t.checkFuel(), { granted: true, stopped: false, retryAfter: null });
    const later = await t.checkFuel();
    assert.equal(later.granted, false);
    assert.equal(later.stopped, false);
    assert.ok(later.retryAfter > HOUR - 60, String(later.retryAfter));
    assert.ok(later.retryAfter <= HOUR, String(later.retryAfter));
    assert.equal(await t.hasFuel(), false);
    await t.stop();
    assert.deepEqual(await t.checkFuel(), { granted: false, stopped: true, retryAfter: null });
  });

  test('a near grant is waited for', async () => {
    const t = fixture.throttle('fast');
    await t.create(100, 1);
    await t.start();
    for (let i = 0; i < 5; i++) {
      assert.equal(await t.awaitFuel(GENEROUS, { failIfLate: true }), FuelOutcome.FUEL);
    }
    const result = await t.awaitFuelCount(3, GENEROUS, { failIfLate: true });
    assert.deepEqual(result, { outcome: FuelOutcome.FUEL, grants: 3 });
  });
});
