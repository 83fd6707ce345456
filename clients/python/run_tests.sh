#!/usr/bin/env bash
# Runs the Python client's tests (clients/python/tests/, unittest) against
# the real server binary. Generates the Python gRPC code into a temporary
# directory first (unless THROTTLE_PY_GENERATED names one) and removes it at
# the end. ctest runs this through tests/polyglot.cmake.
#
#   clients/python/run_tests.sh THROTTLE_SERVER [TEST_WORKER] [MODULE...]
#
# MODULE defaults to every test_*.py (e.g. test_errors, test_tutorial,
# test_mixed_fleet; the last also needs TEST_WORKER, node and
# clients/node/node_modules).
#
# Always uses Debian's /usr/bin/python3 (python3-grpcio, python3-protobuf):
# a python3 of pyenv or a venv earlier on PATH would not see them.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
server="${1:?usage: run_tests.sh THROTTLE_SERVER [TEST_WORKER] [MODULE...]}"
worker="${2:-}"
shift $(($# < 2 ? $# : 2))
python=/usr/bin/python3

if ! "$python" -c 'import grpc, google.protobuf' 2>/dev/null; then
  echo "run_tests.sh: $python lacks grpc/protobuf: run clients/setup.sh" >&2
  exit 1
fi
if [[ -z "${THROTTLE_PY_GENERATED:-}" ]]; then
  gen="$(mktemp -d "${TMPDIR:-/tmp}/throttle_pygen.XXXXXX")"
  trap 'rm -rf "$gen"' EXIT
  "$here/generate.sh" "$gen/out" >/dev/null
  export THROTTLE_PY_GENERATED="$gen/out"
fi
THROTTLE_SERVER="$(realpath "$server")"
export THROTTLE_SERVER
if [[ -n "$worker" ]]; then
  THROTTLE_TEST_WORKER="$(realpath "$worker")"
  export THROTTLE_TEST_WORKER
fi

cd "$here/tests"
if (($#)); then
  "$python" -m unittest -v "$@"
else
  "$python" -m unittest discover -v -s . -p 'test_*.py'
fi
