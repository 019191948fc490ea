#!/bin/bash
# Backends that misbehave without going away cleanly: one that accepts
# connections and never answers costs header_timeout_ms (504) until passive
# checks eject it, then traffic moves to the others; one that flaps (killed
# and restarted every half second) goes down and up under health checks, and
# with retries on costs no request at all.
. "$(dirname "$0")/lib.sh"
require_cmd curl h2load

start_backend ok1
start_backend ok2
start_backend hang -d 600000
start_backend flap
pick_port GWP
pick_port ADM
write_config "$T/gw.json" <<JSON
{
  "workers": 2,
  "listeners": [ { "address": "127.0.0.1:$GWP" } ],
  "admin": { "address": "127.0.0.1:$ADM" },
  "upstreams": {
    "h": { "balance": "round_robin", "header_timeout_ms": 300,
           "backends": [ { "address": "${BACKEND_ADDR[ok1]}" }, { "address": "${BACKEND_ADDR[hang]}" },
                         { "address": "${BACKEND_ADDR[ok2]}" } ],
           "outlier_detection": { "consecutive_failures": 2, "base_ejection_ms": 30000 } },
    "f": { "backends": [ { "address": "${BACKEND_ADDR[ok1]}" }, { "address": "${BACKEND_ADDR[flap]}" },
                         { "address": "${BACKEND_ADDR[ok2]}" } ],
           "health_check": { "path": "/echo", "interval_ms": 100, "timeout_ms": 80, "rise": 2, "fall": 2 },
           "retry": { "max_retries": 2 } }
  },
  "routes": [ { "match": { "path_prefix": "/f/" }, "upstream": "f", "rewrite": { "path_prefix": "/" } },
              { "match": { "path_prefix": "/" }, "upstream": "h" } ]
}
JSON
start_gateway "$T/gw.json"

# ---- never answers: a few 504s, ejection, then every request answered by the others
http_many "$GW_PORT" /echo 40 1 >"$T/out"
n504=$(grep -c '^504' "$T/out")
note "40 requests: $n504 timed out"
assert_ge "$n504" 1 "the silent backend made requests time out (504)"
assert_le "$n504" 3 "until it was ejected after 2 timeouts in a row"
assert_eq 0 "$(tail -n 20 "$T/out" | grep -vc '^200 ok[12]$')" "the last 20 requests were all answered by ok1 and ok2"
st=$(admin_status "$ADM")
assert_json "$st" upstreams.h.backends.1.state ejected "/status: the silent backend is ejected"
assert_json_match "$st" upstreams.h.backends.1.why 'did not answer in time' "/status: why"
assert_json "$st" upstreams.h.backends.1.outlier_detection.ejections 1 "/status: one ejection"
assert_json "$st" upstreams.h.backends.0.state up "/status: ok1 is up"

# ---- flapping: killed and restarted every 0.5 s during 4 s of load
port=${BACKEND_PORT[flap]}
h2load -D 4 -c 8 -T 10 "$(gw_url /f/echo)" >"$T/h2load" 2>&1 &
hp=$!
for i in 1 2 3 4; do
    sleep 0.5
    kill -9 "${BACKEND_PID[flap]}"
    wait "${BACKEND_PID[flap]}" 2>/dev/null
    sleep 0.5
    "$FG_BACKEND" -l "127.0.0.1:$port" -n flap >>"$T/backend-flap.log" 2>&1 &
    BACKEND_PID[flap]=$!
    fg_track_pid "${BACKEND_PID[flap]}"
done
wait "$hp"
grep -E '^(requests|status codes):' "$T/h2load" | sed 's/^/# /'
assert_match "$(grep '^requests:' "$T/h2load")" ' 0 failed, 0 errored' "flapping backend, retries on: no request failed"
assert_ge "$(grep -c "upstream f: backend 127.0.0.1:$port is DOWN" "$GW_LOG")" 2 "the flapping backend went down more than once"
assert_ge "$(grep -c "upstream f: backend 127.0.0.1:$port is UP" "$GW_LOG")" 1 "and came back up"

finish
