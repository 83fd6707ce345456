#!/usr/bin/env bash
# The C++ programs against the real server over TLS: throttlectl with
# client certificates (mTLS) and a bearer token, given as flags and as
# THROTTLE_* variables (flags win), one clear line with the right exit
# status for each refusal; a test_worker and the tutorial over mTLS;
# throttlectl, a test_worker and the tutorial through a multi-address
# target (a closed port first, as a standby's) with --tls_server_name or
# THROTTLE_TLS_SERVER_NAME, which fails without it.
# Usage: tls_end_to_end_test.sh THROTTLE_SERVER THROTTLECTL TEST_WORKER
#          TUTORIAL MAKE_CERTS
set -euo pipefail
server_bin="$1" ctl="$2" worker_bin="$3" tutorial="$4" make_certs="$5"
source "$(dirname "$0")/lib.sh"
unset THROTTLE_ADDRESS THROTTLE_TLS_CA THROTTLE_TLS_CERT THROTTLE_TLS_KEY \
  THROTTLE_TOKEN THROTTLE_TOKEN_FILE THROTTLE_TLS_SERVER_NAME

pki="$dir/pki"
bash "$make_certs" "$pki"
token="deploy-$RANDOM$RANDOM$RANDOM"
echo "deployer $("$server_bin" --hash_token="$token")" >"$dir/tokens"
printf '%s\n' "$token" >"$dir/token"
cat >"$dir/policy" <<'EOF'
spiffe://throttle.test/worker      worker      crawl
spiffe://throttle.test/controller  controller  *
spiffe://throttle.test/admin       admin       *
token:deployer                     admin       *
EOF

# start NAME FLAGS...: a server on a free port, written to $dir/NAME.port.
start() {
  local name="$1"
  shift
  "$server_bin" --listen=127.0.0.1:0 --port_file="$dir/$name.port" \
    --policy="$dir/policy" --token_file="$dir/tokens" \
    --tls_cert="$pki/server.pem" --tls_key="$pki/server.key" "$@" \
    2>"$dir/$name.log" &
  pids+=($!)
  wait_for 30 test -s "$dir/$name.port" || fail "server $name did not start: $(cat "$dir/$name.log")"
}
start mtls --tls_client_ca="$pki/ca.pem"  # client certificates required
start tls                                  # server certificate only: tokens
port_mtls=$(cat "$dir/mtls.port")
mtls="--address=127.0.0.1:$port_mtls"
tls="--address=127.0.0.1:$(cat "$dir/tls.port")"
as() { echo "--tls_ca=$pki/ca.pem --tls_cert=$pki/$1.pem --tls_key=$pki/$1.key"; }

# expect CODE PATTERN ARGS...: throttlectl ARGS exits CODE and prints one
# line on stderr matching PATTERN.
expect() {
  local want="$1" pattern="$2" code=0
  shift 2
  "$ctl" "$@" >/dev/null 2>"$dir/err" || code=$?
  [[ $code == "$want" ]] || fail "$* exited $code, not $want: $(cat "$dir/err")"
  [[ $(wc -l <"$dir/err") == 1 ]] || fail "$*: not one line: $(cat "$dir/err")"
  grep -qE -- "$pattern" "$dir/err" || fail "$*: $(cat "$dir/err")"
}

# mTLS: each identity with its certificate, as flags.
# shellcheck disable=SC2046  # as() gives several words on purpose
"$ctl" "$mtls" $(as admin) create crawl --max_n=4 --per=1 >/dev/null
# shellcheck disable=SC2046
"$ctl" "$mtls" $(as controller) start crawl | grep -q running || fail "start"
# shellcheck disable=SC2046
"$ctl" "$mtls" $(as controller) list | grep -q '^crawl .*running' || fail "list"
# shellcheck disable=SC2046
expect 1 '^throttlectl: PERMISSION_DENIED: Stop on throttle "crawl" is not allowed for "spiffe://throttle.test/worker"' \
  "$mtls" $(as worker) stop crawl
# shellcheck disable=SC2046
expect 1 '^throttlectl: PERMISSION_DENIED: DeleteThrottle' \
  "$mtls" $(as controller) delete crawl
# The handshake refused: no certificate, another CA's, plaintext.
expect 1 '^throttlectl: UNAVAILABLE' "$mtls" --tls_ca="$pki/ca.pem" list
expect 1 '^throttlectl: UNAVAILABLE' "$mtls" --tls_ca="$pki/ca.pem" \
  --tls_cert="$pki/rogue.pem" --tls_key="$pki/rogue.key" list
