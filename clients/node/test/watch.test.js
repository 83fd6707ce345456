// Throttle.watch() (watch.js) against the real server: the first snapshot at
// once, then about one per interval; a stop shows state stopped with
// changed true; a delete ends the watch with NOT_FOUND; a bad interval is
// INVALID_ARGUMENT naming it; cancel() and `break` end it and free the
// stream on the server; the Throttle's close() ends it with CANCELLED; a
// process with a cancelled watch exits; a watch goes on across a server
// restart. Waits are on conditions with generous deadlines.
'use strict';

const assert = require('node:assert/strict');
const childProcess = require('node:child_process');
const path = require('node:path');
const { describe, test } = require('node:test');
const { Throttle, ThrottleError } = require('..');
const { GENEROUS, sleep, waitFor, Server, serverFixture, freePorts } = require('./support');

// Asserts that `promise` rejects with a ThrottleError of `codeName` whose
// details match `details`.
async function rejectsWith(promise, codeName, details) {
  await assert.rejects(promise, (error) => {
    assert.ok(error instanceof ThrottleError, String(error));
    assert.equal(error.codeName, codeName, error.message);
    assert.match(error.details, details);
    return true;
  });
}

// The next snapshot (asserting there is one).
async function next(watch) {
  const { value, done } = await watch.next();
  assert.equal(done, false);
  return value;
}

describe('watch', () => {
  const fixture = serverFixture();
  const running = async (name, maxN = 5, per = 1) => {
    const t = fixture.throttle(name);
    await t.create(maxN, per);
    await t.start();
    return t;
  };

  test('the first snapshot comes at once with the throttle as it is', async () => {
    const t = await running('first', 7, 2);
    const watch = t.watch({ interval: 0.2 });
    try {
      const snapshot = await next(watch);
      assert.equal(snapshot.info.name, 'first');
      assert.equal(snapshot.info.state, 'running');
      assert.equal(snapshot.info.maxN, 7);
      assert.equal(snapshot.info.per, 2);
      assert.equal(snapshot.changed, false);
      assert.ok(snapshot.time instanceof Date);
      assert.ok(Math.abs(Date.now() - snapshot.time.getTime()) < GENEROUS * 1000);
      assert.equal(snapshot.latest.length, 2);
      assert.equal(snapshot.mean.length, 2);
      // The window defaults to the interval.
      assert.ok(Math.abs(snapshot.message.latest.window_seconds - 0.2) < 1e-9);
    } finally {
      watch.cancel();
    }
  });

  test('snapshots follow the interval', async () => {
    const t = await running('paced');
    const watch = t.watch({ interval: 0.2, window: 1 });
    const times = [];
    for await (const snapshot of watch) {
      assert.equal(snapshot.changed, false);
      assert.ok(Math.abs(snapshot.message.latest.window_seconds - 1) < 1e-9);
      times.push(snapshot.time.getTime());
      if (times.length === 6) break; // return(): cancels
    }
    const gaps = times.slice(1).map((t1, i) => t1 - times[i]);
    // By the server's clock the k-th is due k intervals after the watch
    // was filed (so one sent late is followed by a shorter gap); the
    // first may be taken a little after that. Load only delays them.
    assert.ok(gaps.every((gap) => gap > 0), `gaps ${gaps}`);
    const total = times[5] - times[0];
    assert.ok(total >= 5 * 200 - 100 && total < GENEROUS * 1000, `gaps ${gaps}`);
    assert.deepEqual(await watch.next(), { value: undefined, done: true });
  });

  test('a stop shows state stopped marked changed; so does a configure', async () => {
    const t = await running('stopping');
    const watch = t.watch({ interval: 60 }); // only changes come soon
    try {
      assert.equal((await next(watch)).info.state, 'running');
      await t.stop();
      const stopped = await next(watch);
      assert.equal(stopped.changed, true);
      assert.equal(stopped.info.state, 'stopped');
      await t.update({ maxN: 9 });
      const configured = await next(watch);
      assert.equal(configured.changed, true);
      assert.equal(configured.info.maxN, 9);
    } finally {
      watch.cancel();
    }
  });

  test('a delete ends the watch with NOT_FOUND, then it is done', async () => {
    const t = await running('deleted');
    const watch = t.watch({ interval: 60 });
    await next(watch);
    await t.delete();
    await rejectsWith(watch.next(), 'NOT_FOUND', /deleted/);
    assert.deepEqual(await watch.next(), { value: undefined, done: true });
  });

  test('an unknown throttle is NOT_FOUND', async () => {
    const watch = fixture.throttle('nobody').watch();
    await rejectsWith(watch.next(), 'NOT_FOUND', /nobody/);
  });

  test('a bad interval is INVALID_ARGUMENT naming it', async () => {
    const t = await running('bad');
    await rejectsWith(t.watch({ interval: 0.01 }).next(), 'INVALID_ARGUMENT', /interval/);
    await rejectsWith(t.watch({ window: 61 }).next(), 'INVALID_ARGUMENT', /window/);
    assert.throws(
      () => t.watch({ interval: '1s' }),
      (error) => error.codeName === 'INVALID_ARGUMENT' && /interval: 1s/.test(error.details),
    );
  });

  test('cancel() ends a pending next()', async () => {
    const t = await running('cancelled');
    const watch = t.watch({ interval: 60 });
    await next(watch);
    const pending = watch.next();
    watch.cancel();
    assert.deepEqual(await pending, { value: undefined, done: true });
    watch.cancel(); // again: nothing
  });

  test("the Throttle's close() ends the watch with CANCELLED", async () => {
    const t = await running('owner');
    const watch = t.watch({ interval: 60 });
    await next(watch);
    const pending = watch.next();
    t.close();
    await rejectsWith(pending, 'CANCELLED', /^throttle-client Throttle is closed$/);
  });

  test('a process whose watch is cancelled exits', async () => {
    await running('exiting');
    const script = `
      const { Throttle } = require(${JSON.stringify(path.join(__dirname, '..'))});
      const t = new Throttle(${JSON.stringify(fixture.server.address)}, 'exiting');
      (async () => {
        const watch = t.watch({ interval: 60 });
        for await (const snapshot of watch) {
          console.log(snapshot.info.state);
          break;
        }
        t.close();
      })();`;
    const done = childProcess.spawnSync(process.execPath, ['-e', script], {
      encoding: 'utf8',
      timeout: GENEROUS * 1000,
    });
    assert.equal(done.status, 0, done.stderr);
    assert.equal(done.stdout.trim(), 'running');
  });
});

