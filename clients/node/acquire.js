// acquire.js: the Acquire stream of one Throttle handle and the waiters on
// it, as docs/acquire-client-spec.md specifies for every client library.
//
// index.js makes one AcquireStream per Throttle and routes its awaitFuel
// calls with a timeout above zero here. This file knows gRPC status codes
// and the Acquire messages; the outcomes, the kill flag and the spare
// grants are the Throttle's, reached through the hooks it passes in.
//
// Single-threaded, as all of Node: every method runs to its end before an
// event of the stream is handled.
'use strict';

const grpc = require('@grpc/grpc-js');
const { performance } = require('node:perf_hooks');

// AcquireRequest.demand is at most this per message.
const MAX_DEMAND_PER_MESSAGE = 1000000;
// The longest delay setTimeout takes (a longer one fires at once).
const MAX_TIMER_MS = 2 ** 31 - 1;

// Calls `done(status)` once the stream `call` has ended and every message
// it carried was handed to its 'data' listeners: after both its 'status'
// and its 'end' (or 'close'). grpc-js emits 'status' as soon as it has it,
// possibly before messages still buffered in the stream; should a failed
// stream never emit 'end', `done` runs 100 ms after its status.
function whenEnded(call, done) {
  let status = null;
  let ended = false;
  let timer = null;
  let called = false;
  const finish = () => {
    if (status === null || !ended || called) return;
    called = true;
    clearTimeout(timer);
    done(status);
  };
  call.on('error', () => {}); // the status says it all
  call.on('end', () => {
    ended = true;
    finish();
  });
  call.on('close', () => {
    ended = true;
    finish();
  });
  call.on('status', (s) => {
    status = s;
    if (s.code !== grpc.status.OK) {
      timer = setTimeout(() => {
        ended = true;
        finish();
      }, 100);
    }
    finish();
  });
}

// What acquire() resolves: `got` grants and how the wait ended, 'fuel' (all
// of them), 'stopped', 'timed_out' or 'unsupported' (the server has no
// Acquire: the caller waits some other way; `got` is then 0).
//
// The hooks, all called synchronously:
//   open()          a new Acquire call (grpc-js duplex stream), with wait
//                   for ready; the stream writes its messages itself
//   first()         the first message's {throttle, worker_id, weight}
//   backoff         a Backoff: the delay before a stream is opened again
//                   after UNAVAILABLE or a CANCELLED not caused by close()
//   granted()       a message brought grants and the throttle runs
//   stopped()       the throttle stopped (drop spare grants, set the kill
//                   flag)
//   spare(n)        n grants arrived with no waiter to take them
//   error(status)   the Error to reject the waiters with when the stream
//                   ended with `status`
//   closedError()   the Error of a waiter that close() ended
class AcquireStream {
  constructor(hooks) {
    this.hooks = hooks;
    this.waiters = []; // FIFO: {missing, got, resolve, reject, timer}
    this.call = null; // the open stream, or null
    this.reconnectTimer = null; // set while waiting to open again
    this.pendingDemand = 0; // demand (+) or withdrawal (-) not yet written
    this.flushQueued = false;
    this.unsupported = false; // the server answered UNIMPLEMENTED
    this.closed = false;
  }

  // Waits for `n` >= 1 grants until `deadline` (performance.now() ms;
  // Infinity: no limit). Never rejects for a timeout; rejects with
  // hooks.error(status) when the stream ends with an error, and with
  // hooks.closedError() when close() is called.
  acquire(n, deadline) {
    if (this.closed) return Promise.reject(this.hooks.closedError());
    if (this.unsupported) return Promise.resolve({ got: 0, outcome: 'unsupported' });
    return new Promise((resolve, reject) => {
      const waiter = { missing: n, got: 0, resolve, reject, timer: null };
      this.waiters.push(waiter);
      if (deadline !== Infinity) this.armTimeout(waiter, deadline);
      this.addDemand(n);
    });
  }

  // Cancels the stream and rejects every waiter with hooks.closedError().
  // For good: later acquire() calls reject at once.
  close() {
    if (this.closed) return;
    this.closed = true;
    clearTimeout(this.reconnectTimer);
    this.reconnectTimer = null;
    const call = this.call;
    this.call = null;
    if (call !== null) call.cancel();
    this.settleAll((w) => w.reject(this.hooks.closedError()));
  }

  armTimeout(waiter, deadline) {
    const remaining = deadline - performance.now();
    if (remaining <= 0) {
      this.timeOut(waiter);
      return;
    }
    // A timeout beyond setTimeout's range is armed again when its timer
    // fires; the deadline is always read on the monotonic clock.
    waiter.timer = setTimeout(
      () => this.armTimeout(waiter, deadline),
      Math.min(remaining, MAX_TIMER_MS),
    );
  }

