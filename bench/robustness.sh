#!/usr/bin/env bash
# What hostile or unlucky clients do to a real server (issue 8), measured
# and reported, never asserted (the regression tests assert the behaviour).
# Writes bench/results/robustness.md.
#   bench/robustness.sh            every scenario (about 6 minutes)
#   SOAK=10m bench/robustness.sh   a longer churn soak (default 2m)
# Every server listens on 127.0.0.1 and is stopped by the script.
set -euo pipefail
cd "$(dirname "$0")/.."
build="${BUILD_DIR:-build}"
server_bin="$build/server/throttle_server"
ctl="$build/cli/throttlectl"
hostile="$build/bench/hostile_client"
bench="$build/bench/throttle_bench"
soak="${SOAK:-2m}"
out=bench/results/robustness.md
tmp=$(mktemp -d)
pid=""
cleanup() {
  [[ -n "$pid" ]] && kill -9 "$pid" 2>/dev/null || true
  rm -rf "$tmp"
}
trap cleanup EXIT

start_server() {  # start_server FLAGS...: sets pid and addr
  rm -f "$tmp/port"
  "$server_bin" --listen=127.0.0.1:0 --port_file="$tmp/port" \
    --log_level=warning "$@" 2>"$tmp/server.log" &
  pid=$!
  for _ in $(seq 1 600); do [[ -s "$tmp/port" ]] && break; sleep 0.1; done
  addr="127.0.0.1:$(cat "$tmp/port")"
}
stop_server() {  # seconds from SIGTERM to exit (or "hung")
  local begin end
  begin=$(date +%s.%N)
  kill -TERM "$pid"
  for _ in $(seq 1 300); do
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
  done
  if kill -0 "$pid" 2>/dev/null; then
    kill -9 "$pid"; wait "$pid" 2>/dev/null || true; pid=""
    echo "hung (killed after 30 s)"; return
  fi
  wait "$pid" 2>/dev/null || true
  pid=""
  end=$(date +%s.%N)
  python3 -c "print(f'{$end - $begin:.2f} s')"
}
cpu_ticks() { awk '{print $14 + $15}' "/proc/$pid/stat"; }
rss_mib() { awk '/VmRSS/ {printf "%.1f", $2 / 1024}' "/proc/$pid/status"; }
# The slowest of N `throttlectl list` calls over a few seconds, in ms.
slowest_list_ms() {
  local worst=0 t0 t1 ms
  for _ in $(seq 1 "$1"); do
    t0=$(date +%s%N)
    "$ctl" --address="$addr" list >/dev/null
    t1=$(date +%s%N)
    ms=$(((t1 - t0) / 1000000))
    ((ms > worst)) && worst=$ms
    sleep 0.1
  done
  echo "$worst"
}
total() { "$ctl" --address="$addr" --json mean "$1" |
  python3 -c 'import json,sys; print(json.load(sys.stdin)["total_emissions"])'; }

{
  echo "# Robustness measurements ($(date -u +%Y-%m-%d), $(nproc) cores)"
  echo
  echo "Command: \`bench/robustness.sh\` (SOAK=$soak)."
  echo
  echo "| defect | scenario | measured |"
  echo "|---|---|---|"
} >"$out"
row() { echo "| $1 | $2 | $3 |" | tee -a "$out"; }

# 1. Failing AwaitFuel calls cancelled at once.
start_server --throttle="bench max_n=10 per=1"
calls=$("$hostile" --address="$addr" --mode=cancel_bad --duration=10s)
alive=$(kill -0 "$pid" 2>/dev/null && echo "server alive" || echo "server DIED")
row 1 "10 s of failing AwaitFuel calls cancelled at once (4 threads)" \
  "$alive after ${calls#*calls=} calls"
# 2. SIGTERM after clients cancelled busy streams.
"$ctl" --address="$addr" create busy --max_n=1 --per=1 --mode=monitor-only >/dev/null
"$ctl" --address="$addr" start busy >/dev/null
"$hostile" --address="$addr" --throttle=busy --mode=churn --rate=300 --duration=10s >/dev/null
row 2 "SIGTERM after 3,000 busy monitor-only streams were cancelled" \
  "exit after $(stop_server)"

