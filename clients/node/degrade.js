// degrade.js: graceful degradation in the Node client -- what a Throttle's
// waiters do while the server cannot be reached, by the throttle's policy
// as the server last told it (ThrottleConfig.degradation; docs/DECISIONS.md,
// "Graceful degradation"). The same rules as the C++ client's LocalShare
// (client-lib/src/local_share.h).
//
// One LocalShare per Throttle handle, shared by its Acquire stream
// (acquire.js) and its AwaitFuel calls (index.js): one record of the policy,
// the share and the outage, and one pacer, so that the handle's local grants
// of both kinds together stay within the share (docs/clients.md, "AwaitFuel
// calls follow the same policy from the same state").
//
// Pure logic on times the caller passes (ms on a monotonic clock): no gRPC,
// no timers.
'use strict';

// What waiters do: the server is reachable or the policy is to wait; local
// grants from take(); or fail at once with UNAVAILABLE.
const WAIT = 'wait';
const LOCAL = 'local';
const FAIL_FAST = 'fail_fast';

// A google.protobuf.Duration as grpc-js decodes it, in ms.
function durationMs(d) {
  if (!d) return 0;
  return Number(d.seconds || 0) * 1000 + Number(d.nanos || 0) / 1e6;
}

class LocalShare {
  constructor() {
    this.degradation = 'DEGRADATION_WAIT';
    this.localShareForMs = 0;
    this.sharePerSecond = 0;
    this.lostAt = null; // ms; null: no outage
    this.nextLocal = -Infinity;
  }

  // Takes the policy and share of a grant message (AcquireResponse or
  // AwaitFuelResponse); one that carries no policy changes nothing.
  update(response) {
    const degradation = response.degradation;
    if (!degradation || degradation === 'DEGRADATION_UNSPECIFIED') return;
    this.degradation = degradation;
    this.localShareForMs = durationMs(response.local_share_for);
    this.sharePerSecond = Number(response.share_per_second) || 0;
  }

  // The server could not be reached at `now`: the outage starts at the
  // first such call; later ones change nothing until serverBack().
  serverLost(now) {
    if (this.lostAt !== null) return;
    this.lostAt = now;
    this.nextLocal = now;
  }

  // A message came from the server: local pacing stops at once.
  serverBack() {
    this.lostAt = null;
    this.nextLocal = -Infinity;
  }

  get outage() {
    return this.lostAt !== null;
  }

  // Whether a call waits for a server that cannot be reached (gRPC's wait
  // for ready): only under the wait policy, as last told. A fresh AwaitFuel
  // call that waited for ready would never see the server gone -- it would
  // wait out its deadline -- so under fail fast or local share it does not.
  get waitsForServer() {
    return this.degradation !== 'DEGRADATION_FAIL_FAST'
      && this.degradation !== 'DEGRADATION_LOCAL_SHARE';
  }

  // The details of the UNAVAILABLE that ends a wait under FAIL_FAST.
  failDetails(throttle) {
    const why = this.degradation === 'DEGRADATION_FAIL_FAST' ? 'fail fast' : 'no local share left';
    return `throttle ${throttle}: the server cannot be reached (degradation: ${why})`;
  }

  // WAIT, LOCAL or FAIL_FAST at `now`. LOCAL only with
  // DEGRADATION_LOCAL_SHARE, a share above zero and less than
  // local_share_for since the outage began; FAIL_FAST after that and with
  // DEGRADATION_FAIL_FAST.
  action(now) {
    if (this.lostAt === null) return WAIT;
    if (this.degradation === 'DEGRADATION_FAIL_FAST') return FAIL_FAST;
    if (this.degradation === 'DEGRADATION_LOCAL_SHARE') {
      return this.sharePerSecond > 0 && now - this.lostAt < this.localShareForMs
        ? LOCAL
        : FAIL_FAST;
    }
    return WAIT;
  }

  // Hands out up to `n` local grants at `now` (LOCAL only, else 0): a
  // smooth limiter at the last share, one grant and the next a whole
  // spacing later, so that from the outage's start never more than
  // share x elapsed + 1. Returns 0 or 1.
  take(n, now) {
    if (n <= 0 || this.action(now) !== LOCAL || now < this.nextLocal) return 0;
    this.nextLocal = now + 1000 / this.sharePerSecond;
    return 1;
  }

  // When the next local grant, or the end of local granting, is due (ms);
  // Infinity outside LOCAL.
  nextChange(now) {
    if (this.action(now) !== LOCAL) return Infinity;
    return Math.min(Math.max(this.nextLocal, now), this.lostAt + this.localShareForMs);
  }

  // What an AwaitFuel wait (index.js: a fail-if-late wait, a zero-timeout
  // poll, any wait against a server without Acquire) does at `now`, after
  // an attempt to reach the server failed, for the `missing` grants it
  // still waits for until `deadline` (ms; Infinity: none; <= now: a poll).
  // Returns {grants, next, wakeAt, expectedWaitMs}: the local grants it
  // takes now (0 or 1), then
  //   'retry'      WAIT: retry the server on its backoff, as ever
  //   'fail'       FAIL_FAST: end at once with UNAVAILABLE (failDetails())
  //   'fuel'       the local grant was all it missed
  //   'timed_out'  a poll with no local grant due now: not granted
  //   'too_late'   fail-if-late, and the next local grant is due after the
  //                deadline: ends at once, expectedWaitMs until that grant
  //                (Infinity when local granting ends before it)
  //   'sleep'      wait until wakeAt (the next local grant, or the end of
  //                local sharing) and ask again -- meanwhile retrying the
  //                server on its backoff, and ending at the deadline
  awaitStep(missing, now, deadline, failIfLate = false) {
    const action = this.action(now);
    if (action === WAIT) return { grants: 0, next: 'retry' };
    if (action === FAIL_FAST) return { grants: 0, next: 'fail' };
    const grants = this.take(missing, now);
    if (grants >= missing) return { grants, next: 'fuel' };
    if (deadline <= now) return { grants, next: 'timed_out' };
    const due = Math.max(this.nextLocal, now);
    if (failIfLate && due > deadline) {
      // No grant is expected when local granting ends first (as C++ and
      // Python: infinite / None).
      const end = this.lostAt + this.localShareForMs;
      return { grants, next: 'too_late', expectedWaitMs: due >= end ? Infinity : due - now };
    }
    return { grants, next: 'sleep', wakeAt: this.nextChange(now) };
  }
}

module.exports = { LocalShare, WAIT, LOCAL, FAIL_FAST, durationMs };
