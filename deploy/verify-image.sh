#!/usr/bin/env bash
# deploy/verify-image.sh: builds the image from the repository's Dockerfile
# with a real Docker engine on this machine and checks it over loopback.
#
# Needs root on Debian 12. Installs docker.io and debootstrap when missing,
# starts a private dockerd (own unix socket, no bridge, no iptables), makes
# the debian:bookworm base image with debootstrap from the machine's apt
# mirror when the engine does not have it yet (no registry is needed), builds
# with --network host (the runtime stage on debian:bookworm-slim, made
# from debian:bookworm when missing; the OCI labels' version, revision and
# created given as build arguments and checked in the image, which must
# hold no build tools, headers or documentation), then, everything over
# mTLS with the PKI of deploy/make-demo-certs.sh and the policy
# deploy/policy.conf (each client container with its role's certificate,
# as deploy/k8s and compose):
#   - throttle_server --check_policy accepts deploy/policy.conf;
#   - runs the server container (read-only root, no capabilities) on a free
#     127.0.0.1 port with deploy/throttles.yaml as its --config, its
#     certificate directory laid out as a Kubernetes Secret volume;
#   - throttlectl in a container lists the configured throttles (the
#     controller); no client certificate or plaintext: UNAVAILABLE; the
#     worker listing or stopping, the controller creating: PERMISSION_DENIED;
#   - the tutorial in a container (4 worker processes) gets Total 20..22;
#   - 3 worker containers share the configured throttle "crawl", a
#     controller container starts and stops it, every worker exits 0;
#   - rotation: renewed certificates swapped into the directory as the
#     kubelet does; new handshakes get the new one, no restart;
#   - the metrics endpoint answers, if the server has --metrics_listen;
#   - `docker stop` (SIGTERM) with a worker waiting ends the server fast
#     with exit code 0;
# then builds the etcd image (deploy/etcd) and checks the high-available
# pair: one etcd container (mTLS, the etcd CA), two server containers on
# --etcd_endpoints:
#   - exactly one leads (throttle_leader 1 on one metrics port, the other's
#     serving port closed, the health ports plaintext and health only);
#     throttlectl through the multi-address target ipv4:STANDBY,LEADER
#     (THROTTLE_TLS_SERVER_NAME=throttle) lists the configured throttles,
#     not without a client certificate;
#   - 4 worker containers on "crawl" through that target; a worker's stop:
#     PERMISSION_DENIED; `docker kill` (SIGKILL) of the leader: the other
#     leads after about the lease TTL,
#     the workers get fuel from it without a restart, the rate bound holds
#     across the failover, and a controller's stop ends every worker with
#     exit code 0;
#   - the killed container restarted stands by; `docker stop` (SIGTERM) of
#     the leader with a worker waiting hands over in well under a second,
#     the worker's stream moves to the new leader, and both servers exit 0;
# and prints the image sizes. Everything it starts (containers, dockerd,
# temporary directories) is removed on any exit.
#
# The engine's data (the base image, the build cache, the built image) is
# kept in $THROTTLE_VERIFY_CACHE (default /var/cache/throttle-verify-image)
# so that the next run skips debootstrap; delete that directory to start
# from nothing.
#   THROTTLE_IMAGE       tag to build (default throttle:verify)
#   THROTTLE_ETCD_IMAGE  tag of the etcd image (default throttle-etcd:verify)
set -euo pipefail

repo=$(cd "$(dirname "$0")/.." && pwd)
image=${THROTTLE_IMAGE:-throttle:verify}
etcd_image=${THROTTLE_ETCD_IMAGE:-throttle-etcd:verify}
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

