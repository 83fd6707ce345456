#!/usr/bin/env python3
"""The report of bench/adaptive.sh: a Markdown summary on stdout and an SVG
plot (no extra packages) of the downstream limit L, the throttle's
current_max_n and the accepted and rejected tries per second.

    adaptive_report.py DOWNSTREAM.jsonl RATE.jsonl TARGET OUT.svg

Convergence after a change of L: the first rate sample inside the band the
fake-clock test asserts (docs/DECISIONS.md, "Adaptive ceiling"), for
factor 0.7 and increase 5: [0.7 (L / (1 - target) - 1) - 1,
L / (1 - target) + 6].
"""
import json
import sys

FACTOR, INCREASE = 0.7, 5


def load(path):
    with open(path) as f:
        return [json.loads(line) for line in f if line.strip()]


def band(limit, target):
    threshold = limit / (1 - target)
    return FACTOR * (threshold - 1) - 1, threshold + 1 + INCREASE


def phases(seconds):
    """[(limit, first index, end index)] of runs of equal limit."""
    out = []
    for i, s in enumerate(seconds):
        if not out or out[-1][0] != s["limit"]:
            out.append([s["limit"], i, i + 1])
        else:
            out[-1][2] = i + 1
    return out


def svg(seconds, rates, t0, path):
    w, h, left, bottom, top, right = 900, 420, 60, 40, 20, 150
    tmax = max(len(seconds), 1)
    ymax = max([s["accepted"] + s["rejected"] for s in seconds] +
               [r["current_max_n"] for r in rates] + [1]) * 1.1
    x = lambda t: left + (w - left - right) * t / tmax
    y = lambda v: h - bottom - (h - bottom - top) * v / ymax
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{w}" '
             f'height="{h}" font-family="sans-serif" font-size="12">',
             f'<rect width="{w}" height="{h}" fill="white"/>']
    for v in range(0, int(ymax) + 1, 50):
        parts.append(f'<line x1="{left}" y1="{y(v):.1f}" x2="{w - right}" '
                     f'y2="{y(v):.1f}" stroke="#eee"/>'
                     f'<text x="{left - 6}" y="{y(v) + 4:.1f}" '
                     f'text-anchor="end">{v}</text>')
    for t in range(0, tmax + 1, 10):
        parts.append(f'<text x="{x(t):.1f}" y="{h - bottom + 16}" '
                     f'text-anchor="middle">{t}</text>')
    parts.append(f'<text x="{(w - right + left) / 2}" y="{h - 6}" '
                 'text-anchor="middle">seconds</text>')

    def polyline(points, colour, width=2, dash=""):
        pts = " ".join(f"{x(t):.1f},{y(v):.1f}" for t, v in points)
        parts.append(f'<polyline points="{pts}" fill="none" '
                     f'stroke="{colour}" stroke-width="{width}" '
                     f'stroke-dasharray="{dash}"/>')

    limit_steps = []
    for i, s in enumerate(seconds):
        limit_steps += [(i, s["limit"]), (i + 1, s["limit"])]
    polyline(limit_steps, "#888", 3, "6,4")
    polyline([(i + 0.5, s["accepted"]) for i, s in enumerate(seconds)],
             "#2a2")
    polyline([(i + 0.5, s["rejected"]) for i, s in enumerate(seconds)],
             "#c22", 1)
    polyline([(r["t"] - t0, r["current_max_n"]) for r in rates
              if 0 <= r["t"] - t0 <= tmax], "#22c")
    for i, (label, colour) in enumerate(
            [("downstream limit L", "#888"), ("current_max_n", "#22c"),
             ("accepted / s", "#2a2"), ("rejected / s", "#c22")]):
        ly = top + 16 + 18 * i
        parts.append(f'<line x1="{w - right + 10}" y1="{ly - 4}" '
                     f'x2="{w - right + 30}" y2="{ly - 4}" stroke="{colour}" '
                     f'stroke-width="3"/><text x="{w - right + 36}" '
                     f'y="{ly}">{label}</text>')
    parts.append("</svg>")
    with open(path, "w") as f:
        f.write("\n".join(parts) + "\n")


def main():
    seconds = load(sys.argv[1])
    rates = load(sys.argv[2])
    target = float(sys.argv[3])
    t0 = seconds[0]["t"]
    svg(seconds, rates, t0, sys.argv[4])
    print("| L (per s) | seconds | converged after (s) | samples in band "
          "after | accepted / s (mean, converged) | rejection ratio "
          f"(converged; target {target}) |")
    print("|---|---|---|---|---|---|")
    for limit, first, end in phases(seconds):
        lo, hi = band(limit, target)
        start, stop = t0 + first, t0 + end
        samples = [r for r in rates if start <= r["t"] < stop]
        inside = [lo <= r["current_max_n"] <= hi for r in samples]
        converged = next((i for i, ok in enumerate(inside) if ok), None)
        if converged is None:
            print(f"| {limit} | {end - first} | not converged | 0 | - | - |")
            continue
        at = samples[converged]["t"]
        after = inside[converged:]
        tail = [s for s in seconds[first:end]
                if s["t"] >= at and s["t"] + 1 <= stop]
        accepted = sum(s["accepted"] for s in tail)
        rejected = sum(s["rejected"] for s in tail)
        ratio = rejected / max(accepted + rejected, 1)
        print(f"| {limit} | {end - first} | {at - start:.2f} | "
              f"{100 * sum(after) / len(after):.0f}% | "
              f"{accepted / max(len(tail), 1):.1f} | {ratio:.3f} |")


if __name__ == "__main__":
    main()
