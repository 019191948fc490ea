#!/bin/bash
# GET /metrics on the admin listener: Prometheus text that promtool accepts,
# whose counts match the traffic sent (by route, upstream, backend and
# status class; gateway-made refusals; bytes; latency histograms; client
# connections; backend health; retries; rate limits).
. "$(dirname "$0")/lib.sh"
require_cmd curl h2load promtool

start_backend a
start_backend b
pick_port GWP
pick_port ADM
dead_port DEAD
KEY=fgk_metricstestkey0123456789
SHA=$(printf '%s' "$KEY" | sha256sum | awk '{print $1}')
write_config "$T/gw.json" <<JSON
{
  "workers": 2,
  "listeners": [ { "address": "127.0.0.1:$GWP" } ],
  "admin": { "address": "127.0.0.1:$ADM" },
  "upstreams": {
    "p": { "backends": [ { "address": "127.0.0.1:$DEAD" } ] },
    "f": { "backends": [ { "address": "${BACKEND_ADDR[a]}" } ] },
    "m": { "balance": "round_robin",
           "backends": [ { "address": "${BACKEND_ADDR[a]}" }, { "address": "${BACKEND_ADDR[b]}" } ],
           "retry": { "retry_on": ["connect-failure", 503] } }
  },
  "routes": [ { "name": "keyed", "match": { "path_prefix": "/k/" }, "upstream": "m" },
              { "name": "fb", "match": { "path_prefix": "/fb/" }, "upstream": "p", "auth": "open",
                "fallback": { "upstream": "f" } },
              { "name": "infer", "match": { "path_prefix": "/" }, "upstream": "m", "auth": "open" } ],
  "access": { "keys": [ { "name": "team-a", "sha256": "$SHA", "limits": { "rps": 1, "burst": 2 } } ] }
}
JSON
start_gateway "$T/gw.json"
M="http://127.0.0.1:$ADM/metrics"

# metric NAME LABELS: the value of the series NAME{LABELS} (labels as written, in order)
metric() {
    awk -v want="$1{$2}" '$1 == want {print $2; found = 1} END {if (!found) print "absent"}' "$T/metrics"
}
scrape() { fcurl -D "$T/metrics.h" -o "$T/metrics" "$M"; }

scrape
assert_match "$(header_value "$T/metrics.h" content-type)" '^text/plain; version=0\.0\.4' "Content-Type: the Prometheus text format"
assert_eq 0 "$(metric fleetgate_route_requests_total 'route="infer",code="2xx"')" "before traffic: 0 requests"

# ---- traffic: 20 x 200 over HTTP/1.1, 100 over h2c, 4 x 404 from a backend,
# 3 x 401 and 2 x 200 + 1 x 429 on the keyed route
for i in $(seq 1 20); do fcurl -o /dev/null "$(gw_url /echo)"; done
h2load -n 100 -c 2 -m 4 "$(gw_url /bytes/100)" >"$T/h2load" 2>&1
assert_match "$(grep '^requests:' "$T/h2load")" '100 succeeded' "h2load: 100 requests"
for i in 1 2 3 4; do fcurl -o /dev/null "$(gw_url /status/404)"; done
for i in 1 2 3; do fcurl -o /dev/null "$(gw_url /k/x)"; done
for i in 1 2 3; do fcurl -o /dev/null -H "x-api-key: $KEY" "$(gw_url /k/x)"; done
fcurl -o /dev/null -d 'hello' "$(gw_url /echo)"
sleep 0.3
scrape
promtool check metrics <"$T/metrics" >"$T/promtool.out" 2>&1
assert_eq 0 $? "promtool check metrics accepts the text: $(head -c 300 "$T/promtool.out")"

assert_eq 121 "$(metric fleetgate_route_requests_total 'route="infer",code="2xx"')" \
    "route infer: 121 x 2xx (20 + 100 + 1; the scrapes are not requests of a route)"
