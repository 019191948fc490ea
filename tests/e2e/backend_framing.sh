#!/bin/bash
# Backend responses framed the rarer ways RFC 9112 6.3 allows, through
# both fronts: a body read until the backend closes arrives whole and
# ends properly (HTTP/1.1: a last chunk; HTTP/2: END_STREAM, no reset);
# an interim 1xx response ends with its head whatever framing headers it
# carries (what follows is the final response); a 204 or 304 with Content-Length or chunked
# framing ends with its head, so the client's next request on the same
# connection is answered at once (the gateway then closes that backend
# connection rather than read the stray bytes as the next response).
FG_TEST_TIMEOUT=60
. "$(dirname "$0")/lib.sh"
require_cmd curl

# a backend whose answer is chosen by the path; one request per connection
# for /eof, kept connections otherwise
pick_port BP
cat >"$T/framing.py" <<'PY'
import socket, sys, threading
BODY = b"0123456789" * 3000          # 30000 bytes
ANSWERS = {
    b"/eof": b"HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\nconnection: close\r\n\r\n" + BODY,
    b"/interim": b"HTTP/1.1 103 Early Hints\r\nlink: </a>\r\ncontent-length: 3\r\n\r\n"
                 b"HTTP/1.1 200 OK\r\ncontent-length: 5\r\n\r\nfinal",
    b"/304": b"HTTP/1.1 304 Not Modified\r\netag: \"x\"\r\ncontent-length: 10\r\n\r\n",
    b"/204": b"HTTP/1.1 204 No Content\r\ntransfer-encoding: chunked\r\n\r\n",
    b"/ok": b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok",
}
ls = socket.socket()
ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
ls.bind(("127.0.0.1", int(sys.argv[1])))
ls.listen(64)
def serve(c):
    buf = b""
    try:
        while True:
            while b"\r\n\r\n" not in buf:
                d = c.recv(65536)
                if not d:
                    return
                buf += d
            head, buf = buf.split(b"\r\n\r\n", 1)
            path = head.split(b" ")[1].split(b"?")[0]
            c.sendall(ANSWERS.get(path, ANSWERS[b"/ok"]))
            if path == b"/eof":
                return
    except OSError:
        pass
    finally:
        c.close()
while True:
    c, _ = ls.accept()
    threading.Thread(target=serve, args=(c,), daemon=True).start()
PY
$PY "$T/framing.py" "$BP" >"$T/framing.log" 2>&1 &
fg_track_pid $!
wait_port "$BP" 10 "$!" || die "framing backend did not start"

pick_port GWP
write_config "$T/gw.json" <<JSON
{
  "listeners": [ { "address": "127.0.0.1:$GWP" } ],
  "client": { "idle_timeout_ms": 10000 },
  "upstreams": { "main": { "backends": [ { "address": "127.0.0.1:$BP" } ] } },
  "routes": [ { "match": { "path_prefix": "/" }, "upstream": "main" } ]
}
JSON
start_gateway "$T/gw.json"
expected=$(printf '0123456789%.0s' $(seq 3000) | sha256sum | cut -c1-16)

for v in --http1.1 --http2-prior-knowledge; do
    # read until the backend closes
    rc=0
    fcurl $v -o "$T/eof" -D "$T/eof.h" -w '%{http_code}' "$(gw_url /eof)" >"$T/code" 2>"$T/eof.err" || rc=$?
    assert_eq 0 "$rc" "$v body read until the backend closed: curl sees a proper end ($(head -c 200 "$T/eof.err"))"
    assert_eq 200 "$(cat "$T/code")" "$v ... status"
    assert_eq "$expected" "$(sha256sum <"$T/eof" | cut -c1-16)" "$v ... the whole 30000 bytes (sha256)"

    # a 103 with framing headers, then the real answer
    body=$(fcurl $v "$(gw_url /interim)")
    assert_eq "final" "$body" "$v 1xx with Content-Length: only the final response's body"

    # 304 with Content-Length, 204 chunked: each then /ok on the same
    # connection (HTTP/2: below; curl 7.88 does not reuse a prior-knowledge
    # connection for a second URL)
    [ "$v" = --http1.1 ] || continue
    for p in /304 /204; do
        out=$(fcurl $v -o /dev/null -w '%{http_code} %{time_total}\n' "$(gw_url $p)" -o /dev/null "$(gw_url /ok)")
        codes=$(echo "$out" | awk '{printf "%s ", $1}')
        assert_eq "${p#/} 200 " "$codes" "$v $p then /ok on one connection: statuses"
        slowest=$(echo "$out" | awk 'BEGIN{m=0} $2>m{m=$2} END{print m}')
        assert_true "$v $p and /ok each answered at once (slowest ${slowest} s)" \
            $PY -c "import sys; sys.exit(not $slowest < 2)"
    done
done

# HTTP/2: /304, /204 and /ok one after the other on one connection
out=$(timeout -k 2 20 $PY - "$GWP" "$FG_SRCDIR/tests/tools" <<'PY'
import json, sys, time
sys.path.insert(0, sys.argv[2]); import h2raw
c = h2raw.Conn(int(sys.argv[1]))
r = []
for path in ("/304", "/ok", "/204", "/ok"):
    t0 = time.monotonic()
    sid = c.request(path)
    c.pump(5, until=lambda: c.done(sid))
    r.append([c.status.get(sid), sid in c.ended, c.rst.get(sid), round(time.monotonic() - t0, 2)])
print(json.dumps(r))
PY
)
note "HTTP/2 /304 /ok /204 /ok: $out"
for i in 0 1 2 3; do
    st=$(json_get "$out" "$i.0"); t=$(json_get "$out" "$i.3")
    assert_eq "$(echo "304 200 204 200" | cut -d' ' -f$((i + 1)))" "$st" "h2 request $((i + 1)) of /304 /ok /204 /ok: status"
    assert_json "$out" "$i.1" true "h2 ... request $((i + 1)) ended (END_STREAM)"
    assert_true "h2 ... request $((i + 1)) answered at once ($t s)" $PY -c "import sys; sys.exit(not ${t:-9} < 2)"
done
finish
