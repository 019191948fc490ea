#!/bin/bash
# HTTP/2 strictness and attacks (RFC 9113), issue 9 point 2: a raw HTTP/2
# client (prior knowledge, frames and HPACK written by hand) against the
# gateway. For each case: the reaction the RFC asks for, that the backend
# received nothing it should not have (fg-testbackend's /stats and its -v
# log, one line per request it answered), that the gateway's memory stayed
# bounded (VmRSS sampled every 5 ms during the attack), and that the gateway
# still serves a normal request afterwards.
#
#  1. stream errors: uppercase field name, connection-specific fields, missing,
#     repeated and misplaced pseudo-headers, content-length vs DATA
#  2. rapid reset (CVE-2023-44487): HEADERS + RST_STREAM(CANCEL) in a burst
#  3. CONTINUATION flood (CVE-2024-28182 in nghttp2)
#  4. header list size: one huge field, many small ones, an HPACK bomb
#     (one big dynamic-table entry referenced thousands of times)
#  5. floods: SETTINGS, a SETTINGS frame of 1000 parameters, PING (ACKs not
#     read), PRIORITY, WINDOW_UPDATE on the connection and on a stream, empty
#     DATA frames; SETTINGS and PING again, paced so that nghttp2's cap on
#     queued ACKs is not reached within one read (memory must stay bounded)
#  6. SETTINGS_MAX_CONCURRENT_STREAMS exceeded (client ACKed the server's
#     SETTINGS, and client that did not)
#
# Every case prints the client's record of what the gateway did ("# case
# NAME: {json}"): frames received by type, GOAWAY code and last stream id,
# RST_STREAM codes, statuses, RSS before / peak / after in KiB, the CPU time
# the gateway spent, and the reason nghttp2 gave when it ended a connection
# (the gateway runs with debug logging).
FG_TEST_TIMEOUT=${FG_TEST_TIMEOUT:-150}
. "$(dirname "$0")/lib.sh"
require_cmd curl
curl -V | grep -q HTTP2 || skip "curl without HTTP/2"

# RSS growth allowed during one attack (KiB); not checked under sanitizers
RSS_BOUND_KB=16384
CHECK_RSS=1
if gw_built_with_sanitizers; then
    CHECK_RSS=0
    note "gateway built with sanitizers: RSS figures are reported, not checked"
fi

start_backend b1 -v
simple_config "$T/gw.json" b1
# debug logging: the gateway logs why nghttp2 ended a connection
$PY - "$T/gw.json" <<'EOF'
import json, sys
c = json.load(open(sys.argv[1]))
c["log"] = {"level": "debug"}
json.dump(c, open(sys.argv[1], "w"), indent=1)
EOF
start_gateway "$T/gw.json"
BLOG=$T/backend-b1.log

# ---- the raw HTTP/2 client ---------------------------------------------------
# h2x.py PORT GATEWAY_PID CASE [ARG]: runs one case and prints one JSON object
# (frames and HPACK from tests/tools/h2raw.py, on PYTHONPATH).
cat >"$T/h2x.py" <<'PYEOF'
import json, os, socket, struct, sys, threading, time

PORT, GWPID, CASE = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
ARG = sys.argv[4] if len(sys.argv) > 4 else ""

from h2raw import (PREFACE, DATA, HEADERS, PRIORITY, RST_STREAM, SETTINGS, PUSH_PROMISE,
                   PING, GOAWAY, WINDOW_UPDATE, CONTINUATION, F_END_STREAM, F_ACK,
                   F_END_HEADERS, CANCEL, frame, parse_status)
from h2raw import hpack_int as hint, hpack_str as hstr, literal as lit

TYPES = ["DATA", "HEADERS", "PRIORITY", "RST_STREAM", "SETTINGS", "PUSH_PROMISE",
         "PING", "GOAWAY", "WINDOW_UPDATE", "CONTINUATION"]
F_PADDED, F_PRIORITY = 0x8, 0x20
ERRORS = ["NO_ERROR", "PROTOCOL_ERROR", "INTERNAL_ERROR", "FLOW_CONTROL_ERROR",
          "SETTINGS_TIMEOUT", "STREAM_CLOSED", "FRAME_SIZE_ERROR", "REFUSED_STREAM",
          "CANCEL", "COMPRESSION_ERROR", "CONNECT_ERROR", "ENHANCE_YOUR_CALM",
          "INADEQUATE_SECURITY", "HTTP_1_1_REQUIRED"]
