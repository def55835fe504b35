#!/usr/bin/env bash
# Installs what the tests need and runs the whole test suite: unit tests of every crate and
# black-box tests that start the real binary and talk HTTP to it. Works on a fresh machine.
#
# Tests run with the `ci` profile (Cargo.toml): release optimizations, since the black-box
# tests compile guests with Cranelift, which is many times slower in a debug build, but without
# the release profile's LTO, which each test binary would pay for again.
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/install-deps.sh --test-services

# Every guest, C included: a missing toolchain must fail the run, not skip tests.
REQUIRE_C_GUESTS=1 scripts/build-guests.sh

cargo fmt --all -- --check
cargo clippy --profile ci --workspace --all-targets -- -D warnings
cargo test --profile ci --workspace "$@"
