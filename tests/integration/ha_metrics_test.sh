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

start_etcd
start_ha_pair "$server_bin" ha_metrics

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
