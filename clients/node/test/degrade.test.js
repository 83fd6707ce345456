// Graceful degradation in the Node client (docs/DECISIONS.md, "Graceful
// degradation"; docs/clients.md, "When the server is gone"): the local
// pacing bound and the AwaitFuel path's steps on a fake clock (LocalShare,
// times the test passes), and workers -- on the Acquire stream and by
// AwaitFuel calls -- through a real server killed with SIGKILL and
// restarted with its --state_dir, so that the throttle comes back running;
// and the AwaitFuel fallback against an in-process server without Acquire.
'use strict';

const assert = require('node:assert/strict');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { describe, test } = require('node:test');
const { FuelOutcome, Throttle, ThrottleError } = require('..');
const { LocalShare, WAIT, LOCAL, FAIL_FAST } = require('../degrade');
const { GENEROUS, Server, sleep, waitFor } = require('./support');

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

// The AwaitFuel path's step after a failed attempt (LocalShare.awaitStep),
// on a fake clock: the same record and pacer as the stream's take().
describe('AwaitFuel waits on a fake clock', () => {
  const outage = (degradation, localShareForS, share, lostAt = 0) => {
    const local = new LocalShare();
    local.update(policy(degradation, localShareForS, share));
    local.serverLost(lostAt);
    return local;
  };

  test('wait retries, fail fast fails, also before any outage is over', () => {
    const wait = new LocalShare();
    wait.serverLost(0);
    assert.deepEqual(wait.awaitStep(1, 0, 100), { grants: 0, next: 'retry' });
    assert.equal(wait.waitsForServer, true);
    const failFast = outage('DEGRADATION_FAIL_FAST', 0, 10);
    assert.equal(failFast.waitsForServer, false);
    assert.deepEqual(failFast.awaitStep(1, 5, Infinity), { grants: 0, next: 'fail' });
    assert.match(failFast.failDetails('t'), /throttle t: .*degradation: fail fast/);
  });

  test('polls take a local grant only when one is due now', () => {
    const local = outage('DEGRADATION_LOCAL_SHARE', 10, 4); // one per 250 ms
    assert.equal(local.waitsForServer, false);
    assert.deepEqual(local.awaitStep(1, 0, 0), { grants: 1, next: 'fuel' });
    assert.deepEqual(local.awaitStep(1, 100, 100), { grants: 0, next: 'timed_out' });
    assert.deepEqual(local.awaitStep(1, 249, 249), { grants: 0, next: 'timed_out' });
    assert.deepEqual(local.awaitStep(1, 250, 250), { grants: 1, next: 'fuel' });
    // A poll for three gets the one due.
    assert.deepEqual(local.awaitStep(3, 600, 600), { grants: 1, next: 'timed_out' });
  });

  test('polls and stream waiters share one pacer: share x elapsed + 1 in all', () => {
    const local = outage('DEGRADATION_LOCAL_SHARE', 60, 5);
    let total = 0;
    for (let ms = 0; ms <= 10000; ms += 7) {
      // A poll, then a stream waiter (take()), at the same instant.
      total += local.awaitStep(1, ms, ms).grants;
      total += local.take(1, ms);
      assert.ok(total <= Math.floor((5 * ms) / 1000) + 1, `${total} at ${ms} ms`);
    }
    assert.ok(total >= 50, `${total}`);
  });

  test('a wait sleeps until its next local grant, within its timeout', () => {
    const local = outage('DEGRADATION_LOCAL_SHARE', 10, 2); // one per 500 ms
    assert.deepEqual(local.awaitStep(1, 0, 5000), { grants: 1, next: 'fuel' });
    assert.deepEqual(local.awaitStep(1, 100, 5000), { grants: 0, next: 'sleep', wakeAt: 500 });
    // No fail-if-late: a grant due after the timeout lets the timeout pass.
    assert.deepEqual(local.awaitStep(1, 100, 300), { grants: 0, next: 'sleep', wakeAt: 500 });
    assert.deepEqual(local.awaitStep(1, 500, 5000), { grants: 1, next: 'fuel' });
    // Two missing: one now, then sleep until the next.
    assert.deepEqual(local.awaitStep(2, 1000, 5000), { grants: 1, next: 'sleep', wakeAt: 1500 });
  });

  test('fail-if-late is too late at once when the next local grant is after the timeout', () => {
    const local = outage('DEGRADATION_LOCAL_SHARE', 10, 2, 1000);
    assert.deepEqual(local.awaitStep(1, 1000, 1100, true), { grants: 1, next: 'fuel' });
    assert.deepEqual(local.awaitStep(1, 1100, 1300, true), {
      grants: 0,
      next: 'too_late',
      expectedWaitMs: 400,
    });
    assert.deepEqual(local.awaitStep(1, 1100, 1500, true), {
      grants: 0,
      next: 'sleep',
      wakeAt: 1500,
    });
  });

  test('fail-if-late expects no grant when local granting ends before the next one', () => {
    const local = outage('DEGRADATION_LOCAL_SHARE', 1, 2); // one per 500 ms for 1 s
    assert.deepEqual(local.awaitStep(1, 0, 0), { grants: 1, next: 'fuel' });
    assert.deepEqual(local.awaitStep(1, 600, 600), { grants: 1, next: 'fuel' });
    // The next would be at 1100 ms, after local granting ends at 1000 ms.
    assert.deepEqual(local.awaitStep(1, 700, 800, true), {
      grants: 0,
      next: 'too_late',
      expectedWaitMs: Infinity,
    });
  });

  test('after local_share_for: as fail fast; the server back: as wait', () => {
    const local = outage('DEGRADATION_LOCAL_SHARE', 1, 100);
    assert.equal(local.awaitStep(1, 0, 0).next, 'fuel');
    // The last local grant's wake-up is the end of sharing at the latest.
    local.take(1, 995);
    assert.deepEqual(local.awaitStep(1, 996, 5000), { grants: 0, next: 'sleep', wakeAt: 1000 });
    assert.deepEqual(local.awaitStep(1, 1000, 5000), { grants: 0, next: 'fail' });
    assert.match(local.failDetails('t'), /no local share left/);
    local.serverBack();
    assert.deepEqual(local.awaitStep(1, 1001, 5000), { grants: 0, next: 'retry' });
  });
});

