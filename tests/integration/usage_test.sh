#!/usr/bin/env bash
# --help and --version of the project's programs: --help exits 0 and lists
# the program's own flags (not "No flags matched."), --version exits 0 and
# prints "NAME VERSION".
#
#   usage_test.sh VERSION THROTTLE_SERVER TUTORIAL BENCH THROTTLECTL
set -euo pipefail
version="$1"
server="$2" tutorial="$3" bench="$4" throttlectl="$5"
failed=0

# check NAME OUTPUT CODE WANT: OUTPUT (of a run that exited CODE) must
# contain WANT and the run must have exited 0.
check() {
  local what="$1" out="$2" code="$3" want="$4"
  if [[ "$code" != 0 ]]; then
    echo "FAIL: $what exited $code" >&2
    failed=1
  elif ! grep -qF -- "$want" <<<"$out"; then
    echo "FAIL: $what does not print '$want':" >&2
    echo "$out" >&2
    failed=1
  elif grep -qF "No flags matched" <<<"$out"; then
    echo "FAIL: $what says 'No flags matched'" >&2
    failed=1
  else
    echo "ok: $what"
  fi
}

# run BINARY ARGS...: sets out and code.
run() {
  code=0
  out=$("$@" 2>&1) || code=$?
}

for spec in "$server:--listen" "$tutorial:--workers" "$bench:--rate"; do
  binary="${spec%:*}" flag="${spec##*:}"
  name="$(basename "$binary")"
  for help in --help --helpshort; do
    run "$binary" "$help"
    check "$name $help" "$out" "$code" "$flag"
  done
  run "$binary" --version
  check "$name --version" "$out" "$code" "$name $version"
done
run "$server" --help
check "throttle_server --help (all its flags)" "$out" "$code" "--shutdown_grace"
check "throttle_server --help (the config reload flag)" "$out" "$code" "--config_poll_interval"
run "$throttlectl" --help
check "throttlectl --help" "$out" "$code" "--address"
run "$throttlectl" --version
check "throttlectl --version" "$out" "$code" "throttlectl $version"
exit "$failed"
