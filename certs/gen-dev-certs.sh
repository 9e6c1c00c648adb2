#!/usr/bin/env bash
# Development TLS for `podlease serve`: a throwaway CA and a serving certificate for localhost,
# 127.0.0.1, ::1 and the in-cluster service names. Never for production (use cert-manager or the
# chart's generated certificate).
#
#   certs/gen-dev-certs.sh [OUT_DIR]            # default: the directory of this script
#   PODLEASE_CERT_SANS="DNS:foo,IP:10.0.0.1" certs/gen-dev-certs.sh /tmp/x   # extra SANs
#
# Writes OUT_DIR/ca.crt, ca.key, tls.crt, tls.key. Existing files are replaced.
set -euo pipefail

out="${1:-$(cd "$(dirname "$0")" && pwd)}"
mkdir -p "$out"
svc="${PODLEASE_SERVICE:-podlease}"
ns="${PODLEASE_NAMESPACE:-podlease}"
sans="DNS:localhost,IP:127.0.0.1,IP:::1,DNS:${svc},DNS:${svc}.${ns},DNS:${svc}.${ns}.svc,DNS:${svc}.${ns}.svc.cluster.local"
if [[ -n "${PODLEASE_CERT_SANS:-}" ]]; then sans="${sans},${PODLEASE_CERT_SANS}"; fi

tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT

openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 3650 \
  -subj "/CN=podlease dev CA" -keyout "$tmp/ca.key" -out "$tmp/ca.crt" \
  -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" \
  2>/dev/null
openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
  -subj "/CN=${svc}.${ns}.svc" -keyout "$tmp/tls.key" -out "$tmp/tls.csr" 2>/dev/null
printf 'subjectAltName=%s\nbasicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth\n' \
  "$sans" >"$tmp/ext.cnf"
openssl x509 -req -in "$tmp/tls.csr" -CA "$tmp/ca.crt" -CAkey "$tmp/ca.key" -CAcreateserial \
  -days 825 -extfile "$tmp/ext.cnf" -out "$tmp/tls.crt" 2>/dev/null

chmod 600 "$tmp/tls.key" "$tmp/ca.key"
# Key first, certificate last: a watcher that sees the new certificate finds its key in place.
for f in ca.key ca.crt tls.key tls.crt; do mv -f "$tmp/$f" "$out/$f"; done
echo "podlease: dev certificates written to $out (CA: $out/ca.crt)" >&2