# debian:bookworm-slim, the runtime stage's base, as Docker Hub's is made
# (debuerreotype's slimification): debian:bookworm without documentation
# (but the copyright files), manuals, info pages and translations, and a
# dpkg configuration that keeps packages installed later from adding them.
# One flat layer (export and import), so that what is removed is gone.
make_slim_image() {
  local cid
  log "making debian:bookworm-slim from debian:bookworm"
  cid=$(docker create --network none debian:bookworm sh -ec '
    printf "%s\n" "path-exclude /usr/share/doc/*" \
      "path-include /usr/share/doc/*/copyright" \
      "path-exclude /usr/share/man/*" "path-exclude /usr/share/groff/*" \
      "path-exclude /usr/share/info/*" "path-exclude /usr/share/lintian/*" \
      "path-exclude /usr/share/linda/*" "path-exclude /usr/share/locale/*" \
      "path-include /usr/share/locale/locale.alias" \
      >/etc/dpkg/dpkg.cfg.d/docker-slim
    find /usr/share/doc -mindepth 1 ! -type d ! -name copyright -delete
    find /usr/share/doc -mindepth 1 -type d -empty -delete
    rm -rf /usr/share/man/* /usr/share/groff/* /usr/share/info/* \
      /usr/share/lintian/* /usr/share/linda/*
    find /usr/share/locale -mindepth 1 -maxdepth 1 ! -name locale.alias \
      -exec rm -rf {} +')
  docker start -a "$cid" >"$work/slim.log" 2>&1 || {
    tail -20 "$work/slim.log" >&4
    docker rm -f "$cid" >/dev/null
    die "making debian:bookworm-slim failed"
  }
  docker export "$cid" |
    docker import --change 'CMD ["bash"]' \
      --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
      - debian:bookworm-slim >/dev/null
  docker rm "$cid" >/dev/null
}

if docker image inspect debian:bookworm >/dev/null 2>&1; then
  log "base image debian:bookworm present"
else
  make_base_image
  log "imported debian:bookworm"
fi
if docker image inspect debian:bookworm-slim >/dev/null 2>&1; then
  log "base image debian:bookworm-slim present"
else
  make_slim_image
  log "imported debian:bookworm-slim"
fi

# --- build ------------------------------------------------------------------
# The OCI labels' build arguments (Dockerfile, at the end).
version=$(sed -n 's/^project(throttle VERSION \([^ )]*\).*/\1/p' "$repo/CMakeLists.txt")
revision=$(git -C "$repo" rev-parse HEAD 2>/dev/null || echo unknown)
created=$(date -u +%Y-%m-%dT%H:%M:%SZ)
log "building $image $version at $revision (log: docker build --progress=plain)"
if ! DOCKER_BUILDKIT=1 long /usr/bin/docker build --progress=plain \
  --network host --build-arg VERSION="$version" \
  --build-arg REVISION="$revision" --build-arg CREATED="$created" \
  -t "$image" "$repo" >"$work/build.log" 2>&1; then
  tail -40 "$work/build.log" >&4
  die "docker build failed"
fi
log "building $etcd_image from deploy/etcd"
if ! DOCKER_BUILDKIT=1 long /usr/bin/docker build --progress=plain \
  --network host -t "$etcd_image" "$repo/deploy/etcd" \
  >"$work/build-etcd.log" 2>&1; then
  tail -40 "$work/build-etcd.log" >&4
  die "docker build of deploy/etcd failed"
fi
# Earlier builds of the same tags, and build cache beyond 3 GB.
docker image prune -f >/dev/null
docker builder prune -f --keep-storage 3GB >/dev/null
size_bytes=$(docker image inspect -f '{{.Size}}' "$image")
etcd_size_bytes=$(docker image inspect -f '{{.Size}}' "$etcd_image")
log "built $image: $((size_bytes / 1000000)) MB, $etcd_image: $((etcd_size_bytes / 1000000)) MB"

for i in "$image" "$etcd_image"; do
  user=$(docker image inspect -f '{{.Config.User}}' "$i")
  [[ $user =~ ^[1-9][0-9]*(:[0-9]+)?$ ]] ||
    die "image $i: user '$user' is not a numeric non-root user"
done

# The OCI labels: each there and not empty; version, revision and created
# what this build was given.
label() {
  docker image inspect -f "{{index .Config.Labels \"org.opencontainers.image.$1\"}}" "$image"
}
for l in title description version revision created source licenses; do
  [[ -n $(label "$l") ]] || die "image $image: no label org.opencontainers.image.$l"
done
[[ $(label version) == "$version" ]] ||
  die "image $image: org.opencontainers.image.version is '$(label version)', not CMakeLists.txt's $version"
[[ $(label revision) == "$revision" ]] ||
  die "image $image: org.opencontainers.image.revision is '$(label revision)', not $revision"
[[ $(label created) == "$created" ]] ||
  die "image $image: org.opencontainers.image.created is '$(label created)', not $created"
# Slim, and nothing of the build stage but the binaries: no compiler, no
# headers, no documentation, and in /usr/local/bin the three programs.
docker run --rm --network none --entrypoint sh "$image" -ec '
  for tool in g++ c++ cmake make protoc; do
    ! command -v "$tool" >/dev/null || { echo "$tool is in the image"; exit 1; }
  done
  [ ! -e /usr/include ] || [ -z "$(ls -A /usr/include)" ] ||
    { echo "/usr/include is not empty"; exit 1; }
  [ -z "$(find /usr/share/doc -type f ! -name copyright)" ] ||
    { echo "documentation in /usr/share/doc"; exit 1; }
  [ -z "$(ls -A /usr/share/man 2>/dev/null)" ] ||
    { echo "manuals in /usr/share/man"; exit 1; }
  [ "$(ls /usr/local/bin | tr "\n" " ")" = "throttle_server throttle_tutorial throttlectl " ] ||
    { echo "/usr/local/bin holds: $(ls /usr/local/bin)"; exit 1; }
' >"$work/slim-check.log" 2>&1 || die "image $image: $(tail -1 "$work/slim-check.log")"
log "labels of $image: version $(label version), revision $(label revision), created $(label created); slim: no build tools, headers or documentation"

# --- run ----------------------------------------------------------------------
# A 127.0.0.1 TCP port nobody listens on now and not handed out before by
# this script (for flags without port 0, and for a standby, which does not
# bind its serving port until it leads).
free_port() {
  local used port
  used=$(awk 'NR > 1 && $4 == "0A" { split($2, a, ":"); print a[2] }' \
    /proc/net/tcp /proc/net/tcp6)
  touch "$work/ports"
  for _ in $(seq 100); do
    port=$((20000 + RANDOM % 30000))
    grep -qix "$(printf '%04X' "$port")" <<<"$used" && continue
    grep -qx "$port" "$work/ports" && continue
    echo "$port" >>"$work/ports"
    echo "$port"
    return
  done
  die "no free port found"
}

# Containers as Kubernetes runs them (deploy/k8s): read-only root, no
# capabilities, no privilege escalation; host network for loopback.
run_flags=(--network host --read-only --cap-drop ALL
  --security-opt no-new-privileges)

# --- certificates and the policy ---------------------------------------------
# deploy/make-demo-certs.sh's PKI (its server certificate names localhost
# and 127.0.0.1 too), read by the containers' users through read-only
# mounts, as Kubernetes mounts Secrets. The policy is deploy/policy.conf
# (workers on crawl, a controller, an admin) with one rule more for this
# script's own throttles.
certs=$work/certs
bash "$repo/deploy/make-demo-certs.sh" "$certs" >/dev/null ||
  die "deploy/make-demo-certs.sh failed"
install -d -m 755 "$certs/anonymous"
cp "$certs/ca.crt" "$certs/anonymous/ca.crt"
install -d -m 755 "$work/policy"
{
  cat "$repo/deploy/policy.conf"
  echo "spiffe://throttle.demo/worker  worker  verify-*"
} >"$work/policy/policy.conf"
chmod 644 "$work/policy/policy.conf"
out=$(docker run --rm --network none --entrypoint throttle_server \
  -v "$repo/deploy/policy.conf:/policy.conf:ro" "$image" \
  --check_policy=/policy.conf 2>&1) ||
  die "throttle_server --check_policy deploy/policy.conf: $out"
log "certificates from deploy/make-demo-certs.sh; deploy/policy.conf passes --check_policy ($(sed -n 's/.*: \([0-9]*\) rules, valid$/\1/p' <<<"$out") rules)"

# The server's certificate directory laid out as the kubelet writes a
# Secret volume (and cert-manager's Secrets reach the pod): the files in a
# versioned directory, ..data a symlink to it, each name a symlink into
# ..data. secret_update DIR SRC makes it or swaps ..data to a copy of SRC's
# files in one rename, as a Secret update does.
secret_update() {
  local dir=$1 src=$2 version f
  version="..$(date +%Y_%m_%d_%H_%M_%S.%N)"
  install -d -m 755 "$dir" "$dir/$version"
  cp "$src"/* "$dir/$version/"
  ln -sfn "$version" "$dir/..data_tmp"
  mv -T "$dir/..data_tmp" "$dir/..data"
  for f in "$src"/*; do
    f=${f##*/}
    [[ -L $dir/$f ]] || ln -s "..data/$f" "$dir/$f"
  done
  find "$dir" -mindepth 1 -maxdepth 1 -name '..2*' ! -name "$version" \
    -exec rm -rf {} +
}

# The server files as deploy/k8s mounts them.
server_tls_args=(--tls_cert=/etc/throttle-tls/tls.crt
  --tls_key=/etc/throttle-tls/tls.key --tls_client_ca=/etc/throttle-tls/ca.crt
  --policy=/etc/throttle/policy.conf --config=/etc/throttle/throttles.yaml)
server_mounts() {  # server_mounts TLS_DIR: the docker run -v flags
  mounts=(-v "$repo/deploy/throttles.yaml:/etc/throttle/throttles.yaml:ro"
    -v "$work/policy/policy.conf:/etc/throttle/policy.conf:ro"
    -v "$1:/etc/throttle-tls:ro")
}

# A client container's identity: who_flags WHO sets `who_args`, the docker
# run flags that mount the certificate directory WHO (worker, controller,
# admin; anonymous: the CA alone, TLS without a client certificate; plain:
# no TLS at all) in /etc/throttle-tls and point the THROTTLE_TLS_*
# variables at it, as deploy/k8s and compose do. With server_name set
# (the pair's multi-address target), THROTTLE_TLS_SERVER_NAME too.
server_name=
who_flags() {
  who_args=()
  [[ $1 == plain ]] && return
  who_args=(-v "$certs/$1:/etc/throttle-tls:ro"
    -e THROTTLE_TLS_CA=/etc/throttle-tls/ca.crt)
  [[ $1 == anonymous ]] ||
    who_args+=(-e THROTTLE_TLS_CERT=/etc/throttle-tls/tls.crt
      -e THROTTLE_TLS_KEY=/etc/throttle-tls/tls.key)
  [[ -z $server_name ]] || who_args+=(-e THROTTLE_TLS_SERVER_NAME="$server_name")
}
# throttlectl in a container: ctl_as WHO TARGET ARGS...; ctl_at TARGET
# ARGS... as the controller; ctl ARGS... the same at the single server.
ctl_as() {
  local target=$2
  who_flags "$1"
  shift 2
  docker run --rm "${run_flags[@]}" "${who_args[@]}" --entrypoint throttlectl \
    "$image" --address="$target" "$@"
}
ctl_at() { ctl_as controller "$@"; }
ctl() { ctl_at "127.0.0.1:$port" "$@"; }
# Fails unless `throttlectl ARGS...` as WHO at TARGET fails with a message
# holding WANT: refused WHO TARGET WANT ARGS...
refused() {
  local who=$1 target=$2 want=$3 out
  shift 3
  if out=$(ctl_as "$who" "$target" "$@" 2>&1); then
    die "throttlectl $* as $who at $target succeeded, expected $want:
$out"
  fi
  grep -q -- "$want" <<<"$out" ||
    die "throttlectl $* as $who at $target failed without $want:
$out"
}
# The serial number of the certificate the server at 127.0.0.1:PORT shows
# a client (the controller) in the TLS handshake.
served_serial() {
  timeout 5 openssl s_client -connect "127.0.0.1:$1" -alpn h2 \
    -CAfile "$certs/controller/ca.crt" -cert "$certs/controller/tls.crt" \
    -key "$certs/controller/tls.key" </dev/null 2>/dev/null |
    openssl x509 -noout -serial 2>/dev/null
}
# The last lines of a container's log, on stderr.
logs_of() { docker logs "$1" 2>&1 | tail -20 >&4; }
server_logs() { logs_of "$prefix-server"; }
now_ms() { echo $(($(date +%s%N) / 1000000)); }

# Fails unless $1 (the output of throttlectl list) has every throttle of
# deploy/throttles.yaml (its names: the keys indented by two under
# "throttles:").
check_configured() {
  local name
  for name in $(sed -n -e 's/^  \([^ #:][^ :]*\):.*/\1/p' "$repo/deploy/throttles.yaml"); do
    awk -v n="$name" '$1 == n { found = 1 } END { exit !found }' <<<"$1" ||
      die "throttle $name from deploy/throttles.yaml not listed:
$1"
  done
}

# Waits (about 10 polls a second, at most 100) until at least N streams
# wait on THROTTLE at the gRPC target TARGET: await_waiting TARGET THROTTLE N.
await_waiting() {
  local waiting=0
  for _ in $(seq 100); do
    # The WAITING column, found by its header (columns get added).
    waiting=$(ctl_at "$1" list 2>/dev/null | awk -v t="$2" '
      NR == 1 { for (i = 1; i <= NF; i++) if ($i == "WAITING") col = i }
      col && $1 == t { print $col }') || true
    ((${waiting:-0} >= $3)) && return
    sleep 0.1
  done
  die "only ${waiting:-0} of $3 workers wait on $2 at $1"
}

# Checks the output of `throttlectl stop` of a smooth throttle of 4 per 1 s
# (one grant at the start and one every 0.25 s): its Total is at most HIGH
# above and at most LOW below that. Sets total and runtime.
check_rate() {
  local stats=$1 low=$2 high=$3 what=$4
  total=$(sed -n 's/^Total: //p' <<<"$stats")
  runtime=$(sed -n 's/^Runtime: //p' <<<"$stats")
  awk -v t="$total" -v r="$runtime" -v lo="$low" -v hi="$high" 'BEGIN {
    e = int(r * 4) + 1; exit !(t != "" && t >= e - lo && t <= e + hi) }' ||
    die "$what: Total $total over ${runtime}s, expected 4 per second (-$low/+$high):
$stats"
}

# Waits up to 30 s for each container named to end, and fails unless it
# exited 0.
await_exit_0() {
  local c code
  for c in "$@"; do
    code=$(timeout 30 /usr/bin/docker wait "$c") ||
      { logs_of "$c"; die "container $c did not end"; }
    [[ $code == 0 ]] || { logs_of "$c"; die "container $c exited $code"; }
  done
}

server_args=(--listen=127.0.0.1:0 --port_file=/tmp/port "${server_tls_args[@]}")
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
secret_update "$work/server-tls" "$certs/server"
server_mounts "$work/server-tls"
docker run -d --name "$prefix-server" "${run_flags[@]}" --tmpfs /tmp \
  "${mounts[@]}" "$image" "${server_args[@]}" >/dev/null
port=
for _ in $(seq 100); do
  port=$(docker exec "$prefix-server" cat /tmp/port 2>/dev/null) && break
  [[ $(docker inspect -f '{{.State.Running}}' "$prefix-server") == true ]] ||
    break
  sleep 0.1
done
[[ -n $port ]] || { server_logs; die "server did not start"; }
docker logs "$prefix-server" 2>&1 | grep -q 'event=transport security=mtls' || {
  server_logs
  die "the server does not log event=transport security=mtls"
}
log "server container serving mTLS with the policy on 127.0.0.1:$port"

listing=$(ctl list) || { server_logs; die "throttlectl list failed"; }
check_configured "$listing"
log "throttlectl list (controller certificate): the throttles of deploy/throttles.yaml are there"

# Who may not: no client certificate (the handshake is refused), no TLS at
# all, a worker listing or stopping, a controller creating.
refused anonymous "127.0.0.1:$port" UNAVAILABLE list
refused plain "127.0.0.1:$port" UNAVAILABLE list
refused worker "127.0.0.1:$port" PERMISSION_DENIED list
refused worker "127.0.0.1:$port" PERMISSION_DENIED stop crawl
refused controller "127.0.0.1:$port" PERMISSION_DENIED create verify-denied \
  --max_n=1 --per=1
log "refused: list without a client certificate and in plaintext (UNAVAILABLE); list and stop crawl as the worker, create as the controller (PERMISSION_DENIED)"

if [[ -n $metrics_port ]]; then
  metrics=$(curl -fsS --max-time 5 "http://127.0.0.1:$metrics_port/metrics") ||
    die "metrics endpoint 127.0.0.1:$metrics_port/metrics did not answer"
  grep -q '^# TYPE throttle_' <<<"$metrics" ||
    die "metrics: no throttle_ metric in /metrics"
  log "metrics endpoint answers ($(grep -c '^# TYPE ' <<<"$metrics") metric families)"
fi

# The tutorial: its own 4 worker processes in one container.
# It creates its throttle: the admin's certificate.
who_flags admin
out=$(docker run --rm --name "$prefix-tutorial" "${run_flags[@]}" \
  "${who_args[@]}" --entrypoint throttle_tutorial "$image" \
  --address="127.0.0.1:$port" 2>"$work/tutorial.err") ||
  die "tutorial failed: $out $(cat "$work/tutorial.err")"
total=$(sed -n 's/^Total: //p' <<<"$out")
[[ $total =~ ^[0-9]+$ ]] && ((total >= 20 && total <= 22)) ||
  die "tutorial Total '$total', expected 20..22:
$out $(cat "$work/tutorial.err")"
log "tutorial container (admin certificate): Total $total"

# Worker containers (the seed's loop, throttle_tutorial --worker):
# start_workers TARGET THROTTLE NAME... starts one named container each.
start_workers() {
  local target=$1 throttle=$2 c
  shift 2
  who_flags worker
  for c in "$@"; do
    docker run -d --name "$c" "${run_flags[@]}" "${who_args[@]}" \
      --entrypoint throttle_tutorial "$image" --worker \
      --address="$target" --throttle="$throttle" --worker_id="${c#"$prefix-"}" \
      >/dev/null
  done
}

# A fleet: worker containers on the configured throttle "crawl" (4 per 1 s),
# started and stopped by a controller container.
workers=()
for i in 1 2 3; do workers+=("$prefix-worker-$i"); done
start_workers "127.0.0.1:$port" crawl "${workers[@]}"
await_waiting "127.0.0.1:$port" crawl "${#workers[@]}"
ctl start crawl >/dev/null
sleep 2
stats=$(ctl stop crawl) || die "throttlectl stop crawl failed"
check_rate "$stats" 1 1 fleet
await_exit_0 "${workers[@]}"
log "fleet: ${#workers[@]} worker containers (worker certificate), Total $total in ${runtime}s, all exited 0"

# Rotation as cert-manager and the kubelet do it: new certificates from the
# same CA, the server's directory swapped in one rename under the running
# server; new handshakes get the new certificate within seconds, with no
# restart, and clients that trust the CA go on.
started=$(docker inspect -f '{{.State.StartedAt}}' "$prefix-server")
old_serial=$(served_serial "$port")
[[ -n $old_serial ]] || die "openssl s_client got no certificate from 127.0.0.1:$port"
bash "$repo/deploy/make-demo-certs.sh" --renew "$certs" >/dev/null ||
  die "deploy/make-demo-certs.sh --renew failed"
install -d -m 755 "$certs/anonymous"
cp "$certs/ca.crt" "$certs/anonymous/ca.crt"
new_serial=$(openssl x509 -noout -serial -in "$certs/server/tls.crt")
t0=$(now_ms)
secret_update "$work/server-tls" "$certs/server"
while [[ $(served_serial "$port") != "$new_serial" ]]; do
  (($(now_ms) - t0 < 10000)) || { server_logs; die "the server still shows $old_serial 10 s after its certificate was replaced"; }
  sleep 0.2
done
rotate_ms=$(($(now_ms) - t0))
[[ $(docker inspect -f '{{.State.StartedAt}}' "$prefix-server") == "$started" ]] ||
  die "the server restarted during the rotation"
listing=$(ctl list) || { server_logs; die "throttlectl list with the renewed certificates failed"; }
check_configured "$listing"
log "rotation: the server's Secret-style directory swapped; new handshakes got the new certificate after ${rotate_ms} ms, no restart; list with renewed client certificates"

# SIGTERM with a worker waiting on a stream: health goes NOT_SERVING, the
# stream ends UNAVAILABLE, the process exits 0 well within the grace.
ctl_as admin "127.0.0.1:$port" create verify-stop --max_n=1 --per=1 >/dev/null
start_workers "127.0.0.1:$port" verify-stop "$prefix-waiter"
await_waiting "127.0.0.1:$port" verify-stop 1
t0=$(now_ms)
docker stop -t 20 "$prefix-server" >/dev/null
stop_ms=$(($(now_ms) - t0))
code=$(docker inspect -f '{{.State.ExitCode}}' "$prefix-server")
[[ $code == 0 ]] || { server_logs; die "server exited $code on SIGTERM"; }
((stop_ms < 5000)) || { server_logs; die "docker stop took ${stop_ms} ms"; }
log "docker stop: exit code 0 in ${stop_ms} ms with a worker waiting"

# --- high availability: two servers on one etcd -------------------------------
grep -q -- '--etcd_endpoints' <<<"$flags" ||
  die "throttle_server has no --etcd_endpoints: the pair is not checked"

# grpc.health.v1.Health/Check for service "" at 127.0.0.1:PORT, what a
# Kubernetes gRPC probe asks, sent by curl over h2c (grpc_health PORT), or
# over mTLS with the controller's certificate (grpc_health PORT tls): prints
# SERVING, NOT_SERVING or none(BYTES) (no answer, or not one of those).
grpc_health() {
  local body url="http://127.0.0.1:$1" opts=(--http2-prior-knowledge)
  if [[ ${2:-} == tls ]]; then
    url="https://localhost:$1"
    opts=(--http2 --cacert "$certs/controller/ca.crt"
      --cert "$certs/controller/tls.crt" --key "$certs/controller/tls.key")
  fi
  body=$({ printf '\0\0\0\0\0' | curl -sS --max-time 2 "${opts[@]}" \
    -H 'content-type: application/grpc' -H 'te: trailers' --data-binary @- \
    "$url/grpc.health.v1.Health/Check" 2>/dev/null || true; } |
    od -An -tx1 | tr -d ' \n')
  case $body in
    00000000020801) echo SERVING ;;
    00000000020802) echo NOT_SERVING ;;
    *) echo "none($body)" ;;
  esac
}
# Whether something accepts TCP connections on 127.0.0.1:PORT.
port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
# The throttle_leader gauge of the server whose metrics are on
# 127.0.0.1:PORT: 1, 0, or - when it does not answer.
leader_gauge() {
  { curl -fsS --max-time 2 "http://127.0.0.1:$1/metrics" 2>/dev/null || true; } |
    awk '$1 ~ /^throttle_leader[{]/ { v = $2 + 0 }
         END { print (v == "" ? "-" : v) }'
}
# Waits up to TIMEOUT_MS until exactly one of the servers NAME... has
# throttle_leader 1 and the others 0, and sets `leader` to its name:
# await_leader TIMEOUT_MS NAME...
await_leader() {
  local end n g ones seen
  end=$(($(now_ms) + $1))
  shift
  while :; do
    ones=0 seen=
    for n in "$@"; do
      g=$(leader_gauge "${ha_metrics[$n]}")
      seen+=" $n=$g"
      [[ $g == 1 ]] && { ones=$((ones + 1)); leader=$n; }
      [[ $g == 0 || $g == 1 ]] || ones=-99
    done
    ((ones == 1)) && return
    (($(now_ms) < end)) || break
    sleep 0.05
  done
  for n in "$@"; do logs_of "$prefix-ha-$n"; done
  die "not exactly one leader among $* (throttle_leader:$seen)"
}

