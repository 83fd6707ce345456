#!/usr/bin/env bash
# Installs what the project needs on a Debian 12 machine (only what is
# missing), then configures and builds it.
#   BUILD_DIR  build directory (default: build)
#   CXX        compiler (default: g++; CI also builds with clang++)
#   THROTTLE_EXTRA_PACKAGES  more Debian packages (scripts/sanitize.sh)
#   THROTTLE_CMAKE_ARGS      more configure arguments, e.g.
#                            -DTHROTTLE_SANITIZE=address,undefined
#   THROTTLE_BUILD_TARGETS   the targets to build (default: all)
set -euo pipefail
cd "$(dirname "$0")/.."

packages=(g++ clang cmake make pkg-config clang-format
  libgrpc++-dev protobuf-compiler-grpc libprotobuf-dev protobuf-compiler
  libabsl-dev libgtest-dev libgmock-dev prometheus-cpp-dev prometheus curl
  libyaml-cpp-dev etcd-server etcd-client libcivetweb-dev chromium
  libcli11-dev tmux)
# chromium: the status page test; tmux: tests/integration/watch_tui_test.sh
# runs throttlectl watch in it.
# prometheus: the server and promtool, for tests/integration/prometheus_test.sh
# and deploy_alert_rules (promtool check rules / test rules).
# libcivetweb-dev: the status page's hook into the metrics port
# (server/service/http_pages.h); chromium: the status page test, headless
# (tests/integration/status_page_test.sh).
read -ra extra_packages <<<"${THROTTLE_EXTRA_PACKAGES:-}"
packages+=("${extra_packages[@]}")
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" \
    || missing+=("$p")
done
if ((${#missing[@]})); then
  echo "setup: installing ${missing[*]}"
  sudo_cmd=()
  [[ $(id -u) -eq 0 ]] || sudo_cmd=(sudo)
  "${sudo_cmd[@]}" apt-get update -qq
  DEBIAN_FRONTEND=noninteractive "${sudo_cmd[@]}" apt-get install -y -qq \
    --no-install-recommends "${missing[@]}"
fi

# The Python and Node clients and their tests.
clients/setup.sh

build_dir="${BUILD_DIR:-build}"
read -ra cmake_args <<<"${THROTTLE_CMAKE_ARGS:-}"
cmake -S . -B "$build_dir" -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DCMAKE_CXX_COMPILER="${CXX:-g++}" "${cmake_args[@]}" >/dev/null
read -ra targets <<<"${THROTTLE_BUILD_TARGETS:-}"
cmake --build "$build_dir" -j2 ${targets[@]+--target "${targets[@]}"}
