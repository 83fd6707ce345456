#!/usr/bin/env python3
"""Turns bench/acquire.sh's runs (one JSON object per line, with "which":
after or before) into the Markdown tables of bench/results/acquire.md.

Usage: acquire_report.py RUNS.jsonl
"""
import collections
import json
import statistics
import sys

# The issue's figures for what is not measured here (issue 12).
MP_THROTTLE = (8600, 9300)  # mp_throttle, 4 processes, this machine
PYTHON_BEFORE_ISSUE = (2400, 2800)


def load(path):
    with open(path) as f:
        return [json.loads(line) for line in f if line.strip().startswith("{")]


def table(header, rows):
    out = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    out += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(out)


def mmm(values, fmt):
    v = [x for x in values if x is not None]
    if not v:
        return "-"
    if len(v) == 1:
        return fmt(v[0])
    return " / ".join(fmt(x) for x in (min(v), statistics.median(v), max(v)))


def num(x):
    return f"{x:,.0f}"


def us(x):
    return f"{x:.1f}" if x < 100 else f"{x:,.0f}"


def pct(x):
    return f"{100 * x:.0f}%"


def main():
    runs = load(sys.argv[1])
    ok = [r for r in runs if not r.get("failed")]
    loops = collections.defaultdict(dict)  # (which, name) -> round -> run
    other = {}  # (which, label) -> run
    for r in ok:
        label = r["label"]
        if label.startswith("r") and " " in label and label.split(" ")[0][1:].isdigit():
            rnd, loop = label.split(" ", 1)
            loops[(r["which"], loop)][rnd] = r
        else:
            other[(r["which"], label)] = r

    # The ceiling runs are of this tree ("after"), or "before" in a run of
    # the old tree on its own (THIS_TREE=before).
    ceilings = loops.get(("after", "raw-stream")) or loops.get(("before", "raw-stream"), {})

    def ratios(key):
        out = []
        for rnd, r in loops.get(key, {}).items():
            ceiling = ceilings.get(rnd)
            if ceiling and ceiling["grants_per_s"]:
                out.append(r["grants_per_s"] / ceiling["grants_per_s"])
        return out

    def median_rate(key):
        v = [r["grants_per_s"] for r in loops.get(key, {}).values()]
        return statistics.median(v) if v else None

    print("### The loops, monitor-only (4 worker processes, one loop each)\n")
    names = {
        "raw-stream": "raw ceiling: one long stream per worker, raw_ceiling_server",
        "tank": "C++ `while (!tank.killed()) tank.AwaitFuel();`",
        "python": "Python `while not kill_flag.is_set(): await_fuel()`",
        "node": "Node `while (!killFlag.isSet()) await awaitFuel()`",
        "tank-exact": "the C++ loop, exact counts (ask-ahead 0)",
        "python-exact": "the Python loop, exact counts (ask-ahead 0)",
        "node-exact": "the Node loop, exact counts (ask-ahead 0)",
        "stream": "one long AwaitFuel(count 0) stream per worker, throttle_server",
        "raw-tank": "the Tank loop against raw_ceiling_server (no scheduler)",
    }
    py_before = median_rate(("before", "python"))
    rows = []
    for loop in ["raw-stream", "tank", "tank-exact", "python", "python-exact", "node",
                 "node-exact", "stream", "raw-tank"]:
        for which in ["after", "before"]:
            key = (which, loop)
            if key not in loops:
                continue
            rs = list(loops[key].values())
            target, met = "-", "-"
            ratio = ratios(key)
            if loop == "tank" and which == "after":
                target = "≥ 70% of the ceiling"
                met = "yes" if ratio and statistics.median(ratio) >= 0.7 else "no"
                if ratio and min(ratio) < 0.7 <= statistics.median(ratio):
                    met = "yes (median; not in every round)"
            elif loop == "python" and which == "after":
                bound = max(MP_THROTTLE[1], 3 * (py_before or PYTHON_BEFORE_ISSUE[1]))
                target = (f"≥ 3 × before ({num(py_before)}/s here)" if py_before else
                          "≥ 3 × 2.4–2.8k/s") + " and > mp_throttle's 8.6–9.3k/s"
                m = median_rate(key)
                met = "yes" if m and m >= bound else "no"
            elif loop == "node" and which == "after":
                target = "reported"
            rows.append([
                names[loop], which if loop not in ("raw-stream", "stream", "raw-tank") else "-",
                mmm([r["grants_per_s"] for r in rs], num),
                "-" if loop == "raw-stream" else mmm(ratio, pct),
                mmm([r["server_cpu_s_per_million"] for r in rs], us),
                mmm([r["workers_cpu_s_per_million"] for r in rs], us),
                us(statistics.median(r["await_latency_us"]["p50"] for r in rs)) + " / " +
                us(statistics.median(r["await_latency_us"]["p99"] for r in rs))
                if loop not in ("raw-stream", "stream") else "-",
                target, met,
            ])
    print(table(["loop", "client path", "grants/s (min / median / max)",
                 "/ raw ceiling (same round)", "server CPU µs/grant", "workers CPU µs/grant",
                 "await p50 / p99 (µs, medians)", "target", "met?"], rows))
    print(f"\nmp_throttle (the Python library the client replaces) is not installable here: "
          f"its figure is the issue's, {num(MP_THROTTLE[0])}–{num(MP_THROTTLE[1])} grants/s with "
          f"4 processes, measured earlier on this machine.")

    print("\n### Smooth through the loops (4 worker processes)\n")
    rows = []
    for which in ["after", "before"]:
        for label in ["smooth-5000 tank", "smooth-50000 tank", "smooth-5000 python",
                      "smooth-5000 node"]:
            r = other.get((which, label))
            if not r:
                continue
            rate = r["target_rate"]
            err = r["relative_error"]
            over = r["max_in_window"] / rate - 1
            met = "-"
            if label.endswith("tank") and which == "after":
                met = "yes" if abs(err) <= 0.001 and over <= 0.01 else "no"
            late = r["lateness_first_us"]
            rows.append([label.split(" ")[1], which, num(rate), f'{r["achieved_rate"]:,.1f}',
                         f"{err * 100:+.3f}%", num(r["max_in_window"]), f"{over * 100:+.2f}%",
                         f'{us(late["p50"])} / {us(late["p99"])} / {us(late["max"])}',
                         us(r["server_cpu_s_per_million"]), us(r["workers_cpu_s_per_million"]),
                         f'{r["duration_s"]:.0f} s', met])
    print(table(["loop", "client path", "target/s (max_n per 1 s)", "achieved mean/s",
                 "error", "most grants in any 1 s at the workers", "/ max_n",
                 "lateness from the first grant p50 / p99 / max (µs)", "server CPU µs/grant",
                 "workers CPU µs/grant", "run", "met? (±0.1%, window ≤ +1%)"], rows))

    print("\n### Lateness at 1,000/s through the Tank loop (4 worker processes)\n")
    rows = []
    for which in ["after", "before"]:
        r = other.get((which, "lateness-1000 tank"))
        if not r:
            continue
        log, first, start = r["lateness_log_us"], r["lateness_first_us"], r["lateness_us"]

        def f3(d):
            return f'{us(d["p50"])} / {us(d["p99"])} / {us(d["max"])}'
        rows.append([which, f3(log), f'{log["matched"]:,} / {log["logged"]:,} / {log["received"]:,}',
                     f3(first), f3(start), f'{r["achieved_rate"]:,.2f}', num(r["max_in_window"]),
                     us(r["server_cpu_s_per_million"]),
                     "yes" if log["matched"] and log["p99"] < 1000 else "no"])
    print(table(["client path", "against the grant log's nominal time p50 / p99 / max (µs)",
                 "matched / logged / received", "against first grant + i / rate",
                 "against Start + i / rate", "achieved/s", "most in 1 s", "server CPU µs/grant",
                 "p99 < 1 ms (grant log)?"], rows))

    print("\n### Server memory per open stream (fresh server each, VmRSS)\n")
    rows = []
    idle = {k: r for k, r in other.items() if r.get("idle") and " raw --" not in k[1]}
    slope = {}
    for (which, label), r in sorted(idle.items(), key=lambda kv: (kv[0][0], kv[1]["server"],
                                                                   kv[1]["pattern"], kv[1]["streams"])):
        key = (which, r["server"], r["pattern"])
        slope.setdefault(key, {})[r["streams"]] = r
    for key, by_n in slope.items():
        which, server, pattern = key
        marginal = "-"
        if 1000 in by_n and 10000 in by_n:
            a, b = by_n[1000], by_n[10000]
            marginal = f'{(b["rss_waiting_kib"] - a["rss_waiting_kib"]) / 9000:.2f}'
            if b["rss_idle_kib"] > 0 and a["rss_idle_kib"] > 0:
                marginal += f' / {(b["rss_idle_kib"] - a["rss_idle_kib"]) / 9000:.2f}'
        for n, r in sorted(by_n.items()):
            rows.append([
                "raw_ceiling_server --idle" if server == "raw" else "throttle_server",
                "Acquire" if pattern == "acquire" else "AwaitFuel(count 0)", which, f"{n:,}",
                f'{r["rss_before_kib"] / 1024:.1f}', f'{r["rss_waiting_kib"] / 1024:.1f}',
                f'{r["waiting_kib_per_stream"]:.2f}',
                f'{r["idle_kib_per_stream"]:.2f}' if r["rss_idle_kib"] > 0 else "-",
                marginal if n == 10000 else "", us(r["server_cpu_us_per_stream_open"]),
            ])
    print(table(["server", "streams", "server build", "N", "RSS before (MiB)",
                 "RSS with N streams (MiB)", "KiB per stream (waiting)",
                 "KiB per stream (Acquire, demand withdrawn)",
                 "marginal KiB per stream, 1,000 → 10,000 (waiting / withdrawn)",
                 "server CPU µs per stream opened"], rows))

    print("\n### Server channel arguments (raw_ceiling_server --idle, 10,000 idle streams)\n")
    rows = []
    raw_idle = {label: r for (which, label), r in other.items() if r.get("idle")}
    pattern = "acquire" if "idle-acquire-10000 raw" in raw_idle else "stream"
    base = raw_idle.get(f"idle-{pattern}-10000 raw")
    if base:
        rows.append(["(none)", f'{base["idle_kib_per_stream"] if base["rss_idle_kib"] > 0 else base["waiting_kib_per_stream"]:.2f}', "-"])
        b = base["idle_kib_per_stream"] if base["rss_idle_kib"] > 0 else base["waiting_kib_per_stream"]
        for (which, label), r in other.items():
            if " raw --" not in label:
                continue
            v = r["idle_kib_per_stream"] if r["rss_idle_kib"] > 0 else r["waiting_kib_per_stream"]
            rows.append([f'`{label.split(" raw ", 1)[1]}`', f"{v:.2f}", f"{v - b:+.2f} ({(v / b - 1) * 100:+.0f}%)"])
        print(f'Streams: {"Acquire, demand withdrawn" if base["pattern"] == "acquire" else "AwaitFuel(count 0)"}.\n')
        print(table(["setting", "KiB per stream", "against none"], rows))


if __name__ == "__main__":
    main()
