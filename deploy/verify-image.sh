#!/usr/bin/env bash
# deploy/verify-image.sh: builds the image from the repository's Dockerfile
# with a real Docker engine on this machine and checks it over loopback.
#
# Needs root on Debian 12. Installs docker.io and debootstrap when missing,
# starts a private dockerd (own unix socket, no bridge, no iptables), makes
# the debian:bookworm base image with debootstrap from the machine's apt
# mirror when the engine does not have it yet (no registry is needed), builds
# with --network host, then:
#   - runs the server container (read-only root, no capabilities) on a free
#     127.0.0.1 port with deploy/throttles.conf as its --config;
#   - throttlectl in a container lists the configured throttles;
#   - the tutorial in a container (4 worker processes) gets Total 20..22;
#   - 3 worker containers share the configured throttle "crawl", a
#     controller container starts and stops it, every worker exits 0;
#   - the metrics endpoint answers, if the server has --metrics_listen;
#   - `docker stop` (SIGTERM) with a worker waiting ends the server fast
#     with exit code 0;
# and prints the image size. Everything it starts (containers, dockerd,
# temporary directories) is removed on any exit.
#
# The engine's data (the base image, the build cache, the built image) is
# kept in $THROTTLE_VERIFY_CACHE (default /var/cache/throttle-verify-image)
# so that the next run skips debootstrap; delete that directory to start
# from nothing.
#   THROTTLE_IMAGE  tag to build (default throttle:verify)
set -euo pipefail

repo=$(cd "$(dirname "$0")/.." && pwd)
image=${THROTTLE_IMAGE:-throttle:verify}
cache=${THROTTLE_VERIFY_CACHE:-/var/cache/throttle-verify-image}
begin=$SECONDS

# Messages go to the script's own stdout and stderr (fds 3 and 4) even from
# a trap that runs while a step's output is redirected to a log.
exec 3>&1 4>&2
log() { printf 'verify-image [%3ds] %s\n' $((SECONDS - begin)) "$*" >&3; }
die() {
  printf 'verify-image [%3ds] FAIL: %s\n' $((SECONDS - begin)) "$*" >&4
  exit 1
}
# Debian's client: the `docker` earlier on the PATH may lack BuildKit.
docker() { /usr/bin/docker "$@"; }

[[ $(id -u) -eq 0 ]] || die "run as root (dockerd and debootstrap need it)"

# --- packages ---------------------------------------------------------------
missing=()
for p in docker.io debootstrap; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null |
    grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  log "installing ${missing[*]}"
  { apt-get update -qq &&
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
      --no-install-recommends "${missing[@]}"; } >/tmp/verify-image-apt.log 2>&1 || {
    tail -20 /tmp/verify-image-apt.log >&2
    die "apt-get install ${missing[*]} failed"
  }
  rm -f /tmp/verify-image-apt.log
fi