assert_eq 4 "$(metric fleetgate_route_requests_total 'route="infer",code="4xx"')" "route infer: 4 x 4xx from the backend"
assert_eq 2 "$(metric fleetgate_route_requests_total 'route="keyed",code="2xx"')" "route keyed: 2 x 2xx"
assert_eq 4 "$(metric fleetgate_route_requests_total 'route="keyed",code="4xx"')" "route keyed: 3 x 401 + 1 x 429"
assert_eq 3 "$(metric fleetgate_gateway_responses_total 'code="401"')" "gateway responses: 3 x 401"
assert_eq 1 "$(metric fleetgate_gateway_responses_total 'code="429"')" "gateway responses: 1 x 429"
assert_eq 1 "$(metric fleetgate_rate_limited_total 'scope="key",name="team-a"')" "rate limited: 1, by the key"
up2=$(metric fleetgate_upstream_requests_total 'upstream="m",code="2xx"')
assert_eq 123 "$up2" "upstream m: 123 x 2xx (the 401s and the 429 never reached it)"
a=$(metric fleetgate_backend_requests_total "upstream=\"m\",backend=\"${BACKEND_ADDR[a]}\",code=\"2xx\"")
b=$(metric fleetgate_backend_requests_total "upstream=\"m\",backend=\"${BACKEND_ADDR[b]}\",code=\"2xx\"")
assert_eq 123 $((a + b)) "backends a + b: the upstream's 2xx ($a + $b)"
assert_ge "$a" 30 "round robin: a served its share ($a)"
assert_eq 127 "$(metric fleetgate_upstream_request_duration_seconds_count 'upstream="m"')" \
    "latency histogram: one observation per request that reached the upstream"
assert_eq 127 "$(metric fleetgate_upstream_request_duration_seconds_bucket 'upstream="m",le="+Inf"')" \
    "latency histogram: +Inf bucket = count"
assert_eq 127 "$(metric fleetgate_upstream_response_header_duration_seconds_count 'upstream="m"')" \
    "time to first byte: one per response head"
assert_eq 5 "$(metric fleetgate_route_received_bytes_total 'route="infer"')" "bytes in: the one 5-byte body"
assert_ge "$(metric fleetgate_route_sent_bytes_total 'route="infer"')" 10000 "bytes out: at least the 100 x 100 bytes"
assert_eq 1 "$(metric fleetgate_backend_healthy "upstream=\"m\",backend=\"${BACKEND_ADDR[a]}\"")" "backend a healthy"
assert_match "$(metric fleetgate_client_connections 'protocol="http/1.1",tls="false"')" '^[1-9]' \
    "client connections: this scrape's own HTTP/1.1 connection"
assert_eq 0 "$(metric fleetgate_client_connections 'protocol="h2",tls="false"')" "no h2 connection left open"
assert_eq 1 "$(metric fleetgate_build_info "version=\"$("$FG_GATEWAY" -v | awk '{print $2}')\"")" "build info"

# ---- a request that falls back to an upstream with nothing usable either
# (its backend drained) counts nowhere it does not belong
fcurl -o /dev/null -X POST -d '{"drain": true}' "http://127.0.0.1:$ADM/upstreams/f/backends/${BACKEND_ADDR[a]}"
code=$(fcurl -o /dev/null -w '%{http_code}' "$(gw_url /fb/x)")
assert_match "$code" '^5' "primary dead, fallback drained: a 5xx"
scrape
assert_match "$(metric fleetgate_route_requests_total 'route="fb",code="5xx"')" '^1$' "counted for its route"
fcurl -o /dev/null -X POST -d '{"drain": false}' "http://127.0.0.1:$ADM/upstreams/f/backends/${BACKEND_ADDR[a]}"

# ---- a request refused while its head is read is counted (route "(none)")
printf 'GET / HTTP/1.1\r\nhost: x\r\nbad header\r\n\r\n' | timeout 5 $PY -c '
import socket, sys
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=5)
s.sendall(sys.stdin.buffer.read())
while s.recv(65536):
    pass' "$GWP"
scrape
assert_eq 1 "$(metric fleetgate_gateway_responses_total 'code="400"')" "a malformed head: one 400 counted"
assert_eq 1 "$(metric fleetgate_route_requests_total 'route="(none)",code="4xx"')" "...under route (none)"

# ---- a retry is counted; HEAD and other methods
n502=$(metric fleetgate_gateway_responses_total 'code="502"' | sed 's/absent/0/')
stop_pid "${BACKEND_PID[b]}"
for i in 1 2 3 4; do fcurl -o /dev/null "$(gw_url /echo)"; done
scrape
assert_eq "$n502" "$(metric fleetgate_gateway_responses_total 'code="502"' | sed 's/absent/0/')" \
    "a dead backend: every request retried on the other (no 502)"
assert_ge "$(metric fleetgate_upstream_retries_total 'upstream="m"')" 1 "the retries are counted"
assert_eq 2 "$(metric fleetgate_route_requests_total 'route="keyed",code="2xx"')" "counts stay put"
code=$(fcurl -o /dev/null -w '%{http_code}' -I "$M")
assert_eq 200 "$code" "HEAD /metrics"
code=$(fcurl -o "$T/post" -w '%{http_code}' -d x "$M")
assert_eq 405 "$code" "POST /metrics: 405"
assert_error_json "$(cat "$T/post")" 405 method_not_allowed "POST /metrics"

finish
