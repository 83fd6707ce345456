#!/usr/bin/python3
"""The seed's tutorial (mp_throttle's tutorial.rst), nearly word for word,
with multiprocessing workers and the shared throttle service.

    /usr/bin/python3 clients/python/examples/tutorial.py [--stats]
        [--address HOST:PORT | --server PATH]

Uses the server at --address (or $THROTTLE_ADDRESS); without one it starts
--server (default build/server/throttle_server) on 127.0.0.1 with a free
port and stops it at the end. Creates the throttle "tutorial" of 4 per 1 s,
starts a multiprocessing.Pool of 4 workers running the seed's loop, starts
the throttle, sleeps 5 s, stops it and prints the seed's four lines. With
--stats it prints latest() and mean() every 0.5 s for 10 s instead of
sleeping, as in "Get the stats". Each worker writes "<name>: <n> grants,
kill flag set" to stderr when its loop ends.

Needs the generated code (clients/python/generate.sh) on PYTHONPATH or in
$THROTTLE_PY_GENERATED.
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

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..",
                    "..")


def report(line):
    """One line to stderr in one write, so workers' lines do not mix."""
    os.write(2, f"{multiprocessing.current_process().name}: {line}\n".encode())


def work(tank):
    grants = 0
    try:
        while not tank.kill_flag.is_set():
            # Block until 'fuel' is available.
            if tank.await_fuel():
                grants += 1
            # do something and repeat.
    except throttle_client.ThrottleError as error:
        report(error)
        return
    report(f"{grants} grants, kill flag set")


def start_server(binary, tmpdir):
    """Starts throttle_server on 127.0.0.1 with a free port; returns
    (process, address)."""
    port_file = os.path.join(tmpdir, "port")
    server = subprocess.Popen(
        [binary, "--listen=127.0.0.1:0", "--port_file=" + port_file])
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            with open(port_file) as f:
                port = int(f.read().strip() or 0)
            if port > 0:
                return server, f"127.0.0.1:{port}"
        except (OSError, ValueError):
            pass
        if server.poll() is not None:
            break
        time.sleep(0.02)
    server.kill()
    server.wait()
    sys.exit("tutorial: throttle_server did not start")


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--address", default=os.environ.get(
        "THROTTLE_ADDRESS", ""), help="host:port of a running server")
    parser.add_argument("--server", default=os.path.join(
        ROOT, "build", "server", "throttle_server"),
                        help="server binary to start when no --address")
    parser.add_argument("--stats", action="store_true",
                        help="print latest() and mean() every 0.5 s for 10 s")
    parser.add_argument("--run", type=float, default=5.0,
                        help="seconds the throttle runs (default 5)")
    args = parser.parse_args()

    server = None
    tmpdir = tempfile.TemporaryDirectory(prefix="throttle_tutorial.")
    address = args.address
    if not address:
        server, address = start_server(args.server, tmpdir.name)
    try:
        tutorial(address, args)
    finally:
        if server is not None:
            server.terminate()
            server.wait(timeout=30)
        tmpdir.cleanup()


def tutorial(address, args):
    # throttle = mp_throttle.Throttle(4,1)
    throttle = throttle_client.Throttle(address, "tutorial")
    throttle.create(4, 1, replace=True)

    workerpool = multiprocessing.Pool(processes=4, initializer=work,
                                      initargs=(throttle,))
    # Not in the seed: let every worker reach await_fuel first, so that none
    # misses the first grants (the server hands out no fuel ahead of time).
    deadline = time.monotonic() + 60
    while (throttle.info().waiting_streams < 4
           and time.monotonic() < deadline):
        time.sleep(0.02)

    throttle.start()
    if args.stats:
        for i in range(20):
            print(throttle.latest())
            print(throttle.mean())
            sys.stdout.flush()
            time.sleep(0.5)
    else:
        time.sleep(args.run)
    runtime, total_emissions, mean_time_between_processes, \
        mean_processes_per_second = throttle.stop()
    print("Runtime: {}".format(runtime))
    print("Total: {}".format(total_emissions))
    print("Time between processes: {}".format(mean_time_between_processes))
    print("Processes per second: {}".format(mean_processes_per_second))
    sys.stdout.flush()

    # Not in the seed: the workers' loops have ended (kill flag); let the
    # pool's processes exit.
    workerpool.close()
    workerpool.join()
    throttle.close()


if __name__ == "__main__":
    main()
