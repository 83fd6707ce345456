#!/usr/bin/env bash
# Regenerates third_party/etcd/ (the vendored etcd v3 API protos and their
# licence) from Debian's golang-etcd-server-dev package, without installing
# it (installing pulls in ~400 MB of Go packages; the .deb itself is 0.9 MB).
#
#   scripts/update-etcd-protos.sh            the pinned version below
#   ETCD_DEB_VERSION=3.4.23-4 scripts/...    another version of the package
#
# What it does, and nothing else (third_party/etcd/README.md says the same):
#   1. apt-get download golang-etcd-server-dev=$ETCD_DEB_VERSION; dpkg-deb -x.
#   2. Takes kv.proto, auth.proto, rpc.proto and v3election.proto from
#      /usr/share/gocode/src/go.etcd.io/etcd/ and keeps their paths under
#      third_party/etcd/proto/etcd/, so that their own imports
#      ("etcd/mvcc/mvccpb/kv.proto", ...) resolve with
#      --proto_path=third_party/etcd/proto.
#   3. Strips the gogoproto and google.api imports and options (they only
#      serve Go code generation and the HTTP gateway; messages, RPCs and wire
#      names are untouched) with the sed below.
#   4. Writes third_party/etcd/LICENSE: the package's copyright lines and the
#      Apache-2.0 text its copyright file points at.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)

version=${ETCD_DEB_VERSION:-3.4.23-4}
out=${root}/third_party/etcd
protos=(
  mvcc/mvccpb/kv.proto
  auth/authpb/auth.proto
  etcdserver/etcdserverpb/rpc.proto
  etcdserver/api/v3election/v3electionpb/v3election.proto
)

work=$(mktemp -d "${TMPDIR:-/tmp}/etcd-protos.XXXXXX")
trap 'rm -rf "${work}"' EXIT
# apt-get download writes into the current directory; _apt must be able to
# write there, or apt warns and downloads unsandboxed (harmless).
chmod 0777 "${work}"
(cd "${work}" && apt-get download -qq "golang-etcd-server-dev=${version}")
dpkg-deb -x "${work}"/golang-etcd-server-dev_*.deb "${work}/x"
src=${work}/x/usr/share/gocode/src/go.etcd.io/etcd

rm -rf "${out}/proto"
for p in "${protos[@]}"; do
  mkdir -p "$(dirname "${out}/proto/etcd/${p}")"
  sed -E -e '/^import "(gogoproto\/gogo|google\/api\/annotations)\.proto";/d' \
    -e '/^option \(gogoproto\.[a-z_]+\) = [a-z]+;/d' \
    -e 's/ \[\(gogoproto\.[a-z_]+\) ?= ?[^]]*\]//g' \
    -e '/option \(google\.api\.http\) = \{/,/\};/d' \
    "${src}/${p}" >"${out}/proto/etcd/${p}"
done
if grep -rnE 'gogoproto|google\.api' "${out}/proto"; then
  echo "update-etcd-protos: the lines above survived the sed" >&2
  exit 1
fi

copyright=${work}/x/usr/share/doc/golang-etcd-server-dev/copyright
{
  echo "The etcd protos under proto/ are from etcd ${version%-*}"
  echo "(https://github.com/etcd-io/etcd), as packaged by Debian in"
  echo "golang-etcd-server-dev ${version}. Its copyright file says:"
  echo
  # The stanza for "Files: *" (the protos), up to the next blank line.
  sed -n '/^Files: \*$/,/^$/p' "${copyright}"
  echo "The full text of that licence follows."
  echo
  cat /usr/share/common-licenses/Apache-2.0
} >"${out}/LICENSE"

echo "update-etcd-protos: third_party/etcd from golang-etcd-server-dev ${version}"
