#!/usr/bin/env bash
# Installs the Python client as a user does (docs/clients.md) into a new
# venv VENV that sees Debian's grpcio and protobuf:
#   python3 -m venv --system-site-packages VENV
#   VENV/bin/pip install --no-build-isolation ./clients/python
# offline (no PyPI). pip builds in the directory it installs from (setup.py
# reads ../../proto and generates the gRPC code there), so a temporary copy
# of the package and proto/ in the repository's layout is installed,
# leaving the checkout clean, and removed after. Used by run_tests.sh and
# tests/clients/python_install_test.sh.
#
#   clients/python/install_venv.sh VENV
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
venv="${1:?usage: install_venv.sh VENV}"

src="$(mktemp -d "${TMPDIR:-/tmp}/throttle_pysrc.XXXXXX")"
trap 'rm -rf "$src"' EXIT
mkdir -p "$src/clients/python"
cp -r "$root/proto" "$src/"
cp -r "$here/pyproject.toml" "$here/setup.py" "$here/throttle_client" \
  "$src/clients/python/"
rm -rf "$src/clients/python/throttle_client/__pycache__"
# Debian's python3: a python3 of pyenv earlier on PATH would not see
# python3-grpcio and python3-protobuf.
/usr/bin/python3 -m venv --system-site-packages "$venv"
PIP_NO_INDEX=1 "$venv/bin/pip" install --quiet --no-build-isolation \
  --no-warn-script-location "$src/clients/python"
