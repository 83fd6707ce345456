#!/usr/bin/env bash
# Plots grants per 10 ms against the ideal line for one accuracy run.
# Usage: bench/plot.sh TIMES_FILE RATE OUT.png   (TIMES_FILE: one arrival
# time per line, seconds from Start, as throttle_bench --dump_times writes)
set -euo pipefail
times="$1" rate="$2" png="$3"
command -v gnuplot >/dev/null || {
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends gnuplot-nox >/dev/null
}
bins=$(mktemp)
trap 'rm -f "$bins"' EXIT
awk '{ b = int($1 * 100); n[b]++; if (b > m) m = b } END { for (i = 0; i <= m; i++) printf "%.2f %d\n", i / 100, n[i] + 0 }' "$times" >"$bins"
gnuplot <<GP
set terminal png size 1200,500 noenhanced
set output "$png"
set title "Grants per 10 ms at $rate/s (smooth, 4 worker processes), as received by the workers"
set xlabel "seconds since Start"
set ylabel "grants per 10 ms"
set yrange [0:*]
set grid
plot $rate / 100.0 with lines lw 3 lc rgb "#999999" title "ideal", "$bins" using 1:2 with steps lc rgb "#c00000" title "received"
GP
echo "plot: $png"
