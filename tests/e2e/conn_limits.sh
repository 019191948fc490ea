#!/bin/bash
# Connection limits: client.max_connections_per_address closes a client's
# connection beyond its share while others are served; client.max_connections
# pauses accepting (the next connection waits in the accept queue, its
# request answered once a place is free) and recovers; running out of file
# descriptors (ulimit -n) pauses accepting instead of spinning, and recovers;
# the admin listener answers through all of it.
. "$(dirname "$0")/lib.sh"
require_cmd curl

start_backend a
pick_port GWP
pick_port ADM
conf() {  # conf CLIENT-KEYS
    write_config "$T/gw.json" <<JSON
{ "workers": ${WORKERS:-2}, "drain_timeout_ms": 2000,
  "listeners": [ { "address": "127.0.0.1:$GWP" } ],
  "admin": { "address": "127.0.0.1:$ADM" },
  "client": { $1 },
  "upstreams": { "u": { "backends": [ { "address": "${BACKEND_ADDR[a]}" } ] } },
  "routes": [ { "match": { "path_prefix": "/" }, "upstream": "u" } ] }
JSON
}
metric() { fcurl "http://127.0.0.1:$ADM/metrics" | awk -v m="$1" 'index($0, m) == 1 {print $2}'; }

# clients.py SCRIPT...: a Python client holding connections (stdout: its verdicts)
cat >"$T/clients.py" <<'PY'
import socket, sys, time
port = int(sys.argv[1])
def conn(src="127.0.0.1"):
    s = socket.socket()
    s.bind((src, 0))
    s.connect(("127.0.0.1", port))
    return s
def ask(s, timeout):
    """a request; the status, 'closed', or 'waiting' when no answer came in time"""
    try:
        s.settimeout(timeout)
        s.sendall(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n")
        d = s.recv(4096)
        return d.split(b" ")[1].decode() if d else "closed"
    except socket.timeout:
        return "waiting"
    except OSError:
        return "closed"
def closed_soon(s, timeout):
    s.settimeout(timeout)
    try:
        return "closed" if s.recv(1) == b"" else "open"
    except socket.timeout:
        return "open"
    except OSError:
        return "closed"
exec(sys.argv[2])
PY

# ---- per address: 3 connections from 127.0.0.1, the 4th is closed at once
conf '"max_connections_per_address": 3'
start_gateway "$T/gw.json"
out=$($PY "$T/clients.py" "$GWP" '
held = [conn() for _ in range(3)]
time.sleep(0.3)
fourth = conn()
print("fourth", closed_soon(fourth, 2))
print("other", ask(conn("127.0.0.2"), 3))
held[0].close()
time.sleep(0.3)
print("after", ask(conn(), 3))
print("held", ask(held[1], 3))
')
assert_contains "$out" "fourth closed" "a 4th connection from one address is closed at once"
assert_contains "$out" "other 200" "another address is served meanwhile"
assert_contains "$out" "after 200" "once one closed, the address connects again"
assert_contains "$out" "held 200" "the connections held are served"
assert_ge "$(metric 'fleetgate_client_connections_refused_total{reason="max_connections_per_address"}')" 1 \
    "metrics count the refusal"
stop_gateway

# ---- global: 4 places; the 5th connection waits, then is served
conf '"max_connections": 4'
start_gateway "$T/gw.json"
out=$($PY "$T/clients.py" "$GWP" '
held = [conn() for _ in range(4)]
time.sleep(0.4)
fifth = conn()
print("fifth-before", ask(fifth, 0.8))
held[0].close()
fifth.settimeout(3)
try:
    d = fifth.recv(4096)
    print("fifth-after", d.split(b" ")[1].decode() if d else "closed")
except socket.timeout:
    print("fifth-after waiting")
print("held", ask(held[1], 3))
')
assert_contains "$out" "fifth-before waiting" "over max_connections: the 5th connection waits (not refused, not served)"
assert_contains "$out" "fifth-after 200" "a place freed: it is accepted and served"
assert_contains "$out" "held 200" "the connections held are served"
assert_ge "$(metric 'fleetgate_accept_pauses_total')" 1 "metrics count the pause"
assert_contains "$(cat "$GW_LOG")" "accepting paused" "the log says accepting paused"
assert_contains "$(cat "$GW_LOG")" "accepting connections again" "... and that it recovered"
code=$(fcurl -o /dev/null -w '%{http_code}' "http://127.0.0.1:$ADM/status")
assert_eq 200 "$code" "the admin listener is not limited"
stop_gateway

# ---- out of descriptors: accept pauses (no spin), recovers
WORKERS=1 conf '"max_connections": 100000'
FG_NGW=$((FG_NGW + 1))
GW_LOG=$T/gateway-$FG_NGW.log
(ulimit -n 48 && exec "$FG_GATEWAY" -c "$T/gw.json") >"$GW_LOG" 2>&1 &
GW_PID=$!
fg_track_pid "$GW_PID"
FG_GW_PIDS+=("$GW_PID")
wait_port "$GWP" 10 "$GW_PID" || die "gateway (ulimit -n 48) did not start: $(tail -n 5 "$GW_LOG")"
GW_PORT=$GWP
out=$($PY "$T/clients.py" "$GWP" '
socks = [conn() for _ in range(60)]
time.sleep(1.0)
for s in socks[:40]:
    s.close()
time.sleep(0.3)
res = [ask(s, 5) for s in socks[40:]]
print("served", res.count("200"), "of", len(res))
')
sleep 0.2
assert_contains "$(cat "$GW_LOG")" "accepting paused" "60 connections with 48 descriptors: accepting paused"
assert_contains "$out" "served 20 of 20" "after 40 closed, the 20 waiting are accepted and served"
cpu=$(awk '{print $14 + $15}' "/proc/$GW_PID/stat" 2>/dev/null || echo 0)
note "gateway CPU ticks so far: $cpu"
assert_le "$cpu" 300 "no spinning on EMFILE (CPU ticks $cpu)"
kill -0 "$GW_PID" && ok "the gateway is still running" || fail "the gateway died"
stop_gateway

# ---- configuration
cat >"$T/bad.json" <<JSON
{ "listeners": [ { "address": "127.0.0.1:1" } ], "client": { "max_connections_per_address": -1 },
  "upstreams": { "u": { "backends": [ { "address": "127.0.0.1:2" } ] } },
  "routes": [ { "match": {}, "upstream": "u" } ] }
JSON
assert_match "$("$FG_GATEWAY" -t -c "$T/bad.json" 2>&1)" '\$\.client\.max_connections_per_address: ' \
    "a negative limit: the file, path and reason"
finish
