// awaitFuel and awaitFuelCount over the Acquire stream
// (docs/acquire-client-spec.md), against the real server: a loop of
// awaits and many concurrent awaits share one stream and each get exactly
// one grant, in the order they called; the counted variant gets n, or
// what came before its timeout; a timed-out waiter's demand is withdrawn
// while the stream stays open; stop ends every waiter; a server restart
// opens a new stream for the waiters; close ends them; a server without
// Acquire is waited on by AwaitFuel calls. And catchUp in the config.
'use strict';

const assert = require('node:assert/strict');
const { describe, test } = require('node:test');
const { Throttle, ThrottleError, FuelOutcome } = require('..');
const {
  GENEROUS,
  waitFor,
  awaitWaiting,
  Server,
  serverFixture,
  unavailableServer,
} = require('./support');

const { FUEL, STOPPED, TIMED_OUT } = FuelOutcome;
const result = (outcome, grants) => ({ outcome, grants });

// Counts the Acquire and AwaitFuel calls the handle `tank` makes.
function countCalls(tank) {
  const calls = { Acquire: 0, AwaitFuel: 0 };
  for (const method of Object.keys(calls)) {
    const real = tank.client[method].bind(tank.client);
    tank.client[method] = (...args) => {
      calls[method] += 1;
      return real(...args);
    };
  }
  return calls;
}

// Asserts that `promise` rejects with a ThrottleError of `codeName` whose
// details match `details`.
async function rejectsWith(promise, codeName, details = /./) {
  await assert.rejects(promise, (error) => {
    assert.ok(error instanceof ThrottleError, String(error));
    assert.equal(error.codeName, codeName, error.message);
    assert.match(error.details, details);
    return true;
  });
}

// Resolves once the throttle has no waiting stream.
const noneWaiting = (throttle) =>
  waitFor(async () => (await throttle.info()).waitingStreams === 0);

