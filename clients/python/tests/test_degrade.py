"""Graceful degradation in the Python client (docs/DECISIONS.md, "Graceful
degradation"): the local pacing bound on a fake clock (LocalShare), the
AwaitFuel calls' steps (call_step) and the one record a handle's stream and
AwaitFuel calls share, on fake times; the controller's degradation and
local_share_for against a real server; and worker threads and AwaitFuel
calls (fail-if-late waits, zero-timeout polls) through a real server killed
with SIGKILL and restarted with its --state_dir, so that the throttle comes
back running.
"""
import datetime
import math
import os
import random
import subprocess
import sys
import tempfile
import threading
import time
import unittest

import grpc

from support import GENEROUS, Server, ServerTestCase, wait_for

from throttle_client import FuelOutcome, Throttle, ThrottleError
from throttle_client._proto import pb
from throttle_client.acquire import AcquireStream, _Waiter
from throttle_client.backoff import Backoff
from throttle_client.client import KillFlag
from throttle_client.degrade import (FAIL_FAST, GRANTED, LOCAL, RETRY, SLEEP,
                                     TIMED_OUT, TOO_LATE, UNREACHABLE, WAIT,
                                     LocalShare, call_step)


def _policy(degradation, local_share_for, share):
    response = pb.AcquireResponse(grants=1, degradation=degradation,
                                  share_per_second=share)
    response.local_share_for.FromNanoseconds(int(local_share_for * 1e9))
    return response


def _take_all(local, now):
    got = 0
    while local.take(1000, now):
        got += 1
    return got


class LocalShareTest(unittest.TestCase):
    """On a fake clock: a number the test moves."""

    def test_pacing_never_exceeds_share_times_elapsed_plus_one(self):
        local = LocalShare()
        share = 7.3
        local.update(_policy(pb.DEGRADATION_LOCAL_SHARE, 60, share))
        now = 1000.0
        local.server_lost(now)
        lost, total = now, 0
        rng = random.Random(4)
        while now - lost < 50:
            total += _take_all(local, now)
            self.assertLessEqual(total, math.floor(share * (now - lost)) + 1)
            now += rng.uniform(0.001, 0.3)
        self.assertGreater(total, 0)

    def test_a_waiter_polled_often_gets_about_the_share(self):
        local = LocalShare()
        local.update(_policy(pb.DEGRADATION_LOCAL_SHARE, 20, 50))
        local.server_lost(0.0)
        total = sum(_take_all(local, ms / 1000) for ms in range(10000))
        self.assertLessEqual(total, 501)
        self.assertGreaterEqual(total, 490)

    def test_stops_after_local_share_for_then_fails_fast(self):
        local = LocalShare()
        local.update(_policy(pb.DEGRADATION_LOCAL_SHARE, 2, 10))
        local.server_lost(0.0)
        total = 0
        for step in range(200):  # 0 .. 1.99 s
            self.assertEqual(local.action(step / 100), LOCAL)
            total += _take_all(local, step / 100)
        self.assertEqual(total, 20)
        self.assertEqual(local.action(2.0), FAIL_FAST)
        self.assertEqual(_take_all(local, 7.0), 0)
        self.assertEqual(local.next_change(2.0), math.inf)

    def test_server_back_stops_local_grants_at_once(self):
        local = LocalShare()
        local.update(_policy(pb.DEGRADATION_LOCAL_SHARE, 1, 10))
        local.server_lost(0.0)
        self.assertEqual(local.take(1, 0.9), 1)
        local.server_back()
        self.assertEqual(local.action(1.0), WAIT)
        self.assertEqual(local.take(1, 5.0), 0)
        local.server_lost(10.0)  # a new outage, with its own bound
        self.assertEqual(local.action(10.9), LOCAL)
        local.server_lost(10.9)  # changes nothing
        self.assertEqual(local.action(11.1), FAIL_FAST)

    def test_other_policies_never_grant_locally(self):
        wait = LocalShare()  # nothing told yet: wait
        wait.server_lost(0.0)
        self.assertEqual(wait.action(0.0), WAIT)
        self.assertEqual(wait.take(1, 0.0), 0)
        fail_fast = LocalShare()
        fail_fast.update(_policy(pb.DEGRADATION_FAIL_FAST, 0, 10))
        self.assertEqual(fail_fast.action(0.0), WAIT)  # reachable
        fail_fast.server_lost(0.0)
        self.assertEqual(fail_fast.action(0.0), FAIL_FAST)
        self.assertEqual(fail_fast.take(1, 0.0), 0)
        no_share = LocalShare()  # monitor-only: share 0
        no_share.update(_policy(pb.DEGRADATION_LOCAL_SHARE, 10, 0))
        no_share.server_lost(0.0)
        self.assertEqual(no_share.action(0.0), FAIL_FAST)

    def test_a_message_without_policy_keeps_the_last_one(self):
        local = LocalShare()
        local.update(_policy(pb.DEGRADATION_LOCAL_SHARE, 3, 4))
        local.update(pb.AcquireResponse(grants=1))
        self.assertEqual(local.share_per_second, 4)
        self.assertEqual(local.local_share_for, 3)
        self.assertEqual(local.degradation, pb.DEGRADATION_LOCAL_SHARE)


    def test_next_grant_is_due_only_within_local_share_for(self):
        local = LocalShare()
        local.update(_policy(pb.DEGRADATION_LOCAL_SHARE, 1, 4))
        self.assertEqual(local.next_grant(0.0), math.inf)  # no outage
        local.server_lost(10.0)
        self.assertEqual(local.next_grant(10.0), 10.0)
        self.assertEqual(local.take(1, 10.0), 1)
        self.assertEqual(local.next_grant(10.1), 10.25)
        local.take(1, 10.75)  # the next would be due at 11.0: too late
        self.assertEqual(local.next_grant(10.8), math.inf)
        self.assertEqual(local.next_change(10.8), 11.0)


