#!/usr/bin/env bash
# tests/clients/python_install_test.sh: the Python client as a user installs
# it (docs/clients.md): a venv that sees Debian's grpcio and protobuf, and
#   V/bin/pip install --no-build-isolation ./clients/python
# offline (no PyPI). Then, from a directory outside the repository and
# without PYTHONPATH or THROTTLE_PY_GENERATED, `import throttle_client`
# must find the package and its generated code inside the venv, and a
# Throttle must create, start and get fuel from a real server, then stop.
#
#   tests/clients/python_install_test.sh THROTTLE_SERVER
#
# clients/python/install_venv.sh makes the venv (from a copy of the sources,
# removed after the install, so the checkout stays clean). The other Python
# tests (clients/python/run_tests.sh) run against such a venv too.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
server="$(realpath "${1:?usage: python_install_test.sh THROTTLE_SERVER}")"
source "$here/server.sh"

tmp="$(mktemp -d "${TMPDIR:-/tmp}/throttle_pyinstall.XXXXXX")"
trap 'stop_server; rm -rf "$tmp"' EXIT
# The sources it was built from are removed: the package must not need them.
"$root/clients/python/install_venv.sh" "$tmp/venv"

start_server "$server" "$tmp"
cd "$tmp"
env -u PYTHONPATH -u THROTTLE_PY_GENERATED ADDRESS="$ADDRESS" \
  "$tmp/venv/bin/python" - <<'PY'
import os, sys
import throttle_client
from throttle_client import FuelOutcome, Throttle

where = os.path.dirname(throttle_client.__file__)
assert where.startswith(sys.prefix), f"throttle_client from {where}, not the venv"
throttle = Throttle(os.environ["ADDRESS"], "install-test")
throttle.create(100, 1)
throttle.start()
outcome = throttle.await_fuel(timeout=10)
assert outcome == FuelOutcome.FUEL, outcome
assert throttle.await_fuel_n(3, timeout=10).grants == 3
throttle.stop()
throttle.close()
print(f"python_install_test: fuel from {os.environ['ADDRESS']} with {where}")
PY
