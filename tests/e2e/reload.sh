#!/bin/bash
# Hot reload: SIGHUP and POST /reload load the file again; a bad file is
# rejected with its error and the old configuration keeps serving; a good
# one applies to new requests while requests in flight finish on the old
# one and open connections stay open; listeners are added and removed
# without a restart; run-time state (admin drain, counters) survives; and
# reloading every 100 ms under h2load loses nothing.
. "$(dirname "$0")/lib.sh"
require_cmd curl h2load

start_backend a
start_backend b
A=${BACKEND_ADDR[a]}
B=${BACKEND_ADDR[b]}
pick_port P1
pick_port P2
pick_port ADM

# conf BACKEND LISTENER-PORTS...: the configuration, written aside and
# renamed over gw.json (a reload never reads half a file)
conf() {
    local be=$1 ls="" p
    shift
    for p in "$@"; do ls="$ls${ls:+, }{ \"address\": \"127.0.0.1:$p\" }"; done
    write_config "$T/gw.next.json" <<JSON
{
  "workers": 2,
  "drain_timeout_ms": 2000,
  "listeners": [ $ls ],
  "admin": { "address": "127.0.0.1:$ADM" },
  "upstreams": {
    "u": { "backends": [ { "address": "$be" } ] },
    "both": { "backends": [ { "address": "$A" }, { "address": "$B" } ] }
  },
  "routes": [
    { "name": "pair", "match": { "path_prefix": "/pair/" }, "upstream": "both",
      "rewrite": { "path_prefix": "/" } },
    { "name": "main", "match": { "path_prefix": "/" }, "upstream": "u" }
  ]
}
JSON
    mv "$T/gw.next.json" "$T/gw.json"
}
# who PORT PATH: the backend that answered
who() {
    fcurl -D - -o /dev/null "http://127.0.0.1:$1$2" | tr -d '\r' |
        awk -F': ' 'tolower($1) == "x-backend" {print $2}'
}
# reload_api: POST /reload; status in $T/rl.code, body in $T/rl.b
reload_api() {
    fcurl -X POST -o "$T/rl.b" -w '%{http_code}' "http://127.0.0.1:$ADM/reload" >"$T/rl.code"
}
# until_backend PORT NAME: wait (5 s at most) until PORT/ is answered by NAME
until_backend() {
    local i
    for ((i = 0; i < 50; i++)); do
        [ "$(who "$1" /)" = "$2" ] && return 0
        sleep 0.1
    done
    return 1
}

conf "$A" "$P1"
start_gateway "$T/gw.json"
assert_eq a "$(who "$P1" /)" "before any reload: backend a"

# ---- SIGHUP: a good file applies to new requests
conf "$B" "$P1"
kill -HUP "$GW_PID"
until_backend "$P1" b
assert_eq b "$(who "$P1" /)" "SIGHUP: the new backend answers"
assert_contains "$(cat "$GW_LOG")" "reloaded" "SIGHUP: the log says it reloaded"

# ---- a bad file: rejected, with its error; the old one keeps serving
sed -i 's/"workers": 2,/"workers": 2, "client": { "max_headers": 0 },/' "$T/gw.json"
kill -HUP "$GW_PID"
sleep 0.5
assert_contains "$(cat "$GW_LOG")" "configuration not reloaded" "SIGHUP, bad file: the log says so"
assert_contains "$(cat "$GW_LOG")" '$.client.max_headers' "SIGHUP, bad file: the log names the JSON path"
assert_eq b "$(who "$P1" /)" "SIGHUP, bad file: the old configuration keeps serving"
reload_api
assert_eq 422 "$(cat "$T/rl.code")" "POST /reload, bad file: 422"
assert_error_json "$(cat "$T/rl.b")" 422 invalid_config "POST /reload, bad file"
assert_json_match "$(cat "$T/rl.b")" error.message 'gw.json:[0-9]+:[0-9]+: \$\.client\.max_headers: ' \
    "POST /reload, bad file: the message is FILE:LINE:COL: PATH: reason"
printf '{ "workers": 2, ' >"$T/gw.json"
reload_api
assert_eq 422 "$(cat "$T/rl.code")" "POST /reload, broken JSON: 422"
assert_eq b "$(who "$P1" /)" "broken JSON: the old configuration keeps serving"
fcurl -o /dev/null -w '%{http_code}' -X GET "http://127.0.0.1:$ADM/reload" >"$T/c"
assert_eq 405 "$(cat "$T/c")" "GET /reload: 405"

# ---- listeners added and removed without a restart
conf "$B" "$P1" "$P2"
reload_api
assert_eq 200 "$(cat "$T/rl.code")" "POST /reload, good file: 200"
assert_json "$(cat "$T/rl.b")" result reloaded "POST /reload: result"
assert_eq b "$(who "$P2" /)" "a listener added by a reload answers"
assert_eq b "$(who "$P1" /)" "the listener kept answers"
conf "$B" "$P2"
reload_api
assert_eq 200 "$(cat "$T/rl.code")" "POST /reload, a listener removed: 200"
code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 2 "http://127.0.0.1:$P1/" || true)
assert_eq 000 "$code" "a listener removed by a reload refuses connections"
assert_eq b "$(who "$P2" /)" "the other listener still answers"

