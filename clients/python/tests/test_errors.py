"""Bad input and the ways a wait ends, through the Python client against the
real server: each error reaches the caller as a ThrottleError with the
right gRPC code; stop, wait limit and timeouts are FuelOutcome values; after
close() every call fails at once; a worker reconnects after a server
restart; timeouts are measured on the monotonic clock; the backoff policy.
"""
import random
import time
import unittest
from unittest import mock

import grpc

from support import (GENEROUS, Server, ServerTestCase,
                     UnavailableServer, await_fuel_in_thread, await_waiting,
                     wait_for)

from throttle_client import (Backoff, FuelOutcome, Throttle, ThrottleError,
                             channel_options)

Code = grpc.StatusCode


class BadInput(ServerTestCase):

    def assertCode(self, code, call, *args, **kwargs):
        with self.assertRaises(ThrottleError) as raised:
            call(*args, **kwargs)
        self.assertEqual(raised.exception.code, code, raised.exception)
        self.assertEqual(raised.exception.code_name, code.name)
        self.assertIn(code.name, str(raised.exception))
        return raised.exception

    def test_create_with_max_n_zero_is_invalid_argument(self):
        error = self.assertCode(Code.INVALID_ARGUMENT,
                                self.throttle("zero").create, 0, 1)
        self.assertIn("max_n", error.details)

    def test_create_with_bad_per_is_invalid_argument(self):
        self.assertCode(Code.INVALID_ARGUMENT,
                        self.throttle("per").create, 4, 0)
        self.assertCode(Code.INVALID_ARGUMENT,
                        self.throttle("per").create, 4, -1)

    def test_burst_outside_bucket_mode_is_invalid_argument(self):
        self.assertCode(Code.INVALID_ARGUMENT,
                        self.throttle("burst").create, 4, 1, mode="smooth",
                        burst=3)

    def test_bad_name_is_invalid_argument(self):
        self.assertCode(Code.INVALID_ARGUMENT,
                        self.throttle("has space").create, 4, 1)

    def test_unknown_mode_is_refused_by_the_client(self):
        with self.assertRaises(ValueError):
            self.throttle("mode").create(4, 1, mode="sometimes")

    def test_duplicate_is_already_exists(self):
        t = self.throttle("dup")
        t.create(4, 1)
        self.assertCode(Code.ALREADY_EXISTS, t.create, 4, 1)
        # replace=True deletes the old one first.
        self.assertEqual(t.create(8, 1, replace=True).max_n, 8)

    def test_unknown_throttle_is_not_found(self):
        t = self.throttle("nobody")
        self.assertCode(Code.NOT_FOUND, t.start)
        self.assertCode(Code.NOT_FOUND, t.stop)
        self.assertCode(Code.NOT_FOUND, t.mean)
        self.assertCode(Code.NOT_FOUND, t.latest)
        self.assertCode(Code.NOT_FOUND, t.delete)
        self.assertCode(Code.NOT_FOUND, t.has_fuel)
        self.assertCode(Code.NOT_FOUND, t.info)
        # Not retried: an error other than UNAVAILABLE ends the wait.
        self.assertCode(Code.NOT_FOUND, t.await_fuel, timeout=GENEROUS)

    def test_wrong_state_is_failed_precondition(self):
        t = self.throttle("state")
        t.create(4, 1)
        self.assertCode(Code.FAILED_PRECONDITION, t.stop)  # never started
        t.start()
        self.assertCode(Code.FAILED_PRECONDITION, t.start)  # running
        # Emit on a throttle that counts at grant time.
        self.assertCode(Code.FAILED_PRECONDITION, t.emit)
        t.stop()
        self.assertCode(Code.FAILED_PRECONDITION, t.stop)  # stopped

    def test_bad_worker_arguments_are_invalid_argument(self):
        self.throttle("args").create(4, 1)
        self.assertCode(Code.INVALID_ARGUMENT,
                        self.throttle("args", weight=0).await_fuel, 5)
        self.assertCode(Code.INVALID_ARGUMENT,
                        self.throttle("args", worker_id="x" * 129).await_fuel,
                        5)
        self.assertCode(Code.INVALID_ARGUMENT, self.throttle("args").latest,
                        61)

    def test_delete_ends_a_waiting_worker_with_not_found(self):
        controller = self.throttle("deleted")
        controller.create(4, 1)
        worker = self.throttle("deleted")
        thread, outcome = await_fuel_in_thread(worker)
        self.assertTrue(await_waiting(controller, 1))
        controller.delete()
        thread.join(GENEROUS)
        self.assertEqual(outcome, [Code.NOT_FOUND])


