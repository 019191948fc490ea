#!/bin/bash
# HTTP/1.1 strictness (RFC 9110, RFC 9112; issue 9 point 1), both sides of
# the proxy.
#
# Requests: each malformed or ambiguous request is sent as raw bytes on its
# own connection; the gateway must answer with its JSON error (400 unless the
# case says otherwise), close the connection, and forward nothing: the
# backend here is a raw socket server (written below) that records every
# byte it receives, so "nothing" means not one byte, not merely "no request
# it could parse". A few well-formed but unusual requests (positive
# controls) check that the strictness does not refuse what the RFCs allow.
#
# Responses: the same backend answers GET /raw/NAME with the raw bytes of
# case NAME (both Content-Length and Transfer-Encoding, a bad chunk size,
# obs-fold, a bare CR, an invalid status line...). The client must get a 502
# JSON error and the gateway must close that backend connection (the
# backend sees it closed, and the next request comes on a new connection;
# one worker, so the keep-alive pool is a single one and reuse is checked
# first).
#
# Cases malformed.sh already has (the same bytes) are not repeated here;
# this file adds variants of them and the cases it lacks.
#
# Where the RFCs leave a choice, the test asserts this:
# - "Transfer-Encoding: gzip, chunked" (final coding chunked, a coding the
#   gateway does not implement): refused (501, RFC 9112 6.1's SHOULD, or
#   400), or forwarded with "gzip, chunked" kept; never forwarded as plain
#   chunked, which would hand the backend coded bytes as the body.
# - HTTP/1.2: processed as HTTP/1.1 (RFC 9110 2.5) or refused (llhttp's
#   strict mode refuses it: 400); HTTP/2.0 on an HTTP/1.1 connection: 505
#   (RFC 9110 15.6.6), HTTP/3.0: 505 or 400 (llhttp).
# - Content-Length with a trailing tab: accepted, or refused (llhttp).
# - a bad chunk size in a response: 502 if nothing went to the client yet,
#   else the client's connection is cut.
# - HTTP/1.0 with Transfer-Encoding: 400 (RFC 9112 6.1: faulty framing).
# - unknown methods ('G@T', 'get'): 400 or 501 (RFC 9110 9.1).
# - two spaces in the request line: refused, or forwarded with a clean
#   request line (RFC 9112 3 lets a recipient parse on whitespace).
# - two equal Content-Length values: 400 (RFC 9110 8.6 also allows merging).
# - obs-fold in a response: 502 as issue 9 asks (RFC 9112 5.2 would also
#   let a gateway replace the fold by spaces).
#
# Everything is driven by one python3 program ($T/h1s.py: the backend, the
# request cases, the response cases); it prints one line per check, turned
# into ok/fail below.
. "$(dirname "$0")/lib.sh"

cat >"$T/h1s.py" <<'PYEOF'
import json, re, select, socket, sys, threading, time

# ---------------------------------------------------------------- responses
# what the backend answers to GET /raw/NAME (each would look complete to a
# lenient parser, so only strictness can refuse it)
RAW = {
    "cl_te": b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
    "te_cl": b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
    "cl_dup_diff": b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello!",
    "cl_list_diff": b"HTTP/1.1 200 OK\r\nContent-Length: 5, 6\r\n\r\nhello!",
    "cl_negative": b"HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\nhello",
    "chunk_zz": b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nhello\r\n0\r\n\r\n",
    "chunk_overflow": b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nFFFFFFFFFFFFFFFFFF\r\nhello\r\n0\r\n\r\n",
    "chunk_negative": b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n-5\r\nhello\r\n0\r\n\r\n",
    "obs_fold": b"HTTP/1.1 200 OK\r\nX-A: a\r\n b\r\nContent-Length: 2\r\n\r\nok",
    "obs_fold_cl": b"HTTP/1.1 200 OK\r\nContent-Length:\r\n 2\r\n\r\nok",
    "bare_cr_value": b"HTTP/1.1 200 OK\r\nX-A: a\rb\r\nContent-Length: 2\r\n\r\nok",
    "bare_cr_status": b"HTTP/1.1 200 O\rK\r\nContent-Length: 2\r\n\r\nok",
    "space_before_colon": b"HTTP/1.1 200 OK\r\nContent-Length : 2\r\n\r\nok",
    "ctl_in_value": b"HTTP/1.1 200 OK\r\nX-A: a\x01b\r\nContent-Length: 2\r\n\r\nok",
    "nul_in_name": b"HTTP/1.1 200 OK\r\nX\x00A: b\r\nContent-Length: 2\r\n\r\nok",
    "status_4_digits": b"HTTP/1.1 2000 OK\r\nContent-Length: 2\r\n\r\nok",
    "status_2_digits": b"HTTP/1.1 20 OK\r\nContent-Length: 2\r\n\r\nok",
    "status_letters": b"HTTP/1.1 abc OK\r\nContent-Length: 2\r\n\r\nok",
    "status_bad_name": b"HTTX/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok",
    "status_garbage": b"garbage\r\n\r\n",
    "status_double_space": b"HTTP/1.1  200 OK\r\nContent-Length: 2\r\n\r\nok",
}
RESP_CASES = [
    ("both Content-Length and Transfer-Encoding", "cl_te"),
    ("both Transfer-Encoding and Content-Length (TE first)", "te_cl"),
    ("two differing Content-Length lines", "cl_dup_diff"),
    ("Content-Length list '5, 6'", "cl_list_diff"),
    ("Content-Length -1", "cl_negative"),
    ("bad chunk size 'zz'", "chunk_zz"),
    ("chunk size over 2^64 (FFFFFFFFFFFFFFFFFF)", "chunk_overflow"),
    ("negative chunk size '-5'", "chunk_negative"),
    ("obs-fold in a response header", "obs_fold"),
    ("obs-fold in Content-Length", "obs_fold_cl"),
    ("bare CR in a header value", "bare_cr_value"),
    ("bare CR in the status line", "bare_cr_status"),
    ("whitespace before the colon (Content-Length : 2)", "space_before_colon"),
    ("control character \\x01 in a header value", "ctl_in_value"),
    ("NUL in a header name", "nul_in_name"),
    ("invalid status line: 4-digit status", "status_4_digits"),
    ("invalid status line: 2-digit status", "status_2_digits"),
    ("invalid status line: letters as status", "status_letters"),
    ("invalid status line: HTTX/1.1", "status_bad_name"),
    ("invalid status line: garbage", "status_garbage"),
    ("invalid status line: two spaces after the version", "status_double_space"),
]

