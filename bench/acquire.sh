#!/usr/bin/env bash
# The worker's own loop at stream speed (issue 12), measured and reported,
# never asserted. Writes bench/results/acquire.md (and acquire.jsonl, every
# run's JSON line).
#   bench/acquire.sh           3 rounds of the loops, then accuracy,
#                              lateness and memory (about 4 minutes;
#                              5.5 with BEFORE_DIR)
#   bench/acquire.sh --quick   1 round of 2 s runs, shorter accuracy runs
#                              (about 1.5 minutes; 2.5 with BEFORE_DIR)
#   bench/acquire.sh --no-acquire   skip the idle Acquire streams (a server
#                              without Acquire)
#   BUILD_DIR=build-x          binaries of another build (default build)
#   BEFORE_DIR=DIR             also run the loops of an older tree: DIR holds
#                              its bench/, clients/ and build/ (throttle_server,
#                              throttle_bench, raw_ceiling_server), e.g. the
#                              one-call-per-grant clients before Acquire
#   RESULTS_NAME=acquire-before   write bench/results/NAME.{md,jsonl}
#   THIS_TREE=before           name this tree's client path "before" in the
#                              report (default "after"), for a run of the
#                              old clients on their own
#   SERVER_FLAGS="..."         more flags for every throttle_server started
#   KEEP_TMP=1                 keep the server logs and the runs
# Needs python3, node, clients/node/node_modules (clients/setup.sh) and
# protoc with grpc_python_plugin (clients/python/generate.sh).
#
# What it does, all on 127.0.0.1, every server stopped by the script on any
# exit: starts one raw_ceiling_server (the transport's ceiling: tokens as
# fast as the transport takes them, no scheduler) and one throttle_server
# (and one of BEFORE_DIR), then runs throttle_bench with 4 worker processes
# of one loop each, monitor-only (as fast as the path takes grants):
#   raw stream  the ceiling: one long AwaitFuel stream per worker against
#               raw_ceiling_server, one grant per message
#   tank        while (!tank.killed()) tank.AwaitFuel();  (C++ throttle::Tank)
#   python      while not tank.kill_flag.is_set(): tank.await_fuel()
#               (bench/acquire_worker.py over clients/python)
#   node        while (!tank.killFlag.isSet()) await tank.awaitFuel();
#               (bench/acquire_worker.js over clients/node)
#   X-exact     the same three loops asking for exactly what they wait for
#               (ask-ahead 0: --tank_ask_ahead=0, --ask_ahead=0): one grant
#               per round trip; by default a loop where fuel is unlimited
#               asks ahead (up to 16) and gets several grants a message
#   stream      one long AwaitFuel(count 0) stream per worker (the server's
#               own ceiling, for comparison)
#   raw tank    the Tank loop against raw_ceiling_server (Acquire, or with an
#               old Tank AwaitFuel count 1, without a scheduler)
# each round in that order, each figure also as a ratio to the raw stream
# ceiling of the same round. Then, once: smooth at 5,000/s and 50,000/s
# through the Tank loop (and 5,000/s through Python and Node): mean rate
# against the target and the most grants any 1-s window held at the workers
# (every worker's grant times merged) against max_n; smooth at 1,000/s
# through the Tank loop on a server with --grant_log: lateness of each grant
# at the worker against its nominal time in the log, against the ideal
# schedule from the first grant, and from the Start call; server CPU per
# grant (utime + stime from /proc/PID/stat over each run); and the server's
# resident memory per open stream: 1,000 and 10,000 idle AwaitFuel(count 0)
# and Acquire streams (fresh servers, VmRSS after minus before, over N), the
# same on raw_ceiling_server --idle (gRPC's own share), and there with
# server channel arguments that might shrink it.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
build="${BUILD_DIR:-build}"
before_dir="${BEFORE_DIR:-}"
name="${RESULTS_NAME:-acquire}"
results="bench/results/$name.md"
quick=0 acquire=1
for arg in "$@"; do
  case $arg in
    --quick) quick=1 ;;
    --no-acquire) acquire=0 ;;
    *) echo "usage: bench/acquire.sh [--quick] [--no-acquire]" >&2; exit 2 ;;
  esac
done
if ((quick)); then
  rounds=1 duration=2s smooth_duration=5s lateness_duration=5s
else
  rounds=3 duration=4s smooth_duration=10s lateness_duration=10s
fi
node=$(command -v node || true)
for tool in python3 /usr/bin/python3 "$node"; do
  if [[ -z $tool ]] || ! command -v "$tool" >/dev/null; then
    echo "acquire.sh: needs python3, /usr/bin/python3 and node" >&2
    exit 1
  fi
