"""FuelOutcome: what a Throttle.await_fuel() call ended with.

The same three outcomes as the C++ library's throttle::FuelOutcome
(kFuel, kStopped, kTimedOut) and the Node client's FuelOutcome (FUEL,
STOPPED, TIMED_OUT); a failure raises ThrottleError instead.

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
    The values are the names the three clients share: "fuel", "stopped",
    "timed_out"."""

    FUEL = "fuel"
    STOPPED = "stopped"
    TIMED_OUT = "timed_out"

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


class FuelResult(collections.namedtuple("FuelResult", ["outcome", "grants"])):
    """What Throttle.await_fuel_n(n) ended with: outcome, a FuelOutcome, and
    grants, the grants got (n with FUEL; 0 <= grants < n with TIMED_OUT or
    STOPPED: counted by the server, the worker may use them). True only for
    FUEL; .fuel, .stopped and .timed_out as a FuelOutcome's."""

    __slots__ = ()

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
