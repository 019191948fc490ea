#!/bin/bash
# Fault injection on the client and backend sides, over HTTP/1.1 and h2c
# (the fault-injection points that no other test covers).
#
# 1. A backend that reads request bodies slowly (~300 KiB/s, small receive
#    buffer; a python3 server written below that answers with the byte count
#    and sha256 of what it got): 3 MiB uploads over HTTP/1.1 (Content-Length
#    and chunked) and h2c, all at once, arrive intact, and the gateway
#    applies back-pressure instead of buffering them (its peak RSS grows by
#    far less than the bodies). The gateway asks client.body_min_rate
#    1 MB/s with client.body_timeout_ms 2000, which the uploads (~10 s for
#    3 MiB) would miss if time spent not reading because of the backend
#    were held against the client: so this also checks that it is not.
# 2. A client that goes away mid-upload (HTTP/1.1 close; h2c close; h2c
#    RST_STREAM CANCEL with the connection kept and used again), 20 times
#    each, to fg-testbackend's /echo.
# 3. A client that goes away mid-download of /bytes/200000000 (the same
#    three ways), 20 times each.
# After each of 2 and 3: the backend has no request in flight (the gateway
# closed the upstream connection of the exchange it abandoned rather than
# pooling it or leaving it open), its open connections did not pile up, the
# gateway's open file descriptors and its client-connection gauge are back
# to their idle values, and it still answers over both protocols.
# One worker, so that the fd count and the keep-alive pool are one process's.
. "$(dirname "$0")/lib.sh"
require_cmd curl sha256sum

TOOLS=$FG_SRCDIR/tests/tools
REPEAT=20
UPLOAD_BYTES=$((3 * 1024 * 1024))
SLOW_RATE=$((300 * 1024))      # bytes/s the slow backend reads

# ---- the slow backend ------------------------------------------------------
cat >"$T/slow.py" <<'PY'
import hashlib, json, socket, sys, threading, time
PORT, RATE = int(sys.argv[1]), int(sys.argv[2])
ls = socket.socket()
ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
# before listen(), so that accepted sockets inherit it (and the kernel does
# not grow it): the gateway's writes block soon
ls.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 8192)
ls.bind(("127.0.0.1", PORT))
ls.listen(64)
lock = threading.Lock()

def log(*a):
    with lock:
        print(*a, flush=True)

class Reader:
    def __init__(self, c):
        self.c, self.buf = c, b""

    def fill(self):
        d = self.c.recv(16384)
        if not d:
            raise EOFError
        time.sleep(len(d) / RATE)
        self.buf += d

    def line(self):
        while b"\r\n" not in self.buf:
            self.fill()
        l, _, self.buf = self.buf.partition(b"\r\n")
        return l

    def body(self, n, h):
        while n:
            if not self.buf:
                self.fill()
            k = min(n, len(self.buf))
            h.update(self.buf[:k])
            self.buf = self.buf[k:]
            n -= k

def serve(c, cid):
    r = Reader(c)
    try:
        while True:
            while b"\r\n\r\n" not in r.buf:
                r.fill()
            head, _, r.buf = r.buf.partition(b"\r\n\r\n")
            lines = head.split(b"\r\n")
            hdrs = {}
            for l in lines[1:]:
                k, _, v = l.partition(b":")
                hdrs[k.strip().lower().decode("latin-1")] = v.strip().decode("latin-1")
            if hdrs.get("expect", "").lower() == "100-continue":
                c.sendall(b"HTTP/1.1 100 Continue\r\n\r\n")
            h, n = hashlib.sha256(), 0
            chunked = "chunked" in hdrs.get("transfer-encoding", "").lower()
            t0 = time.monotonic()
            if chunked:
                while True:
                    size = int(r.line().split(b";")[0], 16)
                    if size == 0:
                        while r.line():
                            pass
                        break
                    r.body(size, h)
                    n += size
                    if r.line():
                        raise ValueError("no CRLF after a chunk")
            else:
                n = int(hdrs.get("content-length", "0"))
                r.body(n, h)
            secs = round(time.monotonic() - t0, 2)
            log("conn %d: %s, %d bytes%s in %.2f s" % (cid, lines[0].decode("latin-1"), n,
                                                       " (chunked)" if chunked else "", secs))
            body = json.dumps({"bytes": n, "sha256": h.hexdigest(), "chunked": chunked,
                               "secs": secs}).encode()
            c.sendall(b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n"
                      b"content-length: %d\r\n\r\n" % len(body) + body)
    except (EOFError, OSError, ValueError) as e:
        log("conn %d: closed (%s)" % (cid, type(e).__name__))
    finally:
        c.close()

