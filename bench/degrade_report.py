#!/usr/bin/python3
"""The report of bench/degrade.sh: reads the grant times of its workers
(one file each, CLOCK_MONOTONIC ns per line) and the kill and restart
times, and prints the summed rate before, during and after the outage;
writes an SVG of the summed rate per 100 ms over time (standard library
only). With --check, exits 1 unless the outage's rate stayed within the
fleet's rate plus a margin, above zero, the grants in any 2 s from the
restart on (local + server) stayed within the fleet's rate plus a margin,
and grants
resumed after the restart (the CTest check degrade_benchmark_check).

    degrade_report.py --rate=200 --start=NS --kill=NS --restart=NS \\
        --end=NS --svg=OUT.svg [--check] WORKER_FILE...
"""
import argparse
import sys

BIN_NS = 100_000_000  # 100 ms
BACK_WINDOW_NS = 2_000_000_000  # the way back is checked over any 2 s


def read_times(paths):
    times = []
    for path in paths:
        with open(path) as f:
            times.extend(int(line) for line in f if line.strip())
    return sorted(times)


def most_within(sorted_times, window_ns):
    """The most grants in any half-open window of window_ns."""
    best, lo = 0, 0
    for hi, t in enumerate(sorted_times):
        while t - sorted_times[lo] >= window_ns:
            lo += 1
        best = max(best, hi - lo + 1)
    return best


def rate(times, start, end):
    """Grants per second in [start, end) ns."""
    if end <= start:
        return 0.0
    n = sum(1 for t in times if start <= t < end)
    return n / ((end - start) / 1e9)


def svg(times, start, end, kill, restart, fleet_rate, path):
    bins = [0] * max(1, (end - start) // BIN_NS + 1)
    for t in times:
        if start <= t < end:
            bins[(t - start) // BIN_NS] += 1
    per_second = [b * 1e9 / BIN_NS for b in bins]
    width, height, pad = 800, 300, 40
    top = max(max(per_second), fleet_rate) * 1.2
    seconds = (end - start) / 1e9

    def x(s):
        return pad + (width - 2 * pad) * s / seconds

    def y(r):
        return height - pad - (height - 2 * pad) * r / top

    points = " ".join(f"{x(i * BIN_NS / 1e9):.1f},{y(r):.1f}"
                      for i, r in enumerate(per_second))
    kill_s, restart_s = (kill - start) / 1e9, (restart - start) / 1e9
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" '
        f'height="{height}" font-family="sans-serif" font-size="12">',
        f'<rect x="{x(kill_s):.1f}" y="{pad}" '
        f'width="{x(restart_s) - x(kill_s):.1f}" '
        f'height="{height - 2 * pad}" fill="#fde0e0"/>',
        f'<line x1="{pad}" y1="{y(fleet_rate):.1f}" x2="{width - pad}" '
        f'y2="{y(fleet_rate):.1f}" stroke="#888" stroke-dasharray="4"/>',
        f'<text x="{width - pad}" y="{y(fleet_rate) - 4:.1f}" '
        f'text-anchor="end">fleet rate {fleet_rate:g}/s</text>',
        f'<polyline fill="none" stroke="#1f5fa8" points="{points}"/>',
        f'<line x1="{pad}" y1="{height - pad}" x2="{width - pad}" '
        f'y2="{height - pad}" stroke="black"/>',
        f'<line x1="{pad}" y1="{pad}" x2="{pad}" y2="{height - pad}" '
        f'stroke="black"/>',
        f'<text x="{width / 2}" y="{height - 8}" text-anchor="middle">'
        f'seconds (server killed at {kill_s:.1f}, restarted at '
        f'{restart_s:.1f}); summed grants per second in 100 ms bins</text>',
        f'<text x="{pad}" y="{pad - 8}">{top:.0f}/s</text>',
        '</svg>',
    ]
    with open(path, "w") as f:
        f.write("\n".join(parts) + "\n")


def main():
    parser = argparse.ArgumentParser()
    for name in ("start", "kill", "restart", "end"):
        parser.add_argument(f"--{name}", type=int, required=True)
    parser.add_argument("--rate", type=float, required=True)
    parser.add_argument("--workers", type=int, required=True)
    parser.add_argument("--svg")
    parser.add_argument("--check", action="store_true")
    parser.add_argument("files", nargs="+")
    args = parser.parse_args()
    times = read_times(args.files)
    before = rate(times, args.start + 1_000_000_000, args.kill)
    during = rate(times, args.kill, args.restart)
    # After: from a second past the restart (the reconnect backoff).
    after = rate(times, args.restart + 1_000_000_000, args.end)
    outage_s = (args.restart - args.kill) / 1e9
    during_n = sum(1 for t in times if args.kill <= t < args.restart)
    # The way back: every grant from the restart on, local ones of the
    # workers not back yet included; and the most in any 2 s of it (the
    # workers come back over a few seconds: a mean over 10 s hides them).
    back_s = (args.end - args.restart) / 1e9
    back = [t for t in times if args.restart <= t < args.end]
    back_n = len(back)
    back_peak = most_within(back, BACK_WINDOW_NS)
    print(f"grants: {len(times)}; summed rate before {before:.1f}/s, "
          f"during the {outage_s:.1f} s outage {during:.1f}/s "
          f"({during_n} grants), after {after:.1f}/s; from the restart "
          f"on {back_n / back_s:.1f}/s ({back_n} grants in {back_s:.1f} s, "
          f"{back_n / (args.rate * back_s):.3f}x), most in 2 s of it "
          f"{back_peak} ({back_peak / (args.rate * BACK_WINDOW_NS / 1e9):.3f}x)"
          f"; fleet rate {args.rate:g}/s")
    if args.svg:
        svg(times, args.start, args.end, args.kill, args.restart, args.rate,
            args.svg)
        print(f"plot: {args.svg}")
    if not args.check:
        return 0
    # Margin: one grant per worker at the outage's start and one each on
    # its way as the server died.
    bound = args.rate * outage_s + 2 * args.workers
    failures = []
    if during_n > bound:
        failures.append(f"{during_n} grants during the outage > {bound:.0f}")
    # The way back, on a loaded machine: 2% and 2 grants per worker over
    # the fleet's rate (the outage's margin, and timer jitter), in any 2 s
    # from the restart on.
    peak_bound = args.rate * BACK_WINDOW_NS / 1e9 * 1.02 + 2 * args.workers
    if back_peak > peak_bound:
        failures.append(f"{back_peak} grants in 2 s after the restart > "
                        f"{peak_bound:.0f}")
    if during_n == 0:
        failures.append("no grant during the outage")
    if after <= 0:
        failures.append("no grant after the restart")
    for failure in failures:
        print(f"FAIL: {failure}")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