class CallStepTest(unittest.TestCase):
    """An AwaitFuel wait's steps after its call found the server gone."""

    def test_fail_fast_ends_at_once(self):
        self.assertEqual(
            call_step(FAIL_FAST, 1, math.inf, math.inf, 60.0, False, 0.5,
                      0.0), (UNREACHABLE, None))

    def test_all_granted(self):
        self.assertEqual(
            call_step(LOCAL, 0, 1.0, 1.0, None, False, 0.5, 0.0),
            (GRANTED, None))

    def test_fail_if_late_is_too_late_when_the_next_grant_comes_after(self):
        self.assertEqual(
            call_step(LOCAL, 1, 2.5, 2.5, 2.0, True, 0.5, 1.0),
            (TOO_LATE, 1.5))
        self.assertEqual(
            call_step(LOCAL, 1, math.inf, 3.0, 2.0, True, 0.5, 1.0),
            (TOO_LATE, None))  # local granting ends before
        # Due in time: it sleeps until the grant (or the next retry).
        self.assertEqual(
            call_step(LOCAL, 1, 1.5, 1.5, 2.0, True, 1.8, 1.0),
            (SLEEP, 1.5))

    def test_a_plain_wait_sleeps_until_its_deadline_then_times_out(self):
        self.assertEqual(
            call_step(LOCAL, 1, 2.5, 2.5, 2.0, False, 5.0, 1.0),
            (SLEEP, 2.0))
        self.assertEqual(
            call_step(LOCAL, 1, 2.5, 2.5, 2.0, False, 5.0, 2.0),
            (TIMED_OUT, None))
        # A poll: its deadline is now.
        self.assertEqual(
            call_step(LOCAL, 1, 0.2, 0.2, 0.0, False, 0.05, 0.0),
            (TIMED_OUT, None))

    def test_wait_retries_on_its_backoff(self):
        self.assertEqual(
            call_step(WAIT, 1, math.inf, math.inf, None, False, 0.5, 0.0),
            (SLEEP, 0.5))
        self.assertEqual(
            call_step(WAIT, 1, math.inf, math.inf, None, False, 0.5, 0.5),
            (RETRY, None))
        # Under local share too, between local grants.
        self.assertEqual(
            call_step(LOCAL, 1, 3.0, 3.0, 9.0, False, 0.5, 0.6),
            (RETRY, None))


class _Unavailable(grpc.RpcError):

    def code(self):
        return grpc.StatusCode.UNAVAILABLE


