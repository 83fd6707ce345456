// Bad input and the ways a wait ends, through the Node client against the
// real server: each error rejects with a ThrottleError carrying the right
// gRPC code; stop, wait limit and timeouts are FuelOutcome values; after
// close() every call rejects at once; a worker reconnects after a server
// restart; timeouts are measured on the monotonic clock; the backoff policy.
'use strict';

const assert = require('node:assert/strict');
const { describe, test } = require('node:test');
const { performance } = require('node:perf_hooks');
const {
  Throttle,
  ThrottleError,
  FuelOutcome,
  Backoff,
  channelOptions,
  status,
  proto,
} = require('..');
const {
  GENEROUS,
  sleep,
  waitFor,
  awaitWaiting,
  Server,
  serverFixture,
  unavailableServer,
} = require('./support');

// Asserts that `promise` rejects with a ThrottleError of `codeName`.
async function rejectsWith(promise, codeName) {
  await assert.rejects(promise, (error) => {
    assert.ok(error instanceof ThrottleError, String(error));
    assert.equal(error.codeName, codeName, error.message);
    assert.equal(error.code, status[codeName]);
    assert.ok(error.message.includes(codeName));
    return true;
  });
}

// A promise that settles like `promise`, whose rejection is handled at
// once (not reported as unhandled while the test goes on).
function settled(promise) {
  promise.catch(() => {});
  return promise;
}

describe('bad input', () => {
  const fixture = serverFixture();
  const throttle = fixture.throttle;

  test('max_n 0 is INVALID_ARGUMENT naming the field', async () => {
    await assert.rejects(throttle('zero').create(0, 1), (error) => {
      assert.equal(error.codeName, 'INVALID_ARGUMENT');
      assert.match(error.details, /max_n/);
      return true;
    });
  });

  test('bad per, burst outside bucket mode, bad name are INVALID_ARGUMENT', async () => {
    await rejectsWith(throttle('per').create(4, 0), 'INVALID_ARGUMENT');
    await rejectsWith(throttle('per').create(4, -1), 'INVALID_ARGUMENT');
    await rejectsWith(throttle('burst').create(4, 1, { burst: 3 }), 'INVALID_ARGUMENT');
    await rejectsWith(throttle('has space').create(4, 1), 'INVALID_ARGUMENT');
  });

  test('an unknown mode is refused by the client', async () => {
    await assert.rejects(throttle('mode').create(4, 1, { mode: 'sometimes' }), RangeError);
  });

  test('duplicate is ALREADY_EXISTS; replace deletes the old one', async () => {
    const t = throttle('dup');
    await t.create(4, 1);
    await rejectsWith(t.create(4, 1), 'ALREADY_EXISTS');
    assert.equal((await t.create(8, 1, { replace: true })).maxN, 8);
  });

  test('unknown throttle is NOT_FOUND, also for awaitFuel (not retried)', async () => {
    const t = throttle('nobody');
    await rejectsWith(t.start(), 'NOT_FOUND');
    await rejectsWith(t.stop(), 'NOT_FOUND');
    await rejectsWith(t.mean(), 'NOT_FOUND');
    await rejectsWith(t.latest(), 'NOT_FOUND');
    await rejectsWith(t.delete(), 'NOT_FOUND');
    await rejectsWith(t.hasFuel(), 'NOT_FOUND');
    await rejectsWith(t.info(), 'NOT_FOUND');
    await rejectsWith(t.awaitFuel(GENEROUS), 'NOT_FOUND');
  });

  test('wrong state is FAILED_PRECONDITION', async () => {
    const t = throttle('state');
    await t.create(4, 1);
    await rejectsWith(t.stop(), 'FAILED_PRECONDITION'); // never started
    await t.start();
    await rejectsWith(t.start(), 'FAILED_PRECONDITION'); // running
    await rejectsWith(t.emit(), 'FAILED_PRECONDITION'); // counts at grant time
    await t.stop();
    await rejectsWith(t.stop(), 'FAILED_PRECONDITION'); // stopped
  });

  test('bad worker arguments are INVALID_ARGUMENT', async () => {
    await throttle('args').create(4, 1);
    await rejectsWith(throttle('args', { weight: 0 }).awaitFuel(5), 'INVALID_ARGUMENT');
    await rejectsWith(
      throttle('args', { workerId: 'x'.repeat(129) }).awaitFuel(5),
      'INVALID_ARGUMENT',
    );
    await rejectsWith(throttle('args').latest(61), 'INVALID_ARGUMENT');
  });

  test('delete ends a waiting worker with NOT_FOUND', async () => {
    const controller = throttle('deleted');
    await controller.create(4, 1);
    const waiting = settled(throttle('deleted').awaitFuel());
    assert.ok(await awaitWaiting(controller, 1));
    await controller.delete();
    await rejectsWith(waiting, 'NOT_FOUND');
  });
});

