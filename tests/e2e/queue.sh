#!/bin/bash
# Admission control: backends at max_requests make requests wait in the
# upstream's queue (never more at once on a backend than its max_requests);
# a full queue answers 503 queue_full at once, a wait past timeout_ms 503
# queue_timeout, both with Retry-After; a client that leaves while queued
# frees its place.
. "$(dirname "$0")/lib.sh"
require_cmd curl h2load

start_backend a
start_backend b
pick_port GWP
pick_port ADM
write_config "$T/gw.json" <<JSON
{
  "workers": 2,
  "listeners": [ { "address": "127.0.0.1:$GWP" } ],
  "admin": { "address": "127.0.0.1:$ADM" },
  "upstreams": {
    "q": { "backends": [ { "address": "${BACKEND_ADDR[a]}" }, { "address": "${BACKEND_ADDR[b]}" } ],
           "max_requests": 1, "queue": { "max_length": 4, "timeout_ms": 5000, "retry_after_s": 2 } },
    "short": { "backends": [ { "address": "${BACKEND_ADDR[a]}", "max_requests": 1 } ],
               "queue": { "max_length": 10, "timeout_ms": 300 } },
    "mux": { "backends": [ { "address": "${BACKEND_ADDR[a]}" }, { "address": "${BACKEND_ADDR[b]}" } ],
             "max_requests": 1, "queue": { "max_length": 100 } }
  },
  "routes": [ { "match": { "path_prefix": "/short/" }, "upstream": "short",
                "rewrite": { "path_prefix": "/" } },
              { "match": { "path_prefix": "/mux/" }, "upstream": "mux",
                "rewrite": { "path_prefix": "/" } },
              { "match": { "path_prefix": "/" }, "upstream": "q" } ]
}
JSON
start_gateway "$T/gw.json"

# curls NAME N URL [ARGS]: N concurrent curls; "STATUS RETRY-AFTER" lines in $T/NAME.out
curls() {
    local name=$1 n=$2 url=$3 i; shift 3
    for ((i = 0; i < n; i++)); do
        (fcurl -D "$T/$name.$i.h" -o "$T/$name.$i.b" -w '%{http_code}\n' "$@" "$url" >"$T/$name.$i.code") &
        CURL_PIDS+=($!)
    done
}
wait_curls() {
    local p
    for p in "${CURL_PIDS[@]}"; do wait "$p"; done
    CURL_PIDS=()
}

# ---- 6 requests of 600 ms on 2 backends of max_requests 1: 2 run, 4 wait, all succeed
CURL_PIDS=()
t0=$(date +%s%N)
curls six 6 "$(gw_url '/slow?ms=600')"
maxq=0; maxa=0
for i in $(seq 1 15); do
    st=$(admin_status "$ADM")
    ql=$(json_get "$st" upstreams.q.queue.length); a0=$(json_get "$st" upstreams.q.backends.0.active)
    a1=$(json_get "$st" upstreams.q.backends.1.active)
    ((ql > maxq)) && maxq=$ql; ((a0 > maxa)) && maxa=$a0; ((a1 > maxa)) && maxa=$a1
    sleep 0.1
done
wait_curls
ms=$((($(date +%s%N) - t0) / 1000000))
n=0; for i in 0 1 2 3 4 5; do [ "$(cat "$T/six.$i.code")" = 200 ] && n=$((n + 1)); done
assert_eq 6 "$n" "6 requests, 2 backends at max_requests 1: all 200"
assert_ge "$ms" 1700 "they ran in three waves of 600 ms ($ms ms)"
assert_ge "$maxq" 2 "/status saw requests queued (max $maxq)"
assert_le "$maxa" 1 "/status never saw more than max_requests active on a backend (max $maxa)"
assert_le "$(backend_stat a in_flight)" 1 "backend a: nothing left in flight"

# ---- 8 at once: 2 run, 4 queue, 2 get 503 queue_full at once with Retry-After: 2
curls eight 8 "$(gw_url '/slow?ms=800')"
wait_curls
n200=0; n503=0
for i in $(seq 0 7); do
    c=$(cat "$T/eight.$i.code")
    [ "$c" = 200 ] && n200=$((n200 + 1))
    if [ "$c" = 503 ]; then
        n503=$((n503 + 1))
        assert_error_json "$(cat "$T/eight.$i.b")" 503 queue_full "queue full: body"
        assert_eq 2 "$(header_value "$T/eight.$i.h" retry-after)" "queue full: Retry-After"
    fi
done
assert_eq 6 "$n200" "8 at once: 6 served (2 running + 4 queued)"
assert_eq 2 "$n503" "8 at once: 2 refused, the queue being full"

# ---- waiting longer than timeout_ms: 503 queue_timeout with Retry-After (default 1)
curls to 3 "$(gw_url '/short/slow?ms=1500')"
wait_curls
n200=0; nto=0
for i in 0 1 2; do
    c=$(cat "$T/to.$i.code")
    [ "$c" = 200 ] && n200=$((n200 + 1))
    if [ "$c" = 503 ]; then
        nto=$((nto + 1))
        assert_error_json "$(cat "$T/to.$i.b")" 503 queue_timeout "queue timeout: body"
        assert_eq 1 "$(header_value "$T/to.$i.h" retry-after)" "queue timeout: Retry-After"
    fi
done
assert_eq 1 "$n200" "one backend of max_requests 1, 3 requests of 1.5 s: one served"
assert_eq 2 "$nto" "the other two timed out in the queue (300 ms)"
assert_json "$(admin_status "$ADM")" upstreams.short.queue.timeouts 2 "/status counts the queue timeouts"

# ---- a queued client that leaves frees its place; bodies wait with their request
curls hold 2 "$(gw_url '/slow?ms=1000')"
sleep 0.2
timeout 0.3 curl -s -o /dev/null "$(gw_url '/slow?ms=10')"
body=$(head -c 3000 /dev/zero | fcurl --data-binary @- "$(gw_url '/echo')")
wait_curls
assert_json "$body" body_bytes 3000 "a POST that waited in the queue reaches the backend with its body"
assert_json "$(admin_status "$ADM")" upstreams.q.queue.length 0 "the queue is empty afterwards"

# ---- HTTP/2 multiplexing through the limit: 200 requests, 16 streams, all succeed
h2load -n 200 -c 2 -m 8 "$(gw_url '/mux/slow?ms=5')" >"$T/h2load" 2>&1
note "$(grep -E '^(finished in|requests:|status codes:)' "$T/h2load" | tr '\n' ';')"
assert_match "$(grep '^requests:' "$T/h2load")" '200 succeeded, 0 failed' "h2load 200 requests over max_requests 1 x 2: all succeed"
assert_match "$(grep '^status codes:' "$T/h2load")" '200 2xx' "h2load: all 200"
st=$(admin_status "$ADM")
assert_json "$st" upstreams.mux.queue.rejected_full 0 "h2load: nothing refused"
assert_json "$st" upstreams.mux.queue.timeouts 0 "h2load: nothing timed out"

finish
