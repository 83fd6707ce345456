#!/usr/bin/env bash
# The status page under high availability: a real etcd and two real
# throttle_server nodes of one cluster, each with its always-on metrics
# port. The standby's page, loaded in headless Chromium, says it is a
# standby and in which state and lists no throttle; the leader's says it
# leads and lists the cluster's throttle. Waits are on conditions with
# generous deadlines.
# Usage: status_page_ha_test.sh THROTTLE_SERVER
set -euo pipefail
server_bin="$1"
here=$(cd "$(dirname "$0")" && pwd)
for tool in etcd chromium curl; do
  command -v "$tool" >/dev/null || { echo "missing $tool (scripts/setup.sh installs it)" >&2; exit 1; }
done
source "$here/lib.sh"

start_etcd
start_ha_pair "$server_bin" status_page_ha

# What a person sees on each page, after its script ran.
dump() {
  timeout 180 chromium --headless --no-sandbox --disable-gpu \
    --user-data-dir="$dir/profile$1" --no-first-run --disable-extensions \
    --virtual-time-budget=2000 --dump-dom "http://127.0.0.1:${http_ports[$1]}/" \
    >"$dir/dom$1.html" 2>"$dir/browser$1.log" \
    || { echo "chromium failed" >&2; tail -20 "$dir/browser$1.log" >&2; exit 1; }
}
dump "$standby"
dump "$leader"
/usr/bin/python3 - "$dir/dom$standby.html" "$dir/dom$leader.html" <<'PY'
import re, sys
standby, leader = (open(p, encoding="utf-8").read() for p in sys.argv[1:3])
def role_text(dom):
    m = re.search(r'<p id="role">(.*?)</p>', dom, re.S)
    return m.group(1) if m else None
failures = []
text = role_text(standby)
if not text or "standby" not in text or "campaigning" not in text:
    failures.append(f"the standby's page says {text!r}")
if 'data-throttle="' in standby:
    failures.append("the standby's page lists throttles")
text = role_text(leader)
if not text or "leader" not in text:
    failures.append(f"the leader's page says {text!r}")
if 'data-throttle="work"' not in leader:
    failures.append("the leader's page does not list work")
for f in failures:
    print("FAIL:", f, file=sys.stderr)
sys.exit(1 if failures else 0)
PY
echo "status_page_ha_test: OK"
