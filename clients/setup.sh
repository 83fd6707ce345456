#!/usr/bin/env bash
# Installs what the polyglot clients (clients/python, clients/node) and
# their tests need on a Debian 12 machine, only what is missing:
#   - Debian packages python3-grpcio, python3-protobuf, protobuf-compiler,
#     protobuf-compiler-grpc (grpc_python_plugin), python3-venv,
#     python3-setuptools, python3-wheel (pip install ./clients/python);
#     nodejs and npm only when there is no `node` (a NodeSource node brings
#     its own npm);
#   - clients/node/node_modules from package-lock.json (npm ci) when missing
#     (or without typescript, its devDependency).
# Runs apt-get as root or through sudo. Called by scripts/setup.sh.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"

installed() {
  dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q "install ok installed"
}

packages=(python3-grpcio python3-protobuf protobuf-compiler protobuf-compiler-grpc
  python3-venv python3-setuptools python3-wheel)
if ! command -v node >/dev/null; then
  packages+=(nodejs npm)
elif ! command -v npm >/dev/null; then
  packages+=(npm)
fi
missing=()
for p in "${packages[@]}"; do
  installed "$p" || missing+=("$p")
done
if ((${#missing[@]})); then
  echo "clients/setup.sh: installing ${missing[*]}"
  sudo_cmd=()
  [[ $(id -u) -eq 0 ]] || sudo_cmd=(sudo)
  "${sudo_cmd[@]}" apt-get update -qq
  DEBIAN_FRONTEND=noninteractive "${sudo_cmd[@]}" apt-get install -y -qq \
    --no-install-recommends "${missing[@]}"
fi

# The Python client runs on Debian's python3, which sees these packages.
/usr/bin/python3 -c 'import grpc, google.protobuf' || {
  echo "clients/setup.sh: /usr/bin/python3 cannot import grpc/protobuf" >&2
  exit 1
}

# typescript (a devDependency) checks the package's declarations.
if [[ ! -d "$here/node/node_modules" || ! -x "$here/node/node_modules/.bin/tsc" ]]; then
  echo "clients/setup.sh: npm ci in clients/node"
  (cd "$here/node" && npm ci --no-audit --no-fund --loglevel=error)
fi
