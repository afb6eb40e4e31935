#!/usr/bin/env bash
# Writes the TLS files for a zhzj NATS cluster into DIR:
#
#   ca.pem, ca-key.pem                  a private certificate authority (kept if already in DIR)
#   zhzj-n1.pem, zhzj-n1-key.pem, ...   one server certificate per node, used for client
#                                       connections and, as both server and client certificate,
#                                       for the mutual TLS between the nodes (routes)
#   client.pem, client-key.pem          the certificate zhzj processes present when the servers
#                                       require client certificates (`verify: true`)
#
# Usage: make-certs.sh DIR [EXTRA_NAME ...]
#
# Every node certificate names its node (zhzj-n1, zhzj-n2, zhzj-n3), localhost and 127.0.0.1, and
# each EXTRA_NAME (a DNS name, or an IPv4/IPv6 address) given on the command line, e.g. the
# nodes' public names or addresses: make-certs.sh /tmp/tls nats.city.example 10.0.0.11
#
# Environment: ZHZJ_NATS_NODES (default "zhzj-n1 zhzj-n2 zhzj-n3") the node names;
# ZHZJ_CERT_DAYS (default 825) how long the node and client certificates are valid;
# ZHZJ_CA_DAYS (default 3650) how long a new CA is valid.
#
# Keys are ECDSA P-256, private keys are written mode 0600. An existing CA in DIR is reused, so
# running the script again renews the node and client certificates under the same CA (the
# servers and clients keep trusting each other); delete ca.pem and ca-key.pem to start a new CA.
# Keep ca-key.pem off the servers: only ca.pem is needed there.
set -eu

if [ $# -lt 1 ] || [ "$1" = "-h" ] || [ "$1" = "--help" ]; then
    sed -n '2,24p' "$0" | sed 's/^# \{0,1\}//'
    exit 2
fi
dir=$1
shift
nodes=${ZHZJ_NATS_NODES:-zhzj-n1 zhzj-n2 zhzj-n3}
days=${ZHZJ_CERT_DAYS:-825}
ca_days=${ZHZJ_CA_DAYS:-3650}

command -v openssl >/dev/null 2>&1 || { echo "make-certs.sh: openssl not found" >&2; exit 1; }
umask 077
mkdir -p "$dir"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# subjectAltName entries: DNS:name, or IP:address for anything that looks like an address.
san_entry() {
    case $1 in
        *:*) echo "IP:$1" ;;                                    # IPv6
        *[!0-9.]*) echo "DNS:$1" ;;
        *.*.*.*) echo "IP:$1" ;;                                # IPv4
        *) echo "DNS:$1" ;;
    esac
}

new_key() {
    openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$1"
    chmod 600 "$1"
}

# sign NAME CN SAN EXTENDED_KEY_USAGE: writes $dir/NAME.pem and $dir/NAME-key.pem.
sign() {
    local name=$1 cn=$2 san=$3 eku=$4
    new_key "$dir/$name-key.pem"
    openssl req -new -key "$dir/$name-key.pem" -subj "/O=zhzj/CN=$cn" -out "$work/$name.csr"
    cat >"$work/$name.ext" <<EOF
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature
extendedKeyUsage = $eku
subjectAltName = $san
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
EOF
    openssl x509 -req -in "$work/$name.csr" -CA "$dir/ca.pem" -CAkey "$dir/ca-key.pem" \
        -CAcreateserial -CAserial "$work/ca.srl" -days "$days" -sha256 \
        -extfile "$work/$name.ext" -out "$dir/$name.pem" 2>/dev/null
    chmod 644 "$dir/$name.pem"
    echo "wrote $dir/$name.pem ($san)"
}

if [ -f "$dir/ca.pem" ] && [ -f "$dir/ca-key.pem" ]; then
    echo "reusing the CA in $dir/ca.pem"
else
    new_key "$dir/ca-key.pem"
    cat >"$work/ca.ext" <<EOF
[req]
distinguished_name = dn
x509_extensions = ca
prompt = no
[dn]
O = zhzj
CN = zhzj NATS CA
[ca]
basicConstraints = critical, CA:TRUE, pathlen:0
keyUsage = critical, keyCertSign, cRLSign
subjectKeyIdentifier = hash
EOF
    openssl req -new -x509 -key "$dir/ca-key.pem" -config "$work/ca.ext" -days "$ca_days" \
        -sha256 -out "$dir/ca.pem"
    chmod 644 "$dir/ca.pem"
    echo "wrote $dir/ca.pem (new CA)"
fi

extra=""
for name in localhost 127.0.0.1 "$@"; do
    extra="$extra,$(san_entry "$name")"
done

for node in $nodes; do
    # serverAuth for the clients and the routes a node accepts, clientAuth for the routes it
    # opens (the other node verifies it: `verify: true` in the cluster's tls block).
    sign "$node" "$node" "$(san_entry "$node")$extra" "serverAuth, clientAuth"
done
sign client zhzj-client "DNS:zhzj-client" "clientAuth"

echo "done: give each node ca.pem, its own <node>.pem and <node>-key.pem; give zhzj processes"
echo "ca.pem (and client.pem, client-key.pem if the servers require client certificates)."
