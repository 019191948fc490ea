#!/bin/bash
# Debian's nginx as a real backend (what the quick start and the benchmarks
# use): fixed JSON and static files through the gateway over HTTP/1.1 and h2c,
# bodies intact, the gateway's keep-alive pool reused (nginx counts far fewer
# connections than requests), and least_conn spreading over two servers.
. "$(dirname "$0")/lib.sh"
require_cmd curl
require_cmd nginx
command -v h2load >/dev/null || skip "h2load (nghttp2-client) is not installed"

pick_port NP1
pick_port NP2
nginx_pid=$("$FG_SRCDIR/scripts/nginx-backend.sh" "$T/nginx" "$NP1" "$NP2") ||
    die "nginx did not start: $(cat "$T/nginx/error.log" 2>/dev/null)"
fg_track_pid "$nginx_pid"

pick_port GWP
write_config "$T/gw.json" <<JSON
{
  "workers": 2,
  "listeners": [ { "address": "127.0.0.1:$GWP" } ],
  "upstreams": { "nginx": { "backends": [ { "address": "127.0.0.1:$NP1" },
                                          { "address": "127.0.0.1:$NP2" } ] } },
  "routes": [ { "match": { "path_prefix": "/" }, "upstream": "nginx" } ]
}
JSON
start_gateway "$T/gw.json"

for v in --http1.1 --http2-prior-knowledge; do
    body=$(fcurl $v "$(gw_url /v2/health/ready)")
    assert_json "$body" status ready "$v fixed JSON from nginx"
    assert_json "$body" uri /v2/health/ready "$v path kept"
    for n in 1024 1048576; do
        want=$(sha256sum <"$T/nginx/www/bytes/$n" | cut -d' ' -f1)
        got=$(fcurl $v "$(gw_url /bytes/$n)" | sha256sum | cut -d' ' -f1)
        assert_eq "$want" "$got" "$v static file of $n bytes intact"
    done
done

# 20000 requests over h2c and h1: none fails, and both nginx servers serve
out=$(timeout 60 h2load -n 20000 -c 16 -m 8 "$(gw_url /v2/health/ready)" 2>&1)
assert_contains "$out" "20000 succeeded, 0 failed" "h2load h2c -n 20000 -c 16 -m 8"
out=$(timeout 60 h2load --h1 -n 20000 -c 16 "$(gw_url /v2/health/ready)" 2>&1)
assert_contains "$out" "20000 succeeded, 0 failed" "h2load --h1 -n 20000 -c 16"
# the gateway reuses its backend connections: nginx saw at most a few hundred
# connections for 40000 requests (without a pool it would be 40000)
conns=$(ss -tn state established "( dport = :$NP1 or dport = :$NP2 )" 2>/dev/null | tail -n +2 | wc -l)
note "established gateway->nginx connections after the runs: $conns"
assert_le "$conns" 256 "idle pooled connections to nginx are bounded by keepalive x workers x backends"
seen=$(for i in $(seq 40); do fcurl "$(gw_url /x)"; echo; done | sed -n 's/.*"backend":"\(nginx-[0-9]*\)".*/\1/p' | sort -u | wc -l)
assert_eq 2 "$seen" "least_conn spreads sequential requests over both nginx servers"

finish
