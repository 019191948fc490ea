#!/bin/bash
# Server-sent events are streamed, not buffered: through the gateway, over
# HTTP/1.1 and h2c, the first event of /sse?n=5&interval_ms=300 arrives long
# before the backend sends the last one.
. "$(dirname "$0")/lib.sh"
require_cmd curl

start_backend b1
simple_config "$T/gw.json" b1
start_gateway "$T/gw.json"

# sse_times CURL_ARGS...: run curl -N, print JSON
# {"rc": curl exit status, "events": [[seconds since start, line, arrival
# epoch ms], ...]}
sse_times() {
    timeout -k 2 30 $PY - "$@" <<'PY'
import json, subprocess, sys, time
cmd = ["curl", "-sS", "-N", "--noproxy", "*", "--max-time", "15"] + sys.argv[1:]
t0 = time.monotonic()
p = subprocess.Popen(cmd, stdout=subprocess.PIPE, bufsize=0)
events = []
buf = b""
while True:
    d = p.stdout.read(4096)
    if not d:
        break
    now = time.monotonic() - t0
    buf += d
    while b"\n" in buf:
        line, buf = buf.split(b"\n", 1)
        if line.startswith(b"data:"):
            events.append([round(now, 3), line.decode(), int(time.time() * 1000)])
rc = p.wait()
print(json.dumps({"rc": rc, "events": events}))
PY
}

check_sse() {
    local label=$1; shift
    local out n first last spread i
    out=$(sse_times "$@" "$(gw_url '/sse?n=5&interval_ms=300')")
    note "$label arrivals: $(json_get "$out" events)"
    assert_json "$out" rc 0 "$label: curl exit status"
    n=$($PY -c 'import json,sys; print(len(json.loads(sys.argv[1])["events"]))' "$out")
    assert_eq 5 "$n" "$label: number of events"
    for i in 0 1 2 3 4; do
        assert_contains "$(json_get "$out" "events.$i.1")" "\"i\":$i" "$label: event $i in order"
    done
    # milliseconds since the request started
    first=$($PY -c 'import json,sys; print(int(json.loads(sys.argv[1])["events"][0][0]*1000))' "$out" 2>/dev/null)
    last=$($PY -c 'import json,sys; print(int(json.loads(sys.argv[1])["events"][-1][0]*1000))' "$out" 2>/dev/null)
    assert_le "${first:-99999}" 1000 "$label: first event arrival (ms)"
    # the backend sends event 4 at 1200 ms; allow a little timer slack
    assert_ge "${last:-0}" 1150 "$label: last event arrival (ms)"
    assert_ge $((${last:-0} - ${first:-99999})) 900 "$label: spread between first and last arrival (ms)"
    # the first event reached the client before the backend even sent the last
    local first_at last_sent
    first_at=$(json_get "$out" events.0.2)
    last_sent=$($PY -c 'import json,sys; print(json.loads(json.loads(sys.argv[1])["events"][-1][1][5:])["t_ms"])' "$out" 2>/dev/null)
    assert_le "${first_at:-1}" "$((${last_sent:-0} - 1))" "$label: first event arrival (epoch ms) before the last one was sent"
}

check_sse "HTTP/1.1" --http1.1
check_sse "h2c" --http2-prior-knowledge

# the content type passes
ct=$(fcurl --http1.1 -o /dev/null -w '%{content_type}' "$(gw_url '/sse?n=1&interval_ms=10')")
assert_eq text/event-stream "$ct" "content-type of /sse"

finish
