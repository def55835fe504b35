#!/usr/bin/env bash
# Interleaved load benchmark on this machine: a native hyper server, `wasmtime serve` and
# `wasmgate up`, the last two running the same examples/hello component, all loaded by wrk
# with the same settings. Reports req/s, p50/p99 latency and server CPU per request.
# See bench/README.md for how to read the figures.
set -euo pipefail

usage() {
    cat <<'EOF'
Usage: bench/run.sh [-h|--help]

Settings (environment variables):
  THREADS=1          wrk threads (-t)
  CONNECTIONS=32     wrk connections (-c)
  DURATION=5s        length of each measured run (-d; integer with s, m or h)
  ROUNDS=3           rounds; each round loads every server once, round-robin
  WARMUP=1s          unmeasured wrk run before each measured run (0 for none)
  URL_PATH=/         path requested from every server
  SKIP_WASMTIME=1    leave out `wasmtime serve` (no wasmtime-cli install needed)
  SKIP_WASMGATE=1    leave out wasmgate (no wasmgate build, no guest build)
  SKIP_WAGI=1        leave out the WAGI (CGI) hello served by wasmgate
  SKIP_DATA=1        leave out wasmgate-data (one key-value read + one SQL query per request)
  SKIP_TELEMETRY=1   leave out wasmgate-notel (--no-telemetry), wasmgate-otlp (every request's
                     spans exported over OTLP/HTTP to a local receiver) and wasmgate-otlp10
                     (the same with 10% of traces sampled), the ends of telemetry's cost
  SKIP_FUEL=1        leave out wasmgate-fuel (the hello with limits.fuel: fuel-metered code)
  SKIP_SERVICE=1     leave out service-native and wasmgate-service: examples/service-hyper-wasmedge
                     built for the host and served directly vs built for wasm32-wasip1 and run
                     by Wasmgate's service executor behind its gateway
  SKIP_BUILD=1       use the existing native-hello, wasmgate and hello.wasm; build nothing
  WASMGATE_BIN=PATH  use this wasmgate binary (with SKIP_BUILD=1: e.g. a copy that a build
                     running next door cannot replace mid-run)
  WASMTIME_BIN=PATH  use this wasmtime (must be 48.0.8) instead of the cached install
  STARTUP_TIMEOUT=120   seconds a server may take to answer its first request
  BUILD_TIMEOUT=3600    seconds allowed for each build step
  INSTALL_TIMEOUT=5400  seconds allowed for `cargo install wasmtime-cli` (first run only)

wasmtime-cli 48.0.8 is installed once into bench/.cache/wasmtime-48.0.8 (10+ minutes).
Raw wrk output and server logs of the last run are kept in bench/.cache/last-run/.
EOF
}

case "${1:-}" in
    -h | --help) usage; exit 0 ;;
    "") ;;
    *) usage >&2; exit 2 ;;
esac

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
CACHE="$ROOT/bench/.cache"
OUT="$CACHE/last-run"

THREADS=${THREADS:-1}
CONNECTIONS=${CONNECTIONS:-32}
DURATION=${DURATION:-5s}
ROUNDS=${ROUNDS:-3}
WARMUP=${WARMUP:-1s}
URL_PATH=${URL_PATH:-/}
SKIP_WASMTIME=${SKIP_WASMTIME:-0}
SKIP_WASMGATE=${SKIP_WASMGATE:-0}
SKIP_WAGI=${SKIP_WAGI:-0}
SKIP_DATA=${SKIP_DATA:-0}
SKIP_TELEMETRY=${SKIP_TELEMETRY:-0}
SKIP_FUEL=${SKIP_FUEL:-0}
SKIP_SERVICE=${SKIP_SERVICE:-0}
SKIP_BUILD=${SKIP_BUILD:-0}
STARTUP_TIMEOUT=${STARTUP_TIMEOUT:-120}
BUILD_TIMEOUT=${BUILD_TIMEOUT:-3600}
INSTALL_TIMEOUT=${INSTALL_TIMEOUT:-5400}
WASMTIME_VERSION=48.0.8
WASMTIME_ROOT="$CACHE/wasmtime-$WASMTIME_VERSION"
TARGET_DIR=${CARGO_TARGET_DIR:-$ROOT/target}
HELLO_APP="$ROOT/bench/hello-app"
HELLO_WASM="$ROOT/examples/hello/target/wasm32-wasip2/release/hello.wasm"

