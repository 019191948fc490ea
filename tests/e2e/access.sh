#!/bin/bash
# API keys: `fleetgate keygen`, 401 (no key, unknown, expired) with
# WWW-Authenticate, 403 (route, model — in the path or the JSON body), 429
# (burst, concurrency, tokens per minute) with Retry-After and
# x-ratelimit-*, over HTTP/1.1 and HTTP/2; open routes; the key never
# reaches a backend nor a log line; the key file reloads without a restart
# (changed on disk, and on SIGHUP) and a bad one keeps the old keys.
. "$(dirname "$0")/lib.sh"
require_cmd curl h2load sha256sum

start_backend echo
start_py_backend llm
pick_port GWP

# keygen: the key once, then its entry; the entry holds the key's SHA-256
newkey() {  # newkey NAME: sets KEY[NAME] and SHA[NAME]
    local out
    out=$("$FG_GATEWAY" keygen "$1" 2>"$T/keygen.err") || die "keygen $1 failed: $(cat "$T/keygen.err")"
    KEY[$1]=$(sed -n 1p <<<"$out")
    SHA[$1]=$(json_get "$(sed -n 2p <<<"$out")" sha256)
}
declare -A KEY SHA
for k in alice old bursty tiny conc llm llm2 filekey newkey plain; do newkey $k; done
assert_match "${KEY[alice]}" '^fgk_[A-Za-z0-9_-]{43}$' "keygen: a 256-bit key, base64url"
assert_eq "$(printf '%s' "${KEY[alice]}" | sha256sum | awk '{print $1}')" "${SHA[alice]}" \
    "keygen: the entry's sha256 is the key's"
assert_ne "${KEY[alice]}" "${KEY[old]}" "keygen: two keys differ"
"$FG_GATEWAY" keygen 'bad name' >/dev/null 2>&1
assert_eq 2 $? "keygen: an invalid name is refused"

write_keys() {  # write_keys NAME...: the key file with these keys, replaced atomically
    local k sep= tmp=$T/keys.json.tmp
    { echo '{"keys": ['
      for k in "$@"; do printf '%s{"name": "%s", "sha256": "%s"}\n' "$sep" "$k" "${SHA[$k]}"; sep=,; done
      echo ']}'; } >"$tmp"
    mv "$tmp" "$T/keys.json"
}
write_keys filekey

write_config "$T/gw.json" <<JSON
{
  "workers": 2,
  "listeners": [ { "address": "127.0.0.1:$GWP" } ],
  "upstreams": {
    "echo": { "backends": [ { "address": "${BACKEND_ADDR[echo]}" } ] },
    "llm": { "backends": [ { "address": "127.0.0.1:${PY_PORT[llm]}" } ] }
  },
  "routes": [
    { "name": "health", "match": { "path": "/health" }, "upstream": "echo", "auth": "open" },
    { "name": "models", "match": { "path_prefix": "/v2/models/" }, "upstream": "echo" },
    { "name": "chat", "match": { "path_prefix": "/v1/" }, "upstream": "echo",
      "upstream_headers": { "authorization": "Bearer backend-secret" } },
    { "name": "llm", "match": { "path_prefix": "/llm/" }, "upstream": "llm" },
    { "name": "limited", "match": { "path_prefix": "/rl/" }, "upstream": "echo", "auth": "open",
      "limits": { "rps": 1, "burst": 1 } },
    { "name": "kserve", "match": { "path_prefix": "/kserve/" }, "upstream": "echo",
      "rewrite": { "path_prefix": "/v2/" } },
    { "name": "private", "match": { "path_prefix": "/" }, "upstream": "echo" }
  ],
  "access": {
    "keys": [
      { "name": "alice", "sha256": "${SHA[alice]}", "routes": ["models", "chat", "health", "kserve"],
        "models": ["digits"] },
      { "name": "old", "sha256": "${SHA[old]}", "expires": "2020-01-01T00:00:00Z" },
      { "name": "plain", "sha256": "${SHA[plain]}" },
      { "name": "bursty", "sha256": "${SHA[bursty]}", "limits": { "rps": 50, "burst": 100 } },
      { "name": "tiny", "sha256": "${SHA[tiny]}", "limits": { "rps": 1, "burst": 2 } },
      { "name": "conc", "sha256": "${SHA[conc]}", "limits": { "concurrency": 2 } },
      { "name": "llm", "sha256": "${SHA[llm]}", "limits": { "tokens_per_minute": 100 } },
      { "name": "llm2", "sha256": "${SHA[llm2]}", "limits": { "tokens_per_minute": 100 } }
    ],
    "key_file": "keys.json",
    "key_file_check_ms": 200
  }
}
JSON
start_gateway "$T/gw.json"

