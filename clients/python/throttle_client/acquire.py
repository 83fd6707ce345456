"""The Acquire stream under Throttle.await_fuel(): one long-lived
bidirectional call per Throttle and process, as docs/acquire-client-spec.md
says for the C++, Python and Node clients alike.

Callers of await_fuel() (any number of threads) become waiters in a FIFO
queue. A waiter asks for what it misses with one message {demand: n}, and
the grants the server sends go to the head waiter until it has all it asked
for. A waiter's timeout is kept here, on time.monotonic(): when it passes,
the waiter leaves the queue and sends {withdraw: what it still missed}.
Grants that arrive with no waiter to take them (sent just before a
withdrawal reached the server) are kept as spare grants and handed to the
next call without asking the server; they are dropped when the throttle is
seen stopped.

Asking ahead: while the last message said `unlimited` (a monitor-only
throttle), the stream keeps up to A grants kept or coming beyond what the
waiters miss, topping up to A (one {demand} message) whenever fewer than
half of A are, and never withdrawing; as soon as a message says
unlimited=false it asks only for what the waiters miss again (withdrawing
what was asked ahead). A is the worker's own pace: the grants its waiters
took in the current or the previous 1 ms window of the stream's clock,
capped by the Throttle's ask_ahead option (default 16; 0: never), and 0
while the pace is under 2 grants. A slow worker thus asks for nothing ahead
and its counts stay exact; a fast loop gets most grants without a round
trip. (As TankOptions::ask_ahead in C++.)

How the stream ends decides what the waiters get: END_REASON_STOPPED
(grants on that message go to the waiters in order, every other waiter
returns STOPPED, the kill flag is set); UNAVAILABLE, or CANCELLED that close()
did not cause (a server going down): the waiters keep waiting and a new
stream is opened after the Throttle's backoff, asking for what they still
miss; UNIMPLEMENTED (a server older than Acquire): every waiter, and every
later call, falls back to one AwaitFuel call per wait; any other status:
every waiter raises it as a ThrottleError. The next waiter after a stream
ended opens a new one.

Graceful degradation (degrade.py; docs/DECISIONS.md): after a stream
ended UNAVAILABLE (or CANCELLED by a server going away) the waiters act on
the throttle's last known policy. Wait: as above. Fail fast: every waiter
raises UNAVAILABLE at once, and each later wait makes one reconnect
attempt (which ends at once while the server is down) and raises
UNAVAILABLE if it fails. Local share:
during the backoff the reader thread hands the waiters local grants at the
stream's last share (at most share x elapsed + 1 from the outage's start)
until local_share_for has passed, then as fail fast. While degraded, calls
go without wait_for_ready, so an attempt to a server that is down ends at
once; the first message of a call that got through ends the outage. The
stream's LocalShare is the Throttle's one record and pacer: its AwaitFuel
calls (client.py) read and update it too (call_answered, call_lost,
take_local), so an outage either side sees is the other's.

Threads: each caller waits on a lock of its own; one reader thread per
AcquireStream opens the call, reads it and reconnects (a daemon thread, so
that a process that never closes its Throttle can still exit; close() joins
it); gRPC's own thread sends the request messages. Thread-safe.

fork(): gRPC (without GRPC_ENABLE_FORK_SUPPORT) leaves a child whose parent
had a call in flight unable to make calls of its own, and an Acquire call
is in flight all the time. So every stream of the process ends its call
before a fork (waiting up to FORK_PAUSE_SECONDS for it to end) and opens a
new one after it, in the parent, for the waiters still there; their
timeouts keep running. The child never uses its parent's streams (a
Throttle opens its own channel in each process).
"""
import _thread
import collections
import math
import os
import queue
import threading
import time
import weakref

import grpc

from ._proto import pb
from .degrade import FAIL_FAST, LOCAL, WAIT, LocalShare
from .errors import ThrottleError, closed_error
from .outcome import FuelOutcome

# What acquire() returns instead of an outcome when the server does not
# implement Acquire: the caller makes AwaitFuel calls for what is missing.
FALLBACK = object()

