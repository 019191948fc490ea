#!/bin/bash
# Retries ("retry" of an upstream): a 503 goes to another backend for a GET,
# and for a POST only with non_idempotent and a body kept (max_body_bytes);
# a backend that never answers is left after header_timeout_ms with
# "timeout"; the retry budget caps retries at budget_percent of requests;
# a Retry-After from a backend keeps requests away from it that long, and
# when every backend holds one the gateway answers 503 with Retry-After.
. "$(dirname "$0")/lib.sh"
require_cmd curl

mkdir -p "$T/flags"
start_backend ok
start_backend hang -d 600000
start_py_backend busy --status 503
start_py_backend busy2 --status 503
start_py_backend ra --status 503 --retry-after 2 --flags "$T/flags"
start_py_backend ra2 --status 503 --retry-after 3
start_py_backend lim --status 429 --retry-after 5 --flags "$T/flags"
OK=${BACKEND_ADDR[ok]}
pick_port GWP
pick_port ADM
write_config "$T/gw.json" <<JSON
{
  "workers": 2,
  "listeners": [ { "address": "127.0.0.1:$GWP" } ],
  "admin": { "address": "127.0.0.1:$ADM" },
  "upstreams": {
    "r": { "balance": "round_robin",
           "backends": [ { "address": "127.0.0.1:${PY_PORT[busy]}" }, { "address": "$OK" } ],
           "retry": { "retry_on": [503] } },
    "post": { "balance": "round_robin",
              "backends": [ { "address": "127.0.0.1:${PY_PORT[busy]}" }, { "address": "$OK" } ],
              "retry": { "retry_on": [503], "non_idempotent": true, "max_body_bytes": 1000 } },
    "to": { "balance": "round_robin", "header_timeout_ms": 300,
            "backends": [ { "address": "${BACKEND_ADDR[hang]}" }, { "address": "$OK" } ],
            "retry": { "retry_on": ["timeout"] } },
    "storm": { "balance": "round_robin",
               "backends": [ { "address": "127.0.0.1:${PY_PORT[busy]}" },
                             { "address": "127.0.0.1:${PY_PORT[busy2]}" } ],
               "retry": { "retry_on": [503], "budget_percent": 20, "min_retries_per_second": 0 } },
    "held": { "balance": "round_robin",
              "backends": [ { "address": "127.0.0.1:${PY_PORT[ra]}" }, { "address": "$OK" } ],
              "retry": { "retry_on": [503] } },
    "allheld": { "backends": [ { "address": "127.0.0.1:${PY_PORT[ra2]}" } ],
                 "retry": { "retry_on": [503] } },
    "lim": { "backends": [ { "address": "127.0.0.1:${PY_PORT[lim]}" } ],
             "retry": { "retry_on": [503] } }
  },
  "routes": [ { "match": { "path_prefix": "/post/" }, "upstream": "post" },
              { "match": { "path_prefix": "/to/" }, "upstream": "to" },
              { "match": { "path_prefix": "/storm/" }, "upstream": "storm" },
              { "match": { "path_prefix": "/held/" }, "upstream": "held" },
              { "match": { "path_prefix": "/allheld/" }, "upstream": "allheld" },
              { "match": { "path_prefix": "/lim/" }, "upstream": "lim" },
              { "match": { "path_prefix": "/" }, "upstream": "r" } ]
}
JSON
start_gateway "$T/gw.json"

# ---- 503 retried for GET: every answer comes from "ok"
http_many "$GW_PORT" /echo 40 4 >"$T/out"
assert_eq 40 "$(grep -c '^200 ok$' "$T/out")" "GET: 40 requests, the 503s retried on the other backend, all 200 from ok"
st=$(admin_status "$ADM")
assert_json_match "$st" upstreams.r.retry.retries '^(1[5-9]|2[0-5])$' "about half of the 40 requests were retried (/status)"
assert_json "$st" upstreams.r.retry.refused_by_budget 0 "none refused by the budget (min_retries_per_second covers them)"

# ---- POST: not retried without non_idempotent; retried with it; not when the body was too large to keep
n200=0; n503=0
for i in 1 2 3 4 5 6; do
    code=$(fcurl -o /dev/null -w '%{http_code}' --data-binary 'abc' "$(gw_url /echo)")
    [ "$code" = 200 ] && n200=$((n200 + 1)); [ "$code" = 503 ] && n503=$((n503 + 1))
done
assert_ge "$n503" 1 "POST without non_idempotent: the backend's 503 reaches the client ($n503 of 6)"
for i in 1 2 3 4 5 6; do
    body=$(fcurl --data-binary 'hello' "$(gw_url /post/echo)")
    assert_json "$body" body_bytes 5 "POST with non_idempotent, try $i: answered by ok with the whole body replayed"