# req PROTO NAME URL [CURL ARGS]: status in $T/NAME.code, head $T/NAME.h, body $T/NAME.b
req() {
    local proto=$1 name=$2 url=$3; shift 3
    local p=()
    [ "$proto" = h2 ] && p=(--http2-prior-knowledge)
    fcurl "${p[@]}" -D "$T/$name.h" -o "$T/$name.b" -w '%{http_code}' "$@" "$url" >"$T/$name.code"
}

for proto in h1 h2; do
    # ---- open route: no key needed
    req $proto open "$(gw_url /health)"
    assert_eq 200 "$(cat "$T/open.code")" "$proto: an open route answers without a key"

    # ---- 401
    req $proto nokey "$(gw_url /v2/models/digits/infer)"
    assert_eq 401 "$(cat "$T/nokey.code")" "$proto: no key: 401"
    assert_error_json "$(cat "$T/nokey.b")" 401 missing_key "$proto: no key"
    assert_match "$(header_value "$T/nokey.h" www-authenticate)" '^Bearer realm="fleetgate"$' \
        "$proto: no key: WWW-Authenticate: Bearer"
    req $proto badkey "$(gw_url /v2/models/digits/infer)" -H "authorization: Bearer fgk_nope"
    assert_eq 401 "$(cat "$T/badkey.code")" "$proto: unknown key: 401"
    assert_error_json "$(cat "$T/badkey.b")" 401 invalid_key "$proto: unknown key"
    assert_match "$(header_value "$T/badkey.h" www-authenticate)" 'error="invalid_token"' \
        "$proto: unknown key: WWW-Authenticate says invalid_token"
    req $proto expired "$(gw_url /anything)" -H "x-api-key: ${KEY[old]}"
    assert_eq 401 "$(cat "$T/expired.code")" "$proto: expired key: 401"
    assert_error_json "$(cat "$T/expired.b")" 401 key_expired "$proto: expired key"

    # ---- 403
    req $proto route "$(gw_url /private/x)" -H "authorization: Bearer ${KEY[alice]}"
    assert_eq 403 "$(cat "$T/route.code")" "$proto: a route the key may not use: 403"
    assert_error_json "$(cat "$T/route.b")" 403 route_not_allowed "$proto: route not allowed"
    req $proto model "$(gw_url /v2/models/other/infer)" -H "authorization: Bearer ${KEY[alice]}" -d '{}'
    assert_eq 403 "$(cat "$T/model.code")" "$proto: a model (path) the key may not use: 403"
    assert_error_json "$(cat "$T/model.b")" 403 model_not_allowed "$proto: model not allowed"
    req $proto bodymodel "$(gw_url /v1/chat/completions)" -H "authorization: Bearer ${KEY[alice]}" \
        -H 'content-type: application/json' -d '{"model": "gpt-x", "messages": []}'
    assert_eq 403 "$(cat "$T/bodymodel.code")" "$proto: a model (JSON body) the key may not use: 403"
    req $proto nomodel "$(gw_url /v1/chat/completions)" -H "authorization: Bearer ${KEY[alice]}" \
        -d '{"messages": []}'
    assert_eq 403 "$(cat "$T/nomodel.code")" "$proto: a key limited to models, a POST naming none: 403"

    # a body a JSON library reads as another model than the first one
    req $proto dup "$(gw_url /v1/chat/completions)" -H "x-api-key: ${KEY[alice]}" \
        -d '{"model": "digits", "model": "gpt-x"}'
    assert_eq 400 "$(cat "$T/dup.code")" "$proto: a body naming its model twice: 400"
    assert_error_json "$(cat "$T/dup.b")" 400 ambiguous_model "$proto: duplicate model"
    req $proto esc "$(gw_url /v1/chat/completions)" -H "x-api-key: ${KEY[alice]}" \
        -d '{"model": "digits", "mod\u0065l": "gpt-x"}'
    assert_eq 400 "$(cat "$T/esc.code")" "$proto: a model in an escaped key: 400"
    # the model is the one the backend is asked for, after the route's rewrite
    req $proto rw "$(gw_url /kserve/models/other/infer)" -H "x-api-key: ${KEY[alice]}" \
        -d '{"model": "digits"}'
    assert_eq 403 "$(cat "$T/rw.code")" "$proto: the rewritten path names a model the key may not use: 403"
    req $proto rwget "$(gw_url /kserve/models/other)" -H "x-api-key: ${KEY[alice]}"
    assert_eq 403 "$(cat "$T/rwget.code")" "$proto: ...a GET too"
    req $proto rwok "$(gw_url /kserve/models/digits)" -H "x-api-key: ${KEY[alice]}"
    assert_eq 200 "$(cat "$T/rwok.code")" "$proto: the allowed model through the rewrite: 200"
    assert_json "$(cat "$T/rwok.b")" path /v2/models/digits "$proto: (the backend got the rewritten path)"

    # ---- allowed: the key stays at the gateway, the route's credential goes instead
    req $proto okpath "$(gw_url /v2/models/digits/infer)" -H "authorization: Bearer ${KEY[alice]}" -d '{}'
    assert_eq 200 "$(cat "$T/okpath.code")" "$proto: allowed key, route and model (path): 200"
    req $proto okbody "$(gw_url /v1/chat/completions)" -H "x-api-key: ${KEY[alice]}" \
        -H 'content-type: application/json' -d '{"model": "digits", "messages": []}'
    assert_eq 200 "$(cat "$T/okbody.code")" "$proto: allowed model in the JSON body (x-api-key): 200"
    assert_json "$(cat "$T/okbody.b")" headers.authorization "Bearer backend-secret" \
        "$proto: the route's upstream_headers replace the client's Authorization"
    assert_json_absent "$(cat "$T/okbody.b")" headers.[x-api-key] "$proto: x-api-key is not forwarded"
    assert_not_contains "$(cat "$T/okpath.b" "$T/okbody.b")" "${KEY[alice]}" \
        "$proto: the backend never saw the key"
