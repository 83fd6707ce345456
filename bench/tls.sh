#!/usr/bin/env bash
# The cost of TLS on the grant path (issue 11), measured and reported, never
# asserted. Writes bench/results/tls.md.
#   bench/tls.sh           3 rounds (about 7 minutes)
#   bench/tls.sh --quick   1 round of 2 s runs (about 1.5 minutes)
#   BUILD_DIR=build-x bench/tls.sh   binaries of another build (default build)
#   KEEP_TMP=1 bench/tls.sh          keep the PKI, the server logs and the runs
# Needs openssl (tests/support/make_certs.sh) and python3.
#
# What it does, all on 127.0.0.1, every server stopped by the script on any
# exit: makes a throwaway PKI (tests/support/make_certs.sh), starts one
# raw_ceiling_server (plaintext: the transport's ceiling) and five
# throttle_servers that differ only in their transport security:
#   plaintext     no flags
#   tls           --tls_cert --tls_key
#   mtls          ... --tls_client_ca (workers present worker.pem)
#   mtls+policy   ... --policy (the worker's SPIFFE ID may AwaitFuel on the
#                 bench throttle; the coordinator is admin.pem, role admin)
#   tls+token     --tls_cert --tls_key --policy --token_file (no client
#                 certificates: the workers send a bearer token whose
#                 identity the policy names)
# and, in each round, runs throttle_bench --address=... --server_pid=...
# with 4 worker processes of one caller each against each server in turn
# (the order rotated from round to round), for
#   stream   one long AwaitFuel(count 0) per caller, one grant per message
#   call     one AwaitFuel(count 1) per grant on the worker's one connection
#            (what the client library's Tank does)
#   connect  one AwaitFuel(count 1) per grant, each on a new connection: a
#            TCP connect and, with TLS, a full handshake per grant
# in monitor-only mode (grants as fast as the path takes them: the ceiling
# of the grant path) and, for stream and call, smooth at a fixed rate
# (the cost of a grant when the rate, not the path, is the bound). Grants/s
# and CPU per grant (utime + stime from /proc/PID/stat of the server, and of
# the 4 worker processes together, between the start and the stop of the
# measured window), each also as a ratio to the plaintext server's figure of
# the same round.
set -euo pipefail
cd "$(dirname "$0")/.."
build="${BUILD_DIR:-build}"
server_bin="$build/server/throttle_server"
raw_bin="$build/bench/raw_ceiling_server"
bench="$build/bench/throttle_bench"
results=bench/results/tls.md
quick=0
[[ "${1:-}" == "--quick" ]] && quick=1
if ((quick)); then
  rounds=1 duration=2s connect_duration=2s
else
  rounds=3 duration=4s connect_duration=3s
fi
rate=5000   # the smooth runs' fixed rate (grants/s)
for tool in openssl python3; do
  command -v "$tool" >/dev/null || { echo "tls.sh: needs $tool" >&2; exit 1; }
done
for bin in "$server_bin" "$raw_bin" "$bench"; do
  [[ -x "$bin" ]] || { echo "tls.sh: no $bin (BUILD_DIR=$build)" >&2; exit 1; }
done

