#!/usr/bin/env bash
# Runs every test of zhzj. On a fresh Debian machine it first installs what the tests need
# (Rust, nats-server, PostgreSQL, a current nats-server release) and starts PostgreSQL when it is
# not running. The tests start their own nats-server processes on free ports.
set -euo pipefail
cd "$(dirname "$0")/.."
. deploy/lib.sh

ensure_rust
ensure_nats_server
ensure_postgres
ensure_current_nats_server
echo "== nats-server on PATH: $(nats-server --version)"

cargo test --workspace --locked "$@"
