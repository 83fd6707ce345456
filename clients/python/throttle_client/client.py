"""throttle_client.Throttle: the seed's (mp_throttle) API over gRPC.

One object serves both sides, as the seed's Throttle does:

  worker side      await_fuel(), has_fuel(), emit(), kill_flag.is_set()
  controller side  create(), configure(), delete(), info(), start(), stop(),
                   latest(), mean()

It is safe to pass to multiprocessing workers (fork or spawn): each process
opens its own gRPC channel on first use, and the object pickles without its
channel. Thread-safe: any number of threads may call it at once.

Intervals (await_fuel's timeout, what is left of it for each call and each
retry) are measured with time.monotonic(), never the wall clock.

A worker's waits go over one Acquire stream per Throttle and process
(acquire.py, docs/acquire-client-spec.md), opened by its first await_fuel
and kept open; a wait that must not wait (timeout <= 0) is one AwaitFuel
call, as it is against a server that has no Acquire.
"""
import collections
import datetime
import math
import os
import threading
import time

import grpc
from google.protobuf import duration_pb2, field_mask_pb2

from ._proto import pb, pb_grpc
from .acquire import DEFAULT_ASK_AHEAD, FALLBACK, MAX_DEMAND, AcquireStream
from .backoff import Backoff
from .degrade import SLEEP, TIMED_OUT, TOO_LATE, UNREACHABLE, call_step
from .errors import ThrottleError
from .errors import closed_error as _closed_error
from .outcome import FuelCheck, FuelOutcome, FuelResult
from .security import ChannelSecurity
from .watch import Snapshot, Watch

_MODES = {
    "smooth": pb.MODE_SMOOTH,
    "window": pb.MODE_WINDOW,
    "bucket": pb.MODE_BUCKET,
    "unbounded": pb.MODE_UNBOUNDED,
    "monitor-only": pb.MODE_MONITOR_ONLY,
    "monitor_only": pb.MODE_MONITOR_ONLY,
}
_MODE_NAMES = {
    pb.MODE_SMOOTH: "smooth",
    pb.MODE_WINDOW: "window",
    pb.MODE_BUCKET: "bucket",
    pb.MODE_UNBOUNDED: "unbounded",
    pb.MODE_MONITOR_ONLY: "monitor-only",
}
_DEGRADATIONS = {
    "wait": pb.DEGRADATION_WAIT,
    "fail_fast": pb.DEGRADATION_FAIL_FAST,
    "local_share": pb.DEGRADATION_LOCAL_SHARE,
}
_DEGRADATION_NAMES = {value: name for name, value in _DEGRADATIONS.items()}
# Listed unspecified when it is wait (ThrottleConfig.degradation).
_DEGRADATION_NAMES[pb.DEGRADATION_UNSPECIFIED] = "wait"
_STATE_NAMES = {
    pb.STATE_CREATED: "created",
    pb.STATE_RUNNING: "running",
    pb.STATE_STOPPED: "stopped",
}


def _seed_tuple(name, fields):
    """A namedtuple that prints like a plain tuple, as the seed's values."""
    cls = collections.namedtuple(name, fields)
    cls.__repr__ = tuple.__repr__
    cls.__str__ = tuple.__repr__
    return cls


# throttle.stop(): the seed's (runtime, total_emissions,
# mean_time_between_processes, mean_processes_per_second).
StopStats = _seed_tuple(
    "StopStats",
    ["runtime", "total_emissions", "mean_time_between", "mean_per_second"])
# throttle.latest(): (seconds between emissions, emissions per second) over
# the last window.
LatestStats = _seed_tuple("LatestStats", ["seconds_between", "per_second"])
# throttle.mean(): (mean seconds between emissions, mean per second) since
# the first start.
MeanStats = _seed_tuple("MeanStats", ["seconds_between", "per_second"])
# What one worker_id got (WorkerStats in the proto): worker_id is "" for
# workers that sent none and on the one `others` entry, which sums the
# workers beyond the server's bound.
WorkerStats = collections.namedtuple(
    "WorkerStats",
    ["worker_id", "grants", "emissions", "grants_per_second", "others"])
# throttle.latest(window, include_workers=True): the window's statistics
# and `workers`, a list of WorkerStats (most grants first).
# current_max_n is the max_n in effect (the adaptive ceiling's rate;
# max_n otherwise), as ThrottleInfo.current_max_n.
LatestWorkers = collections.namedtuple(
    "LatestWorkers",
    ["seconds_between", "per_second", "emissions", "window", "workers",
     "current_max_n"], defaults=(0,))
# throttle.mean(include_workers=True): the statistics since the first
# start, Jain's fairness index of the grants per worker, and `workers`.
MeanWorkers = collections.namedtuple("MeanWorkers", [
    "seconds_between", "per_second", "runtime", "total_emissions",
    "fairness_index", "workers"
])


def _workers(messages):
    return [
        WorkerStats(w.worker_id, w.grants, w.emissions, w.grants_per_second,
                    w.others) for w in messages
    ]

# A throttle as listed by the server (info(), create(), configure()).
# catch_up is in seconds (the server fills in its default); None from a
# server that does not list it. warm_up is in seconds (0: no warm-up) and
# warm_up_from the fraction a ramp starts from (the server fills in 1/3
# when warm_up is set; 0 without a warm-up). starvation_bound is in seconds
# (0: none; priorities). adaptive is the throttle's
# Adaptive settings (defaults filled in) or None, and current_max_n the
# max_n in effect (the adaptive ceiling's rate; max_n otherwise).
# degradation is what workers do while the server cannot be reached
# ("wait", "fail_fast" or "local_share") and local_share_for how long a
# local share lasts, in seconds (0 without).
ThrottleInfo = collections.namedtuple("ThrottleInfo", [
    "name", "max_n", "per", "mode", "burst", "manual_emit", "state",
    "waiting_streams", "total_emissions", "catch_up", "warm_up",
    "warm_up_from", "starvation_bound", "adaptive", "current_max_n",
    "degradation", "local_share_for"
], defaults=(0.0, 0.0, 0.0, None, 0, "wait", 0.0))

