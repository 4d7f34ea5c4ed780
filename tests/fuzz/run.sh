#!/usr/bin/env bash
# tests/fuzz/run.sh - build the libFuzzer targets with clang (address and
# undefined-behaviour sanitizers), make their seed corpora and run each one.
#
#   tests/fuzz/run.sh [--build-only] [TARGET...]     (from a built tree: needs ./tokenmill)
#
# FUZZ_SECONDS   seconds per target (default 60); FUZZ_JOBS parallel targets (1)
# FUZZ_BUILD     build, seed and corpus directory (default fuzz-build in the build tree)
# FUZZ_ARGS      extra libFuzzer options
# CC             the clang to use (default: clang, else clang-14)
#
# Each target keeps its growing corpus in FUZZ_BUILD/corpus/TARGET (seeded from
# FUZZ_BUILD/seeds/TARGET, made by seeds.sh) and writes crash reproducers as
# FUZZ_BUILD/artifacts/TARGET/crash-* (also leak-*, timeout-*, oom-*; slow-unit-*
# files are inputs slower than 10 s, kept for a look but not failures). Exit
# status: 0 when every target ran clean, 1 when one found something, 77 when
# clang or its fuzzer runtime is missing. A summary line per target gives the
# executions done and what was found.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
src=$(cd "$here/../.." && pwd)
build=${FUZZ_BUILD:-$PWD/fuzz-build}
seconds=${FUZZ_SECONDS:-60}
jobs=${FUZZ_JOBS:-1}
all_targets="model hf_json tiktoken gguf safetensors npy reader counts roundtrip train splice"
build_only=0
targets=""
for a in "$@"; do
    case $a in
        --build-only) build_only=1 ;;
        -h|--help) sed -n '2,18p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
        *) case " $all_targets " in *" $a "*) targets="$targets $a" ;;
               *) echo "run.sh: unknown target '$a' (targets: $all_targets)" >&2; exit 2 ;; esac ;;
    esac
done
targets=${targets:-$all_targets}

cc=${CC:-}
if [ -z "$cc" ] || ! "$cc" --version 2>/dev/null | grep -q clang; then
    cc=""
    for c in clang clang-14; do command -v "$c" >/dev/null && { cc=$c; break; }; done
fi
if [ -z "$cc" ]; then echo "run.sh: clang not found: skipping the fuzzers (apt-get install clang libclang-rt-14-dev)"; exit 77; fi
echo 'int LLVMFuzzerTestOneInput(const unsigned char *d, unsigned long n); int LLVMFuzzerTestOneInput(const unsigned char *d, unsigned long n) { (void)d; (void)n; return 0; }' \
    > "${TMPDIR:-/tmp}/tkm-fuzz-probe.$$.c"
if ! "$cc" -fsanitize=fuzzer,address,undefined "${TMPDIR:-/tmp}/tkm-fuzz-probe.$$.c" -o "${TMPDIR:-/tmp}/tkm-fuzz-probe.$$" 2>/dev/null; then
    rm -f "${TMPDIR:-/tmp}/tkm-fuzz-probe.$$"*
    echo "run.sh: $cc cannot link -fsanitize=fuzzer: skipping the fuzzers (apt-get install libclang-rt-14-dev)"; exit 77
fi
rm -f "${TMPDIR:-/tmp}/tkm-fuzz-probe.$$"*

# ---- build: every library source once, then one binary per target ----
mkdir -p "$build/obj"
flags=(-g -O1 -std=c11 -D_GNU_SOURCE -pthread -I"$src/include" -I"$src/lib" -fno-omit-frame-pointer
       -fsanitize=address,undefined -fno-sanitize-recover=all)
icu=$(pkg-config --cflags icu-uc icu-i18n 2>/dev/null || true)
libs=$(pkg-config --libs icu-uc icu-i18n zlib 2>/dev/null || echo "-licui18n -licuuc -licudata -lz")
objs=()
# the library's sources: the .c files of libtkm_core_la_SOURCES in Makefile.am (one list to keep)
core_srcs=$(awk '/^libtkm_core_la_SOURCES *=/ { on = 1 } on { for (i = 1; i <= NF; i++) if ($i ~ /\.c$/) print $i; if ($NF != "\\") exit }' \
    "$src/Makefile.am")
