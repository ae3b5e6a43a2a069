#!/usr/bin/env bash
# WSO2 Identity Server cluster behind Apache httpd (mod_proxy_balancer), the
# procedure of seeds/001: a local CA, a certificate for the Apache front end,
# and certificates for the two Identity Server nodes it balances (ports 9443
# and 9444 on the same host), plus the CA certificate for clients to trust.
#
#   examples/seed-001-wso2-is-apache.sh OUT_DIR [CERTMESH]
#
# Every openssl step of the seed is one certmesh command here; the comments
# name the step each replaces.
set -euo pipefail

out="${1:?usage: $0 OUT_DIR [CERTMESH]}"
certmesh="${2:-certmesh}"
export CERTMESH_HOME="$out/pki"

# openssl genrsa -des3 -out ca.key 1024
# openssl req -new -x509 -days 365 -key ca.key -out ca.crt
"$certmesh" ca init --name "WSO2 IS Cluster CA" --days 3650

# openssl genrsa -des3 -out server.key 1024
# openssl req -new -key server.key -out server.csr
# openssl x509 -req -days 365 -in server.csr -CA ca.crt -CAkey ca.key -set_serial 01 -out server.crt
# openssl rsa -in server.key -out server.key.insecure; mv server.key.insecure server.key
"$certmesh" issue apache-lb --dns localhost --ip 127.0.0.1 --profile server

# The balanced Identity Server nodes: they serve HTTPS to Apache and talk to
# each other, so they get the peer profile (serverAuth + clientAuth).
"$certmesh" issue is-node1 --dns localhost --ip 127.0.0.1 --profile peer
"$certmesh" issue is-node2 --dns localhost --ip 127.0.0.1 --profile peer

# "export the CA certificate of the Apache HTTP server into the client's trust store"
mkdir -p "$out/apache" "$out/clients"
"$certmesh" ca show --pem > "$out/clients/ca.crt"

# The files Apache's virtual host names (SSLCertificateFile, SSLCertificateKeyFile):
install -m 0644 "$CERTMESH_HOME/issued/apache-lb/fullchain.pem" "$out/apache/server.crt"
install -m 0600 "$CERTMESH_HOME/issued/apache-lb/key.pem" "$out/apache/server.key"

"$certmesh" list
