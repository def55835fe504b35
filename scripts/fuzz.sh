#!/usr/bin/env bash
# Runs Wasmgate's cargo-fuzz targets (fuzz/) for a bounded time each.
#
#   scripts/fuzz.sh [SECONDS_PER_TARGET] [TARGET...]
#
#   SECONDS_PER_TARGET  how long libFuzzer runs each target (default 60)
#   TARGET...           some of: manifest runtime_config units_and_hosts cgi_response router
#                       (default: all of them)
#
# Exits 0 when every target ran its time without a crash; otherwise prints, for each target
# that failed, the input that made it fail (the reproducer, under fuzz/artifacts/TARGET/) and
# the commands to reproduce and minimize it, runs the remaining targets, and exits 1.
#
# Needs: cargo-fuzz (installed with `cargo install cargo-fuzz --locked` if missing) and a C++
# compiler (libFuzzer is built from source). It uses the nightly toolchain when rustup has one,
# otherwise stable with RUSTC_BOOTSTRAP=1 (what that is needed for: docs/fuzzing.md). Not run
# in CI (CI runs scripts/test.sh).
#
# Environment:
#   FUZZ_SANITIZER  none (default) or address. The code under test is safe Rust, so
#                   AddressSanitizer finds little there, while it instruments all of wasmtime
#                   too and slows every execution.
#   FUZZ_JOBS       cargo build jobs (default: cargo's own choice)
#
# Each target starts from its seeds (fuzz/corpus/TARGET, kept in git) plus what earlier runs
# found (fuzz/target/corpus/TARGET, not in git); new inputs go to the latter only. Builds go to
# fuzz/target, apart from the workspace's target/, and run under `nice`.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"

all_targets=(manifest runtime_config units_and_hosts cgi_response router)
seconds=${1:-60}
if ! [[ $seconds =~ ^[0-9]+$ ]] || [ "$seconds" -eq 0 ]; then
    echo "usage: scripts/fuzz.sh [SECONDS_PER_TARGET] [TARGET...]" >&2
    exit 2
fi
shift || true
targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
    targets=("${all_targets[@]}")
fi
for target in "${targets[@]}"; do
    if [ ! -f "fuzz/fuzz_targets/$target.rs" ]; then
        echo "unknown fuzz target $target (targets: ${all_targets[*]})" >&2
        exit 2
    fi
done

if ! command -v cargo-fuzz >/dev/null; then
    echo "== installing cargo-fuzz"
    cargo install cargo-fuzz --locked
fi

sanitizer=${FUZZ_SANITIZER:-none}
if rustup toolchain list 2>/dev/null | grep -q '^nightly'; then
    cargo=(cargo +nightly fuzz)
    echo "== toolchain: nightly, sanitizer: $sanitizer"
else
    # Needed for -Zsanitizer; without a sanitizer it is a precaution (a dependency may use
    # nightly features under cfg(fuzzing)) and changes nothing else.
    export RUSTC_BOOTSTRAP=1
    cargo=(cargo fuzz)
    echo "== toolchain: stable with RUSTC_BOOTSTRAP=1, sanitizer: $sanitizer"
fi

# Debug assertions on, so integer overflow is a crash; 16 codegen units, because the default of
# one makes the instrumented wasmtime build (the cgi_response and router targets link the
# runtime) take far longer on a small machine, for a few percent of fuzzing speed.
build_flags=(--sanitizer "$sanitizer" --debug-assertions --codegen-units 16 --target-dir fuzz/target)
if [ -n "${FUZZ_JOBS:-}" ]; then
    export CARGO_BUILD_JOBS=$FUZZ_JOBS
fi

echo "== building ${targets[*]}"
for target in "${targets[@]}"; do
    nice -n 10 "${cargo[@]}" build "${build_flags[@]}" "$target"
done

mkdir -p fuzz/target/logs
failed=()
for target in "${targets[@]}"; do
    work_corpus=fuzz/target/corpus/$target
    artifacts=fuzz/artifacts/$target
    log=fuzz/target/logs/$target.log
    mkdir -p "$work_corpus" "$artifacts" "fuzz/corpus/$target"
    before=$(find "$artifacts" -type f | wc -l)
    echo "== fuzzing $target for ${seconds}s (log: $log)"
    status=0
    # -timeout: an input that runs longer than 10 s is a hang, reported like a crash.
    nice -n 10 "${cargo[@]}" run "${build_flags[@]}" "$target" "$work_corpus" "fuzz/corpus/$target" -- \
        -max_total_time="$seconds" -timeout=10 -print_final_stats=1 \
        -artifact_prefix="$artifacts/" >"$log" 2>&1 || status=$?
    # The last status line (`#N DONE cov: ... ft: ... corp: ... exec/s: ...`) and the totals.
    grep -E '^#[0-9]+' "$log" | tail -n 1 || true
    grep -E '^stat::(number_of_executed_units|average_exec_per_sec)' "$log" | tr '\n' ' ' || true
    echo
    after=$(find "$artifacts" -type f | wc -l)
    if [ "$status" -ne 0 ] || [ "$after" -gt "$before" ]; then
        failed+=("$target")
        reproducer=$(ls -t "$artifacts"/* 2>/dev/null | head -n 1 || true)
        echo "!! $target failed (exit $status); the end of its log:"
        grep -E 'panicked at|ERROR: libFuzzer|SUMMARY' "$log" | head -n 5 || true
        if [ -n "$reproducer" ]; then
            echo "!! reproducer: $root/$reproducer"
            echo "!! reproduce:  ${cargo[*]} run ${build_flags[*]} $target $reproducer"
            echo "!! minimize:   ${cargo[*]} tmin ${build_flags[*]} $target $reproducer"
        else
            echo "!! no reproducer was written; see $log"
        fi
    fi
done

if [ ${#failed[@]} -gt 0 ]; then
    echo "== FAILED: ${failed[*]}"
    exit 1
fi
echo "== all ${#targets[@]} target(s) ran ${seconds}s each without a crash"