MAX_FRAME = 16384


def errname(c):
    return ERRORS[c] if c < len(ERRORS) else "0x%x" % c


# ---- HPACK beyond tests/tools/h2raw.py: the dynamic table, for the bombs
def lit_incr(name, value):      # literal with incremental indexing, new name
    return b"\x40" + hstr(name) + hstr(value)


def indexed(i):                 # indexed header field
    return hint(i, 7, 0x80)


def req(path, method="GET", extra=(), omit=()):
    hs = [(":method", method), (":scheme", "http"), (":path", path),
          (":authority", "h2attack.test")]
    hs = [h for h in hs if h[0] not in omit] + list(extra)
    return b"".join(lit(n, v) for n, v in hs)


def headers(sid, block, end_stream=True):
    """HEADERS (+ CONTINUATION when the block is over 16 KiB)."""
    parts = [block[i:i + MAX_FRAME] for i in range(0, len(block), MAX_FRAME)] or [b""]
    out = b""
    for i, p in enumerate(parts):
        last = i == len(parts) - 1
        if i == 0:
            fl = (F_END_STREAM if end_stream else 0) | (F_END_HEADERS if last else 0)
            out += frame(HEADERS, fl, sid, p)
        else:
            out += frame(CONTINUATION, F_END_HEADERS if last else 0, sid, p)
    return out


# ---- the gateway's memory
def rss_kb():
    try:
        with open("/proc/%d/status" % GWPID) as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except Exception:
        pass
    return -1


def cpu_ms():
    try:
        with open("/proc/%d/stat" % GWPID) as f:
            st = f.read().rsplit(")", 1)[1].split()
        return (int(st[11]) + int(st[12])) * 1000 // os.sysconf("SC_CLK_TCK")
    except Exception:
        return -1


class Rss:
    """VmRSS of the gateway sampled every 5 ms, and the CPU time it used."""
    def __init__(self):
        self.cpu0 = cpu_ms()
        self.before = self.peak = rss_kb()
        self.stop = False
        self.t = threading.Thread(target=self.run, daemon=True)
        self.t.start()

    def run(self):
        while not self.stop:
            v = rss_kb()
            if v > self.peak:
                self.peak = v
            time.sleep(0.005)

    def done(self):
        self.stop = True
        self.t.join()
        time.sleep(0.2)
        return {"rss_before_kb": self.before, "rss_peak_kb": self.peak,
                "rss_after_kb": rss_kb(), "rss_growth_kb": self.peak - self.before,
                "gateway_cpu_ms": cpu_ms() - self.cpu0}


