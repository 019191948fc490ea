#!/bin/bash
# Malformed HTTP/1.1 requests get a JSON 400 from the gateway, the connection
# is closed, and nothing reaches the backend; limits give 431 (head too big,
# too many headers), 413 (declared body too big) and 408 (head too slow).
. "$(dirname "$0")/lib.sh"
require_cmd curl

start_backend b1
CLIENT_JSON='{ "max_header_bytes": 4096, "max_headers": 20, "max_body_bytes": 1000, "header_timeout_ms": 500 }' \
    simple_config "$T/gw.json" b1
start_gateway "$T/gw.json"

# expect_error LABEL STATUS CODE PRINTF_FORMAT [INDEX]: send the bytes, expect
# response INDEX (default 0) to be a gateway-made JSON error STATUS/CODE, then
# the connection closed.
expect_error() {
    local label=$1 status=$2 code=$3 fmt=$4 i=${5:-0} resp body
    resp=$(printf "$fmt" | raw_http "$GW_PORT" 3)
    assert_json "$resp" responses.$i.status "$status" "$label: status"
    assert_json_match "$resp" responses.$i.headers.content-type '^application/json' "$label: content-type"
    body=$(json_get "$resp" responses.$i.body)
    assert_contains "$body" "\"status\":$status" "$label: body"
    assert_error_json "$body" "$status" "$code" "$label: body"
    assert_json "$resp" closed true "$label: connection closed afterwards"
}

# a well-formed request first, so that the raw client itself is known good
resp=$(printf 'GET /echo HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n' | raw_http "$GW_PORT" 3)
assert_json "$resp" responses.0.status 200 "well-formed raw request: status"
assert_json "$resp" closed true "well-formed raw request with Connection: close: closed"

before=$(backend_stat b1 requests)

expect_error "bad request line (no method, no version)" 400 bad_request 'GARBAGE\r\n\r\n'
expect_error "bad request line (bad version)" 400 bad_request 'GET /echo HTTQ/1.1\r\nHost: x\r\n\r\n'
expect_error "bad request line (three words then junk)" 400 bad_request 'GET /echo HTTP/1.1 junk\r\nHost: x\r\n\r\n'
expect_error "space inside a header name" 400 bad_request 'GET /echo HTTP/1.1\r\nHost: x\r\nBad Header: v\r\n\r\n'
expect_error "space before the colon" 400 bad_request 'GET /echo HTTP/1.1\r\nHost: x\r\nX-A : v\r\n\r\n'
expect_error "control character in a header name" 400 bad_request 'GET /echo HTTP/1.1\r\nHost: x\r\nX-A\x01: v\r\n\r\n'
expect_error "control character in a header value" 400 bad_request 'GET /echo HTTP/1.1\r\nHost: x\r\nX-A: a\x01b\r\n\r\n'
expect_error "NUL in a header value" 400 bad_request 'GET /echo HTTP/1.1\r\nHost: x\r\nX-A: a\x00b\r\n\r\n'
expect_error "Content-Length and Transfer-Encoding both" 400 bad_request \
    'POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n'
expect_error "two differing Content-Length" 400 bad_request \
    'POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello!'
expect_error "bad chunk size" 400 bad_request \
    'POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nhello\r\n0\r\n\r\n'
expect_error "HTTP/1.1 without Host" 400 bad_request 'GET /echo HTTP/1.1\r\nUser-Agent: t\r\n\r\n'
expect_error "obs-fold (folded header line)" 400 bad_request 'GET /echo HTTP/1.1\r\nHost: x\r\nX-A: a\r\n b\r\n\r\n'
expect_error "Transfer-Encoding other than chunked" 400 bad_request \
    'POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip\r\n\r\nhello'
# a bad request after a good one on the same connection
expect_error "bad request pipelined after a good one" 400 bad_request \
    'GET /bytes/3 HTTP/1.1\r\nHost: x\r\n\r\nGARBAGE\r\n\r\n' 1

after=$(backend_stat b1 requests)
# only the good /bytes/3 in front of the last bad one reached the backend
assert_eq $((before + 1)) "$after" "backend request count: no malformed request reached it"

# ---- limits
mid=$(backend_stat b1 requests)
big=$(head -c 5000 /dev/zero | tr '\0' a)
expect_error "head over max_header_bytes (4096)" 431 headers_too_large \
    "GET /echo HTTP/1.1\r\nHost: x\r\nX-Big: $big\r\n\r\n"
many=""
for i in $(seq 30); do many+="X-H$i: v\r\n"; done
expect_error "more headers than max_headers (20)" 431 headers_too_large \
    "GET /echo HTTP/1.1\r\nHost: x\r\n${many}\r\n"
# within the limits still fine
code=$(fcurl --http1.1 -o /dev/null -w '%{http_code}' -H "X-Ok: $(head -c 3000 /dev/zero | tr '\0' b)" "$(gw_url /echo)")
assert_eq 200 "$code" "head of ~3 KB under max_header_bytes"

# the body is not sent: the gateway must answer on the head alone
expect_error "Content-Length over max_body_bytes (1000)" 413 body_too_large \
    'POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 5000\r\n\r\n'
body=$(fcurl --http1.1 --data-binary "$(head -c 1000 /dev/zero | tr '\0' c)" "$(gw_url /echo)")
assert_json "$body" body_bytes 1000 "body of exactly max_body_bytes accepted"

code=$(head -c 5000 /dev/zero | fcurl --http2-prior-knowledge -H 'content-length: 5000' --data-binary @- \
    -o "$T/b" -w '%{http_code}' "$(gw_url /echo)" 2>/dev/null)
assert_eq 413 "$code" "h2c: content-length over max_body_bytes"
assert_eq $((mid + 2)) "$(backend_stat b1 requests)" \
    "backend saw only the two good requests of the limit tests (no 431/413 one)"

# a chunked body growing past the limit (the head may have gone to the
# backend already; the client must still get a 413)
code=$(head -c 5000 /dev/zero | fcurl --http1.1 -T - -o "$T/b" -w '%{http_code}' "$(gw_url /echo)" 2>/dev/null)
assert_eq 413 "$code" "chunked body growing over max_body_bytes: status"

# ---- head too slow: 408 after header_timeout_ms (500 ms)
resp=$(printf 'GET /echo HTTP/1.1\r\nHost: x\r\n' | raw_http "$GW_PORT" 4)
assert_json "$resp" responses.0.status 408 "half a head then silence: status"
assert_error_json "$(json_get "$resp" responses.0.body)" 408 request_timeout "408 body"
assert_json "$resp" closed true "408: connection closed"
ms=$($PY -c 'import json,sys; t=json.loads(sys.argv[1])["first_byte_s"]; print(int(t*1000) if t is not None else -1)' "$resp")
assert_ge "$ms" 400 "408 not before header_timeout_ms (ms)"
assert_le "$ms" 2000 "408 soon after header_timeout_ms (ms)"

# a connection that sends nothing at all (the spec does not say which
# timeout applies: only noted)
resp=$(printf '' | raw_http "$GW_PORT" 3)
note "a connection silent from the start: closed within 3 s: $(json_get "$resp" closed), status $(json_get "$resp" responses.0.status)"


finish
