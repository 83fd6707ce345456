#!/usr/bin/env bash
# Sets everything up (packages, build) and runs the main job: the seed's
# tutorial against the shared throttle service (a server plus 4 worker
# processes at 4 per 1 s). Extra arguments go to throttle_tutorial, e.g.
# --stats.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
exec "${BUILD_DIR:-build}/examples/tutorial/throttle_tutorial" "$@"
