#!/usr/bin/env bash
# Builds everything (the wasmgate binary and the example guests) and serves the demo app,
# examples/todo (a todo API on SQL, key-value, variables, logging and outbound HTTP, all on the
# embedded defaults: its data goes to examples/todo/.wasmgate/), on http://127.0.0.1:3000 until
# Ctrl-C. Works on a fresh machine with rustup.
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/install-deps.sh
REQUIRE_C_GUESTS=1 scripts/build-guests.sh
cargo build --release -p wasmgate
exec target/release/wasmgate up examples/todo "$@"
