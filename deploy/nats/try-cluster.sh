#!/usr/bin/env bash
# Tries the secure cluster example for real: starts deploy/nats/cluster-node{1,2,3}.conf on free
# loopback ports (ports and paths substituted, nothing else), creates ZHZJ_EVENTS with the admin
# NKey, checks what each role may do, attacks the cluster with deploy/security/attack.py (no
# credentials, the projector's, the gateway's, and the admin's as a control), checks that a node
# with the wrong route password or a certificate of another CA cannot join, rotates the
# credentials with reloads (a changeover file with both keys, then only the new), and stops the
# nodes.
#
# Usage: deploy/nats/try-cluster.sh [--server PATH] [--verify-clients] [--keep]
#   --server PATH      the nats-server binary (default: $NATS_SERVER, else nats-server in PATH)
#   --current          the current release the tests use: $ZHZJ_NATS_SERVER_CURRENT, else
#                      target/nats-server-current/nats-server (deploy/lib.sh fetches it)
#   --verify-clients   uncomment `verify: true` in the client tls blocks: clients must also
#                      present a certificate signed by the CA
#   --keep             keep the work directory (configs, logs, credentials) for a look
# Environment: PYTHON, a python3 with nats-py and nkeys (default: python3 if it has them, else a
# venv at /tmp/zhzj-natsvenv made from deploy/security/requirements.txt); ZHZJ, a zhzj binary
# whose `nats-credentials --dir DIR` writes the credentials (default: try_cluster.py writes the
# same files).
# Exit status 0 when every check passed.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
security=$(cd "$here/../security" && pwd)
server=${NATS_SERVER:-}
verify_clients=0
keep=0
while [ $# -gt 0 ]; do
    case $1 in
        --server) server=$2; shift 2 ;;
        --current)
            server=${ZHZJ_NATS_SERVER_CURRENT:-$here/../../target/nats-server-current/nats-server}
            shift ;;
        --verify-clients) verify_clients=1; shift ;;
        --keep) keep=1; shift ;;
        *) sed -n '2,21p' "$0" | sed 's/^# \{0,1\}//'; exit 2 ;;
    esac
done
[ -n "$server" ] || server=$(command -v nats-server || echo /usr/sbin/nats-server)
[ -x "$server" ] || { echo "no nats-server at $server" >&2; exit 2; }

python=${PYTHON:-}
if [ -z "$python" ]; then
    if python3 -c 'import nats, nkeys' 2>/dev/null; then
        python=python3
    else
        venv=/tmp/zhzj-natsvenv
        if [ ! -x "$venv/bin/python" ] || ! "$venv/bin/python" -c 'import nats, nkeys' 2>/dev/null; then
            echo "== making $venv (deploy/security/requirements.txt)"
            python3 -m venv "$venv"
            "$venv/bin/pip" install -q -r "$security/requirements.txt"
        fi
        python=$venv/bin/python
    fi
fi

work=$(mktemp -d /tmp/zhzj-try-cluster.XXXXXX)
pids=()
stop() {
    for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
    for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
    if [ "$keep" = 1 ]; then echo "== kept $work"; else rm -rf "$work"; fi
}
trap stop EXIT

failures=0
pass() { echo "PASS $*"; }
fail() { echo "FAIL $*"; failures=$((failures + 1)); }

echo "== nats-server: $("$server" --version) ($server)"
echo "== work dir: $work"
"$here/make-certs.sh" "$work/tls" >/dev/null
if [ -n "${ZHZJ:-}" ]; then
    "$ZHZJ" nats-credentials --dir "$work/creds"
else
    "$python" "$here/try_cluster.py" credentials "$work/creds"
fi

# Six free loopback ports: client and route port of each node.
read -r c1 c2 c3 r1 r2 r3 < <("$python" - <<'PY'
import socket
socks = [socket.socket() for _ in range(6)]
for s in socks:
    s.bind(("127.0.0.1", 0))
print(*[s.getsockname()[1] for s in socks])
PY
)
client_ports=("$c1" "$c2" "$c3")
route_ports=("$r1" "$r2" "$r3")