done
trees=("$root")
[[ -n $before_dir ]] && trees+=("$(cd "$before_dir" && pwd)")
for tree in "${trees[@]}"; do
  for bin in server/throttle_server bench/raw_ceiling_server bench/throttle_bench; do
    b="$tree/$build/$bin"
    [[ $tree != "$root" ]] && b="$tree/build/$bin"
    [[ -x $b ]] || { echo "acquire.sh: no $b" >&2; exit 1; }
  done
  [[ -d $tree/clients/node/node_modules/@grpc/grpc-js ]] ||
    { echo "acquire.sh: no $tree/clients/node/node_modules (clients/setup.sh)" >&2; exit 1; }
done

tmp=$(mktemp -d)
out="$tmp/$name.md"  # moved to $results at the end: a run cut short keeps the last one
pids=()              # the servers and the load sampler, stopped on exit
cleanup() {
  for p in "${pids[@]}"; do kill -9 "$p" 2>/dev/null || true; done
  { wait; } 2>/dev/null || true
  if [[ -n "${KEEP_TMP:-}" ]]; then echo "acquire.sh: kept $tmp" >&2; else rm -rf "$tmp"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM
load() { cut -d' ' -f1-3 /proc/loadavg; }
# The 1-minute load average every 5 s, for the report.
(while true; do echo "$(date +%s) $(cut -d' ' -f1 /proc/loadavg)"; sleep 5; done) >"$tmp/load" &
pids+=($!)

# Per tree ("after": this one; "before": BEFORE_DIR): binaries, the Python
# client's generated code, the worker commands.
declare -A bench_bin server_bin raw_bin pygen py_cmd node_cmd
tree_of() { [[ $1 == after ]] && echo "$root" || echo "${trees[1]}"; }
for which in after before; do
  [[ $which == before && -z $before_dir ]] && continue
  tree=$(tree_of $which)
  bdir="$tree/build"
  [[ $which == after ]] && bdir="$root/$build"
  bench_bin[$which]="$bdir/bench/throttle_bench"
  server_bin[$which]="$bdir/server/throttle_server"
  raw_bin[$which]="$bdir/bench/raw_ceiling_server"
  pygen[$which]=$("$tree/clients/python/generate.sh" "$tmp/pygen-$which")
  py_cmd[$which]="/usr/bin/python3 $tree/bench/acquire_worker.py"
  node_cmd[$which]="$node $tree/bench/acquire_worker.js"
done

declare -A srv_pid srv_port
start_server() {  # start_server NAME BINARY FLAGS...
  local sname=$1 bin=$2
  shift 2
  "$bin" --listen=127.0.0.1:0 --port_file="$tmp/$sname.port" "$@" 2>"$tmp/$sname.log" &
  srv_pid[$sname]=$!
  pids+=($!)
  for _ in $(seq 1 300); do [[ -s "$tmp/$sname.port" ]] && break; sleep 0.02; done
  [[ -s "$tmp/$sname.port" ]] || { echo "acquire.sh: $sname did not start: $(cat "$tmp/$sname.log")" >&2; exit 1; }
  srv_port[$sname]=$(cat "$tmp/$sname.port")
}
# shellcheck disable=SC2086  # the flags are words
start_server raw "${raw_bin[after]}"
# shellcheck disable=SC2086
start_server after "${server_bin[after]}" --log_level=warning ${SERVER_FLAGS:-}
# shellcheck disable=SC2086
[[ -n $before_dir ]] && start_server before "${server_bin[before]}" --log_level=warning

: >"$tmp/runs.jsonl"
failed=0
# run LABEL WHICH(after|before) SERVER(raw|after|before|own) PATTERN MODE FLAGS...
# "own": throttle_bench starts a fresh server of its tree (FLAGS may hold
# --server=raw and --server_flags).
run() {
  local label=$1 which=$2 server=$3 pattern=$4 mode=$5
  shift 5
  local flags=(--workers=4 --streams=1 --pattern="$pattern" --label="$label")
  case $server in
    raw) flags+=(--address="127.0.0.1:${srv_port[raw]}" --server_pid="${srv_pid[raw]}" --server=raw) ;;
    after | before) flags+=(--address="127.0.0.1:${srv_port[$server]}" --server_pid="${srv_pid[$server]}") ;;
    own) flags+=(--server_binary="${server_bin[$which]}" --raw_server_binary="${raw_bin[$which]}") ;;
  esac
  # Idle streams wait on a throttle that is never started (any mode).
  [[ $mode == - ]] && mode=smooth
  [[ $server == raw ]] || flags+=(--mode="$mode")
  local exact=""
  [[ $label == *-exact* ]] && exact=" --ask_ahead=0"
  case $pattern in
    python) flags+=(--worker_command="${py_cmd[$which]}$exact") ;;
    node) flags+=(--worker_command="${node_cmd[$which]}$exact") ;;
    tank) [[ -n $exact ]] && flags+=(--tank_ask_ahead=0) ;;
  esac
  flags+=("$@")
  local json
  echo "  $label ($which): ${flags[*]}" >>"$tmp/commands"
  if json=$(THROTTLE_PY_GENERATED="${pygen[$which]}" "${bench_bin[$which]}" "${flags[@]}" 2>"$tmp/bench.err" | tail -n 1) &&
    [[ $json == "{"* ]]; then
    python3 -c '