  // The waiter's timeout passed: it leaves the queue and its demand is
  // withdrawn.
  timeOut(waiter) {
    const index = this.waiters.indexOf(waiter);
    if (index < 0) return;
    this.waiters.splice(index, 1);
    this.addDemand(-waiter.missing);
    waiter.resolve({ got: waiter.got, outcome: 'timed_out' });
  }

  // Adds `delta` to the demand to write. The changes made while one task
  // runs go out together in one message, netted: a withdrawal and a new
  // demand in the same turn cancel, which leaves the server no less
  // demand than the waiters miss and no more than when sent one by one.
  addDemand(delta) {
    this.pendingDemand += delta;
    if (this.flushQueued) return;
    this.flushQueued = true;
    queueMicrotask(() => this.flush());
  }

  flush() {
    this.flushQueued = false;
    const delta = this.pendingDemand;
    this.pendingDemand = 0;
    if (this.closed) return;
    if (this.call === null) {
      // No stream: open one unless waiting to reconnect (the demand goes in
      // its first message, counted from the waiters then).
      if (this.reconnectTimer === null && this.waiters.length > 0) this.open();
      return;
    }
    if (delta > 0) this.writeDemand({}, delta);
    else if (delta < 0) this.call.write({ withdraw: -delta });
  }

  // Writes `message` with `demand` added, in as many messages as the
  // per-message limit needs.
  writeDemand(message, demand) {
    let left = demand;
    do {
      const part = Math.min(left, MAX_DEMAND_PER_MESSAGE);
      this.call.write({ ...message, demand: part });
      left -= part;
      message = {};
    } while (left > 0);
  }

  open() {
    const call = this.hooks.open();
    this.call = call;
    this.pendingDemand = 0; // counted in the first message
    const demand = this.waiters.reduce((sum, w) => sum + w.missing, 0);
    this.writeDemand(this.hooks.first(), demand);
    call.on('data', (response) => this.onMessage(call, response));
    whenEnded(call, (status) => this.onEnd(call, status));
  }

  onMessage(call, response) {
    if (call !== this.call) return; // a stream that ended for us already
    const grants = Math.max(Number(response.grants) || 0, 0);
    const stopped = response.end === 'END_REASON_STOPPED';
    this.hooks.backoff.reset(); // the stream works
    if (grants > 0 && !stopped) this.hooks.granted();
    let left = grants;
    while (left > 0 && this.waiters.length > 0) {
      const head = this.waiters[0];
      const taken = Math.min(left, head.missing);
      head.missing -= taken;
      head.got += taken;
      left -= taken;
      if (head.missing === 0) {
        this.waiters.shift();
        clearTimeout(head.timer);
        head.resolve({ got: head.got, outcome: 'fuel' });
      }
    }
    if (stopped) {
      // The last message: the next acquire() opens a new stream.
      this.call = null;
      this.hooks.stopped();
      this.settleAll((w) => w.resolve({ got: w.got, outcome: 'stopped' }));
    } else if (left > 0) {
      this.hooks.spare(left);
    }
  }

  onEnd(call, status) {
    if (call !== this.call) return; // stopped or closed: settled already
    this.call = null;
    switch (status.code) {
      case grpc.status.OK: {
        // Only after a half-close, which this client never sends.
        const internal = {
          code: grpc.status.INTERNAL,
          details: 'Acquire stream ended without END_REASON_STOPPED',
        };
        this.settleAll((w) => w.reject(this.hooks.error(internal)));
        return;
      }
      case grpc.status.UNAVAILABLE:
      case grpc.status.CANCELLED: // not ours: close() settled everything
        // The server shut down or failed over: the waiters keep waiting
        // (and their timeouts running) for a new stream.
        this.reconnectTimer = setTimeout(() => {
          this.reconnectTimer = null;
          if (!this.closed && this.call === null && this.waiters.length > 0) this.open();
        }, this.hooks.backoff.nextDelay() * 1000);
        return;
      case grpc.status.UNIMPLEMENTED:
        // A server from before Acquire: the waiters and every later call
        // wait another way.
        this.unsupported = true;
        this.settleAll((w) => w.resolve({ got: w.got, outcome: 'unsupported' }));
        return;
      default:
        this.settleAll((w) => w.reject(this.hooks.error(status)));
    }
  }

  // Empties the queue, settling each waiter with `settle`.
  settleAll(settle) {
    const waiters = this.waiters;
    this.waiters = [];
    for (const w of waiters) {
      clearTimeout(w.timer);
      settle(w);
    }
  }
}

module.exports = { AcquireStream, whenEnded, MAX_DEMAND_PER_MESSAGE };
