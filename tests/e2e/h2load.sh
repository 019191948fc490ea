#!/bin/bash
# Load through the gateway with h2load: 100000 requests over h2c (32
# connections, 16 streams each) and 20000 over HTTP/1.1 keep-alive, none
# failed; the gateway is still healthy afterwards.
FG_TEST_TIMEOUT=${FG_TEST_TIMEOUT:-420}
. "$(dirname "$0")/lib.sh"
require_cmd h2load curl

start_backend b1
start_backend b2
simple_config "$T/gw.json" b1 b2
start_gateway "$T/gw.json"

# h2load_check LABEL N ARGS...: run h2load, expect N succeeded and 0 failed,
# 0 errored, 0 timeout, N 2xx.
h2load_check() {
    local label=$1 n=$2; shift 2
    local start=$SECONDS
    timeout -k 5 240 h2load "$@" >"$T/h2load-$label.out" 2>&1
    local rc=$?
    local out; out=$(cat "$T/h2load-$label.out")
    note "$label: $(grep -E '^(finished in|requests:|status codes:)' "$T/h2load-$label.out" | tr '\n' ';') ($((SECONDS - start)) s)"
    assert_eq 0 "$rc" "$label: h2load exit status"
    local req; req=$(grep '^requests:' "$T/h2load-$label.out")
    assert_contains "$req" "$n succeeded" "$label: requests line"
    assert_contains "$req" " 0 failed" "$label: requests line"
    assert_contains "$req" " 0 errored" "$label: requests line"
    assert_contains "$req" " 0 timeout" "$label: requests line"
    assert_contains "$(grep '^status codes:' "$T/h2load-$label.out")" "$n 2xx" "$label: status codes"
}

h2load_check h2c 100000 -n 100000 -c 32 -m 16 -t 2 "$(gw_url /echo)"
h2load_check h1 20000 --h1 -n 20000 -c 32 -t 2 "$(gw_url /echo)"
# bodies of some size, both ways
head -c 65536 /dev/urandom >"$T/post.bin"
h2load_check h2c-post 5000 -n 5000 -c 8 -m 8 -d "$T/post.bin" "$(gw_url /echo)"
h2load_check h2c-bytes 5000 -n 5000 -c 8 -m 8 "$(gw_url /bytes/100000)"

r1=$(backend_stat b1 requests)
r2=$(backend_stat b2 requests)
assert_ge $((r1 + r2)) 130000 "requests seen by the two backends together"
assert_ge "$r1" 20000 "backend b1 took a share"
assert_ge "$r2" 20000 "backend b2 took a share"

# still serving
code=$(fcurl --http1.1 -o /dev/null -w '%{http_code}' "$(gw_url /echo)")
assert_eq 200 "$code" "gateway still answers after the load"
note "gateway VmHWM after the load: $(vm_hwm_kb "$GW_PID") KiB"

finish