[ -n "$core_srcs" ] || { echo "run.sh: no libtkm_core_la_SOURCES in $src/Makefile.am" >&2; exit 1; }
for f in $core_srcs; do
    o="$build/obj/${f%.c}.o"; mkdir -p "${o%/*}"
    if [ ! -e "$o" ] || [ "$src/$f" -nt "$o" ] || [ -n "$(find "$src/lib" "$src/include" "$src/${f%/*}" -name '*.h' -newer "$o" -print -quit)" ]; then
        # shellcheck disable=SC2086
        "$cc" "${flags[@]}" -fsanitize=fuzzer-no-link -Wno-ignored-attributes -Wno-unknown-attributes $icu \
            -DTKM_CUDA_MODULE_DIR='"/nonexistent"' -DTKM_CUDA_MODULE_BUILD='"/nonexistent"' \
            -c "$src/$f" -o "$o" &
        while [ "$(jobs -rp | wc -l)" -ge 2 ]; do wait -n; done
    fi
    objs+=("$o")
done
wait
for t in $targets; do
    case $t in
        gguf) s=fuzz_teacher.c; d=-DFUZZ_GGUF ;;
        safetensors) s=fuzz_teacher.c; d=-DFUZZ_SAFETENSORS ;;
        npy) s=fuzz_teacher.c; d=-DFUZZ_NPY ;;
        *) s=fuzz_$t.c; d= ;;
    esac
    bin="$build/fuzz_$t"
    if [ ! -e "$bin" ] || [ -n "$(find "${objs[@]}" "$here" -newer "$bin" -print -quit)" ]; then
        # shellcheck disable=SC2086
        "$cc" "${flags[@]}" -fsanitize=fuzzer $d "$here/$s" "${objs[@]}" $libs -lm -ldl -o "$bin"
    fi
done
echo "run.sh: built$(for t in $targets; do printf ' fuzz_%s' "$t"; done) in $build"

# ---- seeds ----
if [ ! -e "$build/seeds/.done" ]; then
    "$here/seeds.sh" "$build/seeds"
    touch "$build/seeds/.done"
fi
[ "$build_only" = 1 ] && exit 0

# ---- run ----
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:allocator_may_return_null=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
run_one() {
    local t=$1
    mkdir -p "$build/corpus/$t" "$build/artifacts/$t"  # findings: new files since .start
    local log="$build/fuzz_$t.log"
    local max_len=65536 rc=0 stamp="$build/artifacts/$t/.start"
    touch "$stamp"
    [ "$t" = train ] && max_len=4096
    [ "$t" = roundtrip ] && max_len=4096
    # shellcheck disable=SC2086
    "$build/fuzz_$t" -max_total_time="$seconds" -timeout=60 -rss_limit_mb=3072 -max_len=$max_len \
        -print_final_stats=1 -artifact_prefix="$build/artifacts/$t/" ${FUZZ_ARGS:-} \
        "$build/corpus/$t" "$build/seeds/$t" >"$log" 2>&1 || rc=$?
    local execs cov found
    execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
    [ -n "$execs" ] || execs=$(grep -o "^#[0-9]*" "$log" | tail -1 | tr -d "#" || true)
    cov=$(grep -o 'cov: [0-9]*' "$log" | tail -1 | cut -d' ' -f2 || true)
    found=$(find "$build/artifacts/$t" -type f -newer "$stamp" \( -name 'crash-*' -o -name 'leak-*' -o -name 'timeout-*' -o -name 'oom-*' \) | wc -l)
    printf 'fuzz_%-12s %6ss  %10s execs  cov %6s  corpus %5s  findings %s  rc %s\n' "$t" "$seconds" "${execs:-?}" \
        "${cov:-?}" "$(find "$build/corpus/$t" -type f | wc -l)" "$found" "$rc"
    if [ "$rc" != 0 ]; then
        echo "---- fuzz_$t ($log) ----"
        grep -E 'ERROR|SUMMARY|fuzz check failed|runtime error|Test unit written|^    #[0-9] ' "$log" | head -30 || true
        return 1
    fi
}
status=0
pids=()
for t in $targets; do
    run_one "$t" &
    pids+=($!)
    if [ "${#pids[@]}" -ge "$jobs" ]; then
        wait "${pids[0]}" || status=1
        pids=("${pids[@]:1}")
    fi
done
for p in "${pids[@]}"; do wait "$p" || status=1; done
exit $status
