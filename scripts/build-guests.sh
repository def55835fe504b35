#!/usr/bin/env bash
# Builds the WebAssembly guests that live outside the host workspace:
#
#   examples/hello        -> examples/hello/target/wasm32-wasip2/release/hello.wasm
#   examples/todo         -> examples/todo/target/wasm32-wasip2/release/todo.wasm   (uses crates/wasmgate-sdk)
#   bench/data-guest      -> bench/data-guest/target/wasm32-wasip2/release/data_guest.wasm (uses crates/wasmgate-sdk)
#   tests/fixtures/guest  -> tests/fixtures/guest/target/wasm32-wasip2/release/fixture.wasm
#   tests/fixtures/wasi-0.2.0 -> tests/fixtures/wasi-0.2.0/target/wasm32-wasip2/release/wasi020.wasm
#   tests/fixtures/kv-guest -> tests/fixtures/kv-guest/target/wasm32-wasip2/release/kv_guest.wasm
#   tests/fixtures/sql-guest -> tests/fixtures/sql-guest/target/wasm32-wasip2/release/sql_guest.wasm
#
# and the WAGI (CGI-style WASI command module) guests:
#
#   tests/fixtures/wagi   -> tests/fixtures/wagi/target/wasm32-wasip1/release/wagi-fixture.wasm
#   examples/wagi-hello-rust -> examples/wagi-hello-rust/target/wasm32-wasip1/release/wagi-hello-rust.wasm
#   tests/fixtures/wagi-component -> tests/fixtures/wagi-component/target/wasm32-wasip2/release/wagi-component.wasm
#   examples/wagi-hello-c -> examples/wagi-hello-c/wagi-hello-c.wasm   (clang + wasi-libc)
#
# and the service guest (a server built for WasmEdge's sockets, run by executor = "service"):
#
#   examples/service-hyper-wasmedge -> examples/service-hyper-wasmedge/target/wasm32-wasip1/release/service-hyper-wasmedge.wasm
#   examples/service-mysql-wasmedge -> examples/service-mysql-wasmedge/target/wasm32-wasip1/release/service-mysql-wasmedge.wasm
#     (mysql_async_wasi links zstd, which is C: it needs the C guest's toolchain, below)
#   examples/service-std-wasip2 -> examples/service-std-wasip2/target/wasm32-wasip2/release/service-std-wasip2.wasm
#     (a WASI 0.2 component listening with Rust std's TcpListener, i.e. wasi:sockets)
#
# Each Rust guest is its own cargo package (own Cargo.lock, own target/). The wasi:http
# guests are built for wasm32-wasip2, which makes rustc emit a component directly; the
# WAGI guests for wasm32-wasip1, which gives a plain core module exporting `_start`.
# Safe to run from any directory and as often as you like: nothing is rebuilt when
# nothing changed.
#
# The C guest needs a C toolchain for wasm32-wasi: the Debian packages listed in
# scripts/c-guest-packages.txt (one per line). Without it the C guest is skipped with a
# message, unless REQUIRE_C_GUESTS=1 is set (or --require-c-guests is given), in which
# case the script fails.
#
# The paths of all built guests are printed on stdout, one per line; messages go to stderr.
# Other arguments are passed to every `cargo build`, e.g. `--locked` or `--offline`.
set -euo pipefail

# Work from the repository root, wherever the script was called from.
cd "$(dirname "${BASH_SOURCE[0]}")/.."
ROOT=$(pwd)

REQUIRE_C_GUESTS=${REQUIRE_C_GUESTS:-0}
cargo_args=()
for arg in "$@"; do
    if [[ $arg == --require-c-guests ]]; then
        REQUIRE_C_GUESTS=1
    else
        cargo_args+=("$arg")
    fi
done

# Adding an installed target is a quick no-op, but rustup still talks about it; only
# ask rustup when a target is actually missing, so repeated runs stay quiet. (The list
# is read into a variable first: a `rustup ... | grep -q` pipe could kill rustup with
# SIGPIPE, which pipefail would report.)
# Without rustup (a distro toolchain) there is nothing to add; cargo then says whether
# the target's standard library is there.
if command -v rustup >/dev/null 2>&1; then
    installed=$(rustup target list --installed)
    for target in wasm32-wasip2 wasm32-wasip1; do
        if ! grep -x "$target" >/dev/null <<<"$installed"; then
            echo "Installing the rustup target $target" >&2
            rustup target add "$target"
        fi
    done
fi

