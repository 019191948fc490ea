#!/bin/bash
# The access log: one JSON line per request with its fields (the key's name,
# never the key; the client's own path before a rewrite; country with a
# GeoIP database), buffered and written within a second, reopened on
# SIGUSR1 after logrotate moved the file; the log level from the config.
. "$(dirname "$0")/lib.sh"
require_cmd curl

DB=${FG_TESTDATA:-$FG_SRCDIR/../shared/testdata}/geoip
start_backend a
pick_port GWP
KEY=fgk_accesslogtestkey0123456789
SHA=$(printf '%s' "$KEY" | sha256sum | awk '{print $1}')
GEO=
[ -f "$DB/loopback-test.mmdb" ] && GEO="\"geoip\": { \"database\": \"$DB/loopback-test.mmdb\" },"
write_config "$T/gw.json" <<JSON
{
  "workers": 2,
  "listeners": [ { "address": "127.0.0.1:$GWP" } ],
  $GEO
  "log": { "access": "access.log", "level": "warn" },
  "client": { "max_header_bytes": 262144 },
  "upstreams": { "m": { "backends": [ { "address": "${BACKEND_ADDR[a]}" } ] } },
  "routes": [ { "name": "models", "match": { "path_prefix": "/v2/models/" }, "upstream": "m",
                "auth": "open", "rewrite": { "model": "x" } },
              { "name": "api", "match": { "path_prefix": "/api/" }, "upstream": "m",
                "rewrite": { "path_prefix": "/" } },
              { "name": "open", "match": { "path_prefix": "/" }, "upstream": "m", "auth": "open" } ],
  "access": { "keys": [ { "name": "team-a", "sha256": "$SHA" } ] }
}
JSON
start_gateway "$T/gw.json"
LOG=$T/access.log

# lines PY-EXPR: evaluates EXPR over the list L of the log's JSON objects
lines() {
    $PY - "$LOG" "$1" <<'PY'
import json, sys
L = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
# the workers write their own buffers: find lines by path, not by order
P = {d["path"]: d for d in L}
print(eval(sys.argv[2]))
PY
}
wait_lines() {  # wait_lines N: until the log holds N lines (3 s at most)
    for i in $(seq 1 30); do
        [ -f "$LOG" ] && [ "$(wc -l <"$LOG")" -ge "$1" ] && return 0
        sleep 0.1
    done
}

fcurl -o /dev/null -H "x-api-key: $KEY" -d 'hello' "$(gw_url '/api/echo?q=x')"
fcurl -o /dev/null --http2-prior-knowledge "$(gw_url /status/404)"
fcurl -o /dev/null "$(gw_url /api/echo)"
wait_lines 3
assert_eq 3 "$(wc -l <"$LOG")" "three requests, three lines, within a second"
assert_eq True "$(lines 'all(set(["time","request_id","client","method","path","protocol","status","bytes_in","bytes_out","duration_ms","connect_ms","ttfb_ms"]) <= set(d) for d in L)')" \
    "every line has the fields"
assert_eq team-a "$(lines 'P["/api/echo?q=x"]["key"]')" "the key's name"
assert_eq '/api/echo?q=x' "$(lines 'L[[d.get("key") for d in L].index("team-a")]["path"]')" "the client's path, before the rewrite"
assert_eq "api m ${BACKEND_ADDR[a]} 200 5" "$(lines '" ".join(str(P["/api/echo?q=x"][k]) for k in ["route","upstream","backend","status","bytes_in"])')" \
    "route, upstream, backend, status, bytes in"
assert_eq "HTTP/2 404 open" "$(lines '" ".join(str(P["/status/404"][k]) for k in ["protocol","status","route"])')" \
    "an HTTP/2 request and the backend's 404"
assert_eq "401 None" "$(lines 'str(P["/api/echo"]["status"]) + " " + str(P["/api/echo"].get("upstream"))')" \
    "a refusal (401) is logged, with no upstream"
assert_eq True "$(lines 'P["/status/404"]["ttfb_ms"] <= P["/status/404"]["duration_ms"] and P["/status/404"]["duration_ms"] > 0')" "times: ttfb <= total"
assert_eq 127.0.0.1 "$(lines 'P["/status/404"]["client"]')" "the client's address"
[ -n "$GEO" ] && assert_eq ZZ "$(lines 'P["/status/404"]["country"]')" "the client's country (loopback-test.mmdb)"
assert_eq 0 "$(grep -c "$KEY" "$LOG")" "the key itself is not in the access log"
assert_eq 0 "$(grep -c 'listening on' "$GW_LOG")" "log level warn: info lines are not written"

# a long client path that a rewrite shortens: the line is sized for the
# client's path, escaped (each " takes two bytes)
long=$(head -c 100000 /dev/zero | tr '\0' '"')
$PY - "$GWP" "$long" <<'PY'
import socket, sys
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=5)
s.sendall(b"GET /v2/models/" + sys.argv[2].encode() + b"/ready HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n")
while s.recv(65536):
    pass
PY
wait_lines 4
assert_true "the gateway lives on after a 100000-quote path" kill -0 "$GW_PID"
assert_eq 100000 "$(lines 'max(d["path"].count(chr(34)) for d in L)')" "the long path is logged whole"

# logrotate: move the file, SIGUSR1, the next lines go to a new file
mv "$LOG" "$T/access.log.1"
kill -USR1 "$GW_PID"
sleep 0.3
fcurl -o /dev/null "$(gw_url /x)"
wait_lines 1
assert_eq 1 "$(wc -l <"$LOG" 2>/dev/null)" "after SIGUSR1 a new file takes the new lines"
assert_eq 4 "$(wc -l <"$T/access.log.1")" "the moved file keeps the old ones"

# lines waiting in a worker's buffer are written when it stops
fcurl -o /dev/null "$(gw_url /y)"
stop_gateway
assert_eq 2 "$(wc -l <"$LOG")" "on SIGTERM the buffered lines are written"

finish
