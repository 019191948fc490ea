#!/bin/bash
# The minimum receive rate of request bodies (client.body_timeout_ms and
# client.body_min_rate): a body that stalls, or trickles in below the rate,
# ends with 408 request_timeout while no response has started, and with the
# connection closed (HTTP/1.1) or the stream reset (HTTP/2) once one has;
# a body that keeps the rate is served; on HTTP/2 a slow stream does not
# disturb the others on its connection. The backend side is released.
# (Time the gateway spends not reading because the backend is slow is not
# held against the client: tests/e2e/faults.sh uploads to a slow reader.)
. "$(dirname "$0")/lib.sh"

start_backend b1

# a backend that answers at once, before the request body, and finishes its
# chunked response only when the whole body came
pick_port EP
cat >"$T/early.py" <<'PY'
import socket, sys, threading, time
ls = socket.socket()
ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
ls.bind(("127.0.0.1", int(sys.argv[1])))
ls.listen(64)
def serve(c):
    c.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    buf = b""
    try:
        while b"\r\n\r\n" not in buf:
            d = c.recv(65536)
            if not d:
                return
            buf += d
        head, rest = buf.split(b"\r\n\r\n", 1)
        if b" /early-drop" in head.split(b"\r\n")[0]:
            # a whole answer at once; the body is never read
            c.sendall(b"HTTP/1.1 200 OK\r\ncontent-length: 4\r\n\r\ndone")
            time.sleep(20)
            return
        n = 0
        for line in head.split(b"\r\n")[1:]:
            k, _, v = line.partition(b":")
            if k.strip().lower() == b"content-length":
                n = int(v)
        c.sendall(b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n5\r\nfirst\r\n")
        got = len(rest)
        while got < n:
            d = c.recv(65536)
            if not d:
                return
            got += len(d)
        c.sendall(b"4\r\nlast\r\n0\r\n\r\n")
        c.recv(1)
    except OSError:
        pass
    finally:
        c.close()
while True:
    c, _ = ls.accept()
    threading.Thread(target=serve, args=(c,), daemon=True).start()
PY
$PY "$T/early.py" "$EP" >"$T/early.log" 2>&1 &
fg_track_pid $!
wait_port "$EP" 10 $! || die "early backend did not start: $(cat "$T/early.log")"

pick_port GWP
write_config "$T/gw.json" <<JSON
{
  "workers": 1,
  "listeners": [ { "address": "127.0.0.1:$GWP" } ],
  "client": { "body_timeout_ms": 1000, "body_min_rate": 1000 },
  "upstreams": {
    "main": { "backends": [ { "address": "${BACKEND_ADDR[b1]}" } ] },
    "early": { "backends": [ { "address": "127.0.0.1:$EP" } ] }
  },
  "routes": [ { "match": { "path_prefix": "/early" }, "upstream": "early" },
              { "match": { "path_prefix": "/" }, "upstream": "main" } ]
}
JSON
start_gateway "$T/gw.json"

# body_rate.py PORT: runs every case at once (each on its own connection)
# and prints one line per case: NAME <tab> JSON
cat >"$T/body_rate.py" <<'PY'
import json, socket, sys, threading, time
sys.path.insert(0, sys.argv[2])
import h2raw
PORT = int(sys.argv[1])
out, lock = [], threading.Lock()

def report(name, r):
    with lock:
        out.append("%s\t%s" % (name, json.dumps(r)))

def h1(name, path, length, first, step, every, secs):
    """Sends a head with Content-Length LENGTH and FIRST body bytes, then
    STEP bytes every EVERY seconds for SECS seconds (or until the answer)."""
    s = socket.create_connection(("127.0.0.1", PORT), timeout=5)
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    t0 = time.monotonic()
    s.sendall(("POST %s HTTP/1.1\r\nhost: t\r\ncontent-length: %d\r\n\r\n" % (path, length)).encode()
              + b"a" * first)
    sent, buf, closed, next_t = first, b"", False, t0 + every
    while time.monotonic() - t0 < secs:
        if step and sent < length and time.monotonic() >= next_t:
            n = min(step, length - sent)
            try:
                s.sendall(b"a" * n)
            except OSError:
                pass
            sent += n
            next_t += every
        s.settimeout(0.02)
        try:
            d = s.recv(65536)
        except socket.timeout:
            continue
        except OSError:
            d = b""
        if not d:
            closed = True
            break
        buf += d
        h, _, b = buf.partition(b"\r\n\r\n")
        cl = [l for l in h.split(b"\r\n") if l.lower().startswith(b"content-length:")]
        if cl and len(b) >= int(cl[0].split(b":")[1]):
            # complete: does the gateway close after it, as it said?
            s.settimeout(1)
            try:
                closed = s.recv(1) == b""
            except socket.timeout:
                closed = False
            except OSError:
                closed = True
            break
    t = round(time.monotonic() - t0, 3)
    head, _, body = buf.partition(b"\r\n\r\n")
    status = int(head.split(b" ")[1]) if head.startswith(b"HTTP/1.1 ") else -1
    report(name, {"status": status, "closed": closed, "t": t, "sent": sent,
                  "head": head.decode("latin-1"), "body": body.decode("latin-1")})

def h1_drop(name):
    """A 4 MiB body to a backend that answers at once and never reads it:
    the gateway, paused for that backend, must read the rest of the body
    once the answer is complete, and the connection serve the next request."""
    s = socket.create_connection(("127.0.0.1", PORT), timeout=15)
    n = 4 << 20
    s.sendall(("POST /early-drop HTTP/1.1\r\nhost: t\r\ncontent-length: %d\r\n\r\n" % n).encode())
    err = None
    try:
        s.sendall(b"a" * n)
        s.sendall(b"GET /echo HTTP/1.1\r\nhost: t\r\n\r\n")
    except OSError as e:
        err = type(e).__name__
    buf, statuses = b"", []
    s.settimeout(5)
    try:
        while len(statuses) < 2:
            d = s.recv(65536)
            if not d:
                break
            buf += d
            while b"\r\n\r\n" in buf:
                head, rest = buf.split(b"\r\n\r\n", 1)
                cl = [l for l in head.split(b"\r\n") if l.lower().startswith(b"content-length:")]
                m = int(cl[0].split(b":")[1]) if cl else 0
                if len(rest) < m:
                    break
                statuses.append(int(head.split(b" ")[1]))
                buf = rest[m:]
    except OSError as e:
        err = err or type(e).__name__
    report(name, {"statuses": statuses, "error": err})

def h2_answered(name):
    """A request refused at its head (413: content-length over max_body_bytes)
    whose body then stalls: the stream is reset once the body is too slow."""
    c = h2raw.Conn(PORT)
    sid = c.request("/echo", "POST", end_stream=False, extra=[("content-length", "200000000")])
    c.data(sid, b"a" * 10)
    c.pump(5, until=lambda: sid in c.rst or c.closed)
    report(name, {"status": c.status.get(sid), "rst": c.rst.get(sid), "t": round(c.elapsed(), 3)})

def h2(name, cases, secs=8):
    """CASES: [(path, length, first, step, every)] as streams of one
    connection; after them all, a GET on the same connection."""
    c = h2raw.Conn(PORT)
    sids = []
    for path, length, first, step, every in cases:
        sid = c.request(path, "POST", end_stream=False, extra=[("content-length", str(length))])
        c.data(sid, b"a" * first, end_stream=first == length)
        sids.append([sid, first, c.elapsed() + every, None])
    while c.elapsed() < secs and not all(c.done(s[0]) for s in sids):
        for st, (path, length, first, step, every) in zip(sids, cases):
            sid = st[0]
            if c.done(sid):
                if st[3] is None:
                    st[3] = round(c.elapsed(), 3)
                continue
            if step and st[1] < length and c.elapsed() >= st[2]:
                n = min(step, length - st[1])
                c.data(sid, b"a" * n, end_stream=st[1] + n == length)
                st[1] += n
                st[2] += every
        c.pump(0.02)
    res = []
    for st in sids:
        sid = st[0]
        res.append({"status": c.status.get(sid), "rst": c.rst.get(sid), "sent": st[1],
                    "t": st[3] if st[3] is not None else round(c.elapsed(), 3),
                    "body": c.body.get(sid, b"").decode("latin-1")})
    after = c.request("/echo")
    c.pump(5, until=lambda: c.done(after))
    report(name, {"streams": res, "after": c.status.get(after), "goaway": c.goaway,
                  "closed": c.closed})

cases = [
    # a body that stops: 10 of 1000 bytes, then nothing
    threading.Thread(target=h1, args=("h1_stall", "/echo", 1000, 10, 0, 1, 6)),
    # 100 bytes every 200 ms, 500 B/s: each 200 ms costs 200 ms of credit
    # and earns 100: out after ~2 s, where a gap timeout alone never fires
    threading.Thread(target=h1, args=("h1_trickle", "/echo", 100000, 100, 100, 0.2, 8)),
    # 300 bytes every 100 ms, 3000 B/s: served
    threading.Thread(target=h1, args=("h1_steady", "/echo", 6000, 300, 300, 0.1, 8)),
    # answered before the body, which then stalls: cut, never complete
    threading.Thread(target=h1, args=("h1_early", "/early", 100000, 10, 0, 1, 6)),
    threading.Thread(target=h1_drop, args=("h1_early_drop",)),
    threading.Thread(target=h2, args=("h2_stall", [("/echo", 1000, 10, 0, 1)])),
    threading.Thread(target=h2, args=("h2_trickle", [("/echo", 100000, 100, 100, 0.2)])),
    # a stalled and a steady stream side by side
    threading.Thread(target=h2, args=("h2_mixed", [("/echo", 1000, 10, 0, 1),
                                                   ("/echo", 6000, 300, 300, 0.1)])),
    threading.Thread(target=h2, args=("h2_early", [("/early", 100000, 10, 0, 1)])),
    threading.Thread(target=h2_answered, args=("h2_answered_stall",)),
]
for t in cases: t.start()
for t in cases: t.join()
print("\n".join(sorted(out)))
PY

timeout -k 5 30 $PY "$T/body_rate.py" "$GW_PORT" "$FG_SRCDIR/tests/tools" >"$T/out" 2>"$T/err"
rc=$?
assert_eq 0 "$rc" "the clients ran to the end: $(tail -n 3 "$T/err")"
r() { awk -F'\t' -v n="$1" '$1 == n { print $2 }' "$T/out"; }
for c in h1_stall h1_trickle h1_steady h1_early h1_early_drop h2_stall h2_trickle h2_mixed h2_early h2_answered_stall; do
    note "$c: $(r $c | head -c 600)"
done

# ---- HTTP/1.1
for c in h1_stall h1_trickle; do
    assert_json "$(r $c)" status 408 "$c: status"
    assert_error_json "$(json_get "$(r $c)" body)" 408 request_timeout "$c: body"
    assert_json "$(r $c)" closed true "$c: connection closed"
done
t=$(json_get "$(r h1_stall)" t)
assert_true "h1_stall: 408 after ~body_timeout_ms (0.9..2.6 s, was $t)" \
    $PY -c "import sys; sys.exit(not 0.9 <= $t <= 2.6)"
t=$(json_get "$(r h1_trickle)" t)
assert_true "h1_trickle: 408 once the credit is spent (1.6..4.5 s, was $t)" \
    $PY -c "import sys; sys.exit(not 1.6 <= $t <= 4.5)"
assert_json "$(r h1_steady)" status 200 "h1_steady: status"
assert_json "$(json_get "$(r h1_steady)" body)" body_bytes 6000 "h1_steady: the backend got the whole body"
assert_match "$(json_get "$(r h1_early)" head)" '^HTTP/1.1 200' "h1_early: the early answer's head came"
assert_json "$(r h1_early)" closed true "h1_early: connection closed"
assert_not_contains "$(json_get "$(r h1_early)" body)" "0"$'\r\n\r\n' "h1_early: no last chunk (never looks complete)"
t=$(json_get "$(r h1_early)" t)
assert_true "h1_early: cut after ~body_timeout_ms (0.9..2.6 s, was $t)" \
    $PY -c "import sys; sys.exit(not 0.9 <= $t <= 2.6)"

assert_json "$(r h1_early_drop)" statuses '[200,200]' \
    "h1_early_drop: answered before its 4 MiB body was read, then the next request on the connection"

# ---- HTTP/2
for c in h2_stall h2_trickle; do
    assert_json "$(r $c)" streams.0.status 408 "$c: status"
    assert_error_json "$(json_get "$(r $c)" streams.0.body)" 408 request_timeout "$c: body"
    assert_json "$(r $c)" streams.0.rst 0 "$c: then RST_STREAM NO_ERROR: the stream closes (RFC 9113 8.1)"
    assert_json "$(r $c)" after 200 "$c: the connection serves another request"
done
t=$(json_get "$(r h2_stall)" streams.0.t)
assert_true "h2_stall: 408 after ~body_timeout_ms (0.9..2.6 s, was $t)" \
    $PY -c "import sys; sys.exit(not 0.9 <= $t <= 2.6)"
t=$(json_get "$(r h2_trickle)" streams.0.t)
assert_true "h2_trickle: 408 once the credit is spent (1.6..4.5 s, was $t)" \
    $PY -c "import sys; sys.exit(not 1.6 <= $t <= 4.5)"
assert_json "$(r h2_mixed)" streams.0.status 408 "h2_mixed: the stalled stream: 408"
assert_json "$(r h2_mixed)" streams.1.status 200 "h2_mixed: the steady stream beside it: 200"
assert_json "$(json_get "$(r h2_mixed)" streams.1.body)" body_bytes 6000 "h2_mixed: the steady stream's body arrived whole"
assert_json "$(r h2_early)" streams.0.status 200 "h2_early: the early answer's head came"
assert_json "$(r h2_early)" streams.0.rst 8 "h2_early: then RST_STREAM CANCEL"
assert_json "$(r h2_answered_stall)" status 413 "h2_answered_stall: refused at its head"
assert_json "$(r h2_answered_stall)" rst 0 "h2_answered_stall: its stalled body then ends the stream (RST_STREAM NO_ERROR)"
t=$(json_get "$(r h2_answered_stall)" t)
assert_true "h2_answered_stall: reset after ~body_timeout_ms (0.9..2.6 s, was $t)" \
    $PY -c "import sys; sys.exit(not 0.9 <= $t <= 2.6)"
assert_json "$(r h2_early)" after 200 "h2_early: the connection serves another request"

# ---- nothing held on the backend side
for ((i = 0; i < 50; i++)); do
    st=$(fcurl "http://${BACKEND_ADDR[b1]}/stats")
    [ "$(json_get "$st" in_flight)" == 0 ] && break
    sleep 0.1
done
assert_json "$st" in_flight 0 "backend: no request of a timed-out body still in flight"
assert_true "the gateway is still running" kill -0 "$GW_PID"
finish
