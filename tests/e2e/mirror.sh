#!/bin/bash
# Shadow traffic: a route's mirror gets a copy of its requests (a share of
# them with "percent"), body included; the client only ever sees the
# primary's answer, a slow mirror never delays it (copies beyond
# max_in_flight are dropped), bodies over the mirror's max_body_bytes are
# not copied, and copies in flight when the gateway stops are dropped
# cleanly. Over HTTP/1.1 and h2c.
. "$(dirname "$0")/lib.sh"
require_cmd curl

start_backend prim
start_backend shadow -v
start_backend slow -d 6000
pick_port GWP
write_config "$T/gw.json" <<JSON
{
  "workers": 1,
  "listeners": [ { "address": "127.0.0.1:$GWP" } ],
  "upstreams": {
    "prim": { "backends": [ { "address": "${BACKEND_ADDR[prim]}" } ] },
    "shadow": { "backends": [ { "address": "${BACKEND_ADDR[shadow]}" } ] },
    "slow": { "backends": [ { "address": "${BACKEND_ADDR[slow]}" } ] }
  },
  "routes": [
    { "match": { "path_prefix": "/m/" }, "upstream": "prim", "mirror": { "upstream": "shadow" } },
    { "match": { "path_prefix": "/half/" }, "upstream": "prim",
      "mirror": { "upstream": "shadow", "percent": 50 } },
    { "match": { "path_prefix": "/slow/" }, "upstream": "prim",
      "mirror": { "upstream": "slow", "max_in_flight": 3 } },
    { "match": { "path_prefix": "/big/" }, "upstream": "prim",
      "mirror": { "upstream": "shadow", "max_body_bytes": 100 } }
  ]
}
JSON
start_gateway "$T/gw.json"

shadow_seen() { backend_stat shadow requests; }
wait_shadow() {  # wait_shadow N: until the shadow saw N requests (5 s at most)
    local i
    for ((i = 0; i < 100; i++)); do
        [ "$(shadow_seen)" -ge "$1" ] 2>/dev/null && return 0
        sleep 0.05
    done
    return 1
}

n0=$(shadow_seen)
for v in --http1.1 --http2-prior-knowledge; do
    for i in 1 2 3 4 5; do
        fcurl $v -o /dev/null -D "$T/h" "$(gw_url /m/x)"
        assert_eq prim "$(header_value "$T/h" x-backend)" "$v mirrored GET answered by the primary"
    done
done
wait_shadow $((n0 + 10))
assert_eq $((n0 + 10)) "$(shadow_seen)" "the mirror got a copy of each of the 10 requests"

head -c 3000 /dev/urandom >"$T/body"
SHA=$(sha256sum "$T/body" | awk '{print $1}')
for v in --http1.1 --http2-prior-knowledge; do
    fcurl $v -o "$T/b" --data-binary @"$T/body" "$(gw_url /m/echo)"
    assert_json "$(cat "$T/b")" body_sha256 "$SHA" "$v mirrored POST: the primary got the body"
done
wait_shadow $((n0 + 12))
assert_eq 2 "$(grep -c 'POST /m/echo .* (body 3000 bytes)' "$T/backend-shadow.log")" "the mirror got both POST bodies whole"

n1=$(shadow_seen)
fcurl -o /dev/null --data-binary @"$T/body" "$(gw_url /big/x)"
sleep 0.3
assert_eq "$n1" "$(shadow_seen)" "a body over the mirror's max_body_bytes is not copied"

# percent 50: about half of 400 requests
n2=$(shadow_seen)
timeout -k 2 60 $PY - "$GWP" <<'PY'
import http.client, sys
c = http.client.HTTPConnection("127.0.0.1", int(sys.argv[1]), timeout=10)
for i in range(400):
    c.request("GET", "/half/%d" % i)
    c.getresponse().read()
PY
sleep 0.5
half=$(( $(shadow_seen) - n2 ))
note "percent 50: $half of 400 copied"
assert_ge "$half" 150 "percent 50: copies (>= 150 of 400)"
assert_le "$half" 250 "percent 50: copies (<= 250 of 400)"

# a mirror 6 s slow: 20 requests are answered at once, 3 copies at most in
# flight (none of them can have finished while the 20 run, however slow the
# machine)
# (each request's own time, not the loop's: starting 20 curls on a busy
# machine is no measure of the gateway)
worst=0
for i in $(seq 1 20); do
    ms=$(fcurl -o /dev/null -w '%{time_total}' "$(gw_url /slow/x)" | awk '{printf "%d", $1 * 1000}')
    [ "$ms" -gt "$worst" ] && worst=$ms
done
note "20 requests with a slow mirror: the slowest took ${worst} ms"
assert_le "$worst" 1500 "a slow mirror does not delay the primary (no request near one mirror answer, 6 s)"
assert_eq 3 "$(backend_stat slow requests)" "copies beyond max_in_flight 3 are dropped"

# copies still in flight when the gateway stops: dropped, nothing leaks
pids=()
for i in 1 2 3; do fcurl -o /dev/null "$(gw_url /slow/y)" & pids+=($!); done
wait "${pids[@]}"
stop_gateway

finish