# ---- a request in flight finishes on the configuration it began with
(fcurl -D "$T/slow.h" -o "$T/slow.b" -w '%{http_code}' "http://127.0.0.1:$P2/slow?ms=1500" >"$T/slow.code") &
SLOW=$!
sleep 0.3
conf "$A" "$P2"
reload_api
assert_eq 200 "$(cat "$T/rl.code")" "reload while a request is in flight: 200"
assert_eq a "$(who "$P2" /)" "after it, new requests go to the new backend"
wait "$SLOW"
assert_eq 200 "$(cat "$T/slow.code")" "the request in flight finished: 200"
assert_eq b "$(header_value "$T/slow.h" x-backend)" "... on the backend it began with"

# ---- an open HTTP/2 connection goes on through reloads: one connection,
# one request at a time, 8 requests of 200 ms across 6 reloads (h2load does
# not open a second connection: had the gateway closed it, the requests left
# would fail)
n0=$(grep -c 'reloaded (reload' "$GW_LOG")
(for i in 1 2 3 4 5 6; do sleep 0.25; reload_api; done) &
RL=$!
h2load -n 8 -c 1 -m 1 "http://127.0.0.1:$P2/slow?ms=200" >"$T/h2seq" 2>&1
wait "$RL"
assert_match "$(grep '^requests:' "$T/h2seq")" '8 succeeded, 0 failed, 0 errored' \
    "8 requests on one HTTP/2 connection across 6 reloads: all succeed"
assert_match "$(grep '^status codes:' "$T/h2seq")" '^status codes: 8 2xx' "... all 200"
assert_eq 6 "$(($(grep -c 'reloaded (reload' "$GW_LOG") - n0))" "the 6 reloads happened meanwhile"

# ---- run-time state survives: an admin drain, the counters
before=$(fcurl "http://127.0.0.1:$ADM/metrics" | awk '/^fleetgate_route_requests_total\{route="main",code="2xx"\}/ {print $2}')
fcurl -o /dev/null -X POST -d '{"drain": true}' "http://127.0.0.1:$ADM/upstreams/both/backends/$A"
reload_api
st=$(admin_status "$ADM")
assert_eq true "$($PY -c 'import json,sys; d=json.load(sys.stdin); print(str([b["draining"] for b in d["upstreams"]["both"]["backends"] if b["address"]==sys.argv[1]][0]).lower())' "$A" <<<"$st")" \
    "an admin drain survives a reload"
for i in 1 2 3 4; do assert_eq b "$(who "$P2" /pair/x)" "drained backend a still gets nothing after the reload ($i)"; done
after=$(fcurl "http://127.0.0.1:$ADM/metrics" | awk '/^fleetgate_route_requests_total\{route="main",code="2xx"\}/ {print $2}')
assert_ge "$after" "$before" "route counters go on across a reload ($before -> $after)"
assert_ge "$before" 10 "route counters counted before the reload"

# ---- reload every 100 ms under load: nothing lost (HTTP/2 and HTTP/1.1)
flip() {  # reload every 100 ms, switching backend, until $T/stop exists
    local n=0
    while [ ! -e "$T/stop" ] && [ $n -lt 100 ]; do
        if ((n % 2)); then conf "$A" "$P2"; else conf "$B" "$P2"; fi
        kill -HUP "$GW_PID"
        n=$((n + 1))
        sleep 0.1
    done
    echo "$n" >"$T/flips"
}
rm -f "$T/stop"
flip &
FLIP=$!
h2load -n 3000 -c 4 -m 4 "http://127.0.0.1:$P2/pair/slow?ms=5" >"$T/h2load.h2" 2>&1
h2load --h1 -n 1000 -c 4 "http://127.0.0.1:$P2/slow?ms=5" >"$T/h2load.h1" 2>&1
touch "$T/stop"
wait "$FLIP"
assert_ge "$(cat "$T/flips")" 5 "reloads during the load runs ($(cat "$T/flips"))"
assert_match "$(grep '^requests:' "$T/h2load.h2")" '3000 succeeded, 0 failed, 0 errored' "h2c under reloads every 100 ms: 0 failed"
assert_match "$(grep '^status codes:' "$T/h2load.h2")" '^status codes: 3000 2xx' "h2c under reloads: all 2xx"
assert_match "$(grep '^requests:' "$T/h2load.h1")" '1000 succeeded, 0 failed, 0 errored' "HTTP/1.1 under reloads every 100 ms: 0 failed"
assert_match "$(grep '^status codes:' "$T/h2load.h1")" '^status codes: 1000 2xx' "HTTP/1.1 under reloads: all 2xx"
assert_eq 0 "$(grep -c 'not taken\|has not taken' "$GW_LOG")" "every worker took every configuration"
kill -0 "$GW_PID" && ok "the gateway is still running" || fail "the gateway died"

stop_gateway
finish