# ---------------------------------------------------------------- backend
def backend(port, logpath):
    lock = threading.Lock()
    logf = open(logpath, "a")
    nconn = [0]

    def log(**ev):
        ev["t"] = time.monotonic()
        with lock:
            logf.write(json.dumps(ev) + "\n")
            logf.flush()

    def parse(buf):
        """one forwarded request from buf: (request dict, bytes used), None
        while incomplete; framing it cannot follow gives an 'error' key"""
        i = buf.find(b"\r\n\r\n")
        if i < 0:
            return None
        lines = buf[:i].split(b"\r\n")
        hdrs = []
        for l in lines[1:]:
            k, _, v = l.partition(b":")
            hdrs.append([k.decode("latin-1"), v.strip(b" \t").decode("latin-1")])
        req = {"line": lines[0].decode("latin-1"), "headers": hdrs}
        rest = buf[i + 4:]
        te = [v for k, v in hdrs if k.lower() == "transfer-encoding"]
        cl = [v for k, v in hdrs if k.lower() == "content-length"]
        body = b""
        if te:
            if te[-1].split(",")[-1].strip().lower() != "chunked":
                req["error"] = "Transfer-Encoding without final chunked"
                return req, len(buf)
            pos = 0
            while True:
                j = rest.find(b"\r\n", pos)
                if j < 0:
                    return None
                try:
                    size = int(rest[pos:j].split(b";")[0], 16)
                except ValueError:
                    req["error"] = "bad chunk size %r" % rest[pos:j]
                    return req, len(buf)
                pos = j + 2
                if size == 0:
                    if rest[pos:pos + 2] == b"\r\n":
                        pos += 2
                    else:
                        k = rest.find(b"\r\n\r\n", pos)
                        if k < 0:
                            return None
                        pos = k + 4
                    break
                if len(rest) < pos + size + 2:
                    return None
                body += rest[pos:pos + size]
                pos += size + 2
            used = i + 4 + pos
        elif cl:
            try:
                n = int(cl[0])
            except ValueError:
                req["error"] = "bad Content-Length %r" % cl[0]
                return req, len(buf)
            if len(rest) < n:
                return None
            body, used = rest[:n], i + 4 + n
        else:
            used = i + 4
        req["body"] = body.decode("latin-1")
        return req, used

    def serve(s, cid):
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        log(c=cid, ev="open")
        buf, nreq = b"", 0
        try:
            while True:
                d = s.recv(65536)
                if not d:
                    log(c=cid, ev="close", by="peer")
                    return
                log(c=cid, ev="data", n=len(d), text=d[:3000].decode("latin-1"))
                buf += d
                while buf:
                    r = parse(buf)
                    if r is None:
                        break
                    req, used = r
                    buf = buf[used:]
                    nreq += 1
                    req["n"] = nreq
                    log(c=cid, ev="req", **req)
                    if "error" in req:
                        s.close()
                        log(c=cid, ev="close", by="backend (unframed request)")
                        return
                    m = re.match(r"\S+ /raw/(\w+) ", req["line"])
                    if m:
                        # the gateway must close this connection now; if it
                        # sends another request on it instead, that one is
                        # answered normally (the driver sees the reuse)
                        s.sendall(RAW[m.group(1)])
                        continue
                    body = json.dumps({"conn": cid, "n": nreq}).encode()
                    s.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                              b"Content-Length: %d\r\n\r\n%s" % (len(body), body))
                    if any(k.lower() == "connection" and "close" in v.lower()
                           for k, v in req["headers"]):
                        s.close()
                        log(c=cid, ev="close", by="backend (Connection: close)")
                        return
        except OSError as e:
            log(c=cid, ev="close", by="peer (%s)" % type(e).__name__)
        finally:
            s.close()

    ls = socket.socket()
    ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    ls.bind(("127.0.0.1", port))
    ls.listen(64)
    while True:
        s, _ = ls.accept()
        nconn[0] += 1
        threading.Thread(target=serve, args=(s, nconn[0]), daemon=True).start()

