"""await_fuel and await_fuel_n over the Acquire stream, against the real
server (docs/acquire-client-spec.md): a loop of plain awaits gets fuel on
one stream; the counted variant gets n, and what was available when its
timeout passed; a timed-out waiter withdraws its demand (waiting_streams
back to 0) while the stream stays open and usable; Stop ends every waiter
of a handle with STOPPED; a deleted throttle ends every waiter with
NOT_FOUND; a server restart in the middle of a wait reconnects with the
waiters' demand; a fork while streams are open leaves the child and the
parent (and its waiter) working; where fuel is unlimited (monitor-only) a
fast worker asks ahead, never more than ask_ahead grants beyond what it
used, while ask_ahead=0, a limited mode and a slow worker count exactly.
Against in-process servers: a server without Acquire gets AwaitFuel calls;
a stream that ends UNAVAILABLE is opened again with backoff until the
timeout, and close() ends that wait.
"""
import multiprocessing
import threading
import time
import unittest

import grpc

from support import (GENEROUS, Server, ServerTestCase,
                     UnavailableServer, await_waiting, wait_for)

from throttle_client import FuelOutcome, FuelResult, Throttle, ThrottleError

Code = grpc.StatusCode
# The timeout of a waiter that is meant to time out while the test watches
# it wait: long enough for a loaded machine to list the throttle meanwhile.
SHORT_TIMEOUT = 5.0


def in_thread(call, *args):
    """Runs call(*args) in a thread. Returns (thread, outcome): outcome gets
    the result, or the ThrottleError's code."""
    outcome = []

    def run():
        try:
            outcome.append(call(*args))
        except ThrottleError as error:
            outcome.append(error.code)

    thread = threading.Thread(target=run)
    thread.start()
    return thread, outcome


class ManualClock:
    """A clock for Throttle(clock=...): stands still until advance()d, so
    that the pace asking ahead measures is the test's, not the machine's."""

    def __init__(self):
        self.now = 1000.0

    def __call__(self):
        return self.now

    def advance(self, seconds):
        self.now += seconds


def stream_of(throttle):
    """The Acquire call a Throttle has open now (None if none): a test's
    window on "the stream stayed open"."""
    state = throttle._state  # made by the first call that needs it
    return None if state is None else state.fuel._call


def waiters_of(throttle):
    """How many await_fuel calls of the Throttle wait on its stream."""
    state = throttle._state
    return 0 if state is None else len(state.fuel._waiters)


class Awaits(ServerTestCase):

    def test_a_loop_of_plain_awaits_gets_fuel_on_one_stream(self):
        controller = self.throttle("loop")
        controller.create(1, 1, mode="monitor-only")
        controller.start()
        # Exact counts: nothing asked ahead (see AskAhead).
        worker = self.throttle("loop", worker_id="looper", ask_ahead=0)
        outcomes = [worker.await_fuel() for _ in range(200)]
        self.assertEqual(outcomes, [FuelOutcome.FUEL] * 200)
        stream = stream_of(worker)
        self.assertIsNotNone(stream)
        for _ in range(50):
            self.assertIs(worker.await_fuel(timeout=GENEROUS),
                          FuelOutcome.FUEL)
        self.assertIs(stream_of(worker), stream)  # the same call throughout
        self.assertFalse(worker.kill_flag.is_set())
        # Every grant asked for was counted once, none more.
        self.assertEqual(controller.stop().total_emissions, 250)

    def test_the_counted_variant_gets_n(self):
        controller = self.throttle("counted")
        controller.create(1, 1, mode="monitor-only")
        controller.start()
        worker = self.throttle("counted", ask_ahead=0)  # exact counts
        result = worker.await_fuel_n(25)
        self.assertEqual(result, (FuelOutcome.FUEL, 25))
        self.assertIsInstance(result, FuelResult)
        self.assertTrue(result)
        self.assertTrue(result.fuel)
        self.assertEqual(worker.await_fuel_n(7, timeout=GENEROUS),
                         (FuelOutcome.FUEL, 7))
        # timeout 0: one AwaitFuel call for n, answered at once.
        self.assertEqual(worker.await_fuel_n(5, timeout=0),
                         (FuelOutcome.FUEL, 5))
        self.assertIs(worker.await_fuel(), FuelOutcome.FUEL)
        self.assertEqual(controller.stop().total_emissions, 38)
        for bad in (0, -1, 1.5, True, 1000001):
            with self.assertRaises(ValueError):
                worker.await_fuel_n(bad)

    def test_the_counted_variant_reports_a_partial_count_on_timeout(self):
        controller = self.throttle("partial")
        controller.create(3, 600, mode="bucket")  # 3 at once, then 1/200 s
        controller.start()
        worker = self.throttle("partial")
        result = worker.await_fuel_n(5, timeout=0.5)
        self.assertEqual(result, (FuelOutcome.TIMED_OUT, 3))
        self.assertFalse(result)
        self.assertTrue(result.timed_out)
        self.assertFalse(worker.kill_flag.is_set())
        # The bucket is empty: nothing at once, nothing for a while.
        self.assertEqual(worker.await_fuel_n(2, timeout=0),
                         (FuelOutcome.TIMED_OUT, 0))
        self.assertEqual(worker.await_fuel_n(2, timeout=0.2),
                         (FuelOutcome.TIMED_OUT, 0))
        # The 3 partial grants were counted, and nothing else.
        self.assertEqual(controller.stop().total_emissions, 3)


