#!/usr/bin/env bash
# The metrics endpoint scraped by a real Prometheus (Debian's package):
# starts throttle_server with --metrics_listen=127.0.0.1:0 and
# --metrics_max_workers_per_throttle=2, makes three Acquire workers take
# some grants and one raw AwaitFuel call take 3, makes a call fail
# (NOT_FOUND), stops the throttle, then checks the raw exposition with
# `promtool check metrics` and check_scrape.py (grpc_server_* by method,
# type and code; process_*; throttle_build_info; lateness by throttle;
# grants per worker capped at 2 plus "other"), checks that every query of
# the Grafana dashboard (deploy/monitoring) names a metric of this scrape,
# then starts Prometheus on 127.0.0.1 with a scrape config pointing at the
# server and queries throttle_grants_total over its HTTP API.
# Usage: prometheus_test.sh THROTTLE_SERVER TEST_WORKER THROTTLECTL VERSION
set -euo pipefail
server_bin="$1" worker_bin="$2" ctl_bin="$3" version="$4"
here=$(cd "$(dirname "$0")" && pwd)
dashboard="$here/../../deploy/monitoring/throttle-dashboard.json"
for tool in prometheus promtool curl; do
  command -v "$tool" >/dev/null || { echo "missing $tool (scripts/setup.sh installs it)" >&2; exit 1; }
done
source "$here/lib.sh"
wait_for_poll_seconds=0.1

"$server_bin" --listen=127.0.0.1:0 --metrics_listen=127.0.0.1:0 \
  --port_file="$dir/port" --throttle="work max_n=50 per=1" \
  --metrics_max_workers_per_throttle=2 2>"$dir/server.log" &
pids+=($!)
wait_for 30 test -s "$dir/port" || { cat "$dir/server.log"; exit 1; }
port=$(cat "$dir/port")
metrics_port=$(sed -n 's/.*event=server_serving.* metrics_port=\([0-9]*\).*/\1/p' "$dir/server.log")
[[ -n "$metrics_port" && "$metrics_port" != 0 ]] || { echo "no metrics port" >&2; cat "$dir/server.log"; exit 1; }
address="127.0.0.1:$port"

for w in w x y; do
  "$worker_bin" --address="$address" --throttle=work --worker_id=$w >"$dir/worker.$w" &
  pids+=($!)
done
"$ctl_bin" --address="$address" start work
workers_have_fuel() {
  for w in w x y; do (($(grep -c '^fuel$' "$dir/worker.$w") >= 5)) || return 1; done
}
wait_for 60 workers_have_fuel
# The server-streaming RPC, to its end (count reached: OK).
timeout 60 "$worker_bin" --address="$address" --throttle=work --worker_id=raw \
  --await_fuel=3 >"$dir/raw.out"
grep -q '^stopped$' "$dir/raw.out" || { cat "$dir/raw.out" >&2; exit 1; }
# An error, for throttle_rpc_errors_total and grpc_server_handled_total.
"$ctl_bin" --address="$address" start nope 2>/dev/null && exit 1
# Stopped, every worker's stream ends: the counts stand still for the scrape.
"$ctl_bin" --address="$address" stop work >/dev/null
workers_stopped() {
  for w in w x y; do grep -q '^stopped$' "$dir/worker.$w" || return 1; done
}
wait_for 60 workers_stopped

curl -sf "http://127.0.0.1:$metrics_port/metrics" >"$dir/metrics.txt"
promtool check metrics <"$dir/metrics.txt"
for name in throttle_grants_total throttle_waiting_streams throttle_open_streams \
  throttle_configured_rate throttle_current_rate throttle_achieved_rate throttle_grant_lateness_seconds_bucket \
  throttle_starts_total throttle_stops_total throttle_rpc_errors_total throttle_info; do
  grep -q "^$name" "$dir/metrics.txt" || { echo "missing metric $name" >&2; exit 1; }
done
grep -q 'throttle_rpc_errors_total{code="NOT_FOUND",method="Start"} 1' "$dir/metrics.txt" \
  || { echo "the NOT_FOUND error is not counted" >&2; grep rpc_errors "$dir/metrics.txt" >&2; exit 1; }
/usr/bin/python3 "$here/check_scrape.py" "$dir/metrics.txt" "$version" 2 \
  || { cat "$dir/metrics.txt" >&2; exit 1; }
/usr/bin/python3 "$here/check_dashboard.py" "$dashboard" "$dir/metrics.txt"

# A free port for Prometheus (tiny race between probing and binding).
prom_port=$(/usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
cat >"$dir/prometheus.yml" <<YAML
global:
  scrape_interval: 1s
scrape_configs:
  - job_name: throttle
    static_configs:
      - targets: ["127.0.0.1:$metrics_port"]
YAML
promtool check config "$dir/prometheus.yml" >/dev/null
prometheus --config.file="$dir/prometheus.yml" --storage.tsdb.path="$dir/tsdb" \
  --web.listen-address="127.0.0.1:$prom_port" 2>"$dir/prometheus.log" &
pids+=($!)

query() {
  curl -sf "http://127.0.0.1:$prom_port/api/v1/query" \
    --data-urlencode 'query=throttle_grants_total{throttle="work"}' >"$dir/query.json" &&
    grep -q '"status":"success"' "$dir/query.json" &&
    grep -q '"throttle":"work"' "$dir/query.json"
}
if ! wait_for 90 query; then
  echo "Prometheus never returned throttle_grants_total" >&2
  tail -20 "$dir/prometheus.log" >&2
  exit 1
fi
value=$(/usr/bin/python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["data"]["result"][0]["value"][1])' "$dir/query.json")
echo "Prometheus scraped throttle_grants_total{throttle=\"work\"} = $value"
/usr/bin/python3 -c 'import sys; sys.exit(0 if float(sys.argv[1]) >= 5 else 1)' "$value"
echo "prometheus_test: OK"
