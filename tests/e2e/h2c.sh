#!/bin/bash
# HTTP/2 over cleartext with prior knowledge on the same port as HTTP/1.1:
# GET and POST /echo, headers added and removed, x-request-id, downloads,
# several streams at once on one connection, trailers.
. "$(dirname "$0")/lib.sh"
require_cmd curl sha256sum
curl -V | grep -q HTTP2 || skip "curl without HTTP/2"

start_backend b1
simple_config "$T/gw.json" b1
start_gateway "$T/gw.json"

H2=(--http2-prior-knowledge)

# ---- GET /echo
code=$(fcurl "${H2[@]}" -D "$T/h" -o "$T/b" -w '%{http_code} %{http_version}' "$(gw_url /echo?x=1)")
assert_eq "200 2" "$code" "GET /echo over h2c: status and version"
body=$(cat "$T/b")
assert_json "$body" method GET "backend saw method"
assert_json_match "$body" path '^/echo' "backend saw path"
assert_json "$body" http_version 1.1 "backend spoken to in HTTP/1.1"
assert_json "$body" headers.host "127.0.0.1:$GW_PORT" ":authority became Host"
assert_json "$body" headers.x-forwarded-for 127.0.0.1 "x-forwarded-for"
assert_json "$body" headers.x-forwarded-proto http "x-forwarded-proto"
assert_json_match "$body" headers.x-request-id '^[0-9a-f]{32}$' "generated x-request-id (backend side)"
assert_eq "$(json_get "$body" headers.x-request-id)" "$(header_value "$T/h" x-request-id)" \
    "x-request-id: response header = the one the backend saw"
assert_eq b1 "$(header_value "$T/h" x-backend)" "x-backend response header passed through"
for h in :method :path :authority :scheme; do
    assert_json_absent "$body" "headers.[$h]" "pseudo-header $h not sent as a header"
done

# ---- client x-request-id, te removed, other headers kept
body=$(fcurl "${H2[@]}" -D "$T/h" -H 'x-request-id: h2-client-id' -H 'TE: trailers' -H 'x-keep-me: 2' \
    -H 'x-forwarded-for: 10.9.8.7' "$(gw_url /echo)")
assert_json "$body" headers.x-request-id h2-client-id "client x-request-id kept (backend side)"
assert_eq h2-client-id "$(header_value "$T/h" x-request-id)" "client x-request-id kept (response header)"
assert_json_absent "$body" headers.te "te at the backend"
assert_json "$body" headers.x-keep-me 2 "end-to-end header kept"
assert_json "$body" headers.x-forwarded-for "10.9.8.7, 127.0.0.1" "x-forwarded-for appended"

# ---- POST a few MB
head -c 3145739 /dev/urandom >"$T/up.bin"
want=$(sha256_file "$T/up.bin")
code=$(fcurl "${H2[@]}" --data-binary @"$T/up.bin" -o "$T/b" -w '%{http_version}' "$(gw_url /echo)")
assert_eq 2 "$code" "POST over h2c"
body=$(cat "$T/b")
assert_json "$body" method POST "POST method"
assert_json "$body" body_bytes 3145739 "POST body_bytes"
assert_json "$body" body_sha256 "$want" "POST body_sha256"

# an upload of unknown length (no content-length: DATA frames only)
body=$(head -c 1000001 "$T/up.bin" | fcurl "${H2[@]}" -T - "$(gw_url /echo)")
assert_json "$body" method PUT "PUT without content-length"
assert_json "$body" body_sha256 "$(head -c 1000001 "$T/up.bin" | sha256sum | awk '{print $1}')" \
    "PUT without content-length: body_sha256"

# ---- downloads
for n in 0 65535 1000003; do
    fcurl "${H2[@]}" -o "$T/d" "$(gw_url /bytes/$n)"
    assert_eq "$(pattern_sha256 $n)" "$(sha256_file "$T/d")" "/bytes/$n over h2c"
done
fcurl "${H2[@]}" -o "$T/d" "$(gw_url /chunked/3000017)"
assert_eq "$(pattern_sha256 3000017)" "$(sha256_file "$T/d")" "/chunked/3000017 over h2c"

# ---- several streams at once on one connection (nghttp sends all its URIs
# concurrently on one connection; its output is the bodies interleaved, so
# only their total size is checked here, statuses from its HAR record)
if command -v nghttp >/dev/null; then
    args=()
    total=0
    for i in 1 2 3 4 5 6 7 8; do
        args+=("$(gw_url /bytes/$((i * 100003)))")
        total=$((total + i * 100003))
    done
    timeout -k 2 30 nghttp -r "$T/har" "${args[@]}" >"$T/par" 2>"$T/nghttp.err"
    assert_eq 0 $? "nghttp, 8 concurrent streams: exit status"
    assert_eq "$total" "$(stat -c %s "$T/par")" "8 concurrent streams: total body bytes"
    statuses=$($PY -c 'import json,sys; print(" ".join(str(e["response"]["status"]) for e in json.load(open(sys.argv[1]))["log"]["entries"]))' "$T/har" 2>/dev/null)
    assert_eq "200 200 200 200 200 200 200 200" "$statuses" "8 concurrent streams: statuses"
else
    note "nghttp not installed: concurrent streams on one connection not checked here"
fi

# ---- trailers to an h2 client
fcurl "${H2[@]}" -D "$T/h" -o "$T/b" "$(gw_url /trailers)"
assert_eq hello "$(cat "$T/b")" "/trailers body over h2c"
assert_eq abc123 "$(header_value "$T/h" x-checksum)" "/trailers trailer over h2c (HEADERS after DATA)"

# ---- HTTP/1.1 still works on the same port
code=$(fcurl --http1.1 -o /dev/null -w '%{http_code} %{http_version}' "$(gw_url /echo)")
assert_eq "200 1.1" "$code" "HTTP/1.1 on the same port"

finish