etcd_client_port=$(free_port)
etcd_peer_port=$(free_port)
etcd_metrics_port=$(free_port)
# The data directory as a Kubernetes PersistentVolume would hold it, owned
# by the image's user.
etcd_user=$(docker image inspect -f '{{.Config.User}}' "$etcd_image")
install -d -o "${etcd_user%%:*}" -g "${etcd_user##*:}" -m 700 "$work/etcd"
etcd_url() { echo "http://127.0.0.1:$1"; }
# Clients over mTLS with the etcd CA of make-demo-certs.sh (as deploy/k8s
# and compose); peers and metrics plaintext.
docker run -d --name "$prefix-etcd" "${run_flags[@]}" \
  -v "$work/etcd:/var/lib/etcd" -v "$certs/etcd:/etc/etcd-tls:ro" "$etcd_image" \
  --name=verify --data-dir=/var/lib/etcd/data \
  --listen-client-urls="https://127.0.0.1:$etcd_client_port" \
  --advertise-client-urls="https://127.0.0.1:$etcd_client_port" \
  --cert-file=/etc/etcd-tls/tls.crt --key-file=/etc/etcd-tls/tls.key \
  --trusted-ca-file=/etc/etcd-tls/ca.crt --client-cert-auth \
  --listen-peer-urls="$(etcd_url "$etcd_peer_port")" \
  --initial-advertise-peer-urls="$(etcd_url "$etcd_peer_port")" \
  --initial-cluster="verify=$(etcd_url "$etcd_peer_port")" \
  --initial-cluster-state=new \
  --listen-metrics-urls="$(etcd_url "$etcd_metrics_port")" \
  --auto-compaction-mode=periodic --auto-compaction-retention=1h >/dev/null
