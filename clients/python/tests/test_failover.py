"""Failover through the Python client: two high-available servers on one
etcd, the client on the multi-address target "ipv4:HOST:P1,HOST:P2". A
worker process (examples/worker.py) and a worker thread with a finite
timeout keep getting fuel, with no error and no restart, after a kill -9 of
the leader and after a SIGTERM hand-over; the controller sees UNAVAILABLE,
and only that, during the gap; throttlectl works on the same target with
either server leading. See docs/clients.md, "Failover: reaching the
leader".
"""
import collections
import os
import subprocess
import sys
import tempfile
import threading
import time
import unittest

import grpc

import support
from support import (Etcd, HaServer, WorkerProcess, free_ports, ipv4_target,
                     wait_for)

from throttle_client import FuelOutcome, Throttle, ThrottleError

PYTHON_WORKER = os.path.join(support.EXAMPLES, "worker.py")
LEASE_TTL_SECONDS = 1
# A worker gets fuel again within this long of the leader's death: the
# lease's TTL, etcd's expiry check (0.5 s), and the client's reconnect
# backoff (at most 2 s), with room for a loaded machine.
REFUELED_WITHIN = LEASE_TTL_SECONDS + 10.0
# Deadline of every wait on a condition here.
DEADLINE = 30.0
# Grants each worker must get to count as going again.
GRANTS = 3
# The finite timeout of the worker thread: longer than any failover, so it
# must never pass.
THREAD_TIMEOUT = 20.0


class ThreadWorker:
    """The seed's worker loop in a thread of this process, with a finite
    timeout: counts each await_fuel outcome and keeps any exception it
    raised. close() closes its Throttle (which ends a wait) and joins."""

    def __init__(self, target, name, timeout):
        self.throttle = Throttle(target, name, worker_id="thread")
        self.timeout = timeout
        self.outcomes = collections.Counter()
        self.errors = []
        self._thread = threading.Thread(target=self._run)
        self._thread.start()

    def _run(self):
        try:
            while not self.throttle.kill_flag.is_set():
                self.outcomes[self.throttle.await_fuel(self.timeout)] += 1
        except Exception as error:  # pylint: disable=broad-except
            self.errors.append(error)

    def grants(self):
        return self.outcomes[FuelOutcome.FUEL]

    def join(self, timeout):
        self._thread.join(timeout)
        return not self._thread.is_alive()

    def close(self):
        self.throttle.close()
        self._thread.join()


def served(call):
    """Calls call() until it succeeds (every 50 ms, up to DEADLINE); returns
    (its result, the status codes of the calls that failed first). Raises
    the last ThrottleError if none succeeded."""
    codes = []
    deadline = time.monotonic() + DEADLINE
    while True:
        try:
            return call(), codes
        except ThrottleError as error:
            codes.append(error.code)
            if time.monotonic() >= deadline:
                raise
        time.sleep(0.05)


