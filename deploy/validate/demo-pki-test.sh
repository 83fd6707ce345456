#!/usr/bin/env bash
# The deployment's security files with the real binaries, no containers (a
# few seconds; ctest deploy_demo_pki):
#   demo-pki-test.sh THROTTLE_SERVER THROTTLECTL
# - throttle_server --check_policy accepts deploy/policy.conf;
# - deploy/make-demo-certs.sh makes a PKI whose certificates verify, with
#   the names the deployments dial; --renew keeps the CAs;
# - a server with the server certificate, deploy/policy.conf and
#   deploy/throttles.yaml (as deploy/k8s, compose and verify-image run it):
#   the controller lists through the names clients use (127.0.0.1,
#   dns:///localhost, a multi-address target with --tls_server_name=throttle),
#   the worker may not list or stop, the controller may not create, the
#   admin may, and neither no client certificate nor the servers' etcd
#   client certificate (another CA) gets in.
set -euo pipefail
server=${1:?usage: demo-pki-test.sh THROTTLE_SERVER THROTTLECTL}
ctl=${2:?usage: demo-pki-test.sh THROTTLE_SERVER THROTTLECTL}
deploy=$(cd "$(dirname "$0")/.." && pwd)
work=$(mktemp -d)
pid=
cleanup() {
  [[ -z $pid ]] || kill "$pid" 2>/dev/null || true
  [[ -z $pid ]] || wait "$pid" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT
fail() { echo "demo-pki-test: FAIL: $*" >&2; exit 1; }

"$server" --check_policy="$deploy/policy.conf" >/dev/null ||
  fail "throttle_server --check_policy rejects deploy/policy.conf"

certs=$work/certs
bash "$deploy/make-demo-certs.sh" "$certs" >/dev/null
for d in server worker controller admin etcd etcd-client; do
  openssl verify -CAfile "$certs/$d/ca.crt" "$certs/$d/tls.crt" >/dev/null ||
    fail "$d/tls.crt does not verify against $d/ca.crt"
done
sans=$(openssl x509 -noout -ext subjectAltName -in "$certs/server/tls.crt")
# With the separator: DNS:throttle, not DNS:throttle.default.
for name in "DNS:throttle," "DNS:throttle.default.svc," "DNS:localhost," "IP Address:127.0.0.1"; do
  grep -qF "$name" <<<"$sans" || fail "the server certificate lacks $name: $sans"
done
! openssl verify -CAfile "$certs/server/ca.crt" "$certs/etcd-client/tls.crt" \
  >/dev/null 2>&1 || fail "the etcd client certificate comes from the throttle CA"
old_ca=$(cat "$certs/ca.crt")
bash "$deploy/make-demo-certs.sh" --renew "$certs" >/dev/null
[[ $(cat "$certs/ca.crt") == "$old_ca" ]] || fail "--renew made a new CA"
openssl verify -CAfile <(echo "$old_ca") "$certs/server/tls.crt" >/dev/null ||
  fail "the renewed server certificate does not verify against the old CA"

"$server" --listen=127.0.0.1:0 --port_file="$work/port" \
  --config="$deploy/throttles.yaml" --policy="$deploy/policy.conf" \
  --tls_cert="$certs/server/tls.crt" --tls_key="$certs/server/tls.key" \
  --tls_client_ca="$certs/server/ca.crt" >"$work/server.log" 2>&1 &
pid=$!
for _ in $(seq 100); do
  [[ -s $work/port ]] && break
  kill -0 "$pid" 2>/dev/null || { cat "$work/server.log" >&2; fail "the server exited"; }
  sleep 0.05
done
port=$(cat "$work/port")
# as WHO ARGS...: throttlectl with WHO's certificate (anonymous: none).
as() {
  local who=$1 tls=(--tls_ca="$certs/ca.crt")
  shift
  [[ $who == anonymous ]] ||
    tls+=(--tls_cert="$certs/$who/tls.crt" --tls_key="$certs/$who/tls.key")
  "$ctl" "${tls[@]}" "$@"
}
# refused WANT WHO ARGS...: fails unless the call fails with WANT.
refused() {
  local want=$1 out
  shift
  if out=$(as "$@" 2>&1); then fail "as $1: ${*:2} succeeded, expected $want"; fi
  grep -q "$want" <<<"$out" || fail "as $1: ${*:2}: expected $want, got: $out"
}
for target in "127.0.0.1:$port" "dns:///localhost:$port"; do
  as controller --address="$target" list | grep -q '^crawl ' ||
    fail "the controller cannot list through $target"
done
# A multi-address target, the first address closed (as a standby's port;
# nothing listens on port 1).
multi="ipv4:127.0.0.1:1,127.0.0.1:$port"
as controller --address="$multi" --tls_server_name=throttle list | grep -q '^crawl ' ||
  fail "the controller cannot list through $multi with --tls_server_name=throttle"
refused PERMISSION_DENIED worker --address="127.0.0.1:$port" list
refused PERMISSION_DENIED worker --address="127.0.0.1:$port" stop crawl
refused PERMISSION_DENIED controller --address="127.0.0.1:$port" create demo-pki --max_n=1 --per=1
as admin --address="127.0.0.1:$port" create demo-pki --max_n=1 --per=1 >/dev/null ||
  fail "the admin cannot create"
refused UNAVAILABLE anonymous --address="127.0.0.1:$port" list
refused UNAVAILABLE etcd-client --address="127.0.0.1:$port" list
echo "demo-pki-test: deploy/policy.conf valid; make-demo-certs.sh certificates verify (and --renew keeps the CAs); worker, controller, admin get their roles from deploy/policy.conf over mTLS; no certificate or the etcd CA's: refused"