healthy=
for _ in $(seq 100); do
  curl -fsS --max-time 1 "$(etcd_url "$etcd_metrics_port")/health" 2>/dev/null |
    grep -q '"health":"true"' && { healthy=1; break; }
  sleep 0.1
done
[[ -n $healthy ]] || { logs_of "$prefix-etcd"; die "etcd did not become healthy"; }
# etcdctl CERT_DIR ARGS...: etcdctl in a container of the etcd image
# with the certificate of CERT_DIR (under $certs).
etcdctl_as() {
  local dir=$1
  shift
  docker run --rm "${run_flags[@]}" -v "$certs/$dir:/etc/etcd-tls:ro" \
    --entrypoint etcdctl "$etcd_image" \
    --endpoints="https://127.0.0.1:$etcd_client_port" --dial-timeout=2s \
    --command-timeout=3s --cacert=/etc/etcd-tls/ca.crt \
    --cert=/etc/etcd-tls/tls.crt --key=/etc/etcd-tls/tls.key "$@"
}
etcdctl_as etcd-client endpoint health >/dev/null 2>&1 ||
  { logs_of "$prefix-etcd"; die "etcdctl endpoint health (the servers' etcd client certificate) failed"; }
# A throttle client certificate is no key to etcd (another CA).
install -d -m 755 "$certs/worker-to-etcd"
cp "$certs/worker/tls.crt" "$certs/worker/tls.key" "$certs/worker-to-etcd/"
cp "$certs/etcd/ca.crt" "$certs/worker-to-etcd/ca.crt"
! etcdctl_as worker-to-etcd endpoint health >/dev/null 2>&1 ||
  die "etcd accepted the worker's certificate (from the throttle CA)"
