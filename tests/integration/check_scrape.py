#!/usr/bin/python3
"""Checks what prometheus_test.sh's calls left in a scrape of the server.

Usage: check_scrape.py METRICS.txt VERSION MAX_WORKERS

The calls: Start on "work" (OK) and on "nope" (NOT_FOUND), three Acquire
workers and one raw AwaitFuel call of 3 grants (ended OK) on "work", then
Stop on "work" (which ends the Acquire streams, OK); the server run with --metrics_max_workers_per_throttle=MAX_WORKERS. Prints
each check; exits non-zero naming the first that fails.
"""
import re
import sys
import time

SERVICE = "throttle.v1.Throttle"


def parse(path):
    """[(name, {label: value}, value)] of a Prometheus text scrape."""
    samples = []
    for line in open(path):
        if line.startswith("#") or not line.strip():
            continue
        m = re.match(r"([A-Za-z_:][A-Za-z0-9_:]*)(?:\{(.*)\})? (\S+)", line)
        if not m:
            sys.exit("unparsable line: %r" % line)
        labels = dict(re.findall(r'(\w+)="((?:[^"\\]|\\.)*)"', m.group(2) or ""))
        samples.append((m.group(1), labels, float(m.group(3))))
    return samples


def main(path, version, max_workers):
    samples = parse(path)
    max_workers = int(max_workers)

    def find(name, **labels):
        return [(l, v) for n, l, v in samples
                if n == name and all(l.get(k) == w for k, w in labels.items())]

    def value(name, **labels):
        found = find(name, **labels)
        if len(found) != 1:
            sys.exit("want one %s%s, got %d" % (name, labels, len(found)))
        return found[0][1]

    def check(what, ok):
        print(("ok   " if ok else "FAIL ") + what)
        if not ok:
            sys.exit("check failed: " + what)

    # Per method and code, as go-grpc-prometheus labels them.
    def check_calls(method, grpc_type, started, handled):
        labels = dict(grpc_service=SERVICE, grpc_method=method,
                      grpc_type=grpc_type)
        check("%s started %d times" % (method, started),
              value("grpc_server_started_total", **labels) == started)
        for code, n in handled.items():
            check("%s handled %d times %s" % (method, n, code),
                  value("grpc_server_handled_total", grpc_code=code,
                        **labels) == n)
        check("%s timed %d times" % (method, started),
              value("grpc_server_handling_seconds_count", **labels) == started)

    check_calls("Start", "unary", 2, {"OK": 1, "NotFound": 1})
    check_calls("AwaitFuel", "server_stream", 1, {"OK": 1})
    # The Stop ended the streams, OK.
    check_calls("Acquire", "bidi_stream", 3, {"OK": 3})
    check("the histogram has no grpc_code label (as go-grpc-prometheus)",
          all("grpc_code" not in l for n, l, _ in samples
              if n.startswith("grpc_server_handling_seconds")))
    check("handled codes are Go's names",
          all(re.fullmatch(r"[A-Z][A-Za-z]*", l["grpc_code"])
              for n, l, _ in samples if n == "grpc_server_handled_total"))

    # The process.
    now = time.time()
    rss = value("process_resident_memory_bytes")
    check("resident memory 1 MB .. 4 GB", 1e6 < rss < 4e9)
    check("virtual memory >= resident",
          value("process_virtual_memory_bytes") >= rss)
    check("CPU seconds >= 0 and below the wall time since start",
          0 <= value("process_cpu_seconds_total") <
          now - value("process_start_time_seconds") + 60)
    start = value("process_start_time_seconds")
    check("started within the last 10 minutes", now - 600 < start <= now + 5)
    fds = value("process_open_fds")
    check("open fds 3 .. max", 3 <= fds < value("process_max_fds"))

    check("throttle_build_info{version=%s} 1" % version,
          value("throttle_build_info", version=version) == 1)
    check("lateness observed for throttle work",
          value("throttle_grant_lateness_seconds_count", throttle="work") > 0)
    check("lateness series are by throttle",
          all("throttle" in l for n, l, _ in samples
              if n.startswith("throttle_grant_lateness_seconds")))

    workers = {l["worker"]: v for l, v in
               find("throttle_worker_grants_total", throttle="work")}
    named = sorted(w for w in workers if w != "other")
    check("%d workers by name (the cap), got %s" % (max_workers, named),
          len(named) == max_workers)
    check("the others' grants under worker=other",
          workers.get("other", 0) > 0)
    check("every named worker got grants",
          all(workers[w] > 0 for w in named))
    total = value("throttle_grants_total", throttle="work")
    check("worker grants (%d) add up to the throttle's (%d)" %
          (sum(workers.values()), total), sum(workers.values()) == total)


if __name__ == "__main__":
    main(*sys.argv[1:])