done

# ---- credentials in request trailers are dropped too
tr=$($PY - "$GWP" "${KEY[plain]}" <<'PY'
import socket, sys
port, key = int(sys.argv[1]), sys.argv[2].encode()
s = socket.create_connection(("127.0.0.1", port), timeout=5)
s.sendall(b"POST /echo HTTP/1.1\r\nhost: x\r\nx-api-key: " + key + b"\r\nconnection: close\r\n"
          b"transfer-encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\nx-api-key: " + key +
          b"\r\nauthorization: Bearer " + key + b"\r\nx-other: kept\r\n\r\n")
out = b""
while True:
    d = s.recv(65536)
    if not d:
        break
    out += d
sys.stdout.write(out.decode("latin-1").split("\r\n\r\n", 1)[-1])
PY
)
assert_contains "$tr" '"x-other"' "request trailers reach the backend"
assert_not_contains "$tr" "${KEY[plain]}" "a key sent in a trailer does not"

# ---- burst: 200 at once against 50 rps with a burst of 100
h2load -n 200 -c 4 -m 50 -H "authorization: Bearer ${KEY[bursty]}" "$(gw_url /x)" >"$T/burst" 2>&1
ok200=$(grep '^status codes:' "$T/burst" | awk '{print $3}')
n4xx=$(grep '^status codes:' "$T/burst" | awk '{print $7}')
assert_match "$(grep '^requests:' "$T/burst")" '200 done' "burst: all 200 requests answered"
assert_ge "$ok200" 100 "burst: at least the burst of 100 accepted ($ok200)"
assert_le "$ok200" 115 "burst: about the burst, not more ($ok200; 50/s refill while it ran)"
assert_eq 200 $((ok200 + n4xx)) "burst: the rest were refused (429)"
# the answers of a limit: 1 per second with a burst of 2
for i in 1 2 3; do req h1 tiny$i "$(gw_url /x)" -H "authorization: Bearer ${KEY[tiny]}"; done
assert_eq "200 200 429" "$(cat "$T/tiny1.code") $(cat "$T/tiny2.code") $(cat "$T/tiny3.code")" \
    "rps 1 burst 2: two at once, then 429"
