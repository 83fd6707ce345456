#!/usr/bin/env bash
# Runs throttle_tutorial (its own server, 4 worker processes, 4 per 1 s for
# 5 s) and checks the seed's four lines: Total must be 20 or 21 in smooth
# mode, and the rate line must agree with Total / Runtime.
set -euo pipefail
tutorial="$1"
out=$("$tutorial")
echo "$out"
for key in "Runtime" "Total" "Time between processes" "Processes per second"; do
  grep -q "^$key: " <<<"$out" || { echo "missing line: $key" >&2; exit 1; }
done
total=$(sed -n 's/^Total: //p' <<<"$out")
runtime=$(sed -n 's/^Runtime: //p' <<<"$out")
rate=$(sed -n 's/^Processes per second: //p' <<<"$out")
if [[ "$total" != 20 && "$total" != 21 ]]; then
  echo "Total is $total, expected 20 or 21" >&2
  exit 1
fi
awk -v t="$total" -v r="$runtime" -v p="$rate" 'BEGIN {
  if (r < 5 || r > 6) { print "Runtime " r " not in [5, 6]" > "/dev/stderr"; exit 1 }
  d = t / r - p; if (d < 0) d = -d
  if (d > 1e-9) { print "rate " p " != Total/Runtime" > "/dev/stderr"; exit 1 }
}'
echo "tutorial: Total $total OK"
