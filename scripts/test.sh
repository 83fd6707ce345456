#!/usr/bin/env bash
# Sets everything up (packages, build) and runs the whole test suite.
#   BUILD_DIR, CXX as for scripts/setup.sh
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
cd "${BUILD_DIR:-build}"
ctest -j2 --output-on-failure --timeout 600
