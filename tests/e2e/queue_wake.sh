#!/bin/bash
# The queue is woken by capacity that comes back without a slot being
# released: a backend's Retry-After hold running out, and health checks
# (the last backend DOWN: the waiter is answered at once, by the route's
# fallback). And an HTTP/2 upload that waited and was answered
# 503 gives its window back, so the connection carries on.
. "$(dirname "$0")/lib.sh"
require_cmd curl h2load

mkdir -p "$T/flags"
start_py_backend slow --status-from-path
start_py_backend ra --status-from-path --retry-after 1
start_py_backend hc --flags "$T/flags"
start_py_backend fb
pick_port GWP
pick_port ADM
write_config "$T/gw.json" <<JSON
{
  "workers": 1,
  "listeners": [ { "address": "127.0.0.1:$GWP" } ],
  "admin": { "address": "127.0.0.1:$ADM" },
  "upstreams": {
    "held": { "balance": "round_robin", "max_requests": 1,
              "backends": [ { "address": "127.0.0.1:${PY_PORT[slow]}" },
                            { "address": "127.0.0.1:${PY_PORT[ra]}" } ],
              "retry": { "retry_on": ["connect-failure"] },
              "queue": { "max_length": 10, "timeout_ms": 5000 } },
    "hc": { "max_requests": 1, "backends": [ { "address": "127.0.0.1:${PY_PORT[hc]}" } ],
            "health_check": { "path": "/health", "interval_ms": 100, "timeout_ms": 90,
                              "rise": 1, "fall": 1 },
            "queue": { "max_length": 10, "timeout_ms": 5000 } },
    "fb": { "backends": [ { "address": "127.0.0.1:${PY_PORT[fb]}" } ] },
    "up": { "max_requests": 1, "backends": [ { "address": "127.0.0.1:${PY_PORT[slow]}" } ],
            "queue": { "max_length": 10, "timeout_ms": 300 } }
  },
  "routes": [ { "match": { "path_prefix": "/held/" }, "upstream": "held",
                "rewrite": { "path_prefix": "/" } },
              { "match": { "path_prefix": "/hc/" }, "upstream": "hc",
                "rewrite": { "path_prefix": "/" }, "fallback": { "upstream": "fb" } },
              { "match": { "path_prefix": "/up/" }, "upstream": "up",
                "rewrite": { "path_prefix": "/" } } ]
}
JSON
start_gateway "$T/gw.json"

ms_since() { echo $((($(date +%s%N) - $1) / 1000000)); }

# ---- a Retry-After hold that ends wakes the queue
# ra answers /503 with Retry-After: 1: held for a second
for i in 1 2 3 4; do
    fcurl -D "$T/h" -o /dev/null "$(gw_url /held/503)"
    [ "$(header_value "$T/h" x-backend)" = ra ] && break
done
assert_eq ra "$(header_value "$T/h" x-backend)" "ra answered 503 with Retry-After: 1"
t0=$(date +%s%N)
fcurl -o /dev/null "$(gw_url '/held/200?ms=3000')" &
SLOW=$!
sleep 0.15
# slow is at max_requests, ra is held: this one waits in the queue
fcurl -D "$T/h" -o /dev/null -w '%{http_code}' "$(gw_url /held/200)" >"$T/code"
waited=$(ms_since "$t0")
assert_eq 200 "$(cat "$T/code")" "the waiter was served"
assert_eq ra "$(header_value "$T/h" x-backend)" "by ra, once its hold ended"
assert_le "$waited" 2500 "it did not wait for the slow request's slot ($waited ms)"
wait "$SLOW"

# ---- the last backend goes DOWN while a request waits: it is answered at
# once, and by the route's fallback (not a bare 503)
t0=$(date +%s%N)
fcurl -o /dev/null "$(gw_url '/hc/200?ms=3000')" &
SLOW=$!
sleep 0.15
fcurl -D "$T/h" -o "$T/b" -w '%{http_code}' "$(gw_url /hc/x)" >"$T/code" &
WAITER=$!
sleep 0.2
assert_json "$(admin_status "$ADM")" upstreams.hc.queue.length 1 "one request waits for hc"
touch "$T/flags/hc.down"
wait "$WAITER"
waited=$(ms_since "$t0")
assert_eq 200 "$(cat "$T/code")" "the waiter got an answer"
assert_eq fb "$(header_value "$T/h" x-backend)" "from the route's fallback"
assert_le "$waited" 2000 "as soon as hc went down, not when its slot freed ($waited ms)"
wait "$SLOW"

# ---- HTTP/2: uploads of 1 MiB that wait and time out (503) return their
# flow-control window; five in a row on one connection all get answers
head -c $((1024 * 1024)) /dev/zero >"$T/big"
fcurl -o /dev/null "$(gw_url '/up/200?ms=4000')" &
SLOW=$!
sleep 0.15
timeout 20 h2load -n 5 -c 1 -m 1 -d "$T/big" "$(gw_url /up/x)" >"$T/h2load" 2>&1
assert_match "$(grep '^requests:' "$T/h2load")" '5 done' "h2: 5 queued 1 MiB uploads on one connection all answered"
assert_match "$(grep '^status codes:' "$T/h2load")" '5 5xx' "h2: each a 503 (queue timeout)"
assert_json "$(admin_status "$ADM")" upstreams.up.queue.timeouts 5 "/status: 5 queue timeouts"
wait "$SLOW"

finish
