// Graceful degradation in the Node client (docs/DECISIONS.md, "Graceful
// degradation"): the local pacing bound on a fake clock (LocalShare, times
// the test passes), and workers through a real server killed with SIGKILL
// and restarted with its --state_dir, so that the throttle comes back
// running.
'use strict';

const assert = require('node:assert/strict');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { describe, test } = require('node:test');
const { FuelOutcome, Throttle, ThrottleError } = require('..');
const { LocalShare, WAIT, LOCAL, FAIL_FAST } = require('../degrade');
const { GENEROUS, Server, waitFor } = require('./support');

const UNAVAILABLE = 14;

function policy(degradation, localShareForS, share) {
  return {
    grants: 1,
    degradation,
    local_share_for: { seconds: Math.floor(localShareForS), nanos: 0 },
    share_per_second: share,
  };
}

function takeAll(local, now) {
  let got = 0;
  while (local.take(1000, now) === 1) got += 1;
  return got;
}

describe('LocalShare on a fake clock', () => {
  test('pacing never exceeds share x elapsed + 1', () => {
    const local = new LocalShare();
    const share = 7.3;
    local.update(policy('DEGRADATION_LOCAL_SHARE', 60, share));
    let now = 1e6;
    const lost = now;
    local.serverLost(now);
    let total = 0;
    let seed = 4;
    while (now - lost < 50000) {
      total += takeAll(local, now);
      assert.ok(total <= Math.floor((share * (now - lost)) / 1000) + 1, `at ${now - lost} ms`);
      seed = (seed * 1103515245 + 12345) % 2 ** 31;
      now += 1 + (seed % 300);
    }
    assert.ok(total > 0);
  });

  test('a waiter polled often gets about the share', () => {
    const local = new LocalShare();
    local.update(policy('DEGRADATION_LOCAL_SHARE', 20, 50));
    local.serverLost(0);
    let total = 0;
    for (let ms = 0; ms < 10000; ms++) total += takeAll(local, ms);
    assert.ok(total <= 501, `${total}`);
    assert.ok(total >= 490, `${total}`);
  });

  test('stops after local_share_for, then fails fast', () => {
    const local = new LocalShare();
    local.update(policy('DEGRADATION_LOCAL_SHARE', 2, 10));
    local.serverLost(0);
    let total = 0;
    for (let ms = 0; ms < 2000; ms += 10) {
      assert.equal(local.action(ms), LOCAL);
      total += takeAll(local, ms);
    }
    assert.equal(total, 20);
    assert.equal(local.action(2000), FAIL_FAST);
    assert.equal(takeAll(local, 7000), 0);
    assert.equal(local.nextChange(2000), Infinity);
  });

  test('server back stops local grants at once; a new outage starts afresh', () => {
    const local = new LocalShare();
    local.update(policy('DEGRADATION_LOCAL_SHARE', 1, 10));
    local.serverLost(0);
    assert.equal(local.take(1, 900), 1);
    local.serverBack();
    assert.equal(local.action(1000), WAIT);
    assert.equal(local.take(1, 5000), 0);
    local.serverLost(10000);
    assert.equal(local.action(10900), LOCAL);
    local.serverLost(10900); // changes nothing
    assert.equal(local.action(11100), FAIL_FAST);
  });

  test('other policies never grant locally; a message without policy keeps it', () => {
    const wait = new LocalShare();
    wait.serverLost(0);
    assert.equal(wait.action(0), WAIT);
    assert.equal(wait.take(1, 0), 0);
    const failFast = new LocalShare();
    failFast.update(policy('DEGRADATION_FAIL_FAST', 0, 10));
    assert.equal(failFast.action(0), WAIT);
    failFast.serverLost(0);
    assert.equal(failFast.action(0), FAIL_FAST);
    const noShare = new LocalShare();
    noShare.update(policy('DEGRADATION_LOCAL_SHARE', 10, 0));
    noShare.serverLost(0);
    assert.equal(noShare.action(0), FAIL_FAST);
    const kept = new LocalShare();
    kept.update(policy('DEGRADATION_LOCAL_SHARE', 3, 4));
    kept.update({ grants: 1, degradation: 'DEGRADATION_UNSPECIFIED', share_per_second: 0 });
    assert.equal(kept.sharePerSecond, 4);
    assert.equal(kept.localShareForMs, 3000);
  });
});

// A worker loop on a handle of its own, counting grants until stopped.
function worker(address, name) {
  const w = { grants: 0, errors: [], done: false };
  w.throttle = new Throttle(address, name, { backoffInitial: 0.02, backoffMax: 0.5 });
  w.running = (async () => {
    try {
      while (!w.done) {
        if ((await w.throttle.awaitFuel(GENEROUS)) === FuelOutcome.FUEL) w.grants += 1;
      }
    } catch (error) {
      if (!w.done) w.errors.push(error);
    }
  })();
  w.close = async () => {
    w.done = true;
    w.throttle.close();
    await w.running;
  };
  return w;
}

