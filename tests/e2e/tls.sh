#!/bin/bash
# TLS listener with a self-signed certificate: ALPN picks h2 or http/1.1,
# bodies intact both ways, x-forwarded-proto = https; a cleartext listener
# beside it still says http.
. "$(dirname "$0")/lib.sh"
require_cmd curl openssl sha256sum

openssl req -x509 -newkey rsa:2048 -nodes -subj /CN=localhost -days 1 \
    -keyout "$T/key.pem" -out "$T/cert.pem" >"$T/openssl.out" 2>&1 || die "openssl req failed: $(cat "$T/openssl.out")"

start_backend b1
pick_port TLS_PORT
pick_port CLEAR_PORT
# certificate paths relative to the config file's directory
write_config "$T/gw.json" <<JSON
{
  "workers": 2,
  "listeners": [
    { "address": "127.0.0.1:$TLS_PORT", "tls": { "certificate": "cert.pem", "key": "key.pem" } },
    { "address": "127.0.0.1:$CLEAR_PORT" }
  ],
  "upstreams": { "main": { "backends": [ { "address": "${BACKEND_ADDR[b1]}" } ] } },
  "routes": [ { "match": { "path_prefix": "/" }, "upstream": "main" } ]
}
JSON
# start from elsewhere so that relative paths must be resolved against the
# config's directory, not the working directory
cd /
start_gateway "$T/gw.json"
wait_port "$CLEAR_PORT" 5 || fail "second (cleartext) listener does not accept"
U="https://127.0.0.1:$TLS_PORT"

head -c 2097169 /dev/urandom >"$T/up.bin"
want=$(sha256_file "$T/up.bin")

for v in --http2 --http1.1; do
    expect=2; [ $v == --http1.1 ] && expect=1.1
    code=$(fcurl -k $v -D "$T/h" -o "$T/b" -w '%{http_code} %{http_version}' "$U/echo")
    assert_eq "200 $expect" "$code" "TLS $v GET /echo: status and negotiated version"
    body=$(cat "$T/b")
    assert_json "$body" headers.x-forwarded-proto https "TLS $v: x-forwarded-proto"
    assert_json "$body" headers.x-forwarded-for 127.0.0.1 "TLS $v: x-forwarded-for"
    assert_json "$body" headers.host "127.0.0.1:$TLS_PORT" "TLS $v: host"
    assert_match "$(header_value "$T/h" x-request-id)" '^[0-9a-f]{32}$' "TLS $v: x-request-id response header"

    body=$(fcurl -k $v -H 'x-forwarded-proto: http' --data-binary @"$T/up.bin" "$U/echo")
    assert_json "$body" body_sha256 "$want" "TLS $v POST: body_sha256"
    assert_json "$body" body_bytes 2097169 "TLS $v POST: body_bytes"
    assert_json "$body" headers.x-forwarded-proto https "TLS $v: client's x-forwarded-proto replaced"

    fcurl -k $v -o "$T/d" "$U/bytes/3000017"
    assert_eq "$(pattern_sha256 3000017)" "$(sha256_file "$T/d")" "TLS $v /bytes/3000017 sha256"
    fcurl -k $v -o "$T/d" "$U/chunked/1000003"
    assert_eq "$(pattern_sha256 1000003)" "$(sha256_file "$T/d")" "TLS $v /chunked/1000003 sha256"
done

# no ALPN at all: HTTP/1.1
code=$(fcurl -k --http1.1 --no-alpn -o "$T/b" -w '%{http_code} %{http_version}' "$U/echo")
assert_eq "200 1.1" "$code" "TLS without ALPN falls back to HTTP/1.1"

# the certificate served is ours
subj=$(echo | timeout 10 openssl s_client -connect "127.0.0.1:$TLS_PORT" -servername localhost 2>/dev/null |
    openssl x509 -noout -subject 2>/dev/null)
assert_contains "$subj" "CN = localhost" "certificate subject"
alpn=$(echo | timeout 10 openssl s_client -connect "127.0.0.1:$TLS_PORT" -alpn h2,http/1.1 2>/dev/null |
    grep -a -i '^ALPN protocol')
assert_contains "$alpn" "h2" "openssl s_client ALPN negotiation"

# plain HTTP on the TLS port is refused (no response that looks like success)
code=$(fcurl --http1.1 -o /dev/null -w '%{http_code}' --max-time 5 "http://127.0.0.1:$TLS_PORT/echo" 2>/dev/null)
assert_ne 200 "$code" "cleartext request on the TLS port"

# the cleartext listener beside it
body=$(fcurl --http1.1 "http://127.0.0.1:$CLEAR_PORT/echo")
assert_json "$body" headers.x-forwarded-proto http "cleartext listener: x-forwarded-proto"

finish