# ---------------------------------------------------------------- client side
class Log:
    """the backend's event log, read incrementally"""
    def __init__(self, path):
        self.path, self.events = path, []
    def refresh(self):
        with open(self.path) as f:
            lines = f.read().splitlines()
        self.events = [json.loads(l) for l in lines if l.strip()]
        return len(self.events)

def parse_response(buf):
    """(status, headers, body, complete) of the first final response in buf"""
    while True:
        i = buf.find(b"\r\n\r\n")
        if i < 0:
            return None
        head = buf[:i].decode("latin-1").split("\r\n")
        parts = head[0].split(" ", 2)
        try:
            status = int(parts[1])
        except (IndexError, ValueError):
            return None
        hdrs = {}
        for l in head[1:]:
            k, _, v = l.partition(":")
            hdrs[k.strip().lower()] = v.strip()
        rest = buf[i + 4:]
        if 100 <= status < 200:
            buf = rest
            continue
        if "content-length" in hdrs:
            n = int(hdrs["content-length"])
            return status, hdrs, rest[:n], len(rest) >= n
        if hdrs.get("transfer-encoding", "").lower() == "chunked":
            body, pos = b"", 0
            while True:
                j = rest.find(b"\r\n", pos)
                if j < 0:
                    return status, hdrs, body, False
                try:
                    n = int(rest[pos:j].split(b";")[0], 16)
                except ValueError:
                    return status, hdrs, body, False
                pos = j + 2
                if n == 0:
                    return status, hdrs, body, rest.find(b"\r\n", pos) >= 0
                if len(rest) < pos + n + 2:
                    return status, hdrs, body + rest[pos:], False
                body += rest[pos:pos + n]
                pos += n + 2
        return status, hdrs, rest, False

def exchange(port, data, timeout=3.0, grace=0.5):
    """sends data on a new connection; reads until the gateway closes, or
    until grace seconds after a complete response, or timeout"""
    s = socket.create_connection(("127.0.0.1", port), timeout=5)
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    s.sendall(data)
    buf, closed, reset = b"", False, False
    end = time.monotonic() + timeout
    while True:
        left = end - time.monotonic()
        if left <= 0:
            break
        r, _, _ = select.select([s], [], [], min(left, 0.05))
        if not r:
            continue
        try:
            d = s.recv(65536)
        except ConnectionResetError:
            closed = reset = True
            break
        if not d:
            closed = True
            break
        buf += d
        p = parse_response(buf)
        if p and p[3]:
            end = min(end, time.monotonic() + grace)
    s.close()
    p = parse_response(buf)
    out = {"closed": closed, "reset": reset, "raw": buf[:300].decode("latin-1")}
    if p:
        out.update(status=p[0], headers=p[1], body=p[2].decode("latin-1"), complete=p[3])
    else:
        out.update(status=None, headers={}, body="", complete=False)
    return out

def out(verdict, what):
    print("%s\t%s" % (verdict, what.replace("\t", " ").replace("\n", " ")), flush=True)

def check(cond, what, detail=""):
    out("ok" if cond else "fail", what if cond else "%s: %s" % (what, detail))
    return cond

def error_json_problem(body, status, code):
    """what lib.sh's assert_error_json checks: {"error":{"status","code",
    "message","request_id"}}; None when all is right"""
    try:
        e = json.loads(body)["error"]
    except Exception:
        return "not the gateway's JSON error: %r" % body[:200]
    if e.get("status") != status:
        return "error.status %r, not %r" % (e.get("status"), status)
    if code is not None and e.get("code") != code:
        return "error.code %r, not %r" % (e.get("code"), code)
    if not isinstance(e.get("code"), str) or not e.get("code"):
        return "no error.code"
    if not isinstance(e.get("request_id"), str) or not re.match(r"^[A-Za-z0-9._-]{1,128}$", e["request_id"]):
        return "bad error.request_id %r" % e.get("request_id")
    if not isinstance(e.get("message"), str) or not e["message"]:
        return "no error.message"
    return None

def describe(r):
    conn = "reset" if r["reset"] else "closed" if r["closed"] else "left open"
    if r["status"] is None:
        return "no response, connection %s, got %r" % (conn, r["raw"][:120])
    return "status %s, connection %s, client got %r" % (r["status"], conn, r["raw"][:260])

def backend_view(evs):
    """what the backend got during one case, in words"""
    data = [e for e in evs if e["ev"] == "data"]
    reqs = [e for e in evs if e["ev"] == "req"]
    conns = sorted({e["c"] for e in evs if e["ev"] == "open"})
    if not data:
        return "nothing" + (" (but %d connection(s) opened)" % len(conns) if conns else "")
    if reqs:
        return "; ".join("request %r headers %r body %r%s" % (
            q["line"], [h for h in q["headers"] if h[0].lower() != "x-forwarded-for"][:12],
            q.get("body", "")[:40], (" FRAMING ERROR: " + q["error"]) if "error" in q else "")
            for q in reqs)
    return "%d bytes it could not frame: %r" % (sum(e["n"] for e in data), "".join(e["text"] for e in data)[:300])

