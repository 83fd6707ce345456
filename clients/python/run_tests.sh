#!/usr/bin/env bash
# Runs the Python client's tests (clients/python/tests/, unittest) against
# the real server binary and the installed package, as a user has it
# (docs/clients.md): once per run, a venv that sees Debian's grpcio and
# protobuf (python3 -m venv --system-site-packages) gets
#   pip install --no-build-isolation ./clients/python
# offline (no PyPI), and the tests run with the venv's python from a copy
# of tests/ and examples/ in a temporary directory outside the source tree,
# without PYTHONPATH or THROTTLE_PY_GENERATED: `import throttle_client`
# finds only the installed package, with its generated code (checked before
# the tests start). Everything is removed at the end. ctest runs this
# through tests/polyglot.cmake.
#
#   clients/python/run_tests.sh THROTTLE_SERVER [TEST_WORKER] [MODULE...]
#
# MODULE defaults to every test_*.py (e.g. test_errors, test_tutorial,
# test_mixed_fleet; the last also needs TEST_WORKER, node and
# clients/node/node_modules).
#
# The venv is made from Debian's /usr/bin/python3 (python3-grpcio,
# python3-protobuf, python3-setuptools, python3-wheel: clients/setup.sh): a
# python3 of pyenv earlier on PATH would not see them.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
server="${1:?usage: run_tests.sh THROTTLE_SERVER [TEST_WORKER] [MODULE...]}"
worker="${2:-}"
shift $(($# < 2 ? $# : 2))
python=/usr/bin/python3

if ! "$python" -c 'import grpc, google.protobuf, setuptools, wheel' 2>/dev/null; then
  echo "run_tests.sh: $python lacks grpc/protobuf/setuptools/wheel: run clients/setup.sh" >&2
  exit 1
fi
THROTTLE_SERVER="$(realpath "$server")"
export THROTTLE_SERVER
if [[ -n "$worker" ]]; then
  THROTTLE_TEST_WORKER="$(realpath "$worker")"
  export THROTTLE_TEST_WORKER
fi

tmp="$(mktemp -d "${TMPDIR:-/tmp}/throttle_pytest.XXXXXX")"
trap 'rm -rf "$tmp"' EXIT
"$here/install_venv.sh" "$tmp/venv"
# The tests and the examples they start, outside the tree. support.py finds
# the rest of the repository (clients/node, tests/support) through
# THROTTLE_SOURCE_ROOT, and never puts clients/python on sys.path.
cp -r "$here/tests" "$here/examples" "$tmp/"
rm -rf "$tmp/tests/__pycache__" "$tmp/examples/__pycache__"
export THROTTLE_SOURCE_ROOT="$root"
export THROTTLE_PY_EXAMPLES="$tmp/examples"
unset PYTHONPATH THROTTLE_PY_GENERATED

cd "$tmp/tests"
"$tmp/venv/bin/python" - <<'PY'
import os, sys
import throttle_client
from throttle_client import _proto
for module in (throttle_client, _proto.pb):
    where = os.path.abspath(module.__file__)
    if not where.startswith(sys.prefix + os.sep):
        sys.exit(f"run_tests.sh: {module.__name__} from {where}, not from "
                 f"the venv {sys.prefix}")
print(f"run_tests.sh: throttle_client from {os.path.dirname(throttle_client.__file__)}")
PY
if (($#)); then
  "$tmp/venv/bin/python" -m unittest -v "$@"
else
  "$tmp/venv/bin/python" -m unittest discover -v -s . -p 'test_*.py'
fi
