#!/usr/bin/env bash
# Runs every test of zhzj. On a fresh Debian machine it first installs what the tests need
# (Rust, nats-server, PostgreSQL, a current nats-server release, Chromium with chromedriver for
# the browser tests) and starts PostgreSQL when it is not running. The tests start their own nats-server processes on free ports.
# A full run checks formatting and lints first (cargo fmt, cargo clippy -D warnings) and ends
# with a bounded Schemathesis run over the API (deploy/fuzz-api.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
. deploy/lib.sh

ensure_rust
ensure_rust_lints
ensure_nats_server
ensure_postgres
ensure_current_nats_server
ensure_chromium
echo "== nats-server on PATH: $(nats-server --version)"
# The build and the tests' stores take about 10 GB (target/ 5-6 GB, the release binary for the
# benchmarks apart); say so up front rather than leave a full disk to a compiler's error.
free_gb=$(df -Pk . | awk 'NR == 2 { print int($4 / 1048576) }')
echo "== free disk here: ${free_gb} GB"
if [ "${free_gb:-0}" -lt 10 ]; then
    echo "== WARNING: less than 10 GB free; the build may fail with 'No space left on device'" >&2
fi

# The house rules first, on a full run: formatting and every workspace lint, warnings as errors.
if [ "$#" -eq 0 ]; then
    echo "== cargo fmt --check"
    cargo fmt --all --check
    echo "== no source file over 800 lines outside the tests"
    long_files=$(find services proto -name '*.rs' ! -path '*/tests/*' ! -name tests.rs -print0 |
        xargs -0 wc -l | awk '$2 != "total" && $1 > 800')
    if [ -n "$long_files" ]; then
        echo "$long_files" >&2
        exit 1
    fi
    echo "== cargo clippy --workspace --all-targets -- -D warnings"
    cargo clippy --workspace --all-targets --locked -- -D warnings
fi

log=$(mktemp)
trap 'rm -f "$log"' EXIT
status=0
cargo test --workspace --locked "$@" 2>&1 | tee "$log" || status=$?
# One closing line over every test binary (cargo's own last line is its doc-test run).
awk '/^test result:/ { for (i = 1; i <= NF; i++) { if ($i ~ /^passed/) p += $(i-1); if ($i ~ /^failed/) f += $(i-1) } }
     END { printf "%d passed, %d failed\n", p, f }' "$log"
# Then, on a full run, clients no one here wrote: Schemathesis over the OpenAPI document as five
# users against `zhzj up --demo` (the binary the tests just built), with a bounded budget: no
# 5xx, no status the document does not list, no answer off its schema (ZHZJ_FUZZ=0 skips it).
if [ "$#" -eq 0 ] && [ "${ZHZJ_FUZZ:-1}" != 0 ]; then
    fuzz=0
    FUZZ_MAX_EXAMPLES=${FUZZ_MAX_EXAMPLES:-10} deploy/fuzz-api.sh target/debug/zhzj || fuzz=$?
    echo "== API fuzzing (deploy/fuzz-api.sh): $([ "$fuzz" = 0 ] && echo passed || echo "FAILED ($fuzz)")"
    [ "$status" != 0 ] || status=$fuzz
fi
exit "$status"
