#!/usr/bin/env bash
# Graceful degradation (issue 14, part 3) through a server kill, measured:
# a real throttle_server with --state_dir, one throttle of 200/s with
# degradation=local_share for 20 s, 4 real worker processes
# (tests/test_worker, the C++ client library's loop) recording each
# grant's time. The server is killed (SIGKILL) at t=5 s and restarted on
# the same port at t=12 s; the run ends at t=22 s (the workers are back
# on the server within about a second: docs/DECISIONS.md, "Reconnecting
# after an outage"). Prints the summed rate
# before, during and after the outage and writes the plot
# bench/results/degrade.svg (bench/degrade_report.py, standard library
# only) and bench/results/degrade.md.
#   bench/degrade.sh            the benchmark (about 20 s)
#   bench/degrade.sh --check    a shorter run (kill at 3 s, restart at 6 s,
#                               end at 16 s) into a temporary directory that
#                               fails unless the outage stayed within the
#                               fleet's rate (+ 2 grants per worker) and
#                               above zero, the grants in any 2 s from the
#                               restart on stayed within it (+ 2% + 2 per
#                               worker), the restarted server granted again
#                               and every worker saw the final stop
#                               (CTest degrade_benchmark_check)
#   BUILD_DIR=build-x bench/degrade.sh   binaries of another build
# Everything listens on 127.0.0.1; every process is stopped on any exit.
set -euo pipefail
cd "$(dirname "$0")/.."
build="${BUILD_DIR:-build}"
server_bin="$build/server/throttle_server"
worker_bin="$build/tests/test_worker"
ctl="$build/cli/throttlectl"
check=0
[[ "${1:-}" == "--check" ]] && check=1
rate=200 workers=4
if ((check)); then
  kill_at=3 restart_at=6 end_at=16
else
  kill_at=5 restart_at=12 end_at=22
fi
spec="degrade max_n=$rate per=1 degradation=local_share local_share_for=20s"
tmp="$(mktemp -d /tmp/throttle_degrade.XXXXXX)"
server_pid="" worker_pids=()
cleanup() {
  [[ -n "$server_pid" ]] && kill -9 "$server_pid" 2>/dev/null || true
  for pid in "${worker_pids[@]}"; do kill -9 "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  [[ -n "${KEEP_TMP:-}" ]] && echo "kept $tmp" >&2 || rm -rf "$tmp"
}
trap cleanup EXIT
mono() { python3 -c 'import time; print(time.monotonic_ns())'; }
# Starts the server on port $1 (0: any) and waits for its port file.
serve() {
  rm -f "$tmp/port"
  "$server_bin" --listen="127.0.0.1:$1" --port_file="$tmp/port" \
    --state_dir="$tmp/state" --throttle="$spec" >>"$tmp/server.log" 2>&1 &
  server_pid=$!
  for _ in $(seq 600); do
    [[ -s "$tmp/port" ]] && break
    sleep 0.05
  done
  [[ -s "$tmp/port" ]] || { echo "server did not start" >&2; cat "$tmp/server.log" >&2; exit 1; }
  port="$(cat "$tmp/port")"
}
serve 0
for i in $(seq 0 $((workers - 1))); do
  "$worker_bin" --address="127.0.0.1:$port" --throttle=degrade \
    --worker_id="w$i" --grant_times="$tmp/w$i.times" >"$tmp/w$i.out" 2>&1 &
  worker_pids+=($!)
done
"$ctl" --address="127.0.0.1:$port" start degrade >/dev/null
start="$(mono)"
sleep "$kill_at"
kill -9 "$server_pid"
wait "$server_pid" 2>/dev/null || true
server_pid=""
kill="$(mono)"
sleep $((restart_at - kill_at))
serve "$port"
restart="$(mono)"
emissions() {
  "$ctl" --address="127.0.0.1:$port" --json mean degrade |
    python3 -c 'import json, sys; m = json.load(sys.stdin); print(int(m.get("totalEmissions", m.get("total_emissions", 0))))'
}
at_restart="$(emissions)"
sleep $((end_at - restart_at))
end="$(mono)"
server_after=$(($(emissions) - at_restart))
"$ctl" --address="127.0.0.1:$port" stop degrade >/dev/null
for pid in "${worker_pids[@]}"; do wait "$pid" || true; done
worker_pids=()
unstopped=0
for i in $(seq 0 $((workers - 1))); do
  last="$(tail -n 1 "$tmp/w$i.out")"
  [[ "$last" == "stopped" ]] || { echo "worker w$i ended with: $last" >&2; unstopped=$((unstopped + 1)); }
done
echo "server grants after the restart: $server_after; workers that missed the stop: $unstopped"
files=()
for i in $(seq 0 $((workers - 1))); do files+=("$tmp/w$i.times"); done
if ((check)); then
  python3 bench/degrade_report.py --rate="$rate" --workers="$workers" \
    --start="$start" --kill="$kill" --restart="$restart" --end="$end" \
    --check "${files[@]}" || exit 1
  ((server_after > 0 && unstopped == 0)) || { echo "FAIL: the workers did not return to the server" >&2; exit 1; }
  exit 0
fi
mkdir -p bench/results
report="$(python3 bench/degrade_report.py --rate="$rate" --workers="$workers" \
  --start="$start" --kill="$kill" --restart="$restart" --end="$end" \
  --svg=bench/results/degrade.svg "${files[@]}")"
echo "$report"
{
  echo "# bench/degrade.sh ($(date -u +%Y-%m-%d), $(nproc) cores)"
  echo
  echo "Throttle: $spec; $workers worker processes; server killed (SIGKILL)"
  echo "at ${kill_at} s, restarted at ${restart_at} s, run ended at ${end_at} s."
  echo
  echo '```'
  echo "$report"
  echo "server grants after the restart: $server_after"
  echo '```'
} >bench/results/degrade.md
