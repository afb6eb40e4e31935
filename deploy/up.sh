#!/usr/bin/env bash
# Starts the whole system on this machine: installs Rust and nats-server when missing, builds,
# and runs `zhzj up` with its data under ./data (SQLite, and a local nats-server on a free port).
set -euo pipefail
cd "$(dirname "$0")/.."
. deploy/lib.sh

ensure_rust
ensure_nats_server
cargo build --release --locked -p zhzj
exec target/release/zhzj up "$@"
