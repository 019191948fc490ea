#!/bin/bash
# Slow clients. Heads sent a byte at a time (slowloris) end after
# client.header_timeout_ms however steadily the bytes come: 408 and the
# connection closed on HTTP/1.1, GOAWAY and the connection closed on
# HTTP/2 (a header block in progress blocks the whole connection).
# Slow readers of responses (client.send_timeout_ms): a client that stops
# reading a large response loses it after send_timeout_ms, and the
# backend side is released. On HTTP/1.1 the client reads nothing (its
# socket fills up); on HTTP/2 it keeps one stream's flow-control window
# shut while the connection stays busy (it still returns the connection's
# window, answers PINGs and opens other streams): that stream is reset
# (RST_STREAM CANCEL) and the others are served. A reader that is slow but
# keeps going gets its whole response, and a backend slow to send more
# (SSE) is not mistaken for a slow reader.
FG_TEST_TIMEOUT=90
. "$(dirname "$0")/lib.sh"

start_backend b1
pick_port GWP
pick_port ADM
write_config "$T/gw.json" <<JSON
{
  "workers": 1,
  "listeners": [ { "address": "127.0.0.1:$GWP" } ],
  "admin": { "address": "127.0.0.1:$ADM" },
  "client": { "send_timeout_ms": 1000, "idle_timeout_ms": 30000, "header_timeout_ms": 1500 },
  "upstreams": { "main": { "backends": [ { "address": "${BACKEND_ADDR[b1]}" } ] } },
  "routes": [ { "match": { "path_prefix": "/" }, "upstream": "main" } ]
}
JSON
start_gateway "$T/gw.json"

# client_conns: fleetgate_client_connections as "H1/H2" (cleartext; the
# scrape's own HTTP/1.1 connection counts: 1 when idle)
client_conns() {
    fcurl "http://127.0.0.1:$ADM/metrics" | awk '
        $1 == "fleetgate_client_connections{protocol=\"http/1.1\",tls=\"false\"}" { h1 = $2 }
        $1 == "fleetgate_client_connections{protocol=\"h2\",tls=\"false\"}" { h2 = $2 }
        END { print (h1 == "" ? "absent" : h1) "/" (h2 == "" ? "absent" : h2) }'
}
for v in --http1.1 --http2-prior-knowledge; do
    code=$(fcurl $v -o /dev/null -w '%{http_code}' "$(gw_url /bytes/1000)")
    assert_eq 200 "$code" "warm-up $v"
done

# ---- heads a byte every 100 ms: 1.5 s allowed, 20 s of head
before=$(backend_stat b1 requests)
out=$(timeout -k 2 20 $PY - "$GWP" "$FG_SRCDIR/tests/tools" <<'PY'
import json, socket, sys, time
sys.path.insert(0, sys.argv[2]); import h2raw
gw = int(sys.argv[1])
r = {}
# HTTP/1.1
s = socket.create_connection(("127.0.0.1", gw))
s.settimeout(0.1)
head = b"GET /bytes/10 HTTP/1.1\r\nHost: x\r\nx-pad: " + b"a" * 200 + b"\r\n\r\n"
t0, got = time.monotonic(), b""
for i in range(len(head)):
    try:
        s.sendall(head[i:i + 1])
        d = s.recv(4096)
    except socket.timeout:
        continue
    except OSError:
        break
    got += d
    if not d or got:
        break
try:
    s.settimeout(2)
    while True:
        d = s.recv(4096)
        if not d:
            break
        got += d
    r["h1_closed"] = True
except OSError:
    r["h1_closed"] = False
r["h1_status"] = got.split(b" ")[1].decode() if got.startswith(b"HTTP/1.1 ") else got[:40].decode("latin-1")
r["h1_s"] = round(time.monotonic() - t0, 2)
# HTTP/2: one HEADERS frame with END_HEADERS, a byte every 100 ms
c = h2raw.Conn(gw)
c.pump(0.3)                 # SETTINGS both ways first: nothing may come inside a header block
block = b"".join(h2raw.literal(n, v) for n, v in
                 [(":method", "GET"), (":scheme", "http"), (":path", "/bytes/10"),
                  (":authority", "x"), ("x-pad", "a" * 200)])
frame = h2raw.frame(h2raw.HEADERS, h2raw.F_END_HEADERS | h2raw.F_END_STREAM, 1, block)
t0 = time.monotonic()
for i in range(len(frame)):
    if not c.send(frame[i:i + 1]):
        break
    c.pump(0.1)
    if c.closed:
        break
c.pump(2)
r["h2_goaway"] = c.goaway
r["h2_closed"] = c.closed
r["h2_status"] = c.status.get(1)
r["h2_s"] = round(time.monotonic() - t0, 2)
print(json.dumps(r))
PY
)
note "heads a byte at a time: $out"
assert_json "$out" h1_status 408 "h1 head a byte at a time: 408"
assert_json "$out" h1_closed true "h1 ... and the connection closed"
t=$(json_get "$out" h1_s)
assert_true "h1 ... about header_timeout_ms (1.5 s) after it began ($t s)" \
    $PY -c "import sys; sys.exit(not 1.4 <= $t <= 4)"