def settle(log, mark, wait=0.15):
    time.sleep(wait)
    log.refresh()
    return log.events[mark:]

# ---------------------------------------------------------------- request cases
G = b"GET /ok HTTP/1.1\r\nHost: x\r\n"
P = b"POST /ok HTTP/1.1\r\nHost: x\r\n"
CHUNKED_HELLO = b"5\r\nhello\r\n0\r\n\r\n"

def R(*statuses, code="bad_request"):
    return {"kind": "reject", "statuses": statuses or (400,), "code": code}

def A(check_fn, note=""):
    return {"kind": "accept", "check": check_fn, "note": note}

def E(statuses, check_fn, note):
    return {"kind": "either", "statuses": statuses, "check": check_fn, "note": note}

def hdr(q, name):
    return [v for k, v in q["headers"] if k.lower() == name]

def body_is(expected):
    def f(q):
        if q.get("error"):
            return q["error"]
        te, cl = hdr(q, "transfer-encoding"), hdr(q, "content-length")
        if te and cl:
            return "forwarded with both Content-Length and Transfer-Encoding"
        if len(cl) > 1 or len(te) > 1:
            return "forwarded with %d Content-Length / %d Transfer-Encoding lines" % (len(cl), len(te))
        if q.get("body") != expected:
            return "body %r, not %r" % (q.get("body"), expected)
        return None
    return f

def version_11(q):
    if not q["line"].endswith(" HTTP/1.1"):
        return "forwarded as %r" % q["line"]
    return None

def gzip_kept(q):
    te = hdr(q, "transfer-encoding")
    if not te or [c.strip().lower() for c in ",".join(te).split(",")] != ["gzip", "chunked"]:
        return ("forwarded with Transfer-Encoding %r: the gzip coding was dropped, so the "
                "backend reads the coded bytes as the body" % te)
    return body_is("hello")(q)

