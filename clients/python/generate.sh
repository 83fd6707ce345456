#!/usr/bin/env bash
# Generates the Python gRPC code of proto/throttle/v1/throttle.proto (the
# throttle.v1 messages and the Throttle stub) into a build directory, for the
# hand-written wrapper in clients/python/throttle_client/.
#
#   clients/python/generate.sh [OUT_DIR]
#
# OUT_DIR defaults to $BUILD_DIR/clients/python, else build/clients/python
# (both relative to the repository root unless absolute). Writes
# OUT_DIR/throttle/v1/throttle_pb2.py and throttle_pb2_grpc.py (with
# __init__.py files), and prints OUT_DIR: put it on PYTHONPATH, or set
# THROTTLE_PY_GENERATED to it. Generated code is never committed.
#
# Needs protoc and grpc_python_plugin (Debian: protobuf-compiler,
# protobuf-compiler-grpc; clients/setup.sh installs them).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
out="${1:-${BUILD_DIR:-build}/clients/python}"
[[ "$out" = /* ]] || out="$root/$out"

plugin="${GRPC_PYTHON_PLUGIN:-$(command -v grpc_python_plugin || true)}"
if [[ -z "$plugin" ]]; then
  echo "generate.sh: grpc_python_plugin not found (apt-get install protobuf-compiler-grpc)" >&2
  exit 1
fi

# Generate into a fresh temporary directory next to OUT_DIR and move it into
# place, so that a reader never sees half-written files.
mkdir -p "$(dirname "$out")"
tmp="$(mktemp -d "$out.tmp.XXXXXX")"
trap 'rm -rf "$tmp"' EXIT
protoc --python_out="$tmp" --grpc_out="$tmp" \
  --plugin=protoc-gen-grpc="$plugin" \
  -I "$root/proto" "$root/proto/throttle/v1/throttle.proto"
# Regular packages, so that another "throttle" on sys.path cannot shadow them
# as it could a namespace package.
touch "$tmp/throttle/__init__.py" "$tmp/throttle/v1/__init__.py"
rm -rf "$out"
mv "$tmp" "$out"
trap - EXIT
echo "$out"
