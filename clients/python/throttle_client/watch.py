"""Throttle.watch(): a live view of one throttle (the WatchThrottle RPC).

    with throttle.watch(interval=2) as watch:   # seconds or a timedelta
        for snapshot in watch:                  # blocks for the next one
            print(snapshot.info.state, snapshot.latest.per_second)

Each Snapshot is whole (nothing is a delta): the first comes at once, then
one every `interval` and one at once when the throttle's state or
configuration changes (Start, Stop, configure: `changed` is True).

The iteration ends (StopIteration) after watch.close(), which any thread
may call, also while another blocks in next(). It raises ThrottleError when
the watch ends otherwise: NOT_FOUND when the throttle does not exist or is
deleted, INVALID_ARGUMENT for a bad interval or window (the server names
the field and value), CANCELLED "throttle_client.Throttle is closed" after
Throttle.close(); after that error the watch is exhausted. When the stream
is lost (UNAVAILABLE, or CANCELLED by a server shutting down) the watch
opens it again after the Throttle's backoff (backoff_initial doubling up to
backoff_max, jittered, reset by each snapshot) and the iteration goes on
with a fresh first snapshot; watch(reconnect=False) raises that error
instead. (As ThrottleWatch in C++ and watch() in Node: docs/clients.md.)
"""
import dataclasses
import datetime
import threading

import grpc

from ._proto import pb
from .backoff import Backoff
from .errors import ThrottleError
from .errors import closed_error as _closed_error

# Losses of the stream that a reconnecting watch retries: the server went
# away, or cancelled the stream as it shut down.
_RETRIED = (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.CANCELLED)


@dataclasses.dataclass(frozen=True)
class Snapshot:
    """One WatchThrottleResponse.

    time: when the server took it (an aware datetime in UTC, the server's
      clock).
    info: the throttle (ThrottleInfo: config, state, waiting_streams,
      total_emissions).
    latest: LatestStats (seconds_between, per_second) over the watch's
      window, ending at `time`.
    mean: MeanStats (seconds_between, per_second) since the first start.
    changed: True when sent because the state or configuration changed,
      not because the interval passed (the first snapshot: False).
    message: the whole WatchThrottleResponse, for the fields not above
      (latest.emissions, mean.runtime_seconds, ...).
    """
    time: datetime.datetime
    info: object
    latest: object
    mean: object
    changed: bool
    message: object = dataclasses.field(repr=False, compare=False)


class _Wake:
    """A watch's backoff sleep, among the Throttle's calls in flight so
    that Throttle.close() cancels it as it cancels calls; the watch's
    close() cancels it too."""

    def __init__(self):
        self.event = threading.Event()

    def cancel(self):
        self.event.set()


class Watch:
    """An iterator of Snapshots of one throttle; made by Throttle.watch().

    next() is called by one thread at a time; close() by any thread at any
    time. Also a context manager (closes on exit).
    """

    def __init__(self, throttle, request, reconnect, snapshot):
        self._throttle = throttle
        self._request = request
        self._reconnect = reconnect
        self._snapshot = snapshot  # WatchThrottleResponse -> Snapshot
        self._backoff = Backoff(throttle.backoff_initial,
                                throttle.backoff_max)
        self._lock = threading.Lock()
        self._closed = threading.Event()  # close(): also wakes the backoff
        self._done = False  # exhausted: close() or an error raised
        self._call = None   # the open stream, or the backoff's _Wake
        self._responses = None

    def __iter__(self):
        return self

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def close(self):
        """Ends the watch: a next() blocked in another thread, and every
        later one, ends the iteration (StopIteration); the stream is
        cancelled, which frees it on the server. Closing again does
        nothing. Never blocks."""
        with self._lock:
            self._closed.set()
            call = self._call
        if call is not None:
            call.cancel()

    def __next__(self):
        """Blocks until the next Snapshot; see the module's docstring for
        how the watch ends."""
        while True:
            if self._done or self._closed.is_set():
                self._finish()
                raise StopIteration
            try:
                message = next(self._open())
            except StopIteration:
                # The server ended the stream, which only a cancel, a
                # delete or a shutdown should do: a loss.
                error = ThrottleError(grpc.StatusCode.UNAVAILABLE,
                                      "the server ended the watch")
            except grpc.RpcError as rpc_error:
                error = self._error(rpc_error)
            except ValueError:
                # gRPC refuses a call on a channel Throttle.close() closed.
                if not self._throttle._closed:
                    raise
                error = _closed_error()
            except ThrottleError:  # _open(): the Throttle is closed
                self._finish()
                raise
            else:
                self._backoff.reset()
                return self._snapshot(message)
            self._lost(error)

    def _error(self, rpc_error):
        """The ThrottleError of a failed stream; the "closed" one if
        Throttle.close() cancelled it."""
        if (self._throttle._closed
                and rpc_error.code() == grpc.StatusCode.CANCELLED):
            return _closed_error()
        return ThrottleError.from_rpc_error(rpc_error)

    def _open(self):
        """The open stream's responses, opening one if none is open."""
        if self._responses is not None:
            return self._responses
        state = self._throttle._process()  # raises the "closed" error
        with state.lock:
            if state.closed.is_set():
                raise _closed_error()
            call = state.stub.WatchThrottle(self._request)
            state.active.add(call)  # Throttle.close() cancels it
        with self._lock:
            self._call = call
        self._responses = call
        if self._closed.is_set():
            call.cancel()  # close() came while this opened it
        return call

    def _lost(self, error):
        """The stream ended with `error`: raises it, or (a loss a
        reconnecting watch retries) sleeps out the backoff and returns."""
        self._forget()
        if self._closed.is_set():
            return  # the loop ends the iteration
        if (error.code in _RETRIED and self._reconnect
                and not self._throttle._closed):
            self._sleep(self._backoff.next_delay())
            return
        self._done = True
        raise error

    def _sleep(self, delay):
        """Sleeps `delay` seconds (monotonic) or until close() or the
        Throttle's close(): a stand-in for a call among the Throttle's
        calls in flight, whose cancel() wakes it."""
        state = self._throttle._state
        if state is None:
            return
        wake = _Wake()
        with state.lock:
            if state.closed.is_set():
                return
            state.active.add(wake)
        with self._lock:
            self._call = wake  # close() cancels it
        try:
            if not self._closed.is_set():
                wake.event.wait(delay)
        finally:
            with self._lock:
                self._call = None
            with state.lock:
                state.active.discard(wake)

    def _forget(self):
        call = self._call
        self._responses = None
        with self._lock:
            self._call = None
        if call is not None:
            state = self._throttle._state
            if state is not None:
                with state.lock:
                    state.active.discard(call)

    def _finish(self):
        call = self._call
        self._forget()
        if call is not None:
            call.cancel()
        self._done = True
