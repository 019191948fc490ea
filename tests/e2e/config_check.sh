#!/bin/bash
# The command line and the configuration checker: -t accepts the sample
# configs, rejects bad ones with "FILE:LINE:COL: JSON-PATH: reason" on stderr
# and exit status 1; -v prints the version, -h the usage.
. "$(dirname "$0")/lib.sh"
[ -x "$FG_GATEWAY" ] || die "gateway $FG_GATEWAY is not built"

GW=$FG_GATEWAY
run_gw() { timeout -k 2 10 "$GW" "$@" >"$T/out" 2>"$T/err"; }

# ---- the sample configs
sample=$FG_SRCDIR/etc/fleetgate.json
if [ -f "$sample" ]; then
    run_gw -t -c "$sample"
    assert_eq 0 $? "fleetgate -t -c etc/fleetgate.json: exit status"
    assert_contains "$(cat "$T/out" "$T/err")" "ok" "fleetgate -t output"
else
    fail "sample config $sample is missing"
fi
for f in "$FG_SRCDIR"/etc/*.json; do
    [ -f "$f" ] && [ "$f" != "$sample" ] || continue
    run_gw -t -c "$f"
    assert_eq 0 $? "fleetgate -t -c etc/$(basename "$f"): exit status"
done

pick_port P
write_config "$T/good.json" <<JSON
{
  "workers": 1,
  "listeners": [ { "address": "127.0.0.1:$P" } ],
  "upstreams": { "u": { "backends": [ { "address": "127.0.0.1:9" } ] } },
  "routes": [ { "match": { "path_prefix": "/" }, "upstream": "u" } ]
}
JSON
run_gw -t -c "$T/good.json"
assert_eq 0 $? "minimal config: -t exit status"
assert_contains "$(cat "$T/out" "$T/err")" "configuration $T/good.json ok" "minimal config: -t message"

# bad_config LABEL LINE PATH_ERE [REASON_ERE]: $T/bad.json (from stdin) must
# be rejected by -t with exit 1 and "bad.json:LINE:COL: ..." naming the path
bad_config() {
    local label=$1 line=$2 path_re=$3 reason_re=${4:-}
    cat >"$T/bad.json"
    run_gw -t -c "$T/bad.json"
    assert_eq 1 $? "$label: exit status"
    local err; err=$(cat "$T/err")
    note "$label: stderr: $(head -c 300 "$T/err")"
    assert_match "$err" "$T/bad.json:$line:[0-9]+:" "$label: FILE:LINE:COL"
    assert_match "$err" "$path_re" "$label: JSON path"
    [ -z "$reason_re" ] || assert_match "$err" "$reason_re" "$label: reason"
}

bad_config "unknown key in client" 6 'client.{1,3}bogus_key' <<JSON
{
  "workers": 1,
  "listeners": [ { "address": "127.0.0.1:$P" } ],
  "client": {
    "header_timeout_ms": 1000,
    "bogus_key": 1
  },
  "upstreams": { "u": { "backends": [ { "address": "127.0.0.1:9" } ] } },
  "routes": [ { "match": { "path_prefix": "/" }, "upstream": "u" } ]
}
JSON

bad_config "unknown top-level key" 3 'frobnicate' <<JSON
{
  "workers": 1,
  "frobnicate": true,
  "listeners": [ { "address": "127.0.0.1:$P" } ],
  "upstreams": { "u": { "backends": [ { "address": "127.0.0.1:9" } ] } },
  "routes": [ { "match": { "path_prefix": "/" }, "upstream": "u" } ]
}
JSON

bad_config "wrong type" 2 'workers' <<JSON
{
  "workers": "many",
  "listeners": [ { "address": "127.0.0.1:$P" } ],
  "upstreams": { "u": { "backends": [ { "address": "127.0.0.1:9" } ] } },
  "routes": [ { "match": { "path_prefix": "/" }, "upstream": "u" } ]
}
JSON

bad_config "unknown key inside a listener" 5 'listeners.{0,4}0.*tls_x' <<JSON
{
  "workers": 1,
  "listeners": [
    { "address": "127.0.0.1:$P",
      "tls_x": {} }
  ],
  "upstreams": { "u": { "backends": [ { "address": "127.0.0.1:9" } ] } },
  "routes": [ { "match": { "path_prefix": "/" }, "upstream": "u" } ]
}
JSON

bad_config "weight out of range" 6 'weight' <<JSON
{
  "workers": 1,
  "listeners": [ { "address": "127.0.0.1:$P" } ],
  "upstreams": {
    "u": { "backends": [
      { "address": "127.0.0.1:9", "weight": 0 }
    ] }
  },
  "routes": [ { "match": { "path_prefix": "/" }, "upstream": "u" } ]
}
JSON

bad_config "route to an unknown upstream" 5 'routes.{0,4}0.{0,4}upstream' <<JSON
{
  "workers": 1,
  "listeners": [ { "address": "127.0.0.1:$P" } ],
  "upstreams": { "u": { "backends": [ { "address": "127.0.0.1:9" } ] } },
  "routes": [ { "match": { "path_prefix": "/" }, "upstream": "nope" } ]
}
JSON

bad_config "JSON syntax error (missing comma)" 3 '.' <<JSON
{
  "workers": 1
  "listeners": [ { "address": "127.0.0.1:$P" } ],
  "upstreams": { "u": { "backends": [ { "address": "127.0.0.1:9" } ] } },
  "routes": [ { "match": { "path_prefix": "/" }, "upstream": "u" } ]
}
JSON

# missing required section
cat >"$T/bad.json" <<JSON
{
  "listeners": [ { "address": "127.0.0.1:$P" } ],
  "routes": [ { "match": { "path_prefix": "/" }, "upstream": "u" } ]
}
JSON
run_gw -t -c "$T/bad.json"
assert_eq 1 $? "config without upstreams: exit status"
assert_contains "$(cat "$T/err")" "upstreams" "config without upstreams: message names it"

run_gw -t -c "$T/does-not-exist.json"
assert_eq 1 $? "-t with a missing file: exit status"
assert_contains "$(cat "$T/err")" "does-not-exist.json" "-t with a missing file: message names it"

# serving with a bad config fails at once, without listening
run_gw -c "$T/bad.json"
rc=$?
assert_eq 1 "$rc" "serving with a bad config: exit status"

# ---- -v, -h, unknown option
run_gw -v
assert_eq 0 $? "fleetgate -v: exit status"
version=$(sed -n 's/^#define PACKAGE_VERSION "\(.*\)"/\1/p' "$FG_BUILDDIR/config.h" 2>/dev/null)
if [ -n "$version" ]; then
    assert_contains "$(cat "$T/out" "$T/err")" "$version" "fleetgate -v prints the version"
else
    assert_match "$(cat "$T/out" "$T/err")" '[0-9]+\.[0-9]+' "fleetgate -v prints a version"
fi
assert_contains "$(cat "$T/out" "$T/err")" "fleetgate" "fleetgate -v names the program"

run_gw -h
assert_eq 0 $? "fleetgate -h: exit status"
usage=$(cat "$T/out" "$T/err")
assert_match "$usage" '[Uu]sage' "fleetgate -h prints usage"
assert_contains "$usage" "-c" "usage mentions -c"
assert_contains "$usage" "-t" "usage mentions -t"

run_gw --no-such-option
assert_ne 0 $? "unknown option: exit status"

finish
