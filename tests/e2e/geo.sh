#!/bin/bash
# Geography: rules on country, continent and ASN from the shared MaxMind
# test databases (loopback-test.mmdb maps 127.0.0.2 to DE/EU/AS64513, .3 to
# US/NA/64514, .4 to JP/AS/64515, the rest of 127/8 to ZZ); the client's
# address from the socket, or from X-Forwarded-For and the PROXY protocol
# only when the peer is a trusted proxy (PROXY before TLS too); geography
# forwarded as headers, the client's own copies of them dropped; SIGHUP
# reopens the database; a missing or bad database is a clear start-up
# error. Over HTTP/1.1 and HTTP/2.
. "$(dirname "$0")/lib.sh"
require_cmd curl openssl

DB=${FG_TESTDATA:-$FG_SRCDIR/../shared/testdata}/geoip
[ -f "$DB/loopback-test.mmdb" ] || skip "no GeoIP test data in $DB"

cp "$DB/loopback-test.mmdb" "$T/geo.mmdb"
openssl req -x509 -newkey rsa:2048 -nodes -subj /CN=localhost -days 1 \
    -keyout "$T/key.pem" -out "$T/cert.pem" >"$T/openssl.out" 2>&1 || die "openssl req failed"
start_backend other
start_backend de
start_backend na
start_backend jp
pick_port GWP
pick_port PPP
pick_port PPT
write_config "$T/gw.json" <<JSON
{
  "workers": 2,
  "listeners": [ { "address": "127.0.0.1:$GWP" },
                 { "address": "127.0.0.1:$PPP", "proxy_protocol": true },
                 { "address": "127.0.0.1:$PPT", "proxy_protocol": true,
                   "tls": { "certificate": "$T/cert.pem", "key": "$T/key.pem" } } ],
  "client": { "trusted_proxies": [ "127.0.0.9/32" ] },
  "geoip": { "database": "$T/geo.mmdb",
             "headers": { "country": "x-client-country", "continent": "x-client-continent",
                          "asn": "x-client-asn" } },
  "upstreams": {
    "other": { "backends": [ { "address": "${BACKEND_ADDR[other]}" } ] },
    "de": { "backends": [ { "address": "${BACKEND_ADDR[de]}" } ] },
    "na": { "backends": [ { "address": "${BACKEND_ADDR[na]}" } ] },
    "jp": { "backends": [ { "address": "${BACKEND_ADDR[jp]}" } ] }
  },
  "routes": [ { "match": {}, "upstream": "other",
                "rules": [ { "country": ["DE"], "upstream": "de" },
                           { "continent": ["NA"], "upstream": "na" },
                           { "asn": [64515], "upstream": "jp" } ] } ]
}
JSON
start_gateway "$T/gw.json"

# from PROTO SRC [CURL ARGS]: the backend's /echo answer, the request sent from address SRC
from() {
    local proto=$1 src=$2 p=(); shift 2
    [ "$proto" = h2 ] && p=(--http2-prior-knowledge)
    fcurl "${p[@]}" --interface "$src" "$@" "$(gw_url /echo)"
}

for proto in h1 h2; do
    b=$(from $proto 127.0.0.2)
    assert_json "$b" backend de "$proto: a client in DE takes the country rule"
    assert_json "$b" headers.[x-client-country] DE "$proto: x-client-country forwarded"
    assert_json "$b" headers.[x-client-continent] EU "$proto: x-client-continent forwarded"
    assert_json "$b" headers.[x-client-asn] 64513 "$proto: x-client-asn forwarded"
    b=$(from $proto 127.0.0.3)
    assert_json "$b" backend na "$proto: a client in North America takes the continent rule"
    b=$(from $proto 127.0.0.4)
    assert_json "$b" backend jp "$proto: AS64515 takes the ASN rule"
    b=$(from $proto 127.0.0.1)
    assert_json "$b" backend other "$proto: ZZ matches no rule"
    assert_json "$b" headers.[x-client-country] ZZ "$proto: its country is still forwarded"
    assert_json "$b" headers.[x-client-continent] unknown "$proto: no continent: unknown"

    # spoofing from an untrusted peer: X-Forwarded-For and the geo headers are ignored
    b=$(from $proto 127.0.0.1 -H 'x-forwarded-for: 127.0.0.2' -H 'x-client-country: DE')
    assert_json "$b" backend other "$proto: X-Forwarded-For from an untrusted peer is ignored"
    assert_json "$b" headers.[x-client-country] ZZ "$proto: the client's own x-client-country is dropped"
    # a trusted proxy says who the client is
    b=$(from $proto 127.0.0.9 -H 'x-forwarded-for: 127.0.0.2')
    assert_json "$b" backend de "$proto: X-Forwarded-For from a trusted proxy is believed"
    b=$(from $proto 127.0.0.9 -H 'x-forwarded-for: 127.0.0.3, 127.0.0.9')
    assert_json "$b" backend na "$proto: trusted hops are skipped from the right"
    # many lines from the client before the one the trusted proxy appended
    xs=(); for i in $(seq 1 20); do xs+=(-H 'x-forwarded-for: 127.0.0.2'); done
    b=$(from $proto 127.0.0.9 "${xs[@]}" -H 'x-forwarded-for: 127.0.0.3')
    assert_json "$b" backend na "$proto: the last X-Forwarded-For line counts, however many come first"
    b=$(from $proto 127.0.0.9 -H 'x-forwarded-for: 192.0.2.1')
    assert_json "$b" backend other "$proto: an address not in the database matches no rule"
    assert_json "$b" headers.[x-client-country] unknown "$proto: ...and is forwarded as unknown"
done