REQ_CASES = [
    # 1. Content-Length and Transfer-Encoding together (RFC 9112 6.1, 6.3: 400 and close)
    ("CL+TE: Transfer-Encoding before Content-Length",
     P + b"Transfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n" + CHUNKED_HELLO, R()),
    ("CL+TE: Content-Length 0 with Transfer-Encoding chunked",
     P + b"Content-Length: 0\r\nTransfer-Encoding: chunked\r\n\r\n" + CHUNKED_HELLO, R()),
    ("CL+TE: on a GET",
     G + b"Content-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n" + CHUNKED_HELLO, R()),
    ("CL+TE: Transfer-Encoding identity (not a coding since RFC 7230) with Content-Length",
     P + b"Transfer-Encoding: identity\r\nContent-Length: 5\r\n\r\nhello", R()),
    ("HTTP/1.0 with Transfer-Encoding chunked (RFC 9112 6.1: faulty framing)",
     b"POST /ok HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n" + CHUNKED_HELLO, R()),
    ("HTTP/1.0 with Transfer-Encoding chunked and Content-Length",
     b"POST /ok HTTP/1.0\r\nTransfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n" + CHUNKED_HELLO, R()),
    # 2. Transfer-Encoding whose final coding is not chunked (RFC 9112 6.3: 400 and close)
    ("TE 'chunked, gzip' (final coding not chunked)",
     P + b"Transfer-Encoding: chunked, gzip\r\n\r\n" + CHUNKED_HELLO, R()),
    ("TE 'chunked' then 'gzip' on two lines (final coding not chunked)",
     P + b"Transfer-Encoding: chunked\r\nTransfer-Encoding: gzip\r\n\r\n" + CHUNKED_HELLO, R()),
    ("TE 'xchunked'", P + b"Transfer-Encoding: xchunked\r\n\r\n" + CHUNKED_HELLO, R()),
    ("TE 'chunked, chunked' (chunked twice, RFC 9112 7)",
     P + b"Transfer-Encoding: chunked, chunked\r\n\r\n" + CHUNKED_HELLO, R()),
    ("TE 'chunked' on two lines (chunked twice)",
     P + b"Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n" + CHUNKED_HELLO, R()),
    ("TE empty value with a body", P + b"Transfer-Encoding:\r\n\r\n" + CHUNKED_HELLO, R()),
    ("TE 'gzip, chunked' (final chunked, a coding the gateway does not implement)",
     P + b"Transfer-Encoding: gzip, chunked\r\nConnection: close\r\n\r\n" + CHUNKED_HELLO,
     E((400, 501), gzip_kept,
       "RFC 9112 6.1: a server SHOULD answer 501 to a transfer coding it does not understand; "
       "forwarding is acceptable only with 'gzip, chunked' kept")),
    ("positive control: TE 'Chunked' (codings are case-insensitive)",
     P + b"Transfer-Encoding: Chunked\r\nConnection: close\r\n\r\n" + CHUNKED_HELLO, A(body_is("hello"))),
    # 3. Content-Length
    ("two equal Content-Length lines",
     P + b"Content-Length: 5\r\nContent-Length: 5\r\n\r\nhello",
     R()),
    ("Content-Length list '5, 5'", P + b"Content-Length: 5, 5\r\n\r\nhello", R()),
    ("Content-Length list '1, 1'", P + b"Content-Length: 1, 1\r\n\r\nh", R()),
    ("Content-Length list '5, 6' (differing)", P + b"Content-Length: 5, 6\r\n\r\nhello!", R()),
    ("two differing Content-Length, the second 0",
     P + b"Content-Length: 5\r\nContent-Length: 0\r\n\r\nhello", R()),
    ("Content-Length '+5'", P + b"Content-Length: +5\r\n\r\nhello", R()),
    ("Content-Length ' 5x'", P + b"Content-Length:  5x\r\n\r\nhello", R()),
    ("Content-Length '-1'", P + b"Content-Length: -1\r\n\r\nhello", R()),
    ("Content-Length empty", P + b"Content-Length:\r\n\r\nhello", R()),
    ("Content-Length '0x5'", P + b"Content-Length: 0x5\r\n\r\nhello", R()),
    ("Content-Length '5 5'", P + b"Content-Length: 5 5\r\n\r\nhello", R()),
    ("Content-Length '5.0'", P + b"Content-Length: 5.0\r\n\r\nhello", R()),
    ("Content-Length over 2^64 (99999999999999999999999)",
     P + b"Content-Length: 99999999999999999999999\r\n\r\nhello", R()),
    ("positive control: Content-Length with surrounding spaces and a leading tab",
     P + b"Content-Length: \t 5  \r\nConnection: close\r\n\r\nhello", A(body_is("hello"))),
    ("Content-Length with a trailing tab (OWS, RFC 9110 5.5; llhttp's strict mode refuses it)",
     P + b"Content-Length: 5\t\r\nConnection: close\r\n\r\nhello",
     E((400,), body_is("hello"), "refusing is the safe side")),
    ("positive control: Content-Length '005' (1*DIGIT)",
     P + b"Content-Length: 005\r\nConnection: close\r\n\r\nhello", A(body_is("hello"))),
    # 4. chunk sizes
    ("chunk size '-5'", P + b"Transfer-Encoding: chunked\r\n\r\n-5\r\nhello\r\n0\r\n\r\n", R()),
    ("chunk size over 2^64 (FFFFFFFFFFFFFFFFFF)",
     P + b"Transfer-Encoding: chunked\r\n\r\nFFFFFFFFFFFFFFFFFF\r\nhello\r\n0\r\n\r\n", R()),
    ("chunk size 2^64 exactly (10000000000000000)",
     P + b"Transfer-Encoding: chunked\r\n\r\n10000000000000000\r\nhello\r\n0\r\n\r\n", R()),
    ("chunk size '0x5'", P + b"Transfer-Encoding: chunked\r\n\r\n0x5\r\nhello\r\n0\r\n\r\n", R()),
    ("chunk size empty", P + b"Transfer-Encoding: chunked\r\n\r\n\r\nhello\r\n0\r\n\r\n", R()),
    ("chunk size with leading space", P + b"Transfer-Encoding: chunked\r\n\r\n 5\r\nhello\r\n0\r\n\r\n", R()),
    ("chunk size line ended by a bare LF",
     P + b"Transfer-Encoding: chunked\r\n\r\n5\nhello\r\n0\r\n\r\n", R()),
    ("chunk data ended by a bare LF",
     P + b"Transfer-Encoding: chunked\r\n\r\n5\r\nhello\n0\r\n\r\n", R()),
    ("last chunk ended by a bare LF",
     P + b"Transfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\n\r\n", R()),
    ("chunk size line ended by a bare CR",
     P + b"Transfer-Encoding: chunked\r\n\r\n5\rhello\r\n0\r\n\r\n", R()),
    ("chunk data longer than its size",
     P + b"Transfer-Encoding: chunked\r\n\r\n5\r\nhelloXX\r\n0\r\n\r\n", R()),
    ("positive control: chunk extension '5;a=b'",
     P + b"Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n5;a=b\r\nhello\r\n0\r\n\r\n",
     A(body_is("hello"))),
    # 5. bare CR
    ("bare CR inside the request target", b"GET /a\rb HTTP/1.1\r\nHost: x\r\n\r\n", R()),
    ("request line ended by a bare CR", b"GET /ok HTTP/1.1\rHost: x\r\n\r\n", R()),
    ("bare CR inside a header value", G + b"X-A: a\rb\r\n\r\n", R()),
    ("header line ended by a bare CR", G + b"X-A: a\rX-B: b\r\n\r\n", R()),
    ("bare CR inside a header name", G + b"X\rA: b\r\n\r\n", R()),
    ("bare CR before the CRLF of a header line", G + b"X-A: a\r\r\n\r\n", R()),
    # 6. obs-fold (malformed.sh has "X-A: a CRLF SP b")
    ("obs-fold with a tab", G + b"X-A: a\r\n\tb\r\n\r\n", R()),
    ("obs-fold of an empty first line ('X-A:' CRLF SP 'b')", G + b"X-A:\r\n b\r\n\r\n", R()),
    ("whitespace-preceded first header line (RFC 9112 2.2)",
     b"GET /ok HTTP/1.1\r\n X-A: a\r\nHost: x\r\n\r\n", R()),
    ("obs-fold of Host", b"GET /ok HTTP/1.1\r\nHost: x\r\n y\r\n\r\n", R()),
    ("obs-fold of Content-Length", P + b"Content-Length:\r\n 5\r\n\r\nhello", R()),
    ("obs-fold of Transfer-Encoding", P + b"Transfer-Encoding:\r\n chunked\r\n\r\n" + CHUNKED_HELLO, R()),
    ("obs-fold line of only whitespace", G + b"X-A: a\r\n \r\n\r\n", R()),
    # 7. whitespace between name and colon (malformed.sh has "X-A : v")
    ("tab before the colon", G + b"X-A\t: v\r\n\r\n", R()),
    ("space before the colon of Host", b"GET /ok HTTP/1.1\r\nHost : x\r\n\r\n", R()),
    ("space before the colon of Content-Length", P + b"Content-Length : 5\r\n\r\nhello", R()),
    ("space before the colon of Transfer-Encoding",
     P + b"Transfer-Encoding : chunked\r\n\r\n" + CHUNKED_HELLO, R()),
    # 8. control characters (malformed.sh has \x01 in a name and a value, NUL in a value)
    ("DEL (\\x7f) in a header name", G + b"X-A\x7f: v\r\n\r\n", R()),
    ("DEL (\\x7f) in a header value", G + b"X-A: a\x7fb\r\n\r\n", R()),
    ("NUL in a header name", G + b"X\x00A: v\r\n\r\n", R()),
    ("\\x1f in a header value", G + b"X-A: a\x1fb\r\n\r\n", R()),
    ("vertical tab in a header value", G + b"X-A: a\x0bb\r\n\r\n", R()),
    ("ESC at the end of a header value", G + b"X-A: a\x1b\r\n\r\n", R()),
    ("'@' in a header name (not a token)", G + b"X@A: v\r\n\r\n", R()),
    ("'(' in a header name (not a token)", G + b"X(A): v\r\n\r\n", R()),
    ("empty header name", G + b": v\r\n\r\n", R()),
    ("NUL in the request target", b"GET /a\x00b HTTP/1.1\r\nHost: x\r\n\r\n", R()),
    ("\\x01 in the request target", b"GET /a\x01b HTTP/1.1\r\nHost: x\r\n\r\n", R()),
    ("DEL in the request target", b"GET /a\x7fb HTTP/1.1\r\nHost: x\r\n\r\n", R()),
    ("positive control: tab and obs-text (\\xe9) in a header value",
     G + b"X-A: a\tcaf\xe9\r\nConnection: close\r\n\r\n",
     A(lambda q: None if "a\tcaf\xe9" in hdr(q, "x-a") else "x-a forwarded as %r" % hdr(q, "x-a"))),
    # 9. method, target, version
    ("method 'GE T'", b"GE T /ok HTTP/1.1\r\nHost: x\r\n\r\n", R()),
    ("method 'G@T'", b"G@T /ok HTTP/1.1\r\nHost: x\r\n\r\n", R(400, 501)),
    ("empty method (line starts with a space)", b" /ok HTTP/1.1\r\nHost: x\r\n\r\n", R()),
    ("tab between method and target", b"GET\t/ok HTTP/1.1\r\nHost: x\r\n\r\n", R()),
    ("two spaces between method and target",
     b"GET  /ok HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
     E((400,), lambda q: None if q["line"] == "GET /ok HTTP/1.1" else "forwarded as %r" % q["line"],
       "RFC 9112 3: a recipient MAY parse the request line on whitespace boundaries; "
       "the gateway writes its own request line, so either is safe")),
    ("lowercase method 'get' (methods are case-sensitive: unknown)",
     b"get /ok HTTP/1.1\r\nHost: x\r\n\r\n", R(400, 501)),
    ("target 'foo' (no slash, not absolute-form)", b"GET foo HTTP/1.1\r\nHost: x\r\n\r\n", R()),
    ("target with a space ('/a b')", b"GET /a b HTTP/1.1\r\nHost: x\r\n\r\n", R()),
    ("target with a tab ('/a<TAB>b')", b"GET /a\tb HTTP/1.1\r\nHost: x\r\n\r\n", R()),
    ("asterisk-form target on GET", b"GET * HTTP/1.1\r\nHost: x\r\n\r\n", R()),
    ("absolute-form target without a host ('http:///a')", b"GET http:///a HTTP/1.1\r\nHost: x\r\n\r\n", R()),
    ("non-ASCII byte in the target ('/caf\\xe9')", b"GET /caf\xe9 HTTP/1.1\r\nHost: x\r\n\r\n", R()),
    ("version HTTP/1.2 (RFC 9110 2.5: SHOULD be processed as HTTP/1.1; llhttp refuses it)",
     b"GET /ok HTTP/1.2\r\nHost: x\r\nConnection: close\r\n\r\n",
     E((400, 505), version_11, "refused or processed as HTTP/1.1, never passed on as 1.2")),
    ("version HTTP/2.0 on an HTTP/1.1 connection (RFC 9110 15.6.6: 505)",
     b"GET /ok HTTP/2.0\r\nHost: x\r\n\r\n", R(505, code=None)),
    ("version HTTP/3.0 (505, or 400 from llhttp)", b"GET /ok HTTP/3.0\r\nHost: x\r\n\r\n",
     R(400, 505, code=None)),
    ("version 'HTTP/1' (no minor)", b"GET /ok HTTP/1\r\nHost: x\r\n\r\n", R()),
    ("version 'http/1.1' (HTTP-name is case-sensitive)", b"GET /ok http/1.1\r\nHost: x\r\n\r\n", R()),
    ("version 'HTTP/1.10' (one digit each)", b"GET /ok HTTP/1.10\r\nHost: x\r\n\r\n", R()),
    ("version 'HTTP/01.1'", b"GET /ok HTTP/01.1\r\nHost: x\r\n\r\n", R()),
    ("space after the version", b"GET /ok HTTP/1.1 \r\nHost: x\r\n\r\n", R()),
    ("no version (HTTP/0.9 form)", b"GET /ok\r\nHost: x\r\n\r\n", R(400, 505, code=None)),
    # 10. Host (RFC 9112 3.2: 400 when missing on 1.1, repeated, or invalid)
    ("absolute-form target without Host on HTTP/1.1", b"GET http://x/ok HTTP/1.1\r\n\r\n", R()),
    ("two equal Host headers", b"GET /ok HTTP/1.1\r\nHost: x\r\nHost: x\r\n\r\n", R()),
    ("two differing Host headers", b"GET /ok HTTP/1.1\r\nHost: x\r\nHost: y\r\n\r\n", R()),
    ("Host list 'x, y'", b"GET /ok HTTP/1.1\r\nHost: x, y\r\n\r\n", R()),
    ("Host with a space ('a b')", b"GET /ok HTTP/1.1\r\nHost: a b\r\n\r\n", R()),
    ("Host with a slash ('a/b')", b"GET /ok HTTP/1.1\r\nHost: a/b\r\n\r\n", R()),
    ("Host with userinfo ('u@a')", b"GET /ok HTTP/1.1\r\nHost: u@a\r\n\r\n", R()),
    ("positive control: HTTP/1.0 without Host",
     b"GET /ok HTTP/1.0\r\n\r\n", A(lambda q: None)),
]

