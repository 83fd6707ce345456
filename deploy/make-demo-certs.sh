#!/usr/bin/env bash
# deploy/make-demo-certs.sh: a throwaway PKI for the deployments of deploy/
# (compose.yaml, k8s/, verify-image.sh), made with openssl in about a
# second. Not for production: the CA keys lie next to the certificates; use
# cert-manager (k8s/cert-manager/) or your own CA there.
#
#   deploy/make-demo-certs.sh [--renew] [DIR]
#                         (DIR default: deploy/demo-certs, git-ignored)
#
# One directory per Kubernetes Secret, with the file names cert-manager and
# `kubectl create secret tls` use (tls.crt, tls.key, ca.crt), so that each
# directory is mounted as it is (compose, verify-image) or becomes its
# Secret with
#   kubectl create secret generic throttle-NAME-tls --type=kubernetes.io/tls \
#     --from-file=DIR/NAME/
#
#   server/       the throttle servers: serverAuth, DNS throttle,
#                 throttle.NS, throttle.NS.svc, throttle.NS.svc.cluster.local
#                 (the Service and the compose alias), localhost and
#                 IP 127.0.0.1 (verify-image); ca.crt: the throttle CA, which
#                 is also the CA client certificates must come from
#   worker/       clientAuth, URI spiffe://throttle.demo/worker (role worker
#                 on "crawl" in deploy/policy.conf)
#   controller/   clientAuth, URI spiffe://throttle.demo/controller
#   admin/        clientAuth, URI spiffe://throttle.demo/admin
#   etcd/         etcd's own certificate (serverAuth and clientAuth, so that
#                 etcdctl in the etcd container can use it too): DNS etcd,
#                 throttle-etcd, throttle-etcd.NS.svc(.cluster.local),
#                 *.throttle-etcd-peer(.NS.svc(.cluster.local)), localhost,
#                 IP 127.0.0.1; ca.crt: the etcd CA
#   etcd-client/  the throttle servers' client certificate for etcd's
#                 --client-cert-auth (clientAuth); ca.crt: the etcd CA
#   ca.crt ca.key etcd-ca.crt etcd-ca.key
#                 the two CAs (their keys only here, for --renew)
#
# Two CAs: etcd trusts every certificate of its CA, so a worker certificate
# from the throttle CA must not be one etcd accepts (whoever writes etcd
# can change any throttle).
#
# Permissions: DIR itself is 0700 (other users of this host cannot reach the
# keys); the directories inside are 0755 and the keys 0644, because the
# containers read them as their own users (10001 for throttle, 10002 for
# etcd) through read-only bind mounts, where DIR's mode does not apply.
#
# Environment:
#   THROTTLE_CERT_NAMESPACE     Kubernetes namespace in the DNS names (default)
#   THROTTLE_CERT_TRUST_DOMAIN  SPIFFE trust domain (throttle.demo)
#   THROTTLE_CERT_DAYS          validity of every certificate (30)
# An existing DIR (one this script made) is replaced. --renew keeps its two
# CAs and issues new certificates and keys from them, as a rotation does:
# clients that trust the CA go on trusting the servers. A running server
# re-reads its files within seconds when they change in place (a Kubernetes
# Secret volume, deploy/README.md "Rotation"); compose's bind mounts keep
# the directory they mounted, so recreate those containers
# (docker-compose ... up -d --force-recreate) after a --renew.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
renew=
if [[ ${1:-} == --renew ]]; then
  renew=1
  shift
fi
[[ ${1:-} != -* ]] || { echo "usage: make-demo-certs.sh [--renew] [DIR]" >&2; exit 2; }
dir=${1:-$here/demo-certs}
namespace=${THROTTLE_CERT_NAMESPACE:-default}
domain=${THROTTLE_CERT_TRUST_DOMAIN:-throttle.demo}
days=${THROTTLE_CERT_DAYS:-30}
fail() { echo "make-demo-certs.sh: $*" >&2; exit 1; }
command -v openssl >/dev/null || fail "needs openssl"
# Never replace a directory this script did not make.
if [[ -e $dir && ! -f $dir/ca.key ]] && [[ -n $(ls -A "$dir" 2>/dev/null) ]]; then
  fail "$dir exists and was not made by this script (no ca.key): not replacing it"