import json, sys
j = json.loads(sys.argv[1]); j["load1"] = float(sys.argv[3])
j["which"] = sys.argv[4] if sys.argv[2] == "after" else sys.argv[2]
print(json.dumps(j))' "$json" "$which" "$(cut -d' ' -f1 /proc/loadavg)" "${THIS_TREE:-after}" >>"$tmp/runs.jsonl"
    python3 -c '
import json, sys
j = json.loads(sys.argv[1])
if j.get("idle"):
    print("  %-28s %-6s %6d streams  %7.2f KiB/stream waiting  %7.2f idle" % (
        j["label"], sys.argv[2], j["streams"], j["waiting_kib_per_stream"], j["idle_kib_per_stream"]))
else:
    print("  %-28s %-6s %9.0f grants/s  server %6.1f us/grant  max/1s %7d  lateness p99 %6.0f us" % (
        j["label"], sys.argv[2], j["grants_per_s"], j["server_cpu_s_per_million"],
        j["max_in_window"], j["lateness_log_us"]["p99"] or j["lateness_first_us"]["p99"]))' "$json" "$which"
  else
    failed=$((failed + 1))
    echo "$label ($which): $(grep -v '^ts=' "$tmp/bench.err" | tail -n 1)" >>"$tmp/failures"
    echo "acquire.sh: $label ($which) failed: $(grep -v '^ts=' "$tmp/bench.err" | tail -n 5)" >&2
    echo "{\"label\":\"$label\",\"which\":\"$which\",\"pattern\":\"$pattern\",\"failed\":true}" >>"$tmp/runs.jsonl"
  fi
  grep '^worker call ended' "$tmp/bench.err" | head -n 3 >>"$tmp/worker_error_lines" || true
  for s in raw after before; do
    [[ -n ${srv_pid[$s]:-} ]] || continue
    kill -0 "${srv_pid[$s]}" 2>/dev/null ||
      { echo "acquire.sh: the $s server died: $(tail -n 5 "$tmp/$s.log")" >&2; exit 1; }
  done
}

begin=$(date +%s)
commit=$(git rev-parse --short HEAD 2>/dev/null || echo '?')
git diff --quiet HEAD -- server client-lib clients bench/throttle_bench.cc bench/raw_server.cc 2>/dev/null ||
  commit="$commit with local changes"
whiches=(after)
[[ -n $before_dir ]] && whiches+=(before)
load_before=$(load)
echo "acquire.sh: $rounds round(s), load average $load_before"

# ---------------------------------------------------- 1. the loops, monitor-only
for round in $(seq 1 "$rounds"); do
  echo "round $round (load average $(load))"
  run "r$round raw-stream" after raw stream - --duration=$duration
  for which in "${whiches[@]}"; do
    for pattern in tank python node; do
      run "r$round $pattern" "$which" "$which" "$pattern" monitor-only --duration=$duration
    done
    [[ $which == after ]] || continue
    for pattern in tank python node; do
      run "r$round $pattern-exact" "$which" "$which" "$pattern" monitor-only --duration=$duration
    done
  done
  run "r$round stream" after after stream monitor-only --duration=$duration
  run "r$round raw-tank" after raw tank - --duration=$duration
done

# ---------------------------------------------------- 2. smooth through the loops
echo "accuracy (load average $(load))"
for which in "${whiches[@]}"; do
  for rate in 5000 50000; do
    run "smooth-$rate tank" "$which" "$which" tank smooth --rate=$rate --duration=$smooth_duration
  done
  for pattern in python node; do
    run "smooth-5000 $pattern" "$which" "$which" "$pattern" smooth --rate=5000 --duration=$smooth_duration
  done
done