describe('wait outcomes', () => {
  const fixture = serverFixture();
  const throttle = fixture.throttle;

  test('a timeout before start is TIMED_OUT without the kill flag', async () => {
    const t = throttle('created');
    await t.create(4, 1);
    const begin = performance.now();
    const outcome = await t.awaitFuel(0.3);
    assert.equal(outcome, FuelOutcome.TIMED_OUT);
    assert.equal(outcome.timedOut, true);
    assert.equal(outcome.stopped, false);
    assert.equal(outcome.fuel, false);
    assert.equal(outcome.outcome, 'timed_out');
    assert.equal(`${outcome}`, 'timed_out');
    assert.ok(performance.now() - begin >= 250);
    assert.equal(t.killFlag.isSet(), false);
    assert.equal(await t.awaitFuel(0), FuelOutcome.TIMED_OUT);
  });

  test('a stopped throttle sets the kill flag; a restart clears it', async () => {
    const controller = throttle('stopped');
    await controller.create(4, 1);
    await controller.start();
    const worker = throttle('stopped');
    const fuel = await worker.awaitFuel(GENEROUS);
    assert.equal(fuel, FuelOutcome.FUEL);
    assert.equal(fuel.fuel, true);
    assert.equal(worker.killFlag.isSet(), false);
    await controller.stop();
    assert.equal(controller.killFlag.isSet(), true);
    const stopped = await worker.awaitFuel(GENEROUS);
    assert.equal(stopped, FuelOutcome.STOPPED);
    assert.equal(stopped.stopped, true);
    assert.equal(stopped.timedOut, false);
    assert.equal(stopped.fuel, false);
    assert.equal(JSON.stringify({ stopped }), '{"stopped":"stopped"}');
    assert.equal(worker.killFlag.isSet(), true);
    await controller.start();
    assert.equal(controller.killFlag.isSet(), false);
    assert.equal(await worker.awaitFuel(GENEROUS), FuelOutcome.FUEL);
    assert.equal(worker.killFlag.isSet(), false);
    await controller.stop();
    assert.equal(await worker.hasFuel(), false);
    assert.equal(worker.killFlag.isSet(), true);
  });

  test('hasFuel takes free fuel only', async () => {
    const t = throttle('has');
    await t.create(1, 60); // one grant, then none for a minute
    await t.start();
    assert.equal(await t.hasFuel(), true);
    assert.equal(await t.hasFuel(), false);
  });

  test('manual emit counts reported emissions', async () => {
    const t = throttle('manual');
    await t.create(100, 1, { manualEmit: true });
    await t.start();
    assert.equal(await t.awaitFuel(GENEROUS), FuelOutcome.FUEL);
    assert.equal(await t.emit(), 1);
    assert.equal(await t.emit(3), 4);
    assert.equal((await t.stop())[1], 4);
  });

  test('statistics as the seed tuples', async () => {
    const t = throttle('stats');
    const info = await t.create(100, 1, { mode: 'window' });
    assert.deepEqual([info.mode, info.state, info.maxN], ['window', 'created', 100]);
    await t.start();
    for (let i = 0; i < 5; i++) assert.equal(await t.awaitFuel(GENEROUS), FuelOutcome.FUEL);
    const [between, perSecond] = await t.latest(60);
    assert.equal(perSecond, 5 / 60);
    assert.ok(Math.abs(between - 12) < 1e-9);
    assert.equal((await t.mean()).length, 2);
    assert.equal((await t.stop())[1], 5);
    assert.equal((await t.info()).state, 'stopped');
  });

  test('stop ends a waiting call with STOPPED', async () => {
    const controller = throttle('stop-waiting');
    await controller.create(1, 60); // one grant, then none for a minute
    await controller.start();
    const worker = throttle('stop-waiting');
    assert.equal(await worker.awaitFuel(GENEROUS), FuelOutcome.FUEL);
    const waiting = worker.awaitFuel(GENEROUS);
    assert.ok(await awaitWaiting(controller, 1));
    await controller.stop();
    assert.equal(await waiting, FuelOutcome.STOPPED);
    assert.equal(worker.killFlag.isSet(), true);
  });
});