class SharedRecordTest(unittest.TestCase):
    """One AcquireStream (no call is ever opened: no stub) holds the
    handle's record; its AwaitFuel methods and its stream see the same
    policy, outage and pacer."""

    def setUp(self):
        self.stream = AcquireStream(None, pb.AcquireRequest(throttle="t"),
                                    KillFlag(), Backoff(0.01, 0.1))
        self.addCleanup(self.stream.close)

    def test_an_await_fuel_answer_sets_the_policy_and_its_loss_the_outage(
            self):
        stream = self.stream
        self.assertTrue(stream.call_wait_for_ready())
        policy = pb.AwaitFuelResponse(grants=1,
                                      degradation=pb.DEGRADATION_LOCAL_SHARE,
                                      share_per_second=10)
        policy.local_share_for.FromSeconds(5)
        stream.call_answered(policy)
        self.assertFalse(stream.call_wait_for_ready())
        self.assertEqual(stream.take_local(1, 0.0)[:2], (0, WAIT))
        self.assertEqual(stream.call_lost(100.0), LOCAL)
        self.assertEqual(stream.take_local(3, 100.0), (1, LOCAL, 100.1,
                                                       100.1))
        self.assertEqual(stream.take_local(3, 100.05)[0], 0)
        stream.call_lost(100.2)  # the same outage: changes nothing
        self.assertEqual(stream.take_local(3, 104.99)[0], 1)
        self.assertEqual(stream.take_local(3, 105.0)[:2], (0, FAIL_FAST))
        stream.call_answered()  # an error status from the server
        self.assertEqual(stream.take_local(3, 106.0)[:2], (0, WAIT))

    def test_the_stream_and_await_fuel_calls_share_one_pacer(self):
        stream = self.stream
        # The stream is told the policy and loses the server.
        stream._deliver(_policy(pb.DEGRADATION_LOCAL_SHARE, 60, 1))
        with stream._lock:
            stream._waiters.clear()
            stream._ended(_Unavailable())
        now = time.monotonic()
        # An AwaitFuel call takes the grant due at the outage's start ...
        self.assertEqual(stream.take_local(1, now)[:2], (1, LOCAL))
        # ... so the stream's waiters get none before a second passed.
        waiter = _Waiter(1, 0)
        with stream._lock:
            stream._waiters.append(waiter)
            stream._wanted = 1
            stream._degrade(now + 0.5)
            self.assertIsNone(waiter.result)
            stream._degrade(now + 1.0)
            self.assertEqual(waiter.result, FuelOutcome.FUEL)
        # The stream's next message ends the outage for the calls too.
        stream._deliver(pb.AcquireResponse(grants=0))
        self.assertEqual(stream.take_local(1, now + 2.0)[:2], (0, WAIT))


class DegradationControls(ServerTestCase):
    """create(), configure(), update() and info() with degradation and
    local_share_for."""

    def test_create_with_local_share_and_info_lists_it(self):
        t = self.throttle("degrade-local")
        info = t.create(10, 1, degradation="local_share", local_share_for=30)
        self.assertEqual((info.degradation, info.local_share_for),
                         ("local_share", 30.0))
        info = t.info()
        self.assertEqual((info.degradation, info.local_share_for),
                         ("local_share", 30.0))
        info = t.configure(10, 1, degradation=pb.DEGRADATION_LOCAL_SHARE,
                           local_share_for=datetime.timedelta(minutes=2))
        self.assertEqual(info.local_share_for, 120.0)
        # configure() replaces the whole config: wait again.
        info = t.configure(10, 1)
        self.assertEqual((info.degradation, info.local_share_for),
                         ("wait", 0.0))
        with t.watch(interval=0.1) as watch:
            self.assertEqual(next(watch).info.degradation, "wait")

    def test_update_changes_only_the_degradation(self):
        t = self.throttle("degrade-update")
        t.create(10, 2, mode="window", degradation="fail_fast")
        info = t.update(degradation="local_share", local_share_for=5)
        self.assertEqual((info.degradation, info.local_share_for),
                         ("local_share", 5.0))
        self.assertEqual((info.max_n, info.per, info.mode), (10, 2, "window"))
        info = t.update(local_share_for=7)
        self.assertEqual((info.degradation, info.local_share_for),
                         ("local_share", 7.0))
        info = t.update(degradation="wait", local_share_for=None)
        self.assertEqual((info.degradation, info.local_share_for),
                         ("wait", 0.0))
        info = t.update(degradation="fail_fast")
        self.assertEqual((info.degradation, info.mode), ("fail_fast",
                                                         "window"))

    def test_bad_values_are_named(self):
        t = self.throttle("degrade-bad")
        with self.assertRaises(ThrottleError) as raised:
            t.create(10, 1, degradation="local_share")
        self.assertEqual(raised.exception.code,
                         grpc.StatusCode.INVALID_ARGUMENT)
        self.assertIn("config.local_share_for must be in (0, 1 hour]",
                      raised.exception.details)
        with self.assertRaises(ThrottleError) as raised:
            t.create(10, 1, degradation="local_share", local_share_for=7200)
        self.assertIn("got 2h", raised.exception.details)
        with self.assertRaises(ThrottleError) as raised:
            t.create(10, 1, degradation=99)
        self.assertIn("config.degradation has no such value: 99",
                      raised.exception.details)
        with self.assertRaisesRegex(ValueError,
                                    "degradation: unknown 'sometimes'"):
            t.create(10, 1, degradation="sometimes")
        with self.assertRaisesRegex(TypeError, "degradation"):
            t.update(degradation=1.5)
        with self.assertRaisesRegex(TypeError, "local_share_for"):
            t.create(10, 1, degradation="local_share", local_share_for="1m")
        t.create(10, 1, degradation="fail_fast")
        with self.assertRaises(ThrottleError) as raised:
            t.update(local_share_for=3)
        self.assertIn("config.local_share_for", raised.exception.details)
        self.assertEqual(t.info().degradation, "fail_fast")  # unchanged


