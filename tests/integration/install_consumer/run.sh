#!/usr/bin/env bash
# Installs the current build tree into a temporary prefix, then configures,
# builds and runs tests/integration/install_consumer/consumer against it with
# find_package(throttle CONFIG REQUIRED), as another project would.
#
# Usage: run.sh BUILD_DIR CONSUMER_SOURCE_DIR CXX_COMPILER
# Cleans its temporary directory on exit, whatever happens.
set -euo pipefail

if [[ $# -ne 3 ]]; then
  echo "usage: $0 BUILD_DIR CONSUMER_SOURCE_DIR CXX_COMPILER" >&2
  exit 2
fi
build_dir=$1
consumer_src=$2
cxx=$3

tmp=$(mktemp -d "${TMPDIR:-/tmp}/throttle-install-consumer.XXXXXX")
trap 'rm -rf "${tmp}"' EXIT
prefix=${tmp}/prefix

step() { echo "== $*"; }

step "install ${build_dir} -> ${prefix}"
cmake --install "${build_dir}" --prefix "${prefix}"

# The installed package must not point back into the build or source tree.
if grep -rl -e "${build_dir}" "${prefix}"/lib*/cmake/throttle; then
  echo "installed CMake files refer to the build tree ${build_dir}" >&2
  exit 1
fi

step "configure the consumer"
cmake -S "${consumer_src}" -B "${tmp}/build" \
  -DCMAKE_CXX_COMPILER="${cxx}" \
  -DCMAKE_BUILD_TYPE=Release \
  -DCMAKE_PREFIX_PATH="${prefix}" \
  -DCMAKE_FIND_USE_PACKAGE_REGISTRY=OFF

step "build the consumer"
cmake --build "${tmp}/build" -j2

step "run the consumer against an unreachable address"
"${tmp}/build/consumer" "unix:${tmp}/no-server.sock"