assert_eq 1 "$(header_value "$T/tiny1.h" x-ratelimit-remaining)" "x-ratelimit-remaining counts down (1)"
assert_eq 0 "$(header_value "$T/tiny2.h" x-ratelimit-remaining)" "x-ratelimit-remaining counts down (0)"
assert_eq 2 "$(header_value "$T/tiny1.h" x-ratelimit-limit)" "x-ratelimit-limit is the burst"
assert_error_json "$(cat "$T/tiny3.b")" 429 rate_limited "429 body"
assert_json_match "$(cat "$T/tiny3.b")" error.message 'requests per second' "429: the message says which limit"
assert_eq 1 "$(header_value "$T/tiny3.h" retry-after)" "429: Retry-After 1 (one request comes back each second)"
assert_eq 0 "$(header_value "$T/tiny3.h" x-ratelimit-remaining)" "429: x-ratelimit-remaining 0"
assert_match "$(header_value "$T/tiny3.h" x-ratelimit-reset)" '^[12]$' "429: x-ratelimit-reset: seconds until full"
sleep 1.1
req h2 tiny4 "$(gw_url /x)" -H "authorization: Bearer ${KEY[tiny]}"
assert_eq 200 "$(cat "$T/tiny4.code")" "after Retry-After the key is served again (h2)"

# ---- concurrency: 4 at once with a limit of 2
pids=()
for i in 1 2 3 4; do
    (req h1 conc$i "$(gw_url '/slow?ms=800')" -H "x-api-key: ${KEY[conc]}") &
    pids+=($!)
done
for p in "${pids[@]}"; do wait "$p"; done
n200=0; n429=0
for i in 1 2 3 4; do
    case $(cat "$T/conc$i.code") in 200) n200=$((n200 + 1)) ;; 429) n429=$((n429 + 1)) ;; esac
done
assert_eq "2 2" "$n200 $n429" "concurrency 2: of 4 at once, 2 served and 2 refused"
req h2 concafter "$(gw_url /x)" -H "x-api-key: ${KEY[conc]}"
assert_eq 200 "$(cat "$T/concafter.code")" "concurrency: the slots came back"

# ---- tokens per minute: charged from usage.total_tokens when the response ends
req h1 tok1 "$(gw_url /llm/v1/tokens/60)" -H "x-api-key: ${KEY[llm]}"
assert_eq 200 "$(cat "$T/tok1.code")" "tpm 100: first response (60 tokens)"
req h1 tok2 "$(gw_url /llm/v1/tokens/60)" -H "x-api-key: ${KEY[llm]}"
assert_eq 200 "$(cat "$T/tok2.code")" "tpm 100: second (40 left before it: admitted, then 120 used)"
req h1 tok3 "$(gw_url /llm/v1/tokens/1)" -H "x-api-key: ${KEY[llm]}"
assert_eq 429 "$(cat "$T/tok3.code")" "tpm 100: over the minute's tokens: 429"
assert_json_match "$(cat "$T/tok3.b")" error.message 'tokens per minute' "tpm: the message says which limit"
req h2 sse1 "$(gw_url /llm/v1/sse-tokens/150)" -H "x-api-key: ${KEY[llm2]}"
assert_eq 200 "$(cat "$T/sse1.code")" "tpm (SSE): the stream is served"
assert_contains "$(cat "$T/sse1.b")" '[DONE]' "tpm (SSE): whole"
req h2 sse2 "$(gw_url /llm/v1/sse-tokens/1)" -H "x-api-key: ${KEY[llm2]}"
assert_eq 429 "$(cat "$T/sse2.code")" "tpm (SSE): charged from the final event's usage (150 > 100)"

# ---- the key file: loaded at start, reloaded when it changes
req h1 file1 "$(gw_url /x)" -H "x-api-key: ${KEY[filekey]}"
assert_eq 200 "$(cat "$T/file1.code")" "a key from the key file works"
req h1 new0 "$(gw_url /x)" -H "x-api-key: ${KEY[newkey]}"
assert_eq 401 "$(cat "$T/new0.code")" "a key not yet in the file: 401"
write_keys filekey newkey
for i in $(seq 1 30); do
    req h1 new1 "$(gw_url /x)" -H "x-api-key: ${KEY[newkey]}"
    [ "$(cat "$T/new1.code")" = 200 ] && break
    sleep 0.1
