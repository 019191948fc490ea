#!/bin/bash
# 1 GiB up and 1 GiB down through the gateway with no body limit, over
# HTTP/1.1 and h2c, bodies intact, and the gateway streams them: its peak
# resident memory (VmHWM) stays under 64 MiB.
FG_TEST_TIMEOUT=${FG_TEST_TIMEOUT:-1200}
. "$(dirname "$0")/lib.sh"
require_cmd curl sha256sum

GIB=1073741824
ZERO_GIB_SHA=49bc20df15e412a64472421e13fe86ff1c5165e18b2afccf160d4dc19fe68a14   # sha256 of 1 GiB of zeros
RSS_LIMIT_KB=65536

start_backend b1
CLIENT_JSON='{ "max_body_bytes": 0 }' simple_config "$T/gw.json" b1
start_gateway "$T/gw.json"
note "gateway VmHWM at start: $(vm_hwm_kb "$GW_PID") KiB"

pattern_gib=$(pattern_sha256 $GIB)

# upload VERSION_ARGS...: 1 GiB of zeros, PUT, length unknown in advance
upload() {
    local label=$1; shift
    local start=$SECONDS body
    body=$(head -c $GIB /dev/zero | fcurl "$@" --max-time 300 -T - "$(gw_url /echo)")
    note "$label upload took $((SECONDS - start)) s, gateway VmHWM $(vm_hwm_kb "$GW_PID") KiB"
    assert_json "$body" body_bytes $GIB "$label 1 GiB upload: body_bytes at the backend"
    assert_json "$body" body_sha256 $ZERO_GIB_SHA "$label 1 GiB upload: body_sha256 at the backend"
}

# download VERSION_ARGS...: /bytes/1 GiB
download() {
    local label=$1; shift
    local start=$SECONDS sum
    sum=$({ fcurl "$@" --max-time 300 "$(gw_url /bytes/$GIB)"; echo $? >"$T/rc"; } | sha256sum | awk '{print $1}')
    local rc; rc=$(cat "$T/rc")
    note "$label download took $((SECONDS - start)) s, gateway VmHWM $(vm_hwm_kb "$GW_PID") KiB"
    assert_eq 0 "$rc" "$label 1 GiB download: curl exit status"
    assert_eq "$pattern_gib" "$sum" "$label 1 GiB download: sha256"
}

upload "HTTP/1.1" --http1.1
download "HTTP/1.1" --http1.1
download "h2c" --http2-prior-knowledge
upload "h2c" --http2-prior-knowledge

hwm=$(vm_hwm_kb "$GW_PID")
if gw_built_with_sanitizers; then
    note "gateway built with sanitizers: peak RSS $hwm KiB not checked"
else
    assert_le "$hwm" $RSS_LIMIT_KB "gateway peak RSS (VmHWM, KiB) after 4 GiB streamed"
fi

finish
