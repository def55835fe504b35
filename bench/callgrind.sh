#!/usr/bin/env bash
# Instructions per request of `wasmgate up` serving examples/hello, counted by callgrind.
# Unlike req/s, the count is the same from run to run whatever else the machine is doing, so
# two binaries can be compared exactly (e.g. a change and its parent):
#
#   bench/callgrind.sh [WASMGATE_BINARY...]     default: target/release/wasmgate
#
# An argument may carry extra `wasmgate up` flags after the binary, in one word:
#
#   bench/callgrind.sh target/release/wasmgate "target/release/wasmgate --no-telemetry"
#
# APP=bench/hello-fuel-app serves another bench app (its source path relative to the app).
#
# Each binary serves bench/hello-app with max_concurrency = 2 (valgrind cannot reserve the
# full pool); WARMUP requests run first, then counters are zeroed and REQUESTS requests are
# counted, all on one keep-alive connection. Prints instructions per request per binary.
# Settings: REQUESTS=200 WARMUP=50 URL_PATH=/ KEEP_DUMPS=DIR (copy each run's dump there).
# Needs valgrind and curl.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
REQUESTS=${REQUESTS:-200}
WARMUP=${WARMUP:-50}
URL_PATH=${URL_PATH:-/}
WORK=$(mktemp -d)
trap 'kill "${SERVER:-0}" 2>/dev/null || true; rm -rf "$WORK"' EXIT

BINARIES=("$@")
[ ${#BINARIES[@]} -gt 0 ] || BINARIES=("$ROOT/target/release/wasmgate")

sed -e 's/max_concurrency = .*/max_concurrency = 2/' \
    -e "s|\.\./\.\./examples|$ROOT/examples|" \
    "$ROOT/${APP:-bench/hello-app}/wasmgate.toml" >"$WORK/wasmgate.toml"

free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

requests() {
    # One curl, one connection: URL globbing sends $1 requests over keep-alive.
    curl -sf -o /dev/null "http://127.0.0.1:$PORT${URL_PATH}?[1-$1]"
}

for run in "${BINARIES[@]}"; do
    read -r -a words <<<"$run"
    binary=${words[0]}
    flags=("${words[@]:1}")
    PORT=$(free_port)
    out="$WORK/callgrind.out"
    rm -f "$out"*
    valgrind --tool=callgrind --callgrind-out-file="$out" --collect-atstart=yes \
        "$binary" up "$WORK/wasmgate.toml" --listen "127.0.0.1:$PORT" --no-admin \
        --cache-dir "$WORK/cache" --log-format json "${flags[@]}" >"$WORK/server.log" 2>&1 &
    SERVER=$!
    for _ in $(seq 1 600); do
        curl -sf -o /dev/null "http://127.0.0.1:$PORT$URL_PATH" && break
        sleep 0.5
    done
    requests "$WARMUP"
    callgrind_control -z "$SERVER" >/dev/null
    requests "$REQUESTS"
    callgrind_control -d "$SERVER" >/dev/null
    kill -INT "$SERVER"
    wait "$SERVER" 2>/dev/null || true
    # The dump after zeroing is the part file with the highest number.
    dump=$(ls -v "$out".* 2>/dev/null | grep -v '\.0$' | tail -1 || true)
    [ -n "$dump" ] || dump=$(ls -v "$out"* | tail -1)
    total=$(grep -m1 '^summary:' "$dump" | awk '{print $2}')
    echo "$run: $((total / REQUESTS)) instructions/request ($REQUESTS requests, $total in all)"
    if [ -n "${KEEP_DUMPS:-}" ]; then
        mkdir -p "$KEEP_DUMPS"
        kept="$KEEP_DUMPS/callgrind.$(basename "$binary")${flags[*]:+.${flags[*]// /}}.out"
        cp "$dump" "$kept"
        echo "  dump kept at $kept (callgrind_annotate --inclusive=yes $kept)"
    fi
done
