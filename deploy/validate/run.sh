#!/usr/bin/env bash
# Offline checks of deploy/ with npm tools (no cluster, no Docker engine):
#   run.sh manifests    Kubernetes manifests and compose.yaml
#                       (validate-manifests.mjs)
#   run.sh dockerfile   the repository's Dockerfile and deploy/etcd/Dockerfile,
#                       with dockerfile-utils and dockerfilelint; any finding,
#                       warnings too, fails
# Installs node/npm (Debian) and this folder's locked npm packages when
# missing. Exit status 0 when clean, 1 on a finding, 2 on a usage error.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)

if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
  sudo_cmd=()
  [[ $(id -u) -eq 0 ]] || sudo_cmd=(sudo)
  "${sudo_cmd[@]}" apt-get update -qq
  DEBIAN_FRONTEND=noninteractive "${sudo_cmd[@]}" apt-get install -y -qq \
    --no-install-recommends nodejs npm >/dev/null
fi

# npm ci once per package-lock.json; ctest may run two of these at once.
(
  flock 9
  stamp="$here/node_modules/.package-lock.json"
  if [[ ! -f $stamp || $here/package-lock.json -nt $stamp ]]; then
    echo "run.sh: npm ci in $here"
    (cd "$here" && npm ci --no-audit --no-fund --prefer-offline \
      --loglevel=error >/dev/null)
  fi
) 9<"$here/package.json"

case "${1:-}" in
  manifests)
    exec node "$here/validate-manifests.mjs" "$repo/deploy"
    ;;
  dockerfile)
    status=0
    for dockerfile in "$repo/Dockerfile" "$repo/deploy/etcd/Dockerfile"; do
      name=${dockerfile#"$repo/"}
      findings=$("$here/node_modules/.bin/dockerfile-utils" lint "$dockerfile") ||
        status=1
      if [[ -n $findings ]]; then
        echo "$name:"
        echo "$findings"
        status=1
      fi
      "$here/node_modules/.bin/dockerfilelint" "$dockerfile" || status=1
    done
    ((status == 0)) && echo "Dockerfile, deploy/etcd/Dockerfile: dockerfile-utils and dockerfilelint found nothing"
    exit "$status"
    ;;
  *)
    echo "usage: $0 manifests|dockerfile" >&2
    exit 2
    ;;
esac