def run_requests(port, logpath):
    log = Log(logpath)
    # the harness itself first: a well-formed request is forwarded and answered
    mark = log.refresh()
    r = exchange(port, G + b"Connection: close\r\n\r\n")
    evs = settle(log, mark)
    check(r["status"] == 200, "harness: well-formed request answered 200", describe(r))
    check(any(e["ev"] == "req" and e["line"] == "GET /ok HTTP/1.1" for e in evs),
          "harness: the backend recorded it", backend_view(evs))
    for name, data, spec in REQ_CASES:
        mark = log.refresh()
        r = exchange(port, data)
        evs = settle(log, mark)
        got = [e for e in evs if e["ev"] == "data"]
        reqs = [e for e in evs if e["ev"] == "req"]
        what = "request, %s" % name
        if spec["kind"] == "reject":
            sts = spec["statuses"]
            if not check(r["status"] in sts, "%s: status %s" % (what, "/".join(map(str, sts))),
                         "%s; backend received: %s" % (describe(r), backend_view(evs))):
                check(not got, "%s: nothing forwarded" % what, "backend received: " + backend_view(evs))
                continue
            code = spec["code"] if r["status"] == 400 else None
            p = error_json_problem(r["body"], r["status"], code)
            check(p is None, "%s: JSON error body" % what, p)
            check(r["closed"], "%s: connection closed" % what, "left open after " + describe(r))
            check(not got, "%s: nothing forwarded" % what, "backend received: " + backend_view(evs))
            if any(e["ev"] == "open" for e in evs) and not got:
                out("note", "%s: the gateway opened a backend connection but sent nothing on it" % what)
        elif spec["kind"] == "accept":
            ok = check(r["status"] == 200 and len(reqs) == 1,
                       "%s: accepted and forwarded once" % what,
                       "%s; backend received: %s%s" % (describe(r), backend_view(evs),
                                                        (" (" + spec["note"] + ")") if spec["note"] else ""))
            if ok:
                p = spec["check"](reqs[0])
                check(p is None, "%s: forwarded well-framed" % what, p)
        else:  # either refused with one of statuses, or forwarded as check() wants
            if r["status"] in spec["statuses"] and not got:
                check(error_json_problem(r["body"], r["status"], None) is None,
                      "%s: refused (%s) with a JSON error, not forwarded" % (what, r["status"]),
                      error_json_problem(r["body"], r["status"], None))
                check(r["closed"], "%s: connection closed" % what, "left open after " + describe(r))
            elif r["status"] == 200 and len(reqs) == 1:
                p = spec["check"](reqs[0])
                check(p is None, "%s: forwarded, and well-framed" % what, p)
            else:
                check(False, "%s: refused (%s) or forwarded well-framed" %
                      (what, "/".join(map(str, spec["statuses"]))),
                      "%s; backend received: %s (%s)" % (describe(r), backend_view(evs), spec["note"]))