# ---- one connection
class Conn:
    def __init__(self, ack=True, rcvbuf=0):
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        if rcvbuf:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        s.settimeout(5)
        s.connect(("127.0.0.1", PORT))
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.s, self.ack = s, ack
        self.t0 = time.monotonic()
        self.buf = bytearray()
        self.counts = {}
        self.status, self.body, self.rst, self.ended = {}, {}, {}, set()
        self.goaway = None
        self.goaway_s = None
        self.server_settings = None
        self.settings_acks = self.ping_acks = 0
        self.closed, self.close_how, self.close_s = False, None, None
        self.send_error = None
        self.send(PREFACE + frame(SETTINGS, 0, 0))

    def send(self, data, timeout=10):
        if self.send_error:
            return False
        self.s.settimeout(timeout)
        try:
            self.s.sendall(data)
            return True
        except socket.timeout:
            self.send_error = "timeout (gateway not reading)"
        except OSError as e:
            self.send_error = type(e).__name__
        return False

    def send_frames(self, frames, per=1000, pause=0):
        """Sends the frames in writes of PER, PAUSE seconds apart; returns
        how many went out."""
        n = 0
        for i in range(0, len(frames), per):
            if not self.send(b"".join(frames[i:i + per])):
                break
            n += len(frames[i:i + per])
            if pause:
                time.sleep(pause)
        return n

    def pump(self, secs, until=None):
        end = time.monotonic() + secs
        while not self.closed:
            if until and until():
                return True
            left = end - time.monotonic()
            if left <= 0:
                return False
            self.s.settimeout(min(left, 0.2))
            try:
                d = self.s.recv(262144)
            except socket.timeout:
                continue
            except OSError as e:
                self.closed, self.close_how = True, type(e).__name__
                break
            if not d:
                self.closed, self.close_how = True, "EOF"
                break
            self.buf += d
            self.parse()
        if self.closed and self.close_s is None:
            self.close_s = round(time.monotonic() - self.t0, 3)
        return bool(until and until())

    def parse(self):
        b, i = self.buf, 0
        while len(b) - i >= 9:
            n = int.from_bytes(b[i:i + 3], "big")
            if len(b) - i < 9 + n:
                break
            t, fl = b[i + 3], b[i + 4]
            sid = int.from_bytes(b[i + 5:i + 9], "big") & 0x7fffffff
            self.on_frame(t, fl, sid, bytes(b[i + 9:i + 9 + n]))
            i += 9 + n
        del b[:i]

    def on_frame(self, t, fl, sid, p):
        name = TYPES[t] if t < len(TYPES) else "0x%x" % t
        self.counts[name] = self.counts.get(name, 0) + 1
        if t in (DATA, HEADERS) and fl & F_PADDED:
            p = p[1:len(p) - p[0]]
        if t == SETTINGS:
            if fl & F_ACK:
                self.settings_acks += 1
            else:
                self.server_settings = {}
                for j in range(0, len(p) - 5, 6):
                    k, v = struct.unpack(">HI", p[j:j + 6])
                    self.server_settings[str(k)] = v
                if self.ack:
                    self.send(frame(SETTINGS, F_ACK, 0))
        elif t == PING:
            if fl & F_ACK:
                self.ping_acks += 1
        elif t == HEADERS:
            if fl & F_PRIORITY:
                p = p[5:]
            if sid not in self.status:
                self.status[sid] = parse_status(p)
            if fl & F_END_STREAM:
                self.ended.add(sid)
        elif t == DATA:
            self.body[sid] = self.body.get(sid, b"") + p
            if fl & F_END_STREAM:
                self.ended.add(sid)
        elif t == RST_STREAM:
            self.rst[sid] = errname(struct.unpack(">I", p[:4])[0])
        elif t == GOAWAY:
            last, code = struct.unpack(">II", p[:8])
            self.goaway = {"code": errname(code), "last_stream_id": last & 0x7fffffff,
                           "debug": p[8:200].decode("latin-1")}
            self.goaway_s = round(time.monotonic() - self.t0, 3)

    def done(self, sid):
        return sid in self.ended or sid in self.rst

    def handshake(self):
        self.pump(3, lambda: self.server_settings is not None and self.settings_acks >= 1)

    def alive(self):
        """A PING on this connection is answered (within 2 s)."""
        if self.closed or self.send_error:
            return False
        n = self.ping_acks
        if not self.send(frame(PING, 0, 0, b"alive?!!"), timeout=2):
            return False
        return self.pump(2, lambda: self.ping_acks > n)

    def summary(self):
        return {"goaway": self.goaway, "goaway_s": self.goaway_s, "closed": self.closed,
                "close_how": self.close_how, "close_s": self.close_s,
                "send_error": self.send_error, "frames_in": self.counts,
                "settings_acks": self.settings_acks, "ping_acks": self.ping_acks}

    def stream(self, sid):
        return {"status": self.status.get(sid), "rst": self.rst.get(sid),
                "body": self.body.get(sid, b"")[:300].decode("latin-1")}

    def close(self):
        try:
            self.s.close()
        except OSError:
            pass


def hist(values):
    h = {}
    for v in values:
        h[str(v)] = h.get(str(v), 0) + 1
    return h


