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
const { LocalShare, WAIT, LOCAL, FAIL_FAST } = require('./degrade');

// AcquireRequest.demand is at most this per message.
const MAX_DEMAND_PER_MESSAGE = 1000000;
// The longest delay setTimeout takes (a longer one fires at once).
const MAX_TIMER_MS = 2 ** 31 - 1;
// Asking ahead covers what the waiters took in about this long (ms).
const ASK_AHEAD_WINDOW_MS = 1;
// The default of the handle's askAhead option (TankOptions::ask_ahead).
const DEFAULT_ASK_AHEAD = 16;

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
//   open(waitForReady)
//                   a new Acquire call (grpc-js duplex stream), with wait
//                   for ready as told; the stream writes its messages itself
//   first()         the first message's {throttle, worker_id, weight}
//   backoff         a Backoff: the delay before a stream is opened again
//                   after UNAVAILABLE or a CANCELLED not caused by close()
//   granted()       a message brought grants and the throttle runs
//   stopped()       the throttle stopped (set the kill flag; the stream
//                   drops its kept grants itself)
//   error(status)   the Error to reject the waiters with when the stream
//                   ended with `status`
//   closedError()   the Error of a waiter that close() ended
//
// `askAhead` (>= 0; 0: never) is the most grants the stream asks for ahead
// of its waiters while the server says the fuel is unlimited (the spec's
// "Asking ahead where fuel is unlimited"): A, the grants the waiters took in
// the current or the previous 1 ms window on paceNow() (0 while under 2),
// at most askAhead. Grants kept or coming beyond what the waiters miss are
// topped up to A whenever fewer than half of A are; none are withdrawn
// while unlimited; a message with unlimited = false makes the demand exact
// again (what the waiters miss).
//
// Graceful degradation (degrade.js; docs/DECISIONS.md): after a stream
// ended UNAVAILABLE (or CANCELLED by a server going away) the waiters act
// on the throttle's last known policy. Wait: as above. Fail fast: the
// waiters, and every wait during the reconnect backoff, reject at once
// with UNAVAILABLE (a wait after it makes one attempt first). Local share: the waiters get local grants at
// the stream's last share (at most share x elapsed + 1 from the outage's
// start) until local_share_for has passed, then as fail fast. While
// degraded, streams open without wait for ready, so an attempt to a server
// that is down ends at once; the first message of a stream that got
// through ends the outage.
class AcquireStream {
  // `local`: the handle's LocalShare, shared with its AwaitFuel calls.
  constructor(hooks, askAhead = DEFAULT_ASK_AHEAD, local = new LocalShare()) {
    this.hooks = hooks;
    this.askAhead = askAhead;
    this.waiters = []; // FIFO: {missing, got, fromKept, resolve, reject, timer}
    this.call = null; // the open stream, or null
    this.reconnectTimer = null; // set while waiting to open again
    // Spare grants: they arrived with no waiter to take them, or were asked
    // ahead; handed to the next awaitFuel or hasFuel (takeKept()).
    this.kept = 0;
    this.wanted = 0; // the grants the waiters still miss
    // What the server still owes on this.call by what was written and read,
    // never below zero: never more than the server's own count, so the
    // waiters' demand is never short.
    this.outstanding = 0;
    this.unlimited = false; // what the last message said
    this.flushQueued = false;
    this.unsupported = false; // the server answered UNIMPLEMENTED
    this.closed = false;
    // The pace: grants taken in the window that began at windowStart, and
    // in the window before it.
    this.windowStart = -Infinity;
    this.takenNow = 0;
    this.takenBefore = 0;
    // The clock of the pace windows, in ms; only the pace reads it (the
    // timeouts are on performance.now()). Tests replace it.
    this.paceNow = () => performance.now();
    // The throttle's degradation policy and the outage, if any (the
    // handle's, shared with its AwaitFuel calls); the timer of the next
    // local grant. degradeNow is the clock of local pacing (ms).
    this.local = local;
    this.localTimer = null;
    this.degradeNow = () => performance.now();
  }

  // Takes up to `n` kept grants (without a note of the pace, as
  // TakeKept() in C++: for hasFuel() and the start of every wait);
  // returns how many.
  takeKept(n) {
    const taken = Math.min(this.kept, n);
    this.kept -= taken;
    return taken;
  }