# The adaptive ceiling of a throttle (AdaptiveConfig in the proto): the
# rate moves between floor_n and max_n by the outcomes workers report
# (report()). window is in seconds; a 0 (or None window) means the
# server's default (floor 1, target 0.05, window 1 s, increase 1, factor
# 0.5, at least 10 outcomes a window).
Adaptive = collections.namedtuple("Adaptive", [
    "floor_n", "target_rejection_ratio", "window", "increase_n",
    "decrease_factor", "min_outcomes"
], defaults=(0, 0.0, None, 0, 0.0, 0))


def _adaptive_proto(adaptive):
    """An Adaptive (or a dict of its fields) as a pb.AdaptiveConfig.
    TypeError for anything else."""
    if isinstance(adaptive, dict):
        adaptive = Adaptive(**adaptive)
    if not isinstance(adaptive, Adaptive):
        raise TypeError("adaptive: an Adaptive or a dict of its fields, not "
                        f"{type(adaptive).__name__}")
    proto = pb.AdaptiveConfig(
        floor_n=adaptive.floor_n,
        target_rejection_ratio=_fraction(adaptive.target_rejection_ratio,
                                         "target_rejection_ratio"),
        increase_n=adaptive.increase_n,
        decrease_factor=_fraction(adaptive.decrease_factor,
                                  "decrease_factor"),
        min_outcomes=adaptive.min_outcomes)
    if adaptive.window is not None:
        proto.window.CopyFrom(_signed_duration(adaptive.window, "window"))
    return proto


def _adaptive(c):
    if not c.HasField("adaptive"):
        return None
    a = c.adaptive
    return Adaptive(a.floor_n, a.target_rejection_ratio,
                    a.window.ToNanoseconds() / 1e9, a.increase_n,
                    a.decrease_factor, a.min_outcomes)


def _info(message):
    c = message.config
    catch_up = None
    if c.HasField("catch_up"):
        catch_up = c.catch_up.ToNanoseconds() / 1e9
    return ThrottleInfo(message.name, c.max_n, c.per_seconds,
                        _MODE_NAMES.get(c.mode, str(c.mode)), c.burst,
                        c.manual_emit,
                        _STATE_NAMES.get(message.state, str(message.state)),
                        message.waiting_streams, message.total_emissions,
                        catch_up, c.warm_up.ToNanoseconds() / 1e9,
                        c.warm_up_from,
                        c.starvation_bound.ToNanoseconds() / 1e9,
                        _adaptive(c), message.current_max_n,
                        _DEGRADATION_NAMES.get(c.degradation,
                                               str(c.degradation)),
                        c.local_share_for.ToNanoseconds() / 1e9)


def _snapshot(message):
    """The Snapshot of a WatchThrottleResponse."""
    latest, mean = message.latest, message.mean
    return Snapshot(
        time=message.time.ToDatetime(tzinfo=datetime.timezone.utc),
        info=_info(message.throttle),
        latest=LatestStats(latest.seconds_between_emissions,
                           latest.emissions_per_second),
        mean=MeanStats(mean.mean_seconds_between_emissions,
                       mean.mean_emissions_per_second),
        changed=message.changed,
        message=message)


def _config(max_n, per, mode, burst, manual_emit, catch_up, warm_up=None,
            warm_up_from=None, starvation_bound=None, adaptive=None,
            degradation=None, local_share_for=None):
    """A ThrottleConfig; catch_up None leaves it unset (the default), as
    warm_up None (no warm-up), warm_up_from None (1/3), starvation_bound
    None (none), degradation None (wait) and local_share_for None."""
    config = pb.ThrottleConfig(max_n=max_n, per_seconds=per,
                               mode=_mode(mode), burst=burst,
                               manual_emit=manual_emit)
    if catch_up is not None:
        config.catch_up.CopyFrom(_signed_duration(catch_up, "catch_up"))
    if warm_up is not None:
        config.warm_up.CopyFrom(_signed_duration(warm_up, "warm_up"))
    if warm_up_from is not None:
        config.warm_up_from = _fraction(warm_up_from, "warm_up_from")
    if starvation_bound is not None:
        config.starvation_bound.CopyFrom(
            _signed_duration(starvation_bound, "starvation_bound"))
    if adaptive is not None:
        config.adaptive.CopyFrom(_adaptive_proto(adaptive))
    if degradation is not None:
        config.degradation = _degradation(degradation)
    if local_share_for is not None:
        config.local_share_for.CopyFrom(
            _signed_duration(local_share_for, "local_share_for"))
    return config