# The example configs, with only the ports, the TLS paths and the store dirs changed.
mkdir -p "$work/etc"
cp "$work/creds/authorization.conf" "$work/etc/authorization.conf"
for n in 1 2 3; do
    conf=$work/etc/cluster-node$n.conf
    sed -e "s|^listen: 0.0.0.0:4222|listen: 127.0.0.1:${client_ports[n-1]}|" \
        -e "s|^  listen: 0.0.0.0:6222|  listen: 127.0.0.1:${route_ports[n-1]}|" \
        -e "s|/etc/nats/tls/|$work/tls/|g" \
        -e "s|/var/lib/zhzj/nats|$work/data/n$n|" \
        "$here/cluster-node$n.conf" >"$conf"
    if [ "$verify_clients" = 1 ]; then
        sed -i 's|^  # verify: true|  verify: true|' "$conf"
        grep -q '^  verify: true' "$conf" || { echo "no client verify line in $conf" >&2; exit 1; }
    fi
    # Every substitution must have happened: the config's layout changed if not.
    if grep -nE '0\.0\.0\.0|/etc/nats|/var/lib' "$conf" | grep -v '^[0-9]*:#'; then
        echo "try-cluster.sh: could not substitute the lines above in $conf" >&2
        exit 1
    fi
done

route_password="zhzj-$(openssl rand -hex 24)"
# As README.md's route.env spells it: [URL,URL,URL].
routes=""
for p in "${route_ports[@]}"; do routes="$routes,nats-route://zhzj-route:$route_password@127.0.0.1:$p"; done
routes="[${routes#,}]"
for n in 1 2 3; do
    ZHZJ_NATS_ROUTE_PASSWORD=$route_password ZHZJ_NATS_ROUTES=$routes \
        "$server" -c "$work/etc/cluster-node$n.conf" -D >"$work/n$n.log" 2>&1 &
    pids+=($!)
done
node_pids=("${pids[@]}")

servers="tls://127.0.0.1:$c1,tls://127.0.0.1:$c2,tls://127.0.0.1:$c3"
tls=(--tls-ca "$work/tls/ca.pem")
client_cert=()
[ "$verify_clients" = 1 ] && client_cert=(--tls-cert "$work/tls/client.pem" --tls-key "$work/tls/client-key.pem")

if [ -n "${ZHZJ:-}" ]; then
    echo "== zhzj log init: with the admin's key, then with the projector's (refused)"
    zhzj_nats=(--data-dir "$work/zhzj-data" --nats-url "$servers" --nats-tls-ca "$work/tls/ca.pem"
        --stream-replicas 3 --nats-request-timeout-ms 5000)
    [ "$verify_clients" = 1 ] && zhzj_nats+=(--nats-tls-cert "$work/tls/client.pem" --nats-tls-key "$work/tls/client-key.pem")
    initialised=0
    for _ in $(seq 1 30); do  # the cluster may still be electing its JetStream leader
        if "$ZHZJ" log init "${zhzj_nats[@]}" --nats-nkey "$work/creds/admin.nk" >"$work/log-init.out" 2>&1; then
            initialised=1; break
        fi
        sleep 1
    done
    if [ "$initialised" = 1 ]; then
        pass "zhzj log init with the admin's key: $(tail -n 1 "$work/log-init.out")"
    else
        fail "zhzj log init with the admin's key: $(tail -n 3 "$work/log-init.out")"
    fi
    if "$ZHZJ" log init "${zhzj_nats[@]}" --nats-nkey "$work/creds/projector.nk" >"$work/log-init.out" 2>&1; then
        fail "zhzj log init with the projector's key succeeded"
    else
        pass "zhzj log init with the projector's key refused: $(grep -m1 -oE 'Permissions Violation.*|Error: .*' "$work/log-init.out" | cut -c1-160)"
    fi
fi

echo "== the stream and what each role may do"
if "$python" "$here/try_cluster.py" setup --servers "$servers" --creds "$work/creds" \
    "${tls[@]}" "${client_cert[@]}"; then
    pass "cluster up (R3 stream created over mutual-TLS, password-authenticated routes); roles can do their work"
