#!/usr/bin/env bash
# The always-on metrics port under high availability: a real etcd and two
# real throttle_server nodes of one cluster. An operator scrapes both, so
# the standby's /metrics has the process's metrics (process_*) and
# throttle_build_info as the leader's has, each exactly once, next to the
# election's throttle_leader (0 on the standby, 1 on the leader). Waits are
# on conditions with generous deadlines.
# Usage: ha_metrics_test.sh THROTTLE_SERVER VERSION
set -euo pipefail
server_bin="$1" version="$2"
here=$(cd "$(dirname "$0")" && pwd)
for tool in etcd curl; do
  command -v "$tool" >/dev/null || { echo "missing $tool (scripts/setup.sh installs it)" >&2; exit 1; }
done
source "$here/lib.sh"

etcd_port=$(free_port) peer_port=$(free_port)
etcd --data-dir="$dir/etcd" --listen-client-urls="http://127.0.0.1:$etcd_port" \
  --advertise-client-urls="http://127.0.0.1:$etcd_port" \
  --listen-peer-urls="http://127.0.0.1:$peer_port" \
  --initial-advertise-peer-urls="http://127.0.0.1:$peer_port" \
  --initial-cluster="default=http://127.0.0.1:$peer_port" >"$dir/etcd.log" 2>&1 &
pids+=($!)
wait_for 60 curl -sf "http://127.0.0.1:$etcd_port/health" \
  || fail "etcd did not start: $(tail -20 "$dir/etcd.log")"

http_ports=()
for i in 0 1; do
  http_ports+=("$(free_port)")
  "$server_bin" --listen="127.0.0.1:$(free_port)" --metrics_listen="127.0.0.1:${http_ports[i]}" \
    --etcd_endpoints="127.0.0.1:$etcd_port" --cluster=ha_metrics --lease_ttl=2s \
    --throttle="work max_n=5 per=1" 2>"$dir/node$i.log" &
  pids+=($!)
done
# leading I: the throttle_leader value node I's /metrics shows.
leading() {
  curl -sf "http://127.0.0.1:${http_ports[$1]}/metrics" | awk '$1 ~ /^throttle_leader[{]/ { print $2 }'
}
one_leads() {
  local roles="$(leading 0) $(leading 1)"
  [[ "$roles" == "1 0" || "$roles" == "0 1" ]]
}
wait_for 120 one_leads || fail "no leader and standby: $(leading 0 || true) $(leading 1 || true)
$(tail -5 "$dir"/node*.log)"
if [[ "$(leading 0)" == 1 ]]; then leader=0 standby=1; else leader=1 standby=0; fi

for role in standby leader; do
  curl -sf "http://127.0.0.1:${http_ports[${!role}]}/metrics" >"$dir/$role.txt" \
    || fail "cannot scrape the $role"
  for series in process_cpu_seconds_total process_resident_memory_bytes \
                process_open_fds process_start_time_seconds \
                "throttle_build_info{version=\"$version\"}"; do
    n=$(awk -v s="$series" '$1 == s' "$dir/$role.txt" | wc -l)
    [[ "$n" == 1 ]] || fail "the $role's /metrics has $n lines of $series, want 1:
$(grep -v '^#' "$dir/$role.txt" | cut -d' ' -f1 | sort | uniq -c)"
  done
  echo "ok   the $role's /metrics has process_* and throttle_build_info once"
done
# The leader's throttles are on its port only.
grep -q '^throttle_info{.*throttle="work"' "$dir/leader.txt" || fail "the leader does not expose work"
! grep -q '^throttle_info{' "$dir/standby.txt" || fail "the standby exposes throttles"
echo "ha_metrics_test: OK"