tmp=$(mktemp -d)
out="$tmp/tls.md"  # moved to $results at the end: a run cut short keeps the last one
pids=()            # the servers, stopped on exit
cleanup() {
  for p in "${pids[@]}"; do kill -9 "$p" 2>/dev/null || true; done
  { wait; } 2>/dev/null || true
  if [[ -n "${KEEP_TMP:-}" ]]; then echo "tls.sh: kept $tmp" >&2; else rm -rf "$tmp"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM
load() { cut -d' ' -f1-3 /proc/loadavg; }

# ------------------------------------------------------------ the PKI
pki="$tmp/pki"
tests/support/make_certs.sh "$pki"
worker_token=$(openssl rand -hex 32)
admin_token=$(openssl rand -hex 32)
{
  echo "bench-worker $("$server_bin" --hash_token="$worker_token")"
  echo "bench-admin  $("$server_bin" --hash_token="$admin_token")"
} >"$pki/tokens"
cat >"$pki/policy" <<'EOF'
# IDENTITY                       ROLE    THROTTLES
spiffe://throttle.test/admin     admin   *
token:bench-admin                admin   *
spiffe://throttle.test/worker    worker  bench
token:bench-worker               worker  bench
EOF
"$server_bin" --check_policy="$pki/policy" >/dev/null

# ------------------------------------------------------------ the servers
tls=(--tls_cert="$pki/server.pem" --tls_key="$pki/server.key")
configs=(plaintext tls mtls mtls+policy tls+token)
declare -A server_flags=(
  [plaintext]=""
  [tls]="${tls[*]}"
  [mtls]="${tls[*]} --tls_client_ca=$pki/ca.pem"
  [mtls+policy]="${tls[*]} --tls_client_ca=$pki/ca.pem --policy=$pki/policy"
  [tls+token]="${tls[*]} --policy=$pki/policy --token_file=$pki/tokens"
)
# The workers' flags, and the coordinator's identity (it creates, starts
# and stops the throttle: admin under the policy).
declare -A client_flags=(
  [raw]=""
  [plaintext]=""
  [tls]="--tls_ca=$pki/ca.pem"
  [mtls]="--tls_ca=$pki/ca.pem --tls_cert=$pki/worker.pem --tls_key=$pki/worker.key --controller_tls_cert=$pki/admin.pem --controller_tls_key=$pki/admin.key"
  [mtls+policy]="--tls_ca=$pki/ca.pem --tls_cert=$pki/worker.pem --tls_key=$pki/worker.key --controller_tls_cert=$pki/admin.pem --controller_tls_key=$pki/admin.key"
  [tls+token]="--tls_ca=$pki/ca.pem --token=$worker_token --controller_token=$admin_token"
)
declare -A srv_pid srv_port
start_server() {  # start_server NAME BINARY FLAGS...
  local name=$1 bin=$2
  shift 2
  "$bin" --listen=127.0.0.1:0 --port_file="$tmp/$name.port" "$@" 2>"$tmp/$name.log" &
  srv_pid[$name]=$!
  pids+=($!)
  for _ in $(seq 1 300); do [[ -s "$tmp/$name.port" ]] && break; sleep 0.02; done
  [[ -s "$tmp/$name.port" ]] || { echo "tls.sh: $name did not start: $(cat "$tmp/$name.log")" >&2; exit 1; }
  srv_port[$name]=$(cat "$tmp/$name.port")
}
start_server raw "$raw_bin"
for c in "${configs[@]}"; do
  # shellcheck disable=SC2086  # the flags are words
  start_server "$c" "$server_bin" --log_level=warning ${server_flags[$c]}
done

# ------------------------------------------------------------ the runs
: >"$tmp/runs.jsonl"
failed=0
run() {  # run ROUND CONFIG PATTERN MODE
  local round=$1 config=$2 pattern=$3 mode=$4 d=$duration
  [[ $pattern == connect ]] && d=$connect_duration
  local flags=(--address="127.0.0.1:${srv_port[$config]}" --server_pid="${srv_pid[$config]}"
    --workers=4 --streams=1 --pattern="$pattern" --duration="$d" --label="$round $config")
  if [[ $config == raw ]]; then
    flags+=(--server=raw)
  else
    flags+=(--mode="$mode" --rate="$rate")
  fi
  # shellcheck disable=SC2206  # the flags are words
  flags+=(${client_flags[$config]})
  local json
  if json=$("$bench" "${flags[@]}" 2>"$tmp/bench.err" | tail -n 1) && [[ $json == "{"* ]]; then
    echo "$json" >>"$tmp/runs.jsonl"
    python3 -c '
import json, sys
j = json.loads(sys.argv[1])
print("  %-11s %-7s %-12s %9.0f/s  server %6.1f us/grant  workers %6.1f us/grant" % (
    sys.argv[2], j["pattern"], "-" if sys.argv[2] == "raw" else j["mode"], j["grants_per_s"],
    j["server_cpu_s_per_million"], j["workers_cpu_s_per_million"]))' "$json" "$config"
  else
    failed=$((failed + 1))
    cp "$tmp/bench.err" "$tmp/failed.$failed.err"
    echo "round $round, $config, $pattern, $mode: $(grep -v '^ts=' "$tmp/bench.err" | tail -n 1)" >>"$tmp/failures"
    echo "tls.sh: round $round $config $pattern $mode failed: $(grep -v '^ts=' "$tmp/bench.err" | tail -n 5)" >&2
    echo "{\"label\":\"$round $config\",\"pattern\":\"$pattern\",\"mode\":\"$mode\",\"failed\":true}" >>"$tmp/runs.jsonl"
  fi
  # Worker calls that ended in an error (the bench prints each).
  grep -c '^worker call ended' "$tmp/bench.err" >>"$tmp/worker_errors" || true
  grep '^worker call ended' "$tmp/bench.err" | head -n 3 >>"$tmp/worker_error_lines" || true
  kill -0 "${srv_pid[$config]}" 2>/dev/null ||
    { echo "tls.sh: the $config server died: $(tail -n 5 "$tmp/$config.log")" >&2; exit 1; }
}
begin=$(date +%s)
# The tree the binaries should be of (checked, not proven: BUILD_DIR is
# whatever was built last).
commit=$(git rev-parse --short HEAD 2>/dev/null || echo '?')
git diff --quiet HEAD -- server client-lib bench/throttle_bench.cc bench/raw_server.cc 2>/dev/null ||
  commit="$commit with local changes"
echo "tls.sh: $rounds round(s), load average $(load)"
for round in $(seq 1 "$rounds"); do
  echo "round $round (load average $(load))"
  for shape in "stream monitor-only" "stream smooth" "call monitor-only" "call smooth" "connect monitor-only"; do
    read -r pattern mode <<<"$shape"
    [[ $mode == monitor-only ]] && run "$round" raw "$pattern" "$mode"
    # The order of the servers rotates from round to round.
    for i in "${!configs[@]}"; do
      run "$round" "${configs[$(((i + round - 1) % ${#configs[@]}))]}" "$pattern" "$mode"
    done
  done
done
seconds=$(($(date +%s) - begin))

# ------------------------------------------------------------ the report
alive=()
for name in raw "${configs[@]}"; do
  kill -0 "${srv_pid[$name]}" 2>/dev/null && alive+=("$name")
  kill -TERM "${srv_pid[$name]}" 2>/dev/null || true
done
for name in raw "${configs[@]}"; do { wait "${srv_pid[$name]}"; } 2>/dev/null || true; done
server_warnings=$(cat "$tmp"/{plaintext,tls,mtls,mtls+policy,tls+token}.log |
  grep -v 'event=transport ' | grep -c 'level=\(warning\|error\)' || true)
worker_errors=$(awk '{s += $1} END {print s + 0}' "$tmp/worker_errors")

{
  echo "# The cost of TLS on the grant path ($(date -u +%Y-%m-%d), $(nproc) cores)"
  echo
  echo "Command: \`bench/tls.sh$( ((quick)) && echo ' --quick')\` ($rounds round(s), $seconds s;" \
    "commit $commit, binaries of $build; gRPC $(pkg-config --modversion grpc++ 2>/dev/null || echo "?") over" \
    "$(openssl version | cut -d' ' -f1-2); load average at the end $(load))."
  echo
  echo "Each run: \`throttle_bench --address=127.0.0.1:PORT --server_pid=PID --workers=4" \
    "--streams=1 --pattern=P --mode=M --rate=$rate --duration=$duration\` ($connect_duration" \
    "for connect) with the security flags of its server (bench/tls.sh lists them), against" \
    "six servers started at once and run in turn. Figures: min / median / max over" \
    "the rounds; a ratio is taken within a round (to the plaintext server's run of" \
    "the same pattern and mode, or to the raw ceiling's), then min / median / max." \
    "CPU: utime + stime from /proc/PID/stat between the start and the stop of the" \
    "measured window, per grant received; \"workers\" is the 4 worker processes together."
  echo
  python3 - "$tmp/runs.jsonl" "$rate" <<'EOF'
import collections, json, statistics, sys

rate = float(sys.argv[2])
runs = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
by = collections.defaultdict(dict)  # (pattern, mode, config) -> round -> run
for r in runs:
    rnd, config = r['label'].split(' ', 1)
    mode = '-' if config == 'raw' else r['mode']
    by[(r['pattern'], mode, config)][rnd] = r

def mmm(values, fmt):
    v = [x for x in values if x is not None]
    if not v:
        return '-'
    if len(v) == 1:
        return fmt(v[0])
    return ' / '.join(fmt(x) for x in (min(v), statistics.median(v), max(v)))

def num(x):
    return f'{x:,.0f}'

def us(x):
    return f'{x:.1f}' if x < 100 else f'{x:,.0f}'

def pct(x):
    return f'{100 * x:.0f}%'

def ratios(key, ref, field):
    out = []
    for rnd, r in by[key].items():
        b = by.get(ref, {}).get(rnd)
        if r.get('failed') or b is None or b.get('failed') or not b.get(field):
            continue
        out.append(r[field] / b[field])
    return out

print('| pattern | mode | server | grants/s | / plaintext | / raw ceiling | server CPU µs/grant | / plaintext | workers CPU µs/grant | / plaintext | lateness p99 (µs) | failed runs |')
print('|---|---|---|---|---|---|---|---|---|---|---|---|')
order = ['raw', 'plaintext', 'tls', 'mtls', 'mtls+policy', 'tls+token']
shapes = [('stream', 'monitor-only'), ('stream', 'smooth'), ('call', 'monitor-only'),
          ('call', 'smooth'), ('connect', 'monitor-only')]
for pattern, mode in shapes:
    for config in order:
        key = (pattern, '-' if config == 'raw' else mode, config)
        if key not in by or (config == 'raw' and mode != 'monitor-only'):
            continue
        ok = [r for r in by[key].values() if not r.get('failed')]
        failed = len(by[key]) - len(ok)
        plain = (pattern, mode, 'plaintext')
        raw = (pattern, '-', 'raw')
        is_raw = config == 'raw'
        limited = mode != 'monitor-only' and not is_raw
        print('| ' + ' | '.join([
            pattern, '(raw ceiling)' if is_raw else (f'smooth {num(rate)}/s' if limited else mode),
            'raw_ceiling_server' if is_raw else config,
            mmm([r['grants_per_s'] for r in ok], num),
            '-' if is_raw or config == 'plaintext' else mmm(ratios(key, plain, 'grants_per_s'), pct),
            '-' if is_raw or limited else mmm(ratios(key, raw, 'grants_per_s'), pct),
            mmm([r['server_cpu_s_per_million'] for r in ok], us),
            '-' if is_raw or config == 'plaintext' else mmm(ratios(key, plain, 'server_cpu_s_per_million'), lambda x: f'{x:.2f}'),
            mmm([r['workers_cpu_s_per_million'] for r in ok], us),
            '-' if is_raw or config == 'plaintext' else mmm(ratios(key, plain, 'workers_cpu_s_per_million'), lambda x: f'{x:.2f}'),
            mmm([r['lateness_us']['p99'] for r in ok], num) if limited else '-',
            str(failed),
        ]) + ' |')

# What TLS adds per grant (server CPU, µs), the medians' differences to
# plaintext of the same round.
def added(pattern, mode, config, field='server_cpu_s_per_million'):
    out = []
    for rnd, r in by[(pattern, mode, config)].items():
        b = by[(pattern, mode, 'plaintext')].get(rnd)
        if r.get('failed') or b is None or b.get('failed'):
            continue
        out.append(r[field] - b[field])
    return out

print()
print('CPU that the transport security adds per grant over plaintext, same round (µs, min / median / max; server, then the 4 workers together):')
print()
print('| server | stream, monitor-only | stream, smooth | call, monitor-only | call, smooth | connect (per connection) |')
print('|---|---|---|---|---|---|')
for config in order[2:]:
    cells = []
    for pattern, mode in shapes:
        s = mmm(added(pattern, mode, config), lambda x: f'{x:+.1f}')
        w = mmm(added(pattern, mode, config, 'workers_cpu_s_per_million'), lambda x: f'{x:+.1f}')
        cells.append(f'{s}; workers {w}')
    print(f'| {config} | ' + ' | '.join(cells) + ' |')
EOF
  echo
  echo "Failed runs: $failed. Worker calls that ended in an error: $worker_errors."
  if [[ -s "$tmp/failures" ]]; then
    echo
    sed 's/^/    /' "$tmp/failures"
  fi
  if [[ -s "$tmp/worker_error_lines" ]]; then
    echo "First of them:"
    echo
    sort "$tmp/worker_error_lines" | uniq -c | head -n 5 | sed 's/^/    /'
  fi
  echo
  echo "Servers alive at the end: ${alive[*]} (of raw ${configs[*]});" \
    "warning or error lines in the throttle_server logs (besides the" \
    "plaintext server's transport warning): $server_warnings."
} >"$out"
mkdir -p "$(dirname "$results")"
mv "$out" "$results"
cat "$results"
echo "wrote $results"