class Failover(unittest.TestCase):

    def setUp(self):
        self.assertTrue(support.SERVER, "THROTTLE_SERVER is not set")
        self.assertTrue(support.find_etcd(),
                        "no etcd on PATH or at /usr/bin/etcd: install "
                        "etcd-server (scripts/setup.sh does)")
        self.etcd = Etcd().start()
        self.addCleanup(self.etcd.close)

    def servers(self, cluster):
        """Two HA servers of `cluster` on free ports; the first leads."""
        ports = free_ports(2)
        a = HaServer(self.etcd, ports[0], cluster)
        self.addCleanup(a.close)
        a.start()
        self.assertTrue(wait_for(a.leading, DEADLINE), a.log())
        b = HaServer(self.etcd, ports[1], cluster).start()
        self.addCleanup(b.close)
        return a, b

    def logs(self, *processes):
        return "\n".join(f"--- {p.address}:\n{p.log()}" for p in processes)

    def test_workers_ride_through_a_crash_and_a_hand_over(self):
        a, b = self.servers("failover")
        target = ipv4_target(a, b)
        controller = Throttle(target, "crawl")
        self.addCleanup(controller.close)
        controller.create(20, 1)
        controller.start()

        out = tempfile.TemporaryDirectory(prefix="throttle_failover.")
        self.addCleanup(out.cleanup)
        worker = WorkerProcess(
            [sys.executable, PYTHON_WORKER, f"--address={target}",
             "--throttle=crawl", "--worker_id=process"],
            os.path.join(out.name, "worker.out"))
        self.addCleanup(worker.kill)
        thread = ThreadWorker(target, "crawl", THREAD_TIMEOUT)
        self.addCleanup(thread.close)

        def refueled(since):
            """Waits until both workers got GRANTS more grants than at
            `since` (their grant counts then)."""
            process_from, thread_from = since
            self.assertTrue(
                wait_for(lambda: worker.grants() >= process_from + GRANTS and
                         thread.grants() >= thread_from + GRANTS, DEADLINE),
                f"no fuel: {worker.lines()[-5:]} {thread.outcomes} "
                f"{thread.errors}\n" + self.logs(a, b))

        def counts():
            return worker.grants(), thread.grants()

        refueled((0, 0))

        # kill -9 of the leader: the standby leads after about the TTL.
        since = counts()
        killed = time.monotonic()
        a.kill()
        info, gap_codes = served(controller.info)
        self.assertEqual(info.state, "running")
        self.assertTrue(set(gap_codes) <= {grpc.StatusCode.UNAVAILABLE},
                        gap_codes)
        self.assertTrue(wait_for(b.leading, DEADLINE), self.logs(a, b))
        refueled(since)
        crash_gap = time.monotonic() - killed
        self.assertLess(crash_gap, REFUELED_WITHIN, self.logs(a, b))
        self.assertIsNone(worker.process.poll(), worker.lines()[-5:])
        self.assertEqual(thread.errors, [])

        # The crashed server comes back as a standby; SIGTERM of the leader
        # hands over to it.
        a.start()
        self.assertFalse(a.leading(), self.logs(a, b))
        since = counts()
        terminated = time.monotonic()
        self.assertEqual(b.stop(), 0, b.log())
        self.assertTrue(wait_for(a.leading, DEADLINE), self.logs(a, b))
        refueled(since)
        handover_gap = time.monotonic() - terminated
        self.assertLess(handover_gap, REFUELED_WITHIN, self.logs(a, b))
        self.assertIsNone(worker.process.poll(), worker.lines()[-5:])

        # Stop: both workers end on the kill flag, cleanly.
        controller.stop()
        self.assertEqual(worker.wait(DEADLINE), 0, worker.lines()[-5:])
        self.assertEqual(worker.lines()[-1], "stopped")
        self.assertFalse([line for line in worker.lines()
                          if line.startswith("error")])
        self.assertTrue(thread.join(DEADLINE))
        self.assertEqual(thread.errors, [])
        self.assertEqual(set(thread.outcomes),
                         {FuelOutcome.FUEL, FuelOutcome.STOPPED},
                         thread.outcomes)
        print(f"\nfailover: kill -9 -> fuel {crash_gap:.2f} s, "
              f"SIGTERM -> fuel {handover_gap:.2f} s; grants: process "
              f"{worker.grants()}, thread {thread.grants()}; controller "
              f"calls failed in the gap: {len(gap_codes)}, "
              f"{sorted({c.name for c in gap_codes})}",
              file=sys.stderr)

    @unittest.skipUnless(support.THROTTLECTL, "THROTTLECTL is not set")
    def test_throttlectl_lists_with_either_server_leading(self):
        a, b = self.servers("ctl")
        with Throttle(ipv4_target(a), "listed") as controller:
            controller.create(5, 1)

        def listed(target):
            done = subprocess.run(
                [support.THROTTLECTL, f"--address={target}", "list"],
                capture_output=True, text=True, timeout=DEADLINE)
            return done.returncode == 0 and "listed" in done.stdout, done

        # In either order: a refused address is skipped.
        for target in (ipv4_target(a, b), ipv4_target(b, a)):
            ok, done = listed(target)
            self.assertTrue(ok, (target, done))
        a.kill()
        self.assertTrue(wait_for(b.leading, DEADLINE), self.logs(a, b))
        for target in (ipv4_target(a, b), ipv4_target(b, a)):
            self.assertTrue(wait_for(lambda: listed(target)[0], DEADLINE),
                            (target, listed(target)[1]))


if __name__ == "__main__":
    unittest.main()
