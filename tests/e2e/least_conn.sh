#!/bin/bash
# Balancing: least_conn sends clearly more requests to a fast backend than to
# a slow one under concurrency; round_robin honours weights 3:1.
. "$(dirname "$0")/lib.sh"

start_backend slow -d 200
start_backend fast
start_backend rr3
start_backend rr1
pick_port GWP
write_config "$T/gw.json" <<JSON
{
  "workers": 2,
  "listeners": [ { "address": "127.0.0.1:$GWP" } ],
  "upstreams": {
    "lc": { "balance": "least_conn",
            "backends": [ { "address": "${BACKEND_ADDR[slow]}" }, { "address": "${BACKEND_ADDR[fast]}" } ] },
    "rr": { "balance": "round_robin",
            "backends": [ { "address": "${BACKEND_ADDR[rr3]}", "weight": 3 },
                          { "address": "${BACKEND_ADDR[rr1]}", "weight": 1 } ] }
  },
  "routes": [
    { "match": { "path_prefix": "/rr/" }, "upstream": "rr" },
    { "match": { "path_prefix": "/" }, "upstream": "lc" }
  ]
}
JSON
start_gateway "$T/gw.json"

# count WORD: lines of $T/out that are "200 WORD"
count() { grep -c "^200 $1\$" "$T/out"; }

# ---- least_conn: 200 requests, 16 at a time
start=$SECONDS
http_many "$GW_PORT" /echo 200 16 >"$T/out"
note "least_conn: 200 requests at concurrency 16 in $((SECONDS - start)) s"
assert_eq 200 "$(grep -c '^200 ' "$T/out")" "least_conn: requests answered 200"
nslow=$(count slow)
nfast=$(count fast)
note "least_conn spread: fast $nfast, slow $nslow"
assert_ge "$nfast" $((3 * nslow)) "least_conn: fast backend got at least 3 times what the slow one got"
assert_ge "$nslow" 1 "least_conn: the slow backend was used at all"
assert_eq "$nslow" "$(backend_stat slow requests)" "least_conn: slow backend's own count agrees"
assert_eq "$nfast" "$(backend_stat fast requests)" "least_conn: fast backend's own count agrees"

# ---- round_robin 3:1 over 400 sequential requests
http_many "$GW_PORT" /rr/echo 400 1 >"$T/out"
assert_eq 400 "$(grep -c '^200 ' "$T/out")" "round_robin: requests answered 200"
n3=$(count rr3)
n1=$(count rr1)
note "round_robin spread: weight 3 got $n3, weight 1 got $n1"
assert_ge "$n3" 270 "round_robin: weight-3 backend count (300 +- 10%)"
assert_le "$n3" 330 "round_robin: weight-3 backend count (300 +- 10%)"
assert_ge "$n1" 90 "round_robin: weight-1 backend count (100 +- 10%)"
assert_le "$n1" 110 "round_robin: weight-1 backend count (100 +- 10%)"

# the same from new connections each time (several workers, own state)
: >"$T/out"
for i in $(seq 40); do
    fcurl --http1.1 -o /dev/null -w '%{http_code} %header{x-backend}\n' "$(gw_url /rr/echo)" >>"$T/out"
done
n3=$(count rr3)
n1=$(count rr1)
note "round_robin, 40 requests on 40 connections: weight 3 got $n3, weight 1 got $n1"
assert_ge "$n3" 24 "round_robin over new connections: weight-3 backend got the larger share"
assert_ge "$n1" 4 "round_robin over new connections: weight-1 backend used"

finish
