#!/bin/bash
# Backend failures mid-exchange: no response head within the upstream's
# header_timeout_ms gives 504 backend_timeout; a response cut short never
# looks complete to the client; a response that is not HTTP gives 502.
. "$(dirname "$0")/lib.sh"
require_cmd curl

start_backend b1
pick_port GWP
write_config "$T/gw.json" <<JSON
{
  "workers": 2,
  "listeners": [ { "address": "127.0.0.1:$GWP" } ],
  "upstreams": {
    "main": { "backends": [ { "address": "${BACKEND_ADDR[b1]}" } ], "header_timeout_ms": 500 }
  },
  "routes": [ { "match": { "path_prefix": "/" }, "upstream": "main" } ]
}
JSON
start_gateway "$T/gw.json"

now_ms() { echo $(($(date +%s%N) / 1000000)); }

for v in --http1.1 --http2-prior-knowledge; do
    # ---- no head from the backend
    t0=$(now_ms)
    code=$(fcurl $v --max-time 10 -D "$T/h" -o "$T/b" -w '%{http_code}' "$(gw_url /hang)")
    ms=$(($(now_ms) - t0))
    assert_eq 504 "$code" "$v /hang with header_timeout_ms 500: status"
    assert_error_json "$(cat "$T/b")" 504 backend_timeout "$v 504 body"
    assert_match "$(header_value "$T/h" content-type)" '^application/json' "$v 504: content-type"
    assert_ge "$ms" 450 "$v 504 not before the timeout (ms)"
    assert_le "$ms" 1500 "$v 504 within ~1 s (ms)"

    # a slow head within the limit is fine
    code=$(fcurl $v -o /dev/null -w '%{http_code}' "$(gw_url '/slow?ms=200')")
    assert_eq 200 "$code" "$v /slow?ms=200 under header_timeout_ms 500"

    # ---- body cut short: never a complete-looking response
    fcurl $v --max-time 10 -o "$T/b" -w '%{http_code} %{size_download}' "$(gw_url /close-mid)" >"$T/w" 2>"$T/e"
    rc=$?
    note "$v /close-mid: curl exit $rc, '$(cat "$T/w")', $(head -c 200 "$T/e")"
    assert_ne 0 "$rc" "$v /close-mid: curl exit status (cut-short body must not look complete)"
    read -r _ size <"$T/w"
    assert_le "${size:-0}" 999 "$v /close-mid: bytes received"

    # ---- not HTTP at all from the backend
    code=$(fcurl $v --max-time 10 -D "$T/h" -o "$T/b" -w '%{http_code}' "$(gw_url /garbage)")
    assert_eq 502 "$code" "$v /garbage: status"
    assert_error_json "$(cat "$T/b")" 502 backend_unavailable "$v /garbage 502 body"

    # ---- a backend's own error status passes through untouched
    code=$(fcurl $v -D "$T/h" -o "$T/b" -w '%{http_code}' "$(gw_url /status/503)")
    assert_eq 503 "$code" "$v backend's own 503 passed through"
    assert_json "$(cat "$T/b")" status 503 "$v backend's own 503 body untouched"
    assert_eq b1 "$(header_value "$T/h" x-backend)" "$v backend's own 503 carries x-backend"
done

# several hanging requests at once on one h2 connection, all 504 together
if command -v h2load >/dev/null; then
    t0=$(now_ms)
    timeout -k 2 20 h2load -n 4 -c 1 -m 4 "$(gw_url /hang)" >"$T/h2load.out" 2>&1
    ms=$(($(now_ms) - t0))
    assert_contains "$(grep '^status codes:' "$T/h2load.out")" "4 5xx" "4 concurrent /hang streams on one h2c connection: 4 x 5xx"
    assert_le "$ms" 2500 "4 concurrent /hang streams time out together (ms)"
else
    note "h2load not installed: concurrent hanging streams not checked"
fi

# still healthy
code=$(fcurl --http1.1 -o /dev/null -w '%{http_code}' "$(gw_url /echo)")
assert_eq 200 "$code" "gateway still answers after backend failures"
code=$(fcurl --http2-prior-knowledge -o /dev/null -w '%{http_code}' "$(gw_url /echo)")
assert_eq 200 "$code" "gateway still answers h2c after backend failures"