// close() ends calls in flight and rejects every later call at once with
// CANCELLED "throttle-client Throttle is closed" (docs/clients.md).
describe('after close', () => {
  const fixture = serverFixture();
  const throttle = fixture.throttle;

  async function rejectsClosed(promise) {
    const begin = performance.now();
    await assert.rejects(promise, (error) => {
      assert.ok(error instanceof ThrottleError, String(error));
      assert.equal(error.codeName, 'CANCELLED');
      assert.equal(error.details, 'throttle-client Throttle is closed');
      assert.match(error.message, /closed/);
      return true;
    });
    assert.ok(performance.now() - begin < 5000);
  }

  test('close ends a waiting call', async () => {
    const t = new Throttle(fixture.server.address, 'close');
    await t.create(4, 1);
    const waiting = settled(t.awaitFuel());
    assert.ok(await awaitWaiting(t, 1));
    t.close();
    await rejectsClosed(waiting);
    assert.equal(t.killFlag.isSet(), true);
    // The server saw the stream go.
    const controller = throttle('close');
    assert.ok(await waitFor(async () => (await controller.info()).waitingStreams === 0));
  });

  test('every later call rejects at once', async () => {
    const t = new Throttle(fixture.server.address, 'closed-later');
    await t.create(4, 1);
    await t.start();
    assert.equal(await t.awaitFuel(GENEROUS), FuelOutcome.FUEL);
    t.close();
    assert.equal(t.killFlag.isSet(), true);
    await rejectsClosed(t.awaitFuel());
    await rejectsClosed(t.awaitFuel(0));
    await rejectsClosed(t.hasFuel());
    await rejectsClosed(t.emit());
    await rejectsClosed(t.start());
    await rejectsClosed(t.stop());
    await rejectsClosed(t.info());
    await rejectsClosed(t.latest());
    await rejectsClosed(t.mean());
    await rejectsClosed(t.create(4, 1, { replace: true }));
    await rejectsClosed(t.delete());
    t.close(); // again: nothing happens
    await rejectsClosed(t.awaitFuel());
  });

  test('kept grants are not handed out after close', async () => {
    const t = new Throttle(fixture.server.address, 'closed-surplus');
    t.surplus = 2; // as after a message that carried 3 grants
    t.close();
    await rejectsClosed(t.awaitFuel());
    await rejectsClosed(t.hasFuel());
  });

  test('close ends a backoff wait', async (t) => {
    const server = await unavailableServer();
    t.after(() => server.close());
    const tank = new Throttle(server.address, 'backoff', {
      backoffInitial: 600,
      backoffMax: 600,
    });
    t.after(() => tank.close());
    const waiting = settled(tank.awaitFuel());
    assert.ok(await waitFor(() => server.waitLimits.length >= 1));
    tank.close();
    await rejectsClosed(waiting);
    assert.equal(server.waitLimits.length, 1);
  });
});

describe('monotonic clock', () => {
  test('a wall clock step neither stretches nor cuts a wait', async (t) => {
    // The server answers UNAVAILABLE, so awaitFuel calls again and again
    // for its whole timeout. Meanwhile the wall clock (Date.now) steps back
    // an hour, then forward two: the timeout, and the wait limit each call
    // carries, are measured on performance.now(). (grpc-js reads Date.now
    // too, for its deadlines; it sees the same steps.)
    const realNow = Date.now;
    let offset = 0;
    Date.now = () => realNow() + offset;
    t.after(() => {
      Date.now = realNow;
    });
    const server = await unavailableServer((n) => {
      if (n === 1) offset = -3600e3;
      else if (n === 3) offset = 3600e3;
    });
    t.after(() => server.close());
    const tank = new Throttle(server.address, 'steps', {
      backoffInitial: 0.02,
      backoffMax: 0.05,
    });
    t.after(() => tank.close());
    const begin = performance.now();
    // Should the wait be stretched by the step, give up after 20 s.
    let timer;
    const stretched = new Promise((resolve) => {
      timer = setTimeout(() => resolve('stretched'), 20000);
    });
    const outcome = await Promise.race([settled(tank.awaitFuel(1.0)), stretched]);
    clearTimeout(timer);
    const elapsed = performance.now() - begin;
    assert.equal(outcome, FuelOutcome.TIMED_OUT);
    assert.ok(elapsed >= 950, `${elapsed} ms`);
    const limits = [...server.waitLimits];
    assert.ok(limits.length >= 4, String(limits));
    assert.ok(limits[0] <= 1.0 && limits[0] > 0.9, String(limits));
    assert.deepEqual(limits, [...limits].sort((a, b) => b - a));
  });
});