# ---- 1. stream errors
def stream_error(name):
    bad = "/echo?case=%s&bad=1" % name
    body = None
    cases = {
        "uppercase_name": req(bad, extra=[("X-Upper", "1")]),
        "connection_keep_alive": req(bad, extra=[("connection", "keep-alive")]),
        "transfer_encoding_chunked": req(bad, extra=[("transfer-encoding", "chunked")]),
        "te_gzip": req(bad, extra=[("te", "gzip")]),
        "upgrade_h2c": req(bad, extra=[("upgrade", "h2c")]),
        "te_trailers_allowed": req(bad, extra=[("te", "trailers")]),
        "missing_method": req(bad, omit=[":method"]),
        "missing_path": req(bad, omit=[":path"]),
        "missing_scheme": req(bad, omit=[":scheme"]),
        "repeated_path": req(bad, extra=[(":path", "/echo?case=%s&second=1" % name)]),
        "repeated_method": req(bad, extra=[(":method", "POST")]),
        "pseudo_after_regular": req(bad, omit=[":authority"],
                                    extra=[("x-regular", "1"), (":authority", "h2attack.test")]),
        "content_length_10_data_5": req(bad, "POST", extra=[("content-length", "10")]),
        "content_length_10_data_20": req(bad, "POST", extra=[("content-length", "10")]),
    }
    if name == "content_length_10_data_5":
        body = b"x" * 5
    elif name == "content_length_10_data_20":
        body = b"y" * 20
    c = Conn()
    c.handshake()
    c.send(headers(1, cases[name], end_stream=body is None))
    if body is not None:
        c.send(frame(DATA, F_END_STREAM, 1, body))
    # a good request on the same connection: a stream error must not end it
    c.send(headers(3, req("/echo?case=%s&good=1" % name)))
    c.pump(5, lambda: c.done(1) and c.done(3))
    r = {"bad_stream": c.stream(1), "good_stream": c.stream(3)}
    r.update(c.summary())
    c.close()
    return r


# ---- 2. rapid reset
def rapid_reset(n):
    c = Conn()
    c.handshake()
    rss = Rss()
    blk = req("/slow?ms=500&case=rapid_reset")
    frames = []
    for i in range(n):
        sid = 2 * i + 1
        frames.append(headers(sid, blk) + frame(RST_STREAM, 0, sid, struct.pack(">I", CANCEL)))
    t0 = time.monotonic()
    sent = c.send_frames(frames, per=50)
    send_s = time.monotonic() - t0
    c.pump(3, lambda: c.goaway is not None)
    if c.goaway and not c.closed:
        c.pump(1)                       # does it close after the GOAWAY?
    r = {"streams_sent": sent, "send_s": round(send_s, 3),
         "responses": hist(c.status.values()), "rst_from_gateway": hist(c.rst.values())}
    r.update(c.summary())
    r["alive_after"] = c.alive()
    r.update(rss.done())
    c.close()
    return r


# ---- 3. CONTINUATION flood
def continuation_flood(n):
    c = Conn()
    c.handshake()
    rss = Rss()
    t0 = time.monotonic()
    c.send(frame(HEADERS, F_END_STREAM, 1, req("/echo?case=continuation_flood")))
    one = frame(CONTINUATION, 0, 1, lit("x-c", "1"))
    # the first 64 one at a time, each given 20 ms to be refused: the
    # count sent when the connection closed is how many were taken
    sent = 0
    while sent < min(n, 64) and not c.closed and not c.send_error:
        if not c.send(one):
            break
        sent += 1
        c.pump(0.02, lambda: c.closed or c.goaway is not None)
    if not c.closed and not c.send_error and c.goaway is None:
        sent += c.send_frames([one] * (n - sent), per=100)
    c.pump(3, lambda: c.closed or c.goaway is not None)
    stopped_s = time.monotonic() - t0
    r = {"continuations_sent": sent, "stopped_after_s": round(stopped_s, 3),
         "stream1": c.stream(1)}
    r.update(c.summary())
    r["alive_after"] = c.alive()
    r.update(rss.done())
    c.close()
    return r


# ---- 4. header list size
def header_size(kind):
    c = Conn()
    c.handshake()
    rss = Rss()
    t0 = time.monotonic()
    sids = [1]
    if kind == "one_huge_field":
        c.send(headers(1, req("/echo?case=one_huge_field") + lit("x-big", "a" * 40000)))
    elif kind == "many_small_fields":
        blk = req("/echo?case=many_small_fields") + b"".join(
            lit("x-h%04d" % i, "v" * 20) for i in range(2000))
        c.send(headers(1, blk))
    elif kind == "hpack_bomb":
        # one 4000-byte entry in the dynamic table (index 62), referenced
        # 10000 times in the first block, 16000 times in each of 20 more:
        # 330 KB on the wire that decode to ~1.3 GB of header fields
        blk = (req("/echo?case=hpack_bomb") + lit_incr("x-bomb", "b" * 4000) +
               indexed(62) * 10000)
        c.send(headers(1, blk))
        for k in range(20):
            sid = 3 + 2 * k
            sids.append(sid)
            if not c.send(headers(sid, req("/echo?case=hpack_bomb") + indexed(62) * 16000)):
                break
    c.pump(8, lambda: all(c.done(s) for s in sids))
    r = {"kind": kind, "streams": len(sids), "statuses": hist(c.status.get(s) for s in sids),
         "rst": hist(c.rst.get(s) for s in sids), "answered_s": round(time.monotonic() - t0, 3),
         "stream1": c.stream(1)}
    r.update(c.summary())
    r["alive_after"] = c.alive()
    r.update(rss.done())
    c.close()
    return r