# 3. One valid throttle must not stall the others.
start_server --throttle="bench max_n=10 per=1"
"$ctl" --address="$addr" create burst --max_n=10000000 --per=1 --mode=bucket --burst=1000000000 >/dev/null
"$ctl" --address="$addr" start burst >/dev/null
"$hostile" --address="$addr" --throttle=burst --mode=readers --streams=1 --duration=4s >"$tmp/r" &
reader=$!
sleep 0.5
worst=$(slowest_list_ms 20)
wait "$reader"
row 3 "bucket burst 1e9, one waiting stream: slowest ListThrottles" "${worst} ms"
"$ctl" --address="$addr" create idle --max_n=10000000 --per=1 --mode=unbounded >/dev/null
"$ctl" --address="$addr" start idle >/dev/null
sleep 10
"$hostile" --address="$addr" --throttle=idle --mode=readers --streams=1 --duration=3s >"$tmp/r" &
reader=$!
sleep 0.2
worst=$(slowest_list_ms 15)
wait "$reader"
row 3 "unbounded 1e7/s idle 10 s, then a stream: slowest ListThrottles" "${worst} ms"
stop_server >/dev/null

# 4. Totals do not overflow.
start_server --throttle="m max_n=1 per=1 mode=monitor-only"
"$ctl" --address="$addr" start m >/dev/null
"$hostile" --address="$addr" --throttle=m --mode=readers --streams=2 --duration=1s >/dev/null
row 4 "total of a monitor-only throttle after two count=0 streams for 1 s" "$(total m)"
stop_server >/dev/null

# 5. 100,000 idle throttles beside one busy one at 1,000/s.
python3 -c 'print("\n".join(f"idle{i} max_n=10 per=1" for i in range(100000)))' >"$tmp/idle.conf"
for idle in 0 100000; do
  conf=()
  ((idle)) && conf=(--config="$tmp/idle.conf")
  start_server --throttle="busy max_n=1000 per=1" "${conf[@]}"
  "$ctl" --address="$addr" start busy >/dev/null
  "$hostile" --address="$addr" --throttle=busy --mode=readers --streams=1 --duration=12s >/dev/null &
  reader=$!
  sleep 1
  c0=$(cpu_ticks); t0=$(date +%s.%N)
  sleep 10
  c1=$(cpu_ticks); t1=$(date +%s.%N)
  wait "$reader"
  cpu=$(python3 -c "print(f'{($c1 - $c0) / $(getconf CLK_TCK) / ($t1 - $t0) * 100:.1f}')")
  row 5 "server CPU, one busy throttle at 1,000/s, $idle idle throttles" "${cpu} %"
  stop_server >/dev/null
done

# 6. A stream that stops reading, beside 3 that read, at 10,000/s.
start_server --throttle="bench max_n=10000 per=1"
"$ctl" --address="$addr" start bench >/dev/null
"$hostile" --address="$addr" --mode=stuck --duration=22s >/dev/null &
stuck=$!
sleep 0.5
readers=$("$hostile" --address="$addr" --mode=readers --streams=3 --duration=20s)
wait "$stuck"
sum=$(python3 -c "print(sum(int(x) for x in '${readers#*grants=}'.split(',')))")
all=$(total bench)
row 6 "grants taken by a stream that never reads, beside 3 readers, 20 s at 10,000/s" \
  "$((all - sum)) of $all; readers ${readers#*grants=}"
stop_server >/dev/null

# Churn soak: open and cancel 300 streams per second, RSS sampled.
start_server --throttle="bench max_n=1000 per=1"
"$ctl" --address="$addr" start bench >/dev/null
secs=$(python3 -c "
import re; m = re.fullmatch(r'(\d+)([sm])', '$soak'); print(int(m[1]) * (60 if m[2] == 'm' else 1))")
"$hostile" --address="$addr" --mode=churn --rate=300 --duration="${secs}s" >"$tmp/churn" &
churn=$!
samples=()
for ((i = 0; i <= secs; i += secs / 6)); do
  samples+=("$(rss_mib)")
  sleep $((secs / 6))
done
wait "$churn"
row soak "churn: $(cut -d' ' -f2 "$tmp/churn") streams opened and cancelled over $soak (300/s)" \
  "RSS MiB every $((secs / 6)) s: ${samples[*]}; SIGTERM exit after $(stop_server)"

# 20,000 streams sharing 20,000/s (about 10 grants each).
line=$("$bench" --mode=smooth --rate=20000 --pattern=stream --workers=4 --streams=5000 --duration=10s 2>/dev/null | head -n 1)
row scale "20,000 streams sharing 20,000/s for 10 s (throttle_bench)" "$line"
echo "wrote $out"
