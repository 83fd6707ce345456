"""The seed's tutorial scenario through the Python client against the real
server: 4 multiprocessing workers at 4 per 1 s, the mode's bound on the
total, every grant counted once, every worker sees the kill flag on stop.
And examples/tutorial.py run as a script prints the seed's four lines.
"""
import math
import multiprocessing
import os
import re
import subprocess
import sys
import time
import unittest

import support
from support import GENEROUS, Server, await_waiting

import throttle_client

RUN_SECONDS = 3.0


def _work(tank, results):
    """The seed's worker loop; reports (name, grants, kill flag) at the end."""
    grants = 0
    try:
        while not tank.kill_flag.is_set():
            if tank.await_fuel():
                grants += 1
    except throttle_client.ThrottleError as error:
        results.put((multiprocessing.current_process().name, grants,
                     f"error {error}"))
        return
    results.put((multiprocessing.current_process().name, grants,
                 tank.kill_flag.is_set()))


class TutorialScenario(unittest.TestCase):

    def run_scenario(self, context, mode, bound):
        """Runs 4 workers of `context` on a throttle of 4 per 1 s in `mode`
        for RUN_SECONDS; checks the total against bound(runtime)."""
        with Server() as server:
            throttle = throttle_client.Throttle(server.address, "tutorial")
            throttle.create(4, 1, mode=mode)
            results = context.Queue()
            workers = [
                context.Process(target=_work, args=(throttle, results),
                                name=f"worker-{i}") for i in range(4)
            ]
            for w in workers:
                w.start()
            try:
                self.assertTrue(await_waiting(throttle, 4))
                throttle.start()
                time.sleep(RUN_SECONDS)
                runtime, total, between, per_second = throttle.stop()
                reports = [results.get(timeout=GENEROUS) for _ in workers]
                for w in workers:
                    w.join(timeout=GENEROUS)
                    self.assertEqual(w.exitcode, 0)
            finally:
                for w in workers:
                    if w.is_alive():
                        w.kill()
                        w.join()
                throttle.close()

        # Every worker saw the kill flag (and no error).
        self.assertEqual(sorted(r[2] for r in reports), [True] * 4, reports)
        # Every grant reached a worker and was counted once.
        self.assertEqual(sum(r[1] for r in reports), total, reports)
        # The mode's bound, and a sane lower limit on a loaded box.
        self.assertGreaterEqual(runtime, RUN_SECONDS)
        self.assertLessEqual(total, bound(runtime), (runtime, total))
        self.assertGreaterEqual(total, math.floor(runtime * 4 / 2),
                                (runtime, total))
        # The seed's derived values.
        self.assertAlmostEqual(per_second, total / runtime, places=9)
        self.assertAlmostEqual(between, runtime / total, places=9)
        return total, reports

    def test_smooth_with_forked_workers(self):
        # At most one at the start and one every 0.25 s.
        self.run_scenario(multiprocessing.get_context("fork"), "smooth",
                          lambda t: math.floor(t * 4) + 1)

    def test_bucket_with_spawned_workers(self):
        # The Throttle is pickled to spawned workers. A full bucket of 4 at
        # the start, then one every 0.25 s.
        self.run_scenario(multiprocessing.get_context("spawn"), "bucket",
                          lambda t: 4 + math.floor(t * 4))


class TutorialScript(unittest.TestCase):

    def test_prints_the_seeds_lines(self):
        script = os.path.join(support.EXAMPLES, "tutorial.py")
        result = subprocess.run(
            [sys.executable, script, "--server", support.SERVER],
            capture_output=True, text=True, timeout=120)
        self.assertEqual(result.returncode, 0, result.stderr)
        out = dict(
            line.split(": ", 1) for line in result.stdout.splitlines()
            if ": " in line)
        runtime = float(out["Runtime"])
        total = int(out["Total"])
        self.assertGreaterEqual(runtime, 5.0)
        self.assertLessEqual(total, math.floor(runtime * 4) + 1)
        self.assertGreaterEqual(total, 10)
        self.assertAlmostEqual(float(out["Processes per second"]),
                               total / runtime, places=9)
        self.assertAlmostEqual(float(out["Time between processes"]),
                               runtime / total, places=9)
        # Each of the 4 pool workers ended its loop on the kill flag, and
        # together they received every grant.
        ended = re.findall(r"^\S+: (\d+) grants, kill flag set$",
                           result.stderr, re.M)
        self.assertEqual(len(ended), 4, result.stderr)
        self.assertEqual(sum(map(int, ended)), total, result.stderr)


if __name__ == "__main__":
    unittest.main()