class WaitOutcomes(ServerTestCase):

    def test_timeout_before_start_is_timed_out_without_kill_flag(self):
        t = self.throttle("created")
        t.create(4, 1)
        begin = time.monotonic()
        outcome = t.await_fuel(timeout=0.3)
        self.assertIs(outcome, FuelOutcome.TIMED_OUT)
        self.assertTrue(outcome.timed_out)
        self.assertFalse(outcome.stopped)
        self.assertFalse(outcome)  # false, as the seed's loop expects
        self.assertGreaterEqual(time.monotonic() - begin, 0.25)
        self.assertFalse(t.kill_flag.is_set())
        self.assertIs(t.await_fuel(timeout=0), FuelOutcome.TIMED_OUT)

    def test_stopped_throttle_sets_the_kill_flag(self):
        controller = self.throttle("stopped")
        controller.create(4, 1)
        controller.start()
        worker = self.throttle("stopped")
        fuel = worker.await_fuel(timeout=GENEROUS)
        self.assertIs(fuel, FuelOutcome.FUEL)
        self.assertTrue(fuel)
        self.assertTrue(fuel.fuel)
        self.assertFalse(worker.kill_flag.is_set())
        controller.stop()
        self.assertTrue(controller.kill_flag.is_set())
        stopped = worker.await_fuel(timeout=GENEROUS)
        self.assertIs(stopped, FuelOutcome.STOPPED)
        self.assertTrue(stopped.stopped)
        self.assertFalse(stopped.timed_out)
        self.assertFalse(stopped)
        self.assertTrue(worker.kill_flag.is_set())
        # A restart clears it with the next grant.
        controller.start()
        self.assertFalse(controller.kill_flag.is_set())
        self.assertIs(worker.await_fuel(timeout=GENEROUS), FuelOutcome.FUEL)
        self.assertFalse(worker.kill_flag.is_set())
        controller.stop()
        self.assertFalse(worker.has_fuel())
        self.assertTrue(worker.kill_flag.is_set())

    def test_has_fuel_takes_free_fuel_only(self):
        t = self.throttle("has")
        t.create(1, 60)  # one grant, then none for a minute
        t.start()
        self.assertTrue(t.has_fuel())
        self.assertFalse(t.has_fuel())
        self.assertFalse(t.kill_flag.is_set())

    def test_manual_emit_counts_reported_emissions(self):
        t = self.throttle("manual")
        t.create(100, 1, manual_emit=True)
        t.start()
        self.assertTrue(t.await_fuel(timeout=GENEROUS))
        self.assertEqual(t.emit(), 1)
        self.assertEqual(t.emit(3), 4)
        self.assertEqual(t.stop().total_emissions, 4)

    def test_statistics_tuples(self):
        t = self.throttle("stats")
        info = t.create(100, 1, mode="window")
        self.assertEqual((info.mode, info.state, info.max_n),
                         ("window", "created", 100))
        t.start()
        for _ in range(5):
            self.assertTrue(t.await_fuel(timeout=GENEROUS))
        between, per_second = t.latest(window=60)
        self.assertEqual(per_second, 5 / 60)
        self.assertAlmostEqual(between, 12.0)
        self.assertEqual(repr(t.latest(60)), repr((between, per_second)))
        mean = t.mean()
        self.assertEqual(len(mean), 2)
        stats = t.stop()
        self.assertEqual(stats.total_emissions, 5)
        self.assertEqual(t.info().state, "stopped")

    def test_stop_ends_a_waiting_call_with_stopped(self):
        controller = self.throttle("stop-waiting")
        controller.create(1, 60)  # one grant, then none for a minute
        controller.start()
        worker = self.throttle("stop-waiting")
        self.assertIs(worker.await_fuel(timeout=GENEROUS), FuelOutcome.FUEL)
        thread, outcome = await_fuel_in_thread(worker)
        self.assertTrue(await_waiting(controller, 1))
        controller.stop()
        thread.join(GENEROUS)
        self.assertEqual(outcome, [FuelOutcome.STOPPED])
        self.assertTrue(worker.kill_flag.is_set())


