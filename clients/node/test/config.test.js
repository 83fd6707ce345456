// update() against the real server: a partial configure
// (ConfigureThrottleRequest.update_mask) changes only the settings given
// and keeps the others; configure() still replaces the config whole.
'use strict';

const assert = require('node:assert/strict');
const { describe, test } = require('node:test');
const { ThrottleError } = require('..');
const { serverFixture } = require('./support');

describe('update', () => {
  const fixture = serverFixture();
  const throttle = fixture.throttle;

  test('keeps the settings not given', async () => {
    // The case: maxN 200 on a bucket throttle with burst 20 turned
    // it smooth. update() sends a mask of max_n only.
    const t = throttle('partial');
    await t.create(100, 60, { mode: 'bucket', burst: 20, manualEmit: true, catchUp: 0.5 });
    const info = await t.update({ maxN: 200 });
    assert.equal(info.maxN, 200);
    assert.equal(info.per, 60);
    assert.equal(info.mode, 'bucket');
    assert.equal(info.burst, 20);
    assert.equal(info.manualEmit, true);
    assert.equal(info.catchUp, 0.5);
    assert.deepEqual(await t.info(), info);
    // catchUp null is in the mask: the server's default (1% of per) again.
    assert.equal((await t.update({ catchUp: null })).catchUp, 0.6);
    assert.equal((await t.info()).burst, 20);
  });

  test('a mode switch drops the burst unless given', async () => {
    const t = throttle('partial-mode');
    await t.create(100, 60, { mode: 'bucket', burst: 20 });
    const info = await t.update({ mode: 'smooth' });
    assert.deepEqual([info.mode, info.burst, info.maxN], ['smooth', 0, 100]);
    await assert.rejects(t.update({ mode: 'window', burst: 5 }), (error) => {
      assert.ok(error instanceof ThrottleError);
      assert.equal(error.codeName, 'INVALID_ARGUMENT');
      assert.match(error.details, /burst/);
      return true;
    });
    assert.equal((await t.info()).mode, 'smooth'); // unchanged
  });

  test('an unknown setting or none is a TypeError', async () => {
    const t = throttle('partial-none');
    await t.create(1, 1);
    await assert.rejects(t.update({}), TypeError);
    await assert.rejects(t.update({ max_n: 3 }), TypeError);
    await assert.rejects(t.update({ mode: 'turbo' }), RangeError);
  });

  test('configure still replaces the config whole', async () => {
    const t = throttle('partial-whole');
    await t.create(100, 60, { mode: 'bucket', burst: 20 });
    const info = await t.configure(200, 60);
    assert.deepEqual([info.mode, info.burst], ['smooth', 0]);
  });
});

describe('warm-up settings', () => {
  const fixture = serverFixture();
  const throttle = fixture.throttle;

  test('given to create, listed with the default fraction filled in', async () => {
    const t = throttle('warm');
    const info = await t.create(100, 1, { warmUp: 30 });
    assert.equal(info.warmUp, 30);
    assert.ok(Math.abs(info.warmUpFrom - 1 / 3) < 1e-12);
    assert.deepEqual(await t.info(), info);
    const half = await t.configure(100, 1, { warmUp: 1.5, warmUpFrom: 0.5 });
    assert.deepEqual([half.warmUp, half.warmUpFrom], [1.5, 0.5]);
    // Without a warm-up both are 0.
    const none = await t.configure(100, 1);
    assert.deepEqual([none.warmUp, none.warmUpFrom], [0, 0]);
  });

  test('update changes only the warm-up fields given', async () => {
    const t = throttle('warm-partial');
    await t.create(100, 60, { mode: 'bucket', burst: 20, warmUp: 10, warmUpFrom: 0.25 });
    const info = await t.update({ warmUpFrom: 0.5 });
    assert.deepEqual([info.warmUp, info.warmUpFrom, info.burst], [10, 0.5, 20]);
    const off = await t.update({ warmUp: null });
    assert.deepEqual([off.warmUp, off.mode, off.burst], [0, 'bucket', 20]);
  });

  test('a bad value is INVALID_ARGUMENT naming the field and the value', async () => {
    const t = throttle('warm-bad');
    const rejects = (settings, pattern) =>
      assert.rejects(t.create(10, 1, settings), (error) => {
        assert.ok(error instanceof ThrottleError);
        assert.equal(error.codeName, 'INVALID_ARGUMENT');
        assert.match(error.details, pattern);
        return true;
      });
    await rejects({ warmUp: -1 }, /warm_up must be in \[0, 30 days\], got -1s/);
    await rejects({ warmUp: 31 * 86400 }, /warm_up must be in \[0, 30 days\], got 744h/);
    await rejects({ warmUp: 5, warmUpFrom: 1.5 }, /warm_up_from must be in \(0, 1\].*got 1\.5/);
    await rejects({ warmUp: 5, warmUpFrom: -0.1 }, /warm_up_from .*got -0\.1/);
    // Refused by the client before any call: not a finite number.
    await rejects({ warmUp: Infinity }, /warmUp: Infinity/);
    await rejects({ warmUp: 5, warmUpFrom: 'half' }, /warmUpFrom: half/);
  });
});