log "etcd container healthy on 127.0.0.1:$etcd_client_port (/health; etcdctl over mTLS with the servers' etcd certificate, refused with the worker's)"

declare -A ha_port ha_health ha_metrics
for n in a b; do
  ha_port[$n]=$(free_port)
  ha_health[$n]=$(free_port)
  ha_metrics[$n]=$(free_port)
  server_mounts "$certs/server"
  docker run -d --name "$prefix-ha-$n" "${run_flags[@]}" "${mounts[@]}" \
    -v "$certs/etcd-client:/etc/throttle-etcd-tls:ro" \
    "$image" --listen="127.0.0.1:${ha_port[$n]}" \
    --health_listen="127.0.0.1:${ha_health[$n]}" \
    --metrics_listen="127.0.0.1:${ha_metrics[$n]}" \
    --etcd_endpoints="127.0.0.1:$etcd_client_port" --cluster=verify \
    --etcd_tls_ca=/etc/throttle-etcd-tls/ca.crt \
    --etcd_tls_cert=/etc/throttle-etcd-tls/tls.crt \
    --etcd_tls_key=/etc/throttle-etcd-tls/tls.key \
    --lease_ttl=2s "${server_tls_args[@]}" >/dev/null
done
await_leader 20000 a b
first=$leader
second=$([[ $first == a ]] && echo b || echo a)
# Liveness on the health port of both (plaintext gRPC, what deploy/k8s's
# grpc probe asks); readiness, a TCP connect to the serving port as
# deploy/k8s's tcpSocket probe does, only on the leader: the standby does
# not even accept connections there. The health port serves health alone:
# no throttle.v1 around the mTLS port.
for n in a b; do
  h=$(grpc_health "${ha_health[$n]}")
  [[ $h == SERVING ]] || die "server $n: health port answers $h, not SERVING"