cid = 0
print("listening", flush=True)
while True:
    c, _ = ls.accept()
    cid += 1
    threading.Thread(target=serve, args=(c, cid), daemon=True).start()
PY

# ---- the clients of parts 2 and 3 -------------------------------------------
# faults.py PORT TOOLS MODE N: N times the fault MODE; prints one JSON line
# {"mode", "ok": iterations that went as planned, "errors": [first few]}
cat >"$T/faults.py" <<'PY'
import json, socket, sys, time
PORT, MODE, N = int(sys.argv[1]), sys.argv[3], int(sys.argv[4])
sys.path.insert(0, sys.argv[2])
import h2raw

MB = 1000000
BIG = 200000000

def h1_upload_close():
    s = socket.create_connection(("127.0.0.1", PORT), timeout=5)
    s.sendall(b"POST /echo HTTP/1.1\r\nhost: faults.test\r\ncontent-type: application/octet-stream\r\n"
              b"content-length: 10000000\r\n\r\n")
    chunk = b"u" * 65536
    sent = 0
    while sent < MB:
        s.sendall(chunk)
        sent += len(chunk)
    time.sleep(0.05)          # the gateway is forwarding it now
    s.close()
    return None

def h1_download_close():
    s = socket.create_connection(("127.0.0.1", PORT), timeout=5)
    s.sendall(b"GET /bytes/%d HTTP/1.1\r\nhost: faults.test\r\n\r\n" % BIG)
    buf = b""
    while len(buf) < MB:
        d = s.recv(262144)
        if not d:
            break
        buf += d
    s.close()
    if not buf.startswith(b"HTTP/1.1 200 "):
        return "status line %r" % buf[:40]
    if len(buf) < MB:
        return "only %d bytes before the close" % len(buf)
    return None

def h2_conn():
    c = h2raw.Conn(PORT)
    c.pump(0.05)              # the gateway's SETTINGS (its 256 KiB stream window)
    return c

def h2_upload(c):
    sid = c.request("/echo", "POST", end_stream=False,
                    extra=[("content-length", "10000000"),
                           ("content-type", "application/octet-stream")])
    for _ in range(12):       # 192 KiB, within the stream's window
        c.data(sid, b"u" * 16384)
    c.pump(0.05)
    return sid

def h2_download(c):
    sid = c.request("/bytes/%d" % BIG)
    c.pump(5, until=lambda: len(c.body.get(sid, b"")) >= MB or c.done(sid))
    return sid

def h2_after(c, sid):
    """RST_STREAM CANCEL on sid, then a normal request on the same connection."""
    c.reset(sid)
    after = c.request("/echo")
    c.pump(5, until=lambda: c.done(after))
    st = c.status.get(after)
    if st != 200 or after not in c.ended:
        return "request after the RST_STREAM: status %s, ended %s, closed %s, goaway %s" % (
            st, after in c.ended, c.closed, c.goaway)
    return None

def h2_upload_close():
    c = h2_conn()
    h2_upload(c)
    c.close()
    return None if not c.closed else "gateway closed the connection mid-upload"

def h2_upload_rst():
    c = h2_conn()
    sid = h2_upload(c)
    err = h2_after(c, sid)
    c.close()
    return err

def h2_download_close():
    c = h2_conn()
    sid = h2_download(c)
    got = len(c.body.get(sid, b""))
    c.close()
    if c.status.get(sid) != 200 or got < MB:
        return "status %s, %d bytes" % (c.status.get(sid), got)
    return None

def h2_download_rst():
    c = h2_conn()
    sid = h2_download(c)
    got = len(c.body.get(sid, b""))
    err = None
    if c.status.get(sid) != 200 or got < MB:
        err = "status %s, %d bytes" % (c.status.get(sid), got)
    err = h2_after(c, sid) or err
    c.close()
    return err

fn = globals()[MODE]
ok, errors = 0, []
for i in range(N):
    try:
        e = fn()
    except Exception as ex:
        e = "%s: %s" % (type(ex).__name__, ex)
    if e is None:
        ok += 1
    elif len(errors) < 3:
        errors.append("#%d %s" % (i, e))
