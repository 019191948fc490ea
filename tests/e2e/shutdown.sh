#!/bin/bash
# Graceful shutdown: SIGTERM closes the listeners (new connections are
# refused), sends GOAWAY on HTTP/2, closes idle keep-alive connections, lets
# the requests in progress finish, and exits once they did, or when
# drain_timeout_ms has passed; SIGINT stops at once.
. "$(dirname "$0")/lib.sh"
require_cmd curl nghttp

start_backend a
gw_config() {  # gw_config FILE DRAIN_MS
    pick_port GWP
    write_config "$1" <<JSON
{
  "workers": 2,
  "drain_timeout_ms": $2,
  "listeners": [ { "address": "127.0.0.1:$GWP" } ],
  "upstreams": { "m": { "backends": [ { "address": "${BACKEND_ADDR[a]}" } ] } },
  "routes": [ { "match": {}, "upstream": "m" } ]
}
JSON
}

# ---- SIGTERM with requests in progress: they finish, new ones are refused
gw_config "$T/gw.json" 5000
start_gateway "$T/gw.json"
fcurl -o "$T/h1.body" -w '%{http_code}' "$(gw_url '/slow?ms=1500')" >"$T/h1.code" &
H1=$!
nghttp -nv "$(gw_url '/slow?ms=1500')" >"$T/h2.out" 2>&1 &
H2=$!
# an idle keep-alive connection: its one request answered, then nothing
$PY - "$GWP" >"$T/idle.out" <<'PY' &
import socket, sys, time
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=10)
s.sendall(b"GET /echo HTTP/1.1\r\nhost: x\r\n\r\n")
buf = b""
while b"\r\n\r\n" not in buf:
    buf += s.recv(65536)
t = time.time()
try:
    while s.recv(65536):
        pass
    print("closed after %.1f s" % (time.time() - t))
except socket.timeout:
    print("still open")
PY
IDLE=$!
sleep 0.5
t0=$(date +%s%N)
kill -TERM "$GW_PID"
sleep 0.2
code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 2 "$(gw_url /echo)"); rc=$?
assert_eq 7 "$rc" "after SIGTERM a new connection is refused (curl exit 7, got $rc, HTTP $code)"
wait "$H1"; wait "$H2"; wait "$IDLE"
assert_eq 200 "$(cat "$T/h1.code")" "an HTTP/1.1 request in progress finishes (200)"
assert_match "$(cat "$T/h2.out")" 'recv GOAWAY frame' "HTTP/2: the client gets GOAWAY"
assert_match "$(cat "$T/h2.out")" ':status: 200' "HTTP/2: its stream in progress finishes (200)"
assert_match "$(cat "$T/idle.out")" '^closed after 0\.' "an idle keep-alive connection is closed at once"
gateway_exits 5
ms=$((($(date +%s%N) - t0) / 1000000))
assert_eq 0 "$FG_STOP_STATUS" "exit status 0 after draining"
assert_le "$ms" 3500 "it exits once the requests finished, not at drain_timeout_ms ($ms ms)"
assert_contains "$(cat "$GW_LOG")" "drained" "the log says it drained"

# ---- a request longer than drain_timeout_ms is cut when it passes
gw_config "$T/gw2.json" 700
start_gateway "$T/gw2.json"
fcurl -o /dev/null -w '%{http_code}' "$(gw_url '/slow?ms=5000')" >"$T/long.code" 2>/dev/null &
LONG=$!
sleep 0.3
t0=$(date +%s%N)
kill -TERM "$GW_PID"
wait "$LONG"
ms=$((($(date +%s%N) - t0) / 1000000))
assert_ne 200 "$(cat "$T/long.code")" "a request past drain_timeout_ms is cut, not answered 200"
assert_le "$ms" 2500 "...about drain_timeout_ms after SIGTERM ($ms ms)"
gateway_exits 5
assert_eq 0 "$FG_STOP_STATUS" "exit status 0 after a drain that timed out"
assert_contains "$(cat "$GW_LOG")" "drain_timeout_ms (700) passed" "the log says the drain timed out"

# ---- SIGINT: at once
gw_config "$T/gw3.json" 30000
start_gateway "$T/gw3.json"
fcurl -o /dev/null -w '%{http_code}' "$(gw_url '/slow?ms=5000')" >"$T/int.code" 2>/dev/null &
INT=$!
sleep 0.3
t0=$(date +%s%N)
kill -INT "$GW_PID"
wait "$INT"
ms=$((($(date +%s%N) - t0) / 1000000))
assert_le "$ms" 1000 "SIGINT stops at once ($ms ms), in-flight requests cut"
assert_ne 200 "$(cat "$T/int.code")" "...not answered"
gateway_exits 5

finish