class AskAhead(ServerTestCase):
    """Asking ahead where fuel is unlimited (docs/acquire-client-spec.md):
    the server's total_emissions counts what was used and at most
    ask_ahead more."""

    AWAITS = 300

    def loop(self, name, mode, max_n=1, ask_ahead=16, step=0.0, count=1):
        """Creates and starts `name`, then awaits AWAITS times (await_fuel,
        or await_fuel_n(count)) on a worker whose clock moves on by `step`
        seconds after each; after every await checks total_emissions
        within [used, used + most] for most = ask_ahead. Returns the
        highest total_emissions - used seen."""
        controller = self.throttle(name)
        controller.create(max_n, 1, mode=mode)
        controller.start()
        clock = ManualClock()
        worker = self.throttle(name, ask_ahead=ask_ahead, clock=clock)
        used = unused = 0
        for i in range(self.AWAITS):
            if count == 1:
                self.assertIs(worker.await_fuel(timeout=GENEROUS),
                              FuelOutcome.FUEL, i)
            else:
                self.assertEqual(worker.await_fuel_n(count, timeout=GENEROUS),
                                 (FuelOutcome.FUEL, count), i)
            used += count
            counted = controller.info().total_emissions
            self.assertGreaterEqual(counted, used, i)
            self.assertLessEqual(counted, used + ask_ahead, i)
            unused = max(unused, counted - used)
            clock.advance(step)
        return unused

    def test_a_fast_loop_asks_ahead_where_fuel_is_unlimited(self):
        # The clock stands still: every await in one 1 ms window.
        self.assertGreater(self.loop("ahead", "monitor-only"), 0)
        self.assertGreater(self.loop("ahead-8", "monitor-only", ask_ahead=8),
                           0)
        self.assertGreater(
            self.loop("ahead-n", "monitor-only", ask_ahead=16, count=3), 0)

    def test_ask_ahead_0_counts_exactly(self):
        self.assertEqual(self.loop("exact", "monitor-only", ask_ahead=0), 0)

    def test_a_limited_mode_counts_exactly(self):
        self.assertEqual(self.loop("limited", "smooth", max_n=1000000), 0)
        self.assertEqual(
            self.loop("limited-n", "smooth", max_n=1000000, count=3), 0)

    def test_a_slow_worker_asks_for_nothing_ahead(self):
        # One grant per 5 ms of work, or per 1.5 ms (the previous window's
        # one grant and this one's: a pace of 1), on the worker's clock.
        self.assertEqual(self.loop("slow", "monitor-only", step=0.005), 0)
        self.assertEqual(self.loop("slow-1.5", "monitor-only", step=0.0015),
                         0)

    def test_a_real_fast_loop_stays_within_ask_ahead(self):
        controller = self.throttle("real")
        controller.create(1, 1, mode="monitor-only")
        controller.start()
        worker = self.throttle("real")  # the default: 16, time.monotonic
        for _ in range(2000):
            self.assertIs(worker.await_fuel(), FuelOutcome.FUEL)
        counted = controller.info().total_emissions
        self.assertGreaterEqual(counted, 2000)
        self.assertLessEqual(counted, 2000 + 16)

    def test_a_limited_message_withdraws_what_was_asked_ahead(self):
        controller = self.throttle("turn")
        controller.create(1, 1, mode="monitor-only")
        controller.start()
        clock = ManualClock()
        worker = self.throttle("turn", clock=clock)
        for _ in range(50):
            self.assertIs(worker.await_fuel(timeout=GENEROUS),
                          FuelOutcome.FUEL)
        # Limited from now on: the next message says unlimited=false, and
        # the worker asks for what its waiters miss only.
        controller.configure(1000000, 1)
        used = 50
        for _ in range(50):
            self.assertIs(worker.await_fuel(timeout=GENEROUS),
                          FuelOutcome.FUEL)
            used += 1
        # What was asked ahead before the first limited message arrived is
        # kept (at most 16) or on its way; once it arrived, nothing more
        # is asked ahead: after the spare grants, every grant is one used.
        fuel = worker._state.fuel
        self.assertTrue(wait_for(
            lambda: controller.info().total_emissions == used + fuel._spare))
        self.assertLessEqual(fuel._spare, 16)
        for _ in range(fuel._spare + 20):
            self.assertIs(worker.await_fuel(timeout=GENEROUS),
                          FuelOutcome.FUEL)
            used += 1
        self.assertEqual(controller.info().total_emissions, used)
        self.assertTrue(
            wait_for(lambda: controller.info().waiting_streams == 0),
            controller.info())

    def test_ask_ahead_must_be_a_count(self):
        for bad in (-1, 1.5, True, "16", 1000001):
            with self.assertRaises(ValueError):
                Throttle("127.0.0.1:1", "x", ask_ahead=bad)