else
    fail "setup (see $work/n*.log)"
    keep=1
    exit 1
fi

# attack NAME EXPECTED_STATUS ALLOWED_SUCCESSES ARGS...: runs attack.py; passes when it exits
# with EXPECTED_STATUS and nothing but ALLOWED_SUCCESSES (a regex; "" for none) succeeded.
attack() {
    local name=$1 expected=$2 allowed=$3 status=0
    shift 3
    echo "== attack: $name"
    "$python" "$security/attack.py" --servers "$servers" "$@" >"$work/attack.out" 2>&1 || status=$?
    sed 's/^/   /' "$work/attack.out"
    local unexpected
    unexpected=$(grep '^SUCCEEDED' "$work/attack.out" | { if [ -n "$allowed" ]; then grep -vE "^SUCCEEDED ($allowed):" ; else cat; fi; } || true)
    if [ "$status" = "$expected" ] && [ -z "$unexpected" ]; then
        pass "attack: $name (exit $status)"
    else
        fail "attack: $name (exit $status, expected $expected)"
    fi
    for stream_write in forged-event delete-message purge update-stream delete-stream; do
        if ! grep -q "^REFUSED $stream_write:" "$work/attack.out" && [[ ! " $* " =~ " --expect-connect-refused " ]] && [ "$name" != "admin (control)" ]; then
            fail "attack: $name: no REFUSED line for $stream_write"
        fi
    done
}

attack "no credentials" 0 "" --check-plaintext --expect-connect-refused "${tls[@]}" "${client_cert[@]}"
attack "no credentials, not trusting our CA" 0 "" --expect-connect-refused
if [ "$verify_clients" = 1 ]; then
    attack "projector NKey without a client certificate" 0 "" --expect-connect-refused \
        --nkey "$work/creds/projector.nk" "${tls[@]}"
fi
# push-consumer is the known nats-server gap (nats-io/nats-server#8274): any role that may create
# a consumer can have JetStream deliver stored commits to a subject it may not publish to.
attack "projector credentials" 1 "push-consumer" --nkey "$work/creds/projector.nk" "${tls[@]}" "${client_cert[@]}"
attack "gateway credentials" 1 "push-consumer" --nkey "$work/creds/gateway.nk" "${tls[@]}" "${client_cert[@]}"
# The control: attack.py does see what works. The admin may append and reconfigure (the change is
# reverted) and listen to anything, but even the admin cannot delete a message or purge
# (deny_delete, deny_purge). delete-stream is left out: the admin can.
attack "admin (control)" 1 "forged-command|forged-event|update-stream|eavesdrop-commands|eavesdrop-inboxes|push-consumer" \
    --skip delete-stream --nkey "$work/creds/admin.nk" "${tls[@]}" "${client_cert[@]}"
for expected in "forged-event" "update-stream" "eavesdrop-commands"; do
    grep -q "^SUCCEEDED $expected:" "$work/attack.out" || fail "admin (control): $expected should have succeeded"
done
for expected in "delete-message" "purge"; do
    grep -q "^REFUSED $expected:" "$work/attack.out" || fail "admin (control): $expected should be refused by the stream"
done

