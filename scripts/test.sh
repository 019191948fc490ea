#!/bin/bash
# The whole test suite, from a fresh Debian 12 machine:
#   1. installs what is missing (scripts/deps.sh test);
#   2. builds and runs `make check` (unit + end-to-end tests);
#   3. builds again with ASan + UBSan (--enable-sanitizers --without-cuda) and
#      runs it again;
#   4. the libFuzzer harnesses, 10 s each (clang; skip with FG_SKIP_FUZZ=1);
#   5. `make distcheck` (skip with FG_SKIP_DISTCHECK=1).
# Ends with "N passed, M failed" over every test run; exits non-zero on any failure.
set -uo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"

scripts/deps.sh test || exit 1

passed=0 failed=0 skipped=0 status=0
# the ends of failing tests' logs, printed again last: CI shows the end
failures=$(mktemp)
trap 'rm -f "$failures"' EXIT
count() {   # count LOG: add the automake summary of a test-suite.log
    local log=$1 p f e s
    p=$(grep -E '^# PASS: ' "$log" | awk '{print $3}')
    f=$(grep -E '^# FAIL: ' "$log" | awk '{print $3}')
    e=$(grep -E '^# ERROR: ' "$log" | awk '{print $3}')
    s=$(grep -E '^# SKIP: ' "$log" | awk '{print $3}')
    skipped=$((skipped + ${s:-0}))
    passed=$((passed + ${p:-0}))
    failed=$((failed + ${f:-0} + ${e:-0}))
}
run_suite() {   # run_suite NAME BUILD-DIR [CONFIGURE-ARGS...]
    local name=$1 dir=$2
    shift 2
    echo "== $name: building in $dir"
    if ! scripts/build.sh "$dir" "$@" >/dev/null; then
        echo "== $name: build failed"
        failed=$((failed + 1)); status=1
        return
    fi
    echo "== $name: make check"
    if ! make -C "$dir" -j2 check; then
        status=1
        for f in "$dir"/tests/*/*.log; do
            if grep -q "^FAIL\|^ERROR" "${f%.log}.trs" 2>/dev/null; then
                { echo "---- $name: $f"; tail -40 "$f"; } | tee -a "$failures"
            fi
        done
    fi
    if [ -f "$dir/test-suite.log" ]; then count "$dir/test-suite.log"; else failed=$((failed + 1)); fi
}

# The release build compiles and links the cuDNN engine wherever CUDA and
# cuDNN are installed (CI: /usr/local/cuda), and says so; asked for by name,
# a broken CUDA set-up stops the build instead of quietly dropping the path.
cuda_args=()
if [ -f /usr/local/cuda/include/cudnn.h ]; then
    cuda_args=(--with-cuda=/usr/local/cuda)
    echo "== release: with the cuDNN engine (/usr/local/cuda)"
else
    echo "== release: CPU kernels only (no cuDNN in /usr/local/cuda)"
fi
run_suite release "$top/build" "${cuda_args[@]}"
grep -h 'reference backend kernels' "$top/build/config.log" 2>/dev/null | tail -n 1 || true
# Sanitizers: ASan keeps freed memory in a quarantine; a small one keeps the
# RSS bounds of the streaming tests meaningful. CPU only: ASan and the CUDA
# driver do not mix (docs/gpu.md).
ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:quarantine_size_mb=16:abort_on_error=0} \
UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1} \
FG_SANITIZERS=1 \
    run_suite sanitizers "$top/build-asan" --enable-sanitizers --without-cuda

# Fuzzing, short: every libFuzzer harness (tests/fuzz) for FUZZ_SECONDS
# (default 10 here) from its seed corpus; any crash, leak or sanitizer
# report fails it. Built with clang in its own directory.
if [ "${FG_SKIP_FUZZ:-0}" != 1 ]; then
    echo "== fuzz: building in $top/build-fuzz (clang, --enable-fuzzing)"
    if CC=clang scripts/build.sh "$top/build-fuzz" --enable-fuzzing --without-cuda >/dev/null &&
       make -C "$top/build-fuzz" fuzz FUZZ_SECONDS="${FUZZ_SECONDS:-10}" >"$top/build-fuzz/fuzz.out" 2>&1; then
        passed=$((passed + 1))
        echo "fuzz: ok (log: $top/build-fuzz/fuzz.out)"
    else
        failed=$((failed + 1)); status=1
        tail -40 "$top/build-fuzz/fuzz.out" 2>/dev/null
    fi
fi

if [ "${FG_SKIP_DISTCHECK:-0}" != 1 ]; then
    echo "== make distcheck"
    if make -C "$top/build" distcheck >"$top/build/distcheck.out" 2>&1; then
        passed=$((passed + 1))
        echo "distcheck: ok"
    else
        failed=$((failed + 1)); status=1
        tail -40 "$top/build/distcheck.out"
    fi
fi

if [ -s "$failures" ]; then
    echo "== the failing tests' logs (their last lines), again"
    cat "$failures"
fi
# SKIP is not a pass: the GPU test skips where there is no GPU
echo "$passed passed, $failed failed, $skipped skipped"
[ "$failed" -eq 0 ] && [ "$status" -eq 0 ]