done
assert_eq 200 "$(cat "$T/new1.code")" "the key file changed: the new key works without a restart"
echo '{"keys": [ {"name": "x", "sha256": "nothex"} ]}' >"$T/keys.json.tmp"
mv "$T/keys.json.tmp" "$T/keys.json"
sleep 0.6
assert_contains "$(cat "$GW_LOG")" "keys.json:1:" "a bad key file is reported with its position"
assert_contains "$(cat "$GW_LOG")" "sha256" "and its JSON path"
req h1 new2 "$(gw_url /x)" -H "x-api-key: ${KEY[newkey]}"
assert_eq 200 "$(cat "$T/new2.code")" "a bad key file: the keys loaded before stay in use"
write_keys newkey
kill -HUP "$GW_PID"
sleep 0.3
req h1 file2 "$(gw_url /x)" -H "x-api-key: ${KEY[filekey]}"
assert_eq 401 "$(cat "$T/file2.code")" "SIGHUP reloads the key file: a removed key is refused"
req h1 alice2 "$(gw_url /v2/models/digits/ready)" -H "x-api-key: ${KEY[alice]}"
assert_eq 200 "$(cat "$T/alice2.code")" "the config file's keys stay"

# ---- a route's own limit, on an open route: every client together
req h1 rl1 "$(gw_url /rl/a)"
req h2 rl2 "$(gw_url /rl/b)"
assert_eq "200 429" "$(cat "$T/rl1.code") $(cat "$T/rl2.code")" "route limit rps 1 burst 1: the second request is refused"
assert_json_match "$(cat "$T/rl2.b")" error.message 'route limit of requests per second' \
    "route limit: the message names the route's limit"

# ---- the global limit: all keys together
pick_port GWP2
write_config "$T/gw2.json" <<JSON2
{
  "workers": 2,
  "listeners": [ { "address": "127.0.0.1:$GWP2" } ],
  "upstreams": { "echo": { "backends": [ { "address": "${BACKEND_ADDR[echo]}" } ] } },
  "routes": [ { "match": {}, "upstream": "echo" } ],
  "access": { "keys": [ { "name": "alice", "sha256": "${SHA[alice]}" },
                        { "name": "plain", "sha256": "${SHA[plain]}" } ],
              "limits": { "rps": 1, "burst": 2 } }
}
JSON2
pick_port GWP3
write_config "$T/gw3.json" <<JSON3
{
  "workers": 2,
  "listeners": [ { "address": "127.0.0.1:$GWP3" } ],
  "upstreams": { "echo": { "backends": [ { "address": "${BACKEND_ADDR[echo]}" } ] } },
  "routes": [ { "match": {}, "upstream": "echo" } ],
  "access": { "keys": [ { "name": "plain", "sha256": "${SHA[plain]}" },
                        { "name": "tiny", "sha256": "${SHA[tiny]}", "limits": { "rps": 1, "burst": 2 } } ],
              "limits": { "concurrency": 1 } }
}
JSON3
start_gateway "$T/gw2.json"
req h1 g1 "$(gw_url /x)" -H "x-api-key: ${KEY[alice]}"
req h1 g2 "$(gw_url /x)" -H "x-api-key: ${KEY[plain]}"
req h2 g3 "$(gw_url /x)" -H "x-api-key: ${KEY[alice]}"
assert_eq "200 200 429" "$(cat "$T/g1.code") $(cat "$T/g2.code") $(cat "$T/g3.code")" \
    "global limit burst 2 over two keys: the third request is refused"
assert_json_match "$(cat "$T/g3.b")" error.message 'global limit' "global limit: the message says so"
stop_gateway

# ---- a request refused by one limit costs it nothing in another: with the
# global concurrency taken, tiny's refusals leave its own burst of 2 whole
start_gateway "$T/gw3.json"
req h1 hold "$(gw_url '/slow?ms=1500')" -H "x-api-key: ${KEY[plain]}" &
HOLD=$!
sleep 0.3
for i in 1 2 3; do req h1 refused$i "$(gw_url /x)" -H "x-api-key: ${KEY[tiny]}"; done
assert_eq "429 429 429" "$(cat "$T/refused1.code") $(cat "$T/refused2.code") $(cat "$T/refused3.code")" \
    "global concurrency 1 taken: refused"
wait "$HOLD"
for i in 1 2 3; do req h1 after$i "$(gw_url /x)" -H "x-api-key: ${KEY[tiny]}"; done
assert_eq "200 200 429" "$(cat "$T/after1.code") $(cat "$T/after2.code") $(cat "$T/after3.code")" \
    "...and cost tiny none of its burst of 2"
stop_gateway

# ---- no key in any log line
for k in "${!KEY[@]}"; do
    if grep -qF -- "${KEY[$k]}" "$T"/gateway-*.log "$T"/backend-*.log "$T"/py-*.log 2>/dev/null; then
        fail "key $k appears in a log"
    fi
done
ok "no key appears in the gateway's or the backends' logs"

finish