expect 1 '^throttlectl: UNAVAILABLE' "$mtls" list
# Trusting another CA: gRPC also logs the failed handshake; still one line.
# shellcheck disable=SC2046
expect 1 '^throttlectl: UNAVAILABLE: .*certificate verify failed' \
  "$mtls" $(as admin) --tls_ca="$pki/rogue-ca.pem" list

# The same through the environment; a flag overrides its variable.
(
  export THROTTLE_ADDRESS="127.0.0.1:$port_mtls" THROTTLE_TLS_CA="$pki/ca.pem"
  export THROTTLE_TLS_CERT="$pki/controller.pem" THROTTLE_TLS_KEY="$pki/controller.key"
  "$ctl" --json mean crawl | grep -q '"state":"STATE_RUNNING"' || fail "env mean"
  "$ctl" --tls_cert="$pki/admin.pem" --tls_key="$pki/admin.key" \
    create api --max_n=1 --per=1 >/dev/null || fail "flags over env"
  expect 1 'PERMISSION_DENIED: DeleteThrottle' delete api
)

# A multi-address target, as with high availability: gRPC checks the
# server's certificate against the whole target ("Peer name A,B is not in
# peer certificate") unless --tls_server_name gives a name of it
# (server.pem: IP 127.0.0.1, DNS localhost). The first address is a port
# nothing listens on (that of a server started and stopped), as a
# standby's: pick_first passes on to the second.
start gone
port_gone=$(cat "$dir/gone.port")
kill "${pids[-1]}"
wait "${pids[-1]}" 2>/dev/null || true
addresses="127.0.0.1:$port_gone,127.0.0.1:$port_mtls"
multi="--address=ipv4:$addresses"
# shellcheck disable=SC2046
expect 1 "^throttlectl: UNAVAILABLE: .*Peer name $addresses is not in peer certificate" \
  "$multi" $(as controller) list
# shellcheck disable=SC2046
"$ctl" "$multi" $(as controller) --tls_server_name=localhost list |
  grep -q '^crawl .*running' || fail "list with --tls_server_name=localhost"
# shellcheck disable=SC2046
"$ctl" "$multi" $(as controller) --tls_server_name=127.0.0.1 list |
  grep -q '^crawl .*running' || fail "list with --tls_server_name=127.0.0.1"
# shellcheck disable=SC2046
THROTTLE_TLS_SERVER_NAME=localhost "$ctl" "$multi" $(as controller) list |
  grep -q '^crawl .*running' || fail "list with THROTTLE_TLS_SERVER_NAME"
# A name the certificate does not hold is refused as the target was; the
# flag wins over the variable.
# shellcheck disable=SC2046
expect 1 '^throttlectl: UNAVAILABLE: .*Peer name throttle.example is not in peer certificate' \
  "$multi" $(as controller) --tls_server_name=throttle.example list
# shellcheck disable=SC2046
THROTTLE_TLS_SERVER_NAME=throttle.example "$ctl" "$multi" $(as controller) \
  --tls_server_name=localhost list >/dev/null || fail "--tls_server_name over the variable"
# Refused before any call: without TLS, and a list of names.
expect 2 '^throttlectl: server_name \(--tls_server_name, THROTTLE_TLS_SERVER_NAME\): the name .* needs TLS' \
  "$multi" --tls_server_name=localhost list
# shellcheck disable=SC2046
expect 2 '^throttlectl: server_name \(--tls_server_name, THROTTLE_TLS_SERVER_NAME\): "127.0.0.1,localhost": one name, not a list' \
  "$multi" $(as controller) --tls_server_name=127.0.0.1,localhost list

# A worker over mTLS gets fuel until the throttle stops, one through the
# multi-address target too; one with a bad option says so before "ready".
: >"$dir/worker.out"
: >"$dir/worker2.out"
# shellcheck disable=SC2046
"$worker_bin" --address=127.0.0.1:"$port_mtls" --throttle=crawl \
  --worker_id=w1 $(as worker) >"$dir/worker.out" &
worker=$!
pids+=("$worker")
# shellcheck disable=SC2046
"$worker_bin" "$multi" --throttle=crawl --worker_id=w2 $(as worker) \
  --tls_server_name=localhost >"$dir/worker2.out" &
worker2=$!
pids+=("$worker2")
for out in worker worker2; do
  for _ in $(seq 300); do grep -q '^fuel' "$dir/$out.out" && break; sleep 0.1; done
  grep -q '^fuel' "$dir/$out.out" || fail "$out: $(cat "$dir/$out.out")"
