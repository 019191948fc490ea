#!/bin/bash
# Routes match on path (exact and prefix), host, method, headers, query
# parameters and the model of a KServe v2 path; gray-release rules (header,
# cookie, client network) come before a route's upstream; splits send a sticky identity
# (header or cookie) to the same arm on every gateway with the same config,
# in proportion to the weights, and moving 90/10 to 80/20 moves only ~10% of
# identities, all from the first arm to the second. Over HTTP/1.1 and h2c.
. "$(dirname "$0")/lib.sh"
require_cmd curl

start_backend b1
start_backend b2
routes() {  # routes WEIGHT_A WEIGHT_B
    cat <<JSON
  "upstreams": {
    "a": { "backends": [ { "address": "${BACKEND_ADDR[b1]}" } ] },
    "b": { "backends": [ { "address": "${BACKEND_ADDR[b2]}" } ] }
  },
  "routes": [
    { "match": { "path": "/exact" }, "upstream": "b" },
    { "match": { "host": "*.example.com" }, "upstream": "b" },
    { "match": { "path_prefix": "/post/", "methods": ["POST", "PUT"] }, "upstream": "b" },
    { "match": { "headers": { "X-Tenant": "t2" } }, "upstream": "b" },
    { "match": { "query": { "arm": "b b" } }, "upstream": "b" },
    { "match": { "model": "digits2" }, "upstream": "b" },
    { "match": { "path_prefix": "/split" },
      "split": { "sticky": { "header": "x-user" },
                 "arms": [ { "upstream": "a", "weight": $1 }, { "upstream": "b", "weight": $2 } ] } },
    { "match": { "path_prefix": "/cookie" },
      "split": { "sticky": { "cookie": "uid" },
                 "arms": [ { "upstream": "a", "weight": $1 }, { "upstream": "b", "weight": $2 } ] } },
    { "match": { "path_prefix": "/random" },
      "split": { "arms": [ { "upstream": "a", "weight": 3 }, { "upstream": "b", "weight": 1 } ] } },
    { "match": { "path_prefix": "/gray" }, "upstream_header": "x-fleetgate-upstream",
      "rules": [ { "header": { "x-canary": "1" }, "upstream": "b" },
                 { "cookie": { "canary": "yes" }, "upstream": "b" },
                 { "client": [ "10.0.0.0/8" ], "upstream": "b" } ],
      "upstream": "a" },
    { "match": { "path_prefix": "/net" }, "rules": [ { "client": [ "127.0.0.0/8", "::1" ], "upstream": "b" } ],
      "upstream": "a" },
    { "match": { "path_prefix": "/v1/", "model": "gpt-b" }, "upstream": "b", "rewrite": { "model": "b-model" } },
    { "match": { "path_prefix": "/v1/", "model": "gpt-a" }, "upstream": "a" },
    { "match": { "path_prefix": "/rw/" }, "rewrite": { "path_prefix": "/echo/" }, "upstream": "a" },
    { "match": { "model": "digits3" }, "rewrite": { "model": "digits-v3" }, "upstream": "b" },
    { "match": { "path_prefix": "/d/" }, "upstream": "a" }
  ]
JSON
}
pick_port P1
pick_port P2
pick_port P3
printf '{ "listeners": [ { "address": "127.0.0.1:%s" } ], "client": { "model_body_bytes": 4096 },\n%s\n}\n' "$P1" "$(routes 90 10)" | write_config "$T/g1.json"
printf '{ "listeners": [ { "address": "127.0.0.1:%s" } ],\n%s\n}\n' "$P2" "$(routes 90 10)" | write_config "$T/g2.json"
printf '{ "listeners": [ { "address": "127.0.0.1:%s" } ],\n%s\n}\n' "$P3" "$(routes 80 20)" | write_config "$T/g3.json"
start_gateway "$T/g3.json"
start_gateway "$T/g2.json"
start_gateway "$T/g1.json"