# ---- 5. floods
def flood(kind, n):
    # a small receive buffer: what the gateway answers piles up on its side
    c = Conn(rcvbuf=4096)
    c.handshake()
    rss = Rss()
    watch = None
    per, pause = 1000, 0
    if kind in ("settings_paced", "ping_paced"):
        # writes of 500 frames 1 ms apart: each read of the gateway then
        # holds fewer than nghttp2's 1000 pending ACKs (max_outbound_ack),
        # and the ACKs, never read, can only pile up in the gateway
        one = frame(SETTINGS, 0, 0) if kind == "settings_paced" else \
            frame(PING, 0, 0, b"flooding")
        batch, sent = one * 500, 0
        t0 = time.monotonic()
        while sent < n and c.send(batch):
            sent += 500
            time.sleep(0.001)
        send_s = time.monotonic() - t0
        c.pump(1, lambda: c.goaway is not None)
        r = {"kind": kind, "frames": n, "frames_sent": sent, "send_s": round(send_s, 3)}
        r.update(c.summary())
        r.update(rss.done())
        c.close()
        return r
    if kind == "settings":
        frames = [frame(SETTINGS, 0, 0)] * n
    elif kind == "settings_params":
        # one SETTINGS frame with N parameters (INITIAL_WINDOW_SIZE = 65535)
        frames = [frame(SETTINGS, 0, 0, struct.pack(">HI", 4, 65535) * n)]
    elif kind == "ping":
        frames = [frame(PING, 0, 0, struct.pack(">Q", i)) for i in range(n)]
    elif kind == "priority":
        # each on a new idle stream, depending on stream 0, weight 16
        frames = [frame(PRIORITY, 0, 2 * i + 1, struct.pack(">IB", 0, 15)) for i in range(n)]
    elif kind == "window_update_conn":
        frames = [frame(WINDOW_UPDATE, 0, 0, struct.pack(">I", 1))] * n
    elif kind == "window_update_stream":
        watch = 1
        c.send(headers(1, req("/slow?ms=1500&case=window_update_stream")))
        frames = [frame(WINDOW_UPDATE, 0, 1, struct.pack(">I", 1))] * n
    elif kind == "empty_data":
        watch = 1
        c.send(headers(1, req("/echo?case=empty_data", "POST"), end_stream=False))
        frames = [frame(DATA, 0, 1)] * n
    t0 = time.monotonic()
    sent = c.send_frames(frames, per, pause)
    send_s = time.monotonic() - t0
    if kind == "empty_data" and not c.send_error:
        c.send(frame(DATA, F_END_STREAM, 1, b"z"))
    # now read what came back
    if watch:
        c.pump(5, lambda: c.done(watch) or c.goaway is not None)
    else:
        c.pump(1.5, lambda: c.goaway is not None)
    if c.goaway and not c.closed:
        c.pump(0.5)                     # does it close after the GOAWAY?
    r = {"kind": kind, "frames": len(frames), "frames_sent": sent, "send_s": round(send_s, 3)}
    if watch:
        r["stream1"] = c.stream(1)
    r.update(c.summary())
    r["alive_after"] = c.alive()
    r.update(rss.done())
    c.close()
    return r


# ---- 6. concurrent streams
def concurrent(ack, n=200):
    c = Conn(ack=ack)
    c.handshake()
    limit = (c.server_settings or {}).get("3")
    blk = req("/slow?ms=1500&case=concurrent_%s" % ("ack" if ack else "noack"))
    sids = [2 * i + 1 for i in range(n)]
    c.send(b"".join(headers(s, blk) for s in sids))
    c.pump(8, lambda: all(c.done(s) for s in sids))
    lim = limit or 128
    first, extra = sids[:lim], sids[lim:]
    r = {"client_acked_settings": ack, "server_max_concurrent_streams": limit,
         "streams_opened": n,
         "within_limit": {"statuses": hist(c.status.get(s) for s in first),
                          "rst": hist(c.rst.get(s) for s in first)},
         "beyond_limit": {"statuses": hist(c.status.get(s) for s in extra),
                          "rst": hist(c.rst.get(s) for s in extra)}}
    r.update(c.summary())
    c.close()
    return r


