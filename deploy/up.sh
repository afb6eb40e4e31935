#!/usr/bin/env bash
# Starts the whole system on this machine: installs Rust and nats-server when missing, builds,
# and runs `zhzj up --demo` with its data under ./data (SQLite, and a local nats-server on a free
# port): the HTTP API on http://127.0.0.1:8080/ with the Xiamen demo loaded (loading it again adds
# nothing). Extra arguments go to `zhzj up`.
set -euo pipefail
cd "$(dirname "$0")/.."
. deploy/lib.sh

ensure_rust
ensure_nats_server
cargo build --release --locked -p zhzj
exec target/release/zhzj up --demo "$@"
