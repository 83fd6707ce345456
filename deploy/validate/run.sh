#!/usr/bin/env bash
# Offline checks of deploy/ with npm tools (no cluster, no Docker engine):
#   run.sh manifests    Kubernetes manifests and compose.yaml
#                       (validate-manifests.mjs), the validator's own
#                       checks of the kustomize layout shown to fail
#                       (selftest.mjs), and `docker-compose config` of
#                       compose.yaml with Debian's docker-compose 1.29
#   run.sh dockerfile   the repository's Dockerfile and deploy/etcd/Dockerfile,
#                       with dockerfile-utils and dockerfilelint; any finding,
#                       warnings too, fails; the Dockerfile's ARG VERSION is
#                       CMakeLists.txt's project VERSION
# Installs node/npm (Debian), docker-compose (Debian, for manifests) and
# this folder's locked npm packages when missing. Exit status 0 when
# clean, 1 on a finding, 2 on a usage error.
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

# npm ci once per package-lock.json (a stamp holds its hash); ctest may
# run two of these at once. A node_modules that is a symbolic link (a git
# worktree sharing another checkout's) is left alone: npm ci would empty
# the directory it points to.
(
  flock 9
  stamp="$here/node_modules/.throttle-package-lock.sha256"
  want="$(sha256sum <"$here/package-lock.json")"
  if [[ -L $here/node_modules ]]; then
    [[ -d $here/node_modules/ ]] || {
      echo "run.sh: $here/node_modules is a broken link" >&2
      exit 1
    }
  elif [[ ! -f $stamp || $(<"$stamp") != "$want" ]]; then
    echo "run.sh: npm ci in $here"
    (cd "$here" && npm ci --no-audit --no-fund --prefer-offline \
      --loglevel=error >/dev/null)
    echo "$want" >"$stamp"
  fi
) 9<"$here/package.json"

case "${1:-}" in
  manifests)
    node "$here/validate-manifests.mjs" "$repo/deploy"
    node "$here/selftest.mjs" "$repo/deploy"
    # compose.yaml as the compose Debian 12 ships reads it (docker-compose
    # 1.29; no engine needed): unknown keys, wrong types, bad references.
    if ! command -v docker-compose >/dev/null; then
      sudo_cmd=()
      [[ $(id -u) -eq 0 ]] || sudo_cmd=(sudo)
      "${sudo_cmd[@]}" apt-get update -qq
      DEBIAN_FRONTEND=noninteractive "${sudo_cmd[@]}" apt-get install -y -qq \
        --no-install-recommends docker-compose >/dev/null
    fi
    docker-compose -f "$repo/deploy/compose.yaml" config -q
    echo "deploy/compose.yaml: $(docker-compose version --short) config: OK"
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
    # The image's org.opencontainers.image.version is the project's.
    project_version=$(sed -n 's/^project(throttle VERSION \([^ )]*\).*/\1/p' \
      "$repo/CMakeLists.txt")
    image_version=$(sed -n 's/^ARG VERSION=//p' "$repo/Dockerfile")
    if [[ -z $project_version || $image_version != "$project_version" ]]; then
      echo "Dockerfile: ARG VERSION=$image_version, but CMakeLists.txt's project VERSION is '$project_version'"
      status=1
    fi
    ((status == 0)) && echo "Dockerfile, deploy/etcd/Dockerfile: dockerfile-utils and dockerfilelint found nothing; ARG VERSION=$image_version as in CMakeLists.txt"
    exit "$status"
    ;;
  *)
    echo "usage: $0 manifests|dockerfile" >&2
    exit 2
    ;;
esac
