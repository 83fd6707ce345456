"""A mixed fleet on one throttle: C++ tests/test_worker processes, Python
workers (examples/worker.py) and Node workers (clients/node/examples/
worker.js) share the rate. Every worker gets a share, the shares are fair,
every worker ends on the kill flag, and what the workers received adds up
to the server's total emissions (no worker is killed, so exactly).
"""
import os
import shutil
import sys
import tempfile
import time
import unittest

import support
from support import GENEROUS, Server, WorkerProcess, await_waiting

import throttle_client

NODE = os.environ.get("NODE", shutil.which("node") or "")
NODE_WORKER = os.path.join(support.CLIENTS, "node", "examples", "worker.js")
PYTHON_WORKER = os.path.join(support.EXAMPLES, "worker.py")
PER_KIND = 2
MAX_N = 12  # per second, over 6 workers: about 2 each per second
RUN_SECONDS = 4.0


class MixedFleet(unittest.TestCase):

    def setUp(self):
        self.assertTrue(support.TEST_WORKER, "THROTTLE_TEST_WORKER is not set")
        self.assertTrue(NODE, "node is not installed")
        self.assertTrue(
            os.path.isdir(os.path.join(support.CLIENTS, "node",
                                       "node_modules")),
            "clients/node/node_modules is missing: run clients/setup.sh")

    def test_cpp_python_and_node_workers_share_the_rate(self):
        tmp = tempfile.TemporaryDirectory(prefix="throttle_fleet.")
        self.addCleanup(tmp.cleanup)
        server = Server(f"--throttle=fleet max_n={MAX_N} per=1").start()
        self.addCleanup(server.close)
        controller = throttle_client.Throttle(server.address, "fleet")
        self.addCleanup(controller.close)

        commands = {
            "cpp": lambda i: [support.TEST_WORKER],
            "python": lambda i: [sys.executable, PYTHON_WORKER],
            "node": lambda i: [NODE, NODE_WORKER],
        }
        workers = {}
        for kind, command in commands.items():
            for i in range(PER_KIND):
                name = f"{kind}-{i}"
                argv = command(i) + [
                    f"--address={server.address}", "--throttle=fleet",
                    f"--worker_id={name}"
                ]
                workers[name] = WorkerProcess(
                    argv, os.path.join(tmp.name, name + ".out"))
        for w in workers.values():
            self.addCleanup(w.kill)

        self.assertTrue(await_waiting(controller, len(workers)),
                        {n: w.lines() for n, w in workers.items()})
        controller.start()
        time.sleep(RUN_SECONDS)
        runtime, total, _, _ = controller.stop()
        for name, w in workers.items():
            self.assertEqual(w.wait(GENEROUS), 0, (name, w.lines()))

        grants = {name: w.grants() for name, w in workers.items()}
        report = f"runtime {runtime:.3f} total {total} grants {grants}"
        print(f"\nmixed fleet: {report}", file=sys.stderr)
        for name, w in workers.items():
            self.assertEqual(w.lines()[-1], "stopped", (name, w.lines()))
        # Every grant reached a worker and was counted once.
        self.assertEqual(sum(grants.values()), total, report)
        # The smooth bound holds for the whole fleet.
        self.assertLessEqual(total, int(runtime * MAX_N) + 1, report)
        # Fair: the ring serves waiting workers in turn. Each gets a share
        # near total / 6; allow wide slack for a loaded machine.
        fair = total / len(workers)
        for name, n in grants.items():
            self.assertGreaterEqual(n, max(1, int(fair / 2)), report)
            self.assertLessEqual(n, fair * 2 + 1, report)


if __name__ == "__main__":
    unittest.main()
