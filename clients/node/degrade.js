// degrade.js: graceful degradation in the Node client -- what a Throttle's
// waiters do while the server cannot be reached, by the throttle's policy
// as the server last told it (ThrottleConfig.degradation; docs/DECISIONS.md,
// "Graceful degradation"). The same rules as the C++ client's LocalShare
// (client-lib/src/local_share.h).
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
}

module.exports = { LocalShare, WAIT, LOCAL, FAIL_FAST, durationMs };
