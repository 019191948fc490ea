#!/bin/bash
# Active health checks: a backend whose health path fails `fall` times in a
# row stops getting requests (on every worker), comes back after `rise`
# passes; a body check (body_contains) counts; a refused connection counts;
# with every backend down, requests get 503 at once, not after a timeout.
. "$(dirname "$0")/lib.sh"
require_cmd curl

# a, b: /health answers 200 "ready", 503 while $T/NAME.down exists, 200
# "warming" while $T/NAME.warm exists; each check adds a byte to
# $T/NAME.checks; anything else 200 with x-backend: NAME
start_py_backend a --flags "$T"
start_py_backend b --flags "$T"
PA=${PY_PORT[a]}
PB=${PY_PORT[b]}
pick_port GWP
write_config "$T/gw.json" <<JSON
{
  "workers": 2,
  "listeners": [ { "address": "127.0.0.1:$GWP" } ],
  "upstreams": {
    "m": { "balance": "round_robin",
           "backends": [ { "address": "127.0.0.1:$PA" }, { "address": "127.0.0.1:$PB" } ],
           "health_check": { "path": "/health", "interval_ms": 200, "timeout_ms": 150,
                             "rise": 2, "fall": 2, "body_contains": "ready" } }
  },
  "routes": [ { "match": { "path_prefix": "/" }, "upstream": "m" } ]
}
JSON
start_gateway "$T/gw.json"

spread() {  # spread N: "a b" counts of N requests
    $PY - "$GWP" "$1" <<'PY'
import http.client, sys
c = http.client.HTTPConnection("127.0.0.1", int(sys.argv[1]), timeout=10)
n = {"a": 0, "b": 0, "other": 0}
for i in range(int(sys.argv[2])):
    c.request("GET", "/x")
    r = c.getresponse(); r.read()
    n[r.getheader("x-backend") or "other"] = n.get(r.getheader("x-backend") or "other", 0) + 1
print(n["a"], n["b"], n["other"])
PY
}
sleep 0.6
read -r na nb no <<<"$(spread 40)"
assert_eq "20 20 0" "$na $nb $no" "both healthy: round robin over both"
c0=$(wc -c <"$T/a.checks")
sleep 1
checks=$(( $(wc -c <"$T/a.checks") - c0 ))
note "checks of backend a in 1 s (interval 200 ms, 2 workers): $checks"
assert_ge "$checks" 3 "the health path is checked every interval_ms"
assert_le "$checks" 7 "checks run once per backend, not once per worker (2 workers would double them)"

touch "$T/a.down"
sleep 0.9
read -r na nb no <<<"$(spread 40)"
assert_eq "0 40 0" "$na $nb $no" "a failing its health check: every request to b"
assert_contains "$(cat "$GW_LOG")" "backend 127.0.0.1:$PA is DOWN: status 503" "DOWN logged with the reason"

rm -f "$T/a.down"
touch "$T/a.warm"                   # 200 but not "ready": still failing
sleep 0.9
read -r na nb no <<<"$(spread 20)"
assert_eq "0 20 0" "$na $nb $no" "a answering 200 without \"ready\" in the body: still down"
rm -f "$T/a.warm"
sleep 0.9
read -r na nb no <<<"$(spread 40)"
assert_eq "20 20 0" "$na $nb $no" "a passing again (rise 2): back in rotation"
assert_contains "$(cat "$GW_LOG")" "backend 127.0.0.1:$PA is UP" "UP logged"

# slow start: a second gateway with slow_start_ms 2000 ramps a back in
pick_port GWP2
write_config "$T/gw2.json" <<JSON
{
  "workers": 1,
  "listeners": [ { "address": "127.0.0.1:$GWP2" } ],
  "upstreams": {
    "m": { "balance": "round_robin", "slow_start_ms": 2000,
           "backends": [ { "address": "127.0.0.1:$PA" }, { "address": "127.0.0.1:$PB" } ],
           "health_check": { "path": "/health", "interval_ms": 100, "timeout_ms": 90,
                             "rise": 1, "fall": 1 } }
  },
  "routes": [ { "match": { "path_prefix": "/" }, "upstream": "m" } ]
}
JSON
GWP_SAVED=$GWP
start_gateway "$T/gw2.json"
GWP=$GWP2
touch "$T/a.down"
sleep 0.5
rm -f "$T/a.down"
for i in $(seq 1 50); do grep -q "127.0.0.1:$PA is UP" "$GW_LOG" && break; sleep 0.02; done
read -r na nb no <<<"$(spread 100)"
note "slow start, just after a came back: a $na, b $nb"
assert_le "$na" 25 "slow start: a returning backend gets a small share at first"
sleep 2.2
read -r na nb no <<<"$(spread 100)"
note "slow start, 2.2 s later: a $na, b $nb"
assert_ge "$na" 40 "slow start over: a gets its full share again"
assert_le "$na" 60 "slow start over: a gets its full share, no more"
GWP=$GWP_SAVED

# a backend that is gone (connection refused) goes down too; all down: 503 at once
stop_pid "${PY_PID[a]}" 2
touch "$T/b.down"
sleep 0.9
t0=$(date +%s%N)
code=$(fcurl -o "$T/body" -w '%{http_code}' "$(gw_url /x)")
ms=$((($(date +%s%N) - t0) / 1000000))
assert_eq 503 "$code" "every backend down: 503"
assert_error_json "$(cat "$T/body")" 503 no_backend "every backend down: body"
assert_le "$ms" 500 "every backend down: answered at once (ms)"
assert_contains "$(cat "$GW_LOG")" "backend 127.0.0.1:$PA is DOWN" "refused connections take a backend down"

finish
