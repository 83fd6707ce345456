#!/usr/bin/env bash
# throttlectl watch as a person sees it: the real server on 127.0.0.1, a
# real worker getting fuel, and `throttlectl watch` in a detached tmux
# session of a fixed size; the screen is read with tmux capture-pane. It
# shows the throttle's name, "running", the rates and chart bars; then
# "stopped" after throttlectl stop; then says the throttle was deleted and
# exits 1. Ctrl-C ends a watch with status 0; without a terminal it writes
# one line per snapshot.
# Usage: watch_tui_test.sh THROTTLE_SERVER THROTTLECTL TEST_WORKER
set -euo pipefail
server_bin="$1" ctl="$2" worker_bin="$3"
dir=$(mktemp -d)
socket="watch-tui-$$"
tmux_() { tmux -u -L "$socket" -f /dev/null "$@"; }
worker=
# --state_dir: the throttles outlive a restart of the server (below).
"$server_bin" --listen=127.0.0.1:0 --port_file="$dir/port" \
  --state_dir="$dir/state" 2>"$dir/server.log" &
server=$!
cleanup() {
  set +e  # a worker already gone (its throttle deleted) must not stop this
  tmux_ kill-server 2>/dev/null
  [[ -n $worker ]] && kill "$worker" 2>/dev/null
  kill "$server" 2>/dev/null
  wait 2>/dev/null
  rm -rf "$dir"
}
trap cleanup EXIT
for _ in $(seq 300); do [[ -s "$dir/port" ]] && break; sleep 0.1; done
[[ -s "$dir/port" ]] || { cat "$dir/server.log" >&2; echo "FAIL: no port" >&2; exit 1; }
export THROTTLE_ADDRESS="127.0.0.1:$(cat "$dir/port")"

# Waits (generously: a loaded 2-core machine) until the screen of tmux
# session $1 matches every extended regex after it.
await_screen() {
  local session="$1"
  shift
  local screen
  for _ in $(seq 600); do
    screen=$(tmux_ capture-pane -p -t "$session" 2>/dev/null || true)
    local all=1
    for pattern in "$@"; do
      grep -Eq -- "$pattern" <<<"$screen" || { all=0; break; }
    done
    ((all)) && return 0
    sleep 0.2
  done
  echo "FAIL: the screen of $session never showed: $*" >&2
  echo "--- screen:" >&2
  echo "$screen" >&2
  exit 1
}

# Waits (as await_screen) until the screen of tmux session $1 no longer
# matches the extended regex $2.
await_screen_without() {
  local screen
  for _ in $(seq 600); do
    screen=$(tmux_ capture-pane -p -t "$1" 2>/dev/null || true)
    grep -Eq -- "$2" <<<"$screen" || return 0
    sleep 0.2
  done
  echo "FAIL: the screen of $1 kept showing: $2" >&2
  echo "--- screen:" >&2
  echo "$screen" >&2
  exit 1
}

"$ctl" create crawl --max_n=20 --per=1s >/dev/null
"$ctl" create idle --max_n=4 --per=1 >/dev/null
"$ctl" start crawl >/dev/null
"$worker_bin" --address="$THROTTLE_ADDRESS" --throttle=crawl \
  --worker_id=tui >"$dir/worker.out" 2>&1 &
worker=$!

# The watch in a terminal of 100 x 30; the shell says how it ended.
watch_in() {
  tmux_ new-session -d -s "$1" -x 100 -y 30 \
    "$(printf '%q ' env THROTTLE_ADDRESS="$THROTTLE_ADDRESS" "$ctl" watch "$2"); echo \"watch exited \$?\"; sleep 600"
}
watch_in view crawl
# What a person sees: name, state, mode, the configured rate, an achieved
# rate above zero, and bars in the chart (any of the eighth blocks).
await_screen view 'throttle crawl +state running +mode smooth' \
  'configured 20/s +achieved [1-9][0-9.]*/s \(latest\)' \
  'waiting streams [0-9]+ +total [1-9]' \
  '^ *20/s.[^ ]*[▁▂▃▄▅▆▇█]' '[█]' '^ +0└─+$'

# The server goes away: the view says it retries; the server comes back on
# the same port with its state: the view shows the throttle again.
port=$(cat "$dir/port")
kill "$server"
wait "$server" 2>/dev/null || true
await_screen view 'server unreachable \((UNAVAILABLE|CANCELLED).*\): retrying in'
"$server_bin" --listen="127.0.0.1:$port" --state_dir="$dir/state" \
  2>>"$dir/server.log" &
server=$!
await_screen_without view 'retrying in'
await_screen view 'throttle crawl +state running' 'configured 20/s'

"$ctl" stop crawl >/dev/null
await_screen view 'throttle crawl +state stopped'

"$ctl" delete crawl >/dev/null
await_screen view 'throttle "crawl" was deleted \(NOT_FOUND' 'watch exited 1'

# Ctrl-C: a clean end, status 0.
watch_in quit idle
await_screen quit 'throttle idle +state created'
tmux_ send-keys -t quit C-c
await_screen quit 'watch exited 0'

# Not a terminal: one line per snapshot.
lines=$(timeout 60 "$ctl" watch idle --interval=100ms | head -n 3 || true)
[[ $(grep -c '^[0-9T:-]*Z idle state=created mode=smooth configured=4/s ' <<<"$lines") == 3 ]] \
  || { echo "FAIL: not a terminal: $lines" >&2; exit 1; }

# A throttle that is not there: the server's NOT_FOUND, status 1.
set +e
timeout 60 "$ctl" watch nosuch >/dev/null 2>"$dir/err"; code=$?
set -e
[[ $code == 1 ]] && grep -q 'NOT_FOUND' "$dir/err" \
  || { echo "FAIL: watch nosuch: $code $(cat "$dir/err")" >&2; exit 1; }
echo "watch_tui_test: OK"