describe('the Acquire stream', () => {
  const fixture = serverFixture();
  const throttle = fixture.throttle;

  test('a loop of plain awaits gets fuel on one stream', async () => {
    const controller = throttle('loop');
    await controller.create(1, 1, { mode: 'monitor-only' });
    await controller.start();
    const worker = throttle('loop', { askAhead: 0 }); // exact counts
    const calls = countCalls(worker);
    for (let i = 0; i < 200; i++) assert.equal(await worker.awaitFuel(), FUEL);
    for (let i = 0; i < 50; i++) assert.equal(await worker.awaitFuel(GENEROUS), FUEL);
    assert.deepEqual(calls, { Acquire: 1, AwaitFuel: 0 });
    assert.equal(worker.surplus, 0);
    assert.equal((await controller.info()).totalEmissions, 250);
    // At a rate too.
    await controller.configure(40, 1);
    for (let i = 0; i < 5; i++) assert.equal(await worker.awaitFuel(GENEROUS), FUEL);
    assert.deepEqual(calls, { Acquire: 1, AwaitFuel: 0 });
    assert.equal(worker.killFlag.isSet(), false);
  });

  test('many concurrent awaits on one handle each get one grant', async () => {
    const controller = throttle('many');
    await controller.create(1, 1, { mode: 'monitor-only' });
    await controller.start();
    const worker = throttle('many', { askAhead: 0 }); // exact counts
    const calls = countCalls(worker);
    const outcomes = await Promise.all(
      Array.from({ length: 500 }, () => worker.awaitFuel(GENEROUS)),
    );
    assert.deepEqual(new Set(outcomes), new Set([FUEL]));
    // Every grant the server counted went to one await: none kept over.
    assert.equal(worker.surplus, 0);
    assert.equal((await controller.info()).totalEmissions, 500);
    assert.deepEqual(calls, { Acquire: 1, AwaitFuel: 0 });
  });

  test('grants go to the waiters in the order they called', async () => {
    const controller = throttle('fifo');
    await controller.create(20, 1); // smooth: one grant every 50 ms
    await controller.start();
    const worker = throttle('fifo');
    const order = [];
    const waits = [];
    for (let i = 0; i < 6; i++) {
      const wait = i === 2 ? worker.awaitFuelCount(2, GENEROUS) : worker.awaitFuel(GENEROUS);
      waits.push(wait.then(() => order.push(i)));
    }
    await Promise.all(waits);
    assert.deepEqual(order, [0, 1, 2, 3, 4, 5]);
    assert.equal((await controller.info()).totalEmissions, 7);
    assert.equal(worker.surplus, 0);
  });

  test('the counted variant gets n, and what came before its timeout', async () => {
    const t = throttle('counted');
    await t.create(5, 60, { mode: 'window' }); // 5 at once, then none for a minute
    await t.start();
    const calls = countCalls(t);
    assert.deepEqual(await t.awaitFuelCount(3, GENEROUS), result(FUEL, 3));
    assert.deepEqual(await t.awaitFuelCount(4, 1), result(TIMED_OUT, 2));
    assert.ok(await noneWaiting(t));
    assert.equal(t.surplus, 0);
    assert.equal((await t.info()).totalEmissions, 5);
    assert.deepEqual(calls, { Acquire: 1, AwaitFuel: 0 });
  });

  test('a counted call with timeout 0 takes what there is at once', async () => {
    const t = throttle('counted-now');
    await t.create(3, 60, { mode: 'window' });
    await t.start();
    const calls = countCalls(t);
    assert.deepEqual(await t.awaitFuelCount(2, 0), result(FUEL, 2));
    assert.deepEqual(await t.awaitFuelCount(2, 0), result(TIMED_OUT, 1));
    assert.deepEqual(await t.awaitFuelCount(2, -1), result(TIMED_OUT, 0));
    assert.equal(await t.awaitFuel(0), TIMED_OUT);
    assert.deepEqual(calls, { Acquire: 0, AwaitFuel: 4 });
  });

  test('a bad count is INVALID_ARGUMENT at once', async () => {
    const t = throttle('counted-bad');
    for (const n of [0, -1, 1.5, '2', NaN, 1e10]) {
      await rejectsWith(t.awaitFuelCount(n, GENEROUS), 'INVALID_ARGUMENT', /^n: /);
    }
  });

  test('a timed-out waiter withdraws its demand; the stream goes on', async () => {
    const controller = throttle('withdraw');
    await controller.create(10, 1); // not started: waiters wait
    const worker = throttle('withdraw');
    const calls = countCalls(worker);
    const waiting = worker.awaitFuel(3);
    assert.ok(await awaitWaiting(controller, 1));
    assert.equal(await waiting, TIMED_OUT);
    assert.equal(worker.killFlag.isSet(), false);
    assert.ok(await noneWaiting(controller));
    await controller.start();
    assert.equal(await worker.awaitFuel(GENEROUS), FUEL);
    // The same stream all along.
    assert.deepEqual(calls, { Acquire: 1, AwaitFuel: 0 });
  });

  test('stop ends every waiting await with stopped', async () => {
    const controller = throttle('stop');
    await controller.create(1, 60, { mode: 'window' }); // one grant, then none
    await controller.start();
    const worker = throttle('stop');
    assert.equal(await worker.awaitFuel(GENEROUS), FUEL);
    const plain = [worker.awaitFuel(), worker.awaitFuel(GENEROUS), worker.awaitFuel()];
    const counted = worker.awaitFuelCount(3, GENEROUS);
    assert.ok(await awaitWaiting(controller, 1));
    await controller.stop();
    assert.deepEqual(await Promise.all(plain), [STOPPED, STOPPED, STOPPED]);
    assert.deepEqual(await counted, result(STOPPED, 0));
    assert.equal(worker.killFlag.isSet(), true);
    // Seen at once on a new stream while stopped; fuel again after a start.
    assert.equal(await worker.awaitFuel(GENEROUS), STOPPED);
    await controller.configure(100, 1);
    await controller.start();
    assert.equal(await worker.awaitFuel(GENEROUS), FUEL);
    assert.equal(worker.killFlag.isSet(), false);
  });

  test('close ends every waiting await', async () => {
    const controller = throttle('close-many');
    await controller.create(10, 1); // not started
    const worker = new Throttle(fixture.server.address, 'close-many');
    const waits = [worker.awaitFuel(), worker.awaitFuel(GENEROUS), worker.awaitFuelCount(2)];
    for (const w of waits) w.catch(() => {});
    assert.ok(await awaitWaiting(controller, 1));
    worker.close();
    for (const w of waits) {
      await rejectsWith(w, 'CANCELLED', /^throttle-client Throttle is closed$/);
    }
    assert.ok(await noneWaiting(controller));
  });

  test('a deleted throttle ends every waiter with NOT_FOUND', async () => {
    const controller = throttle('deleted-many');
    await controller.create(10, 1);
    const worker = throttle('deleted-many');
    const waits = [worker.awaitFuel(), worker.awaitFuelCount(3, GENEROUS)];
    for (const w of waits) w.catch(() => {});
    assert.ok(await awaitWaiting(controller, 1));
    await controller.delete();
    for (const w of waits) await rejectsWith(w, 'NOT_FOUND');
    // The next call opens a new stream.
    await controller.create(10, 1);
    await controller.start();
    assert.equal(await worker.awaitFuel(GENEROUS), FUEL);
  });
});

