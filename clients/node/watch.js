// watch.js: Throttle.watch() of throttle-client, a live view of one throttle
// over the server-streaming WatchThrottle RPC (proto/throttle/v1/
// throttle.proto), as an async iterator:
//
//   const watch = throttle.watch({ interval: 2 }); // seconds
//   for await (const snapshot of watch) {          // first at once
//     console.log(snapshot.info.state, snapshot.latest[1]);
//     if (done) break;                              // break/cancel() end it
//   }
//
// Each snapshot is whole (nothing is a delta): the first comes at once, then
// one every interval and one at once when the throttle's state or
// configuration changes (`changed`). The iteration ends (done) after
// cancel() or return() (a `break` out of for-await); it rejects with
// ThrottleError when the watch ends otherwise: NOT_FOUND when the throttle
// does not exist or is deleted, INVALID_ARGUMENT for a bad interval or
// window (the server names the field and value), CANCELLED "throttle-client
// Throttle is closed" after the Throttle's close(); after that error it is
// done. When the stream is lost (UNAVAILABLE, or CANCELLED by a server
// shutting down) it is opened again after the Throttle's backoff
// (backoffInitial doubling up to backoffMax, jittered, reset by each
// snapshot) and the iteration goes on with a fresh first snapshot; with
// { reconnect: false } it rejects with that error instead. Snapshots that
// come faster than they are read pause the stream (gRPC flow control) rather
// than pile up. (As ThrottleWatch in C++ and watch() in Python:
// docs/clients.md.)
'use strict';

const grpc = require('@grpc/grpc-js');

// Losses of the stream a reconnecting watch retries.
const RETRIED = new Set([grpc.status.UNAVAILABLE, grpc.status.CANCELLED]);

class Watch {
  // hooks: open() -> a new WatchThrottle call; snapshot(message) -> the
  // snapshot; error(grpcError) -> its ThrottleError (the "closed" one after
  // the Throttle's close()); closed() -> whether the Throttle is closed;
  // track(call) / untrack(call): the Throttle's calls in flight, for its
  // close(); backoff: a Backoff.
  constructor(hooks, { reconnect = true } = {}) {
    this.hooks = hooks;
    this.reconnect = reconnect;
    this.call = null;
    this.queue = []; // snapshots read and not yet taken
    this.waiters = []; // { resolve, reject } of next() calls
    this.ended = null; // the error that ended it, handed to one next()
    this.done = false;
    this.timer = null; // the backoff's, before a reopen
    // The backoff among the Throttle's calls in flight, so that its close()
    // ends the sleep as it ends calls: { cancel() }.
    this.sleeping = null;
    this.opened = false;
  }

  [Symbol.asyncIterator]() {
    return this;
  }

  // Resolves { value: snapshot, done: false } with the next snapshot, or
  // { value: undefined, done: true } once the watch was cancelled or has
  // ended; rejects with the ThrottleError that ended it (once).
  next() {
    if (!this.opened) {
      this.opened = true;
      this.open();
    }
    if (this.queue.length > 0) {
      const value = this.queue.shift();
      if (this.queue.length === 0 && this.call) this.call.resume();
      return Promise.resolve({ value, done: false });
    }
    if (this.ended) {
      const error = this.ended;
      this.ended = null;
      return Promise.reject(error);
    }
    if (this.done) return Promise.resolve({ value: undefined, done: true });
    return new Promise((resolve, reject) => this.waiters.push({ resolve, reject }));
  }

  // Ends the watch: pending and later next() calls resolve done, the stream
  // is cancelled (which frees it on the server). Cancelling again does
  // nothing.
  cancel() {
    if (this.done) return;
    this.done = true;
    this.queue = [];
    this.wakeUp();
    const call = this.call;
    this.call = null;
    if (call) {
      this.hooks.untrack(call);
      call.cancel();
    }
    for (const waiter of this.waiters.splice(0)) {
      waiter.resolve({ value: undefined, done: true });
    }
  }

  // The async iterator's return(): what `break` out of for-await calls.
  return() {
    this.cancel();
    return Promise.resolve({ value: undefined, done: true });
  }

  // Ends the backoff's sleep, if any.
  wakeUp() {
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    if (this.sleeping) this.hooks.untrack(this.sleeping);
    this.sleeping = null;
  }

  open() {
    this.wakeUp();
    if (this.done) return;
    if (this.hooks.closed()) {
      this.end(this.hooks.error({ code: grpc.status.CANCELLED }));
      return;
    }
    const call = this.hooks.open();
    this.call = call;
    this.hooks.track(call);
    let settled = false;
    const lost = (error) => {
      if (settled) return;
      settled = true;
      this.hooks.untrack(call);
      if (this.call !== call) return; // cancelled
      this.call = null;
      this.lost(error);
    };
    call.on('data', (message) => {
      if (this.call !== call) return;
      this.hooks.backoff.reset();
      const value = this.hooks.snapshot(message);
      const waiter = this.waiters.shift();
      if (waiter) {
        waiter.resolve({ value, done: false });
      } else {
        this.queue.push(value);
        call.pause(); // until next() takes it
      }
    });
    call.on('error', (error) => lost(error));
    // The server ended the stream, which only a cancel, a delete or a
    // shutdown should do: a loss.
    call.on('end', () =>
      lost({ code: grpc.status.UNAVAILABLE, details: 'the server ended the watch' }),
    );
  }

  // The stream ended with grpc `error`: a retried loss opens it again after
  // the backoff; anything else ends the watch with its ThrottleError.
  lost(grpcError) {
    if (this.done) return;
    const closed = this.hooks.closed();
    if (this.reconnect && !closed && RETRIED.has(grpcError.code)) {
      this.timer = setTimeout(() => this.open(), this.hooks.backoff.nextDelay() * 1000);
      this.sleeping = { cancel: () => this.open() }; // open() sees the close
      this.hooks.track(this.sleeping);
      return;
    }
    this.end(this.hooks.error(grpcError));
  }

  end(error) {
    this.done = true;
    const waiter = this.waiters.shift();
    if (waiter) waiter.reject(error);
    else this.ended = error;
    for (const rest of this.waiters.splice(0)) {
      rest.resolve({ value: undefined, done: true });
    }
  }
}

module.exports = { Watch };