class Worker:
    """A worker thread with a Throttle of its own: awaits fuel until
    close(), counting grants and keeping the first error."""

    def __init__(self, address, name):
        self.throttle = Throttle(address, name, backoff_initial=0.02,
                                 backoff_max=0.5)
        self.grants = 0
        self.errors = []
        self._done = False
        self._thread = threading.Thread(target=self._run)
        self._thread.start()

    def _run(self):
        try:
            while not self._done:
                if self.throttle.await_fuel(GENEROUS):
                    self.grants += 1
        except ThrottleError as error:
            if not self._done:
                self.errors.append(error)

    def close(self):
        self._done = True
        self.throttle.close()
        self._thread.join()


class _ServerPerTest(unittest.TestCase):
    """A real server per test, with a state directory of its own."""

    def serve(self, spec, port=0):
        server = Server(f"--throttle={spec}", f"--state_dir={self.state}",
                        port=port)
        server.start()
        self.addCleanup(server.close)
        return server

    def setUp(self):
        tmp = tempfile.TemporaryDirectory(prefix="throttle_degrade.")
        self.addCleanup(tmp.cleanup)
        self.state = os.path.join(tmp.name, "state")

    @staticmethod
    def kill(server):
        server.process.kill()  # SIGKILL
        server.process.wait()


