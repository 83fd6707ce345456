#!/usr/bin/python3
"""A throttle_bench worker (--worker_command) running the Python client's
loop, as a user writes it:

    while not tank.kill_flag.is_set():
        tank.await_fuel()

through clients/python's throttle_client (imported as
clients/python/run_tests.sh does: Debian's /usr/bin/python3, the generated
code from clients/python/generate.sh in THROTTLE_PY_GENERATED). Records the
time (CLOCK_MONOTONIC, as throttle_bench's own workers) at which each
await_fuel() returned with fuel, and each call's wait, and writes them in
throttle_bench's worker output format: three arrays of native int64, each
after its length (grant times, message times: none here, latencies).

    /usr/bin/python3 bench/acquire_worker.py --address=HOST:PORT \\
        --throttle=NAME --out=FILE [--streams=1] [--ask_ahead=N]

--streams > 1 runs that many threads, each with a Throttle of its own.
--ask_ahead is Throttle(ask_ahead=N) (0: exact counts); unset: the
client's default (a client without the option takes none).
"""
import argparse
import array
import os
import sys
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                "..", "clients", "python"))
import throttle_client  # noqa: E402


def loop(tank, times, waits, errors):
    clock = time.monotonic_ns
    try:
        while not tank.kill_flag.is_set():
            asked = clock()
            if tank.await_fuel():
                now = clock()
                times.append(now)
                waits.append(now - asked)
    except throttle_client.ThrottleError as error:
        errors.append(str(error))


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--address", required=True)
    parser.add_argument("--throttle", required=True)
    parser.add_argument("--out", required=True)
    parser.add_argument("--streams", type=int, default=1)
    parser.add_argument("--ask_ahead", type=int, default=None)
    args = parser.parse_args()
    options = {} if args.ask_ahead is None else {"ask_ahead": args.ask_ahead}
    tanks = [
        throttle_client.Throttle(args.address, args.throttle,
                                 worker_id=f"bench-py-{os.getpid()}-{i}",
                                 **options)
        for i in range(args.streams)
    ]
    results = [(array.array("q"), array.array("q")) for _ in tanks]
    errors = []
    if len(tanks) == 1:
        loop(tanks[0], *results[0], errors)
    else:
        threads = [
            threading.Thread(target=loop, args=(tank, *result, errors))
            for tank, result in zip(tanks, results)
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    for tank in tanks:
        tank.close()
    for error in errors:
        print(f"worker call ended: {error}", file=sys.stderr)
    times = array.array("q", sorted(t for r in results for t in r[0]))
    waits = array.array("q", (w for r in results for w in r[1]))
    with open(args.out, "wb") as out:
        for values in (times, array.array("q"), waits):
            array.array("q", [len(values)]).tofile(out)
            values.tofile(out)
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
