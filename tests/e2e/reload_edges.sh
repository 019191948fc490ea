#!/bin/bash
# Reload edge cases (each failed before its fix): a mirrored request that
# began before a reload and is sent after it; a reload that adds
# max_requests while requests are in flight (their slots must wake the new
# configuration's waiters); a split whose arms change; a DNS name added by a
# file reload (resolved at once, not on the next TTL); an upstream with two
# DNS names.
. "$(dirname "$0")/lib.sh"
require_cmd curl

start_backend prim
start_backend shadow
start_backend other
start_backend slow -d 1500
pick_port GWP
pick_port ADM
cfg() {  # cfg UPSTREAMS ROUTES: the configuration, renamed into place
    write_config "$T/gw.next" <<JSON
{ "workers": 1, "drain_timeout_ms": 2000,
  "listeners": [ { "address": "127.0.0.1:$GWP" } ],
  "admin": { "address": "127.0.0.1:$ADM" },
  "upstreams": { $1 },
  "routes": [ $2 ] }
JSON
    mv "$T/gw.next" "$T/gw.json"
}
reload_api() { fcurl -X POST -o "$T/rl.b" -w '%{http_code}' "http://127.0.0.1:$ADM/reload"; }

# ---- a mirrored request whose body arrives after a reload that removed
# its route's upstreams: it finishes on its own configuration
cfg "\"prim\": { \"backends\": [ { \"address\": \"${BACKEND_ADDR[prim]}\" } ] },
     \"shadow\": { \"backends\": [ { \"address\": \"${BACKEND_ADDR[shadow]}\" } ] }" \
    '{ "match": { "model": "x" }, "upstream": "prim", "mirror": { "upstream": "shadow" } }'
start_gateway "$T/gw.json"
$PY - "$GWP" "$T" >"$T/mirror.out" 2>&1 <<'PY' &
import socket, sys, time, os
port, t = int(sys.argv[1]), sys.argv[2]
s = socket.create_connection(("127.0.0.1", port))
body = b'{"model":"x","pad":"' + b"a" * 100 + b'"}'
s.sendall(b"POST /v1/x HTTP/1.1\r\nHost: a\r\nContent-Type: application/json\r\n"
          b"Content-Length: %d\r\n\r\n" % len(body) + body[:10])
open(os.path.join(t, "headsent"), "w").close()
while not os.path.exists(os.path.join(t, "reloaded")):
    time.sleep(0.02)
s.sendall(body[10:])
s.settimeout(5)
data = b""
while b"\r\n\r\n" not in data:
    chunk = s.recv(4096)
    if not chunk:
        break
    data += chunk
print(data.split(b"\r\n")[0].decode(), "backend:",
      [l.split(b": ")[1].decode() for l in data.split(b"\r\n") if l.lower().startswith(b"x-backend:")])
PY
CL=$!
for ((i = 0; i < 100; i++)); do [ -e "$T/headsent" ] && break; sleep 0.05; done
cfg "\"other\": { \"backends\": [ { \"address\": \"${BACKEND_ADDR[other]}\" } ] }" \
    '{ "match": { "path_prefix": "/" }, "upstream": "other" }'
assert_eq 200 "$(reload_api)" "reload while a mirrored request waits for its body"
touch "$T/reloaded"
wait "$CL"
assert_match "$(cat "$T/mirror.out")" "^HTTP/1.1 200 .*backend: \\['prim'\\]" \
    "the request finished on the upstream of its own configuration"
assert_eq other "$(fcurl -D - -o /dev/null "$(gw_url /)" | tr -d '\r' | awk -F': ' 'tolower($1) == "x-backend" {print $2}')" \
    "new requests take the new configuration"

# ---- a reload that adds max_requests while requests are in flight: the
# slots they free wake the new configuration's waiters
cfg "\"u\": { \"backends\": [ { \"address\": \"${BACKEND_ADDR[slow]}\" } ],
             \"queue\": { \"max_length\": 10, \"timeout_ms\": 6000 } }" \
    '{ "match": { "path_prefix": "/" }, "upstream": "u" }'
assert_eq 200 "$(reload_api)" "reload to a slow backend"
fcurl -o /dev/null "$(gw_url /a)" &
A1=$!
fcurl -o /dev/null "$(gw_url /b)" &
A2=$!
sleep 0.3
cfg "\"u\": { \"max_requests\": 1, \"backends\": [ { \"address\": \"${BACKEND_ADDR[slow]}\" } ],
             \"queue\": { \"max_length\": 10, \"timeout_ms\": 6000 } }" \
    '{ "match": { "path_prefix": "/" }, "upstream": "u" }'
assert_eq 200 "$(reload_api)" "reload adding max_requests 1 with 2 requests in flight"
out=$(fcurl -o /dev/null -w '%{http_code} %{time_total}' "$(gw_url /c)")
wait "$A1" "$A2"
assert_eq 200 "${out%% *}" "the queued request is served once the old requests free the slot"
assert_le "$(awk '{printf "%d", $2}' <<<"$out")" 4 "... after them (about 3 s), not at the queue's timeout (6 s): ${out#* } s"

# ---- a split whose arms change: the new arms start from the file's weights
cfg "\"p\": { \"backends\": [ { \"address\": \"${BACKEND_ADDR[prim]}\" } ] },
     \"s\": { \"backends\": [ { \"address\": \"${BACKEND_ADDR[shadow]}\" } ] },
     \"o\": { \"backends\": [ { \"address\": \"${BACKEND_ADDR[other]}\" } ] }" \
    '{ "name": "r", "match": { "path_prefix": "/" }, "split": { "arms": [ { "upstream": "p", "weight": 1 }, { "upstream": "s", "weight": 1 } ] } }'
