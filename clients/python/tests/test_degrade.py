"""Graceful degradation in the Python client (docs/DECISIONS.md, "Graceful
degradation"): the local pacing bound on a fake clock (LocalShare), and
worker threads through a real server killed with SIGKILL and restarted
with its --state_dir, so that the throttle comes back running.
"""
import math
import os
import random
import tempfile
import threading
import time
import unittest

import grpc

from support import GENEROUS, Server, wait_for

from throttle_client import Throttle, ThrottleError
from throttle_client._proto import pb
from throttle_client.degrade import FAIL_FAST, LOCAL, WAIT, LocalShare


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


class DegradationServerTest(unittest.TestCase):
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
        self.kill(server)
        killed, local = time.monotonic(), 0
        with self.assertRaises(ThrottleError) as raised:
            while throttle.await_fuel(GENEROUS):
                local += 1
        self.assertEqual(raised.exception.code, grpc.StatusCode.UNAVAILABLE)
        self.assertGreater(local, 0)
        self.assertLessEqual(local, 21)  # 20/s alone for 1 s, + 1
        self.assertGreaterEqual(time.monotonic() - killed, 1.0)


if __name__ == "__main__":
    unittest.main()
