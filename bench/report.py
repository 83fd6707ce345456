#!/usr/bin/env python3
"""Turns bench/run.sh results into Markdown tables.

Usage: report.py RESULTS.jsonl [SCHEDULER.json]
"""
import json
import math
import sys


def load(path):
    with open(path) as f:
        return [json.loads(line) for line in f if line.strip().startswith("{")]


def table(header, rows):
    out = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    out += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(out)


def main():
    runs = load(sys.argv[1])
    by = {r["label"]: r for r in runs}
    print("### Throughput against the raw-gRPC ceiling (same run)\n")
    rows = []
    for r in runs:
        if not r["label"].startswith("throughput-"):
            continue
        ceiling = by.get(r["label"].replace("throughput-", "ceiling-"))
        base = ceiling["grants_per_s"] if ceiling else 0
        rows.append([r["label"], r["pattern"], r["workers"] * r["streams_per_worker"],
                     f'{r["grants_per_s"]:.0f}', f'{r["messages_per_s"]:.0f}',
                     f'{base:.0f}', f'{r["grants_per_s"] / base:.0%}' if base else "-",
                     f'{r["server_cpu_s_per_million"]:.1f}'])
    b = by.get("batching-stream-4")
    if b:
        rows.append([b["label"] + " (smooth, 2M/s)", b["pattern"], 4, f'{b["grants_per_s"]:.0f}',
                     f'{b["messages_per_s"]:.0f}', "-", "-", f'{b["server_cpu_s_per_million"]:.1f}'])
    print(table(["scenario", "pattern", "streams", "grants/s", "messages/s",
                 "ceiling grants/s", "ratio", "server CPU s / 1M grants"], rows))
    print("\n### Accuracy (4 worker processes, one long stream each)\n")
    rows = []
    for r in runs:
        if not r["label"].startswith("accuracy-"):
            continue
        rate, t = r["target_rate"], r["duration_s"]
        bursty = r["mode"] in ("window", "bucket")
        # Most grants the mode allows in [Start, Start + t]: smooth and
        # unbounded one per interval plus the first; window a burst of
        # max_n per started window; bucket a full bucket plus the refill.
        bound = int(rate * (math.floor(t) + 1)) if r["mode"] == "window" else (
            int(rate + math.floor(t * rate)) if r["mode"] == "bucket" else int(math.floor(t * rate)) + 1)
        late = r["lateness_us"]
        rows.append([r["mode"], r["pattern"], f'{rate:g}',
                     "-" if bursty else f'{r["achieved_rate"]:.3f}',
                     "-" if bursty else f'{r["relative_error"] * 100:+.4f}%',
                     r["grants"], bound, r["max_in_window"], r["max_in_window_jitter_1ms"],
                     "-" if bursty else f'{late["p50"]:.0f} / {late["p99"]:.0f} / {late["max"]:.0f}',
                     f'{r["jain"]:.4f}'])
    print(table(["mode", "pattern", "target/s", "steady rate/s", "error", "grants received",
                 "mode's bound", "max in 1 s (workers)", "max in 1 s (1 ms jitter allowed)",
                 "lateness p50/p99/max (µs)", "Jain"], rows))
    print("\n### Scale, churn, latency when fuel is free\n")
    rows = []
    for r in runs:
        if r["label"].split("-")[0] not in ("scale", "churn", "free"):
            continue
        rows.append([r["label"], r["workers"] * r["streams_per_worker"], f'{r["target_rate"]:g}',
                     f'{r["achieved_rate"]:.3f}', f'{r["relative_error"] * 100:+.4f}%',
                     f'{r["jain"]:.4f}', f'{r["server_peak_rss_mib"]:.0f}',
                     f'{r["lateness_us"]["p99"]:.0f}',
                     f'{r["await_latency_us"]["p50"]:.0f} / {r["await_latency_us"]["p99"]:.0f}'])
    print(table(["scenario", "streams", "target/s", "achieved/s", "error", "Jain",
                 "server peak RSS (MiB)", "lateness p99 (µs)", "await latency p50/p99 (µs)"], rows))
    if len(sys.argv) > 2:
        try:
            with open(sys.argv[2]) as f:
                micro = json.load(f)["benchmarks"]
        except (OSError, ValueError, KeyError):
            micro = []
        if micro:
            print("\n### Scheduler microbenchmarks (Google Benchmark)\n")
            rows = [[m["name"], f'{m["cpu_time"]:.1f} {m["time_unit"]}'] for m in micro]
            print(table(["benchmark", "CPU time per iteration"], rows))


if __name__ == "__main__":
    main()
