#!/usr/bin/env bash
# The adaptive ceiling (issue 14, part 4) against a downstream whose limit
# changes, measured and reported, never asserted (tests/core/adaptive_test.cc
# asserts the convergence band with a fake clock). Writes
# bench/results/adaptive.md, adaptive.svg and the raw adaptive-*.jsonl.
#   bench/adaptive.sh            L = 200/s, 80/s, 150/s for 30 s each
#   bench/adaptive.sh --quick    15 s each
#   BUILD_DIR=build-x bench/adaptive.sh   the server of another build
# Needs node with clients/node/node_modules (clients/setup.sh) and python3
# (no extra packages: the plot is an SVG written by bench/adaptive_report.py).
#
# What it does, all on 127.0.0.1, every process stopped by the script on
# any exit: a throttle_server; a smooth throttle of max_n 300 per 1 s with
# adaptive {floor_n 10, target 0.05, window 1 s, increase_n 5,
# decrease_factor 0.7, min_outcomes 10}; the simulated downstream
# (bench/adaptive_downstream.py: at most L tries in any sliding second,
# the rest rejected); 4 worker processes (bench/adaptive_worker.js) that
# await fuel, try each grant downstream and report the outcomes every
# 100 ms; a sampler of current_max_n every 250 ms.
set -euo pipefail
cd "$(dirname "$0")/.."
build="${BUILD_DIR:-build}"
server_bin="$build/server/throttle_server"
node_dir="$PWD/clients/node"
phase=30
[[ "${1:-}" == "--quick" ]] && phase=15
schedule="200:$phase,80:$phase,150:$phase"
workers=4
for tool in node python3; do
  command -v "$tool" >/dev/null || { echo "adaptive.sh: needs $tool" >&2; exit 1; }
done
[[ -x "$server_bin" ]] || { echo "adaptive.sh: no $server_bin (BUILD_DIR=$build)" >&2; exit 1; }
[[ -d "$node_dir/node_modules/@grpc/grpc-js" ]] ||
  { echo "adaptive.sh: no $node_dir/node_modules: run clients/setup.sh" >&2; exit 1; }

tmp=$(mktemp -d)
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
  rm -rf "$tmp"
}
trap cleanup EXIT

wait_file() {  # a file to appear, for up to 30 s
  for _ in $(seq 300); do [[ -s "$1" ]] && return 0; sleep 0.1; done
  echo "adaptive.sh: $1 did not appear" >&2; return 1
}

"$server_bin" --listen=127.0.0.1:0 --port_file="$tmp/server.port" 2>"$tmp/server.log" &
pids+=($!)
wait_file "$tmp/server.port"
address="127.0.0.1:$(cat "$tmp/server.port")"
worker=(node bench/adaptive_worker.js --address="$address" --throttle=adaptive)

"${worker[@]}" --create='{"maxN":300,"per":1,"mode":"smooth","adaptive":{"floorN":10,"targetRejectionRatio":0.05,"window":1,"increaseN":5,"decreaseFactor":0.7,"minOutcomes":10}}'
python3 bench/adaptive_downstream.py "$tmp/downstream.port" "$tmp/downstream.jsonl" "$schedule" &
downstream=$!
pids+=($downstream)
wait_file "$tmp/downstream.port"
"${worker[@]}" --sample="$tmp/rate.jsonl" &
sampler=$!
pids+=($sampler)
worker_pids=()
for i in $(seq "$workers"); do
  "${worker[@]}" --downstream="$(cat "$tmp/downstream.port")" --worker_id="w$i" &
  worker_pids+=($!)
  pids+=($!)
done
echo "adaptive.sh: running $schedule with $workers workers" >&2
wait "$downstream"  # it ends with the schedule
node -e "
  const { Throttle } = require('$node_dir');
  const t = new Throttle('$address', 'adaptive');
  t.stop().finally(() => t.close());"
for pid in "${worker_pids[@]}" "$sampler"; do wait "$pid"; done

mkdir -p bench/results
cp "$tmp/downstream.jsonl" bench/results/adaptive-downstream.jsonl
cp "$tmp/rate.jsonl" bench/results/adaptive-rate.jsonl
python3 bench/adaptive_report.py bench/results/adaptive-downstream.jsonl \
  bench/results/adaptive-rate.jsonl 0.05 bench/results/adaptive.svg \
  >bench/results/adaptive.md
cat bench/results/adaptive.md