print(json.dumps({"mode": MODE, "ok": ok, "errors": errors}))
PY

# ---- daemons ----------------------------------------------------------------
start_backend b1
pick_port SP
$PY "$T/slow.py" "$SP" "$SLOW_RATE" >"$T/slow-backend.log" 2>&1 &
SLOW_PID=$!
fg_track_pid $SLOW_PID
wait_port "$SP" 10 $SLOW_PID || die "slow backend did not start: $(tail -n 5 "$T/slow-backend.log")"
note "slow backend on 127.0.0.1:$SP (pid $SLOW_PID, reads $SLOW_RATE B/s)"

pick_port GWP
pick_port ADM
write_config "$T/gw.json" <<JSON
{
  "workers": 1,
  "listeners": [ { "address": "127.0.0.1:$GWP" } ],
  "admin": { "address": "127.0.0.1:$ADM" },
  "client": { "body_timeout_ms": 2000, "body_min_rate": 1000000 },
  "upstreams": {
    "main": { "backends": [ { "address": "${BACKEND_ADDR[b1]}" } ] },
    "slow": { "backends": [ { "address": "127.0.0.1:$SP" } ] }
  },
  "routes": [ { "match": { "path_prefix": "/slow" }, "upstream": "slow" },
              { "match": { "path_prefix": "/" }, "upstream": "main" } ]
}
JSON
start_gateway "$T/gw.json"

gw_fds() { ls "/proc/$GW_PID/fd" 2>/dev/null | wc -l; }
# client_conns: fleetgate_client_connections as "H1/H2" (cleartext; the
# scrape's own HTTP/1.1 connection to the admin listener counts: 1 when idle)
client_conns() {
    fcurl "http://127.0.0.1:$ADM/metrics" | awk '
        $1 == "fleetgate_client_connections{protocol=\"http/1.1\",tls=\"false\"}" { h1 = $2 }
        $1 == "fleetgate_client_connections{protocol=\"h2\",tls=\"false\"}" { h2 = $2 }
        END { print (h1 == "" ? "absent" : h1) "/" (h2 == "" ? "absent" : h2) }'
}
# answers LABEL: the gateway serves /echo over both protocols
answers() {
    local v code
    for v in --http1.1 --http2-prior-knowledge; do
        code=$(fcurl $v -o /dev/null -w '%{http_code}' "$(gw_url /echo)")
        assert_eq 200 "$code" "$1: the gateway still answers ($v)"
    done
}

# warm-up: one request per protocol on each upstream path
for v in --http1.1 --http2-prior-knowledge; do
    code=$(fcurl $v -o /dev/null -w '%{http_code}' "$(gw_url /echo)")
    assert_eq 200 "$code" "warm-up $v /echo"
    code=$(fcurl $v -o "$T/w.json" -w '%{http_code}' --data-binary 'hello' "$(gw_url /slow/warm)")
    assert_eq 200 "$code" "warm-up $v POST to the slow backend"
    assert_json "$(cat "$T/w.json")" bytes 5 "warm-up $v: the slow backend got the 5 bytes"
done

# ============ 1. uploads to a slow reader ====================================
head -c $UPLOAD_BYTES /dev/urandom >"$T/upload.bin"
UP_SHA=$(sha256_file "$T/upload.bin")
hwm0=$(vm_hwm_kb "$GW_PID")
note "gateway VmHWM before the uploads: $hwm0 KiB"
t0=$SECONDS
fcurl --http1.1 --max-time 60 -o "$T/up-h1.json" -w '%{http_code}' \
    --data-binary @"$T/upload.bin" "$(gw_url /slow/h1)" >"$T/up-h1.code" 2>"$T/up-h1.err" &
p1=$!
fcurl --http1.1 --max-time 60 -o "$T/up-h1c.json" -w '%{http_code}' -H 'Transfer-Encoding: chunked' \
    --data-binary @"$T/upload.bin" "$(gw_url /slow/h1c)" >"$T/up-h1c.code" 2>"$T/up-h1c.err" &
p2=$!
fcurl --http2-prior-knowledge --max-time 60 -o "$T/up-h2.json" -w '%{http_code}' \
    --data-binary @"$T/upload.bin" "$(gw_url /slow/h2)" >"$T/up-h2.code" 2>"$T/up-h2.err" &