echo "== rogue nodes: wrong route password; certificate of another CA"
mkdir -p "$work/rogue"
ZHZJ_CA_DAYS=2 ZHZJ_CERT_DAYS=2 "$here/make-certs.sh" "$work/rogue/tls" >/dev/null
rogue() {
    local name=$1 cert=$2 key=$3 ca=$4 password=$5
    cat >"$work/rogue/$name.conf" <<EOF
server_name: $name
host: 127.0.0.1
port: -1
cluster {
  name: zhzj
  host: 127.0.0.1
  port: -1
  tls { cert_file: "$cert", key_file: "$key", ca_file: "$ca", verify: true, timeout: 3 }
  authorization { user: zhzj-route, password: "$password" }
  routes: [ "nats-route://zhzj-route:$password@127.0.0.1:$r1" ]
}
EOF
    "$server" -c "$work/rogue/$name.conf" -D >"$work/rogue/$name.log" 2>&1 &
    pids+=($!)
}
# A zhzj host's client certificate is signed by the cluster's CA: with it, but without the route
# password, a node must not get in.
rogue rogue-password "$work/tls/client.pem" "$work/tls/client-key.pem" "$work/tls/ca.pem" "wrong-password"
# The right password, but a certificate the cluster's CA did not sign.
rogue rogue-ca "$work/rogue/tls/zhzj-n1.pem" "$work/rogue/tls/zhzj-n1-key.pem" "$work/tls/ca.pem" "$route_password"
sleep 4
# A rogue's own log says "Registering remote route" before the other side has checked it; what
# counts is whether a cluster node registered the rogue.
check_rogue() {
    local name=$1 reason=$2 id
    id=$(grep -m1 -oE 'ID: +N[A-Z0-9]+' "$work/rogue/$name.log" | awk '{print $2}')
    if [ -z "$id" ]; then
        fail "$name: did not start (see $work/rogue/$name.log)"
    elif grep -q "Registering remote route \"$id\"" "$work"/n?.log; then
        fail "$name joined the cluster"
    else
        pass "$name refused (${reason:-no node registered it})"
    fi
}
check_rogue rogue-password "$(grep -m1 -oE "Route Error 'Authorization Violation'" "$work/rogue/rogue-password.log" || true)"
check_rogue rogue-ca "$(grep -h -m1 -oE 'TLS route handshake error: tls: failed to verify client certificate: x509: [a-z ]+' "$work"/n?.log | head -1 || true)"

echo "== rotation: new credentials; both old and new keys during the changeover, then only the new"
old_projector=$work/old-projector.nk
cp "$work/creds/projector.nk" "$old_projector"
if [ -n "${ZHZJ:-}" ]; then
    "$ZHZJ" nats-credentials --dir "$work/creds2"
else
    "$python" "$here/try_cluster.py" credentials "$work/creds2" >/dev/null
fi
reload() { for pid in "${node_pids[@]}"; do "$server" --signal "reload=$pid"; done; sleep 1; }
connects() { "$python" "$here/try_cluster.py" connects --servers "$servers" --nkey "$1" "${tls[@]}" "${client_cert[@]}" >/dev/null; }
# The changeover file, as README.md builds it: the new users, then the old ones.
users() { sed -n '/users = \[/,/^  \]/{/users = \[/d;/^  \]/d;p;}' "$1"; }
{ sed -n '1,/users = \[/p' "$work/creds2/authorization.conf"
  users "$work/creds2/authorization.conf"
  users "$work/etc/authorization.conf"
  printf '  ]\n}\n'; } >"$work/etc/authorization.conf.next"
mv "$work/etc/authorization.conf.next" "$work/etc/authorization.conf"
reload
if connects "$old_projector" && connects "$work/creds2/projector.nk"; then
    pass "changeover: the old and the new projector NKey connect"
else
    fail "changeover: the old or the new projector NKey does not connect"
fi
cp "$work/creds2/authorization.conf" "$work/etc/authorization.conf"
reload
if connects "$work/creds2/projector.nk"; then pass "the new projector NKey connects"; else fail "the new projector NKey does not connect"; fi
if connects "$old_projector"; then fail "the old projector NKey still connects"; else pass "the old projector NKey is refused"; fi

echo "== server errors other than the attacks' (first 10)"
grep -h "\[ERR\]" "$work"/n?.log | grep -viE "authentication error|authorization|violation|tls handshake|tls: |route error|error trying to connect to route|connection refused|error flushing|rid:" | head -10 | sed 's/^/   /' || true

if [ "$failures" = 0 ]; then
    echo "== all checks passed (nats-server $("$server" --version | sed 's/.* //')$( [ "$verify_clients" = 1 ] && echo ', client certificates required'))"
else
    echo "== $failures check(s) failed"
    keep=1
    exit 1
fi
