#!/bin/bash
# The admin API: an optional bearer token; GET /config with its secrets
# redacted; a backend's weight and draining, and a split's weights (the
# gray-release ramp 5% -> 25% -> 100%) changed at run time, without files.
. "$(dirname "$0")/lib.sh"
require_cmd curl

start_backend a
start_backend b
A=${BACKEND_ADDR[a]}
B=${BACKEND_ADDR[b]}
pick_port GWP
pick_port ADM
TOKEN=admin-secret-token
TSHA=$(printf '%s' "$TOKEN" | sha256sum | awk '{print $1}')
KSHA=$(printf '%s' fgk_somekey | sha256sum | awk '{print $1}')
write_config "$T/gw.json" <<JSON
{
  "workers": 2,
  "listeners": [ { "address": "127.0.0.1:$GWP" } ],
  "admin": { "address": "127.0.0.1:$ADM", "token_sha256": "$TSHA" },
  "upstreams": {
    "v1": { "backends": [ { "address": "$A" } ] },
    "v2": { "backends": [ { "address": "$B" } ] },
    "m": { "balance": "round_robin", "backends": [ { "address": "$A" }, { "address": "$B" } ] }
  },
  "routes": [
    { "name": "infer", "match": { "path_prefix": "/infer/" }, "auth": "open",
      "split": { "arms": [ { "upstream": "v1", "weight": 100 }, { "upstream": "v2", "weight": 0 } ] } },
    { "name": "rr", "match": { "path_prefix": "/" }, "upstream": "m", "auth": "open",
      "upstream_headers": { "authorization": "Bearer backend-secret" } }
  ],
  "access": { "keys": [ { "name": "k", "sha256": "$KSHA" } ] }
}
JSON
start_gateway "$T/gw.json"

adm() {  # adm METHOD PATH [BODY]: status in $T/adm.code, body in $T/adm.b (with the token)
    local d=()
    [ -n "${3:-}" ] && d=(-d "$3")
    fcurl -X "$1" -H "authorization: Bearer $TOKEN" -o "$T/adm.b" -w '%{http_code}' "${d[@]}" \
        "http://127.0.0.1:$ADM$2" >"$T/adm.code"
}
spread() {  # spread PATH N: "a b" counts of N requests by backend
    local na=0 nb=0 i who
    for ((i = 0; i < $2; i++)); do
        who=$(fcurl -D - -o /dev/null "$(gw_url "$1")" | tr -d '\r' | awk -F': ' 'tolower($1) == "x-backend" {print $2}')
        [ "$who" = a ] && na=$((na + 1))
        [ "$who" = b ] && nb=$((nb + 1))
    done
    echo "$na $nb"
}

# ---- the token
code=$(fcurl -D "$T/h" -o "$T/b" -w '%{http_code}' "http://127.0.0.1:$ADM/status")
assert_eq 401 "$code" "no token: 401"
assert_error_json "$(cat "$T/b")" 401 unauthorized "no token"
assert_match "$(header_value "$T/h" www-authenticate)" '^Bearer' "no token: WWW-Authenticate"
code=$(fcurl -o /dev/null -w '%{http_code}' -H 'authorization: Bearer wrong' "http://127.0.0.1:$ADM/metrics")
assert_eq 401 "$code" "a wrong token: 401"
adm GET /status
assert_eq 200 "$(cat "$T/adm.code")" "the token: 200"

# ---- GET /config: the configuration, secrets redacted
adm GET /config
assert_eq 200 "$(cat "$T/adm.code")" "GET /config"
cfgj=$(cat "$T/adm.b")
assert_json "$cfgj" listeners.0.address "127.0.0.1:$GWP" "GET /config: the configuration as loaded"
assert_json "$cfgj" access.keys.0.sha256 "(redacted)" "GET /config: key hashes redacted"
assert_json "$cfgj" admin.token_sha256 "(redacted)" "GET /config: the admin token's hash redacted"
assert_json "$cfgj" routes.1.upstream_headers.authorization "(redacted)" "GET /config: upstream credentials redacted"
assert_not_contains "$cfgj" "backend-secret" "GET /config: no secret left"