fi
if [[ -n $renew ]]; then
  for f in ca.crt ca.key etcd-ca.crt etcd-ca.key; do
    [[ -f $dir/$f ]] || fail "--renew: no $dir/$f (run without --renew first)"
  done
fi

# Everything is made in a new directory next to DIR and moved into place at
# the end, so that a failure leaves the old set as it was.
parent=$(dirname "$dir")
mkdir -p "$parent"
tmp=$(mktemp -d "$parent/.demo-certs.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
cd "$tmp"

quiet() {
  local out
  out=$("$@" 2>&1) || { printf '%s\n' "$out" >&2; exit 1; }
}
# ca NAME SUBJECT: a self-signed CA, NAME.crt and NAME.key.
ca() {
  quiet openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 \
    -nodes -keyout "$1.key" -out "$1.crt" -days "$days" -subj "$2" \
    -addext basicConstraints=critical,CA:TRUE \
    -addext keyUsage=critical,keyCertSign,cRLSign \
    -addext subjectKeyIdentifier=hash
}
# leaf CA DIR SUBJECT EXTENSIONS: DIR/tls.crt, DIR/tls.key and DIR/ca.crt
# (a copy of CA.crt).
leaf() {
  mkdir -p "$2"
  quiet openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
    -keyout "$2/tls.key" -out "$2/tls.csr" -subj "$3"
  printf '%s\n' "basicConstraints=critical,CA:FALSE" \
    "keyUsage=critical,digitalSignature" \
    "authorityKeyIdentifier=keyid" "$4" >"$2/tls.ext"
  quiet openssl x509 -req -in "$2/tls.csr" -CA "$1.crt" -CAkey "$1.key" \
    -CAcreateserial -out "$2/tls.crt" -days "$days" -extfile "$2/tls.ext"
  rm -f "$2/tls.csr" "$2/tls.ext"
  cp "$1.crt" "$2/ca.crt"
}
# The names of Service NAME in the namespace, as a subjectAltName list.
service_names() {
  printf 'DNS:%s,DNS:%s.%s,DNS:%s.%s.svc,DNS:%s.%s.svc.cluster.local' \
    "$1" "$1" "$namespace" "$1" "$namespace" "$1" "$namespace"
}

if [[ -n $renew ]]; then
  cp -p "$dir"/ca.crt "$dir"/ca.key "$dir"/etcd-ca.crt "$dir"/etcd-ca.key .
else
  ca ca "/O=throttle demo/CN=throttle demo CA"
  ca etcd-ca "/O=throttle demo/CN=throttle demo etcd CA"
fi
leaf ca server "/O=throttle demo/CN=throttle" \
  "subjectAltName=$(service_names throttle),DNS:localhost,IP:127.0.0.1
extendedKeyUsage=serverAuth"
for name in worker controller admin; do
  leaf ca "$name" "/O=throttle demo/CN=$name" \
    "subjectAltName=URI:spiffe://$domain/$name
extendedKeyUsage=clientAuth"
done

peer="DNS:*.throttle-etcd-peer,DNS:*.throttle-etcd-peer.$namespace.svc"
peer+=",DNS:*.throttle-etcd-peer.$namespace.svc.cluster.local"
leaf etcd-ca etcd "/O=throttle demo/CN=etcd" \
  "subjectAltName=DNS:etcd,$(service_names throttle-etcd),$peer,DNS:localhost,IP:127.0.0.1
extendedKeyUsage=serverAuth,clientAuth"
leaf etcd-ca etcd-client "/O=throttle demo/CN=throttle-server" \
  "extendedKeyUsage=clientAuth"

rm -f ./*.srl
chmod 0600 ca.key etcd-ca.key
chmod 0644 ca.crt etcd-ca.crt
for d in server worker controller admin etcd etcd-client; do
  chmod 0755 "$d"
  chmod 0644 "$d"/*
done
chmod 0700 .

cd /
rm -rf "$dir"
mv "$tmp" "$dir"
trap - EXIT
echo "make-demo-certs.sh: ${renew:+renewed }$dir: server, worker, controller, admin, etcd, etcd-client (valid $days days)"