assert_eq 200 "$(reload_api)" "reload to a split of two arms"
code=$(fcurl -o /dev/null -w '%{http_code}' -X POST -d '{"weights": {"p": 0, "s": 100}}' "http://127.0.0.1:$ADM/routes/r/split")
assert_eq 200 "$code" "split weights set at run time"
cfg "\"p\": { \"backends\": [ { \"address\": \"${BACKEND_ADDR[prim]}\" } ] },
     \"s\": { \"backends\": [ { \"address\": \"${BACKEND_ADDR[shadow]}\" } ] },
     \"o\": { \"backends\": [ { \"address\": \"${BACKEND_ADDR[other]}\" } ] }" \
    '{ "name": "r", "match": { "path_prefix": "/" }, "split": { "arms": [ { "upstream": "p", "weight": 0 }, { "upstream": "s", "weight": 0 }, { "upstream": "o", "weight": 1 } ] } }'
assert_eq 200 "$(reload_api)" "reload to three arms"
st=$(admin_status "$ADM")
assert_json "$st" routes.r.set_at_run_time false "the weights of the two arms are not carried to three"
assert_json "$st" routes.r.split_weights.o 1 "the file's weights are in use"
code=$(fcurl -o /dev/null -w '%{http_code}' -X POST -d '{"weights": {"o": 5, "p": 1}}' "http://127.0.0.1:$ADM/routes/r/split")
assert_eq 200 "$code" "weights for the three arms set at run time"
assert_json "$(admin_status "$ADM")" routes.r.split_weights.o 5 "... and shown"
stop_gateway

# ---- DNS: an upstream with two names; a name added by a file reload has
# backends at once (its TTL is long)
pick_port DNSP
pick_port BP
"$FG_BACKEND" -l "127.0.0.2:$BP" -n one >"$T/backend-one.log" 2>&1 &
fg_track_pid $!
"$FG_BACKEND" -l "127.0.0.3:$BP" -n two >"$T/backend-two.log" 2>&1 &
fg_track_pid $!
echo '{"ttl": 60, "names": {"one.test": {"A": ["127.0.0.2"]}, "two.test": {"A": ["127.0.0.3"]}}}' >"$T/rec.json"
$PY "$FG_SRCDIR/tests/tools/fake-dns.py" --port "$DNSP" --records "$T/rec.json" >"$T/dns.log" 2>&1 &
fg_track_pid $!
for ((i = 0; i < 100; i++)); do
    [ "$(cat "$T/dns.log" "$T"/backend-one.log "$T"/backend-two.log 2>/dev/null | grep -c listening)" = 3 ] && break
    sleep 0.05
done
dcfg() {  # dcfg UPSTREAMS ROUTES
    write_config "$T/gw.next" <<JSON
{ "workers": 1, "drain_timeout_ms": 2000,
  "listeners": [ { "address": "127.0.0.1:$GWP" } ],
  "admin": { "address": "127.0.0.1:$ADM" },
  "dns": { "nameservers": [ "127.0.0.1:$DNSP" ], "max_ttl_ms": 60000 },
  "upstreams": { $1 },
  "routes": [ $2 ] }
JSON
    mv "$T/gw.next" "$T/gw.json"
}
dcfg "\"both\": { \"balance\": \"round_robin\", \"backends\": [ { \"address\": \"one.test:$BP\", \"discovery\": \"dns\" },
                                                      { \"address\": \"two.test:$BP\", \"discovery\": \"dns\" } ] }" \
     '{ "match": { "path_prefix": "/" }, "upstream": "both" }'
out=$("$FG_GATEWAY" -t -c "$T/gw.json" 2>&1)
assert_match "$out" "ok" "-t: an upstream with two DNS names"
start_gateway "$T/gw.json"
seen=$(for i in 1 2 3 4 5 6; do fcurl -D - -o /dev/null "$(gw_url /)" | tr -d '\r' | awk -F': ' 'tolower($1) == "x-backend" {print $2}'; done | sort -u | tr '\n' ' ')
assert_eq "one two " "$seen" "both names' addresses are backends"
dcfg "\"one\": { \"backends\": [ { \"address\": \"one.test:$BP\", \"discovery\": \"dns\" } ] }" \
     '{ "match": { "path_prefix": "/" }, "upstream": "one" }'
assert_eq 200 "$(reload_api)" "reload to one name"
dcfg "\"one\": { \"backends\": [ { \"address\": \"one.test:$BP\", \"discovery\": \"dns\" } ] },
      \"two\": { \"backends\": [ { \"address\": \"two.test:$BP\", \"discovery\": \"dns\" } ] }" \
     '{ "match": { "path_prefix": "/two" }, "upstream": "two" }, { "match": { "path_prefix": "/" }, "upstream": "one" }'
assert_eq 200 "$(reload_api)" "reload adding a name (TTL 60 s)"
for ((i = 0; i < 20; i++)); do
    [ "$(fcurl -o /dev/null -w '%{http_code}' "$(gw_url /two)")" = 200 ] && break
    sleep 0.1
done
assert_le "$i" 10 "the added name has its backend within a second ($((i * 100)) ms), not after its TTL"
assert_eq two "$(fcurl -D - -o /dev/null "$(gw_url /two)" | tr -d '\r' | awk -F': ' 'tolower($1) == "x-backend" {print $2}')" \
    "... and it answers"
stop_gateway
finish
