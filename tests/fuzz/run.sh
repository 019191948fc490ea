#!/bin/bash
# Runs libFuzzer harnesses for a bounded time each (make fuzz):
#   tests/fuzz/run.sh SECONDS CORPUS-DIR HARNESS...
# Each harness fuzzes a copy of CORPUS-DIR/NAME (NAME: the harness's file
# name less "fuzz_") in a temporary directory, so the source tree is never
# written. A crash, leak or sanitizer report is kept as
# fuzz-crashes/NAME/ in the current (build) directory and makes the run
# fail once every harness has had its turn. Prints each harness's exec/s.
set -uo pipefail
secs=$1 corpus=$2
shift 2
tmp=$(mktemp -d "${TMPDIR:-/tmp}/fg-fuzz.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
failed=()
for h in "$@"; do
    bin=$(cd "$(dirname "$h")" && pwd)/$(basename "$h")
    name=$(basename "$h")
    name=${name#fuzz_}
    work=$tmp/$name
    mkdir -p "$work/corpus" "$work/artifacts"
    if [ -d "$corpus/$name" ]; then
        cp "$corpus/$name"/* "$work/corpus/" 2>/dev/null || true
    fi
    # fuzz from the temporary directory: nothing is written elsewhere
    (cd "$work" && "$bin" -max_total_time="$secs" -timeout=10 -rss_limit_mb=2048 \
        -print_final_stats=1 -artifact_prefix="$work/artifacts/" corpus) >"$work/log" 2>&1
    rc=$?
    execs=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$work/log" | tail -n 1)
    runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$work/log" | tail -n 1)
    if [ "$rc" -eq 0 ]; then
        printf 'fuzz %-16s ok    %s s, %s runs, %s exec/s\n' "$name" "$secs" "${runs:-?}" "${execs:-?}"
    else
        printf 'fuzz %-16s FAIL  (exit %s)\n' "$name" "$rc"
        mkdir -p "fuzz-crashes/$name"
        cp "$work/artifacts"/* "fuzz-crashes/$name/" 2>/dev/null || true
        cp "$work/log" "fuzz-crashes/$name/log"
        grep -A40 -m1 'ERROR: \|runtime error\|==ERROR\|deadly signal' "$work/log" | head -n 60
        echo "fuzz $name: log and input in $(pwd)/fuzz-crashes/$name/"
        failed+=("$name")
    fi
done
if [ ${#failed[@]} -gt 0 ]; then
    echo "fuzz: failed: ${failed[*]}"
    exit 1
fi
