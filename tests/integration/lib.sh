# tests/integration/lib.sh: the prologue the shell integration tests share,
# sourced by each through its own directory:
#   source "$(dirname "$0")/lib.sh"
# It makes a fresh temporary directory $dir and an empty list $pids of the
# processes the test starts (append each with `pids+=($!)`); on exit, every
# one of them is ended and waited for and $dir is removed. It also defines
# fail, wait_for and free_port below.

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
