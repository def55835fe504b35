#!/usr/bin/env bash
# Builds the WebAssembly guests that live outside the host workspace:
#
#   examples/hello        -> examples/hello/target/wasm32-wasip2/release/hello.wasm
#   tests/fixtures/guest  -> tests/fixtures/guest/target/wasm32-wasip2/release/fixture.wasm
#   tests/fixtures/wasi-0.2.0 -> tests/fixtures/wasi-0.2.0/target/wasm32-wasip2/release/wasi020.wasm
#
# Each guest is its own cargo package (own Cargo.lock, own target/), built for
# wasm32-wasip2, which makes rustc emit a component directly. Safe to run from any
# directory and as often as you like: cargo rebuilds nothing when nothing changed.
#
# Extra arguments are passed to every `cargo build`, e.g. `--locked` or `--offline`.
set -euo pipefail

TARGET=wasm32-wasip2

# Work from the repository root, wherever the script was called from.
cd "$(dirname "${BASH_SOURCE[0]}")/.."
ROOT=$(pwd)

# Adding an installed target is a quick no-op, but rustup still talks about it; only
# ask rustup when the target is actually missing, so repeated runs stay quiet. (No
# `grep -q`: exiting early could kill rustup with SIGPIPE, which pipefail would report.)
# Without rustup (a distro toolchain) there is nothing to add; cargo then says whether
# the target's standard library is there.
if command -v rustup >/dev/null 2>&1; then
    if ! rustup target list --installed | grep -x "$TARGET" >/dev/null; then
        echo "Installing the rustup target $TARGET" >&2
        rustup target add "$TARGET"
    fi
fi

# package directory : output file name (the package's library name)
GUESTS=(
    "examples/hello:hello"
    "tests/fixtures/guest:fixture"
    "tests/fixtures/wasi-0.2.0:wasi020"
)

outputs=()
for guest in "${GUESTS[@]}"; do
    dir=${guest%%:*}
    name=${guest##*:}
    # --target-dir pins the output next to the package even if CARGO_TARGET_DIR is set
    # in the environment: wasmgate.toml files and the tests refer to these paths.
    cargo build --release --quiet \
        --target "$TARGET" \
        --manifest-path "$ROOT/$dir/Cargo.toml" \
        --target-dir "$ROOT/$dir/target" \
        "$@"
    wasm="$ROOT/$dir/target/$TARGET/release/$name.wasm"
    if [[ ! -f "$wasm" ]]; then
        echo "error: expected $wasm after building $dir" >&2
        exit 1
    fi
    outputs+=("$wasm")
done

printf '%s\n' "${outputs[@]}"