assert_json "$out" h2_goaway '[1,0]' "h2 HEADERS a byte at a time: GOAWAY (NO_ERROR)"
assert_json "$out" h2_closed true "h2 ... and the connection closed"
assert_json "$out" h2_status null "h2 ... the request never reached the backend"
t=$(json_get "$out" h2_s)
assert_true "h2 ... about header_timeout_ms after the frame's 9-byte header ($t s)" \
    $PY -c "import sys; sys.exit(not 1.4 <= $t <= 5)"
assert_eq "$before" "$(backend_stat b1 requests)" "no trickled head reached the backend"

# ---- HTTP/1.1: the client reads nothing of a 200 MB response
out=$(timeout -k 2 20 $PY - "$GWP" "${BACKEND_PORT[b1]}" "$ADM" <<'PY'
import json, socket, sys, time, urllib.request
gw, be, adm = (int(a) for a in sys.argv[1:4])
def stat(port, path):
    return urllib.request.urlopen("http://127.0.0.1:%d%s" % (port, path), timeout=3).read().decode()
def h1_conns():
    for line in stat(adm, "/metrics").splitlines():
        if line.startswith('fleetgate_client_connections{protocol="http/1.1",tls="false"}'):
            return int(float(line.split()[1]))
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
s.connect(("127.0.0.1", gw))
s.sendall(b"GET /bytes/200000000 HTTP/1.1\r\nHost: x\r\n\r\n")
time.sleep(0.5)
busy = json.loads(stat(be, "/stats"))["in_flight"]   # /stats itself not counted
conns_busy = h1_conns()
t0 = time.monotonic()
while time.monotonic() - t0 < 6:
    if json.loads(stat(be, "/stats"))["in_flight"] == 0 and h1_conns() == 1:
        break                       # only the scrape's own connection is left
    time.sleep(0.1)
took = time.monotonic() - t0 + 0.5
print(json.dumps({"busy": busy, "conns_busy": conns_busy,
                  "in_flight": json.loads(stat(be, "/stats"))["in_flight"],
                  "conns": h1_conns(), "took": round(took, 2)}))
PY
)
note "HTTP/1.1 reader that stops: $out"
assert_json "$out" busy 1 "h1: the backend is sending the response"
assert_json "$out" conns_busy 2 "h1: the stalled client's connection is open at first"
assert_json "$out" in_flight 0 "h1: after send_timeout_ms the backend's request is released"
assert_json "$out" conns 1 "h1: and the client's connection is closed"
took=$(json_get "$out" took)
assert_true "h1: released about send_timeout_ms (1 s) after the client stopped reading ($took s)" \
    $PY -c "import sys; sys.exit(not 0.9 <= $took <= 4)"

