#!/usr/bin/env bash
# Builds hello.c into wagi-hello-c.wasm (next to this script), a WASI preview 1 command
# module for Wasmgate's WAGI executor, with clang and wasi-libc.
#
#   ./build.sh           build (does nothing if wagi-hello-c.wasm is up to date)
#   ./build.sh --check   only check that the toolchain works: exit 0 if it does, else
#                        print what is missing and exit 1
#
# Needs clang with the WebAssembly target, wasm-ld (lld), the wasi-libc sysroot and
# compiler-rt's builtins for wasm32. On Debian 12 (bookworm):
#
#   apt-get install clang lld wasi-libc libclang-rt-14-dev-wasm32
#
# (the list is also in scripts/c-guest-packages.txt). Settings, all optional:
#
#   CLANG         the compiler (default: clang; e.g. /opt/wasi-sdk/bin/clang)
#   WASI_SYSROOT  the wasi-libc sysroot (default: the first one found of
#                 /usr/share/wasi-sysroot, /opt/wasi-sdk/share/wasi-sysroot, and /usr
#                 when Debian's multiarch wasi-libc is in /usr/lib/wasm32-wasi)
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")"

CLANG=${CLANG:-clang}
TARGET=wasm32-wasi
OUTPUT=wagi-hello-c.wasm
PACKAGES_FILE=../../scripts/c-guest-packages.txt

# -O2 for size and speed. --strip-debug drops DWARF (Debian's libc.a carries some) but,
# unlike --strip-all, keeps the `name` section, so trap backtraces show function names.
CFLAGS=(-O2 -Wall -Wextra "-Wl,--strip-debug")

missing() {
    echo "wagi-hello-c: cannot build: $*" >&2
    if [[ -f $PACKAGES_FILE ]]; then
        echo "On Debian 12 (bookworm) install: apt-get install $(paste -sd ' ' "$PACKAGES_FILE")" >&2
    else
        echo "See README.md for the packages to install." >&2
    fi
    exit 1
}

find_sysroot() {
    if [[ -n ${WASI_SYSROOT:-} ]]; then
        echo "$WASI_SYSROOT"
        return
    fi
    local candidate
    for candidate in /usr/share/wasi-sysroot /opt/wasi-sdk/share/wasi-sysroot; do
        if [[ -f $candidate/lib/$TARGET/libc.a ]]; then
            echo "$candidate"
            return
        fi
    done
    # Debian and Ubuntu install wasi-libc in the multiarch directories
    # /usr/include/wasm32-wasi and /usr/lib/wasm32-wasi, so the sysroot is /usr.
    if [[ -f /usr/lib/$TARGET/libc.a ]]; then
        echo /usr
    fi
}

command -v "$CLANG" >/dev/null 2>&1 || missing "$CLANG not found"
SYSROOT=$(find_sysroot)
[[ -n $SYSROOT ]] || missing "no wasi-libc sysroot found (set WASI_SYSROOT)"

# The real test: compile and link a tiny program. This catches every missing piece at
# once (no wasm32 backend, no wasm-ld, no libclang_rt.builtins-wasm32.a, no libc.a).
if [[ ${1:-} == --check ]]; then
    scratch=$(mktemp -d)
    trap 'rm -rf "$scratch"' EXIT
    printf '#include <stdio.h>\nint main(void) { puts("ok"); return 0; }\n' >"$scratch/check.c"
    if ! errors=$("$CLANG" --target=$TARGET --sysroot="$SYSROOT" "${CFLAGS[@]}" \
        -o "$scratch/check.wasm" "$scratch/check.c" 2>&1); then
        echo "$errors" >&2
        missing "$CLANG cannot build for $TARGET with the sysroot $SYSROOT"
    fi
    exit 0
fi

# Up to date? (The output is newer than both the source and this script.)
if [[ -f $OUTPUT && $OUTPUT -nt hello.c && $OUTPUT -nt build.sh ]]; then
    exit 0
fi

# Write to a temporary name first so a failed build never leaves a truncated module.
"$CLANG" --target=$TARGET --sysroot="$SYSROOT" "${CFLAGS[@]}" -o "$OUTPUT.tmp" hello.c \
    || { rm -f "$OUTPUT.tmp"; echo "wagi-hello-c: compiling hello.c failed" >&2; exit 1; }
mv "$OUTPUT.tmp" "$OUTPUT"
