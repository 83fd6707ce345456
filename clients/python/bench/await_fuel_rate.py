#!/usr/bin/python3
"""How many grants per second the seed's worker loop gets through the
Python client: N worker processes, each running

    while not throttle.kill_flag.is_set():
        throttle.await_fuel()

on one monitor-only throttle (no limit: every grant only costs the round
trip) for a few seconds. Prints one line per run: processes, grants, the
server's runtime and grants per second, each worker's share. A benchmark,
not a test: the figure depends on the machine and its load.

    /usr/bin/python3 clients/python/bench/await_fuel_rate.py \\
        --server build/server/throttle_server [--processes 1,4] [--seconds 5]
    /usr/bin/python3 clients/python/bench/await_fuel_rate.py \\
        --address HOST:PORT ...

Needs the generated code on PYTHONPATH or in THROTTLE_PY_GENERATED
(clients/python/generate.sh). --count N makes each call await_fuel_n(N).
"""
import argparse
import multiprocessing
import os
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                ".."))
import throttle_client  # noqa: E402


def _work(throttle, count, results):
    grants = 0
    try:
        while not throttle.kill_flag.is_set():
            if count == 1:
                if throttle.await_fuel():
                    grants += 1
            else:
                grants += throttle.await_fuel_n(count).grants
    finally:
        throttle.close()
    results.put(grants)


def _run(address, processes, seconds, count):
    name = f"bench-{os.getpid()}-{processes}"
    controller = throttle_client.Throttle(address, name)
    controller.create(1, 1, mode="monitor-only", replace=True)
    context = multiprocessing.get_context("fork")
    results = context.Queue()
    workers = [context.Process(target=_work, args=(
        throttle_client.Throttle(address, name, worker_id=f"bench-{i}"),
        count, results)) for i in range(processes)]
    for w in workers:
        w.start()
    try:
        # Every worker waits on its stream before the start.
        deadline = time.monotonic() + 60
        while controller.info().waiting_streams < processes:
            if time.monotonic() > deadline:
                raise RuntimeError("the workers did not all wait")
            time.sleep(0.02)
        controller.start()
        time.sleep(seconds)
        runtime, total, _, per_second = controller.stop()
        shares = sorted(results.get(timeout=60) for _ in workers)
        for w in workers:
            w.join(60)
    finally:
        for w in workers:
            if w.is_alive():
                w.kill()
        controller.delete()
        controller.close()
    print(f"processes={processes} count={count} grants={total} "
          f"runtime={runtime:.2f}s grants_per_second={per_second:.0f} "
          f"per_worker={shares}", flush=True)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    where = parser.add_mutually_exclusive_group(required=True)
    where.add_argument("--server", help="throttle_server binary to start")
    where.add_argument("--address", help="a running server's HOST:PORT")
    parser.add_argument("--processes", default="1,4",
                        help="comma-separated worker counts, one run each")
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--count", type=int, default=1,
                        help="grants per call (await_fuel_n when > 1)")
    args = parser.parse_args()
    server = None
    tmp = tempfile.TemporaryDirectory(prefix="throttle_bench.")
    try:
        address = args.address
        if args.server:
            port_file = os.path.join(tmp.name, "port")
            server = subprocess.Popen(
                [args.server, "--listen=127.0.0.1:0",
                 f"--port_file={port_file}", "--log_level=warning"])
            deadline = time.monotonic() + 60
            while not (os.path.exists(port_file)
                       and open(port_file).read().strip()):
                if server.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError("throttle_server did not start")
                time.sleep(0.02)
            address = f"127.0.0.1:{open(port_file).read().strip()}"
        for processes in (int(p) for p in args.processes.split(",")):
            _run(address, processes, args.seconds, args.count)
    finally:
        if server is not None:
            server.terminate()
            server.wait()
        tmp.cleanup()


if __name__ == "__main__":
    main()
