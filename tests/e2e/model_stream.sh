#!/bin/bash
# generate_stream delivers one event per item as soon as that item is
# ready, not all at the end: with batches of one item taking 400 ms each
# (--simulate-latency-us), four items arrive about 400 ms apart, directly and
# through fleetgate (HTTP/1.1 and h2c).
. "$(dirname "$0")/lib.sh"
require_cmd curl

start_model m --model "$FG_MODEL_V2" --max-batch 1 --max-delay-us 0 --simulate-latency-us 400000
pick_port GWP
write_config "$T/gw.json" <<JSON
{
  "listeners": [{"address": "127.0.0.1:$GWP"}],
  "upstreams": {"m": {"backends": [{"address": "${MODEL_ADDR[m]}"}]}},
  "routes": [{"match": {"path_prefix": "/"}, "upstream": "m"}]
}
JSON
start_gateway "$T/gw.json"

IMG=$($PY -c 'print(",".join(["8"] * 64))')
# arrivals URL [curl args]: JSON list of [seconds since start, index]
arrivals() {
    timeout -k 2 30 $PY - "$IMG" "$@" <<'PY'
import json, subprocess, sys, time
img, url, extra = sys.argv[1], sys.argv[2], sys.argv[3:]
body = '{"input":[[%s],[%s],[%s],[%s]]}' % (img, img, img, img)
cmd = ["curl", "-sS", "-N", "--noproxy", "*", "--max-time", "15"] + extra + ["--data-binary", body, url]
t0 = time.monotonic()
p = subprocess.Popen(cmd, stdout=subprocess.PIPE, bufsize=0)
out, buf = [], b""
while True:
    d = p.stdout.read(4096)
    if not d:
        break
    buf += d
    while b"\n\n" in buf:
        ev, buf = buf.split(b"\n\n", 1)
        for line in ev.split(b"\n"):
            if line.startswith(b"data:"):
                out.append([round(time.monotonic() - t0, 3), json.loads(line[5:])["index"]])
p.wait()
print(json.dumps(out))
PY
}

check() {  # check WHAT URL [curl args]
    local what=$1 a; shift
    a=$(arrivals "$@")
    note "$what: arrivals [s, index]: $a"
    assert_eq "[0,1,2,3]" "$($PY -c 'import json,sys; print(json.dumps(sorted(i for _, i in json.loads(sys.argv[1]))).replace(" ", ""))' "$a")" "$what: one event per item"
    # the first event must come long before the last (events spread over
    # ~1.2 s); a buffered answer would deliver all four at once
    assert_eq 1 "$($PY -c 'import json,sys; e=json.loads(sys.argv[1]); print(int(len(e) == 4 and e[-1][0] - e[0][0] >= 0.8))' "$a")" "$what: events arrive incrementally"
}

check "direct" "$(model_url m /v2/models/digits/generate_stream)"
check "through fleetgate, HTTP/1.1" "$(gw_url /v2/models/digits/generate_stream)"
check "through fleetgate, h2c" "$(gw_url /v2/models/digits/generate_stream)" --http2-prior-knowledge

finish
