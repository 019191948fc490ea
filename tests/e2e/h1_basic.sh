#!/bin/bash
# HTTP/1.1 through the gateway: GET and POST /echo, the headers the gateway
# adds (x-forwarded-for, x-forwarded-proto, x-request-id) and removes
# (hop-by-hop), Host kept, /bytes and /chunked downloads intact, keep-alive
# towards the client and towards the backend.
. "$(dirname "$0")/lib.sh"
require_cmd curl sha256sum

start_backend b1
simple_config "$T/gw.json" b1
start_gateway "$T/gw.json"

# ---- GET /echo
code=$(fcurl --http1.1 -D "$T/h" -o "$T/b" -w '%{http_code} %{http_version}' "$(gw_url /echo?x=1)")
assert_eq "200 1.1" "$code" "GET /echo over HTTP/1.1: status and version"
body=$(cat "$T/b")
assert_json "$body" method GET "backend saw method"
assert_json_match "$body" path '^/echo' "backend saw path"
assert_json "$body" headers.x-forwarded-for 127.0.0.1 "x-forwarded-for"
assert_json "$body" headers.x-forwarded-proto http "x-forwarded-proto"
assert_json "$body" headers.host "127.0.0.1:$GW_PORT" "host kept"
assert_json "$body" http_version 1.1 "backend spoken to in HTTP/1.1"
assert_json_match "$body" headers.x-request-id '^[0-9a-f]{32}$' "generated x-request-id (backend side)"
rid_backend=$(json_get "$body" headers.x-request-id)
rid_resp=$(header_value "$T/h" x-request-id)
assert_match "$rid_resp" '^[0-9a-f]{32}$' "x-request-id response header"
assert_eq "$rid_backend" "$rid_resp" "x-request-id: response header = the one the backend saw"
assert_eq b1 "$(header_value "$T/h" x-backend)" "x-backend response header passed through"

# two requests get two different ids
body2=$(fcurl --http1.1 "$(gw_url /echo)")
assert_ne "$rid_backend" "$(json_get "$body2" headers.x-request-id)" "a second request gets a new x-request-id"

# ---- client-sent x-request-id and x-forwarded-for
body=$(fcurl --http1.1 -D "$T/h" -H 'x-request-id: client-id.42_x' -H 'x-forwarded-for: 10.1.2.3' \
    -H 'x-forwarded-proto: https' "$(gw_url /echo)")
assert_json "$body" headers.x-request-id client-id.42_x "client x-request-id kept (backend side)"
assert_eq client-id.42_x "$(header_value "$T/h" x-request-id)" "client x-request-id kept (response header)"
assert_json "$body" headers.x-forwarded-for "10.1.2.3, 127.0.0.1" "x-forwarded-for appended to the client's"
assert_json "$body" headers.x-forwarded-proto http "x-forwarded-proto replaced"

# an insane x-request-id is replaced
body=$(fcurl --http1.1 -H 'x-request-id: bad id with spaces!' "$(gw_url /echo)")
assert_json_match "$body" headers.x-request-id '^[0-9a-f]{32}$' "invalid client x-request-id replaced"

# ---- POST a few MB of random bytes
head -c 3145739 /dev/urandom >"$T/up.bin"
want=$(sha256_file "$T/up.bin")
body=$(fcurl --http1.1 -H 'content-type: application/octet-stream' --data-binary @"$T/up.bin" "$(gw_url /echo)")
assert_json "$body" method POST "POST method"
assert_json "$body" body_bytes 3145739 "POST body_bytes"
assert_json "$body" body_sha256 "$want" "POST body_sha256"

# ---- hop-by-hop headers removed, others kept
body=$(fcurl --http1.1 -H 'Connection: keep-alive, x-drop-me' -H 'x-drop-me: 1' -H 'Keep-Alive: timeout=5' \
    -H 'TE: trailers' -H 'Upgrade: foo' -H 'Proxy-Connection: keep-alive' -H 'x-keep-me: 2' \
    -H 'Host: example.test' "$(gw_url /echo)")
for h in keep-alive x-drop-me te upgrade proxy-connection; do
    assert_json_absent "$body" "headers.$h" "hop-by-hop header '$h' at the backend"
done
conn=$(json_get "$body" headers.connection)
if [ -z "$conn" ]; then
    ok "no connection header at the backend"
else
    # the gateway may state its own keep-alive; the client's list must not pass
    assert_eq keep-alive "$(echo "$conn" | tr A-Z a-z)" "connection header at the backend (only the gateway's own)"
fi
assert_json "$body" headers.x-keep-me 2 "end-to-end header kept"
assert_json "$body" headers.host example.test "client Host kept"

# ---- downloads
for n in 0 1 65536 1000003 5242880; do
    fcurl --http1.1 -o "$T/d" -D "$T/h" "$(gw_url /bytes/$n)"
    assert_eq "$(pattern_sha256 $n)" "$(sha256_file "$T/d")" "/bytes/$n sha256"
    assert_eq "$n" "$(stat -c %s "$T/d")" "/bytes/$n size"
done
for n in 1 70000 3000017; do
    fcurl --http1.1 -o "$T/d" "$(gw_url /chunked/$n)"
    assert_eq "$(pattern_sha256 $n)" "$(sha256_file "$T/d")" "/chunked/$n sha256"
done

# ---- HEAD: headers only, the connection stays usable
fcurl --http1.1 -I -v -o "$T/h" "$(gw_url /bytes/100)" "$(gw_url /bytes/5)" -o "$T/b" 2>"$T/v"
assert_eq 0 $? "two HEAD requests on one connection: curl exit status"
assert_eq 100 "$(header_value "$T/h" content-length)" "HEAD /bytes/100: content-length"
assert_contains "$(cat "$T/v")" "Re-using existing connection" "connection reused after a HEAD"

# ---- 204 (no body) followed by another request on the same connection
fcurl --http1.1 -o /dev/null -o "$T/b" -w '%{http_code}\n' "$(gw_url /status/204)" "$(gw_url /bytes/7)" >"$T/codes"
assert_eq "204 200" "$(tr '\n' ' ' <"$T/codes" | sed 's/ $//')" "204 then 200 on one connection"
assert_eq 0123456 "$(cat "$T/b")" "body after a 204"

# ---- HTTP/1.0 client: served, then the connection is closed
resp=$(printf 'GET /echo HTTP/1.0\r\nHost: old.test\r\n\r\n' | raw_http "$GW_PORT" 5)
assert_json "$resp" responses.0.status 200 "HTTP/1.0 request: status"
assert_json "$resp" closed true "HTTP/1.0 request without keep-alive: connection closed"
assert_json "$(json_get "$resp" responses.0.body)" headers.host old.test "HTTP/1.0 request: host"

# ---- keep-alive towards the client: two URLs in one curl reuse the connection
fcurl --http1.1 -v -o /dev/null -o /dev/null "$(gw_url /echo?a)" "$(gw_url /bytes/100)" 2>"$T/v"
assert_contains "$(cat "$T/v")" "Re-using existing connection" "curl -v of two requests on one connection"

# ---- keep-alive towards the backend: ten sequential requests open at most
# one new connection per worker (2), plus the /stats probe's own
c0=$(backend_stat b1 connections)
for i in 1 2 3 4 5 6 7 8 9 10; do fcurl --http1.1 -o /dev/null "$(gw_url /echo?seq=$i)"; done
c1=$(backend_stat b1 connections)
assert_le $((c1 - c0)) 3 "new backend connections for 10 sequential requests (pooled)"

finish