# The stream's phases (AcquireStream._phase).
_IDLE = "idle"  # no call: the next waiter has the reader thread open one
_OPEN = "open"  # a call is open; demand and withdrawals go on it
_BACKOFF = "backoff"  # the call ended UNAVAILABLE; a new one opens later

# Status codes after which the waiters wait on and the stream is opened
# again: a server restarting, shutting down or failing over.
_RETRIED = (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.CANCELLED)

_DEMAND_ONE = pb.AcquireRequest(demand=1)  # never changed: shared

# The most one message may ask for (AcquireRequest.demand): a larger wait
# would end the stream, and every waiter on it, with INVALID_ARGUMENT.
MAX_DEMAND = 1000000

# The longest a fork waits for a stream to end its call.
FORK_PAUSE_SECONDS = 2.0

# The default most grants a stream asks ahead where fuel is unlimited
# (Throttle's ask_ahead; TankOptions::ask_ahead in C++).
DEFAULT_ASK_AHEAD = 16

# Asking ahead covers what the waiters took in about this long (seconds).
ASK_AHEAD_WINDOW = 0.001


class _Waiter:
    """One await_fuel call in the queue. Its fields are guarded by the
    AcquireStream's lock; finish() (under that lock) sets the result once
    and wakes the caller."""

    __slots__ = ("missing", "got", "result", "_done")

    def __init__(self, missing, got):
        self.missing = missing  # grants it still waits for
        self.got = got  # grants it has (spare ones included)
        # None while waiting; then a FuelOutcome, a ThrottleError to raise,
        # or FALLBACK.
        self.result = None
        self._done = _thread.allocate_lock()  # the cheapest wake-up there is
        self._done.acquire()

    def finish(self, result):
        self.result = result
        self._done.release()

    def wait(self, timeout):
        """True once finished; False if `timeout` seconds (-1: for ever)
        passed first. A lock's timed acquire runs on the monotonic clock."""
        return self._done.acquire(timeout=timeout)


def _messages(requests):
    """The request iterator of one call: what is put on `requests`, until
    None (then gRPC half-closes the call, if it still runs)."""
    while True:
        message = requests.get()
        if message is None:
            return
        yield message