# ---------------------------------------------------------------- response cases
def get(port, path, close=False):
    return exchange(port, b"GET %s HTTP/1.1\r\nHost: x\r\n%s\r\n" %
                    (path.encode(), b"Connection: close\r\n" if close else b""), timeout=5, grace=0.2)

def conn_of(r):
    try:
        return json.loads(r["body"])["conn"]
    except Exception:
        return None

# a bad chunk size is found in the body: the gateway had already passed the
# head on, so it cuts the connection (issue 9: "a reset stream or a closed
# connection, never a truncated response that looks complete")
CUT_OK = {"chunk_zz", "chunk_overflow", "chunk_negative"}

def run_responses(port, logpath):
    log = Log(logpath)
    # reuse first: with one worker two requests in a row share a backend connection
    a = get(port, "/ok")
    b = get(port, "/ok")
    reuse = conn_of(a) is not None and conn_of(a) == conn_of(b)
    check(reuse, "responses: the gateway reuses a backend connection (so a new one means the bad one was dropped)",
          "backend connections %s then %s" % (conn_of(a), conn_of(b)))
    for name, key in RESP_CASES:
        what = "response, %s" % name
        mark = log.refresh()
        r = get(port, "/raw/" + key)
        # the backend connection(s) that carried this request
        deadline = time.monotonic() + 2
        while True:
            log.refresh()
            evs = log.events[mark:]
            cids = sorted({e["c"] for e in evs if e["ev"] == "req" and e["line"].startswith("GET /raw/")})
            closed = {e["c"]: e["by"] for e in evs if e["ev"] == "close"}
            if (cids and all(c in closed for c in cids)) or time.monotonic() > deadline:
                break
            time.sleep(0.05)
        nxt = get(port, "/ok")
        p = None
        if r["status"] == 502:
            p = error_json_problem(r["body"], 502, "backend_unavailable")
        if key in CUT_OK and r["status"] is None and (r["closed"] or r["reset"]) and not r["raw"]:
            # the head was already on its way to the client: the connection
            # is cut, which no client takes for a complete response
            check(True, "%s: the client's connection is cut, no response that looks complete" % what, "")
        elif check(r["status"] == 502 and p is None, "%s: client gets a 502 JSON error" % what,
                   p or describe(r)):
            pass
        if not cids:
            check(False, "%s: backend connection closed by the gateway" % what, "the backend never got the request")
            continue
        if len(cids) > 1:
            out("note", "%s: the request was sent %d times (retried)" % (what, len(cids)))
        bad = [c for c in cids if not closed.get(c, "").startswith("peer")]
        check(not bad, "%s: backend connection closed by the gateway" % what,
              "; ".join("connection %d: %s" % (c, closed.get(c, "still open 2 s later")) for c in bad))
        nc = conn_of(nxt)
        check(nc is not None and nc not in cids, "%s: the next request uses a new backend connection" % what,
              "next request: %s on backend connection %s (bad one: %s)" % (describe(nxt), nc, cids))