class DegradationServerTest(_ServerPerTest):
    """Worker threads waiting on their Acquire streams."""

    def test_local_share_carries_workers_through_a_server_kill(self):
        rate = 40.0
        spec = ("degrade max_n=40 per=1 degradation=local_share "
                "local_share_for=60s")
        first = self.serve(spec)
        control = Throttle(first.address, "degrade")
        control.start()
        control.close()
        workers = [Worker(first.address, "degrade") for _ in range(2)]
        for worker in workers:
            self.addCleanup(worker.close)
        self.assertTrue(wait_for(lambda: all(w.grants >= 5 for w in workers)))
        self.kill(first)
        killed = time.monotonic()
        before = [w.grants for w in workers]

        def local():
            return sum(w.grants for w in workers) - sum(before)

        # Both go on locally, until a second's worth of the rate came.
        self.assertTrue(wait_for(
            lambda: all(w.grants > b for w, b in zip(workers, before))
            and local() >= rate))
        outage, granted = time.monotonic() - killed, local()
        # Within the fleet's rate from the kill: one grant per worker at
        # the outage's start, one more each that may have been on its way.
        self.assertLessEqual(granted, rate * outage + 2 * 2)
        self.assertEqual([w.errors for w in workers], [[], []])

        restarted = self.serve(spec, port=first.port)
        control = Throttle(restarted.address, "degrade")
        self.addCleanup(control.close)
        stored = control.mean_details().total_emissions
        back = [w.grants for w in workers]
        # The server's count grows again (local grants never count), and
        # so do the workers'.
        self.assertTrue(wait_for(
            lambda: control.mean_details().total_emissions >= stored + 10 and all(
                w.grants > b for w, b in zip(workers, back))))
        self.assertEqual([w.errors for w in workers], [[], []])

    def test_a_worker_process_is_back_soon_with_the_backup_poller_off(self):
        # gRPC's C-core sees a connection attempt succeed only while a
        # thread polls the channel, else at its backup poller's tick (every
        # 5 s): a worker that slept out its backoffs came back 0 to 10 s
        # after the server. With the poller off (0) it never came back: the
        # stream must watch its channel while it backs off. A process of
        # its own: any gRPC polling in this process (the control calls)
        # would drive its channel too.
        spec = ("back max_n=20 per=1 degradation=local_share "
                "local_share_for=60s")
        first = self.serve(spec)
        control = Throttle(first.address, "back")
        control.start()
        control.close()
        out = os.path.join(os.path.dirname(self.state), "worker.out")
        code = ("import sys\n"
                "from throttle_client import Throttle\n"
                "t = Throttle(sys.argv[1], 'back', backoff_initial=0.02,\n"
                "             backoff_max=0.5)\n"
                "while True:\n"
                "    if t.await_fuel(60):\n"
                "        print('fuel', flush=True)\n")
        env = dict(os.environ, GRPC_CLIENT_CHANNEL_BACKUP_POLL_INTERVAL_MS="0")
        with open(out, "w") as output:
            worker = subprocess.Popen(
                [sys.executable, "-c", code, first.address], stdout=output,
                stderr=subprocess.STDOUT, env=env)
        self.addCleanup(worker.wait)
        self.addCleanup(worker.kill)

        def grants():
            with open(out) as f:
                return sum(1 for line in f if line.strip() == "fuel")

        self.assertTrue(wait_for(lambda: grants() >= 3))
        self.kill(first)
        # A second of local grants (the whole 20/s): the channel's own
        # reconnect backoff reached its cap.
        at_kill = grants()
        self.assertTrue(wait_for(lambda: grants() >= at_kill + 20))

        restarted = self.serve(spec, port=first.port)
        restart = time.monotonic()
        control = Throttle(restarted.address, "back")
        self.addCleanup(control.close)
        stored = control.mean_details().total_emissions
        # Back on the server within many times its backoff cap (0.5 s).
        back = wait_for(
            lambda: control.mean_details().total_emissions >= stored + 5,
            timeout=15)
        self.assertTrue(back, f"the server granted "
                        f"{control.mean_details().total_emissions - stored} "
                        f"in {time.monotonic() - restart:.1f} s")
        self.assertIsNone(worker.poll())  # still running: no wait failed

    def test_fail_fast_raises_unavailable_until_the_server_is_back(self):
        spec = "ff max_n=100 per=1 degradation=fail_fast"
        first = self.serve(spec)
        throttle = Throttle(first.address, "ff", backoff_initial=0.02,
                            backoff_max=0.5)
        self.addCleanup(throttle.close)
        throttle.start()
        self.assertTrue(throttle.await_fuel(GENEROUS))  # told the policy
        self.kill(first)
        asked = time.monotonic()
        with self.assertRaises(ThrottleError) as raised:
            throttle.await_fuel(GENEROUS)
        self.assertEqual(raised.exception.code, grpc.StatusCode.UNAVAILABLE)
        self.assertLess(time.monotonic() - asked, GENEROUS / 2)
        self.serve(spec, port=first.port)

        def fuel_again():
            try:
                return throttle.await_fuel(GENEROUS)
            except ThrottleError as error:
                self.assertEqual(error.code, grpc.StatusCode.UNAVAILABLE)
                return False

        self.assertTrue(wait_for(fuel_again))

    def test_after_local_share_for_waits_raise_unavailable(self):
        spec = ("short max_n=20 per=1 degradation=local_share "
                "local_share_for=1s")
        server = self.serve(spec)
        throttle = Throttle(server.address, "short", backoff_initial=0.02,
                            backoff_max=0.5)
        self.addCleanup(throttle.close)
        throttle.start()
        self.assertTrue(throttle.await_fuel(GENEROUS))
        # Before the kill: the stream may see its end (the outage's start)
        # before kill() is back from reaping the server.
        killed, local = time.monotonic(), 0
        self.kill(server)
        with self.assertRaises(ThrottleError) as raised:
            while throttle.await_fuel(GENEROUS):
                local += 1
        self.assertEqual(raised.exception.code, grpc.StatusCode.UNAVAILABLE)
        self.assertGreater(local, 0)
        self.assertLessEqual(local, 21)  # 20/s alone for 1 s, + 1
        self.assertGreaterEqual(time.monotonic() - killed, 1.0)


