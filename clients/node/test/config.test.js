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