done
head -c 5000 /dev/zero >"$T/big"
n503=0
for i in 1 2 3 4 5 6; do
    code=$(fcurl -o /dev/null -w '%{http_code}' --data-binary @"$T/big" "$(gw_url /post/echo)")
    [ "$code" = 503 ] && n503=$((n503 + 1))
done
assert_ge "$n503" 1 "POST of 5000 bytes > max_body_bytes 1000: not kept, so not retried ($n503 of 6 got 503)"

# ---- a backend that never answers: "timeout" moves the request after header_timeout_ms
for i in 1 2 3 4; do
    t0=$(date +%s%N)
    out=$(fcurl -D "$T/h" -o /dev/null -w '%{http_code}' "$(gw_url /to/echo)")
    ms=$((($(date +%s%N) - t0) / 1000000))
    assert_eq 200 "$out" "timeout retry, try $i: 200"
    assert_eq ok "$(header_value "$T/h" x-backend)" "timeout retry, try $i: answered by ok"
    assert_le "$ms" 2000 "timeout retry, try $i: within header_timeout_ms and a retry ($ms ms)"
done

# ---- the budget: both backends 503; 100 requests may bring at most 20 retries
http_many "$GW_PORT" /storm/x 100 2 >"$T/out"
assert_eq 100 "$(grep -c '^503 busy' "$T/out")" "storm: every request answered 503 by a backend"
st=$(admin_status "$ADM")
r=$(json_get "$st" upstreams.storm.retry.retries)
refused=$(json_get "$st" upstreams.storm.retry.refused_by_budget)
note "storm: $r retries, $refused refused by the budget"
assert_le "$r" 20 "retries stay within 20% of 100 requests"
assert_ge "$r" 10 "the budget still allows retries"
assert_ge "$refused" 60 "the rest were refused by the budget"

# ---- Retry-After: "ra" answers 503 with Retry-After: 2 and is held that long
http_many "$GW_PORT" /held/echo 30 2 >"$T/out"
assert_eq 30 "$(grep -c '^200 ok$' "$T/out")" "held: 30 requests all 200 from ok"
n=$(wc -c <"$T/flags/ra.requests")
assert_le "$n" 2 "ra got at most one request per worker, then was held ($n)"
st=$(admin_status "$ADM")
assert_json "$st" upstreams.held.backends.0.state held "/status: ra is held"
assert_json_match "$st" upstreams.held.backends.0.why 'Retry-After' "/status says why"
sleep 2.2
http_many "$GW_PORT" /held/echo 10 1 >/dev/null
n2=$(wc -c <"$T/flags/ra.requests")
assert_ge "$n2" "$((n + 1))" "after 2 s ra gets requests again ($n2)"

# ---- a 429's Retry-After is the client's to keep when 429 is not retried:
# passed on, and the backend is not held for everyone else
for i in 1 2 3; do
    code=$(fcurl -D "$T/h" -o /dev/null -w '%{http_code}' "$(gw_url /lim/x)")
    assert_eq 429 "$code" "429 not retried: request $i gets the backend's 429"
    assert_eq 5 "$(header_value "$T/h" retry-after)" "429: its Retry-After passed on ($i)"
done
assert_eq 3 "$(wc -c <"$T/flags/lim.requests")" "429 did not hold the backend: it saw all 3 requests"
assert_json "$(admin_status "$ADM")" upstreams.lim.backends.0.state up "/status: the 429 backend is up, not held"

# ---- every backend holds a Retry-After: the gateway answers 503 with Retry-After
code=$(fcurl -D "$T/h" -o "$T/b" -w '%{http_code}' "$(gw_url /allheld/x)")
assert_eq 503 "$code" "allheld: the backend's own 503"
assert_eq 3 "$(header_value "$T/h" retry-after)" "allheld: its Retry-After passed through"
code=$(fcurl -D "$T/h" -o "$T/b" -w '%{http_code}' "$(gw_url /allheld/x)")
assert_eq 503 "$code" "allheld, next request: 503 from the gateway"
assert_error_json "$(cat "$T/b")" 503 no_backend "allheld: body"
assert_match "$(header_value "$T/h" retry-after)" '^[1-3]$' "allheld: the gateway's Retry-After is what is left of the hold"

# HTTP/2 sees the same
code=$(fcurl --http2-prior-knowledge -o /dev/null -w '%{http_code}' "$(gw_url /echo)")
assert_eq 200 "$code" "h2c GET with a 503 backend in the pool: 200"

finish
