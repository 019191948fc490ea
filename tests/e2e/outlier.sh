#!/bin/bash
# Passive checks (outlier_detection): a backend that fails requests in a row
# (here: answers 500) is ejected for base_ejection_ms, then gets traffic
# again, and a second ejection lasts twice as long; success resets the
# count; max_ejected_percent keeps part of the pool in whatever happens.
. "$(dirname "$0")/lib.sh"
require_cmd curl

start_backend good
# "sick", "sick2": 500 for everything
start_py_backend sick --status 500
start_py_backend sick2 --status 500
SICK=${PY_PORT[sick]}
SICK2=${PY_PORT[sick2]}
pick_port GWP
write_config "$T/gw.json" <<JSON
{
  "workers": 2,
  "listeners": [ { "address": "127.0.0.1:$GWP" } ],
  "upstreams": {
    "m": { "balance": "round_robin",
           "backends": [ { "address": "127.0.0.1:$SICK" }, { "address": "${BACKEND_ADDR[good]}" } ],
           "outlier_detection": { "consecutive_failures": 3, "base_ejection_ms": 1000 } },
    "bad": { "balance": "round_robin",
             "backends": [ { "address": "127.0.0.1:$SICK" }, { "address": "127.0.0.1:$SICK2" } ],
             "outlier_detection": { "consecutive_failures": 2, "base_ejection_ms": 60000,
                                    "max_ejected_percent": 50 } }
  },
  "routes": [ { "match": { "path_prefix": "/bad/" }, "upstream": "bad" },
              { "match": { "path_prefix": "/" }, "upstream": "m" } ]
}
JSON
start_gateway "$T/gw.json"

# run N PATH: "sick good other" counts of N sequential requests
run() {
    $PY - "$GWP" "$1" "$2" <<'PY'
import http.client, sys
c = http.client.HTTPConnection("127.0.0.1", int(sys.argv[1]), timeout=10)
n = {}
for i in range(int(sys.argv[2])):
    c.request("GET", sys.argv[3])
    r = c.getresponse(); r.read()
    k = r.getheader("x-backend") or "other"
    n[k] = n.get(k, 0) + 1
print(n.get("sick", 0), n.get("good", 0), n.get("sick2", 0))
PY
}
read -r s g _ <<<"$(run 40 /x)"
note "40 requests: sick $s, good $g"
assert_le "$s" 4 "the failing backend got at most 3 requests (a few more across 2 workers) before its ejection"
assert_contains "$(cat "$GW_LOG")" "ejected for 1000 ms after 3 failures in a row (last: status 500; ejection 1)" "first ejection logged"
sleep 1.2
read -r s g _ <<<"$(run 20 /x)"
note "after 1.2 s: sick $s, good $g"
assert_ge "$s" 1 "after base_ejection_ms the backend gets traffic again"
assert_contains "$(cat "$GW_LOG")" "ejected for 2000 ms" "the second ejection lasts twice as long"

# both backends failing: max_ejected_percent 50 keeps one of the two in
read -r s _ s2 <<<"$(run 30 /bad/x)"
note "both failing: sick $s, sick2 $s2"
assert_ge "$((s + s2))" 30 "requests are still answered (500s) by the backend left in"
n=$(grep -c "upstream bad: backend .* ejected" "$GW_LOG")
assert_eq 1 "$n" "only one of the two backends was ejected (50% cap)"

finish