log() { printf '==> %s\n' "$*" >&2; }
die() { printf 'bench/run.sh: error: %s\n' "$*" >&2; exit 1; }

# --- settings -----------------------------------------------------------------------------

positive_int() { [[ $1 =~ ^[1-9][0-9]*$ ]]; }
positive_int "$THREADS" || die "THREADS must be a positive integer, got '$THREADS'"
positive_int "$CONNECTIONS" || die "CONNECTIONS must be a positive integer, got '$CONNECTIONS'"
positive_int "$ROUNDS" || die "ROUNDS must be a positive integer, got '$ROUNDS'"
positive_int "$STARTUP_TIMEOUT" || die "STARTUP_TIMEOUT must be a positive integer (seconds)"
((CONNECTIONS >= THREADS)) || die "CONNECTIONS ($CONNECTIONS) must be >= THREADS ($THREADS)"
[[ $URL_PATH == /* ]] || die "URL_PATH must start with '/', got '$URL_PATH'"

# wrk durations are an integer with an optional unit (s, m, h); prints whole seconds.
seconds() {
    [[ $1 =~ ^([0-9]+)([smh]?)$ ]] || return 1
    local n=${BASH_REMATCH[1]}
    case ${BASH_REMATCH[2]} in
        m) echo $((n * 60)) ;;
        h) echo $((n * 3600)) ;;
        *) echo "$n" ;;
    esac
}
DURATION_S=$(seconds "$DURATION") || DURATION_S=0
((DURATION_S > 0)) ||
    die "DURATION must be a positive integer with s, m or h (e.g. 5s), got '$DURATION'"
WARMUP_S=$(seconds "$WARMUP") || die "WARMUP must be an integer with s, m or h (e.g. 1s), got '$WARMUP'"

# --- cleanup: every process started here is stopped on exit ---------------------------------

PIDS=()  # servers
CHILD="" # the `timeout` wrapping the build, install or wrk run under way

# bounded SECONDS COMMAND...: run COMMAND under `timeout`, in the background and waited for, so
# that a signal to this script (e.g. from an outer `timeout`) runs the traps at once and the
# cleanup stops COMMAND too (`timeout` passes the signal on to COMMAND's process group).
bounded() {
    local limit=$1 rc=0
    shift
    timeout -k 10 "$limit" "$@" &
    CHILD=$!
    wait "$CHILD" || rc=$?
    CHILD=""
    return "$rc"
}

cleanup() {
    local pid
    if [[ -n $CHILD ]]; then
        kill -TERM "$CHILD" 2>/dev/null || true
        wait "$CHILD" 2>/dev/null || true
    fi
    for pid in "${PIDS[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
    for pid in "${PIDS[@]}"; do
        for _ in {1..50}; do
            kill -0 "$pid" 2>/dev/null || break
            sleep 0.1
        done
        kill -KILL "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
    done
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# --- tools ----------------------------------------------------------------------------------

for tool in python3 getconf timeout; do
    command -v "$tool" >/dev/null || die "$tool is required"
done
if ! command -v wrk >/dev/null; then
    command -v apt-get >/dev/null || die "wrk is missing and apt-get is not available: install wrk"
    sudo=()
    if (($(id -u) != 0)); then
        command -v sudo >/dev/null || die "wrk is missing: run 'apt-get install wrk' as root"
        sudo=(sudo)
    fi
    log "installing wrk with apt-get"
    if ! bounded 600 "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk >&2; then
        bounded 600 "${sudo[@]}" apt-get update -qq >&2 || die "apt-get update failed"
        bounded 600 "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk >&2 ||
            die "apt-get install wrk failed"
    fi
fi
CLK_TCK=$(getconf CLK_TCK)

# --- builds ---------------------------------------------------------------------------------

cargo_build() {
    log "cargo build --release -p $1"
    bounded "$BUILD_TIMEOUT" cargo build --release -p "$1" >&2 ||
        die "cargo build --release -p $1 failed (or took more than ${BUILD_TIMEOUT}s)"
}

NATIVE_BIN="$TARGET_DIR/release/native-hello"
OTLP_SINK_BIN="$TARGET_DIR/release/otlp-sink"
SINK_PID=""
SERVICE_NATIVE_BIN="$TARGET_DIR/service-native/release/service-hyper-wasmedge"
WASMGATE_BIN=${WASMGATE_BIN:-$TARGET_DIR/release/wasmgate}
if [[ $SKIP_BUILD != 1 ]]; then
    command -v cargo >/dev/null || die "cargo is required (or SKIP_BUILD=1 with prebuilt binaries)"
    cargo_build native-hello
    [[ $SKIP_WASMGATE == 1 ]] || cargo_build wasmgate
    if [[ $SKIP_SERVICE != 1 ]]; then
        log "cargo build --release examples/service-hyper-wasmedge (for the host)"
        (cd examples/service-hyper-wasmedge &&
            bounded "$BUILD_TIMEOUT" cargo build --release --target-dir "$TARGET_DIR/service-native" >&2) ||
            die "building examples/service-hyper-wasmedge for the host failed"
    fi
    if [[ $SKIP_WASMGATE != 1 || $SKIP_WASMTIME != 1 ]]; then
        if [[ -f scripts/build-guests.sh ]]; then
            log "scripts/build-guests.sh"
            bounded "$BUILD_TIMEOUT" bash scripts/build-guests.sh >&2 ||
                die "scripts/build-guests.sh failed (or took more than ${BUILD_TIMEOUT}s)"
        else
            log "warning: scripts/build-guests.sh not found; using hello.wasm as it is"
        fi
    fi
fi
[[ -x $NATIVE_BIN ]] || die "native-hello binary not found at $NATIVE_BIN (cargo build --release -p native-hello)"
if [[ $SKIP_WASMGATE != 1 ]]; then
    [[ -x $WASMGATE_BIN ]] ||
        die "wasmgate binary not found at $WASMGATE_BIN (cargo build --release -p wasmgate; or SKIP_WASMGATE=1)"
fi
if [[ $SKIP_WASMGATE != 1 || $SKIP_WASMTIME != 1 ]]; then
    [[ -f $HELLO_WASM ]] ||
        die "hello component not found at $HELLO_WASM (run scripts/build-guests.sh; or SKIP_WASMGATE=1 SKIP_WASMTIME=1)"
fi

if [[ $SKIP_WASMTIME != 1 ]]; then
    if [[ -n ${WASMTIME_BIN:-} ]]; then
        [[ -x $WASMTIME_BIN ]] || die "WASMTIME_BIN=$WASMTIME_BIN is not an executable"
    else
        WASMTIME_BIN="$WASMTIME_ROOT/bin/wasmtime"
        if [[ ! -x $WASMTIME_BIN ]]; then
            command -v cargo >/dev/null || die "cargo is required to install wasmtime-cli (or SKIP_WASMTIME=1)"
            log "installing wasmtime-cli $WASMTIME_VERSION into $WASMTIME_ROOT (takes 10+ minutes, once; SKIP_WASMTIME=1 skips this server)"
            bounded "$INSTALL_TIMEOUT" cargo install wasmtime-cli --version "$WASMTIME_VERSION" --locked \
                --root "$WASMTIME_ROOT" >&2 ||
                die "cargo install wasmtime-cli $WASMTIME_VERSION failed (or took more than ${INSTALL_TIMEOUT}s); SKIP_WASMTIME=1 runs without it"
        fi
    fi
    "$WASMTIME_BIN" --version | grep -qF " $WASMTIME_VERSION" ||
        die "$WASMTIME_BIN is not wasmtime $WASMTIME_VERSION: $("$WASMTIME_BIN" --version)"
fi

# --- servers --------------------------------------------------------------------------------

rm -rf "$OUT"
mkdir -p "$OUT"

free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()'
}

# GET http://127.0.0.1:PORT/PATH without any proxy. Exit 0: 200 (prints status and body);
# 1: another status (prints it); 2: no connection yet.
probe() {
    python3 - "$1" "$URL_PATH" <<'EOF'
import http.client, sys
try:
    conn = http.client.HTTPConnection("127.0.0.1", int(sys.argv[1]), timeout=2)
    conn.request("GET", sys.argv[2])
    resp = conn.getresponse()
    body = resp.read(200).decode("utf-8", "replace").strip()
except OSError:
    sys.exit(2)
print(resp.status, body[:80])
sys.exit(0 if resp.status == 200 else 1)
EOF
}

SERVERS=()
declare -A PID PORT CMDLINE

# start_server NAME PORT COMMAND...: start in the background, wait until it answers 200.
start_server() {
    local name=$1 port=$2 out rc
    shift 2
    "$@" >"$OUT/$name.log" 2>&1 &
    PID[$name]=$!
    PIDS+=("$!")
    PORT[$name]=$port
    CMDLINE[$name]=$(printf '%q ' "$@")
    CMDLINE[$name]=${CMDLINE[$name]% }
    SERVERS+=("$name")
    log "started $name (pid ${PID[$name]}): ${CMDLINE[$name]}"
    local deadline=$((SECONDS + STARTUP_TIMEOUT))
    while :; do
        kill -0 "${PID[$name]}" 2>/dev/null ||
            die "$name exited during startup; last lines of $OUT/$name.log:"$'\n'"$(tail -n 20 "$OUT/$name.log")"
        rc=0
        out=$(probe "$port") || rc=$?
        case $rc in
            0) log "$name answers: $out"; return ;;
            1) die "$name answered GET $URL_PATH with: $out" ;;
        esac
        ((SECONDS < deadline)) ||
            die "$name did not answer within ${STARTUP_TIMEOUT}s; last lines of $OUT/$name.log:"$'\n'"$(tail -n 20 "$OUT/$name.log")"
        sleep 0.2
    done
}

port=$(free_port)
start_server native "$port" "$NATIVE_BIN" "127.0.0.1:$port"
if [[ $SKIP_WASMTIME != 1 ]]; then
    port=$(free_port)
    start_server wasmtime-serve "$port" "$WASMTIME_BIN" serve -S cli --addr "127.0.0.1:$port" "$HELLO_WASM"
fi
if [[ $SKIP_WASMGATE != 1 ]]; then
    port=$(free_port)
    # Per-request logs are at debug level; pin the level so a RUST_LOG in the caller's
    # environment cannot turn them on and skew the figures.
    start_server wasmgate "$port" env RUST_LOG=info "$WASMGATE_BIN" up "$HELLO_APP" --listen "127.0.0.1:$port" \
        --admin-listen 127.0.0.1:0 --cache-dir "$CACHE/wasmgate-compiled"
    if [[ $SKIP_WAGI != 1 ]]; then
        port=$(free_port)
        start_server wasmgate-wagi "$port" env RUST_LOG=info "$WASMGATE_BIN" up "$ROOT/bench/wagi-app" \
            --listen "127.0.0.1:$port" --admin-listen 127.0.0.1:0 --cache-dir "$CACHE/wasmgate-compiled"
    fi
    if [[ $SKIP_DATA != 1 ]]; then
        # Fresh embedded store and database; the first (probe) request fills them.
        rm -rf "$ROOT/bench/data-app/.wasmgate"
        port=$(free_port)
        start_server wasmgate-data "$port" env RUST_LOG=info "$WASMGATE_BIN" up "$ROOT/bench/data-app" \
            --listen "127.0.0.1:$port" --admin-listen 127.0.0.1:0 --cache-dir "$CACHE/wasmgate-compiled"
    fi
    if [[ $SKIP_TELEMETRY != 1 ]]; then
        port=$(free_port)
        start_server wasmgate-notel "$port" env RUST_LOG=info "$WASMGATE_BIN" up "$HELLO_APP" --listen "127.0.0.1:$port" \
            --admin-listen 127.0.0.1:0 --cache-dir "$CACHE/wasmgate-compiled" --no-telemetry
        # A local OTLP/HTTP receiver that reads each export and answers 200, as a collector
        # would (bench/native-hello's otlp-sink: a lean one, since it shares the cores).
        [[ -x $OTLP_SINK_BIN ]] || die "otlp-sink binary not found at $OTLP_SINK_BIN (cargo build --release -p native-hello)"
        receiver_port=$(free_port)
        "$OTLP_SINK_BIN" "127.0.0.1:$receiver_port" >"$OUT/otlp-sink.log" 2>&1 &
        SINK_PID=$!
        PIDS+=("$SINK_PID")
        port=$(free_port)
        start_server wasmgate-otlp "$port" env RUST_LOG=info OTEL_EXPORTER_OTLP_PROTOCOL=http/protobuf \
            OTEL_EXPORTER_OTLP_ENDPOINT="http://127.0.0.1:$receiver_port" "$WASMGATE_BIN" up "$HELLO_APP" \
            --listen "127.0.0.1:$port" --admin-listen 127.0.0.1:0 --cache-dir "$CACHE/wasmgate-compiled"
        port=$(free_port)
        start_server wasmgate-otlp10 "$port" env RUST_LOG=info OTEL_TRACES_SAMPLER=parentbased_traceidratio \
            OTEL_TRACES_SAMPLER_ARG=0.1 OTEL_EXPORTER_OTLP_PROTOCOL=http/protobuf \
            OTEL_EXPORTER_OTLP_ENDPOINT="http://127.0.0.1:$receiver_port" "$WASMGATE_BIN" up "$HELLO_APP" \
            --listen "127.0.0.1:$port" --admin-listen 127.0.0.1:0 --cache-dir "$CACHE/wasmgate-compiled"
    fi
    if [[ $SKIP_SERVICE != 1 ]]; then
        [[ -x $SERVICE_NATIVE_BIN ]] || die "native service binary not found at $SERVICE_NATIVE_BIN"
        port=$(free_port)
        start_server service-native "$port" env SERVICE_LISTEN="127.0.0.1:$port" "$SERVICE_NATIVE_BIN"
        port=$(free_port)
        start_server wasmgate-service "$port" env RUST_LOG=info "$WASMGATE_BIN" up "$ROOT/bench/service-app" \
            --listen "127.0.0.1:$port" --admin-listen 127.0.0.1:0 --cache-dir "$CACHE/wasmgate-compiled"
    fi
    if [[ $SKIP_FUEL != 1 ]]; then
        port=$(free_port)
        start_server wasmgate-fuel "$port" env RUST_LOG=info "$WASMGATE_BIN" up "$ROOT/bench/hello-fuel-app" \
            --listen "127.0.0.1:$port" --admin-listen 127.0.0.1:0 --cache-dir "$CACHE/wasmgate-compiled"
    fi
fi

LOADAVG_BEFORE=$(cut -d' ' -f1-3 /proc/loadavg)

# --- measurements ---------------------------------------------------------------------------

# "utime stime" (fields 14 and 15 of /proc/PID/stat, all threads) in clock ticks.
cpu_ticks() {
    local stat rest f
    stat=$(<"/proc/$1/stat") || die "cannot read /proc/$1/stat"
    rest=${stat##*) } # the command name (field 2) may hold spaces; field 3 follows the last ')'
    read -r -a f <<<"$rest"
    echo "${f[11]} ${f[12]}"
}

PY_PARSE=$(
    cat <<'EOF'
import re, sys
path, name, rnd, before, after, clk = sys.argv[1:7]
text = open(path).read()
UNITS = {"us": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}
def secs(s):
    m = re.fullmatch(r"([0-9.]+)(us|ms|s|m|h)", s)
    if not m:
        sys.exit(f"{path}: cannot read the time {s!r}")
    return float(m.group(1)) * UNITS[m.group(2)]
def find(pattern, what):
    m = re.search(pattern, text, re.M)
    if not m:
        sys.exit(f"{path}: wrk output has no {what}:\n{text}")
    return m
p50 = secs(find(r"^\s*50(?:\.0+)?%\s+(\S+)\s*$", "p50 latency").group(1))
p99 = secs(find(r"^\s*99(?:\.0+)?%\s+(\S+)\s*$", "p99 latency").group(1))
m = find(r"^\s*(\d+) requests in (\S+?),", "request count")
requests, elapsed = int(m.group(1)), secs(m.group(2))
rps = float(find(r"^Requests/sec:\s*([0-9.]+)", "Requests/sec").group(1))
m = re.search(r"Non-2xx or 3xx responses:\s*(\d+)", text)
non2xx = int(m.group(1)) if m else 0
m = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", text)
sockerr = sum(int(g) for g in m.groups()) if m else 0
if requests == 0:
    sys.exit(f"{path}: wrk completed no request:\n{text}")
user_s, sys_s = ((int(a) - int(b)) / int(clk) for a, b in zip(after.split(), before.split()))
cpu_s = user_s + sys_s
print("\t".join(str(v) for v in (name, rnd, rps, p50 * 1e6, p99 * 1e6, requests, elapsed,
                                   cpu_s * 1e6 / requests, 100 * cpu_s / elapsed, non2xx + sockerr,
                                   user_s * 1e6 / requests, sys_s * 1e6 / requests)))
EOF
)

RESULTS="$OUT/results.tsv"
: >"$RESULTS"
WRK_LIMIT=$((DURATION_S + 30))

run_one() {
    local name=$1 round=$2 url="http://127.0.0.1:${PORT[$1]}$URL_PATH" raw="$OUT/$1.round$2.txt"
    local before after
    if ((WARMUP_S > 0)); then
        bounded $((WARMUP_S + 30)) wrk -t"$THREADS" -c"$CONNECTIONS" -d"$WARMUP" "$url" >/dev/null ||
            die "wrk warm-up against $name failed"
    fi
    before=$(cpu_ticks "${PID[$name]}")
    bounded "$WRK_LIMIT" wrk -t"$THREADS" -c"$CONNECTIONS" -d"$DURATION" --latency "$url" >"$raw" ||
        die "wrk against $name failed or took more than ${WRK_LIMIT}s; see $raw"
    after=$(cpu_ticks "${PID[$name]}")
    kill -0 "${PID[$name]}" 2>/dev/null || die "$name exited during the run; see $OUT/$name.log"
    python3 -c "$PY_PARSE" "$raw" "$name" "$round" "$before" "$after" "$CLK_TCK" >>"$RESULTS" ||
        die "cannot parse $raw"
    log "round $round/$ROUNDS $name: $(tail -n 1 "$RESULTS" | cut -f3 | xargs printf '%.0f') req/s"
}

n=${#SERVERS[@]}
log "measuring ${SERVERS[*]}: $ROUNDS rounds x $n servers x (${WARMUP_S}s warm-up + ${DURATION_S}s)"
for ((round = 1; round <= ROUNDS; round++)); do
    # Round-robin, starting one server later each round, so no server always goes first.
    for ((i = 0; i < n; i++)); do
        run_one "${SERVERS[$(((round - 1 + i) % n))]}" "$round"
    done
done

# --- report ---------------------------------------------------------------------------------

cpu_model=$(sed -n 's/^model name[[:space:]]*:[[:space:]]*//p' /proc/cpuinfo | head -n 1)
command_line=""
[[ -z ${CARGO_TARGET_DIR:-} ]] || command_line+="CARGO_TARGET_DIR=$CARGO_TARGET_DIR "
command_line+="THREADS=$THREADS CONNECTIONS=$CONNECTIONS DURATION=$DURATION ROUNDS=$ROUNDS WARMUP=$WARMUP"
[[ $URL_PATH == / ]] || command_line+=" URL_PATH=$URL_PATH"
[[ $SKIP_WASMTIME != 1 ]] || command_line+=" SKIP_WASMTIME=1"
[[ $SKIP_WASMGATE != 1 ]] || command_line+=" SKIP_WASMGATE=1"
[[ $SKIP_WAGI != 1 ]] || command_line+=" SKIP_WAGI=1"
[[ $SKIP_DATA != 1 ]] || command_line+=" SKIP_DATA=1"
[[ $SKIP_TELEMETRY != 1 ]] || command_line+=" SKIP_TELEMETRY=1"
[[ $SKIP_FUEL != 1 ]] || command_line+=" SKIP_FUEL=1"
[[ $SKIP_SERVICE != 1 ]] || command_line+=" SKIP_SERVICE=1"
[[ $SKIP_BUILD != 1 ]] || command_line+=" SKIP_BUILD=1"
command_line+=" bench/run.sh"

echo "Machine:  $(nproc) CPUs, ${cpu_model:-unknown CPU}, $(uname -srm)"
echo "Load avg: $LOADAVG_BEFORE before, $(cut -d' ' -f1-3 /proc/loadavg) after (other work on these cores lowers req/s)"
echo "Command:  $command_line"
echo "Load:     wrk -t$THREADS -c$CONNECTIONS -d$DURATION --latency http://127.0.0.1:PORT$URL_PATH" \
    "($(wrk --version 2>&1 | head -n 1 | cut -d' ' -f1-2)), ${WARMUP} warm-up before each run," \
    "$ROUNDS interleaved rounds"
echo "Servers:"
for name in "${SERVERS[@]}"; do
    printf '  %-15s %s\n' "$name" "${CMDLINE[$name]}"
done
if [[ $SKIP_WASMTIME != 1 ]]; then
    printf '  %-15s %s\n' "" "($("$WASMTIME_BIN" --version))"
fi
if [[ -n $SINK_PID ]]; then
    read -r sink_user sink_sys <<<"$(cpu_ticks "$SINK_PID")"
    kill -TERM "$SINK_PID" 2>/dev/null || true
    wait "$SINK_PID" 2>/dev/null || true
    echo "OTLP sink: $(tail -n 1 "$OUT/otlp-sink.log"); $(python3 -c "print(f'{($sink_user + $sink_sys) / $CLK_TCK:.2f}')") s of CPU over the run"
fi
echo "Raw output: $OUT"
echo

python3 - "$RESULTS" "${SERVERS[@]}" <<'EOF'
import statistics, sys
path, servers = sys.argv[1], sys.argv[2:]
rows = {}
for line in open(path):
    name, rnd, rps, p50, p99, requests, elapsed, cpu, cpu_pct, errors, user, sys_ = line.rstrip("\n").split("\t")
    rows.setdefault(name, []).append(dict(round=int(rnd), rps=float(rps), p50=float(p50), p99=float(p99),
                                          cpu=float(cpu), cpu_pct=float(cpu_pct), errors=int(errors),
                                          user=float(user), sys=float(sys_)))

def lat(us):
    if us < 1000:
        return f"{us:.0f}us"
    if us < 1e6:
        return f"{us / 1000:.2f}ms"
    return f"{us / 1e6:.2f}s"

METRICS = [("req/s", "rps", lambda v: f"{v:,.0f}"),
           ("p50 latency", "p50", lat),
           ("p99 latency", "p99", lat),
           ("CPU µs/req", "cpu", lambda v: f"{v:.1f}"),
           ("  user", "user", lambda v: f"{v:.1f}"),
           ("  system", "sys", lambda v: f"{v:.1f}"),
           ("server CPU %", "cpu_pct", lambda v: f"{v:.0f}%")]
med = {}
for name in servers:
    rs = rows[name]
    errors = sum(r["errors"] for r in rs)
    print(f"{name}  ({len(rs)} rounds{', ERRORS: %d non-2xx or socket errors' % errors if errors else ', no errors'})")
    print(f"  {'':<14}{'median':>12}{'min':>12}{'max':>12}")
    for label, key, fmt in METRICS:
        vals = [r[key] for r in rs]
        med[name, key] = statistics.median(vals)
        print(f"  {label:<14}{fmt(med[name, key]):>12}{fmt(min(vals)):>12}{fmt(max(vals)):>12}")
    print()

def per_round(a, b, key):
    rb = {r["round"]: r[key] for r in rows[b]}
    return [r[key] / rb[r["round"]] for r in rows[a] if rb.get(r["round"])]

print("Ratios (of the medians above; per-round range in brackets):")
def ratio(a, b, key, label):
    if a not in rows or b not in rows:
        return  # a server left out of this run (SKIP_*)
    if not med[b, key]:
        print(f"  {a} / {b:<15} {label:<8} n/a ({b} median is 0)")
        return
    pr = per_round(a, b, key)
    # Also the median of the per-round ratios: each round measures both servers within
    # seconds of each other, so on a machine whose speed drifts it is the steadier figure.
    print(f"  {a} / {b:<15} {label:<8} {med[a, key] / med[b, key]:6.2f}  [{min(pr):.2f}-{max(pr):.2f}]"
          f"  per-round median {statistics.median(pr):.2f}")
ratio("wasmgate", "native", "rps", "req/s")
ratio("wasmgate", "wasmtime-serve", "rps", "req/s")
ratio("wasmgate", "wasmtime-serve", "cpu", "CPU/req")
ratio("wasmgate-wagi", "wasmgate", "rps", "req/s")
ratio("wasmgate-wagi", "wasmgate", "cpu", "CPU/req")
ratio("wasmgate-data", "wasmgate", "rps", "req/s")
ratio("wasmgate-data", "wasmgate", "cpu", "CPU/req")
# Telemetry's cost: records, metrics, history, call hooks and the access line (wasmgate), plus
# span export (wasmgate-otlp), against none of it (wasmgate-notel). Budget: 5%.
ratio("wasmgate", "wasmgate-notel", "rps", "req/s")
ratio("wasmgate", "wasmgate-notel", "cpu", "CPU/req")
ratio("wasmgate-otlp", "wasmgate-notel", "rps", "req/s")
ratio("wasmgate-otlp", "wasmgate-notel", "cpu", "CPU/req")
ratio("wasmgate-otlp10", "wasmgate-notel", "rps", "req/s")
ratio("wasmgate-otlp10", "wasmgate-notel", "cpu", "CPU/req")
ratio("wasmgate-fuel", "wasmgate", "rps", "req/s")
ratio("wasmgate-fuel", "wasmgate", "cpu", "CPU/req")
ratio("wasmgate-service", "service-native", "rps", "req/s")
ratio("wasmgate-service", "service-native", "cpu", "CPU/req")
EOF