describe('reconnect', () => {
  test('an unreachable server times out to TIMED_OUT', async (t) => {
    const server = await new Server().start();
    const address = server.address;
    await server.close();
    const tank = new Throttle(address, 'gone');
    t.after(() => tank.close());
    const begin = performance.now();
    assert.equal(await tank.awaitFuel(0.5), FuelOutcome.TIMED_OUT);
    assert.ok(performance.now() - begin >= 450);
  });

  test('a worker reconnects after a server restart', async (t) => {
    const server = await new Server(['--throttle=again max_n=10 per=1']).start();
    t.after(() => server.close());
    const tank = new Throttle(server.address, 'again', { backoffMax: 0.5 });
    t.after(() => tank.close());
    let outcome;
    const waiting = tank.awaitFuel().then(
      (v) => (outcome = v),
      (e) => (outcome = e),
    );
    assert.ok(await awaitWaiting(tank, 1));
    // SIGTERM: the stream ends with UNAVAILABLE and the worker keeps calling
    // with backoff until a server is back on the same port.
    assert.equal(await server.stop(), 0);
    await sleep(0.3);
    assert.equal(outcome, undefined);
    await server.start();
    // Waits for the new server rather than failing with UNAVAILABLE (the
    // connection grpc-js shares with `tank` may be in its backoff).
    const controller = new Throttle(server.address, 'again', { waitForReady: true });
    t.after(() => controller.close());
    assert.ok(await awaitWaiting(controller, 1));
    await controller.start();
    await waiting;
    assert.equal(outcome, FuelOutcome.FUEL);
  });
});

test('backoff doubles with jitter up to the maximum', () => {
  let seed = 7;
  const random = () => ((seed = (seed * 48271) % 2147483647) / 2147483647);
  const backoff = new Backoff(0.1, 1.0, random);
  for (const base of [0.1, 0.2, 0.4, 0.8, 1.0, 1.0]) {
    const delay = backoff.nextDelay();
    assert.ok(delay >= base * 0.8 && delay < base * 1.2, `${delay} vs ${base}`);
  }
  backoff.reset();
  assert.ok(backoff.nextDelay() < 0.12);
});

test('the channel reconnects on the client backoff, not grpc-js defaults', (t) => {
  // Spy on the generated client's constructor to see the options given.
  const Real = proto.Throttle;
  let seen;
  proto.Throttle = class extends Real {
    constructor(address, credentials, options) {
      super(address, credentials, options);
      seen = options;
    }
  };
  t.after(() => {
    proto.Throttle = Real;
  });
  const tank = new Throttle('127.0.0.1:1', 'x', {
    backoffInitial: 0.1,
    backoffMax: 1.5,
    channelOptions: { 'grpc.keepalive_time_ms': 60000 },
  });
  tank.close();
  assert.deepEqual(seen, {
    'grpc.initial_reconnect_backoff_ms': 100,
    'grpc.max_reconnect_backoff_ms': 1500,
    'grpc.keepalive_time_ms': 60000,
  });
  const defaults = new Throttle('127.0.0.1:1', 'x');
  defaults.close();
  assert.equal(seen['grpc.initial_reconnect_backoff_ms'], 50);
  assert.equal(seen['grpc.max_reconnect_backoff_ms'], 2000);
  // Whole positive milliseconds, max never below initial; extras override.
  assert.deepEqual(channelOptions(0, -1), {
    'grpc.initial_reconnect_backoff_ms': 1,
    'grpc.max_reconnect_backoff_ms': 1,
  });
  assert.equal(channelOptions(3, 1)['grpc.max_reconnect_backoff_ms'], 3000);
  assert.equal(channelOptions(1, Infinity)['grpc.max_reconnect_backoff_ms'], 2 ** 31 - 1);
  assert.equal(
    channelOptions(1, 2, { 'grpc.max_reconnect_backoff_ms': 7 })['grpc.max_reconnect_backoff_ms'],
    7,
  );
});
