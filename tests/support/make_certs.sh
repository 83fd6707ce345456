#!/usr/bin/env bash
# Makes a test PKI with openssl in DIR (created if missing), for the tests
# of TLS, mTLS and identities. Takes about a second.
#   ca.pem ca.key              the CA every good certificate comes from
#   server.pem server.key      127.0.0.1 / localhost, serverAuth
#   server2.pem server2.key    another server certificate (rotation tests)
#   NAME.pem NAME.key          client certificates, clientAuth, with the
#                              SPIFFE URI spiffe://throttle.test/NAME, for
#                              NAME in worker, controller, admin, tenant-b
#   nouri.pem nouri.key        a client certificate without a URI SAN
#                              (subject CN=nouri,O=throttle)
#   rogue-ca.pem rogue.pem rogue.key  a client certificate from another CA
# Usage: make_certs.sh DIR
set -euo pipefail
dir=${1:?usage: make_certs.sh DIR}
mkdir -p "$dir"
cd "$dir"
days=2
quiet() { "$@" >/dev/null 2>&1 || { "$@"; exit 1; }; }

ca() {  # ca NAME SUBJECT
  quiet openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 \
    -nodes -keyout "$1.key" -out "$1.pem" -days $days -subj "$2" \
    -addext basicConstraints=critical,CA:TRUE \
    -addext keyUsage=critical,keyCertSign,cRLSign
}
leaf() {  # leaf CA NAME SUBJECT EXTENSIONS
  quiet openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
    -keyout "$2.key" -out "$2.csr" -subj "$3"
  printf '%s\n' "$4" >"$2.ext"
  quiet openssl x509 -req -in "$2.csr" -CA "$1.pem" -CAkey "$1.key" \
    -CAcreateserial -out "$2.pem" -days $days -extfile "$2.ext"
  rm -f "$2.csr" "$2.ext"
}

ca ca "/CN=throttle test CA"
for s in server server2; do
  leaf ca "$s" "/CN=$s" "subjectAltName=IP:127.0.0.1,DNS:localhost
extendedKeyUsage=serverAuth"
done
for name in worker controller admin tenant-b; do
  leaf ca "$name" "/CN=$name/O=throttle" \
    "subjectAltName=URI:spiffe://throttle.test/$name
extendedKeyUsage=clientAuth"
done
leaf ca nouri "/CN=nouri/O=throttle" "extendedKeyUsage=clientAuth"
ca rogue-ca "/CN=rogue CA"
leaf rogue-ca rogue "/CN=rogue" \
  "subjectAltName=URI:spiffe://throttle.test/admin
extendedKeyUsage=clientAuth"
chmod 600 ./*.key