arm() {  # arm CURL-ARGS... : which backend answered
    fcurl -o /dev/null -D "$T/h" "$@" >/dev/null 2>&1
    header_value "$T/h" x-backend
}
for v in --http1.1 --http2-prior-knowledge; do
    assert_eq b2 "$(arm $v "$(gw_url /exact)")" "$v exact path"
    assert_eq b2 "$(arm $v "$(gw_url '/exact?x=1')")" "$v exact path, query ignored"
    assert_eq b1 "$(arm $v "$(gw_url /d/exact)")" "$v other path"
    assert_eq b2 "$(arm $v -H 'Host: api.Example.com:8080' "$(gw_url /d/x)")" "$v host wildcard"
    assert_eq b1 "$(arm $v -H 'Host: example.com' "$(gw_url /d/x)")" "$v bare host is not a subdomain"
    assert_eq b2 "$(arm $v -X POST -d x "$(gw_url /post/a)")" "$v POST"
    assert_eq 404 "$(fcurl $v -o /dev/null -w '%{http_code}' "$(gw_url /post/a)")" "$v GET on a POST-only route: no route"
    assert_eq b2 "$(arm $v -H 'x-tenant: t2' "$(gw_url /d/x)")" "$v header"
    assert_eq b1 "$(arm $v -H 'x-tenant: t1' "$(gw_url /d/x)")" "$v other header value"
    assert_eq b2 "$(arm $v "$(gw_url '/d/x?a=1&arm=b%20b')")" "$v query parameter (decoded)"
    assert_eq b2 "$(arm $v -X POST -d '{}' "$(gw_url /v2/models/digits2/infer)")" "$v model from the path"
    # gray-release rules before the route's own upstream, and the header naming it
    assert_eq b1 "$(arm $v "$(gw_url /gray)")" "$v gray: no rule holds"
    assert_eq a "$(header_value "$T/h" x-fleetgate-upstream)" "$v gray: x-fleetgate-upstream names the upstream"
    assert_eq b2 "$(arm $v -H 'x-canary: 1' "$(gw_url /gray)")" "$v gray: header rule"
    assert_eq b "$(header_value "$T/h" x-fleetgate-upstream)" "$v gray: x-fleetgate-upstream after a rule"
    assert_eq b2 "$(arm $v -H 'cookie: theme=x; canary=yes' "$(gw_url /gray)")" "$v gray: cookie rule"
    assert_eq b1 "$(arm $v -H 'cookie: canary=no' "$(gw_url /gray)")" "$v gray: other cookie value"
    assert_eq b2 "$(arm $v "$(gw_url /net)")" "$v client network rule (127.0.0.1 in 127.0.0.0/8)"
    assert_eq "" "$(header_value "$T/h" x-fleetgate-upstream)" "$v no upstream header unless asked for"
    # the model of a JSON body (OpenAI-style), routed on and rewritten
    body='{"messages":[{"role":"user","model":"not-this"}],"model":"gpt-b","temperature":0.10}'
    want=$(printf '%s' "${body/gpt-b/b-model}" | sha256sum | awk '{print $1}')
    fcurl $v -o "$T/b" -D "$T/h" -H 'content-type: application/json' --data-binary "$body" "$(gw_url /v1/chat/completions)"
    assert_eq b2 "$(header_value "$T/h" x-backend)" "$v body model gpt-b"
    assert_json "$(cat "$T/b")" body_sha256 "$want" "$v body model rewritten, the rest byte for byte"
    assert_json "$(cat "$T/b")" body_bytes "$(printf '%s' "${body/gpt-b/b-model}" | wc -c)" "$v rewritten body: content-length follows"
    body='{ "model" : "gpt-a", "input": "x" }'
    fcurl $v -o "$T/b" -D "$T/h" --data-binary "$body" "$(gw_url /v1/embeddings)"
    assert_eq b1 "$(header_value "$T/h" x-backend)" "$v body model gpt-a"
    assert_json "$(cat "$T/b")" body_sha256 "$(printf '%s' "$body" | sha256sum | awk '{print $1}')" "$v body untouched without rewrite"
    assert_eq 404 "$(fcurl $v -o /dev/null -w '%{http_code}' --data-binary '{"model":"gpt-z"}' "$(gw_url /v1/completions)")" "$v unknown body model: no route"
    assert_eq 404 "$(fcurl $v -o /dev/null -w '%{http_code}' --data-binary 'not json' "$(gw_url /v1/completions)")" "$v body not JSON: no model, no route"
    head -c 5000 /dev/zero | tr '\0' 'x' >"$T/big"
    assert_eq 413 "$(fcurl $v -o /dev/null -w '%{http_code}' --data-binary @"$T/big" "$(gw_url /v1/completions)")" "$v body over model_body_bytes: 413"
    # path rewrites
    fcurl $v -o "$T/b" "$(gw_url '/rw/x/y?q=1')"
    assert_json "$(cat "$T/b")" path "/echo/x/y?q=1" "$v path prefix rewritten"
    fcurl $v -o "$T/b" -D "$T/h" --data-binary '{}' "$(gw_url /v2/models/digits3/infer)"
    assert_json "$(cat "$T/b")" path "/v2/models/digits-v3/infer" "$v model rewritten in the path"
    code=$(fcurl $v -o "$T/b" -w '%{http_code}' "$(gw_url /v2/models/digits/infer)")
    assert_eq 404 "$code" "$v no route matches"
    assert_error_json "$(cat "$T/b")" 404 no_route "$v 404"