if CASE == "stream_error":
    out = stream_error(ARG)
elif CASE == "rapid_reset":
    out = rapid_reset(int(ARG))
elif CASE == "continuation_flood":
    out = continuation_flood(int(ARG))
elif CASE == "header_size":
    out = header_size(ARG)
elif CASE == "flood":
    kind, n = ARG.split(":")
    out = flood(kind, int(n))
elif CASE == "concurrent":
    out = concurrent(ARG == "ack")
else:
    sys.exit("unknown case " + CASE)
print(json.dumps(out, separators=(",", ":")))
PYEOF

# h2x CASE ARG: runs one case, R holds its JSON (printed as a note), and
# notes the HTTP/2 errors the gateway logged meanwhile
h2x() {
    local from
    from=$(($(wc -l <"$GW_LOG") + 1))
    R=$(PYTHONPATH=$FG_SRCDIR/tests/tools timeout -k 5 40 $PY "$T/h2x.py" "$GW_PORT" "$GW_PID" "$@" 2>"$T/h2x.err")
    local rc=$?
    if [ $rc != 0 ] || [ -z "$R" ]; then
        fail "h2x $*: the client failed (exit $rc): $(tail -n 5 "$T/h2x.err")"
        R='{}'
        return 1
    fi
    note "case $*: $R"
    tail -n +"$from" "$GW_LOG" | grep -o 'HTTP/2: .*' | sort | uniq -c |
        sed "s/^ */# case $* gateway log: /"
}
j() { json_get "$R" "$1" || echo "-"; }

breq() { backend_stat b1 requests; }
# bstats: "REQUESTS CONNECTIONS" of the backend, from one /stats request
# (whose own connection is counted: a delta of two calls is one too many)
bstats() {
    local js
    js=$(fcurl "http://127.0.0.1:${BACKEND_PORT[b1]}/stats") || { echo "? ?"; return; }
    echo "$(json_get "$js" requests) $(json_get "$js" connections)"
}
# answered CASE: requests of that case the backend answered (its -v log)
answered() { grep -c "case=$1[& ]" "$BLOG"; }

# normal_request WHAT: a fresh h2c connection still gets 200 from /echo
normal_request() {
    local code
    code=$(fcurl --http2-prior-knowledge -o /dev/null -w '%{http_code} %{http_version}' \
        "$(gw_url "/echo?case=normal")")
    assert_eq "200 2" "$code" "$1: the gateway still serves a normal h2 request afterwards"
}

# check_rss NAME [BOUND_KB]: the attack's RSS growth is bounded
check_rss() {
    local g
    g=$(j rss_growth_kb)
    note "$1: gateway VmRSS before $(j rss_before_kb) KiB, peak $(j rss_peak_kb) KiB, after $(j rss_after_kb) KiB; gateway CPU during the attack $(j gateway_cpu_ms) ms"
    [ "$CHECK_RSS" == 1 ] && assert_le "$g" "${2:-$RSS_BOUND_KB}" "$1: gateway RSS growth during the attack (KiB)"
}

# stopped NAME: the connection was ended (GOAWAY with an error, or closed)
stopped() {
    local ga closed
    ga=$(j goaway.code) closed=$(j closed)
    if { [ "$ga" != "-" ] && [ "$ga" != NO_ERROR ]; } || [ "$closed" == true ]; then
        ok "$1: the gateway ended the connection (GOAWAY ${ga}, closed=$closed, send error: $(j send_error))"
    else
        fail "$1: the gateway took the whole attack and kept the connection (GOAWAY ${ga}, closed=$closed, alive after: $(j alive_after))"
    fi
}

