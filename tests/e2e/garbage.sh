#!/bin/bash
# Nothing crashes on any input: thousands of mutated HTTP/1.1 requests and
# HTTP/2 connections with mutated frames after a valid preface (a fixed seed,
# so a failure replays), sent from several connections at once. Afterwards the
# gateway must still be running and answer normally; under the sanitizer build
# any memory error in it fails the test (finish checks its log).
. "$(dirname "$0")/lib.sh"
require_cmd curl

start_backend b1
start_backend b2
pick_port GWP
write_config "$T/gw.json" <<JSON
{
  "workers": 2,
  "listeners": [ { "address": "127.0.0.1:$GWP" } ],
  "client": { "header_timeout_ms": 1000, "max_body_bytes": 100000 },
  "upstreams": { "m": { "backends": [ { "address": "${BACKEND_ADDR[b1]}" },
                                      { "address": "${BACKEND_ADDR[b2]}" } ],
                        "header_timeout_ms": 2000 } },
  "routes": [ { "match": { "path_prefix": "/" }, "upstream": "m" } ]
}
JSON
start_gateway "$T/gw.json"

"$PY" - "$GW_PORT" >"$T/fuzz.out" 2>&1 <<'PYEOF'
import random, socket, sys, threading, struct
port = int(sys.argv[1])
rnd_seed = 20261122

h1_seeds = [
    b"GET /echo?x=1 HTTP/1.1\r\nHost: a\r\nX-A: b\r\n\r\n",
    b"POST /echo HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nhello",
    b"POST /echo HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\nX-T: 1\r\n\r\n",
    b"GET /sse?n=2&interval_ms=10 HTTP/1.1\r\nHost: a\r\nConnection: keep-alive, x-y\r\nX-Y: 1\r\n\r\n",
    b"POST /echo HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\nContent-Length: 3\r\n\r\nabc",
    b"GET http://h/echo HTTP/1.1\r\nHost: a\r\n\r\nGET /bytes/10 HTTP/1.1\r\nHost: a\r\n\r\n",
    b"HEAD /bytes/100 HTTP/1.0\r\n\r\n",
]

def mutate(r, data):
    data = bytearray(data)
    for _ in range(r.randint(1, 6)):
        op = r.randint(0, 5)
        pos = r.randint(0, max(0, len(data) - 1))
        if op == 0 and data:
            data[pos] = r.randint(0, 255)
        elif op == 1:
            data[pos:pos] = bytes(r.choice(b"\r\n :\t\x00\x7f0-9aZ") for _ in range(r.randint(1, 4)))
        elif op == 2 and data:
            del data[pos:pos + r.randint(1, 8)]
        elif op == 3:
            data = data[:pos]
        elif op == 4:
            data[pos:pos] = data[r.randint(0, len(data)):][:r.randint(1, 40)] if data else b""
        else:
            data[pos:pos] = str(r.choice([-1, 0, 2**63, 99999999999, 10**30])).encode()
    return bytes(data)

def frame(ftype, flags, sid, payload):
    return struct.pack(">I", len(payload))[1:] + bytes([ftype, flags]) + struct.pack(">I", sid) + payload

# HEADERS for GET /echo with literal (never-indexed) fields, no HPACK state needed
def lit(name, value):
    return b"\x10" + bytes([len(name)]) + name + bytes([len(value)]) + value
get_hdrs = lit(b":method", b"GET") + lit(b":path", b"/echo") + lit(b":scheme", b"http") + lit(b":authority", b"a")
post_hdrs = lit(b":method", b"POST") + lit(b":path", b"/echo") + lit(b":scheme", b"http") + lit(b":authority", b"a")
h2_seeds = [
    frame(4, 0, 0, b"") + frame(1, 5, 1, get_hdrs),
    frame(4, 0, 0, b"") + frame(1, 4, 3, post_hdrs) + frame(0, 0, 3, b"abc") + frame(0, 1, 3, b"def"),
    frame(4, 0, 0, b"") + frame(1, 5, 1, get_hdrs) + frame(3, 0, 1, b"\x00\x00\x00\x08") + frame(6, 0, 0, b"12345678"),
    frame(4, 0, 0, b"") + frame(1, 4, 1, get_hdrs[:20]) + frame(9, 4, 1, get_hdrs[20:]),
    frame(4, 0, 0, b"\x00\x04\x00\x00\x00\x00") + frame(8, 0, 0, b"\x00\x01\x00\x00") + frame(1, 5, 1, get_hdrs),
]
PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"

def run(tid, count, stats):
    r = random.Random(rnd_seed + tid)
    for i in range(count):
        if r.random() < 0.5:
            data = mutate(r, r.choice(h1_seeds))
        else:
            data = PREFACE + mutate(r, r.choice(h2_seeds))
        try:
            s = socket.create_connection(("127.0.0.1", port), timeout=3)
            s.settimeout(0.3)
            s.sendall(data)
            if r.random() < 0.3:
                s.shutdown(socket.SHUT_WR)
            try:
                while s.recv(65536):
                    pass
            except socket.timeout:
                pass
            s.close()
            stats[0] += 1
        except ConnectionRefusedError:
            stats[1] += 1
            print("connection refused: is the gateway down?", flush=True)
            return
        except OSError:
            stats[0] += 1

stats = [0, 0]
threads = [threading.Thread(target=run, args=(t, 250, stats)) for t in range(8)]
for t in threads: t.start()
for t in threads: t.join()
print(f"sent {stats[0]} mutated connections, {stats[1]} refused")
PYEOF
note "$(tail -1 "$T/fuzz.out")"
assert_contains "$(cat "$T/fuzz.out")" ", 0 refused" "the gateway accepted connections throughout"
assert_true "the gateway is still running" kill -0 "$GW_PID"
for v in --http1.1 --http2-prior-knowledge; do
    body=$(fcurl $v --data-binary 'after the storm' "$(gw_url /echo)")
    assert_json "$body" body_bytes 15 "$v a normal request afterwards"
done

finish
