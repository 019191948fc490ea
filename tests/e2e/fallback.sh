#!/bin/bash
# Fallback: a request whose upstream has no usable backend (connection
# refused), or answers 5xx or 429 before any byte reached the client, goes
# to the route's fallback upstream once — its body replayed intact when it
# was kept (fallback.max_body_bytes); a larger body, another status, or a
# route without fallback gets the first answer. Over HTTP/1.1 and h2c.
. "$(dirname "$0")/lib.sh"
require_cmd curl

start_backend good
# "sick": answers every request with the status in its path (/x/429 -> 429,
# /x/404 -> 404, otherwise 503), after reading the body
start_py_backend sick --status-from-path
SICK=${PY_PORT[sick]}
dead_port DEAD      # nothing listens there
dead_port DEAD2
pick_port GWP
write_config "$T/gw.json" <<JSON
{
  "listeners": [ { "address": "127.0.0.1:$GWP" } ],
  "upstreams": {
    "sick": { "backends": [ { "address": "127.0.0.1:$SICK" } ] },
    "dead": { "backends": [ { "address": "127.0.0.1:$DEAD" } ] },
    "dead2": { "backends": [ { "address": "127.0.0.1:$DEAD2" } ] },
    "good": { "backends": [ { "address": "${BACKEND_ADDR[good]}" } ] }
  },
  "routes": [
    { "match": { "path_prefix": "/a/" }, "upstream": "sick", "fallback": { "upstream": "good" } },
    { "match": { "path_prefix": "/d/" }, "upstream": "dead", "fallback": { "upstream": "good" } },
    { "match": { "path_prefix": "/t/" }, "upstream": "sick",
      "fallback": { "upstream": "good", "max_body_bytes": 10 } },
    { "match": { "path_prefix": "/z/" }, "upstream": "dead", "fallback": { "upstream": "dead2" } },
    { "match": { "path_prefix": "/" }, "upstream": "sick" }
  ]
}
JSON
start_gateway "$T/gw.json"

head -c 3000 /dev/urandom >"$T/body"
SHA=$(sha256sum "$T/body" | awk '{print $1}')
call() {  # call ARGS...: sets CODE, BODY, FROM (x-backend)
    CODE=$(fcurl -o "$T/out" -D "$T/h" -w '%{http_code}' "$@")
    BODY=$(cat "$T/out")
    FROM=$(header_value "$T/h" x-backend)
}
for v in --http1.1 --http2-prior-knowledge; do
    call $v "$(gw_url /a/x)"
    assert_eq "200 good" "$CODE $FROM" "$v 503 from the upstream: answered by the fallback"
    call $v "$(gw_url /a/429)"
    assert_eq "200 good" "$CODE $FROM" "$v 429 from the upstream: answered by the fallback"
    call $v "$(gw_url /a/404)"
    assert_eq "404 sick" "$CODE $FROM" "$v 404 is an answer, not a failure: no fallback"
    call $v --data-binary @"$T/body" "$(gw_url /a/x)"
    assert_eq "200 good" "$CODE $FROM" "$v POST after a 503: fallback"
    assert_json "$BODY" body_bytes 3000 "$v POST replayed: length"
    assert_json "$BODY" body_sha256 "$SHA" "$v POST replayed: bytes"
    call $v -H 'transfer-encoding: chunked' --data-binary @"$T/body" "$(gw_url /a/x)"
    [ $v == --http2-prior-knowledge ] || {
        assert_eq "200 good" "$CODE $FROM" "$v chunked POST after a 503: fallback"
        assert_json "$BODY" body_sha256 "$SHA" "$v chunked POST replayed: bytes"
    }
    call $v --data-binary @"$T/body" "$(gw_url /d/x)"
    assert_eq "200 good" "$CODE $FROM" "$v connection refused: fallback"
    assert_json "$BODY" body_sha256 "$SHA" "$v body after a refused connection: bytes"
    call $v --data-binary @"$T/body" "$(gw_url /t/x)"
    assert_eq "503 sick" "$CODE $FROM" "$v body larger than the fallback keeps: the first answer"
    call $v "$(gw_url /t/x)"
    assert_eq "200 good" "$CODE $FROM" "$v same route without a body: fallback"
    call $v "$(gw_url /n/x)"
    assert_eq "503 sick" "$CODE $FROM" "$v route without fallback: the 503 passes"
    call $v "$(gw_url /z/x)"
    assert_match "$CODE" '^50[23]$' "$v fallback without a backend either: gateway error"
    assert_match "$(json_get "$BODY" error.code)" '^(backend_unavailable|no_backend)$' "$v error body"
done
assert_contains "$(cat "$GW_LOG")" "sending the request to fallback good" "fallbacks are logged"

finish
