#!/bin/bash
# HTTP/1.1 pipelining: three requests written at once on one connection come
# back in order with the right bodies, and the connection then still serves
# a fourth request.
. "$(dirname "$0")/lib.sh"

start_backend b1
simple_config "$T/gw.json" b1
start_gateway "$T/gw.json"

out=$(timeout -k 2 30 $PY - "$GW_PORT" <<'EOF'
import json, socket, sys, time
port = int(sys.argv[1])
s = socket.create_connection(("127.0.0.1", port), timeout=10)
f = s.makefile("rb")

def req(path, rid):
    return ("GET %s HTTP/1.1\r\nHost: pipe.test\r\nx-request-id: %s\r\n\r\n" % (path, rid)).encode()

def read_response():
    line = f.readline()
    if not line:
        return None
    status = int(line.split()[1])
    hdrs = {}
    while True:
        l = f.readline().decode("latin-1").rstrip("\r\n")
        if not l:
            break
        k, v = l.split(":", 1)
        hdrs[k.strip().lower()] = v.strip()
    if hdrs.get("transfer-encoding", "").lower() == "chunked":
        body = b""
        while True:
            n = int(f.readline().split(b";")[0], 16)
            if n == 0:
                while f.readline() not in (b"\r\n", b""):
                    pass
                break
            body += f.read(n)
            f.readline()
    else:
        body = f.read(int(hdrs.get("content-length", "0")))
    return {"status": status, "rid": hdrs.get("x-request-id"), "body": body.decode("latin-1")}

s.sendall(req("/echo?n=1", "pipe-1") + req("/bytes/10", "pipe-2") + req("/echo?n=3", "pipe-3"))
res = [read_response() for _ in range(3)]
s.sendall(req("/echo?n=4", "pipe-4"))
res.append(read_response())
print(json.dumps(res))
EOF
) || die "pipelining client failed: $out"

for i in 0 1 2 3; do
    assert_json "$out" "$i.status" 200 "pipelined response $((i + 1)) status"
    assert_json "$out" "$i.rid" "pipe-$((i + 1))" "response $((i + 1)) carries the x-request-id of request $((i + 1)) (order)"
done
b1=$(json_get "$out" 0.body)
b2=$(json_get "$out" 1.body)
b3=$(json_get "$out" 2.body)
b4=$(json_get "$out" 3.body)
assert_json "$b1" headers.x-request-id pipe-1 "response 1 is the echo of request 1"
assert_json_match "$b1" path '^/echo' "response 1 path"
assert_eq 0123456789 "$b2" "response 2 is /bytes/10"
assert_json "$b3" headers.x-request-id pipe-3 "response 3 is the echo of request 3"
assert_json "$b4" headers.x-request-id pipe-4 "request 4 after the pipelined three is served on the same connection"
assert_json "$b1" headers.host pipe.test "Host of a pipelined request"

finish
