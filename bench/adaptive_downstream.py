#!/usr/bin/env python3
"""The simulated downstream of bench/adaptive.sh: a UDP server on 127.0.0.1
that accepts at most L tries in any sliding second and rejects the rest,
with L following a schedule that changes mid-run.

    adaptive_downstream.py PORT_FILE OUT_JSONL SCHEDULE

SCHEDULE is RATE:SECONDS,RATE:SECONDS,... (e.g. 200:30,80:30,150:30),
counted from the first try. Each datagram is one try; the reply is b"1"
(accepted) or b"0" (rejected). Every second it appends
{"t": unix seconds, "limit": L, "accepted": n, "rejected": m} to OUT_JSONL;
it exits when the schedule ends or on SIGTERM.
"""
import collections
import json
import signal
import socket
import sys
import time


def main():
    port_file, out_path, spec = sys.argv[1:4]
    schedule = [(int(r), float(s)) for r, s in
                (part.split(":") for part in spec.split(","))]
    total = sum(s for _, s in schedule)
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    sock.settimeout(0.05)
    with open(port_file + ".tmp", "w") as f:
        f.write(str(sock.getsockname()[1]))
    import os
    os.rename(port_file + ".tmp", port_file)
    stop = []
    signal.signal(signal.SIGTERM, lambda *_: stop.append(1))
    out = open(out_path, "w")
    accepted_times = collections.deque()
    start = None
    second = None
    counts = [0, 0]

    def limit_at(elapsed):
        for rate, seconds in schedule:
            if elapsed < seconds:
                return rate
            elapsed -= seconds
        return schedule[-1][0]

    def flush(now):
        nonlocal second, counts
        out.write(json.dumps({"t": start + second, "limit":
                              limit_at(second), "accepted": counts[0],
                              "rejected": counts[1]}) + "\n")
        out.flush()
        counts = [0, 0]

    while not stop:
        try:
            _, peer = sock.recvfrom(16)
        except socket.timeout:
            peer = None
        now = time.time()
        if start is None:
            if peer is None:
                continue
            start, second = now, 0
        while now - start >= second + 1:
            flush(now)
            second += 1
        if now - start >= total:
            break
        if peer is None:
            continue
        while accepted_times and accepted_times[0] <= now - 1:
            accepted_times.popleft()
        ok = len(accepted_times) < limit_at(now - start)
        if ok:
            accepted_times.append(now)
        counts[0 if ok else 1] += 1
        sock.sendto(b"1" if ok else b"0", peer)
    out.close()


if __name__ == "__main__":
    main()