describe('reconnect', () => {
  test('waiting awaits ride through a server restart on a new stream', async (t) => {
    const server = await new Server(['--throttle=again max_n=10 per=1']).start();
    t.after(() => server.close());
    const tank = new Throttle(server.address, 'again', { backoffMax: 0.5 });
    t.after(() => tank.close());
    const calls = countCalls(tank);
    let outcome;
    const waiting = Promise.all([
      tank.awaitFuel(),
      tank.awaitFuel(GENEROUS),
      tank.awaitFuelCount(2, GENEROUS),
    ]).then(
      (v) => (outcome = v),
      (e) => (outcome = e),
    );
    assert.ok(await awaitWaiting(tank, 1));
    // SIGTERM: the stream ends with UNAVAILABLE; the waiters keep waiting
    // and a new stream waits for a server on the same port.
    assert.equal(await server.stop(), 0);
    assert.equal(outcome, undefined);
    await server.start();
    const controller = new Throttle(server.address, 'again', { waitForReady: true });
    t.after(() => controller.close());
    assert.ok(await awaitWaiting(controller, 1));
    await controller.start();
    await waiting;
    assert.deepEqual(outcome, [FUEL, FUEL, result(FUEL, 2)]);
    assert.ok(calls.Acquire >= 2, JSON.stringify(calls));
    assert.equal(calls.AwaitFuel, 0);
  });

  test('a server without Acquire is waited on by AwaitFuel calls', async (t) => {
    // Answers UNIMPLEMENTED to Acquire and UNAVAILABLE to AwaitFuel.
    const server = await unavailableServer();
    t.after(() => server.close());
    const tank = new Throttle(server.address, 'old', { backoffInitial: 0.02, backoffMax: 0.05 });
    t.after(() => tank.close());
    const calls = countCalls(tank);
    assert.equal(await tank.awaitFuel(0.3), TIMED_OUT);
    assert.equal(calls.Acquire, 1);
    assert.ok(server.waitLimits.length >= 1);
    assert.deepEqual(await tank.awaitFuelCount(2, 0.2), result(TIMED_OUT, 0));
    assert.equal(calls.Acquire, 1); // remembered
  });
});

describe('catchUp', () => {
  const fixture = serverFixture();
  const throttle = fixture.throttle;
  const near = (actual, expected) =>
    assert.ok(Math.abs(actual - expected) < 1e-9, `${actual} vs ${expected}`);

  test('create, configure and the list carry catchUp in seconds', async () => {
    const t = throttle('catch-up');
    near((await t.create(100, 10, { catchUp: 0.5 })).catchUp, 0.5);
    near((await t.info()).catchUp, 0.5);
    near((await t.configure(100, 10, { catchUp: 0 })).catchUp, 0);
    // Unset: the default, 1% of per but at least one grant's spacing.
    near((await t.configure(1000, 10)).catchUp, 0.1);
    near((await t.configure(4, 1)).catchUp, 0.25);
    near((await t.listThrottles()).find((i) => i.name === 'catch-up').catchUp, 0.25);
    near((await t.create(4, 1, { catchUp: 1, replace: true })).catchUp, 1);
  });

  test('a bad catchUp is INVALID_ARGUMENT', async () => {
    const t = throttle('catch-up-bad');
    await t.create(4, 1);
    await rejectsWith(t.configure(4, 1, { catchUp: -0.1 }), 'INVALID_ARGUMENT', /catch_up/);
    await rejectsWith(t.configure(4, 1, { catchUp: 1.5 }), 'INVALID_ARGUMENT', /catch_up/);
    for (const bad of [NaN, Infinity, '0.1']) {
      await rejectsWith(t.configure(4, 1, { catchUp: bad }), 'INVALID_ARGUMENT', /^catchUp: /);
    }
    near((await t.info()).catchUp, 0.25); // unchanged
  });
});