def _fraction(value, name):
    """`value` as a float, as given: the server checks its range. TypeError
    for what is not a number."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"{name}: a number, not {type(value).__name__}")
    return float(value)


# update()'s "not given": None is a value there (catch_up: the default).
_UNSET = object()


def _partial_config(max_n, per, mode, burst, manual_emit, catch_up,
                    warm_up=_UNSET, warm_up_from=_UNSET,
                    starvation_bound=_UNSET, adaptive=_UNSET,
                    degradation=_UNSET, local_share_for=_UNSET):
    """(ThrottleConfig, FieldMask) of the settings given (not _UNSET), for
    a partial ConfigureThrottle. TypeError if none is given."""
    config = pb.ThrottleConfig()
    paths = []
    if max_n is not _UNSET:
        config.max_n = max_n
        paths.append("max_n")
    if per is not _UNSET:
        config.per_seconds = per
        paths.append("per_seconds")
    if mode is not _UNSET:
        config.mode = _mode(mode)
        paths.append("mode")
    if burst is not _UNSET:
        config.burst = burst
        paths.append("burst")
    if manual_emit is not _UNSET:
        config.manual_emit = manual_emit
        paths.append("manual_emit")
    if catch_up is not _UNSET:
        if catch_up is not None:
            config.catch_up.CopyFrom(_signed_duration(catch_up, "catch_up"))
        paths.append("catch_up")
    if warm_up is not _UNSET:
        if warm_up is not None:
            config.warm_up.CopyFrom(_signed_duration(warm_up, "warm_up"))
        paths.append("warm_up")
    if warm_up_from is not _UNSET:
        if warm_up_from is not None:
            config.warm_up_from = _fraction(warm_up_from, "warm_up_from")
        paths.append("warm_up_from")
    if starvation_bound is not _UNSET:
        if starvation_bound is not None:
            config.starvation_bound.CopyFrom(
                _signed_duration(starvation_bound, "starvation_bound"))
        paths.append("starvation_bound")
    if adaptive is not _UNSET:
        if adaptive is not None:
            config.adaptive.CopyFrom(_adaptive_proto(adaptive))
        paths.append("adaptive")
    if degradation is not _UNSET:
        if degradation is not None:
            config.degradation = _degradation(degradation)
        paths.append("degradation")
    if local_share_for is not _UNSET:
        if local_share_for is not None:
            config.local_share_for.CopyFrom(
                _signed_duration(local_share_for, "local_share_for"))
        paths.append("local_share_for")
    if not paths:
        raise TypeError("update() needs at least one of max_n, per, mode, "
                        "burst, manual_emit, catch_up, warm_up, "
                        "warm_up_from, starvation_bound, adaptive, "
                        "degradation, local_share_for")
    return config, field_mask_pb2.FieldMask(paths=paths)


def _mode(mode):
    if isinstance(mode, int):
        return mode
    try:
        return _MODES[mode]
    except KeyError:
        raise ValueError(f"unknown mode {mode!r}; one of "
                         f"{', '.join(sorted(set(_MODES) - {'monitor_only'}))}"
                         ) from None


def _degradation(degradation):
    """A Degradation value: one of _DEGRADATIONS' names or the proto's
    enum value (as mode). ValueError for an unknown name, TypeError for
    another type."""
    if isinstance(degradation, int) and not isinstance(degradation, bool):
        return degradation  # the server checks the range
    if not isinstance(degradation, str):
        raise TypeError("degradation: a name or a pb.Degradation value, not "
                        f"{type(degradation).__name__}")
    try:
        return _DEGRADATIONS[degradation]
    except KeyError:
        raise ValueError(f"degradation: unknown {degradation!r}; one of "
                         f"{', '.join(_DEGRADATIONS)}") from None


def _duration(seconds):
    d = duration_pb2.Duration()
    d.FromNanoseconds(int(round(max(seconds, 0.0) * 1e9)))
    return d


def _signed_duration(value, name):
    """A Duration of `value` (seconds as a number, or a datetime.timedelta)
    as given, sign included: the server checks its range. ValueError for a
    value that is not finite, TypeError for another type."""
    if isinstance(value, datetime.timedelta):
        nanos = (value // datetime.timedelta(microseconds=1)) * 1000
    elif isinstance(value, (int, float)) and not isinstance(value, bool):
        if not math.isfinite(value):
            raise ValueError(f"{name}: {value!r} is not a finite duration")
        nanos = int(round(value * 1e9))
    else:
        raise TypeError(f"{name}: seconds (a number) or a datetime.timedelta,"
                        f" not {type(value).__name__}")
    d = duration_pb2.Duration()
    d.FromNanoseconds(nanos)
    return d


class KillFlag:
    """The seed's kill_flag: set once the throttle was seen stopped.

    In a worker it is set by await_fuel()/has_fuel() when the server says
    the throttle stopped, and cleared again by the next grant (the throttle
    was restarted). In the controller it is set by stop() and cleared by
    start(). is_set() never blocks and makes no call.
    """

    def __init__(self):
        self._event = threading.Event()

    def is_set(self):
        return self._event.is_set()

    def wait(self, timeout=None):
        return self._event.wait(timeout)

    def set(self):
        self._event.set()

    def clear(self):
        self._event.clear()


# The least time gRPC C-core gives one connection attempt
# (grpc.min_reconnect_backoff_ms; default 20 s): long enough for a handshake
# with a busy server, short enough that an attempt whose SYN went unanswered
# gives way to a fresh one soon after the server's host is back. The same as
# the C++ library's kMinConnectTimeout.
MIN_CONNECT_TIMEOUT_MS = 5000


def channel_options(backoff_initial, backoff_max, extra=()):
    """The channel options of a Throttle: gRPC's reconnect backoff made the
    client's own (backoff_initial seconds, growing x1.6 with +-20% jitter up
    to backoff_max), so that after an outage a worker reconnects within
    about backoff_max of the server's return. gRPC's default (1 s up to
    120 s) governs how soon a waiting call can reach a server that came
    back, whatever await_fuel's own backoff. `extra` options come last and
    may override these."""

    def ms(seconds):
        return int(round(min(max(seconds * 1000.0, 1.0), 2.0**31 - 1)))

    initial_ms = ms(backoff_initial)
    return (("grpc.initial_reconnect_backoff_ms", initial_ms),
            ("grpc.max_reconnect_backoff_ms", max(initial_ms,
                                                  ms(backoff_max))),
            ("grpc.min_reconnect_backoff_ms", MIN_CONNECT_TIMEOUT_MS),
            ) + tuple(extra)


# Guards opening a channel; made anew in a forked child, where another
# thread of the parent may have held it.
_open_lock = threading.Lock()


def _reset_open_lock():
    global _open_lock
    _open_lock = threading.Lock()


os.register_at_fork(after_in_child=_reset_open_lock)


class _ProcessState:
    """What must not cross a fork: the channel, its stub, the lock, calls,
    the Acquire stream (`fuel`, set by Throttle._process())."""

    def __init__(self, address, options, security):
        self.pid = os.getpid()
        credentials = security.channel_credentials()  # reads its files
        if credentials is None:
            self.channel = grpc.insecure_channel(address, options=options)
        else:
            self.channel = grpc.secure_channel(address, credentials,
                                               options=options)
        self.stub = pb_grpc.ThrottleStub(self.channel)
        self.lock = threading.Lock()
        self.active = set()  # calls in flight, for close()
        self.closed = threading.Event()
        self.fuel = None  # the AcquireStream


class Throttle:
    """A handle on the throttle `name` of the server at `address`.

    address: a gRPC target, e.g. "127.0.0.1:50051".
    name: the throttle's name.
    worker_id: who this worker is, for the server's logs (<= 128 bytes).
    weight: this worker's share relative to other waiting workers (1..1000).
      The threads of one process that share a Throttle share its one
      Acquire stream, so they also share one place (and this weight) in
      the throttle's order; give each thread a Throttle of its own for a
      share of its own.
    priority: this worker's priority class (0..9, default 0, the lowest):
      the server serves the highest class waiting first; a lower class
      waits while a higher one waits, unless the throttle has a
      starvation_bound. As weight, one per Throttle (its Acquire stream).
    backoff_initial, backoff_max: seconds between reconnection attempts
      after UNAVAILABLE (doubling, +-20% jitter): a new Acquire stream, or
      a new AwaitFuel call.
    deadline_slack: added to a finite timeout to form an AwaitFuel call's
      gRPC deadline, so that the server's "wait limit passed" comes first
      (the Acquire stream has no deadline: its waiters' timeouts are kept
      here).
    call_timeout: deadline of every unary call, in seconds.
    wait_for_ready: False: unary calls to an unreachable server fail at once
      with UNAVAILABLE; True: they wait for it up to call_timeout.
      (await_fuel always waits.)
    channel_options: extra gRPC channel arguments (the reconnect backoff
      is set from backoff_initial and backoff_max: see channel_options()).
    security: a ChannelSecurity (TLS, mTLS, a bearer token, the server's
      name for a multi-address target); None takes it from the environment
      (ChannelSecurity.from_env(): THROTTLE_TLS_CA, THROTTLE_TLS_CERT,
      THROTTLE_TLS_KEY, THROTTLE_TOKEN, THROTTLE_TOKEN_FILE,
      THROTTLE_TLS_SERVER_NAME; none set: plaintext). An explicit one wins
      whole: the environment is then not read. Raises ValueError for
      settings that cannot work (a token without TLS, ...), TypeError for
      something else than a ChannelSecurity. Its files are read when this
      process opens its channel (its first call): a file that cannot be
      read fails that call with ThrottleError INVALID_ARGUMENT.
    ask_ahead: the most grants the Acquire stream asks for ahead of its
      waiters while the server says fuel is unlimited (a monitor-only
      throttle): as many as this process's await_fuel calls took in the
      last millisecond, up to ask_ahead, so that a fast loop gets most of
      its grants without a round trip each, while a worker slower than a
      grant a millisecond asks for nothing ahead. The server counts grants
      as emissions when it sends them, so when the Throttle closes or the
      throttle stops, up to this many may be counted and unused. 0: ask
      only for what the waiters wait for (exact counts). Limited modes
      never ask ahead. (TankOptions::ask_ahead in C++; default 16.)
    clock: a function returning monotonic seconds on which that pace is
      measured (None: time.monotonic); for tests. Timeouts always run on
      time.monotonic().
    """

    def __init__(self, address, name, *, worker_id="", weight=1, priority=0,
                 backoff_initial=0.05, backoff_max=2.0, deadline_slack=0.2,
                 call_timeout=10.0, wait_for_ready=False, channel_options=(),
                 security=None, ask_ahead=DEFAULT_ASK_AHEAD, clock=None):
        if (isinstance(ask_ahead, bool) or not isinstance(ask_ahead, int)
                or ask_ahead < 0 or ask_ahead > MAX_DEMAND):
            raise ValueError(f"ask_ahead must be an int in [0, {MAX_DEMAND}]"
                             f", not {ask_ahead!r}")
        if security is None:
            security = ChannelSecurity.from_env()
        elif not isinstance(security, ChannelSecurity):
            raise TypeError("security: a throttle_client.ChannelSecurity, "
                            f"not {type(security).__name__}")
        self.address = address
        self.name = name
        self.worker_id = worker_id
        self.weight = weight
        self.priority = priority
        self.backoff_initial = backoff_initial
        self.backoff_max = backoff_max
        self.deadline_slack = deadline_slack
        self.call_timeout = call_timeout
        self.wait_for_ready = wait_for_ready
        self.channel_options = tuple(channel_options)
        self.security = security
        self.ask_ahead = ask_ahead
        self.clock = clock
        self.kill_flag = KillFlag()
        self._state = None
        self._closed = False  # permanent once set by close()

    # --- pickling and fork: the channel stays in the process that made it.
    # A closed Throttle stays closed in its copies (pickled or forked).

    def __getstate__(self):
        state = self.__dict__.copy()
        state["_state"] = None
        state["kill_flag"] = self.kill_flag.is_set()
        return state

    def __setstate__(self, state):
        killed = state.pop("kill_flag")
        self.__dict__.update(state)
        self.kill_flag = KillFlag()
        if killed:
            self.kill_flag.set()

    def _process(self):
        """This process's channel and stub, opened on first use. Raises the
        "closed" ThrottleError (CANCELLED) after close()."""
        if self._closed:
            raise _closed_error()
        state = self._state
        if state is None or state.pid != os.getpid():
            with _open_lock:
                if self._closed:
                    raise _closed_error()
                state = self._state
                if state is None or state.pid != os.getpid():
                    # First use here, or a forked child that inherited the
                    # parent's channel: open our own (the inherited one is
                    # never used in the child).
                    state = _ProcessState(
                        self.address,
                        channel_options(self.backoff_initial,
                                        self.backoff_max,
                                        self._extra_channel_options()),
                        self.security)
                    state.fuel = AcquireStream(
                        state.stub,
                        pb.AcquireRequest(throttle=self.name,
                                          worker_id=self.worker_id,
                                          weight=self.weight,
                                          priority=self.priority),
                        self.kill_flag,
                        Backoff(self.backoff_initial, self.backoff_max),
                        ask_ahead=self.ask_ahead,
                        clock=self.clock or time.monotonic,
                        channel=state.channel)
                    self._state = state
        return state

    def _extra_channel_options(self):
        """The security's channel options (server_name), unless the
        caller's channel_options set the same key (C-core takes the first
        of two, so the caller's would not win by coming later), then the
        caller's."""
        own = {key for key, _ in self.channel_options}
        return tuple(option for option in self.security.channel_options()
                     if option[0] not in own) + self.channel_options

    def close(self):
        """Closes the Throttle for good: every call in flight (an await_fuel
        waiting in another thread included) and every later call raises
        ThrottleError CANCELLED "throttle_client.Throttle is closed" at
        once, and kill_flag is set so that the seed's loop ends. Closes this
        process's channel. Closing again does nothing. Never blocks. (As
        Tank::Close() in C++ and close() in Node.)"""
        with _open_lock:
            self._closed = True
            state, self._state = self._state, None
        self.kill_flag.set()
        if state is None or state.pid != os.getpid():
            return  # none, or the parent's (a forked child never uses it)
        with state.lock:
            state.closed.set()
            calls = list(state.active)
        state.fuel.close()
        for call in calls:
            call.cancel()
        state.channel.close()  # also ends unary calls in flight

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    # --- unary calls -------------------------------------------------------

    def _unary(self, method, request):
        state = self._process()
        try:
            return getattr(state.stub, method)(
                request, timeout=self.call_timeout,
                wait_for_ready=self.wait_for_ready)
        except grpc.RpcError as error:
            if self._closed and error.code() == grpc.StatusCode.CANCELLED:
                raise _closed_error() from None
            raise ThrottleError.from_rpc_error(error) from None
        except ValueError:
            # gRPC refuses a call on a channel close() closed meanwhile.
            if self._closed:
                raise _closed_error() from None
            raise

    # --- worker side -------------------------------------------------------

    def await_fuel(self, timeout=None, fail_if_late=False):
        """Blocks until one grant of fuel is available to this worker.

        Returns a FuelOutcome, true only for FUEL:
          FuelOutcome.FUEL       one grant (do one piece of work);
          FuelOutcome.STOPPED    the throttle was stopped (kill_flag is set);
          FuelOutcome.TIMED_OUT  `timeout` seconds passed without a grant
                                 (kill_flag unchanged).
        None waits for ever; 0 (or less) takes fuel only if it is available
        at once. The timeout is measured with time.monotonic().

        Takes a grant kept from earlier first (one that reached this
        Throttle after its waiter had timed out). Otherwise it asks for one
        grant on the Throttle's Acquire stream (opened by the first call and
        kept open; one per Throttle and process), so fuel only goes to a
        worker that waits for it, in the order the calls came. With a
        timeout <= 0 it makes one AwaitFuel call (count=1, wait_limit=0),
        answered at once. The stream waits for a server that is not up yet
        (wait_for_ready); when the server ends it with UNAVAILABLE or
        cancels it (restart, shutdown, failover) a new one is opened after a
        backoff delay, and the call keeps waiting until `timeout` -- or, by
        the throttle's degradation policy, fails fast with UNAVAILABLE or
        takes local grants at the last share (docs/clients.md, "When the
        server is gone"; the same for the AwaitFuel calls). Raises
        ThrottleError for anything else (NOT_FOUND: no such throttle or it
        was deleted, INVALID_ARGUMENT, PERMISSION_DENIED, CANCELLED once the
        Throttle is closed, also when close() is called while this waits).

        fail_if_late=True (deadline-aware admission, with a finite timeout
        > 0): the server says at once when the grant is not expected within
        `timeout` -- given the workers waiting ahead, their weights and the
        rate -- and this returns FuelOutcome.TOO_LATE instead of waiting it
        out (await_fuel_n(1, timeout, fail_if_late=True) also says the
        expected wait). An estimate: an admitted wait may still time out
        when others join ahead or the rate changes. Such a wait uses
        AwaitFuel calls, not the Acquire stream, which has no such check.
        Ignored with no timeout or one <= 0.
        """
        return self._await(1, timeout, fail_if_late)[0]

    def await_fuel_n(self, n, timeout=None, fail_if_late=False):
        """Blocks until n grants of fuel (n >= 1) are available to this
        worker, asked for at once: as await_fuel(), for n pieces of work.

        Returns a FuelResult (outcome, grants), true only when all n came:
          (FUEL, n);
          (TIMED_OUT, k)  `timeout` passed with k < n grants got: they were
                          counted as emissions, so use them (k pieces of
                          work);
          (STOPPED, k)    the throttle stopped (kill_flag is set) with k < n
                          got.
        With a timeout <= 0 it makes one AwaitFuel call (count=n,
        wait_limit=0): what is available at once. fail_if_late=True as in
        await_fuel(), checked again after each grant for the next:
          (TOO_LATE, k)   the next grant was not expected in time, k < n
                          got (use them); .expected_wait says in how many
                          seconds the server expected it.
        Raises ValueError for
        n outside [1, 1000000] (what one Acquire message may ask for),
        ThrottleError as await_fuel() does (grants got before the error are
        not reported)."""
        if (isinstance(n, bool) or not isinstance(n, int) or n < 1
                or n > MAX_DEMAND):
            raise ValueError(f"await_fuel_n: n must be an int in "
                             f"[1, {MAX_DEMAND}], not {n!r}")
        return FuelResult(*self._await(n, timeout, fail_if_late))

    def _await(self, n, timeout, fail_if_late=False):
        """(outcome, grants, expected_wait) of a wait for n grants: spare
        grants, then the Acquire stream, or AwaitFuel calls when timeout <=
        0, with fail_if_late, or when the server has no Acquire."""
        state = self._process()
        fuel = state.fuel
        deadline = None
        if timeout is not None:
            if timeout <= 0 or fuel.unimplemented or fail_if_late:
                deadline = time.monotonic() + max(timeout, 0.0)
                return self._await_by_calls(state, n, deadline,
                                            fail_if_late=fail_if_late)
            deadline = time.monotonic() + timeout
        elif fuel.unimplemented:
            return self._await_by_calls(state, n, None)
        outcome, got = fuel.acquire(n, deadline)
        expected_wait = None
        if outcome is FALLBACK:
            outcome, more, expected_wait = self._await_by_calls(
                state, n - got, deadline, spare=False)
            got += more
        return outcome, got, expected_wait

    def _await_by_calls(self, state, n, deadline, spare=True,
                        fail_if_late=False):
        """(outcome, grants, expected_wait) of a wait for n grants by
        AwaitFuel calls (count = what is still missing), spare grants first
        (if `spare`); expected_wait (seconds) only with TOO_LATE. While the
        server answers UNAVAILABLE or cancels a call it calls again after a
        backoff delay, until the monotonic `deadline`. Such an end starts
        the handle's outage, shared with its Acquire stream (acquire.py),
        and the throttle's degradation decides meanwhile: wait as before;
        fail fast raises UNAVAILABLE at once; local share takes local
        grants from the handle's one pacer as they fall due (TOO_LATE at
        once with fail_if_late when the next is due after the deadline),
        until local_share_for has passed, then as fail fast. Any answer of
        the server ends the outage."""
        fuel = state.fuel
        # A poll's deadline is now: fail_if_late applies to a timeout > 0.
        admission = (fail_if_late and deadline is not None
                     and deadline > time.monotonic())
        got = fuel.take_spare(n) if spare else 0
        backoff = Backoff(self.backoff_initial, self.backoff_max)
        while got < n:
            grants, end, error, expected_wait = self._call_await_fuel(
                state, n - got, deadline, fail_if_late)
            got += grants
            if end == pb.END_REASON_STOPPED:
                # Fuel that fell due just before the stop: use what was
                # asked for, drop the rest.
                self.kill_flag.set()
                state.fuel.drop_spare()
                if got >= n:
                    return FuelOutcome.FUEL, n, None
                return FuelOutcome.STOPPED, got, None
            if grants > 0:
                self.kill_flag.clear()
                backoff.reset()
            if got >= n:
                break
            if end == pb.END_REASON_WAIT_LIMIT_PASSED:
                return FuelOutcome.TIMED_OUT, got, None
            if end == pb.END_REASON_TOO_LATE:
                return FuelOutcome.TOO_LATE, got, expected_wait
            if error is None:
                raise ThrottleError(
                    grpc.StatusCode.INTERNAL,
                    "AwaitFuel stream ended without a grant or an end reason")
            code = error.code()
            if (code == grpc.StatusCode.DEADLINE_EXCEEDED
                    and deadline is not None):
                # Our own deadline: the server was unreachable or late.
                return FuelOutcome.TIMED_OUT, got, None
            if code == grpc.StatusCode.CANCELLED and state.closed.is_set():
                raise _closed_error()
            if code not in (grpc.StatusCode.UNAVAILABLE,
                            grpc.StatusCode.CANCELLED):
                fuel.call_answered()  # the server said so: it is there
                raise ThrottleError.from_rpc_error(error)
            # Restarting or shutting down (CANCELLED: a shutdown past its
            # grace period cancelled the call): the outage starts, and the
            # handle's policy decides until the next call, after a backoff
            # delay.
            now = time.monotonic()
            fuel.call_lost(now)
            retry_at = now + backoff.next_delay()
            while True:
                now = time.monotonic()
                local, action, next_grant, next_change = fuel.take_local(
                    n - got, now)
                got += local
                step, value = call_step(action, n - got, next_grant,
                                        next_change, deadline, admission,
                                        retry_at, now)
                if step == UNREACHABLE:
                    raise fuel.unreachable()
                if step == TOO_LATE:
                    return FuelOutcome.TOO_LATE, got, value
                if step == TIMED_OUT:
                    return FuelOutcome.TIMED_OUT, got, None
                if step != SLEEP:  # GRANTED, or RETRY: call again
                    break
                if state.closed.wait(max(value - now, 0.0)):  # monotonic
                    raise _closed_error()
        if got > n:
            fuel.add_spare(got - n)
        return FuelOutcome.FUEL, n, None

    def _call_await_fuel(self, state, count, deadline, fail_if_late=False):
        """One AwaitFuel call for `count` grants: returns (grants, end,
        error, expected_wait in seconds or None). Raises the "closed"
        ThrottleError if close() came first."""
        request = pb.AwaitFuelRequest(throttle=self.name, count=count,
                                      worker_id=self.worker_id,
                                      weight=self.weight,
                                      priority=self.priority,
                                      fail_if_late=fail_if_late)
        timeout = None
        if deadline is not None:
            remaining = max(deadline - time.monotonic(), 0.0)
            request.wait_limit.CopyFrom(_duration(remaining))
            timeout = remaining + self.deadline_slack
        grants, end, expected_wait = 0, pb.END_REASON_UNSPECIFIED, None
        wait_for_ready = state.fuel.call_wait_for_ready()
        with state.lock:
            if state.closed.is_set():
                raise _closed_error()
            call = state.stub.AwaitFuel(request, timeout=timeout,
                                        wait_for_ready=wait_for_ready)
            state.active.add(call)
        try:
            for response in call:
                state.fuel.call_answered(response)
                grants += max(response.grants, 0)
                if response.end != pb.END_REASON_UNSPECIFIED:
                    end = response.end
                if response.HasField("expected_wait"):
                    expected_wait = response.expected_wait.ToTimedelta(
                    ).total_seconds()
            return grants, end, None, expected_wait
        except grpc.RpcError as error:
            return grants, end, error, expected_wait
        finally:
            with state.lock:
                state.active.discard(call)

    def has_fuel(self):
        """Takes one grant if one is available right now; never waits.

        A grant kept from earlier (see await_fuel()) comes first. False if
        none is (the server says no while other workers wait in
        await_fuel) or the throttle is stopped (kill_flag is then set).
        check_fuel() also says when to try again.
        """
        return self.check_fuel().granted

    def check_fuel(self):
        """has_fuel() that says when to try again: returns a FuelCheck
        (granted, stopped, retry_after). retry_after, when neither granted
        nor stopped and the throttle runs: seconds until a grant is
        expected for a worker that starts waiting now (an estimate, not a
        reservation); None otherwise."""
        state = self._process()
        if state.fuel.take_spare(1):
            return FuelCheck(True, False, None)
        response = self._unary(
            "HasFuel",
            pb.HasFuelRequest(throttle=self.name, worker_id=self.worker_id))
        if response.stopped:
            self.kill_flag.set()
            state.fuel.drop_spare()
            return FuelCheck(False, True, None)
        if response.granted:
            self.kill_flag.clear()
        retry_after = None
        if response.HasField("retry_after"):
            retry_after = response.retry_after.ToTimedelta().total_seconds()
        return FuelCheck(response.granted, False, retry_after)

    def emit(self, n=1):
        """Reports n emissions (a throttle created with manual_emit=True, the
        seed's auto_emit=False). Returns the throttle's total emissions.
        FAILED_PRECONDITION if it counts at grant time or is not running."""
        response = self._unary(
            "Emit",
            pb.EmitRequest(throttle=self.name, count=n,
                           worker_id=self.worker_id))
        return response.total_emissions

    def report(self, successes=0, rejections=0):
        """Reports how the work went downstream to a throttle with an
        adaptive ceiling: `successes` accepted and `rejections` rejected
        (or failed) since the last report, each in [0, 1000000]. Returns
        the throttle's max_n in effect. FAILED_PRECONDITION if the throttle
        is not adaptive or was never started; INVALID_ARGUMENT for a bad
        count."""
        response = self._unary(
            "Report",
            pb.ReportRequest(throttle=self.name, worker_id=self.worker_id,
                             successes=successes, rejections=rejections))
        return response.current_max_n

    # --- controller side ---------------------------------------------------

    def create(self, max_n, per, mode="smooth", burst=0, manual_emit=False,
               replace=False, catch_up=None, warm_up=None,
               warm_up_from=None, starvation_bound=None, adaptive=None,
               degradation=None, local_share_for=None):
        """Creates the throttle: max_n grants per `per` seconds (the seed's
        Throttle(max_n, per)). mode: smooth (default), window, bucket,
        unbounded or monitor-only. catch_up: how far the grant schedule may
        fall behind real time (a stall of the server) and still be caught
        up at once, in seconds or a datetime.timedelta, in [0, per]; 0: no
        catch-up; None: the server's default (1% of per, at least one
        grant's spacing); see ThrottleConfig.catch_up in the proto.
        warm_up: after a start (and a start after a stop at least as long)
        the rate ramps linearly from warm_up_from x the rate to the full
        rate over warm_up, in seconds or a datetime.timedelta, in
        [0, 30 days]; None or 0: no warm-up. warm_up_from: in (0, 1]; None:
        1/3 (see ThrottleConfig.warm_up in the proto). starvation_bound:
        a lower priority class waiting that got no grant for this long gets
        the next one, in seconds or a datetime.timedelta, in [0, 30 days];
        None or 0: none (see ThrottleConfig.starvation_bound). adaptive:
        an Adaptive (or a dict of its fields; Adaptive() for every
        default) makes the rate move between its floor_n and max_n by what
        workers report(); None: not adaptive. degradation: what workers do
        while the server cannot be reached: "wait" (None: the default),
        "fail_fast" (their waits raise UNAVAILABLE) or "local_share"
        (they grant locally at their last share for local_share_for, in
        seconds or a datetime.timedelta, in (0, 1 hour], required there
        and only there); a pb.Degradation value is taken too. ValueError
        for an unknown degradation name.
        ALREADY_EXISTS if the name is taken, unless replace=True (then the
        old one is deleted first). INVALID_ARGUMENT for a bad value (the
        message names it); ValueError/TypeError for a catch_up that is not
        a finite number or a timedelta. Returns a ThrottleInfo."""
        request = pb.CreateThrottleRequest(
            name=self.name,
            config=_config(max_n, per, mode, burst, manual_emit, catch_up,
                           warm_up, warm_up_from, starvation_bound,
                           adaptive, degradation, local_share_for))
        try:
            return _info(self._unary("CreateThrottle", request).throttle)
        except ThrottleError as error:
            if not replace or error.code != grpc.StatusCode.ALREADY_EXISTS:
                raise
        self.delete()
        return _info(self._unary("CreateThrottle", request).throttle)

    def configure(self, max_n, per, mode="smooth", burst=0,
                  manual_emit=False, catch_up=None, warm_up=None,
                  warm_up_from=None, starvation_bound=None, adaptive=None,
                  degradation=None, local_share_for=None):
        """Replaces the throttle's configuration whole (catch_up None: back
        to the default; as in create()): a setting not given is its default
        again (mode smooth, burst 0). To change some settings only, use
        update(). Open await_fuel calls stay and are served at the new
        rate. Returns a ThrottleInfo."""
        request = pb.ConfigureThrottleRequest(
            name=self.name,
            config=_config(max_n, per, mode, burst, manual_emit, catch_up,
                           warm_up, warm_up_from, starvation_bound,
                           adaptive, degradation, local_share_for))
        return _info(self._unary("ConfigureThrottle", request).throttle)

    def update(self, *, max_n=_UNSET, per=_UNSET, mode=_UNSET, burst=_UNSET,
               manual_emit=_UNSET, catch_up=_UNSET, warm_up=_UNSET,
               warm_up_from=_UNSET, starvation_bound=_UNSET,
               adaptive=_UNSET, degradation=_UNSET, local_share_for=_UNSET):
        """Changes only the settings given, as keywords with the meaning
        they have in create() (catch_up=None: back to the server's
        default); the others keep their values, and open await_fuel calls
        stay. `update(max_n=200)` on a bucket throttle keeps its mode and
        burst. A mode other than bucket resets burst to 0 unless burst is
        given too. The merged config is checked by the server as a whole
        (INVALID_ARGUMENT naming the field). TypeError if no setting is
        given; ValueError for an unknown mode or degradation.
        degradation=None is "wait" (local_share_for must then go too:
        local_share_for=None). Returns a ThrottleInfo."""
        config, mask = _partial_config(max_n, per, mode, burst, manual_emit,
                                       catch_up, warm_up, warm_up_from,
                                       starvation_bound, adaptive,
                                       degradation, local_share_for)
        request = pb.ConfigureThrottleRequest(name=self.name, config=config,
                                              update_mask=mask)
        return _info(self._unary("ConfigureThrottle", request).throttle)

    def delete(self):
        """Deletes the throttle; its waiting workers get NOT_FOUND."""
        self._unary("DeleteThrottle", pb.DeleteThrottleRequest(name=self.name))

    def info(self):
        """The throttle as listed by the server (ThrottleInfo); NOT_FOUND if
        there is none of this name."""
        for info in self.list_throttles():
            if info.name == self.name:
                return info
        raise ThrottleError(grpc.StatusCode.NOT_FOUND,
                            f"no throttle named {self.name!r}")

    def list_throttles(self):
        """Every throttle of the server, sorted by name (ThrottleInfo)."""
        response = self._unary("ListThrottles", pb.ListThrottlesRequest())
        return [_info(t) for t in response.throttles]

    def start(self):
        """Starts (or resumes) the throttle. FAILED_PRECONDITION if it runs."""
        self._unary("Start", pb.StartRequest(throttle=self.name))
        self.kill_flag.clear()

    def stop(self):
        """Stops the throttle and sets the kill flag: every waiting worker's
        await_fuel returns FuelOutcome.STOPPED with its kill_flag set.
        Returns the seed's (runtime, total_emissions, mean_time_between,
        mean_per_second) as a StopStats tuple. FAILED_PRECONDITION if it is
        not running."""
        r = self._unary("Stop", pb.StopRequest(throttle=self.name))
        self.kill_flag.set()
        return StopStats(r.runtime_seconds, r.total_emissions,
                         r.mean_seconds_between_emissions,
                         r.mean_emissions_per_second)

    def latest(self, window=1.0, include_workers=False):
        """(seconds between emissions, emissions per second) over the last
        `window` seconds (0 < window <= 60), as the seed's latest(). With
        include_workers: a LatestWorkers tuple, which adds the window's
        emissions, its length and what each worker_id got in it (at 100 ms
        resolution) and current_max_n, the max_n in effect (the adaptive
        ceiling's rate; also info().current_max_n). The plain tuple stays
        the seed's two values."""
        r = self._unary(
            "Latest",
            pb.LatestRequest(throttle=self.name,
                             window=_duration(window),
                             include_workers=include_workers))
        if not include_workers:
            return LatestStats(r.seconds_between_emissions,
                               r.emissions_per_second)
        return LatestWorkers(r.seconds_between_emissions,
                             r.emissions_per_second, r.emissions,
                             r.window_seconds, _workers(r.workers),
                             r.current_max_n)

    def mean(self, include_workers=False):
        """(mean seconds between emissions, mean per second) since the first
        start, as the seed's mean(). With include_workers: a MeanWorkers
        tuple, which adds the runtime, the total, Jain's fairness index of
        the grants per worker and what each worker_id got."""
        r = self._unary(
            "Mean",
            pb.MeanRequest(throttle=self.name, include_workers=include_workers))
        if not include_workers:
            return MeanStats(r.mean_seconds_between_emissions,
                             r.mean_emissions_per_second)
        return MeanWorkers(r.mean_seconds_between_emissions,
                           r.mean_emissions_per_second, r.runtime_seconds,
                           r.total_emissions, r.fairness_index,
                           _workers(r.workers))

    def mean_details(self):
        """The whole MeanResponse message (runtime, total, lowest and highest
        gap, state)."""
        return self._unary("Mean", pb.MeanRequest(throttle=self.name))

    def watch(self, interval=1.0, window=None, *, reconnect=True):
        """A live view of the throttle: a Watch, an iterator of Snapshots
        (time, info, latest, mean, changed) -- the first at once, then one
        every `interval` and one at once on each change of state or
        configuration -- until its close() (also a context manager).

        interval: seconds (a number) or a datetime.timedelta, in [0.1, 60];
          None: the server's default, 1 s.
        window: the window of each snapshot's latest, as interval, in
          (0, 60]; None: the interval.
        reconnect: when the stream is lost (UNAVAILABLE, or a server
          shutting down), open it again after the backoff (True), or raise
          the error (False).

        Does not block: the stream opens on the first next(). A value the
        server rejects raises ThrottleError INVALID_ARGUMENT from next(),
        naming the field; one that is no duration at all raises TypeError
        or ValueError here. NOT_FOUND from next() when the throttle does
        not exist or is deleted. See throttle_client/watch.py."""
        request = pb.WatchThrottleRequest(throttle=self.name)
        if interval is not None:
            request.interval.CopyFrom(_signed_duration(interval, "interval"))
        if window is not None:
            request.window.CopyFrom(_signed_duration(window, "window"))
        return Watch(self, request, reconnect, _snapshot)