class AfterClose(ServerTestCase):
    """close() ends calls in flight and fails every later call at once with
    CANCELLED "throttle_client.Throttle is closed" (docs/clients.md)."""

    def assertClosed(self, call, *args, **kwargs):
        begin = time.monotonic()
        with self.assertRaises(ThrottleError) as raised:
            call(*args, **kwargs)
        self.assertEqual(raised.exception.code, Code.CANCELLED)
        self.assertEqual(raised.exception.details,
                         "throttle_client.Throttle is closed")
        self.assertIn("closed", str(raised.exception))
        self.assertLess(time.monotonic() - begin, 5)

    def test_close_ends_a_waiting_call(self):
        t = self.throttle("close")
        t.create(4, 1)
        thread, outcome = await_fuel_in_thread(t, codes=False)
        self.assertTrue(await_waiting(t, 1))
        t.close()
        thread.join(GENEROUS)
        self.assertFalse(thread.is_alive())
        [error] = outcome
        self.assertIsInstance(error, ThrottleError)
        self.assertEqual(error.code, Code.CANCELLED)
        self.assertEqual(error.details, "throttle_client.Throttle is closed")
        self.assertTrue(t.kill_flag.is_set())
        # The server saw the stream go.
        controller = self.throttle("close")
        self.assertTrue(
            wait_for(lambda: controller.info().waiting_streams == 0))

    def test_every_later_call_fails_at_once_and_the_channel_stays_closed(self):
        t = self.throttle("closed-later")
        t.create(4, 1)
        t.start()
        self.assertIs(t.await_fuel(timeout=GENEROUS), FuelOutcome.FUEL)
        t.close()
        self.assertTrue(t.kill_flag.is_set())
        self.assertClosed(t.await_fuel)
        self.assertClosed(t.await_fuel, timeout=0)
        self.assertClosed(t.has_fuel)
        self.assertClosed(t.emit)
        self.assertClosed(t.start)
        self.assertClosed(t.stop)
        self.assertClosed(t.info)
        self.assertClosed(t.latest)
        self.assertClosed(t.mean)
        self.assertClosed(t.create, 4, 1, replace=True)
        self.assertClosed(t.delete)
        self.assertIsNone(t._state)  # not reopened
        t.close()  # again: nothing happens
        self.assertClosed(t.await_fuel)
        # A pickled copy of a closed Throttle is closed too.
        import pickle
        self.assertClosed(pickle.loads(pickle.dumps(t)).await_fuel)

    def test_kept_grants_are_not_handed_out_after_close(self):
        t = self.throttle("closed-surplus")
        t._surplus = 2  # as after a message that carried 3 grants
        t.close()
        self.assertClosed(t.await_fuel)
        self.assertClosed(t.has_fuel)

    def test_close_ends_a_backoff_wait(self):
        server = UnavailableServer()
        self.addCleanup(server.close)
        t = Throttle(server.address, "backoff", backoff_initial=600,
                     backoff_max=600)
        self.addCleanup(t.close)
        thread, outcome = await_fuel_in_thread(t, codes=False)
        self.assertTrue(wait_for(lambda: len(server.wait_limits) >= 1))
        begin = time.monotonic()
        t.close()
        thread.join(GENEROUS)
        self.assertFalse(thread.is_alive())
        self.assertLess(time.monotonic() - begin, 30)
        [error] = outcome
        self.assertEqual(error.code, Code.CANCELLED)
        self.assertEqual(error.details, "throttle_client.Throttle is closed")
        self.assertEqual(len(server.wait_limits), 1)


class MonotonicClock(unittest.TestCase):

    def test_a_wall_clock_step_neither_stretches_nor_cuts_a_wait(self):
        # The server answers UNAVAILABLE, so await_fuel calls again and again
        # for its whole timeout. Meanwhile the wall clock (time.time) steps
        # back an hour, then forward two: the timeout, and the wait limit
        # each call carries, are measured on time.monotonic(). The step is
        # seen by the client module only: gRPC's own time.time() (it turns
        # a call's timeout into a deadline with it) must stay consistent
        # with the C core's clock, as it is when the real clock steps.
        offset = [0.0]
        real_time = time.time

        class SteppedTime:
            def __getattr__(self, name):
                return getattr(time, name)

            @staticmethod
            def time():
                return real_time() + offset[0]

        def on_call(n):
            if n == 1:
                offset[0] = -3600.0
            elif n == 3:
                offset[0] = 3600.0

        server = UnavailableServer(on_call)
        self.addCleanup(server.close)
        t = Throttle(server.address, "steps", backoff_initial=0.02,
                     backoff_max=0.05)
        self.addCleanup(t.close)
        with mock.patch("throttle_client.client.time", SteppedTime()):
            begin = time.monotonic()
            outcome = t.await_fuel(timeout=1.0)
            elapsed = time.monotonic() - begin
        self.assertIs(outcome, FuelOutcome.TIMED_OUT)
        self.assertGreaterEqual(elapsed, 0.95)
        self.assertLess(elapsed, GENEROUS)
        limits = list(server.wait_limits)
        self.assertGreaterEqual(len(limits), 4, limits)
        self.assertLessEqual(limits[0], 1.0)
        self.assertGreater(limits[0], 0.9)
        self.assertEqual(limits, sorted(limits, reverse=True))


