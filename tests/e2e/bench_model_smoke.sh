#!/bin/bash
# bench/model --smoke, so that the reference backend's benchmark never rots:
# every run answered with nonzero successes and 0 failed requests. It
# asserts no speed.
FG_TEST_TIMEOUT=${FG_TEST_TIMEOUT:-120}
. "$(dirname "$0")/lib.sh"
command -v h2load >/dev/null || skip "h2load (nghttp2-client) is not installed"
[ -x "$FG_SRCDIR/bench/model" ] || skip "bench/model is not in this source tree"
[ -x "$FG_MODEL" ] || die "model server $FG_MODEL is not built"

FLEETGATE_BUILD_DIR=$FG_BUILDDIR timeout -k 5 100 "$FG_SRCDIR/bench/model" --smoke --no-deps \
    --out "$T/results" >"$T/bench.log" 2>&1
rc=$?
tail -n 12 "$T/bench.log" | sed 's/^/# /'
assert_eq 0 "$rc" "bench/model --smoke exit status"
[ -f "$T/results/results.json" ] || die "bench/model wrote no results.json"
rows=$($PY - "$T/results/results.json" <<'PYEOF'
import json, sys
for r in json.load(open(sys.argv[1]))["results"]:
    print(r["device"], r["max_batch"], r["images_per_request"], r["succeeded"], r["failed"])
PYEOF
)
n=0
while read -r dev b per ok bad; do
    [ -n "$dev" ] || continue
    n=$((n + 1))
    assert_ge "$ok" 1 "$dev max_batch $b, $per per request: succeeded"
    assert_eq 0 "$bad" "$dev max_batch $b, $per per request: failed"
done <<<"$rows"
assert_ge "$n" 3 "runs reported"
finish