# target : package directory : output file name (the package's library or binary name)
GUESTS=(
    "wasm32-wasip2:examples/hello:hello"
    "wasm32-wasip2:examples/todo:todo"
    "wasm32-wasip2:bench/data-guest:data_guest"
    "wasm32-wasip2:tests/fixtures/guest:fixture"
    "wasm32-wasip2:tests/fixtures/wasi-0.2.0:wasi020"
    "wasm32-wasip2:tests/fixtures/kv-guest:kv_guest"
    "wasm32-wasip2:tests/fixtures/sql-guest:sql_guest"
    "wasm32-wasip1:tests/fixtures/wagi:wagi-fixture"
    "wasm32-wasip1:examples/wagi-hello-rust:wagi-hello-rust"
    "wasm32-wasip2:tests/fixtures/wagi-component:wagi-component"
    "wasm32-wasip1:examples/service-hyper-wasmedge:service-hyper-wasmedge"
    "wasm32-wasip2:examples/service-std-wasip2:service-std-wasip2"
)

outputs=()
for guest in "${GUESTS[@]}"; do
    IFS=: read -r target dir name <<<"$guest"
    # --target-dir pins the output next to the package even if CARGO_TARGET_DIR is set
    # in the environment: wasmgate.toml files and the tests refer to these paths.
    # (`${arr[@]+...}` keeps `set -u` quiet about an empty array on old bash versions.)
    cargo build --release --quiet \
        --target "$target" \
        --manifest-path "$ROOT/$dir/Cargo.toml" \
        --target-dir "$ROOT/$dir/target" \
        ${cargo_args[@]+"${cargo_args[@]}"}
    wasm="$ROOT/$dir/target/$target/release/$name.wasm"
    if [[ ! -f "$wasm" ]]; then
        echo "error: expected $wasm after building $dir" >&2
        exit 1
    fi
    outputs+=("$wasm")
done

# The C guest. build.sh --check compiles and links a tiny test program, which finds any
# missing piece of the toolchain (clang, wasm-ld, wasi-libc, compiler-rt builtins).
C_GUEST=examples/wagi-hello-c
C_PACKAGES=$(paste -sd ' ' "$ROOT/scripts/c-guest-packages.txt")
C_TOOLCHAIN=0
if check_errors=$("$ROOT/$C_GUEST/build.sh" --check 2>&1); then
    C_TOOLCHAIN=1
    "$ROOT/$C_GUEST/build.sh"
    wasm="$ROOT/$C_GUEST/wagi-hello-c.wasm"
    if [[ ! -f "$wasm" ]]; then
        echo "error: expected $wasm after building $C_GUEST" >&2
        exit 1
    fi
    outputs+=("$wasm")
elif [[ $REQUIRE_C_GUESTS == 1 ]]; then
    echo "$check_errors" >&2
    echo "error: cannot build $C_GUEST: no working clang + wasi-libc toolchain for wasm32-wasi." >&2
    echo "Install the Debian packages: $C_PACKAGES" >&2
    echo "(listed in scripts/c-guest-packages.txt, one per line)" >&2
    exit 1
else
    echo "Skipping $C_GUEST: no working clang + wasi-libc toolchain for wasm32-wasi." >&2
    echo "  To build it, install the Debian packages: $C_PACKAGES" >&2
    echo "  (listed in scripts/c-guest-packages.txt). Set REQUIRE_C_GUESTS=1 to make this an error." >&2
fi

# The MySQL service guest: mysql_async_wasi's protocol crate (mysql_common) always builds
# zstd from C source. cc-rs hands clang `--target=wasm32-wasip1`, a name clang 14 does not
# know; CFLAGS come after it, so they name the target clang knows and the wasi-libc sysroot
# (found as in the C guest's build.sh).
MYSQL_GUEST=examples/service-mysql-wasmedge
if [[ $C_TOOLCHAIN == 1 ]]; then
    sysroot=${WASI_SYSROOT:-}
    for candidate in /usr/share/wasi-sysroot /opt/wasi-sdk/share/wasi-sysroot /usr; do
        if [[ -z $sysroot && ( -f $candidate/lib/wasm32-wasi/libc.a || -f $candidate/lib/wasm32-wasi/lib/libc.a ) ]]; then
            sysroot=$candidate
        fi
    done
    CFLAGS_wasm32_wasip1="--target=wasm32-wasi --sysroot=$sysroot" \
        cargo build --release --quiet \
        --target wasm32-wasip1 \
        --manifest-path "$ROOT/$MYSQL_GUEST/Cargo.toml" \
        --target-dir "$ROOT/$MYSQL_GUEST/target" \
        ${cargo_args[@]+"${cargo_args[@]}"}
    wasm="$ROOT/$MYSQL_GUEST/target/wasm32-wasip1/release/service-mysql-wasmedge.wasm"
    if [[ ! -f "$wasm" ]]; then
        echo "error: expected $wasm after building $MYSQL_GUEST" >&2
        exit 1
    fi
    outputs+=("$wasm")
else
    echo "Skipping $MYSQL_GUEST: it needs the C toolchain for wasm32-wasi (see above)." >&2
fi

printf '%s\n' "${outputs[@]}"
