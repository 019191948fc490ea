#!/bin/bash
# A backend killed during load, then restarted: without retries the client
# sees at most the requests that were in flight on it (h2load -c 16: 16);
# with "retry" (connect failures and resets before any response byte go to
# another backend) it sees none. Restarted, the backend is back in rotation
# after `rise` passing checks, and under slow start takes a small share at
# first and its full share once slow_start_ms has passed.
. "$(dirname "$0")/lib.sh"
require_cmd curl h2load

start_backend b1
start_backend b2
start_backend b3
pick_port GWP
pick_port ADM
backends='[ { "address": "'${BACKEND_ADDR[b1]}'" }, { "address": "'${BACKEND_ADDR[b2]}'" }, { "address": "'${BACKEND_ADDR[b3]}'" } ]'
check='{ "path": "/echo", "interval_ms": 200, "timeout_ms": 150, "rise": 2, "fall": 2 }'
write_config "$T/gw.json" <<JSON
{
  "workers": 2,
  "listeners": [ { "address": "127.0.0.1:$GWP" } ],
  "admin": { "address": "127.0.0.1:$ADM" },
  "upstreams": {
    "plain": { "backends": $backends, "health_check": $check, "slow_start_ms": 8000 },
    "safe": { "backends": $backends, "health_check": $check,
              "retry": { "max_retries": 2 } }
  },
  "routes": [ { "match": { "path_prefix": "/plain/" }, "upstream": "plain", "rewrite": { "path_prefix": "/" } },
              { "match": { "path_prefix": "/safe/" }, "upstream": "safe", "rewrite": { "path_prefix": "/" } } ]
}
JSON
start_gateway "$T/gw.json"

# kill_during_load NAME PATH OUT: h2load -n 20000 -c 16 on PATH; NAME is
# killed (SIGKILL) once it has answered 1500 requests
kill_during_load() {
    local name=$1 path=$2 out=$3 hp i n
    h2load -n 20000 -c 16 -T 30 "$(gw_url "$path")" >"$out" 2>&1 &
    hp=$!
    for ((i = 0; i < 400; i++)); do
        n=$(backend_stat "$name" requests)
        [ "$n" != "?" ] && ((n >= 1500)) && break
        sleep 0.02
    done
    kill -9 "${BACKEND_PID[$name]}"
    wait "${BACKEND_PID[$name]}" 2>/dev/null
    note "killed $name after $n requests"
    wait "$hp"
}

# h2load_bad OUT: requests that failed or got no 2xx/3xx (h2load counts
# both as failed)
h2load_bad() {
    sed -n 's/^requests:.* \([0-9]*\) failed.*/\1/p' "$1"
}

# ---- no retries: what was in flight on the killed backend may fail, nothing more
kill_during_load b3 /plain/echo "$T/h2load-plain"
grep -E '^(requests|status codes):' "$T/h2load-plain" | sed 's/^/# /'
bad=$(h2load_bad "$T/h2load-plain")
assert_match "$(grep '^requests:' "$T/h2load-plain")" '20000 done' "no retries: h2load finished its 20000 requests"
assert_le "$bad" 16 "no retries: at most the 16 requests in flight failed ($bad)"

# ---- restart: back after rise checks, warming under slow start
port=${BACKEND_PORT[b3]}
"$FG_BACKEND" -l "127.0.0.1:$port" -n b3 >"$T/backend-b3-again.log" 2>&1 &
BACKEND_PID[b3]=$!
fg_track_pid "${BACKEND_PID[b3]}"
wait_port "$port" 5 "${BACKEND_PID[b3]}" || die "b3 did not restart"
for ((i = 0; i < 100; i++)); do
    [ "$(grep -c "backend 127.0.0.1:$port is UP" "$GW_LOG")" -ge 2 ] && break
    sleep 0.05
done
assert_contains "$(cat "$GW_LOG")" "upstream plain: backend 127.0.0.1:$port is UP (2 passing checks)" "restarted b3 is UP after rise=2 checks"
st=$(admin_status "$ADM")
assert_json "$st" upstreams.plain.backends.2.state warming "/status: b3 is warming (slow start)"
assert_json_match "$st" upstreams.plain.backends.2.why '^slow start: [0-9]+% of its weight$' "/status says how far"
# share N: b3's share (of the three) of N requests, in percent. The early
# sample is small (1000) so that it ends well inside slow_start_ms even on a
# loaded machine: the ramp is linear in time, so a slow sample would see
# much of it and measure the ramp's speed rather than its start.
share() {
    local before after
    before=$(backend_stat b3 requests)
    h2load -n "$1" -c 16 -T 30 "$(gw_url /plain/echo)" >"$T/h2load-share" 2>&1
    after=$(backend_stat b3 requests)
    echo $(((after - before) * 100 / $1))
}
early=$(share 1000)
st=$(admin_status "$ADM")
assert_json "$st" upstreams.plain.backends.2.state warming "still warming after the early sample"
for ((i = 0; i < 100; i++)); do
    [ "$(json_get "$(admin_status "$ADM")" upstreams.plain.backends.2.state)" = up ] && break
    sleep 0.1
done
# least_conn follows latency too: b3 took no requests while its weight was
# small, and a cold process (ASan shadow memory, first connections) answers
# slower at first and would get less than its share for it; warm it up first
share 1000 >/dev/null
late=$(share 3000)
note "b3's share: ${early}% of 1000 requests just after it came back, ${late}% of 3000 after slow_start_ms"
assert_le "$early" 12 "slow start: a small share at first"
# a third when b3 is as fast as the others; least_conn gives a backend that
# answers slower (ASan, the suite's parallel tests) less, down to ~15 % seen
assert_ge "$late" 12 "slow start over: b3 takes a full share again"
assert_ge "$late" $((early + 8)) "the share after slow start is well above the share during it"
assert_json "$(admin_status "$ADM")" upstreams.plain.backends.2.state up "/status: b3 is up"

# ---- with retries on: killing a backend under load costs no request
kill_during_load b2 /safe/echo "$T/h2load-safe"
grep -E '^(requests|status codes):' "$T/h2load-safe" | sed 's/^/# /'
assert_match "$(grep '^requests:' "$T/h2load-safe")" '20000 done' "retries: h2load finished its 20000 requests"
assert_eq 0 "$(h2load_bad "$T/h2load-safe")" "retries: no request failed"
st=$(admin_status "$ADM")
assert_json_match "$st" upstreams.safe.retry.retries '^[1-9][0-9]*$' "/status counts the retries"
sleep 0.6
st=$(admin_status "$ADM")
assert_json "$st" upstreams.safe.backends.1.state down "/status: the killed backend is down"
assert_json_match "$st" upstreams.safe.backends.1.why '^health checks failed: 2 in a row' "/status: why"
assert_json_match "$st" upstreams.safe.backends.1.health_check.last_check '^fail: ' "/status: the last check failed"

finish