describe('degradation against a real server', () => {
  const servers = [];
  const stateDir = () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'throttle_degrade.'));
    return path.join(dir, 'state');
  };
  const serve = async (spec, state, port = 0) => {
    const server = await new Server([`--throttle=${spec}`, `--state_dir=${state}`], port).start();
    servers.push(server);
    return server;
  };
  const kill = async (server) => {
    const child = server.process;
    server.process = null;
    child.kill('SIGKILL');
    await new Promise((resolve) => (child.exitCode !== null || child.signalCode !== null
      ? resolve()
      : child.once('exit', resolve)));
  };
  const { after } = require('node:test');
  after(async () => {
    for (const s of servers) await s.close();
  });

  test('local share carries workers through a server kill', async () => {
    const rate = 40;
    const spec = 'degrade max_n=40 per=1 degradation=local_share local_share_for=60s';
    const state = stateDir();
    const first = await serve(spec, state);
    const control = new Throttle(first.address, 'degrade');
    await control.start();
    control.close();
    const workers = [worker(first.address, 'degrade'), worker(first.address, 'degrade')];
    try {
      assert.ok(await waitFor(() => workers.every((w) => w.grants >= 5)));
      await kill(first);
      const killed = performance.now();
      const before = workers.map((w) => w.grants);
      const local = () => workers.reduce((sum, w, i) => sum + w.grants - before[i], 0);
      assert.ok(await waitFor(() => workers.every((w, i) => w.grants > before[i]) && local() >= rate));
      const outage = (performance.now() - killed) / 1000;
      // Within the fleet's rate from the kill: one grant per worker at the
      // outage's start, one more each that may have been on its way.
      assert.ok(local() <= rate * outage + 2 * 2, `${local()} in ${outage} s`);
      assert.deepEqual(workers.map((w) => w.errors), [[], []]);

      const restarted = await serve(spec, state, first.port);
      const again = new Throttle(restarted.address, 'degrade');
      try {
        const stored = (await again.info()).totalEmissions;
        const back = workers.map((w) => w.grants);
        assert.ok(await waitFor(async () => (await again.info()).totalEmissions >= stored + 10
          && workers.every((w, i) => w.grants > back[i])));
        assert.deepEqual(workers.map((w) => w.errors), [[], []]);
      } finally {
        again.close();
      }
    } finally {
      for (const w of workers) await w.close();
    }
  });

  test('fail fast rejects with UNAVAILABLE until the server is back', async () => {
    const spec = 'ff max_n=100 per=1 degradation=fail_fast';
    const state = stateDir();
    const first = await serve(spec, state);
    const tank = new Throttle(first.address, 'ff', { backoffInitial: 0.02, backoffMax: 0.5 });
    try {
      await tank.start();
      assert.ok(await tank.awaitFuel(GENEROUS));
      await kill(first);
      const asked = performance.now();
      await assert.rejects(tank.awaitFuel(GENEROUS), (error) => error instanceof ThrottleError
        && error.code === UNAVAILABLE);
      assert.ok(performance.now() - asked < (GENEROUS / 2) * 1000);
      await serve(spec, state, first.port);
      assert.ok(await waitFor(async () => {
        try {
          return Boolean(await tank.awaitFuel(GENEROUS));
        } catch (error) {
          assert.equal(error.code, UNAVAILABLE);
          return false;
        }
      }));
    } finally {
      tank.close();
    }
  });

  test('after local_share_for waits reject with UNAVAILABLE', async () => {
    const spec = 'short max_n=20 per=1 degradation=local_share local_share_for=1s';
    const server = await serve(spec, stateDir());
    const tank = new Throttle(server.address, 'short', { backoffInitial: 0.02, backoffMax: 0.5 });
    try {
      await tank.start();
      assert.ok(await tank.awaitFuel(GENEROUS));
      await kill(server);
      const killed = performance.now();
      let local = 0;
      let failure = null;
      try {
        while (await tank.awaitFuel(GENEROUS)) local += 1;
      } catch (error) {
        failure = error;
      }
      assert.ok(failure instanceof ThrottleError, `${failure}`);
      assert.equal(failure.code, UNAVAILABLE);
      assert.ok(local > 0);
      assert.ok(local <= 21, `${local}`); // 20/s alone for 1 s, + 1
      assert.ok(performance.now() - killed >= 1000);
    } finally {
      tank.close();
    }
  });
});
