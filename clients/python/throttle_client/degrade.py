"""Graceful degradation in the Python client: what a Throttle's waiters do
while the server cannot be reached, by the throttle's policy as the server
last told it (ThrottleConfig.degradation; docs/DECISIONS.md, "Graceful
degradation"). The same rules as the C++ client's LocalShare
(client-lib/src/local_share.h).

Pure logic on times the caller passes (monotonic seconds): no gRPC, no
threads, not thread-safe (the AcquireStream calls it under its lock; its
one LocalShare serves its AwaitFuel calls too, by call_step()).
"""
import math

from ._proto import pb

WAIT = "wait"  # the server is reachable, or the policy is to wait
LOCAL = "local"  # grants come from take(), paced by the client's clock
FAIL_FAST = "fail_fast"  # waits end at once with UNAVAILABLE


class LocalShare:
    """The throttle's degradation policy, the stream's last share, and the
    outage if the server is lost."""

    def __init__(self):
        self.degradation = pb.DEGRADATION_WAIT
        self.local_share_for = 0.0  # seconds
        self.share_per_second = 0.0
        self._lost_at = None  # monotonic seconds, None: no outage
        self._next_local = -math.inf

    def update(self, response):
        """Takes the policy and share of a grant message (AcquireResponse or
        AwaitFuelResponse); one that carries no policy changes nothing."""
        if response.degradation == pb.DEGRADATION_UNSPECIFIED:
            return
        self.degradation = response.degradation
        self.local_share_for = response.local_share_for.ToTimedelta(
        ).total_seconds()
        self.share_per_second = response.share_per_second

    def server_lost(self, now):
        """The server could not be reached at `now`: the outage starts at
        the first such call; later ones change nothing until server_back."""
        if self._lost_at is None:
            self._lost_at = now
            self._next_local = now

    def server_back(self):
        """A message came from the server: local pacing stops at once."""
        self._lost_at = None
        self._next_local = -math.inf

    @property
    def outage(self):
        return self._lost_at is not None

    def action(self, now):
        """WAIT, LOCAL or FAIL_FAST at `now`. LOCAL only with
        DEGRADATION_LOCAL_SHARE, a share above zero and less than
        local_share_for since the outage began; FAIL_FAST after that and
        with DEGRADATION_FAIL_FAST."""
        if self._lost_at is None:
            return WAIT
        if self.degradation == pb.DEGRADATION_FAIL_FAST:
            return FAIL_FAST
        if self.degradation == pb.DEGRADATION_LOCAL_SHARE:
            if (self.share_per_second > 0
                    and now - self._lost_at < self.local_share_for):
                return LOCAL
            return FAIL_FAST
        return WAIT

    def take(self, n, now):
        """Hands out up to n local grants at `now` (LOCAL only, else 0): a
        smooth limiter at the last share, one grant then the next a whole
        spacing later, so that from the outage's start never more than
        share x elapsed + 1. Returns how many (0 or 1)."""
        if n <= 0 or self.action(now) != LOCAL or now < self._next_local:
            return 0
        self._next_local = now + 1.0 / self.share_per_second
        return 1

    def next_grant(self, now):
        """When the next local grant is due (now at the earliest); math.inf
        outside LOCAL or when local granting ends first."""
        if self.action(now) != LOCAL:
            return math.inf
        due = max(self._next_local, now)
        if due >= self._lost_at + self.local_share_for:
            return math.inf
        return due

    def next_change(self, now):
        """When the next local grant, or the end of local granting, is due;
        math.inf outside LOCAL."""
        if self.action(now) != LOCAL:
            return math.inf
        return min(max(self._next_local, now),
                   self._lost_at + self.local_share_for)


# What an AwaitFuel wait does next during an outage (call_step()).
GRANTED = "granted"  # it has all it asked for
UNREACHABLE = "unreachable"  # raise UNAVAILABLE
TOO_LATE = "too_late"  # a fail-if-late wait: the next local grant is late
TIMED_OUT = "timed_out"  # its deadline passed
RETRY = "retry"  # call the server again
SLEEP = "sleep"  # until the time returned, then decide again


def call_step(action, missing, next_grant, next_change, deadline,
              fail_if_late, retry_at, now):
    """The next step of an AwaitFuel wait whose last call found the server
    gone (docs/clients.md, "AwaitFuel calls follow the same policy"), after
    it took the local grants due: `action` and `next_grant`, `next_change`
    as LocalShare gives them, `missing` what it still waits for, `deadline`
    its monotonic deadline (None: none), `fail_if_late` whether it is a
    fail-if-late wait (one with a timeout above zero), `retry_at` when its
    backoff lets it call the server again. Returns (step, value): value is
    the expected wait in seconds (or None) for TOO_LATE, the monotonic time
    to wake at for SLEEP, else None."""
    if missing <= 0:
        return GRANTED, None
    if action == FAIL_FAST:
        return UNREACHABLE, None
    if (action == LOCAL and fail_if_late and deadline is not None
            and next_grant > deadline):
        return TOO_LATE, (next_grant -
                          now if math.isfinite(next_grant) else None)
    if deadline is not None and now >= deadline:
        return TIMED_OUT, None
    if now >= retry_at:
        return RETRY, None
    return SLEEP, min(retry_at, next_change,
                      math.inf if deadline is None else deadline)