# ---- 1. stream errors -------------------------------------------------------
for c in uppercase_name connection_keep_alive transfer_encoding_chunked te_gzip upgrade_h2c \
         missing_method missing_path missing_scheme repeated_path repeated_method \
         pseudo_after_regular content_length_10_data_5 content_length_10_data_20; do
    r0=$(breq)
    h2x stream_error "$c" || continue
    sleep 0.2
    r1=$(breq)
    rst=$(j bad_stream.rst) st=$(j bad_stream.status)
    if [ "$rst" == PROTOCOL_ERROR ] || [ "$st" == 400 ]; then
        ok "stream error $c: RST_STREAM $rst / status $st"
    else
        fail "stream error $c: expected RST_STREAM PROTOCOL_ERROR or 400, got RST_STREAM $rst, status $st (GOAWAY $(j goaway.code))"
    fi
    assert_eq 0 "$(grep -c "case=$c&bad=1" "$BLOG")" "stream error $c: requests of the bad stream the backend answered"
    good=$(j good_stream.status)
    assert_eq 200 "$good" "stream error $c: a good stream on the same connection still served"
    # heads the backend parsed: the good stream's only; the content-length
    # cases may forward the head (the body is streamed) but never complete it
    case $c in
        content_length_*) note "stream error $c: backend parsed $((r1 - r0)) request head(s) (good stream included)" ;;
        *) assert_eq "$([ "$good" == 200 ] && echo 1 || echo 0)" "$((r1 - r0))" \
               "stream error $c: request heads the backend parsed (only the good stream's)" ;;
    esac
done
# te: trailers is the one TE allowed (RFC 9113 8.2.2)
h2x stream_error te_trailers_allowed
assert_eq 200 "$(j bad_stream.status)" "te: trailers is accepted (200)"
normal_request "stream errors"

# ---- 2. rapid reset ---------------------------------------------------------
read -r r0 c0 < <(bstats)
h2x rapid_reset 2000
sleep 1.2                               # /slow?ms=500 started ones are answered by now
read -r r1 c1 < <(bstats)
cn=$((c1 - c0 - 1))
note "rapid reset: $(j streams_sent) HEADERS+RST_STREAM(CANCEL) pairs sent; the backend saw $((r1 - r0)) requests and $cn new connections; GOAWAY $(j goaway) after $(j goaway_s) s; closed=$(j closed)"
ga=$(j goaway.code)
case $ga in
    ENHANCE_YOUR_CALM|PROTOCOL_ERROR|INTERNAL_ERROR)
        ok "rapid reset: GOAWAY $ga after stream $(j goaway.last_stream_id) ($(( ($(j goaway.last_stream_id) + 1) / 2 )) streams taken)" ;;
    *) fail "rapid reset: expected GOAWAY ENHANCE_YOUR_CALM/PROTOCOL_ERROR at a cap, got GOAWAY '$ga' (closed=$(j closed))" ;;
esac
assert_le "$((r1 - r0))" 128 "rapid reset: requests the backend saw for already-cancelled streams (at most h2_max_concurrent_streams)"
assert_eq 0 "$(answered rapid_reset)" "rapid reset: cancelled requests the backend answered"
# a backend connection opened (and closed at once) for each cancelled stream
# is backend work too: 2000 streams from one client must not become
# thousands of connects (TLS handshakes on a TLS upstream)
assert_le "$cn" 128 "rapid reset: backend connections opened for already-cancelled streams (at most h2_max_concurrent_streams)"
check_rss "rapid reset"
normal_request "rapid reset"

# ---- 3. CONTINUATION flood --------------------------------------------------
r0=$(breq)
h2x continuation_flood 10000
r1=$(breq)
stopped "CONTINUATION flood"
assert_eq false "$(j alive_after)" "CONTINUATION flood: connection no longer answers PING"
assert_le "$(j continuations_sent)" 64 "CONTINUATION flood: CONTINUATION frames sent before the connection was ended"
assert_le "$(j stopped_after_s | cut -d. -f1)" 2 "CONTINUATION flood: ended within 2 s"
note "CONTINUATION flood: $(j continuations_sent) of 10000 sent, stopped after $(j stopped_after_s) s, GOAWAY $(j goaway), close: $(j close_how)"
assert_eq 0 "$((r1 - r0))" "CONTINUATION flood: requests the backend saw"
check_rss "CONTINUATION flood"
normal_request "CONTINUATION flood"

