#!/usr/bin/env bash
# The status page in a real browser (Debian's chromium, headless): starts
# throttle_server with --metrics_listen=127.0.0.1:0, a throttle "work"
# (50 per second) with a real test_worker taking fuel, and a throttle whose
# name is markup ("<i>x</i>&lt"); waits until the server's history of
# "work" has some seconds, then loads http://127.0.0.1:PORT/ in headless
# Chromium (--dump-dom, the DOM after the page's script ran) and checks
# what a person sees (check_status_page.py): the throttle's name, state
# "running", its configured rate 50, an achieved rate near it, a chart
# with data points, and the markup name shown as text, not as markup.
# Usage: status_page_test.sh THROTTLE_SERVER TEST_WORKER THROTTLECTL
set -euo pipefail
server_bin="$1" worker_bin="$2" ctl_bin="$3"
here=$(cd "$(dirname "$0")" && pwd)
browser=$(command -v chromium || true)
[[ -n "$browser" ]] || { echo "missing chromium (scripts/setup.sh installs it)" >&2; exit 1; }
source "$here/lib.sh"

markup_name='<i>x</i>&lt'
"$server_bin" --listen=127.0.0.1:0 --metrics_listen=127.0.0.1:0 \
  --port_file="$dir/port" --throttle="work max_n=50 per=1;$markup_name max_n=1 per=1" \
  2>"$dir/server.log" &
pids+=($!)
wait_for 30 test -s "$dir/port" || { cat "$dir/server.log"; exit 1; }
address="127.0.0.1:$(cat "$dir/port")"
http_port=$(sed -n 's/.*event=server_serving.* metrics_port=\([0-9]*\).*/\1/p' "$dir/server.log")
[[ -n "$http_port" && "$http_port" != 0 ]] || { echo "no HTTP port" >&2; cat "$dir/server.log"; exit 1; }
url="http://127.0.0.1:$http_port/"

"$worker_bin" --address="$address" --throttle=work --worker_id=w >"$dir/worker.out" &
pids+=($!)
"$ctl_bin" --address="$address" start work >/dev/null
# Some seconds of history (one sample per second) with fuel flowing.
history_has() {
  curl -sf "${url}status.json" >"$dir/status.json" &&
    /usr/bin/python3 -c '
import json, sys
data = json.load(open(sys.argv[1]))
work = [t for t in data["throttles"] if t["name"] == "work"][0]
sys.exit(0 if len(work["history"]) >= 8 and work["total_emissions"] >= 100 else 1)
' "$dir/status.json"
}
wait_for 120 history_has || { echo "no history of work" >&2; cat "$dir/status.json" >&2; exit 1; }

# The page's script draws from the data embedded in it, then polls
# status.json every second: a few seconds of virtual time run it. A
# profile of its own, so that other browsers on the machine do not matter.
timeout 180 "$browser" --headless --no-sandbox --disable-gpu \
  --user-data-dir="$dir/profile" --no-first-run --disable-extensions \
  --virtual-time-budget=3000 --dump-dom "$url" >"$dir/dom.html" 2>"$dir/browser.log" \
  || { echo "chromium failed" >&2; tail -20 "$dir/browser.log" >&2; exit 1; }
/usr/bin/python3 "$here/check_status_page.py" "$dir/dom.html" work 50 "$markup_name" \
  || { cat "$dir/dom.html" >&2; exit 1; }
echo "status_page_test: OK"