done
port_open "${ha_port[$first]}" ||
  die "leader $first does not accept connections on its serving port ${ha_port[$first]}"
! port_open "${ha_port[$second]}" ||
  die "standby $second accepts connections on its serving port ${ha_port[$second]}"
h=$(grpc_health "${ha_port[$first]}" tls)
[[ $h == SERVING ]] || die "leader $first: serving port health over mTLS $h, not SERVING"
refused plain "127.0.0.1:${ha_health[$first]}" UNIMPLEMENTED list
# The standby first: gRPC's pick_first must pass over its closed port. A
# multi-address target has no name for the certificate check: the clients
# are given the name the servers' certificate holds (as compose's and
# Kubernetes' clients dial it), THROTTLE_TLS_SERVER_NAME=throttle.
target="ipv4:127.0.0.1:${ha_port[$second]},127.0.0.1:${ha_port[$first]}"
server_name=throttle
listing=$(ctl_at "$target" list) || die "throttlectl list through $target failed"
check_configured "$listing"
refused anonymous "$target" UNAVAILABLE list
log "pair (mTLS, policy, etcd over mTLS): $first leads, $second stands by (health SERVING on both health ports, serving port open on $first only, mTLS health SERVING there, no throttle.v1 on the health port); $target lists the configured throttles as the controller, not without a client certificate"

