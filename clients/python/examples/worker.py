#!/usr/bin/python3
"""A worker process running the seed's loop through throttle_client, with
the output protocol of the C++ tests/test_worker (for mixed-fleet tests):
"ready" once, one "fuel" line per grant (flushed, so a test can count the
grants of a worker it kills), then "stopped", or "error <CODE>: <details>"
and exit code 1.

    /usr/bin/python3 clients/python/examples/worker.py \
        --address HOST:PORT --throttle NAME [--worker_id ID]
"""
import argparse
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                ".."))
import throttle_client  # noqa: E402


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--address", required=True)
    parser.add_argument("--throttle", required=True)
    parser.add_argument("--worker_id", default="")
    args = parser.parse_args()
    tank = throttle_client.Throttle(args.address, args.throttle,
                                    worker_id=args.worker_id)
    print("ready", flush=True)
    try:
        while not tank.kill_flag.is_set():
            if tank.await_fuel():
                print("fuel", flush=True)
    except throttle_client.ThrottleError as error:
        print(f"error {error}", flush=True)
        return 1
    finally:
        tank.close()
    print("stopped", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
