# tests/integration/lib.sh: the prologue the shell integration tests share,
# sourced by each through its own directory:
#   source "$(dirname "$0")/lib.sh"
# It makes a fresh temporary directory $dir and an empty list $pids of the
# processes the test starts (append each with `pids+=($!)`); on exit, every
# one of them is ended and waited for and $dir is removed. It also defines
# fail, wait_for and free_port below, and start_etcd and start_ha_pair for
# the tests of a high-available pair.

dir=$(mktemp -d)
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$dir"
}
trap cleanup EXIT

# fail MESSAGE...: one line "FAIL: MESSAGE" on stderr, exit 1.
fail() { echo "FAIL: $*" >&2; exit 1; }

# wait_for SECONDS CMD...: polls CMD (its output discarded) every
# $wait_for_poll_seconds (0.2 unless the test sets it) until it succeeds;
# returns 1 if it still fails after SECONDS.
wait_for_poll_seconds=0.2
wait_for() {
  local deadline=$((SECONDS + $1)); shift
  until "$@" >/dev/null 2>&1; do
    ((SECONDS < deadline)) || return 1
    sleep "$wait_for_poll_seconds"
  done
}

# free_port: a free port of 127.0.0.1 (tiny race between probing and
# binding).
free_port() {
  /usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

# start_etcd: a real single-member etcd on free 127.0.0.1 ports, data in
# $dir/etcd, log in $dir/etcd.log; sets etcd_port once it is healthy (fails
# the test if it does not become so within 60 s). Needs etcd and curl.
start_etcd() {
  local peer_port
  etcd_port=$(free_port) peer_port=$(free_port)
  etcd --data-dir="$dir/etcd" --listen-client-urls="http://127.0.0.1:$etcd_port" \
    --advertise-client-urls="http://127.0.0.1:$etcd_port" \
    --listen-peer-urls="http://127.0.0.1:$peer_port" \
    --initial-advertise-peer-urls="http://127.0.0.1:$peer_port" \
    --initial-cluster="default=http://127.0.0.1:$peer_port" >"$dir/etcd.log" 2>&1 &
  pids+=($!)
  wait_for 60 curl -sf "http://127.0.0.1:$etcd_port/health" \
    || fail "etcd did not start: $(tail -20 "$dir/etcd.log")"
}

# start_ha_pair SERVER CLUSTER: two SERVER nodes of cluster CLUSTER on
# start_etcd's etcd (lease 2 s), each with throttle "work" (5/s) and its
# metrics port in http_ports[0] and [1], logs in $dir/node0.log and
# node1.log; once exactly one of them leads (by throttle_leader on their
# /metrics, within 120 s, or the test fails), sets leader and standby to
# their indexes.
start_ha_pair() {
  local server_bin=$1 cluster=$2 i
  http_ports=()
  for i in 0 1; do
    http_ports+=("$(free_port)")
    "$server_bin" --listen="127.0.0.1:$(free_port)" --metrics_listen="127.0.0.1:${http_ports[i]}" \
      --etcd_endpoints="127.0.0.1:$etcd_port" --cluster="$cluster" --lease_ttl=2s \
      --throttle="work max_n=5 per=1" 2>"$dir/node$i.log" &
    pids+=($!)
  done
  wait_for 120 _one_leads || fail "no leader and standby: $(_leading 0 || true) $(_leading 1 || true)
$(tail -5 "$dir"/node*.log)"
  if [[ "$(_leading 0)" == 1 ]]; then leader=0 standby=1; else leader=1 standby=0; fi
}
# _leading I: the throttle_leader value node I's /metrics shows.
_leading() {
  curl -sf "http://127.0.0.1:${http_ports[$1]}/metrics" | awk '$1 ~ /^throttle_leader[{]/ { print $2 }'
}
_one_leads() {
  local roles
  roles="$(_leading 0) $(_leading 1)"
  [[ "$roles" == "1 0" || "$roles" == "0 1" ]]
}