class DemandWhileUnlimited(unittest.TestCase):
    """The demand a stream sends as its pace falls (no server: the
    stream's own arithmetic, on its clock)."""

    def test_a_falling_pace_withdraws_nothing_while_unlimited(self):
        from throttle_client._proto import pb
        from throttle_client.acquire import AcquireStream
        from throttle_client.backoff import Backoff
        from throttle_client.client import KillFlag

        clock = ManualClock()
        stream = AcquireStream(None, pb.AcquireRequest(throttle="t"),
                               KillFlag(), Backoff(), ask_ahead=16,
                               clock=clock)
        try:
            with stream._lock:
                # What a fast loop leaves: a pace of 16 in this 1 ms window,
                # 9 grants asked ahead that the server has not sent yet.
                stream._unlimited = True
                stream._outstanding = 9
                stream._note_taken(16)
                self.assertEqual(stream._demand_change(), 0)  # 9 >= 16 / 2
                # The worker paused: its pace is 1, nothing is asked ahead
                # any more, but the 9 stay asked for. A withdrawal would race
                # the grants already on their way (more than ask_ahead
                # counted and unused, seen as 2020 of 2000 + 16).
                clock.advance(0.010)
                stream._note_taken(1)
                self.assertEqual(stream._ask_ahead_now(), 0)
                self.assertEqual(stream._demand_change(), 0)
                stream._wanted = 10  # a waiter missing 10: one more
                self.assertEqual(stream._demand_change(), 1)
                # Limited: exactly what the waiters miss, withdrawing the
                # rest.
                stream._wanted = 2
                stream._unlimited = False
                self.assertEqual(stream._demand_change(), -7)
        finally:
            stream.close()


class Withdraw(ServerTestCase):

    def test_a_timed_out_waiter_withdraws_its_demand(self):
        controller = self.throttle("withdraw")
        controller.create(10, 1)  # not started: a waiter waits
        worker = self.throttle("withdraw")
        thread, outcome = in_thread(worker.await_fuel, SHORT_TIMEOUT)
        self.assertTrue(await_waiting(controller, 1, SHORT_TIMEOUT),
                        controller.info())
        stream = stream_of(worker)
        thread.join(GENEROUS)
        self.assertEqual(outcome, [FuelOutcome.TIMED_OUT])
        # The server forgot the demand; the stream stays open.
        self.assertTrue(
            wait_for(lambda: controller.info().waiting_streams == 0),
            controller.info())
        self.assertIs(stream_of(worker), stream)
        self.assertFalse(stream.done())
        # A counted waiter withdraws too.
        self.assertEqual(worker.await_fuel_n(3, timeout=0.2),
                         (FuelOutcome.TIMED_OUT, 0))
        self.assertTrue(
            wait_for(lambda: controller.info().waiting_streams == 0),
            controller.info())
        # The next await on the same stream still gets fuel, and no grant
        # went to the waiters that gave up.
        controller.start()
        self.assertIs(worker.await_fuel(timeout=GENEROUS), FuelOutcome.FUEL)
        self.assertIs(stream_of(worker), stream)
        self.assertEqual(controller.stop().total_emissions, 1)


