"""FuelOutcome: what a Throttle.await_fuel() call ended with.

The same outcomes as the C++ library's throttle::FuelOutcome (kFuel,
kStopped, kTimedOut, kTooLate) and the Node client's FuelOutcome (FUEL,
STOPPED, TIMED_OUT, TOO_LATE); a failure raises ThrottleError instead.
TOO_LATE comes only from a wait that asked fail_if_late=True.

A FuelOutcome is true only for FUEL, so the seed's loop reads as before:

    while not throttle.kill_flag.is_set():
        if throttle.await_fuel():        # FUEL
            work()

and a caller that must tell the other two apart asks:

    outcome = throttle.await_fuel(timeout=5)
    if outcome.timed_out: ...           # the wait limit passed; still running
    elif outcome.stopped: ...           # the throttle stopped; kill_flag set

(It is not the bool True or False: compare with FuelOutcome members, or
use truth and the properties, not `is True` or `== False`.)

Throttle.await_fuel_n(n) returns a FuelResult: the outcome and how many
grants came (all n with FUEL; fewer with TIMED_OUT or STOPPED, and those
were counted, so use them).
"""
import collections
import enum


class FuelOutcome(enum.Enum):
    """FUEL: one grant, do one piece of work. STOPPED: the throttle was
    stopped (kill_flag is set). TIMED_OUT: the timeout passed without a
    grant (kill_flag unchanged; also when the server stayed unreachable).
    TOO_LATE: only with fail_if_late=True, the server expected the next
    grant later than the timeout allows and the call did not wait.
    The values are the names the three clients share: "fuel", "stopped",
    "timed_out", "too_late"."""

    FUEL = "fuel"
    STOPPED = "stopped"
    TIMED_OUT = "timed_out"
    TOO_LATE = "too_late"

    def __bool__(self):
        return self is FuelOutcome.FUEL

    @property
    def fuel(self):
        """True for FUEL."""
        return self is FuelOutcome.FUEL

    @property
    def stopped(self):
        """True for STOPPED."""
        return self is FuelOutcome.STOPPED

    @property
    def timed_out(self):
        """True for TIMED_OUT."""
        return self is FuelOutcome.TIMED_OUT

    @property
    def too_late(self):
        """True for TOO_LATE."""
        return self is FuelOutcome.TOO_LATE


class FuelResult(collections.namedtuple("FuelResult", ["outcome", "grants"])):
    """What Throttle.await_fuel_n(n) ended with: outcome, a FuelOutcome, and
    grants, the grants got (n with FUEL; 0 <= grants < n with TIMED_OUT,
    STOPPED or TOO_LATE: counted by the server, the worker may use them).
    True only for FUEL; .fuel, .stopped, .timed_out and .too_late as a
    FuelOutcome's. With TOO_LATE, .expected_wait is how long (seconds) the
    server expected the next grant to take; None otherwise. It is still a
    pair: (outcome, grants) unpacks and compares as before."""

    def __new__(cls, outcome, grants, expected_wait=None):
        result = super().__new__(cls, outcome, grants)
        result.expected_wait = expected_wait
        return result

    def __bool__(self):
        return self.outcome is FuelOutcome.FUEL

    @property
    def fuel(self):
        """True for FUEL (all n grants)."""
        return self.outcome is FuelOutcome.FUEL

    @property
    def stopped(self):
        """True for STOPPED."""
        return self.outcome is FuelOutcome.STOPPED

    @property
    def timed_out(self):
        """True for TIMED_OUT."""
        return self.outcome is FuelOutcome.TIMED_OUT

    @property
    def too_late(self):
        """True for TOO_LATE."""
        return self.outcome is FuelOutcome.TOO_LATE


FuelCheck = collections.namedtuple("FuelCheck",
                                   ["granted", "stopped", "retry_after"])
FuelCheck.__doc__ = """What Throttle.check_fuel() found: granted (one grant
taken), stopped (the throttle is stopped; kill_flag set), retry_after
(seconds until a grant is expected, when neither and the throttle runs;
None otherwise)."""