class AcquireStream:
    """The Acquire stream of one Throttle in one process.

    stub: the process's ThrottleStub. first_request: the AcquireRequest
    that opens every call (throttle, worker_id, weight; its demand is set
    here). kill_flag: the Throttle's KillFlag (set when the stream says
    stopped, cleared by a grant). backoff: a Backoff, the delays between a
    stream that ended UNAVAILABLE and the next (reset by each grant).
    ask_ahead: the most grants asked ahead of the waiters while the server
    says fuel is unlimited (0: never). clock: a function returning
    monotonic seconds, on which the worker's pace is measured (the 1 ms
    windows of asking ahead); timeouts always run on time.monotonic().
    """

    def __init__(self, stub, first_request, kill_flag, backoff,
                 ask_ahead=DEFAULT_ASK_AHEAD, clock=time.monotonic,
                 channel=None):
        self._stub = stub
        self._channel = channel  # the stub's, watched during a backoff
        self._first_request = first_request
        self._kill_flag = kill_flag
        self._backoff = backoff
        self._ask_ahead = ask_ahead
        self._clock = clock
        self._lock = threading.Lock()
        self._wake = threading.Condition(self._lock)  # for the reader
        self._ended_call = threading.Condition(self._lock)  # for a fork
        # Guarded by _lock:
        self._waiters = collections.deque()
        self._wanted = 0  # what the waiters still miss, together
        # What the server still owes by what was sent and read on the open
        # call, never below zero (so the waiters' demand is never short).
        self._outstanding = 0
        self._unlimited = False  # what the last message said
        # The pace: grants the waiters took in the window begun at
        # _window_start (on _clock) and in the window before it.
        self._window_start = -math.inf
        self._taken_now = 0
        self._taken_before = 0
        self._spare = 0
        self._phase = _IDLE
        self._requests = None  # the open call's request queue
        self._call = None  # the open call
        self._stopped = False  # the open call said END_REASON_STOPPED
        self._unimplemented = False  # the server has no Acquire
        self._closed = False
        self._forking = False  # no call until the fork is done
        self._thread = None
        # The throttle's degradation policy and the outage, if any.
        self._local = LocalShare()
        # The channel's states seen during the current backoff (the first
        # is the state as the call ended), from _watch_channel.
        self._channel_states = []
        with _live_lock:
            _live.add(self)

    @property
    def unimplemented(self):
        """True once the server answered Acquire with UNIMPLEMENTED."""
        return self._unimplemented

    def take_spare(self, n):
        """Takes up to n spare grants; returns how many."""
        with self._lock:
            if self._closed:
                raise closed_error()
            taken = min(self._spare, n)
            self._spare -= taken
            return taken

    def add_spare(self, n):
        """Keeps n grants a caller got beyond what it asked for."""
        with self._lock:
            if not self._closed:
                self._spare += n

    def drop_spare(self):
        """Drops the spare grants (the throttle was seen stopped)."""
        with self._lock:
            self._spare = 0

    def acquire(self, n, deadline):
        """Waits for n >= 1 grants, spare ones first, until the monotonic
        time `deadline` (None: for ever). Blocks.

        Returns (outcome, grants): (FUEL, n); (TIMED_OUT, the grants got
        before the deadline, which the caller may use); (STOPPED, the
        grants got before the stop); (FALLBACK, the grants got) when the
        server has no Acquire: make AwaitFuel calls for the rest. Raises
        ThrottleError with the status the stream ended with, or the
        "closed" CANCELLED error after close()."""
        with self._lock:
            if self._closed:
                raise closed_error()
            got = min(self._spare, n)
            self._spare -= got
            if got == n:
                self._note_taken(n)
                self._flush()  # asked ahead: top up before the spare run out
                return FuelOutcome.FUEL, n
            if self._unimplemented:
                return FALLBACK, got
            waiter = _Waiter(n - got, got)
            self._waiters.append(waiter)
            self._wanted += waiter.missing
            if self._phase is _OPEN:
                self._flush()
            elif self._phase is _IDLE:
                self._open_soon()
            elif self._local.action(time.monotonic()) == FAIL_FAST:
                self._waiters.remove(waiter)
                self._wanted -= waiter.missing
                raise self._unreachable()
            else:
                # _BACKOFF: the next call's first message asks for it; the
                # reader hands out local grants meanwhile.
                self._wake.notify()
        timeout = -1
        if deadline is not None:
            timeout = max(deadline - time.monotonic(), 0.0)
        if not waiter.wait(timeout):
            with self._lock:
                if waiter.result is None:
                    self._waiters.remove(waiter)
                    self._wanted -= waiter.missing
                    self._flush()  # withdraws it, unless asking ahead
                    return FuelOutcome.TIMED_OUT, waiter.got
                # Finished while the timeout passed: take the result.
        result = waiter.result
        if isinstance(result, ThrottleError):
            raise result
        return result, waiter.got

    def close(self):
        """Cancels the call and ends every waiter with the "closed"
        CANCELLED error; joins the reader thread (which ends at once).
        Closing again does nothing."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            self._finish_all(closed_error)
            self._spare = 0
            call, requests, thread = self._call, self._requests, self._thread
            self._wake.notify_all()
        if call is not None:
            call.cancel()
        if requests is not None:
            requests.put(None)
        if thread is not None and thread is not threading.current_thread():
            thread.join()

    # --- the same policy for AwaitFuel calls (client.py) ---------------------
    # One record of the policy, the share and the outage, and one pacer,
    # per Throttle and process: the stream's (docs/clients.md, "AwaitFuel
    # calls follow the same policy from the same state").

    def call_wait_for_ready(self):
        """Whether an AwaitFuel call goes with wait_for_ready: only while
        the policy is to wait. Under fail fast or local share a call to a
        server that is down must end UNAVAILABLE at once, or a poll (whose
        deadline is short) would time out in gRPC and never start the
        outage."""
        with self._lock:
            return self._local.degradation == pb.DEGRADATION_WAIT

    def call_answered(self, response=None):
        """An AwaitFuel call got an answer from the server (`response`, a
        message, or None for an error status the server sent): its policy
        and share are taken, and an outage ends."""
        with self._lock:
            if response is not None:
                self._local.update(response)
            self._local.server_back()

    def call_lost(self, now):
        """An AwaitFuel call ended UNAVAILABLE (or CANCELLED by a server
        going away) at `now` (monotonic seconds): the outage starts, if it
        had not. Returns the action now (WAIT, LOCAL or FAIL_FAST)."""
        with self._lock:
            self._local.server_lost(now)
            if self._phase is _BACKOFF:
                self._wake.notify()  # the reader: act on the outage now
            return self._local.action(now)

    def take_local(self, n, now):
        """During an outage under local share: takes up to n local grants
        due at `now` (monotonic seconds) from the shared pacer. Returns
        (grants, action, next_grant, next_change): the action at `now`,
        when the next local grant is due and when the next grant or the
        end of local granting is, in monotonic seconds (math.inf: never)."""
        with self._lock:
            if self._closed:
                raise closed_error()
            local = self._local
            got = 0
            while got < n and local.take(n - got, now):
                got += 1
            return (got, local.action(now), local.next_grant(now),
                    local.next_change(now))

    def unreachable(self):
        """The UNAVAILABLE error of a wait that fails fast."""
        with self._lock:
            return self._unreachable()

    # --- the reader thread -------------------------------------------------

    def _open_soon(self):
        """Has the reader thread open a call (starting the thread first if
        this is the first). Called with _lock held, in phase _IDLE."""
        if self._thread is None:
            self._thread = threading.Thread(target=self._run,
                                            name="throttle-acquire",
                                            daemon=True)
            self._thread.start()
        else:
            self._wake.notify()

    def _run(self):
        """Opens a call whenever waiters need one, reads it to its end,
        handles the end; until close()."""
        while True:
            with self._lock:
                while not self._closed and (not self._waiters
                                            or self._phase is not _IDLE
                                            or self._forking):
                    self._wake.wait()
                if self._closed:
                    return
                try:
                    call, requests = self._open()
                except Exception as error:  # pylint: disable=broad-except
                    # Never seen; without it the waiters would wait for
                    # ever.
                    failure = f"cannot open the Acquire stream: {error!r}"
                    self._finish_all(lambda: ThrottleError(
                        grpc.StatusCode.INTERNAL, failure))
                    continue
            error = self._read(call)
            requests.put(None)  # ends gRPC's sending thread
            with self._lock:
                self._call = self._requests = None
                self._phase = _IDLE
                self._ended_call.notify_all()
                if self._closed:
                    return
                if self._forking:
                    continue  # our own cancel: open again after the fork
                delay = self._ended(error)
                if delay is None:
                    continue
                # Back off, then open again for the waiters left (if any).
                self._phase = _BACKOFF
                until = time.monotonic() + delay
                # Watched meanwhile: gRPC's C-core sees a connection
                # attempt succeed (or be refused) only while some thread
                # polls the channel -- a call, or a subscription's polling
                # thread -- else at its backup poller's tick, every 5 s; a
                # worker slept through its channel's attempts and came back
                # up to 10 s after the server (docs/DECISIONS.md,
                # "Reconnecting after an outage").
                self._channel_states = []
                if self._channel is not None:
                    self._channel.subscribe(self._watch_channel,
                                            try_to_connect=True)
                try:
                    while not self._closed and not self._connected_again():
                        now = time.monotonic()
                        left = until - now
                        if left <= 0:
                            break
                        self._degrade(now)
                        self._wake.wait(min(
                            left, max(self._local.next_change(now) - now, 0)))
                finally:
                    if self._channel is not None:
                        self._channel.unsubscribe(self._watch_channel)
                self._phase = _IDLE

    def _watch_channel(self, state):
        """A state of the channel during a backoff (gRPC's thread)."""
        with self._lock:
            self._channel_states.append(state)
            self._wake.notify()

    def _connected_again(self):
        """Whether the backoff ends early: the channel was not connected at
        some point since the call ended (the call never reached a server,
        or its connection dropped: a server killed) and it is connected
        now -- a server refusing calls over a connection that stays up is
        still backed off from. With _lock."""
        states = self._channel_states
        ready = grpc.ChannelConnectivity.READY
        return (bool(states) and states[-1] is ready
                and any(state is not ready for state in states))

    def _open(self):
        """Opens a call asking for what the waiters miss (and what is asked
        ahead, if the last message said unlimited). With _lock."""
        first = pb.AcquireRequest()
        first.CopyFrom(self._first_request)
        self._outstanding = 0
        first.demand = min(max(self._demand_change(), 0), MAX_DEMAND)
        self._outstanding = first.demand
        requests = queue.SimpleQueue()
        requests.put(first)
        # Wait for a server that is (re)starting -- unless the throttle
        # degrades otherwise, when each attempt must end soon.
        call = self._stub.Acquire(
            _messages(requests),
            wait_for_ready=self._local.action(time.monotonic()) == WAIT)
        self._call, self._requests = call, requests
        self._stopped = False
        self._phase = _OPEN
        self._flush()  # what one message could not ask for
        return call, requests

    # --- demand ------------------------------------------------------------

    def _flush(self):
        """Sends what the demand must change by on the open call (nothing
        if it need not, or after END_REASON_STOPPED). With _lock."""
        if self._phase is not _OPEN or self._stopped or self._closed:
            return
        change = self._demand_change()
        while change > 0:
            demand = min(change, MAX_DEMAND)
            self._requests.put(_DEMAND_ONE if demand == 1 else
                               pb.AcquireRequest(demand=demand))
            self._outstanding += demand
            change -= demand
        if change < 0:
            self._requests.put(pb.AcquireRequest(withdraw=-change))
            self._outstanding = self._wanted

    def _demand_change(self):
        """How much demand to add (> 0) or withdraw (< 0) now. With _lock."""
        exact = self._wanted - self._outstanding
        if not self._unlimited:
            return exact
        # While unlimited nothing is withdrawn, even when the pace falls: a
        # withdrawal would race the grants already sent, which would then
        # come on top of the next top-up (more than ask_ahead counted and
        # unused).
        ask_ahead = self._ask_ahead_now()
        # Grants kept or coming beyond what the waiters miss.
        ahead = self._spare + self._outstanding - self._wanted
        if ask_ahead <= 0 or ahead >= (ask_ahead + 1) // 2:
            return max(exact, 0)
        return ask_ahead - ahead

    def _note_taken(self, n):
        """Counts n grants a waiter took, for the pace. With _lock."""
        now = self._clock()
        if now - self._window_start >= ASK_AHEAD_WINDOW:
            # A window or more passed: the last one's count, or none if
            # longer.
            self._taken_before = (
                self._taken_now
                if now - self._window_start < 2 * ASK_AHEAD_WINDOW else 0)
            self._taken_now = 0
            self._window_start = now
        self._taken_now += n

    def _ask_ahead_now(self):
        """A: the most grants to keep asked ahead now. With _lock."""
        if self._ask_ahead <= 0:
            return 0
        pace = max(self._taken_now, self._taken_before)
        # One grant alone is no pace yet.
        return 0 if pace < 2 else min(pace, self._ask_ahead)

    def _read(self, call):
        """Hands out the call's grants until it ends. Returns the
        grpc.RpcError it ended with, None for OK, or a ThrottleError
        INTERNAL if reading failed otherwise (never seen)."""
        try:
            for response in call:
                self._deliver(response)
            return None
        except grpc.RpcError as error:
            return error
        except Exception as error:  # pylint: disable=broad-except
            call.cancel()
            return ThrottleError(grpc.StatusCode.INTERNAL,
                                 f"reading the Acquire stream: {error!r}")

    def _deliver(self, response):
        """One message of the stream: its grants go to the waiters in FIFO
        order, the head taking what it still misses; `unlimited` says
        whether asking ahead may go on. It ends an outage."""
        grants, end, unlimited = (response.grants, response.end,
                                  response.unlimited)
        with self._lock:
            self._local.update(response)
            self._local.server_back()
            was_unlimited = self._unlimited
            self._unlimited = unlimited
            grants = max(grants, 0)
            self._outstanding = max(self._outstanding - grants, 0)
            stopped = end == pb.END_REASON_STOPPED
            if stopped:
                self._kill_flag.set()
            elif grants > 0:
                self._backoff.reset()
                if self._kill_flag.is_set():
                    self._kill_flag.clear()  # the throttle runs again
            grants = self._hand_out(grants)
            if stopped:
                self._stopped = True
                self._spare = 0
                self._finish_all(lambda: FuelOutcome.STOPPED)
                return
            if grants > 0 and not self._closed:
                self._spare += grants
            if was_unlimited and not unlimited:
                self._flush()  # exact again: withdraw what was asked ahead

    def _hand_out(self, grants):
        """Gives grants to the waiters in FIFO order; returns what is left.
        With _lock."""
        waiters = self._waiters
        while grants > 0 and waiters:
            waiter = waiters[0]
            taken = min(grants, waiter.missing)
            waiter.missing -= taken
            waiter.got += taken
            self._wanted -= taken
            grants -= taken
            if waiter.missing == 0:
                waiters.popleft()
                self._note_taken(waiter.got)
                waiter.finish(FuelOutcome.FUEL)
        return grants

    def _unreachable(self):
        """The error of a wait that fails fast. With _lock."""
        why = ("fail fast" if self._local.degradation == pb.DEGRADATION_FAIL_FAST
               else "no local share left")
        return ThrottleError(
            grpc.StatusCode.UNAVAILABLE,
            f"throttle {self._first_request.throttle}: the server cannot be "
            f"reached (degradation: {why})")

    def _degrade(self, now):
        """During a backoff: local grants to the waiters, or their
        UNAVAILABLE once the policy says fail fast. With _lock."""
        action = self._local.action(now)
        if action == LOCAL:
            while self._wanted > 0 and self._local.take(self._wanted, now):
                self._hand_out(1)
        elif action == FAIL_FAST:
            self._finish_all(self._unreachable)

    def _ended(self, error):
        """Handles the end of a call (error: as _read() returns). With
        _lock. Returns the delay before the next call when the
        waiters are to wait on (UNAVAILABLE), else None."""
        if error is None:
            if not self._stopped:
                # Contradicts the proto: OK ends a stream only after
                # END_REASON_STOPPED or our own half-close (never made).
                self._finish_all(lambda: ThrottleError(
                    grpc.StatusCode.INTERNAL,
                    "Acquire stream ended with OK without END_REASON_STOPPED"))
            return None
        if isinstance(error, ThrottleError):
            self._finish_all(lambda: ThrottleError(error.code, error.details))
            return None
        code = error.code()
        if code in _RETRIED:
            self._local.server_lost(time.monotonic())
            if self._local.action(time.monotonic()) == FAIL_FAST:
                self._finish_all(self._unreachable)
            return self._backoff.next_delay() if self._waiters else None
        if code == grpc.StatusCode.UNIMPLEMENTED:
            self._unimplemented = True
            self._finish_all(lambda: FALLBACK)
            return None
        self._finish_all(lambda: ThrottleError.from_rpc_error(error))
        return None

    def _finish_all(self, result):
        """Ends every waiter with result() (each its own object). With
        _lock."""
        waiters = self._waiters
        self._wanted = 0
        while waiters:
            waiters.popleft().finish(result())

    # --- around a fork -----------------------------------------------------

    def _pause(self):
        """Before a fork: ends the open call and keeps a new one from
        opening until _resume()."""
        with self._lock:
            self._forking = True
            call = self._call
            if call is None:
                return
            call.cancel()
            until = time.monotonic() + FORK_PAUSE_SECONDS
            while self._call is call:
                left = until - time.monotonic()
                if left <= 0:
                    break
                self._ended_call.wait(left)

    def _resume(self):
        """After a fork, in the parent: calls may open again."""
        with self._lock:
            self._forking = False
            self._wake.notify_all()


# Every AcquireStream of this process, for the fork hooks.
_live = weakref.WeakSet()
_live_lock = threading.Lock()


def _live_streams():
    with _live_lock:
        return list(_live)


def _before_fork():
    for stream in _live_streams():
        stream._pause()


def _after_fork_in_parent():
    for stream in _live_streams():
        stream._resume()


def _after_fork_in_child():
    global _live, _live_lock
    _live = weakref.WeakSet()  # the parent's streams are not ours
    _live_lock = threading.Lock()


os.register_at_fork(before=_before_fork,
                    after_in_parent=_after_fork_in_parent,
                    after_in_child=_after_fork_in_child)
