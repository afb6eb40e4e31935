#!/usr/bin/env bash
# A bounded property-based run of Schemathesis over zhzj's OpenAPI document.
#
#   deploy/fuzz-api.sh [path/to/zhzj]        (default target/debug/zhzj; it is not built here)
#
# Installs Schemathesis (pinned, deploy/fuzz/requirements.txt) into target/fuzz-venv when it is
# missing, starts `zhzj up --demo` on free loopback ports in a temporary directory, waits until
# the demo is loaded and /readyz answers 200, then runs Schemathesis once for each demo user
# (admin, xietiao, siming, shenhe, chakan) with that user's session cookie: stateless phases and
# the stateful phase over the links Schemathesis infers. Hypothesis is derandomized, so every run
# sends the same requests (FUZZ_SEED=N for a random run from seed N). It fails on any 5xx
# (not_a_server_error), any status code the document does not list for the operation
# (status_code_conformance) and any response that does not match its documented schema
# (response_schema_conformance), and prints each distinct failure with a curl line.
# Reports: target/fuzz-report/ (or $FUZZ_REPORT_DIR), with zhzj's log. About 4 minutes on 2 cores
# with a debug build (plus a minute the first time, for the venv).
#
# Knobs (environment): FUZZ_MAX_EXAMPLES (20), FUZZ_SEED, FUZZ_USERS (admin,xietiao,siming,shenhe,chakan),
# FUZZ_PHASES (examples,coverage,fuzzing,stateful), FUZZ_WORKERS (2), FUZZ_REPORT_DIR.
set -euo pipefail
cd "$(dirname "$0")/.."
. deploy/lib.sh

ZHZJ=${1:-target/debug/zhzj}
VENV=target/fuzz-venv
ST_VERSION=$(sed -n 's/^schemathesis==//p' deploy/fuzz/requirements.txt)
REPORT_DIR=${FUZZ_REPORT_DIR:-target/fuzz-report}

if [ ! -x "$ZHZJ" ]; then
    echo "fuzz: no zhzj binary at $ZHZJ (build it first, or pass its path)" >&2
    exit 2
fi
ZHZJ=$(cd "$(dirname "$ZHZJ")" && pwd)/$(basename "$ZHZJ")
ensure_nats_server
command -v curl >/dev/null 2>&1 || apt_install curl

# --- Schemathesis in its own venv -----------------------------------------------------------
if [ "$("$VENV/bin/st" --version 2>/dev/null || true)" != "st, version $ST_VERSION" ]; then
    echo "== installing schemathesis $ST_VERSION into $VENV"
    python=""
    for candidate in python3.13 python3.12 python3.11 python3.10 python3; do
        if command -v "$candidate" >/dev/null 2>&1 &&
            "$candidate" -c 'import sys; sys.exit(sys.version_info < (3, 10))' 2>/dev/null; then
            python=$candidate
            break
        fi
    done
    [ -n "$python" ] || { echo "fuzz: Schemathesis needs Python 3.10 or newer" >&2; exit 2; }
    rm -rf "$VENV"
    if ! "$python" -m venv "$VENV" 2>/dev/null; then
        apt_install python3-venv
        "$python" -m venv "$VENV"
    fi
    "$VENV/bin/pip" install --quiet --disable-pip-version-check -r deploy/fuzz/requirements.txt
fi

# --- zhzj up --demo on free ports -----------------------------------------------------------
free_port() { "$VENV/bin/python" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }

# The report directory is emptied first: only one this script made (it leaves a marker there).
if [ -d "$REPORT_DIR" ] && [ -n "$(ls -A "$REPORT_DIR")" ]; then
    [ -e "$REPORT_DIR/.fuzz-report" ] || { echo "fuzz: $REPORT_DIR is not empty and not a fuzz report; not touching it" >&2; exit 2; }
    rm -rf "$REPORT_DIR"
fi
mkdir -p "$REPORT_DIR"
touch "$REPORT_DIR/.fuzz-report"
work=$(mktemp -d "${TMPDIR:-/tmp}/zhzj-fuzz.XXXXXX")
REPORT_DIR=$(cd "$REPORT_DIR" && pwd)
log="$REPORT_DIR/zhzj.log"
pid=""
stop_zhzj() {
    if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then
        kill -TERM "$pid" 2>/dev/null || true
        for _ in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.2; done
        kill -KILL "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
    fi
    pid=""
}
cleanup() {
    stop_zhzj
    rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

started=$SECONDS
base=""
for attempt in 1 2 3; do
    port=$(free_port)
    rm -rf "$work/data" && mkdir -p "$work/data"
    echo "== starting $ZHZJ up --demo on 127.0.0.1:$port (data in $work/data, log in $log)"
    "$ZHZJ" up --demo --data-dir "$work/data" --http "127.0.0.1:$port" >"$log" 2>&1 &
    pid=$!
    ready=0
    for _ in $(seq 1 600); do # up to 5 minutes: the demo loads slowly in a debug build
        if ! kill -0 "$pid" 2>/dev/null; then break; fi
        if grep -q "demo loaded" "$log" &&
            [ "$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$port/readyz")" = 200 ]; then
            ready=1
            break
        fi
        if grep -q "demo loading failed" "$log"; then break; fi
        sleep 0.5
    done
    if [ "$ready" = 1 ]; then
        base="http://127.0.0.1:$port"
        break
    fi
    stop_zhzj
    echo "fuzz: zhzj did not get ready (attempt $attempt); the end of its log:" >&2
    tail -n 20 "$log" >&2
    grep -qi "address already in use\|addrinuse" "$log" || exit 1
done
[ -n "$base" ] || exit 1
echo "== ready in $((SECONDS - started)) s at $base"

# --- Schemathesis, once per user ------------------------------------------------------------
status=0
"$VENV/bin/python" deploy/fuzz/run.py --base-url "$base" --report-dir "$REPORT_DIR" --zhzj-log "$log" || status=$?
echo "== zhzj logged $(grep -c ' ERROR ' "$log" || true) errors and $(grep -c 'panicked' "$log" || true) panics ($log)"
echo "== fuzz run took $((SECONDS - started)) s in all"
exit "$status"