  // Adds `n` spare grants (they came some other way: AwaitFuel calls).
  keep(n) {
    this.kept += n;
  }

  // A wait for `n` grants was served from the kept grants alone: counts
  // them in the pace and tops up what is asked ahead before the kept
  // grants run out.
  tookKept(n) {
    this.noteTaken(n);
    if (this.call !== null && this.demandChange() !== 0) this.scheduleFlush();
  }

  noteTaken(n) {
    const now = this.paceNow();
    const since = now - this.windowStart;
    if (since >= ASK_AHEAD_WINDOW_MS) {
      // A window or more passed: the last one's count, or none if longer.
      this.takenBefore = since < 2 * ASK_AHEAD_WINDOW_MS ? this.takenNow : 0;
      this.takenNow = 0;
      this.windowStart = now;
    }
    this.takenNow += n;
  }

  // A: how many grants to keep or have coming beyond what the waiters miss.
  aheadTarget() {
    if (!(this.askAhead > 0)) return 0;
    const pace = Math.max(this.takenNow, this.takenBefore);
    // One grant alone is no pace yet.
    return pace < 2 ? 0 : Math.min(pace, this.askAhead);
  }

  // The demand (+) or withdrawal (-) to write now on this.call.
  demandChange() {
    const exact = this.wanted - this.outstanding;
    // While unlimited nothing is withdrawn, even when the pace falls (a
    // withdrawal would race the grants already sent, which then come on
    // top of the next top-up).
    if (!this.unlimited) return exact;
    const target = this.aheadTarget();
    // Grants kept or coming beyond what the waiters miss.
    const ahead = this.kept + this.outstanding - this.wanted;
    if (target <= 0 || ahead >= Math.ceil(target / 2)) return Math.max(exact, 0);
    return target - ahead;
  }

  // Waits for `n` >= 1 grants until `deadline` (performance.now() ms;
  // Infinity: no limit). Never rejects for a timeout; rejects with
  // hooks.error(status) when the stream ends with an error, and with
  // hooks.closedError() when close() is called.
  // `fromKept`: the grants of the same wait already taken from the kept
  // ones (they count in the pace when the wait gets the rest).
  acquire(n, deadline, fromKept = 0) {
    if (this.closed) return Promise.reject(this.hooks.closedError());
    if (this.unsupported) return Promise.resolve({ got: 0, outcome: 'unsupported' });
    return new Promise((resolve, reject) => {
      const waiter = { missing: n, got: 0, fromKept, resolve, reject, timer: null };
      this.waiters.push(waiter);
      this.wanted += n;
      if (deadline !== Infinity) this.armTimeout(waiter, deadline);
      this.scheduleFlush();
      if (this.local.outage) this.degrade();
    });
  }

  // During an outage: local grants to the waiters (and a timer for the
  // next), or their UNAVAILABLE once the policy says fail fast and no
  // reconnect attempt is under way (an attempt decides first).
  degrade() {
    clearTimeout(this.localTimer);
    this.localTimer = null;
    const now = this.degradeNow();
    const action = this.local.action(now);
    if (action === LOCAL) {
      // Only between reconnect attempts: an attempt under way either fails
      // at once (no wait for ready) or reached the server, whose grants then
      // come first -- local grants would withdraw its demand.
      if (this.call !== null) return;
      while (this.wanted > 0 && this.local.take(this.wanted, now) > 0) this.handOut(1);
      if (this.waiters.length > 0) {
        const wait = Math.min(this.local.nextChange(now) - now, MAX_TIMER_MS);
        this.localTimer = setTimeout(() => this.degrade(), Math.max(wait, 0));
      }
    } else if (action === FAIL_FAST && this.call === null && this.reconnectTimer !== null) {
      const status = {
        code: grpc.status.UNAVAILABLE,
        details: this.local.failDetails(this.hooks.first().throttle),
      };
      this.settleAll((w) => w.reject(this.hooks.error(status)));
    }
  }

  // Gives `grants` to the waiters in FIFO order; returns what is left.
  handOut(grants) {
    let left = grants;
    while (left > 0 && this.waiters.length > 0) {
      const head = this.waiters[0];
      const taken = Math.min(left, head.missing);
      head.missing -= taken;
      head.got += taken;
      this.wanted -= taken;
      left -= taken;
      if (head.missing === 0) {
        this.waiters.shift();
        clearTimeout(head.timer);
        this.noteTaken(head.got + head.fromKept);
        head.resolve({ got: head.got, outcome: 'fuel' });
      }
    }
    return left;
  }