class Ends(ServerTestCase):

    def test_stop_ends_every_waiter_with_stopped(self):
        controller = self.throttle("stop-all")
        controller.create(1, 600, mode="window")  # one grant, then none
        controller.start()
        worker = self.throttle("stop-all")
        self.assertIs(worker.await_fuel(), FuelOutcome.FUEL)
        waits = [in_thread(worker.await_fuel),
                 in_thread(worker.await_fuel, GENEROUS),
                 in_thread(worker.await_fuel_n, 3)]
        self.assertTrue(wait_for(lambda: waiters_of(worker) == 3))
        self.assertTrue(await_waiting(controller, 1))
        controller.stop()
        for thread, _ in waits:
            thread.join(GENEROUS)
        self.assertEqual([outcome for _, outcome in waits],
                         [[FuelOutcome.STOPPED], [FuelOutcome.STOPPED],
                          [(FuelOutcome.STOPPED, 0)]])
        self.assertTrue(worker.kill_flag.is_set())
        # While stopped, the next await ends stopped at once.
        self.assertIs(worker.await_fuel(timeout=GENEROUS),
                      FuelOutcome.STOPPED)
        self.assertEqual(worker.await_fuel_n(2), (FuelOutcome.STOPPED, 0))
        # A restart: fuel again, and the kill flag is cleared.
        controller.configure(100, 1)
        controller.start()
        self.assertIs(worker.await_fuel(timeout=GENEROUS), FuelOutcome.FUEL)
        self.assertFalse(worker.kill_flag.is_set())

    def test_delete_ends_every_waiter_with_not_found(self):
        controller = self.throttle("delete-all")
        controller.create(10, 1)
        worker = self.throttle("delete-all")
        waits = [in_thread(worker.await_fuel),
                 in_thread(worker.await_fuel_n, 2, GENEROUS)]
        self.assertTrue(wait_for(lambda: waiters_of(worker) == 2))
        self.assertTrue(await_waiting(controller, 1))
        controller.delete()
        for thread, outcome in waits:
            thread.join(GENEROUS)
            self.assertEqual(outcome, [Code.NOT_FOUND])
        # The next call opens a new stream, which says the same.
        with self.assertRaises(ThrottleError) as raised:
            worker.await_fuel(timeout=GENEROUS)
        self.assertEqual(raised.exception.code, Code.NOT_FOUND)


def _child_fuel(throttle, results):
    """In a forked child: await_fuel_n(3) of the parent's Throttle."""
    try:
        result = throttle.await_fuel_n(3, timeout=GENEROUS)
        results.put((result.outcome.value, result.grants))
    except ThrottleError as error:
        results.put(f"error {error}")
    finally:
        throttle.close()


class Fork(ServerTestCase):

    def test_a_fork_while_streams_are_open_leaves_both_sides_working(self):
        # gRPC leaves a child whose parent had a call in flight unable to
        # call; the streams end their calls around the fork.
        controller = self.throttle("fork")
        controller.create(1, 1, mode="monitor-only")
        controller.start()
        worker = self.throttle("fork")
        self.assertIs(worker.await_fuel(), FuelOutcome.FUEL)
        idle_stream = stream_of(worker)
        # And a stream with a waiter, on a throttle not started yet.
        later = self.throttle("fork-later")
        later.create(10, 1)
        waiter = self.throttle("fork-later")
        thread, outcome = in_thread(waiter.await_fuel, GENEROUS)
        self.assertTrue(await_waiting(later, 1))

        context = multiprocessing.get_context("fork")
        results = context.Queue()
        child = context.Process(target=_child_fuel, args=(worker, results))
        child.start()
        self.addCleanup(child.kill)
        self.assertEqual(results.get(timeout=GENEROUS), ("fuel", 3))
        child.join(GENEROUS)
        self.assertEqual(child.exitcode, 0)

        self.assertIs(worker.await_fuel(timeout=GENEROUS), FuelOutcome.FUEL)
        self.assertIsNot(stream_of(worker), idle_stream)  # a new call
        self.assertEqual(controller.stop().total_emissions, 5)
        # The waiter asked again on a new call and gets its grant.
        self.assertTrue(await_waiting(later, 1))
        later.start()
        thread.join(GENEROUS)
        self.assertEqual(outcome, [FuelOutcome.FUEL])