# ---- HTTP/2: one stream's window kept shut
out=$(timeout -k 2 30 $PY - "$GWP" "${BACKEND_PORT[b1]}" "$FG_SRCDIR/tests/tools" <<'PY'
import json, struct, sys, time, urllib.request
gw, be = int(sys.argv[1]), int(sys.argv[2])
sys.path.insert(0, sys.argv[3]); import h2raw

class Reader(h2raw.Conn):
    """Returns the connection's window always, a stream's only when
    stream_credit says so (None: always)."""
    stream_credit = {}
    def _frame(self, t, fl, sid, p):
        if t != h2raw.DATA:
            return super()._frame(t, fl, sid, p)
        self.body[sid] = self.body.get(sid, b"") + p
        if fl & h2raw.F_END_STREAM:
            self.ended.add(sid)
        if p:
            inc = struct.pack(">I", len(p))
            self.send(h2raw.frame(h2raw.WINDOW_UPDATE, 0, 0, inc))
            if self.stream_credit.get(sid) is None:
                self.send(h2raw.frame(h2raw.WINDOW_UPDATE, 0, sid, inc))
            else:
                self.stream_credit[sid] += len(p)

def in_flight():
    return json.loads(urllib.request.urlopen("http://127.0.0.1:%d/stats" % be, timeout=3).read())["in_flight"]   # /stats itself not counted

r = {}
c = Reader(gw)
stuck = c.request("/bytes/20000000")
c.stream_credit[stuck] = 0              # never given back
c.pump(1.5, until=lambda: len(c.body.get(stuck, b"")) >= 65535)
r["stuck_got"] = len(c.body.get(stuck, b""))
r["busy"] = in_flight()
# the connection stays busy meanwhile: a PING and a small request every 200 ms
t0 = time.monotonic()
small_ok = 0
while not c.done(stuck) and time.monotonic() - t0 < 6:
    c.send(h2raw.frame(h2raw.PING, 0, 0, b"12345678"))
    sid = c.request("/bytes/2000")
    c.pump(0.2, until=lambda: c.done(sid))
    small_ok += c.status.get(sid) == 200 and len(c.body.get(sid, b"")) == 2000
    time.sleep(0.05)
r["reset_after"] = round(time.monotonic() - t0, 2)
r["stuck_rst"] = c.rst.get(stuck)
r["small_ok"] = small_ok
time.sleep(0.3)
r["in_flight"] = in_flight()
# afterwards the connection still serves
sid = c.request("/bytes/5000")
c.pump(3, until=lambda: c.done(sid))
r["after"] = [c.status.get(sid), len(c.body.get(sid, b""))]
r["goaway"] = c.goaway
r["closed"] = c.closed

# a slow reader that keeps going: 32 KiB of window every 300 ms
slow = c.request("/bytes/400000")
c.stream_credit[slow] = 0
t0 = time.monotonic()
while not c.done(slow) and time.monotonic() - t0 < 20:
    c.pump(0.3, until=lambda: c.done(slow))
    if c.stream_credit[slow]:
        c.send(h2raw.frame(h2raw.WINDOW_UPDATE, 0, slow, struct.pack(">I", 32768)))
        c.stream_credit[slow] = max(0, c.stream_credit[slow] - 32768)
r["slow"] = [c.status.get(slow), len(c.body.get(slow, b"")), c.rst.get(slow),
             round(time.monotonic() - t0, 1)]
print(json.dumps(r))
PY
)
note "HTTP/2 stream kept stalled: $out"
assert_json "$out" stuck_got 65535 "h2: the stalled stream got the initial window's worth"
assert_json "$out" busy 1 "h2: the backend is sending the stalled stream's response"
assert_json "$out" stuck_rst 8 "h2: the stalled stream is reset (CANCEL)"
after=$(json_get "$out" reset_after)
assert_true "h2: ... about send_timeout_ms after it stalled ($after s after the first 64 KiB)" \
    $PY -c "import sys; sys.exit(not 0.5 <= $after <= 3)"
small=$(json_get "$out" small_ok)
assert_ge "$small" 3 "h2: other streams of the connection were served meanwhile"
assert_json "$out" in_flight 0 "h2: the backend's request is released"
assert_json "$out" after '[200,5000]' "h2: the connection still serves afterwards"
assert_json "$out" goaway null "h2: no GOAWAY"
assert_json "$out" slow.0 200 "h2: a slow reader that keeps going: 200"
assert_json "$out" slow.1 400000 "h2: ... and the whole body"
assert_json "$out" slow.2 null "h2: ... not reset"

# ---- a backend slow to send more is not a slow reader: SSE events 1.5 s
# apart, send_timeout_ms 1 s
for v in --http1.1 --http2-prior-knowledge; do
    code=$(fcurl $v -N -o "$T/sse" -w '%{http_code}' "$(gw_url '/sse?n=3&interval_ms=1500')")
    assert_eq 200 "$code" "$v SSE with gaps longer than send_timeout_ms: status"
    assert_eq 3 "$(grep -c '^data: ' "$T/sse")" "$v ... every event arrived"
done

cc=$(client_conns)
assert_eq "1/0" "$cc" "the gateway's client connections are back to idle"
finish