class AwaitFuelDegradationTest(_ServerPerTest):
    """AwaitFuel calls only (fail-if-late waits, zero-timeout polls): the
    handle never opens an Acquire stream, so what they do is theirs."""

    def handle(self, server, name):
        # wait_for_ready: a controller's first call may come as the
        # restarted server reports its port, before it accepts.
        throttle = Throttle(server.address, name, backoff_initial=0.02,
                            backoff_max=0.5, wait_for_ready=True)
        self.addCleanup(throttle.close)
        return throttle

    def start_and_kill(self, spec, name):
        """A started throttle, a handle told its policy by one fail-if-late
        wait, and the server killed. Returns (server, handle)."""
        server = self.serve(spec)
        throttle = self.handle(server, name)
        throttle.start()
        self.assertEqual(throttle.await_fuel_n(1, GENEROUS, fail_if_late=True),
                         (FuelOutcome.FUEL, 1))
        self.kill(server)
        return server, throttle

    def test_local_share_grants_polls_and_fail_if_late_waits_within_it(self):
        share = 4.0  # the one stream's share of 4/s
        spec = ("aw max_n=4 per=1 degradation=local_share "
                "local_share_for=60s")
        first, throttle = self.start_and_kill(spec, "aw")
        killed, granted = time.monotonic(), 0

        def poll():
            nonlocal granted
            if throttle.await_fuel(0):
                granted += 1
            return granted >= 4

        # Polls get local grants now and then (not granted in between).
        self.assertTrue(wait_for(poll, interval=0.01))
        # A fail-if-late wait takes the next one when it falls due.
        result = throttle.await_fuel_n(1, GENEROUS, fail_if_late=True)
        self.assertEqual(result, (FuelOutcome.FUEL, 1))
        granted += 1
        # One that cannot last until the next is too late at once.
        result = throttle.await_fuel_n(1, 0.1, fail_if_late=True)
        self.assertEqual(result.outcome, FuelOutcome.TOO_LATE)
        self.assertGreater(result.expected_wait, 0)
        self.assertLessEqual(result.expected_wait, 1 / share)
        # Within the share from the outage's start, plus the one at once.
        self.assertLessEqual(granted,
                             share * (time.monotonic() - killed) + 1)

        restarted = self.serve(spec, port=first.port)
        control = self.handle(restarted, "aw")
        stored = control.mean_details().total_emissions

        def from_the_server():
            throttle.await_fuel(0)
            return control.mean_details().total_emissions > stored

        self.assertTrue(wait_for(from_the_server, interval=0.05))
        result = throttle.await_fuel_n(1, GENEROUS, fail_if_late=True)
        self.assertEqual(result, (FuelOutcome.FUEL, 1))
        self.assertEqual(control.mean_details().total_emissions, stored + 2)

    def test_fail_fast_ends_polls_and_fail_if_late_waits_at_once(self):
        spec = "awff max_n=100 per=1 degradation=fail_fast"
        first, throttle = self.start_and_kill(spec, "awff")
        asked = time.monotonic()
        with self.assertRaises(ThrottleError) as raised:
            throttle.await_fuel_n(1, GENEROUS, fail_if_late=True)
        self.assertEqual(raised.exception.code, grpc.StatusCode.UNAVAILABLE)
        self.assertIn("fail fast", raised.exception.details)
        self.assertLess(time.monotonic() - asked, GENEROUS / 2)

        def poll_fails():
            # Never granted; UNAVAILABLE, though a poll that meets a
            # connection attempt on a loaded machine may time out first.
            try:
                self.assertFalse(throttle.await_fuel(0))
                return False
            except ThrottleError as error:
                self.assertEqual(error.code, grpc.StatusCode.UNAVAILABLE)
                return True

        self.assertTrue(wait_for(poll_fails))
        self.serve(spec, port=first.port)

        def fuel_again():
            try:
                return throttle.await_fuel_n(1, GENEROUS,
                                             fail_if_late=True).outcome
            except ThrottleError as error:
                self.assertEqual(error.code, grpc.StatusCode.UNAVAILABLE)
                return False

        self.assertTrue(wait_for(fuel_again, interval=0.05))


if __name__ == "__main__":
    unittest.main()