# ---- client idle timeout on HTTP/2: with no stream open the connection
# gets a GOAWAY and is closed after client.idle_timeout_ms; a stream that
# waits for its answer keeps it open
pick_port GWP2
write_config "$T/gw2.json" <<JSON
{
  "listeners": [ { "address": "127.0.0.1:$GWP2" } ],
  "client": { "idle_timeout_ms": 400 },
  "upstreams": {
    "main": { "backends": [ { "address": "${BACKEND_ADDR[b1]}" } ], "header_timeout_ms": 1500 }
  },
  "routes": [ { "match": { "path_prefix": "/" }, "upstream": "main" } ]
}
JSON
start_gateway "$T/gw2.json"
out=$(timeout -k 2 10 $PY - "$GWP2" <<'PY'
import socket, sys, time
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])))
s.sendall(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + bytes.fromhex("000000040000000000"))
t0 = time.monotonic()
s.settimeout(5)
buf = b""
while True:
    try:
        d = s.recv(65536)
    except socket.timeout:
        break
    if not d:
        break
    buf += d
types, i = [], 0
while i + 9 <= len(buf):
    types.append(buf[i + 3])
    i += 9 + int.from_bytes(buf[i:i + 3], "big")
print(int((time.monotonic() - t0) * 1000), int(7 in types))
PY
)
read -r ms goaway <<<"$out"
note "idle h2 connection closed after ${ms} ms, GOAWAY seen: $goaway"
assert_eq 1 "$goaway" "idle h2 connection: GOAWAY before the close"
assert_ge "${ms:-0}" 350 "idle h2 connection kept for idle_timeout_ms (ms)"
assert_le "${ms:-99999}" 2000 "idle h2 connection closed soon after idle_timeout_ms (ms)"
code=$(fcurl --http2-prior-knowledge --max-time 10 -o /dev/null -w '%{http_code}' "$(gw_url /hang | sed "s/:$GWP/:$GWP2/")")
assert_eq 504 "$code" "a stream waiting 1.5 s for its answer outlives the 0.4 s idle timeout"
# the idle time counts from the end of the last stream, not from the
# client's last bytes (the read timeout stays armed while streams are open)
out=$(timeout -k 2 15 $PY - "$GWP2" "$FG_SRCDIR/tests/tools" <<'PY'
import sys
sys.path.insert(0, sys.argv[2])
import h2raw
c = h2raw.Conn(int(sys.argv[1]))
sid = c.request("/slow?ms=1000")
c.pump(5, lambda: c.done(sid))
t_end = c.elapsed()
c.pump(5, lambda: c.closed)
print(c.status.get(sid), int((c.elapsed() - t_end) * 1000), int(c.goaway is not None))
PY
)
read -r st after goaway <<<"$out"
note "1 s stream on an h2 connection with idle_timeout_ms 400: $st, closed ${after} ms after its end, GOAWAY: $goaway"
assert_eq 200 "$st" "a 1 s answer on an h2 connection with a 0.4 s idle timeout"
assert_ge "${after:-0}" 350 "the connection then stays idle_timeout_ms after the stream's end (ms)"
assert_le "${after:-99999}" 2000 "... and is closed soon after (ms)"
assert_eq 1 "$goaway" "... with a GOAWAY"
# a stream whose head never ends (HEADERS without END_HEADERS, then
# silence: not even the SETTINGS ACK, which would be a protocol error
# before the CONTINUATION) does not hold the connection past its idle
# timeout
out=$(timeout -k 2 15 $PY - "$GWP2" "$FG_SRCDIR/tests/tools" <<'PY'
import socket, sys, time
sys.path.insert(0, sys.argv[2])
import h2raw
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])))
t0 = time.monotonic()
s.sendall(h2raw.PREFACE + h2raw.frame(h2raw.SETTINGS, 0, 0) +
          h2raw.frame(h2raw.HEADERS, h2raw.F_END_STREAM, 1,
                      h2raw.literal(":method", "GET") + h2raw.literal(":path", "/")))
s.settimeout(8)
buf, closed = b"", 0
try:
    while True:
        d = s.recv(65536)
        if not d:
            closed = 1
            break
        buf += d
except socket.timeout:
    pass
types, i = [], 0
while i + 9 <= len(buf):
    types.append(buf[i + 3])
    i += 9 + int.from_bytes(buf[i:i + 3], "big")
print(closed, int((time.monotonic() - t0) * 1000), int(h2raw.GOAWAY in types))
PY
)
read -r closed ms goaway <<<"$out"
note "h2 head left unfinished: closed $closed after ${ms} ms, GOAWAY: $goaway"
assert_eq 1 "$closed" "an unfinished h2 request head does not keep the connection open"
assert_ge "${ms:-0}" 350 "... it is kept for idle_timeout_ms (ms)"
assert_le "${ms:-99999}" 2000 "... and closed soon after (ms)"
assert_eq 1 "$goaway" "... with a GOAWAY"

finish