done
# shellcheck disable=SC2046
"$ctl" "$mtls" $(as controller) stop crawl >/dev/null
wait "$worker" || fail "worker exited $?: $(tail -1 "$dir/worker.out")"
[[ $(tail -1 "$dir/worker.out") == stopped ]] || fail "worker: $(tail -1 "$dir/worker.out")"
wait "$worker2" || fail "worker2 exited $?: $(tail -1 "$dir/worker2.out")"
[[ $(tail -1 "$dir/worker2.out") == stopped ]] || fail "worker2: $(tail -1 "$dir/worker2.out")"
code=0
"$worker_bin" --address=127.0.0.1:"$port_mtls" --throttle=crawl \
  --tls_cert="$pki/worker.pem" >"$dir/worker.out" || code=$?
if [[ $code != 1 ]] ||
  ! grep -q '^error INVALID_ARGUMENT: key_file (--tls_key' "$dir/worker.out"; then
  fail "worker without key: $code $(cat "$dir/worker.out")"
fi

# The tutorial on the mTLS server: the admin creates the throttle, the
# workers it starts inherit the flags.
# shellcheck disable=SC2046
"$tutorial" --address=127.0.0.1:"$port_mtls" $(as admin) --workers=2 \
  --run=1s >"$dir/tutorial.out" 2>"$dir/tutorial.err" ||
  fail "tutorial: $(cat "$dir/tutorial.err")"
grep -q '^Total: [1-9]' "$dir/tutorial.out" || fail "tutorial: $(cat "$dir/tutorial.out")"
# Through the multi-address target, the name from the environment (which
# the workers inherit).
# shellcheck disable=SC2046
THROTTLE_TLS_SERVER_NAME=localhost "$tutorial" "$multi" $(as admin) --workers=2 \
  --run=1s >"$dir/tutorial.out" 2>"$dir/tutorial.err" ||
  fail "tutorial through $multi: $(cat "$dir/tutorial.err")"
grep -q '^Total: [1-9]' "$dir/tutorial.out" || fail "tutorial: $(cat "$dir/tutorial.out")"

# Tokens over TLS, on the second server: as a file, the variable, a flag.
ca="--tls_ca=$pki/ca.pem"
"$ctl" "$tls" "$ca" --token_file="$dir/token" create api --max_n=1 --per=1 |
  grep -q '^Name: api' || fail "create with --token_file"
THROTTLE_TOKEN="$token" "$ctl" "$tls" "$ca" start api |
  grep -q running || fail "start with THROTTLE_TOKEN"
THROTTLE_TLS_CA="$pki/ca.pem" THROTTLE_TOKEN_FILE="$dir/token" "$ctl" "$tls" list |
  grep -q '^api .*running' || fail "list with THROTTLE_TOKEN_FILE"
"$ctl" "$tls" "$ca" --token="$token" stop api |
  grep -q '^Total: ' || fail "stop with --token"
THROTTLE_TOKEN=wrong "$ctl" "$tls" "$ca" --token_file="$dir/token" delete api |
  grep -q '^Deleted api' || fail "--token_file over THROTTLE_TOKEN"
expect 1 '^throttlectl: UNAUTHENTICATED: .*token' \
  "$tls" --tls_ca="$pki/ca.pem" --token=wrong list
expect 1 '^throttlectl: UNAUTHENTICATED' "$tls" --tls_ca="$pki/ca.pem" list

# Refused before any call: exit 2 naming the option.
expect 2 '^throttlectl: token \(--token, THROTTLE_TOKEN\): a bearer token is sent over TLS only' \
  "$tls" --token="$token" list
expect 2 '^throttlectl: token_file \(--token_file, THROTTLE_TOKEN_FILE\): cannot read' \
  "$tls" --tls_ca="$pki/ca.pem" --token_file="$dir/missing" list
expect 2 '^throttlectl: key_file \(--tls_key, THROTTLE_TLS_KEY\): missing' \
  "$mtls" --tls_ca="$pki/ca.pem" --tls_cert="$pki/admin.pem" list
expect 2 '^throttlectl: --tls_ca is empty' "$mtls" --tls_ca= list
# The token never shows in an error.
expect 1 'UNAUTHENTICATED' "$tls" --tls_ca="$pki/ca.pem" --token=wrong-"$token" list
grep -qF -- "$token" "$dir/err" && fail "the token is printed: $(cat "$dir/err")"
echo "tls_end_to_end_test: OK"
