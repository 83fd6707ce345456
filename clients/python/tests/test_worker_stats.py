"""Per-worker statistics with real processes: two Python workers
(examples/worker.py) and a C++ tests/test_worker of different worker_ids
get fuel from the real server; the Python controller's mean() and latest()
with include_workers=True list what each of them got, exactly as the
workers counted it, and the fairness index matches those counts.
"""
import os
import sys
import tempfile
import time
import unittest

import support
from support import GENEROUS, Server, WorkerProcess, await_waiting, wait_for

import throttle_client

PYTHON_WORKER = os.path.join(support.EXAMPLES, "worker.py")
MAX_N = 20  # per second
GRANTS = 30  # the run lasts until the server has counted this many


def jain(xs):
    return sum(xs)**2 / (len(xs) * sum(x * x for x in xs))


class WorkerStatsTest(unittest.TestCase):

    def setUp(self):
        self.assertTrue(support.TEST_WORKER, "THROTTLE_TEST_WORKER is not set")
        tmp = tempfile.TemporaryDirectory(prefix="throttle_workers.")
        self.addCleanup(tmp.cleanup)
        self.tmp = tmp.name
        self.server = Server(f"--throttle=stats max_n={MAX_N} per=1").start()
        self.addCleanup(self.server.close)
        self.controller = throttle_client.Throttle(self.server.address,
                                                   "stats")
        self.addCleanup(self.controller.close)

    def start_worker(self, argv, worker_id):
        w = WorkerProcess(
            argv + [
                f"--address={self.server.address}", "--throttle=stats",
                f"--worker_id={worker_id}"
            ], os.path.join(self.tmp, worker_id + ".out"))
        self.addCleanup(w.kill)
        return w

    def test_controller_reads_what_each_worker_got(self):
        workers = {
            "py-a": self.start_worker([sys.executable, PYTHON_WORKER], "py-a"),
            "py-b": self.start_worker([sys.executable, PYTHON_WORKER], "py-b"),
            "cpp-c": self.start_worker([support.TEST_WORKER], "cpp-c"),
        }
        self.assertTrue(await_waiting(self.controller, len(workers)),
                        {n: w.lines() for n, w in workers.items()})
        started = time.monotonic()
        self.controller.start()
        self.assertTrue(
            wait_for(lambda: self.controller.info().total_emissions >= GRANTS))
        self.controller.stop()
        for name, w in workers.items():
            self.assertEqual(w.wait(GENEROUS), 0, (name, w.lines()))
        got = {name: w.grants() for name, w in workers.items()}

        mean = self.controller.mean(include_workers=True)
        report = f"workers counted {got}, server: {mean}"
        self.assertIsInstance(mean, throttle_client.MeanWorkers)
        by_id = {w.worker_id: w for w in mean.workers}
        self.assertEqual(sorted(by_id), sorted(workers), report)
        for name, n in got.items():
            w = by_id[name]
            self.assertIsInstance(w, throttle_client.WorkerStats)
            self.assertEqual(w.grants, n, report)
            self.assertEqual(w.emissions, 0, report)
            self.assertFalse(w.others, report)
            self.assertAlmostEqual(w.grants_per_second, n / mean.runtime,
                                   places=6)
        self.assertEqual(sum(got.values()), mean.total_emissions, report)
        # Most grants first.
        grants = [w.grants for w in mean.workers]
        self.assertEqual(grants, sorted(grants, reverse=True), report)
        # Jain's index of the counts (every stream of weight 1); shared
        # round-robin keeps it well above the 1/3 of one worker taking all.
        self.assertAlmostEqual(mean.fairness_index, jain(list(got.values())),
                               places=9)
        self.assertGreater(mean.fairness_index, 0.5, report)

        latest = self.controller.latest(60, include_workers=True)
        self.assertIsInstance(latest, throttle_client.LatestWorkers)
        self.assertEqual(latest.window, 60)
        if time.monotonic() - started < 50:  # the run lies in the window
            self.assertEqual({w.worker_id: w.grants for w in latest.workers},
                             got, latest)
        # Without include_workers: the seed's tuples, as before.
        self.assertEqual(len(self.controller.latest(1.0)), 2)
        self.assertEqual(len(self.controller.mean()), 2)
        self.assertEqual(self.controller.mean_details().fairness_index,
                         mean.fairness_index)


if __name__ == "__main__":
    unittest.main()