// The first snapshot, or the codeName of the error that ended the watch.
async function firstOrError(watch) {
  try {
    return (await watch.next()).value;
  } catch (error) {
    return error.codeName;
  } finally {
    watch.cancel();
  }
}

describe('watch backoff', () => {
  // Nothing listens: each stream fails UNAVAILABLE at once and the watch
  // sleeps out an hour's backoff, which a close must end.
  async function sleeping() {
    const [port] = await freePorts(1);
    const t = new Throttle(`127.0.0.1:${port}`, 'away', { backoffInitial: 3600, backoffMax: 3600 });
    const watch = t.watch();
    let settled = false;
    const pending = watch.next().finally(() => {
      settled = true;
    });
    pending.catch(() => {});
    await sleep(0.2);
    assert.equal(settled, false); // not ended by the failure
    return { t, watch, pending };
  }

  test('cancel() ends the backoff', async () => {
    const { t, watch, pending } = await sleeping();
    watch.cancel();
    assert.deepEqual(await pending, { value: undefined, done: true });
    t.close();
  });

  test("the Throttle's close() ends the backoff with CANCELLED", async () => {
    const { t, pending } = await sleeping();
    t.close();
    await rejectsWith(pending, 'CANCELLED', /^throttle-client Throttle is closed$/);
  });
});

describe('watch and the server', () => {
  test('cancel() frees the stream on the server', async () => {
    // One stream in all: a watch holds it, a second is refused, and once
    // the first is cancelled a new one gets it.
    const server = await new Server(['--max_streams=1', '--throttle=limited max_n=10 per=1']).start();
    const t = new Throttle(server.address, 'limited');
    try {
      const first = t.watch({ interval: 60 });
      assert.equal((await next(first)).info.name, 'limited');
      assert.equal(await firstOrError(t.watch({ interval: 60 })), 'RESOURCE_EXHAUSTED');
      first.cancel();
      const seen = [];
      const reopened = await waitFor(async () => {
        seen.push(await firstOrError(t.watch({ interval: 60 })));
        return typeof seen[seen.length - 1] === 'object';
      }, GENEROUS, 0.05);
      assert.ok(reopened, `${seen.slice(-5)}`);
    } finally {
      t.close();
      await server.close();
    }
  });

  test('a watch goes on across a server restart', async () => {
    const server = await new Server(['--throttle=restart max_n=10 per=1']).start();
    const t = new Throttle(server.address, 'restart', { backoffInitial: 0.05, backoffMax: 0.5 });
    const watch = t.watch({ interval: 0.2 });
    try {
      assert.equal((await next(watch)).info.state, 'created');
      await server.stop();
      await server.start(); // the same port; the throttle comes from the flag
      const started = await waitFor(async () => {
        try {
          await t.start();
          return true;
        } catch (error) {
          assert.equal(error.codeName, 'UNAVAILABLE', error.message);
          return false;
        }
      }, GENEROUS, 0.05);
      assert.ok(started);
      // Snapshots of the old server may still be queued; the new one's
      // throttle is running (the old one's never was).
      const running = await waitFor(async () => (await next(watch)).info.state === 'running');
      assert.ok(running);
    } finally {
      watch.cancel();
      t.close();
      await server.close();
    }
  });
});
