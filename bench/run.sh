#!/usr/bin/env bash
# Runs every benchmark scenario and writes bench/results/<name>.jsonl (one
# JSON object per run), the scheduler microbenchmarks, a Markdown table and
# the accuracy plot (bench/results/accuracy_1000.png).
#   bench/run.sh           full set (about 8 minutes on 2 cores)
#   bench/run.sh --quick   a smaller set (under 2 minutes)
# Builds first (scripts/setup.sh). Timing figures are reported, never
# asserted: run on a quiet machine and compare ratios to the raw ceiling,
# which is measured in the same run.
set -euo pipefail
cd "$(dirname "$0")/.."
quick=false
[[ "${1:-}" == "--quick" ]] && quick=true
BUILD_DIR="${BUILD_DIR:-build}" scripts/setup.sh >/dev/null
build="${BUILD_DIR:-build}"
bench="$build/bench/throttle_bench"
out=bench/results
mkdir -p "$out"
name=$($quick && echo quick || echo full)
results="$out/$name.jsonl"
: >"$results"

run() {  # run LABEL FLAGS...
  local label="$1"; shift
  echo "--- $label: $*" >&2
  "$bench" --label="$label" "$@" 2>/dev/null | tee /dev/stderr | tail -n 1 >>"$results"
}

if $quick; then
  d=2s
  rates=(4 1000 100000); modes=(smooth)
else
  d=10s
  rates=(4 100 1000 10000 100000); modes=(smooth window bucket unbounded)
fi

# 1. Ceiling of the transport and throughput, both patterns, 1 / 4 / 64 streams.
for shape in "1 1" "4 1" "4 16"; do
  set -- $shape
  for pattern in stream call; do
    $quick && [[ "$1$2" != "41" ]] && continue
    run "ceiling-$pattern-$(($1 * $2))" --server=raw --pattern=$pattern --workers=$1 --streams=$2 --duration=5s
    run "throughput-$pattern-$(($1 * $2))" --mode=monitor-only --pattern=$pattern --workers=$1 --streams=$2 --duration=5s
  done
done
# Grants that fall due together travel in one message: a long stream at a
# rate far above the message ceiling.
run "batching-stream-4" --mode=smooth --rate=2000000 --pattern=stream --workers=4 --duration=5s

# 2. Accuracy: each rate and mode, 4 worker processes with one long stream each.
for mode in "${modes[@]}"; do
  for rate in "${rates[@]}"; do
    dump=()
    # The plot comes from the full run only.
    [[ "$mode" == smooth && "$rate" == 1000 ]] && ! $quick && dump=(--dump_times="$out/accuracy_1000.times")
    run "accuracy-$mode-$rate" --mode=$mode --rate=$rate --pattern=stream --workers=4 --duration=$d "${dump[@]}"
  done
done
# One grant per call at 1,000/s (the client library's pattern).
run "accuracy-smooth-1000-call" --mode=smooth --rate=1000 --pattern=call --workers=4 --streams=4 --duration=$d

# 3. Scale: 10,000 streams sharing 1,000/s.
if $quick; then
  run "scale-1000" --mode=smooth --rate=1000 --pattern=stream --workers=4 --streams=250 --duration=$d
else
  run "scale-10000" --mode=smooth --rate=1000 --pattern=stream --workers=4 --streams=2500 --duration=$d
fi

# 4. Churn: streams leave after ~200 ms and new ones connect, rate 1,000/s.
run "churn-64" --mode=smooth --rate=1000 --pattern=stream --workers=4 --streams=16 --churn=200ms --duration=$d

# 5. Await latency when fuel is free (monitor-only, one call at a time).
run "free-latency" --mode=monitor-only --pattern=call --workers=1 --streams=1 --duration=5s

# 6. Scheduler microbenchmarks.
if [[ -x "$build/bench/scheduler_bench" ]]; then
  "$build/bench/scheduler_bench" --benchmark_format=json \
    $($quick && echo --benchmark_min_time=0.05) >"$out/$name-scheduler.json"
fi

/usr/bin/python3 bench/report.py "$results" "$out/$name-scheduler.json" >"$out/$name.md"
if [[ -f "$out/accuracy_1000.times" ]]; then
  bench/plot.sh "$out/accuracy_1000.times" 1000 "$out/accuracy_1000.png"
  rm -f "$out/accuracy_1000.times"
fi
cat "$out/$name.md"
