#!/bin/bash
# HTTP/1.1 request bodies in chunked encoding and behind "Expect:
# 100-continue" reach the backend intact; response trailers reach an HTTP/1.1
# client.
. "$(dirname "$0")/lib.sh"
require_cmd curl sha256sum

start_backend b1
simple_config "$T/gw.json" b1
start_gateway "$T/gw.json"

head -c 2097169 /dev/urandom >"$T/up.bin"
want=$(sha256_file "$T/up.bin")

# ---- chunked request body
body=$(fcurl --http1.1 -H 'Transfer-Encoding: chunked' --data-binary @"$T/up.bin" "$(gw_url /echo)")
assert_json "$body" body_bytes 2097169 "chunked upload: body_bytes"
assert_json "$body" body_sha256 "$want" "chunked upload: body_sha256"

# a small chunked body written by hand, with a chunk extension and a trailer
resp=$(printf 'POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n5;ext=1\r\nhello\r\n6\r\n world\r\n0\r\nx-t: 1\r\n\r\n' |
    raw_http "$GW_PORT")
assert_json "$resp" responses.0.status 200 "hand-made chunked body: status"
rbody=$(json_get "$resp" responses.0.body)
assert_json "$rbody" body_bytes 11 "hand-made chunked body: body_bytes"
assert_json "$rbody" body_sha256 "$(printf 'hello world' | sha256sum | awk '{print $1}')" "hand-made chunked body: sha256"

# ---- Expect: 100-continue (curl waits up to 5 s for the 100 before sending)
start=$(date +%s%N)
fcurl --http1.1 -v -H 'Expect: 100-continue' --expect100-timeout 5 --data-binary @"$T/up.bin" \
    -o "$T/b" -w '%{http_code}' "$(gw_url /echo)" >"$T/code" 2>"$T/v"
ms=$((($(date +%s%N) - start) / 1000000))
assert_eq 200 "$(cat "$T/code")" "Expect: 100-continue upload: status"
body=$(cat "$T/b")
assert_json "$body" body_bytes 2097169 "Expect: 100-continue upload: body_bytes"
assert_json "$body" body_sha256 "$want" "Expect: 100-continue upload: body_sha256"
assert_contains "$(cat "$T/v")" "HTTP/1.1 100" "client got the interim 100 Continue"
assert_le "$ms" 4000 "Expect upload time in ms (no waiting for curl's 5 s expect timeout)"

# Expect with a chunked body
fcurl --http1.1 -v -H 'Expect: 100-continue' -H 'Transfer-Encoding: chunked' --expect100-timeout 5 \
    --data-binary @"$T/up.bin" -o "$T/b" "$(gw_url /echo)" 2>"$T/v"
assert_json "$(cat "$T/b")" body_sha256 "$want" "Expect + chunked upload: body_sha256"

# ---- trailers to an HTTP/1.1 client
out=$(fcurl --http1.1 --raw -H 'TE: trailers' "$(gw_url /trailers)")
assert_contains "$out" "hello" "/trailers body (raw)"
assert_contains "$(echo "$out" | tr A-Z a-z)" "x-checksum: abc123" "/trailers trailer in the raw chunked body"

resp=$(printf 'GET /trailers HTTP/1.1\r\nHost: x\r\nTE: trailers\r\nConnection: close\r\n\r\n' | raw_http "$GW_PORT")
assert_json "$resp" responses.0.status 200 "/trailers over a raw socket: status"
assert_json "$resp" responses.0.headers.transfer-encoding chunked "/trailers is chunked to the client"
assert_json "$resp" responses.0.body hello "/trailers body"
assert_json "$resp" "responses.0.headers.[trailer:x-checksum]" abc123 "/trailers trailer x-checksum"

finish
