#!/bin/bash
# Failover and gateway-made errors: a dead backend beside a live one costs no
# request (retried once on another backend); an upstream with only dead
# backends gives 502 backend_unavailable; a path no route matches gives 404
# no_route; routes match first-wins by prefix.
. "$(dirname "$0")/lib.sh"
require_cmd curl

start_backend live
# ports that refuse connections (held bound, never listening)
dead_port DEAD1
dead_port DEAD2
dead_port DEAD3
pick_port GWP
write_config "$T/gw.json" <<JSON
{
  "workers": 2,
  "listeners": [ { "address": "127.0.0.1:$GWP" } ],
  "upstreams": {
    "mixed": { "backends": [ { "address": "127.0.0.1:$DEAD1" }, { "address": "${BACKEND_ADDR[live]}" } ] },
    "mixed_rr": { "balance": "round_robin",
                  "backends": [ { "address": "127.0.0.1:$DEAD3" }, { "address": "${BACKEND_ADDR[live]}" } ] },
    "dead": { "backends": [ { "address": "127.0.0.1:$DEAD2" }, { "address": "127.0.0.1:$DEAD3" } ] }
  },
  "routes": [
    { "match": { "path_prefix": "/api/dead/" }, "upstream": "dead" },
    { "match": { "path_prefix": "/api/rr/" }, "upstream": "mixed_rr" },
    { "match": { "path_prefix": "/api/" }, "upstream": "mixed" }
  ]
}
JSON
start_gateway "$T/gw.json"

# ---- one dead, one live: every request succeeds
http_many "$GW_PORT" /api/echo 50 1 >"$T/out"
assert_eq 50 "$(grep -c '^200 live$' "$T/out")" "least_conn upstream with a dead backend: 50 sequential requests answered 200 by the live one"
http_many "$GW_PORT" /api/rr/echo 50 1 >"$T/out"
assert_eq 50 "$(grep -c '^200 live$' "$T/out")" "round_robin upstream with a dead backend: 50 sequential requests answered 200"
http_many "$GW_PORT" /api/echo 50 8 >"$T/out"
assert_eq 50 "$(grep -c '^200 live$' "$T/out")" "dead + live, 50 requests 8 at a time: all 200"
# a POST (body not yet sent when the connect fails) is retried too
body=$(fcurl --http1.1 --data-binary 'hello' "$(gw_url /api/rr/echo)")
assert_json "$body" body_bytes 5 "POST through the upstream with a dead backend"

# ---- only dead backends: 502 backend_unavailable, JSON
for v in --http1.1 --http2-prior-knowledge; do
    code=$(fcurl $v -D "$T/h" -o "$T/b" -w '%{http_code}' "$(gw_url /api/dead/x)")
    assert_eq 502 "$code" "$v all backends dead: status"
    assert_match "$(header_value "$T/h" content-type)" '^application/json' "$v 502: content-type"
    body=$(cat "$T/b")
    assert_error_json "$body" 502 backend_unavailable "$v 502 body"
    assert_eq "$(header_value "$T/h" x-request-id)" "$(json_get "$body" error.request_id)" \
        "$v 502: request_id in the body = x-request-id header"
done
body=$(fcurl --http1.1 -H 'x-request-id: trace-me-502' "$(gw_url /api/dead/x)")
assert_json "$body" error.request_id trace-me-502 "502 carries the client's x-request-id"

# ---- no route
for v in --http1.1 --http2-prior-knowledge; do
    code=$(fcurl $v -D "$T/h" -o "$T/b" -w '%{http_code}' "$(gw_url /other/path)")
    assert_eq 404 "$code" "$v no route: status"
    assert_match "$(header_value "$T/h" content-type)" '^application/json' "$v 404: content-type"
    assert_error_json "$(cat "$T/b")" 404 no_route "$v 404 body"
done
code=$(fcurl --http1.1 -o /dev/null -w '%{http_code}' "$(gw_url /api)")
assert_eq 404 "$code" "'/api' does not match the prefix '/api/'"

# the live backend saw exactly the requests routed to it, none of the errors
assert_eq 151 "$(backend_stat live requests)" "live backend request count (150 GETs + 1 POST)"

# still keep-alive after an error response
fcurl --http1.1 -v -o /dev/null -o /dev/null "$(gw_url /nope)" "$(gw_url /api/echo)" 2>"$T/v"
assert_contains "$(cat "$T/v")" "Re-using existing connection" "connection kept after a 404"

finish