class Reconnect(unittest.TestCase):

    def test_unreachable_server_times_out(self):
        # A server that is gone: wait_for_ready keeps the call waiting until
        # the timeout, and await_fuel says "no fuel" instead of raising.
        server = Server().start()
        address = server.address
        server.close()
        t = Throttle(address, "gone")
        self.addCleanup(t.close)
        begin = time.monotonic()
        self.assertIs(t.await_fuel(timeout=0.5), FuelOutcome.TIMED_OUT)
        self.assertGreaterEqual(time.monotonic() - begin, 0.45)

    def test_worker_reconnects_after_a_server_restart(self):
        spec = "--throttle=again max_n=10 per=1"
        server = Server(spec).start()
        self.addCleanup(server.close)
        t = Throttle(server.address, "again", backoff_max=0.5)
        self.addCleanup(t.close)
        thread, outcome = await_fuel_in_thread(t, codes=False)
        self.assertTrue(await_waiting(t, 1))
        # SIGTERM: the stream ends with UNAVAILABLE and the worker keeps
        # calling with backoff until a server is back on the same port.
        self.assertEqual(server.stop(), 0)
        time.sleep(0.3)
        self.assertEqual(outcome, [])
        server.start()
        # Waits for the new server rather than failing with UNAVAILABLE.
        controller = Throttle(server.address, "again", wait_for_ready=True)
        self.addCleanup(controller.close)
        self.assertTrue(await_waiting(controller, 1))
        controller.start()
        thread.join(GENEROUS)
        self.assertEqual(outcome, [FuelOutcome.FUEL])


class BackoffPolicy(unittest.TestCase):

    def test_doubles_with_jitter_up_to_the_maximum(self):
        backoff = Backoff(0.1, 1.0, rng=random.Random(7))
        bases = [0.1, 0.2, 0.4, 0.8, 1.0, 1.0]
        for base in bases:
            delay = backoff.next_delay()
            self.assertGreaterEqual(delay, base * 0.8)
            self.assertLess(delay, base * 1.2)
        backoff.reset()
        self.assertLess(backoff.next_delay(), 0.12)


class ChannelOptions(unittest.TestCase):

    def test_the_channel_reconnects_on_the_client_backoff(self):
        # gRPC's default (1 s up to 120 s) would govern how soon a waiting
        # call reaches a server that came back after an outage.
        seen = []
        real = grpc.insecure_channel

        def spy(address, options=None, **kwargs):
            seen.append(dict(options or ()))
            return real(address, options=options, **kwargs)

        with mock.patch("grpc.insecure_channel", spy):
            t = Throttle("127.0.0.1:1", "x", backoff_initial=0.1,
                         backoff_max=1.5,
                         channel_options=[("grpc.keepalive_time_ms", 60000)])
            t._process()
            t.close()
            Throttle("127.0.0.1:1", "x")._process().channel.close()
        self.assertEqual(seen[0], {
            "grpc.initial_reconnect_backoff_ms": 100,
            "grpc.max_reconnect_backoff_ms": 1500,
            "grpc.min_reconnect_backoff_ms": 5000,
            "grpc.keepalive_time_ms": 60000,
        })
        self.assertEqual(seen[1]["grpc.initial_reconnect_backoff_ms"], 50)
        self.assertEqual(seen[1]["grpc.max_reconnect_backoff_ms"], 2000)

    def test_values_are_whole_positive_milliseconds_in_order(self):
        options = dict(channel_options(0, -1))
        self.assertEqual(options["grpc.initial_reconnect_backoff_ms"], 1)
        self.assertEqual(options["grpc.max_reconnect_backoff_ms"], 1)
        self.assertEqual(
            dict(channel_options(3, 1))["grpc.max_reconnect_backoff_ms"], 3000)
        self.assertEqual(
            dict(channel_options(1, float("inf")))
            ["grpc.max_reconnect_backoff_ms"], 2**31 - 1)
        # Extra options come last: a caller may override.
        self.assertEqual(
            dict(channel_options(1, 2, [("grpc.max_reconnect_backoff_ms", 7)]))
            ["grpc.max_reconnect_backoff_ms"], 7)


if __name__ == "__main__":
    unittest.main()