# --- clean-up of everything started below -----------------------------------
work=$(mktemp -d /tmp/throttle-verify.XXXXXX)
prefix=throttle-verify-$$
dockerd_pid=
long_pid=
# Runs a long step (debootstrap, docker build) in a process group of its
# own, so that a signal to this script is acted on at once and ends it.
long() {
  local rc=0
  setsid "$@" &
  long_pid=$!
  wait "$long_pid" || rc=$?
  long_pid=
  return "$rc"
}
cleanup() {
  local rc=$?
  set +e
  if [[ -n $long_pid ]]; then
    kill -- "-$long_pid" 2>/dev/null
    wait "$long_pid" 2>/dev/null
  fi
  if [[ -n $dockerd_pid ]] && kill -0 "$dockerd_pid" 2>/dev/null; then
    local ids
    mapfile -t ids < <(docker ps -aq --filter "name=^$prefix-" 2>/dev/null)
    ((${#ids[@]} == 0)) || docker rm -f "${ids[@]}" >/dev/null 2>&1
    kill "$dockerd_pid"
    for _ in $(seq 100); do
      kill -0 "$dockerd_pid" 2>/dev/null || break
      sleep 0.2
    done
    kill -0 "$dockerd_pid" 2>/dev/null && kill -9 "$dockerd_pid"
    wait "$dockerd_pid" 2>/dev/null
  fi
  # Whatever is still mounted under our directories (a debootstrap that
  # failed half-way, an engine that had to be killed).
  findmnt -rn -o TARGET |
    awk -v a="$work/" -v b="$cache/" \
      'index($0, a) == 1 || index($0, b) == 1' |
    sort -r | xargs -r -n1 umount -l
  rm -rf --one-file-system "$work"
  ((rc == 0)) || log "failed (exit $rc); cleaned up"
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# One run at a time per engine data directory.
mkdir -p "$cache"
exec 9>"$cache/lock"
flock -w 900 9 || die "another verify-image.sh holds $cache/lock"

# --- private engine -----------------------------------------------------------
log "starting dockerd on $work/docker.sock"
# 9>&- : the engine must not inherit (and keep) the lock; nor our output.
/usr/sbin/dockerd --host "unix://$work/docker.sock" \
  --data-root "$cache/docker" --exec-root "$work/exec" \
  --pidfile "$work/dockerd.pid" --bridge none --iptables=false \
  --ip6tables=false >"$work/dockerd.log" 2>&1 3>&- 4>&- 9>&- &
dockerd_pid=$!
export DOCKER_HOST="unix://$work/docker.sock"
for _ in $(seq 150); do
  docker version >/dev/null 2>&1 && break
  kill -0 "$dockerd_pid" 2>/dev/null || break
  sleep 0.2
done
docker version >/dev/null 2>&1 || {
  tail -20 "$work/dockerd.log" >&2
  die "dockerd did not come up"
}

# --- base image -------------------------------------------------------------
# Prints "URI SUITE..." for each Debian source of the machine's apt setup
# (deb822 .sources files and the one-line sources.list format).
apt_sources() {
  local f
  for f in /etc/apt/sources.list.d/*.sources; do
    [[ -f $f ]] || continue
    awk '
      function flush() {
        if (types ~ /(^| )deb( |$)/ && uris != "" && suites != "")
          print uris "\t" suites
        types = uris = suites = ""
      }
      /^[ \t]*$/ { flush(); next }
      /^#/ { next }
      tolower($1) == "types:" { $1 = ""; types = $0 " " }
      tolower($1) == "uris:" { uris = $2 }
      tolower($1) == "suites:" { $1 = ""; sub(/^ +/, ""); suites = $0 }
      END { flush() }' "$f"
  done
  for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
    [[ -f $f ]] || continue
    awk '$1 == "deb" { sub(/\[[^]]*\][ \t]*/, ""); print $2 "\t" $3 }' "$f"
  done
}

make_base_image() {
  local sources mirror security
  sources=$(apt_sources)
  mirror=$(awk -F'\t' '$2 ~ /(^| )bookworm( |$)/ { print $1; exit }' \
    <<<"$sources")
  security=$(awk -F'\t' '$2 ~ /bookworm-security/ { print $1; exit }' \
    <<<"$sources")
  [[ -n $mirror ]] || die "no bookworm source in /etc/apt (sources.list.d/*.sources or sources.list)"
  log "debootstrap minbase bookworm from $mirror (about a minute)"
  long debootstrap --variant=minbase bookworm "$work/rootfs" "$mirror" \
    >"$work/debootstrap.log" 2>&1 || {
    tail -20 "$work/debootstrap.log" >&4
    die "debootstrap failed"
  }
  rm -f "$work/rootfs/etc/apt/sources.list"
  {
    printf 'Types: deb\nURIs: %s\nSuites: bookworm bookworm-updates\n' "$mirror"
    printf 'Components: main\n'
    printf 'Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg\n'
    if [[ -n $security ]]; then
      printf '\nTypes: deb\nURIs: %s\nSuites: bookworm-security\n' "$security"
      printf 'Components: main\n'
      printf 'Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg\n'
    fi
  } >"$work/rootfs/etc/apt/sources.list.d/debian.sources"
  rm -rf "$work/rootfs/var/lib/apt/lists/"* "$work/rootfs/var/cache/apt/"*
  tar --numeric-owner -C "$work/rootfs" -c . |
    docker import --change 'CMD ["bash"]' \
      --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
      - debian:bookworm >/dev/null
  rm -rf --one-file-system "$work/rootfs"
}

if docker image inspect debian:bookworm >/dev/null 2>&1; then
  log "base image debian:bookworm present"
else
  make_base_image
  log "imported debian:bookworm"
fi

# --- build ------------------------------------------------------------------
log "building $image (log: docker build --progress=plain)"
if ! DOCKER_BUILDKIT=1 long /usr/bin/docker build --progress=plain \
  --network host -t "$image" "$repo" >"$work/build.log" 2>&1; then
  tail -40 "$work/build.log" >&4
  die "docker build failed"
fi
# Earlier builds of the same tag, and build cache beyond 3 GB.
docker image prune -f >/dev/null
docker builder prune -f --keep-storage 3GB >/dev/null
size_bytes=$(docker image inspect -f '{{.Size}}' "$image")
log "built $image: $((size_bytes / 1000000)) MB"

user=$(docker image inspect -f '{{.Config.User}}' "$image")
[[ $user =~ ^[1-9][0-9]*(:[0-9]+)?$ ]] ||
  die "image user '$user' is not a numeric non-root user"

# --- run ----------------------------------------------------------------------
# A 127.0.0.1 TCP port nobody listens on now (for flags without port 0).
free_port() {
  local used port
  used=$(awk 'NR > 1 && $4 == "0A" { split($2, a, ":"); print a[2] }' \
    /proc/net/tcp /proc/net/tcp6)
  for _ in $(seq 100); do
    port=$((20000 + RANDOM % 30000))
    grep -qix "$(printf '%04X' "$port")" <<<"$used" || {
      echo "$port"
      return
    }
  done
  die "no free port found"
}

# Containers as Kubernetes runs them (deploy/k8s): read-only root, no
# capabilities, no privilege escalation; host network for loopback.
run_flags=(--network host --read-only --cap-drop ALL
  --security-opt no-new-privileges)
ctl() {
  docker run --rm "${run_flags[@]}" --entrypoint throttlectl "$image" \
    --address="127.0.0.1:$port" "$@"
}
server_logs() { docker logs "$prefix-server" 2>&1 | tail -20 >&2; }

server_args=(--listen=127.0.0.1:0 --port_file=/tmp/port
  --config=/etc/throttle/throttles.conf)
metrics_port=
# --helpfull exits 1.
flags=$(docker run --rm --network none --entrypoint throttle_server "$image" \
  --helpfull 2>&1) || true
if grep -q -- '--metrics_listen' <<<"$flags"; then
  metrics_port=$(free_port)
  server_args+=(--metrics_listen="127.0.0.1:$metrics_port")
else
  log "server has no --metrics_listen: metrics not checked"
fi
docker run -d --name "$prefix-server" "${run_flags[@]}" --tmpfs /tmp \
  -v "$repo/deploy/throttles.conf:/etc/throttle/throttles.conf:ro" \
  "$image" "${server_args[@]}" >/dev/null
port=
for _ in $(seq 100); do
  port=$(docker exec "$prefix-server" cat /tmp/port 2>/dev/null) && break
  [[ $(docker inspect -f '{{.State.Running}}' "$prefix-server") == true ]] ||
    break
  sleep 0.1
done
[[ -n $port ]] || { server_logs; die "server did not start"; }
log "server container serving on 127.0.0.1:$port"

listing=$(ctl list) || { server_logs; die "throttlectl list failed"; }
for name in $(sed -e 's/#.*//' "$repo/deploy/throttles.conf" | awk 'NF { print $1 }'); do
  awk -v n="$name" '$1 == n { found = 1 } END { exit !found }' <<<"$listing" ||
    die "throttle $name from deploy/throttles.conf not listed:
$listing"
done
log "throttlectl list: the throttles of deploy/throttles.conf are there"

if [[ -n $metrics_port ]]; then
  metrics=$(curl -fsS --max-time 5 "http://127.0.0.1:$metrics_port/metrics") ||
    die "metrics endpoint 127.0.0.1:$metrics_port/metrics did not answer"
  grep -q '^# TYPE throttle_' <<<"$metrics" ||
    die "metrics: no throttle_ metric in /metrics"
  log "metrics endpoint answers ($(grep -c '^# TYPE ' <<<"$metrics") metric families)"
fi

# The tutorial: its own 4 worker processes in one container.
out=$(docker run --rm --name "$prefix-tutorial" "${run_flags[@]}" \
  --entrypoint throttle_tutorial "$image" --address="127.0.0.1:$port" \
  2>"$work/tutorial.err") ||
  die "tutorial failed: $out $(cat "$work/tutorial.err")"
total=$(sed -n 's/^Total: //p' <<<"$out")
[[ $total =~ ^[0-9]+$ ]] && ((total >= 20 && total <= 22)) ||
  die "tutorial Total '$total', expected 20..22:
$out $(cat "$work/tutorial.err")"
log "tutorial container: Total $total"

# A fleet: worker containers on the configured throttle "crawl" (4 per 1 s),
# started and stopped by a controller container.
workers=3
for i in $(seq "$workers"); do
  docker run -d --name "$prefix-worker-$i" "${run_flags[@]}" \
    --entrypoint throttle_tutorial "$image" --worker \
    --address="127.0.0.1:$port" --throttle=crawl --worker_id="w$i" >/dev/null
done
waiting=0
for _ in $(seq 100); do
  waiting=$(ctl list | awk '$1 == "crawl" { print $8 }') || true
  ((waiting >= workers)) && break
  sleep 0.1
done
((waiting >= workers)) || die "only $waiting of $workers workers wait on crawl"
ctl start crawl >/dev/null
sleep 2
stats=$(ctl stop crawl) || die "throttlectl stop crawl failed"
total=$(sed -n 's/^Total: //p' <<<"$stats")
runtime=$(sed -n 's/^Runtime: //p' <<<"$stats")
# Smooth mode at 4 per 1 s: one grant at the start and one every 0.25 s.
awk -v t="$total" -v r="$runtime" 'BEGIN {
  e = int(r * 4) + 1; exit !(t >= e - 1 && t <= e + 1) }' ||
  die "fleet Total $total over ${runtime}s, expected 4 per second:
$stats"
for i in $(seq "$workers"); do
  code=$(timeout 30 /usr/bin/docker wait "$prefix-worker-$i") ||
    die "worker container $i did not end after stop"
  [[ $code == 0 ]] || die "worker container $i exited $code"
done
log "fleet: $workers worker containers, Total $total in ${runtime}s, all exited 0"

# SIGTERM with a worker waiting on a stream: health goes NOT_SERVING, the
# stream ends UNAVAILABLE, the process exits 0 well within the grace.
ctl create verify-stop --max_n=1 --per=1 >/dev/null
docker run -d --name "$prefix-waiter" "${run_flags[@]}" \
  --entrypoint throttle_tutorial "$image" --worker \
  --address="127.0.0.1:$port" --throttle=verify-stop --worker_id=waiter \
  >/dev/null
for _ in $(seq 100); do
  waiting=$(ctl list | awk '$1 == "verify-stop" { print $8 }') || true
  ((waiting >= 1)) && break
  sleep 0.1
done
((waiting >= 1)) || die "the waiting worker did not connect"
t0=$(date +%s%N)
docker stop -t 20 "$prefix-server" >/dev/null
stop_ms=$((($(date +%s%N) - t0) / 1000000))
code=$(docker inspect -f '{{.State.ExitCode}}' "$prefix-server")
[[ $code == 0 ]] || { server_logs; die "server exited $code on SIGTERM"; }
((stop_ms < 5000)) || { server_logs; die "docker stop took ${stop_ms} ms"; }
log "docker stop: exit code 0 in ${stop_ms} ms with a worker waiting"

log "OK: $image $((size_bytes / 1000000)) MB, checked in $((SECONDS - begin)) s"