describe('degradation settings', () => {
  const fixture = serverFixture();
  const throttle = fixture.throttle;
  const invalidArgument = (pattern) => (error) => {
    assert.ok(error instanceof ThrottleError, `${error}`);
    assert.equal(error.codeName, 'INVALID_ARGUMENT');
    assert.match(error.details, pattern);
    return true;
  };

  test('given to create and configure, listed by info', async () => {
    const t = throttle('degrade-config');
    const info = await t.create(100, 1, { degradation: 'local_share', localShareFor: 30 });
    assert.deepEqual([info.degradation, info.localShareFor], ['local_share', 30]);
    assert.deepEqual(await t.info(), info);
    const failFast = await t.configure(100, 1, { degradation: 'fail_fast' });
    assert.deepEqual([failFast.degradation, failFast.localShareFor], ['fail_fast', 0]);
    // configure replaces whole: unset is wait again (listed unspecified).
    const wait = await t.configure(100, 1);
    assert.deepEqual([wait.degradation, wait.localShareFor], ['wait', 0]);
    // The proto's names are taken too.
    const named = await t.configure(100, 1, { degradation: 'DEGRADATION_FAIL_FAST' });
    assert.equal(named.degradation, 'fail_fast');
    assert.equal((await throttle('degrade-default').create(1, 1)).degradation, 'wait');
  });

  test('update changes only the degradation fields given', async () => {
    const t = throttle('degrade-partial');
    await t.create(100, 60, { mode: 'bucket', burst: 20 });
    const local = await t.update({ degradation: 'local_share', localShareFor: 2.5 });
    assert.deepEqual(
      [local.degradation, local.localShareFor, local.mode, local.burst],
      ['local_share', 2.5, 'bucket', 20],
    );
    assert.equal((await t.update({ localShareFor: 600 })).localShareFor, 600);
    // Fail fast needs local_share_for unset: null takes it out.
    const failFast = await t.update({ degradation: 'fail_fast', localShareFor: null });
    assert.deepEqual([failFast.degradation, failFast.localShareFor], ['fail_fast', 0]);
    assert.equal((await t.update({ degradation: null })).degradation, 'wait');
    assert.equal((await t.info()).burst, 20);
  });

  test('a bad value is INVALID_ARGUMENT naming the field and the value', async () => {
    const t = throttle('degrade-bad');
    // Refused by the client before any call.
    await assert.rejects(
      t.create(10, 1, { degradation: 'retry' }),
      invalidArgument(/degradation: "retry": one of wait, fail_fast, local_share/),
    );
    await assert.rejects(
      t.create(10, 1, { degradation: 3 }),
      invalidArgument(/degradation: 3: one of/),
    );
    await assert.rejects(
      t.create(10, 1, { degradation: 'local_share', localShareFor: '1m' }),
      invalidArgument(/localShareFor: 1m: a finite number of seconds/),
    );
    // Judged by the server, whose message names the field and the value.
    await assert.rejects(
      t.create(10, 1, { degradation: 'local_share' }),
      invalidArgument(/config\.local_share_for must be in \(0, 1 hour\].*got 0/),
    );
    await assert.rejects(
      t.create(10, 1, { degradation: 'local_share', localShareFor: 3601 }),
      invalidArgument(/config\.local_share_for .*got 1h1s/),
    );
    await assert.rejects(
      t.create(10, 1, { degradation: 'fail_fast', localShareFor: 5 }),
      invalidArgument(/config\.local_share_for .*unset otherwise, got 5s/),
    );
    await t.create(10, 1);
    await assert.rejects(t.update({ degradation: 'later' }), invalidArgument(/"later"/));
    await assert.rejects(t.update({ localShareFor: 5 }), invalidArgument(/got 5s/));
    assert.equal((await t.info()).degradation, 'wait'); // unchanged
  });
});