# ---- PROXY protocol: from a trusted peer, the header says who the client is
pp() {  # pp SRC HEADER [tls]: an HTTP/1.1 request on a proxy_protocol listener after HEADER, from SRC
    $PY - "$1" "$([ "${3:-}" = tls ] && echo "$PPT" || echo "$PPP")" "$2" "${3:-}" <<'EOF'
import socket, ssl, sys
src, port, hdr = sys.argv[1], int(sys.argv[2]), sys.argv[3].encode().decode("unicode_escape").encode("latin-1")
s = socket.socket()
s.settimeout(5)
s.bind((src, 0))
s.connect(("127.0.0.1", port))
s.sendall(hdr)
if sys.argv[4] == "tls":
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    try:
        s = ctx.wrap_socket(s)
    except (OSError, ssl.SSLError):
        sys.exit(0)
import os
extra = os.environ.get("PP_EXTRA", "").encode()
s.sendall(b"GET /echo HTTP/1.1\r\nhost: x\r\nconnection: close\r\n" + extra + b"\r\n")
out = b""
try:
    while True:
        d = s.recv(65536)
        if not d:
            break
        out += d
except OSError:
    pass
sys.stdout.write(out.decode("latin-1"))
EOF
}
r=$(pp 127.0.0.9 'PROXY TCP4 127.0.0.4 127.0.0.1 40000 80\r\n')
assert_match "$r" '"backend":"jp"' "PROXY v1 from a trusted peer: the client is its source (JP)"
r=$(pp 127.0.0.9 '\r\n\r\n\x00\r\nQUIT\n\x21\x11\x00\x0c\x7f\x00\x00\x02\x7f\x00\x00\x01\x9c\x40\x00\x50')
assert_match "$r" '"backend":"de"' "PROXY v2 from a trusted peer: the client is its source (DE)"
assert_match "$r" '"x-forwarded-for":"127.0.0.2"' "the backend's X-Forwarded-For names the PROXY source"
r=$(pp 127.0.0.9 '')
assert_eq "" "$r" "a trusted peer that sends no PROXY header is dropped"
r=$(PP_EXTRA=$'x-forwarded-for: 127.0.0.2\r\n' pp 127.0.0.9 'PROXY UNKNOWN\r\n')
assert_match "$r" '"backend":"other"' "PROXY UNKNOWN: the client's own X-Forwarded-For is not believed"
r=$(pp 127.0.0.1 'PROXY TCP4 127.0.0.4 127.0.0.1 40000 80\r\n')
assert_match "$r" '^HTTP/1.1 400' "an untrusted peer's PROXY line is not believed (it is bad HTTP: 400)"
r=$(pp 127.0.0.1 '')
assert_match "$r" '"backend":"other"' "an untrusted peer speaks plain HTTP on that listener"
r=$(pp 127.0.0.9 'PROXY TCP4 127.0.0.3 127.0.0.1 40000 443\r\n' tls)
assert_match "$r" '"backend":"na"' "PROXY before TLS on a TLS listener: the client is its source (NA)"
r=$(pp 127.0.0.1 '' tls)
assert_match "$r" '"backend":"other"' "TLS from an untrusted peer, no PROXY header: served as usual"

# ---- SIGHUP reopens the database (replaced by a rename, as updaters do)
cp "$DB/GeoIP2-Country-Test.mmdb" "$T/geo.mmdb.new" && mv "$T/geo.mmdb.new" "$T/geo.mmdb"
kill -HUP "$GW_PID"
for i in $(seq 1 20); do
    grep -q 'GeoIP database .* reopened' "$GW_LOG" && break
    sleep 0.1
done
b=$(from h1 127.0.0.2)
assert_json "$b" headers.[x-client-country] unknown "after SIGHUP the new database answers (127.0.0.2 is not in it)"
b=$(from h1 127.0.0.9 -H 'x-forwarded-for: 81.2.69.142')
assert_json "$b" headers.[x-client-country] GB "...and MaxMind's test address is GB"
printf 'garbage' >"$T/geo.mmdb.new" && mv "$T/geo.mmdb.new" "$T/geo.mmdb"
kill -HUP "$GW_PID"
for i in $(seq 1 20); do
    grep -q 'configuration not reloaded' "$GW_LOG" && break
    sleep 0.1
done
assert_match "$(grep 'configuration not reloaded' "$GW_LOG")" '\$\.geoip\.database: .*geo\.mmdb' \
    "a bad database on SIGHUP is reported: the reload is rejected, naming it"
b=$(from h2 127.0.0.9 -H 'x-forwarded-for: 81.2.69.142')
assert_json "$b" headers.[x-client-country] GB "...and the one opened before stays in use"
cp "$DB/loopback-test.mmdb" "$T/geo.mmdb"

# ---- a missing or unreadable database stops the start with a clear error
sed "s|$T/geo.mmdb|$T/missing.mmdb|" "$T/gw.json" >"$T/missing.json"
out=$("$FG_GATEWAY" -t -c "$T/missing.json" 2>&1); rc=$?
assert_eq 1 "$rc" "a missing GeoIP database: exit status 1"
assert_match "$out" 'missing\.json:[0-9]+:[0-9]+: \$\.geoip\.database: cannot read .*missing\.mmdb' \
    "a missing GeoIP database: the file, the JSON path and the reason"
printf 'not a database\n' >"$T/bad.mmdb"
sed "s|$T/geo.mmdb|$T/bad.mmdb|" "$T/gw.json" >"$T/bad.json"
out=$("$FG_GATEWAY" -t -c "$T/bad.json" 2>&1); rc=$?
assert_eq 1 "$rc" "a file that is not a MaxMind DB: exit status 1"
assert_match "$out" '\$\.geoip\.database: .*bad\.mmdb.*(not a MaxMind DB|cannot be used)' \
    "a file that is not a MaxMind DB: said so"

finish