# ---- the gray-release ramp: 0% -> 5% -> 25% -> 100% on v2, no file edited
assert_eq "40 0" "$(spread /infer/x 40)" "split 100/0: all on v1 (a)"
adm POST /routes/infer/split '{"weights": {"v1": 95, "v2": 5}}'
assert_eq 200 "$(cat "$T/adm.code")" "ramp to 5%"
assert_json "$(cat "$T/adm.b")" routes.infer.split_weights.v2 5 "/status shows the split's weights"
adm POST /routes/infer/split '{"weights": {"v1": 75, "v2": 25}}'
read -r na nb <<<"$(spread /infer/x 200)"
assert_ge "$nb" 25 "25%: v2 takes about a quarter ($nb of 200)"
assert_le "$nb" 80 "25%: ...not more ($nb of 200)"
adm POST /routes/infer/split '{"weights": {"v1": 0}}'
assert_json "$(cat "$T/adm.b")" routes.infer.split_weights.v2 25 "an arm not named keeps its weight"
assert_eq "0 40" "$(spread /infer/x 40)" "100% on v2 (b)"
adm POST /routes/infer/split '{"weights": {"v3": 1}}'
assert_eq 400 "$(cat "$T/adm.code")" "an upstream the split does not have: 400"
assert_error_json "$(cat "$T/adm.b")" 400 bad_request "bad split"
adm POST /routes/infer/split '{"weights": {"v2": 0}}'
assert_eq 400 "$(cat "$T/adm.code")" "all weights 0: 400"
adm POST /routes/nope/split '{"weights": {"v2": 1}}'
assert_eq 404 "$(cat "$T/adm.code")" "no such route: 404"
adm GET /routes/infer/split
assert_eq 405 "$(cat "$T/adm.code")" "GET on a change: 405"

# ---- a backend's weight, and draining it
# round robin is per worker (2 here): shares are close to the weights, not exact
in_range() {  # in_range "A B" LO HI WHAT: A within LO..HI
    local a=${1% *}
    assert_ge "$a" "$2" "$4 ($1)"
    assert_le "$a" "$3" "$4 ($1)"
}
in_range "$(spread /x 40)" 16 24 "round robin 1:1"
adm POST "/upstreams/m/backends/$A" '{"weight": 3}'
assert_eq 200 "$(cat "$T/adm.code")" "weight 3 for a"
in_range "$(spread /x 40)" 26 34 "round robin 3:1 after the change"
adm POST "/upstreams/m/backends/$A" '{"drain": true}'
assert_json "$(cat "$T/adm.b")" upstreams.m.backends.0.state draining "/status: a is draining"
assert_eq "0 20" "$(spread /x 20)" "a drained: no new request goes to it"
adm POST "/upstreams/m/backends/$A" '{"drain": false, "weight": null}'
assert_json "$(cat "$T/adm.b")" upstreams.m.backends.0.weight 1 "weight null: the configuration's again"
in_range "$(spread /x 20)" 7 13 "back to 1:1"
adm POST "/upstreams/m/backends/$A" '{"weight": 0}'
assert_eq 400 "$(cat "$T/adm.code")" "weight 0: 400 (drain is the way to take nothing)"
adm POST "/upstreams/m/backends/127.0.0.1:1" '{"drain": true}'
assert_eq 404 "$(cat "$T/adm.code")" "no such backend: 404"
adm POST "/upstreams/m/backends/%zz" '{"drain": true}'
assert_eq 404 "$(cat "$T/adm.code")" "a malformed percent escape: 404"
adm POST "/upstreams/m/backends/127.0.0.1%3" '{"drain": true}'
assert_eq 404 "$(cat "$T/adm.code")" "a percent escape cut short: 404"
adm POST "/upstreams/m/backends/${A/:/%3A}" '{"weight": 1}'
assert_eq 200 "$(cat "$T/adm.code")" "a percent-escaped address is decoded"
adm POST "/upstreams/m/backends/$A" 'not json'
assert_eq 400 "$(cat "$T/adm.code")" "a body that is not JSON: 400"

finish