# SIGKILL of the leader while 4 workers take fuel through the target.
workers=()
for i in 1 2 3 4; do workers+=("$prefix-ha-worker-$i"); done
start_workers "$target" crawl "${workers[@]}"
await_waiting "$target" crawl "${#workers[@]}"
ctl_at "$target" start crawl >/dev/null
# A worker may take fuel, not stop the fleet.
refused worker "$target" PERMISSION_DENIED stop crawl
state=$(ctl_at "$target" list | awk '$1 == "crawl" { print $2 }')
[[ $state == running ]] || die "crawl is $state after the worker's refused stop"
sleep 2
t0=$(now_ms)
docker kill "$prefix-ha-$first" >/dev/null
await_leader 10000 "$second"
failover_ms=$(($(now_ms) - t0))
# Latest history is not kept across a failover: what it shows was granted
# by the new leader. The workers reconnect with their back-off: give them
# up to 10 s to take 4 grants from it.
end=$(($(now_ms) + 10000))
while :; do
  latest=$(ctl_at "$target" latest crawl --window=3) ||
    die "throttlectl latest crawl through $target failed after the failover"
  emissions=$(sed -n 's/^Emissions: //p' <<<"$latest")
  ((${emissions:-0} >= 4)) && break
  if (($(now_ms) >= end)); then
    logs_of "$prefix-ha-$second"
    logs_of "${workers[0]}"
    die "after the failover, $second granted ${emissions:-0} in 3 s (expected about 12):