# ---- 4. header list size / HPACK bomb ----------------------------------------
for k in one_huge_field many_small_fields hpack_bomb; do
    r0=$(breq)
    h2x header_size "$k" || continue
    sleep 0.2
    r1=$(breq)
    n=$(j streams)
    st=$(j statuses) rst=$(j rst) ga=$(j goaway.code)
    if [ "$st" == "{\"431\":$n}" ]; then
        ok "header list $k: 431 on all $n stream(s)"
    elif [[ "$rst" =~ \"[A-Z][A-Z_]+\": ]] || { [ "$ga" != "-" ] && [ "$ga" != NO_ERROR ]; } ||
         [ "$(j closed)" == true ]; then
        ok "header list $k: stream/connection error (statuses $st, RST $rst, GOAWAY $ga, closed $(j closed))"
    else
        fail "header list $k: expected 431 or a stream/connection error, got statuses $st, RST $rst, GOAWAY $ga"
    fi
    assert_eq 0 "$((r1 - r0))" "header list $k: requests the backend saw"
    if [ "$k" == hpack_bomb ]; then
        # its decoding costs CPU per field: the first block far over the
        # announced limit ends the connection, the rest is never decoded
        assert_eq ENHANCE_YOUR_CALM "$ga" "HPACK bomb: GOAWAY code"
        assert_le "$(j goaway.last_stream_id)" 1 "HPACK bomb: GOAWAY on the first block"
        note "HPACK bomb: the gateway spent $(j gateway_cpu_ms) ms of CPU"
    fi
    assert_le "$(j answered_s | cut -d. -f1)" 4 "header list $k: answered within 4 s"
    check_rss "header list $k"
done
normal_request "header list size"

# ---- 5. floods --------------------------------------------------------------
for k in settings:100000 settings_params:1000 ping:100000 \
         priority:100000 window_update_conn:100000 \
         window_update_stream:100000 empty_data:100000; do
    h2x flood "$k" || continue
    k=${k%%:*}
    note "flood $k: $(j frames_sent) of $(j frames) frames sent in $(j send_s) s; frames back $(j frames_in); GOAWAY $(j goaway); closed=$(j closed) ($(j close_how)); alive after: $(j alive_after)"
    stopped "flood $k"
    check_rss "flood $k"
done
# SETTINGS and PING paced so that nghttp2's cap on queued ACKs
# (max_outbound_ack, 1000) is not reached within one read, the ACKs never
# read: the connection may live on, but the gateway's memory must not grow
# with the number of frames (2 000 000 PINGs: 34 MB of ACKs). A gateway that
# stops taking frames while its output is above the high watermark (256 KiB)
# holds that plus nghttp2's 1000 ACKs: 4 MiB is a generous bound.
for k in settings_paced:2000000 ping_paced:2000000; do
    h2x flood "$k" || continue
    k=${k%%:*}
    note "flood $k: $(j frames_sent) of $(j frames) frames sent in $(j send_s) s, ACKs read back: SETTINGS $(j settings_acks), PING $(j ping_acks); GOAWAY $(j goaway); closed=$(j closed) ($(j close_how))"
    check_rss "flood $k" 4096
done
normal_request "floods"

# ---- 6. concurrent streams ----------------------------------------------------
for v in ack noack; do
    r0=$(breq)
    h2x concurrent "$v" || continue
    sleep 0.3
    r1=$(breq)
    lim=$(j server_max_concurrent_streams)
    assert_eq 128 "$lim" "concurrent ($v): SETTINGS_MAX_CONCURRENT_STREAMS announced"
    beyond_st=$(j beyond_limit.statuses) beyond_rst=$(j beyond_limit.rst) ga=$(j goaway.code)
    gl=$(j goaway.last_stream_id)
    note "concurrent ($v): within the limit: $(j within_limit), beyond: $(j beyond_limit), GOAWAY $(j goaway); backend saw $((r1 - r0)) requests"
    if [[ "$beyond_rst" =~ ^\{(\"(REFUSED_STREAM|PROTOCOL_ERROR)\":[0-9]+,?)+\}$ ]]; then
        ok "concurrent ($v): the 72 streams beyond the limit got RST_STREAM $beyond_rst"
    elif [ "$ga" == PROTOCOL_ERROR ] && [ "$gl" -lt 257 ]; then
        ok "concurrent ($v): the stream beyond the limit ended the connection (GOAWAY PROTOCOL_ERROR, last stream $gl)"
    else
        fail "concurrent ($v): streams beyond the limit: statuses $beyond_st, RST $beyond_rst, GOAWAY $ga"
    fi
    assert_not_contains "$beyond_st" '"200"' "concurrent ($v): statuses of streams beyond the limit"
    assert_le "$((r1 - r0))" 128 "concurrent ($v): requests the backend saw"
done
normal_request "concurrent streams"

# the backend never saw a malformed (smuggled) request
assert_eq 0 "$(grep -c 'malformed request' "$BLOG")" "malformed requests at the backend"
finish