  // Cancels the stream and rejects every waiter with hooks.closedError().
  // For good: later acquire() calls reject at once.
  close() {
    if (this.closed) return;
    this.closed = true;
    clearTimeout(this.reconnectTimer);
    this.reconnectTimer = null;
    clearTimeout(this.localTimer);
    this.localTimer = null;
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
    this.wanted -= waiter.missing;
    this.scheduleFlush();
    waiter.resolve({ got: waiter.got, outcome: 'timed_out' });
  }

  // Writes the demand change once the current task has run. The changes
  // made while one task runs go out together in one message, netted: a
  // withdrawal and a new demand in the same turn cancel, which leaves the
  // server no less demand than the waiters miss and no more than when sent
  // one by one.
  scheduleFlush() {
    if (this.flushQueued) return;
    this.flushQueued = true;
    queueMicrotask(() => this.flush());
  }

  flush() {
    this.flushQueued = false;
    if (this.closed) return;
    if (this.call === null) {
      // No stream: open one unless waiting to reconnect (the demand goes in
      // its first message, counted from the waiters then).
      if (this.reconnectTimer === null && this.waiters.length > 0) this.open();
      return;
    }
    const change = this.demandChange();
    if (change > 0) {
      this.writeDemand({}, change);
    } else if (change < 0) {
      this.call.write({ withdraw: -change });
      this.outstanding = this.wanted;
    }
  }

  // Writes `message` with `demand` added, in as many messages as the
  // per-message limit needs.
  writeDemand(message, demand) {
    this.outstanding += demand;
    let left = demand;
    do {
      const part = Math.min(left, MAX_DEMAND_PER_MESSAGE);
      this.call.write({ ...message, demand: part });
      left -= part;
      message = {};
    } while (left > 0);
  }

  open() {
    const call = this.hooks.open(this.local.action(this.degradeNow()) === WAIT);
    this.call = call;
    this.outstanding = 0;
    // What the waiters miss (and what is asked ahead, if the last stream
    // said unlimited).
    this.writeDemand(this.hooks.first(), Math.max(this.demandChange(), 0));
    call.on('data', (response) => this.onMessage(call, response));
    whenEnded(call, (status) => this.onEnd(call, status));
  }

  onMessage(call, response) {
    if (call !== this.call) return; // a stream that ended for us already
    const grants = Math.max(Number(response.grants) || 0, 0);
    const stopped = response.end === 'END_REASON_STOPPED';
    this.hooks.backoff.reset(); // the stream works
    this.local.update(response);
    this.local.serverBack();
    clearTimeout(this.localTimer);
    this.localTimer = null;
    const wasUnlimited = this.unlimited;
    this.unlimited = response.unlimited === true;
    this.outstanding = Math.max(this.outstanding - grants, 0);
    if (grants > 0 && !stopped) this.hooks.granted();
    const left = this.handOut(grants);
    if (stopped) {
      // The last message: the next acquire() opens a new stream. The rest
      // of its grants are dropped with the kept ones.
      this.call = null;
      this.kept = 0;
      this.hooks.stopped();
      this.settleAll((w) => w.resolve({ got: w.got, outcome: 'stopped' }));
      return;
    }
    this.kept += left;
    // Exact again at once when the fuel is no longer unlimited (what was
    // asked ahead is withdrawn); else top up if the waiters took enough.
    if (wasUnlimited || this.unlimited) this.scheduleFlush();
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
        this.local.serverLost(this.degradeNow());
        this.reconnectTimer = setTimeout(() => {
          this.reconnectTimer = null;
          if (!this.closed && this.call === null && this.waiters.length > 0) this.open();
        }, this.hooks.backoff.nextDelay() * 1000);
        this.degrade();
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
    this.wanted = 0;
    for (const w of waiters) {
      clearTimeout(w.timer);
      settle(w);
    }
  }
}

module.exports = { AcquireStream, whenEnded, MAX_DEMAND_PER_MESSAGE, DEFAULT_ASK_AHEAD };