done

# sticky splits: 400 identities against three gateways (two 90/10, one 80/20)
timeout -k 2 60 $PY - "$P1" "$P2" "$P3" >"$T/split.json" <<'PY'
import http.client, json, random, sys
p1, p2, p3 = (int(x) for x in sys.argv[1:4])
conns = {p: http.client.HTTPConnection("127.0.0.1", p, timeout=10) for p in (p1, p2, p3)}
def arm(port, path, headers):
    c = conns[port]
    c.request("GET", path, headers=headers)
    r = c.getresponse()
    r.read()
    return r.getheader("x-backend")
out = {"n": 400, "sticky_same": 0, "instances_same": 0, "b90": 0, "b80": 0, "moved_ab": 0,
       "moved_ba": 0, "cookie_same": 0, "random_b": 0}
for i in range(400):
    h = {"x-user": "user-%d" % i}
    a1, a1b, a2, a3 = arm(p1, "/split", h), arm(p1, "/split", h), arm(p2, "/split", h), arm(p3, "/split", h)
    out["sticky_same"] += a1 == a1b
    out["instances_same"] += a1 == a2
    out["b90"] += a1 == "b2"
    out["b80"] += a3 == "b2"
    out["moved_ab"] += a1 == "b1" and a3 == "b2"
    out["moved_ba"] += a1 == "b2" and a3 == "b1"
    ck = {"cookie": "theme=dark; uid=user-%d" % i}
    out["cookie_same"] += arm(p1, "/cookie", ck) == a1     # same identity, same weights
    out["random_b"] += arm(p1, "/random", {}) == "b2"
print(json.dumps(out))
PY
R=$(cat "$T/split.json")
note "splits: $R"
assert_json "$R" sticky_same 400 "the same identity twice: the same arm"
assert_json "$R" instances_same 400 "two gateways with the same config: the same arm"
assert_json "$R" cookie_same 400 "a cookie identity lands where the same header identity does"
assert_ge "$(json_get "$R" b90)" 16 "90/10: identities in b (>= 4%)"
assert_le "$(json_get "$R" b90)" 72 "90/10: identities in b (<= 18%)"
assert_ge "$(json_get "$R" moved_ab)" 20 "90/10 -> 80/20 moves identities from a to b (>= 5%)"
assert_le "$(json_get "$R" moved_ab)" 64 "90/10 -> 80/20 moves identities from a to b (<= 16%)"
assert_json "$R" moved_ba 0 "90/10 -> 80/20 moves none from b to a"
assert_ge "$(json_get "$R" random_b)" 60 "no identity: 3:1 at random, b (>= 15%)"
assert_le "$(json_get "$R" random_b)" 140 "no identity: 3:1 at random, b (<= 35%)"

finish
