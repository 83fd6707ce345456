#!/usr/bin/env bash
# throttlectl against the real server: every command, readable and --json
# output, and one clear line with a non-zero exit on error.
# Usage: throttlectl_test.sh THROTTLE_SERVER THROTTLECTL
set -euo pipefail
server_bin="$1" ctl="$2"
source "$(dirname "$0")/lib.sh"
"$server_bin" --listen=127.0.0.1:0 --port_file="$dir/port" 2>"$dir/server.log" &
pids+=($!)
wait_for 30 test -s "$dir/port" || fail "no port: $(cat "$dir/server.log")"
export THROTTLE_ADDRESS="127.0.0.1:$(cat "$dir/port")"

"$ctl" create crawl --max_n=4 --per=1 >/dev/null
"$ctl" create api --max_n=100 --per=60 --mode=bucket --burst=20 >/dev/null
"$ctl" configure crawl --max_n=8 --per=2 >/dev/null
list=$("$ctl" list)
grep -q '^api .*bucket' <<<"$list" || fail "list: $list"
grep -q '^crawl .*created' <<<"$list" || fail "list: $list"
json=$("$ctl" --json list)
grep -q '"name":"crawl"' <<<"$json" || fail "json list: $json"
grep -q '"max_n":"8"' <<<"$json" || fail "json max_n: $json"
"$ctl" start crawl | grep -q running || fail "start"
"$ctl" latest crawl --window=2 >/dev/null
# One duration syntax (issue 13: --window=1.5s was rejected).
"$ctl" latest crawl --window=1.5s | grep -q '^Window seconds: 1.5$' \
  || fail "latest --window=1.5s: $("$ctl" latest crawl --window=1.5s)"
"$ctl" create dur --max_n=3 --per=1m30s --catch_up=250ms >/dev/null
got=$("$ctl" get dur)
grep -q '^Per seconds: 90.0$' <<<"$got" && grep -q '^Catch up: 0.25$' <<<"$got" \
  || fail "durations: $got"
"$ctl" delete dur >/dev/null
# Help per command (CLI11), exit 0.
"$ctl" stop --help | grep -q 'throttlectl stop' || fail "stop --help: $("$ctl" stop --help)"
"$ctl" help create | grep -q -- '--warm_up' || fail "help create"
"$ctl" --json mean crawl | grep -q '"state":"STATE_RUNNING"' || fail "mean"
stop=$("$ctl" stop crawl)
for key in "Runtime" "Total" "Time between processes" "Processes per second"; do
  grep -q "^$key: " <<<"$stop" || fail "stop output lacks $key: $stop"
done
# A partial configure (issue 13): only the flags given change, so a bucket
# throttle with burst 20 stays bucket with burst 20 (today's main turned
# it smooth); get prints the one throttle.
"$ctl" configure api --max_n=200 >/dev/null
got=$("$ctl" get api)
grep -q '^Mode: bucket$' <<<"$got" || fail "configure --max_n changed the mode: $got"
grep -q '^Burst: 20$' <<<"$got" || fail "configure --max_n changed the burst: $got"
grep -q '^Max n: 200$' <<<"$got" || fail "configure --max_n: $got"
grep -q '^Per seconds: 60.0$' <<<"$got" || fail "configure --max_n changed per: $got"
grep -q '^Name: api$' <<<"$got" || fail "get: $got"
"$ctl" --json get api | grep -q '"burst":"20"' || fail "json get: $("$ctl" --json get api)"
# Switching away from bucket drops the burst (smooth requires 0).
"$ctl" configure api --mode=smooth | grep -q '^Burst: 0$' || fail "mode switch kept the burst"
# Degradation (issue 14): create with local_share, get shows it, a
# configure of --degradation alone changes only that (and drops the
# local_share_for the server requires unset outside local_share).
"$ctl" create degr --max_n=5 --per=2 --mode=window --degradation=local_share \
  --local_share_for=1m30s >/dev/null
got=$("$ctl" get degr)
grep -q '^Degradation: local_share$' <<<"$got" && grep -q '^Local share for: 90.0$' <<<"$got" \
  || fail "get after create --degradation=local_share: $got"
# The DEGRADATION column of list, found by its header.
col=$("$ctl" list | awk 'NR == 1 { for (i = 1; i <= NF; i++) if ($i == "DEGRADATION") c = i }
  c && $1 == "degr" { print $c }')
[[ $col == local_share ]] || fail "list DEGRADATION: '$col': $("$ctl" list)"
"$ctl" --json get degr | grep -q '"degradation":"DEGRADATION_LOCAL_SHARE"' \
  || fail "json get degr: $("$ctl" --json get degr)"
"$ctl" configure degr --degradation=fail_fast >/dev/null
got=$("$ctl" get degr)
grep -q '^Degradation: fail_fast$' <<<"$got" || fail "configure --degradation=fail_fast: $got"
! grep -q '^Local share for' <<<"$got" || fail "local_share_for kept: $got"
grep -q '^Mode: window$' <<<"$got" && grep -q '^Max n: 5$' <<<"$got" &&
  grep -q '^Per seconds: 2.0$' <<<"$got" || fail "configure --degradation changed others: $got"
"$ctl" configure degr --degradation=local_share --local_share_for=250ms >/dev/null
grep -q '^Local share for: 0.25$' <<<"$("$ctl" get degr)" || fail "back to local_share: $("$ctl" get degr)"
set +e
"$ctl" configure degr --degradation=retry 2>"$dir/err"; code=$?
set -e
[[ $code == 2 ]] && grep -q -- '--degradation "retry" is not one of wait, fail_fast, local_share' "$dir/err" \
  || fail "bad --degradation: $code $(cat "$dir/err")"
set +e
"$ctl" configure degr --local_share_for=soon 2>"$dir/err"; code=$?
set -e
[[ $code == 2 ]] && grep -q -- '--local_share_for: "soon"' "$dir/err" \
  || fail "bad --local_share_for: $code $(cat "$dir/err")"
# The server's limit (at most 1 h), named by the server.
set +e
"$ctl" configure degr --local_share_for=2h 2>"$dir/err"; code=$?
set -e
[[ $code == 1 ]] && grep -q "INVALID_ARGUMENT.*local_share_for" "$dir/err" \
  || fail "local_share_for 2h: $code $(cat "$dir/err")"
"$ctl" delete degr >/dev/null
set +e
"$ctl" get nosuch 2>"$dir/err"; code=$?
set -e
[[ $code == 1 ]] && grep -q "NOT_FOUND.*nosuch" "$dir/err" || fail "get nosuch: $code $(cat "$dir/err")"
"$ctl" delete api >/dev/null

# Errors: exit 1 and exactly one line on stderr naming the problem.
set +e
"$ctl" stop crawl 2>"$dir/err"; code=$?
set -e
[[ $code == 1 ]] || fail "stop of a stopped throttle exited $code"
[[ $(wc -l <"$dir/err") == 1 ]] || fail "error is not one line: $(cat "$dir/err")"
grep -q "FAILED_PRECONDITION" "$dir/err" || fail "$(cat "$dir/err")"
set +e
"$ctl" create bad --max_n=0 --per=1 2>"$dir/err"; code=$?
set -e
[[ $code == 1 ]] && grep -q "INVALID_ARGUMENT.*max_n" "$dir/err" || fail "max_n 0: $code $(cat "$dir/err")"
set +e
"$ctl" frobnicate 2>/dev/null; code=$?
set -e
[[ $code == 2 ]] || fail "usage error exited $code"
echo "throttlectl_test: OK"
