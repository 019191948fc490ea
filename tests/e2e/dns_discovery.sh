#!/bin/bash
# DNS discovery: a backend {"address": "models.test:PORT", "discovery":
# "dns"} stands for every A and AAAA record of the name, asked of a DNS
# server on loopback (tests/tools/fake-dns.py) again on the TTL; records
# added and removed become backends added and removed (under h2load, with
# 0 failed requests); a DNS server that stops answering keeps the backends
# known; NXDOMAIN leaves none (503); a file reload keeps the answers; and
# the configuration errors name their JSON path.
. "$(dirname "$0")/lib.sh"
require_cmd curl h2load

pick_port DNSP
pick_port BP
pick_port ADM
RECORDS=$T/records.json
records() {  # records A-LIST AAAA-LIST: the fake server's answers for models.test
    printf '{"ttl": 1, "names": {"models.test": {"A": [%s], "AAAA": [%s]}}}\n' "$1" "$2" >"$RECORDS.new"
    mv "$RECORDS.new" "$RECORDS"
}
start_dns() {
    $PY "$FG_SRCDIR/tests/tools/fake-dns.py" --port "$DNSP" --records "$RECORDS" >>"$T/dns.log" 2>&1 &
    DNS_PID=$!
    fg_track_pid "$DNS_PID"
    for ((i = 0; i < 100; i++)); do
        grep -q listening "$T/dns.log" 2>/dev/null && return 0
        sleep 0.05
    done
    die "fake DNS server did not start: $(tail -n 3 "$T/dns.log")"
}
# backends x, y on 127.0.0.2 and .3, z on ::1, all on port BP
for spec in x:127.0.0.2:$BP y:127.0.0.3:$BP "z:[::1]:$BP"; do
    name=${spec%%:*}
    "$FG_BACKEND" -l "${spec#*:}" -n "$name" >"$T/backend-$name.log" 2>&1 &
    fg_track_pid $!
done
for ((i = 0; i < 100; i++)); do
    [ "$(cat "$T"/backend-*.log 2>/dev/null | grep -c listening)" = 3 ] && break
    sleep 0.05
done
assert_eq 3 "$(cat "$T"/backend-*.log | grep -c listening)" "three backends listening on 127.0.0.2, 127.0.0.3 and ::1"

records '"127.0.0.2"' ''
start_dns
write_config "$T/gw.json" <<JSON
{
  "workers": 2,
  "listeners": [ { "address": "127.0.0.1:0" } ],
  "admin": { "address": "127.0.0.1:$ADM" },
  "dns": { "nameservers": [ "127.0.0.1:$DNSP" ], "min_ttl_ms": 200, "max_ttl_ms": 1000, "timeout_ms": 300 },
  "upstreams": { "m": { "backends": [ { "address": "models.test:$BP", "discovery": "dns" } ] } },
  "routes": [ { "match": { "path_prefix": "/" }, "upstream": "m" } ]
}
JSON
pick_port GWP
sed -i "s/127.0.0.1:0/127.0.0.1:$GWP/" "$T/gw.json"
start_gateway "$T/gw.json"

who() { fcurl -D - -o /dev/null "$(gw_url /)" | tr -d '\r' | awk -F': ' 'tolower($1) == "x-backend" {print $2}'; }
# seen N: the backends that answered N requests, sorted, space-separated
seen() {
    local i
    for ((i = 0; i < $1; i++)); do who; done | sort -u | tr '\n' ' ' | sed 's/ $//'
}
# until_seen WANT: wait (8 s at most) until 30 requests are answered by WANT exactly
until_seen() {
    local i got
    for ((i = 0; i < 40; i++)); do
        got=$(seen 30)
        [ "$got" = "$1" ] && return 0
        sleep 0.2
    done
    echo "$got"
    return 1
}

assert_eq x "$(seen 10)" "at start: the one address of models.test (x)"
st=$(admin_status "$ADM")
assert_json "$st" 'upstreams.m.backends.0.address' "127.0.0.2:$BP" "/status: the backend's address"
assert_json "$st" 'upstreams.m.backends.0.dns_name' "models.test:$BP" "/status: the name it was found under"

# ---- records added: new backends, IPv6 included
records '"127.0.0.2", "127.0.0.3"' '"::1"'
until_seen "x y z" >/dev/null
assert_eq "x y z" "$(seen 30)" "an A and an AAAA record added: three backends"
assert_contains "$(cat "$GW_LOG")" "built again with new DNS answers" "the log says why the configuration changed"

