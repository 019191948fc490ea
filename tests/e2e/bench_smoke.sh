#!/bin/bash
# bench/run --smoke, so that the benchmark harness never rots: fleetgate,
# HAProxy and nginx (as proxies before two nginx backends) and the backend
# directly each answer h2load over HTTP/1.1, h2c and h2 over TLS with nonzero
# successes and 0 failed requests. It asserts no speed.
FG_TEST_TIMEOUT=${FG_TEST_TIMEOUT:-150}
. "$(dirname "$0")/lib.sh"
command -v haproxy >/dev/null || skip "haproxy is not installed"
command -v h2load >/dev/null || skip "h2load (nghttp2-client) is not installed"
require_cmd nginx openssl taskset
[ -x "$FG_SRCDIR/bench/run" ] || skip "bench/run is not in this source tree"
[ -x "$FG_GATEWAY" ] || die "gateway $FG_GATEWAY is not built"

FLEETGATE=$FG_GATEWAY timeout -k 5 120 "$FG_SRCDIR/bench/run" --smoke --no-deps \
    --out "$T/results" --workdir "$T/bench" >"$T/bench.log" 2>&1
rc=$?
tail -n 20 "$T/bench.log" | sed 's/^/# /'
assert_eq 0 "$rc" "bench/run --smoke exit status"
# the gateway's log where finish() and the cleanup look for sanitizer reports
[ -f "$T/bench/logs/fleetgate.log" ] && cp "$T/bench/logs/fleetgate.log" "$T/gateway-bench.log"

[ -f "$T/results/results.json" ] || die "bench/run wrote no results.json"
# one line per target and protocol: TARGET PROTO SUCCEEDED FAILED RUNS-IN-ERROR
rows=$($PY - "$T/results/results.json" <<'PYEOF'
import json, sys
for r in json.load(open(sys.argv[1]))["results"]:
    print(r["target"], r["protocol"], r["succeeded_total"], r["failed_total"], r["runs_with_errors"])
PYEOF
)
for t in fleetgate haproxy nginx direct; do
    for p in h1 h2c h2; do
        line=$(grep "^$t $p " <<<"$rows")
        if [ -z "$line" ]; then
            fail "$t over $p: no result"
            continue
        fi
        read -r _ _ succeeded failed errors <<<"$line"
        assert_ge "$succeeded" 1 "$t over $p: succeeded requests"
        assert_eq 0 "$failed" "$t over $p: failed requests"
        assert_eq 0 "$errors" "$t over $p: runs in error"
    done
done

finish