$latest
$(ctl_at "$target" list 2>&1)
$(curl -fsS --max-time 2 "http://127.0.0.1:${ha_metrics[$second]}/metrics" 2>&1 |
      grep '^throttle_leader')"
  fi
  sleep 0.5
done
fuel_ms=$(($(now_ms) - t0))
for c in "${workers[@]}"; do
  state=$(docker inspect -f '{{.State.Status}}' "$c")
  [[ $state == running ]] || { logs_of "$c"; die "worker $c is $state after the failover"; }
done
stats=$(ctl_at "$target" stop crawl) || die "throttlectl stop crawl through $target failed"
# No more than the rate across the failover; up to 6 s of it missing (lease
# TTL 2 s, etcd's expiry check every 0.5 s, the workers' reconnect back-off,
# a loaded machine).
check_rate "$stats" 24 1 "pair"
await_exit_0 "${workers[@]}"
log "failover: the worker's stop refused (PERMISSION_DENIED), crawl ran on; SIGKILL of $first, $second led after ${failover_ms} ms; its latest 3 s, read ${fuel_ms} ms after the kill: $emissions grants to the workers; Total $total in ${runtime}s (rate bound held); ${#workers[@]} workers exited 0, none restarted"

# The killed server restarted stands by; SIGTERM of the leader with a worker
# waiting hands over to it, and the worker's stream follows.
docker start "$prefix-ha-$first" >/dev/null
await_leader 10000 "$first" "$second"
[[ $leader == "$second" ]] || die "the restarted $first took the lead from $second"
ctl_as admin "$target" create verify-handover --max_n=1 --per=1 >/dev/null
start_workers "$target" verify-handover "$prefix-ha-waiter"
await_waiting "$target" verify-handover 1
t0=$(now_ms)
docker stop -t 20 "$prefix-ha-$second" >/dev/null &
stop_pid=$!
await_leader 5000 "$first"
handover_ms=$(($(now_ms) - t0))
wait "$stop_pid"
stop_ms=$(($(now_ms) - t0))
code=$(docker inspect -f '{{.State.ExitCode}}' "$prefix-ha-$second")
[[ $code == 0 ]] || { logs_of "$prefix-ha-$second"; die "leader $second exited $code on SIGTERM"; }
await_waiting "$target" verify-handover 1
ctl_at "$target" start verify-handover >/dev/null
ctl_at "$target" stop verify-handover >/dev/null
await_exit_0 "$prefix-ha-waiter"
t0=$(now_ms)
docker stop -t 20 "$prefix-ha-$first" >/dev/null
last_ms=$(($(now_ms) - t0))
code=$(docker inspect -f '{{.State.ExitCode}}' "$prefix-ha-$first")
[[ $code == 0 ]] || { logs_of "$prefix-ha-$first"; die "leader $first exited $code on SIGTERM"; }
log "handover: $first restarted stood by; SIGTERM of $second: $first led after ${handover_ms} ms, $second exited 0 in ${stop_ms} ms; the waiting worker moved over and exited 0; $first exited 0 in ${last_ms} ms"

log "OK: $image $((size_bytes / 1000000)) MB, $etcd_image $((etcd_size_bytes / 1000000)) MB, checked in $((SECONDS - begin)) s"