// An in-process server without Acquire (UNIMPLEMENTED) whose first
// AwaitFuel call gets one grant telling `degradation` and a share of 5 a
// second, and every later one UNAVAILABLE, as from a server gone down.
async function oldServerGoneDown(degradation) {
  const grpc = require('@grpc/grpc-js');
  const { proto } = require('..');
  const server = new grpc.Server();
  let calls = 0;
  server.addService(proto.Throttle.service, {
    AwaitFuel(call) {
      calls += 1;
      if (calls > 1) {
        call.emit('error', { code: grpc.status.UNAVAILABLE, details: 'gone' });
        return;
      }
      call.write({
        grants: 1,
        degradation,
        local_share_for: { seconds: 60, nanos: 0 },
        share_per_second: 5,
      });
      call.end();
    },
  });
  const port = await new Promise((resolve, reject) => {
    server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (error, p) =>
      error ? reject(error) : resolve(p),
    );
  });
  return { address: `127.0.0.1:${port}`, close: () => server.forceShutdown() };
}

describe('the AwaitFuel fallback (a server without Acquire)', () => {
  test('local share: its waits get the local grants at the share', async (t) => {
    const server = await oldServerGoneDown('DEGRADATION_LOCAL_SHARE');
    t.after(() => server.close());
    const tank = new Throttle(server.address, 'old', { backoffInitial: 0.02, backoffMax: 0.1 });
    t.after(() => tank.close());
    assert.equal(await tank.awaitFuel(10), FuelOutcome.FUEL); // the server's
    const lost = performance.now();
    for (let i = 0; i < 6; i++) assert.equal(await tank.awaitFuel(10), FuelOutcome.FUEL);
    // One at the outage's start (after `lost`), then one each 200 ms.
    const elapsed = performance.now() - lost;
    assert.ok(elapsed >= 1000, `${elapsed} ms`);
    assert.ok(tank.local.outage);
  });

  test('fail fast: its wait rejects with UNAVAILABLE at once', async (t) => {
    const server = await oldServerGoneDown('DEGRADATION_FAIL_FAST');
    t.after(() => server.close());
    const tank = new Throttle(server.address, 'old', { backoffInitial: 0.02, backoffMax: 0.1 });
    t.after(() => tank.close());
    assert.equal(await tank.awaitFuel(10), FuelOutcome.FUEL);
    const asked = performance.now();
    await assert.rejects(tank.awaitFuel(GENEROUS), (error) => error instanceof ThrottleError
      && error.code === UNAVAILABLE && /degradation: fail fast/.test(error.message));
    assert.ok(performance.now() - asked < (GENEROUS / 2) * 1000);
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
      // Before the kill: the client may see the stream end before the
      // test sees the process exit.
      const killed = performance.now();
      await kill(first);
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

  // AwaitFuel calls only (polls and fail-if-late waits, no Acquire
  // stream): the outage starts and ends by their answers alone.
  test('local share: polls and fail-if-late waits grant locally within the share', async () => {
    const rate = 4; // one local grant per 250 ms
    const spec = `awl max_n=${rate} per=1 degradation=local_share local_share_for=60s`;
    const state = stateDir();
    const first = await serve(spec, state);
    const tank = new Throttle(first.address, 'awl', { backoffInitial: 0.02, backoffMax: 0.5 });
    try {
      await tank.start();
      // A grant message tells the handle the policy and its share.
      assert.equal(await tank.awaitFuel(GENEROUS, { failIfLate: true }), FuelOutcome.FUEL);
      // Before the kill: the client may see the stream end before the
      // test sees the process exit.
      const killed = performance.now();
      await kill(first);
      let local = 0;
      const tooLate = [];
      const outcomes = new Set();
      assert.ok(await waitFor(async () => {
        for (const timeout of [0, 0.05, 1]) {
          const result = await tank.awaitFuelCount(1, timeout, { failIfLate: true });
          outcomes.add(`${timeout} ${result.outcome}`);
          if (result.outcome === FuelOutcome.FUEL) local += 1;
          if (result.outcome === FuelOutcome.TOO_LATE) tooLate.push(result.expectedWait);
        }
        return local >= 2 * rate && tooLate.length > 0;
      }, 30), `${local} local grants, ${tooLate.length} too late: ${[...outcomes]}`);
      const outage = (performance.now() - killed) / 1000;
      // The handle's one pacer: share x elapsed + 1 from the outage's start.
      assert.ok(local <= rate * outage + 1, `${local} in ${outage} s`);
      // Too late: the next local grant was due after the 50 ms timeout, and
      // within 250 ms (the expected wait is counted from the failed attempt).
      for (const wait of tooLate) assert.ok(wait > 0 && wait <= 0.25, `${wait}`);
      assert.ok(tank.local.outage);

      const restarted = await serve(spec, state, first.port);
      const again = new Throttle(restarted.address, 'awl');
      try {
        const stored = (await again.info()).totalEmissions;
        // The server's grants again: emissions it counts, the outage over.
        assert.ok(await waitFor(async () => {
          await tank.awaitFuel(1, { failIfLate: true });
          return !tank.local.outage && (await again.info()).totalEmissions > stored;
        }));
      } finally {
        again.close();
      }
    } finally {
      tank.close();
    }
  });

  // One record and one pacer per handle: the policy only the stream was
  // told, and the outage only the stream saw, apply to its polls; the
  // stream's waiters and the polls share the local grants.
  test('local share: a handle\'s stream and polls share one pacer', async () => {
    const rate = 10;
    const spec = `shared max_n=${rate} per=1 degradation=local_share local_share_for=60s`;
    const first = await serve(spec, stateDir());
    const tank = new Throttle(first.address, 'shared', { backoffInitial: 0.02, backoffMax: 0.5 });
    const counts = { stream: 0, polls: 0, errors: [] };
    let done = false;
    try {
      await tank.start();
      assert.equal(await tank.awaitFuel(GENEROUS), FuelOutcome.FUEL); // the stream
      const killed = performance.now();
      await kill(first);
      // The stream's worker works 150 ms on each grant, so that some of the
      // grants (one each 100 ms) fall due while nobody waits and the polls
      // get them: a worker always waiting took every grant as it fell due,
      // and under load the polls got 1 of 300 in 30 s.
      const streaming = (async () => {
        try {
          while (!done) {
            if ((await tank.awaitFuel(1)) !== FuelOutcome.FUEL) continue;
            counts.stream += 1;
            await sleep(0.15);
          }
        } catch (error) {
          if (!done) counts.errors.push(error);
        }
      })();
      assert.ok(await waitFor(async () => {
        if ((await tank.awaitFuel(0)) === FuelOutcome.FUEL) counts.polls += 1;
        return counts.polls >= 3 && counts.stream >= 3;
      }, 30), JSON.stringify(counts));
      const outage = (performance.now() - killed) / 1000;
      done = true;
      const local = counts.stream + counts.polls;
      // The share was the whole rate (the stream was the only one); one
      // pacer for both: share x elapsed + 1 from the outage's start, which
      // is after `killed`.
      assert.ok(local <= rate * outage + 1, `${local} in ${outage} s`);
      assert.deepEqual(counts.errors, []);
      tank.close();
      await streaming;
    } finally {
      done = true;
      tank.close();
    }
  });

  test('fail fast: a poll and a fail-if-late wait reject with UNAVAILABLE at once', async () => {
    const spec = 'awf max_n=100 per=1 degradation=fail_fast';
    const state = stateDir();
    const first = await serve(spec, state);
    const tank = new Throttle(first.address, 'awf', { backoffInitial: 0.02, backoffMax: 0.5 });
    const unavailable = (error) => error instanceof ThrottleError && error.code === UNAVAILABLE;
    try {
      await tank.start();
      assert.ok(await waitFor(async () => (await tank.awaitFuel(0)) === FuelOutcome.FUEL));
      await kill(first);
      const asked = performance.now();
      await assert.rejects(tank.awaitFuel(0), unavailable);
      await assert.rejects(tank.awaitFuel(GENEROUS, { failIfLate: true }), unavailable);
      await assert.rejects(tank.awaitFuel(0), unavailable);
      assert.ok(performance.now() - asked < (GENEROUS / 2) * 1000);

      await serve(spec, state, first.port);
      assert.ok(await waitFor(async () => {
        try {
          return (await tank.awaitFuel(GENEROUS, { failIfLate: true })) === FuelOutcome.FUEL;
        } catch (error) {
          assert.equal(error.code, UNAVAILABLE);
          return false;
        }
      }));
      assert.equal(tank.local.outage, false);
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
      // Before the kill: the client may see the stream end before the
      // test sees the process exit.
      const killed = performance.now();
      await kill(server);
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