if __name__ == "__main__":
    role = sys.argv[1]
    if role == "backend":
        backend(int(sys.argv[2]), sys.argv[3])
    elif role == "requests":
        run_requests(int(sys.argv[2]), sys.argv[3])
    elif role == "responses":
        run_responses(int(sys.argv[2]), sys.argv[3])
PYEOF

# the raw backend
pick_port BP
: >"$T/backend.jsonl"
$PY "$T/h1s.py" backend "$BP" "$T/backend.jsonl" >"$T/rawbackend.log" 2>&1 &
BPID=$!
fg_track_pid "$BPID"
wait_port "$BP" 10 "$BPID" || die "raw backend did not start: $(tail -n 5 "$T/rawbackend.log")"
note "raw backend on 127.0.0.1:$BP (pid $BPID)"

# one worker: one keep-alive pool, so that reuse of a backend connection is
# observable; short timeouts, so that a case the gateway waits on costs little
pick_port GWP
write_config "$T/gw.json" <<JSON
{
  "workers": 1,
  "listeners": [ { "address": "127.0.0.1:$GWP" } ],
  "client": { "header_timeout_ms": 1000, "idle_timeout_ms": 1500 },
  "upstreams": { "main": { "backends": [ { "address": "127.0.0.1:$BP" } ],
                           "header_timeout_ms": 2000, "idle_timeout_ms": 2000 } },
  "routes": [ { "match": { "path_prefix": "/" }, "upstream": "main" } ]
}
JSON
start_gateway "$T/gw.json"

# report LABEL FILE: the driver's lines as checks
report() {
    local verdict what
    while IFS=$'\t' read -r verdict what; do
        case $verdict in
            ok) ok "$what" ;;
            fail) fail "$what" ;;
            note) note "$what" ;;
            *) fail "$1: unexpected driver output: $verdict $what" ;;
        esac
    done <"$2"
}

timeout -k 5 55 $PY "$T/h1s.py" requests "$GW_PORT" "$T/backend.jsonl" >"$T/requests.out" 2>"$T/requests.err"
rc=$?
report requests "$T/requests.out"
[ $rc == 0 ] || fail "request cases: driver exited with $rc: $(tail -n 5 "$T/requests.err")"

timeout -k 5 35 $PY "$T/h1s.py" responses "$GW_PORT" "$T/backend.jsonl" >"$T/responses.out" 2>"$T/responses.err"
rc=$?
report responses "$T/responses.out"
[ $rc == 0 ] || fail "response cases: driver exited with $rc: $(tail -n 5 "$T/responses.err")"

assert_true "the gateway is still running" kill -0 "$GW_PID"
finish