class Restart(unittest.TestCase):

    def test_a_server_restart_mid_wait_reconnects(self):
        server = Server("--throttle=restart max_n=10 per=1").start()
        self.addCleanup(server.close)
        worker = Throttle(server.address, "restart", backoff_max=0.5)
        self.addCleanup(worker.close)
        waits = [in_thread(worker.await_fuel),
                 in_thread(worker.await_fuel_n, 2, GENEROUS)]
        self.assertTrue(wait_for(lambda: waiters_of(worker) == 2))
        controller = Throttle(server.address, "restart", wait_for_ready=True)
        self.addCleanup(controller.close)
        self.assertTrue(await_waiting(controller, 1))
        # SIGTERM: the stream ends UNAVAILABLE; the waiters wait on while
        # the client opens new streams with backoff.
        self.assertEqual(server.stop(), 0)
        server.start()  # the same port; the throttle is created again
        # The new server sees the waiters' demand before it starts.
        self.assertTrue(await_waiting(controller, 1), server.log())
        self.assertEqual([outcome for _, outcome in waits], [[], []])
        controller.start()
        for thread, _ in waits:
            thread.join(GENEROUS)
        self.assertEqual([outcome for _, outcome in waits],
                         [[FuelOutcome.FUEL], [(FuelOutcome.FUEL, 2)]])
        self.assertEqual(controller.stop().total_emissions, 3)


class WithoutAcquire(unittest.TestCase):
    """In-process servers (support.UnavailableServer): one without Acquire,
    one whose Acquire answers UNAVAILABLE."""

    def client(self, backoff, acquire):
        """(server, Throttle): an UnavailableServer(acquire=acquire) and a
        Throttle on it whose backoff starts at `backoff` seconds."""
        server = UnavailableServer(acquire=acquire)
        self.addCleanup(server.close)
        t = Throttle(server.address, "down", backoff_initial=backoff,
                     backoff_max=max(backoff, 0.05))
        self.addCleanup(t.close)
        return server, t

    def test_a_server_without_acquire_gets_await_fuel_calls(self):
        server, t = self.client(0.02, acquire=False)  # UNIMPLEMENTED
        self.assertIs(t.await_fuel(timeout=0.5), FuelOutcome.TIMED_OUT)
        self.assertGreaterEqual(len(server.wait_limits), 1)
        self.assertEqual(t.await_fuel_n(2, timeout=0.2),
                         (FuelOutcome.TIMED_OUT, 0))
        self.assertEqual(server.acquire_calls, 1)  # not asked again

    def test_an_unavailable_stream_is_opened_again_until_the_timeout(self):
        server, t = self.client(0.02, acquire=True)
        begin = time.monotonic()
        self.assertIs(t.await_fuel(timeout=1.0), FuelOutcome.TIMED_OUT)
        elapsed = time.monotonic() - begin
        self.assertGreaterEqual(elapsed, 0.95)
        self.assertLess(elapsed, GENEROUS)
        self.assertGreaterEqual(server.acquire_calls, 3)
        self.assertEqual(server.wait_limits, [])  # no AwaitFuel call

    def test_close_ends_a_wait_between_streams(self):
        server, t = self.client(600, acquire=True)
        thread, outcome = in_thread(t.await_fuel)
        self.assertTrue(wait_for(lambda: server.acquire_calls >= 1))
        begin = time.monotonic()
        t.close()
        thread.join(GENEROUS)
        self.assertFalse(thread.is_alive())
        self.assertLess(time.monotonic() - begin, 30)
        self.assertEqual(outcome, [Code.CANCELLED])
        self.assertEqual(server.acquire_calls, 1)


if __name__ == "__main__":
    unittest.main()