# ---- records change under load: nothing lost
(sleep 0.3; records '"127.0.0.3"' '"::1"'; sleep 1.2; records '"127.0.0.2", "127.0.0.3"' ''; sleep 1.2
 records '"127.0.0.2"' '"::1"') &
FLIP=$!
h2load -n 3000 -c 4 -m 4 "$(gw_url '/slow?ms=3')" >"$T/h2load" 2>&1
wait "$FLIP"
assert_match "$(grep '^requests:' "$T/h2load")" '3000 succeeded, 0 failed, 0 errored' \
    "h2load while records are removed and added: 0 failed"
assert_match "$(grep '^status codes:' "$T/h2load")" '^status codes: 3000 2xx' "... all 2xx"
assert_ge "$(grep -c 'built again with new DNS answers' "$GW_LOG")" 3 "the changes were followed"

# ---- records removed
records '"127.0.0.3"' ''
until_seen "y" >/dev/null
assert_eq y "$(seen 20)" "records removed: their backends take no more requests"

# ---- the DNS server stops answering: the backends known stay
stop_pid "$DNS_PID" 2
sleep 1.5
assert_eq y "$(seen 10)" "no DNS answer (timeouts): the backends known stay"
assert_contains "$(cat "$GW_LOG")" "dns: models.test:" "the failed lookups are logged"

# ---- NXDOMAIN: no backend
printf '{"ttl": 1, "names": {}}\n' >"$RECORDS"
start_dns
for ((i = 0; i < 40; i++)); do
    [ "$(fcurl -o /dev/null -w '%{http_code}' "$(gw_url /)")" = 503 ] && break
    sleep 0.2
done
code=$(fcurl -o "$T/b" -w '%{http_code}' "$(gw_url /)")
assert_eq 503 "$code" "NXDOMAIN: no backend left: 503"
assert_json "$(cat "$T/b")" error.status 503 "... with a JSON error"

# ---- a file reload keeps the answers known
records '"127.0.0.2"' ''
until_seen "x" >/dev/null
kill -HUP "$GW_PID"
sleep 0.3
assert_eq x "$(seen 10)" "SIGHUP: the backends found by name are still there at once"

stop_gateway

# ---- configuration errors
cfg_err() {  # cfg_err BACKEND-JSON DNS-JSON: fleetgate -t output
    cat >"$T/bad.json" <<JSON
{ "listeners": [ { "address": "127.0.0.1:1" } ], $2
  "upstreams": { "m": { "backends": [ $1 ] } },
  "routes": [ { "match": {}, "upstream": "m" } ] }
JSON
    "$FG_GATEWAY" -t -c "$T/bad.json" 2>&1
}
assert_match "$(cfg_err '{ "address": "127.0.0.9:80", "discovery": "dns" }' '')" \
    'bad\.json:[0-9]+:[0-9]+: \$\.upstreams\.m\.backends\[0\]\.address: .*host name, not an address' \
    "discovery dns with an address: the file, path and reason"
assert_match "$(cfg_err '{ "address": "models.test", "discovery": "dns" }' '')" \
    '\$\.upstreams\.m\.backends\[0\]\.address: must be "HOST:PORT"' "discovery dns without a port"
assert_match "$(cfg_err '{ "address": "127.0.0.9:80", "discovery": "srv" }' '')" \
    '\$\.upstreams\.m\.backends\[0\]\.discovery: ' "an unknown discovery"
assert_match "$(cfg_err '{ "address": "127.0.0.9:80" }' '"dns": { "nameservers": [ "ns.example" ] },')" \
    '\$\.dns\.nameservers\[0\]: must be "IP" or "IP:PORT"' "a nameserver given by name"
assert_match "$(cfg_err '{ "address": "127.0.0.9:80" }' '"dns": { "min_ttl_ms": 5000, "max_ttl_ms": 1000 },')" \
    '\$\.dns\.min_ttl_ms: must not be above max_ttl_ms' "min_ttl_ms above max_ttl_ms"
out=$(cfg_err '{ "address": "models.test:80", "discovery": "dns" }' '"dns": { "nameservers": [ "127.0.0.1", "[::1]:5353" ] },')
assert_match "$out" 'ok' "a valid discovery configuration passes -t (names are resolved when it runs)"

finish