# ---------------------------------------------------- 3. lateness at 1,000/s
for which in "${whiches[@]}"; do
  # shellcheck disable=SC2086
  run "lateness-1000 tank" "$which" own tank smooth --rate=1000 --duration=$lateness_duration \
    --grant_log_lateness --server_flags="--log_level=warning $([[ $which == after ]] && echo "${SERVER_FLAGS:-}")"
done

# ---------------------------------------------------- 4. memory per open stream
echo "memory (load average $(load))"
limits="--max_streams=100000 --max_streams_per_client=100000"
idle_patterns=(stream)
((acquire)) && idle_patterns+=(acquire)
for pattern in "${idle_patterns[@]}"; do
  for n in 1000 10000; do
    run "idle-$pattern-$n" after own "$pattern" - --idle --streams=$((n / 4)) \
      --server_flags="--log_level=warning $limits ${SERVER_FLAGS:-}"
  done
  run "idle-$pattern-10000 raw" after own "$pattern" - --idle --streams=2500 --server=raw --server_flags="--idle"
done
# Server channel arguments on the raw server's idle Acquire streams (AwaitFuel
# without Acquire), each against the plain raw run above.
idle_arg_pattern=acquire
((acquire)) || idle_arg_pattern=stream
for args in "--channel_args=grpc.minimal_stack=1" "--channel_args=grpc.http2.lookahead_bytes=1024" \
  "--max_receive_message_bytes=1024" "--resource_quota_mib=64" "--channel_args=grpc.http2.bdp_probe=0"; do
  run "idle-$idle_arg_pattern-10000 raw $args" after own "$idle_arg_pattern" - --idle --streams=2500 --server=raw \
    --server_flags="--idle $args"
done
if [[ -n $before_dir ]]; then
  run "idle-stream-10000" before own stream - --idle --streams=2500 --server_flags="--log_level=warning $limits"
fi
seconds=$(($(date +%s) - begin))

# ------------------------------------------------------------ the report
alive=()
for s in raw after before; do
  [[ -n ${srv_pid[$s]:-} ]] || continue
  kill -0 "${srv_pid[$s]}" 2>/dev/null && alive+=("$s")
  kill -TERM "${srv_pid[$s]}" 2>/dev/null || true
done
server_warnings=$(grep -v 'event=transport ' "$tmp/after.log" | grep -c 'level=\(warning\|error\)' || true)
loads=$(awk '{print $2}' "$tmp/load" | sort -n | awk '{v[NR] = $1; s += $1} END {printf "%.2f / %.2f / %.2f (min / mean / max of %d samples)", v[1], s / NR, v[NR], NR}')
{
  echo "# The worker's own loop at stream speed: bench/acquire.sh ($(date -u +%Y-%m-%d), $(nproc) cores)"
  echo
  echo "Command: \`$([[ -n $before_dir ]] && echo "BEFORE_DIR=$before_dir ")bench/acquire.sh$( ((quick)) && echo ' --quick')$( ((acquire)) || echo ' --no-acquire')\`" \
    "($rounds round(s), $seconds s; commit $commit, binaries of $build$([[ -n $before_dir ]] && echo ", before: $before_dir");" \
    "gRPC $(pkg-config --modversion grpc++ 2>/dev/null || echo "?"), Python $(/usr/bin/python3 -c 'import grpc, sys; print(sys.version.split()[0], "grpcio", grpc.__version__)')," \
    "node $("$node" --version) @grpc/grpc-js $("$node" -p "require('$root/clients/node/node_modules/@grpc/grpc-js/package.json').version"))."
  echo "Load average before the run (the other users of the machine): $load_before; 1-minute" \
    "load average during the run (every 5 s; it includes the run's own server and 4 workers):" \
    "$loads; at the end $(load)."
  echo
  python3 "$root/bench/acquire_report.py" "$tmp/runs.jsonl"
  echo
  echo "Failed runs: $failed."
  if [[ -s "$tmp/failures" ]]; then
    echo
    sed 's/^/    /' "$tmp/failures"
  fi
  if [[ -s "$tmp/worker_error_lines" ]]; then
    echo
    echo "Worker calls that ended in an error (first of them):"
    echo
    sort "$tmp/worker_error_lines" | uniq -c | head -n 5 | sed 's/^/    /'
  fi
  echo
  echo "Servers alive at the end: ${alive[*]}; warning or error lines in the throttle_server's log: $server_warnings."
  echo
  echo "Every run (throttle_bench flags):"
  echo
  sed 's/^/    /' "$tmp/commands"
} >"$out"
mkdir -p bench/results
cp "$tmp/runs.jsonl" "bench/results/$name.jsonl"
mv "$out" "$results"
cat "$results"
echo "wrote $results and bench/results/$name.jsonl"
