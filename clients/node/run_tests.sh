#!/usr/bin/env bash
# Runs the Node client's tests (clients/node/test/*.test.js, node's built-in
# test runner) against the real server binary. ctest runs this through
# tests/polyglot.cmake.
#
#   clients/node/run_tests.sh THROTTLE_SERVER [TEST_FILE...]
#
# TEST_FILE defaults to every test/*.test.js. Needs node (>= 18) and
# node_modules (clients/setup.sh runs npm ci).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
server="${1:?usage: run_tests.sh THROTTLE_SERVER [TEST_FILE...]}"
shift

node="${NODE:-$(command -v node || true)}"
if [[ -z "$node" ]]; then
  echo "run_tests.sh: node not found: run clients/setup.sh" >&2
  exit 1
fi
if [[ ! -d "$here/node_modules/@grpc/grpc-js" ]]; then
  echo "run_tests.sh: $here/node_modules is missing: run clients/setup.sh" >&2
  exit 1
fi
THROTTLE_SERVER="$(realpath "$server")"
export THROTTLE_SERVER

cd "$here"
if (($#)); then
  exec "$node" --test "$@"
else
  exec "$node" --test test/*.test.js
fi