p3=$!
wait $p1 $p2 $p3
up_secs=$((SECONDS - t0))
hwm1=$(vm_hwm_kb "$GW_PID")
note "3 concurrent uploads of $UPLOAD_BYTES bytes took $up_secs s; gateway VmHWM $hwm0 -> $hwm1 KiB"
for u in h1 h1c h2; do
    j=$(cat "$T/up-$u.json" 2>/dev/null)
    note "upload $u: $(cat "$T/up-$u.code") $j $(head -c 300 "$T/up-$u.err")"
    assert_eq 200 "$(cat "$T/up-$u.code")" "upload $u to the slow backend: status (body_min_rate does not count back-pressure)"
    assert_json "$j" bytes $UPLOAD_BYTES "upload $u: the backend got every byte"
    assert_json "$j" sha256 "$UP_SHA" "upload $u: the backend got the same bytes (sha256)"
done
assert_json "$(cat "$T/up-h1c.json")" chunked true "upload h1c: forwarded chunked"
# the uploads must have been slowed down by the backend (back-pressure for
# several seconds, more than body_timeout_ms + what the bytes earn at
# body_min_rate: 2 s + ~3 s), else this proves nothing about the rate clock
assert_ge "$up_secs" 7 "the uploads waited on the slow backend (s)"
if gw_built_with_sanitizers; then
    note "gateway built with sanitizers: peak RSS not checked"
else
    # 3 bodies of 3 MiB went through at once: buffering them would add 9 MiB
    assert_le $((hwm1 - hwm0)) $((UPLOAD_BYTES / 1024)) \
        "gateway peak RSS growth during 3 concurrent 3 MiB uploads (KiB; buffered bodies would be 9216)"
fi

# ============ baseline for 2 and 3 ===========================================
sleep 0.3
FD0=$(gw_fds)
CC0=$(client_conns)
ACT0=$(backend_stat b1 active)
note "idle gateway: $FD0 fds, client connections http/1.1/h2 $CC0; backend b1 active $ACT0"
assert_eq 1/0 "$CC0" "idle gateway: fleetgate_client_connections http/1.1/h2 (the scrape's own connection only)"
FD_SLACK=3

# released LABEL: after a fault loop, everything goes back to idle (polled
# for up to 5 s)
released() {
    local label=$1 i inf fds cc act
    for ((i = 0; i < 50; i++)); do
        inf=$(backend_stat b1 in_flight)
        fds=$(gw_fds)
        cc=$(client_conns)
        [ "$inf" == 0 ] && [ "$fds" -le $((FD0 + FD_SLACK)) ] && [ "$cc" == "$CC0" ] && break
        sleep 0.1
    done
    act=$(backend_stat b1 active)
    note "$label: after $((i / 10)).$((i % 10)) s: backend in_flight $inf active $act; gateway fds $fds (idle $FD0), client connections http/1.1/h2 $cc"
    assert_eq 0 "$inf" "$label: backend has no request in flight"
    assert_le "$act" $((ACT0 + 3)) "$label: backend's open connections did not pile up"
    assert_le "$fds" $((FD0 + FD_SLACK)) "$label: gateway's open fds back to idle ($FD0 + $FD_SLACK)"
    assert_eq "$CC0" "$cc" "$label: gateway's client connections gauge back to idle"
    answers "$label"
}

# fault MODE: REPEAT times, and the backend saw EXPECT more requests
fault() {
    local mode=$1 out r0 r1
    r0=$(backend_stat b1 requests)
    out=$(timeout -k 5 60 $PY "$T/faults.py" "$GW_PORT" "$TOOLS" "$mode" "$REPEAT" 2>"$T/$mode.err")
    r1=$(backend_stat b1 requests)
    note "$mode: $out $(tail -n 2 "$T/$mode.err")"
    assert_json "$out" ok $REPEAT "$mode: iterations that went as planned"
    # every aborted exchange reached the backend (so its release means something);
    # the RST variants add one /echo each
    case $mode in
        *_rst) assert_eq $((2 * REPEAT)) $((r1 - r0)) "$mode: requests the backend saw" ;;
        *) assert_eq $REPEAT $((r1 - r0)) "$mode: requests the backend saw" ;;
    esac
    released "$mode"
}

# ============ 2. clients gone mid-upload =====================================
fault h1_upload_close
fault h2_upload_close
fault h2_upload_rst

# ============ 3. clients gone mid-download ===================================
fault h1_download_close
fault h2_download_close
fault h2_download_rst

assert_true "the slow backend is still running" kill -0 "$SLOW_PID"
finish
