#!/bin/bash
# Dynamic batching: concurrent requests from many connections are run
# together (the batch-size histogram shows batches of more than one item),
# each answer is the same as when the image runs alone (batch of one), and a
# full queue answers 503 at once instead of waiting.
FG_TEST_TIMEOUT=${FG_TEST_TIMEOUT:-150}
. "$(dirname "$0")/lib.sh"
require_cmd curl h2load

start_model single --model "$FG_MODEL_V1" --max-batch 1 --max-delay-us 0
start_model batched --model "$FG_MODEL_V1" --max-batch 32 --max-delay-us 20000 --threads 1

# 1. h2load, 16 connections x 4 streams of one image each: batches form
$PY - "$FG_DIGITS_TEST" >"$T/one.json" <<'PY'
import json, sys
for line in open(sys.argv[1]):
    if not line.startswith("#") and line.strip():
        v = [int(x) for x in line.split(",")][:64]
        break
print(json.dumps({"inputs": [{"name": "input", "shape": [1, 8, 8], "datatype": "FP32", "data": v}]}))
PY
out=$(timeout -k 2 60 h2load -n 640 -c 16 -m 4 -d "$T/one.json" -H 'content-type: application/json' \
      "$(model_url batched /v2/models/digits/infer)" 2>&1)
note "$(printf '%s\n' "$out" | grep -E '^(requests|status codes):')"
assert_match "$out" "requests: 640 total, 640 started, 640 done, 640 succeeded, 0 failed" "h2load: every request answered"
assert_match "$out" "status codes: 640 2xx" "h2load: all 200"
metrics=$(fcurl "$(model_url batched /metrics)")
batches=$(printf '%s\n' "$metrics" | awk '/^fleetgate_model_batch_size_count/ {print $2}')
items=$(printf '%s\n' "$metrics" | awk '/^fleetgate_model_batch_size_sum/ {print $2}')
ones=$(printf '%s\n' "$metrics" | awk '/^fleetgate_model_batch_size_bucket\{.*le="1"\}/ {print $2}')
note "640 items ran in $batches batches ($ones of a single item)"
assert_eq 640 "$items" "items batched"
assert_le "$batches" 320 "batches (at most half as many as items)"
assert_ge "$((batches - ones))" 1 "batches of more than one item"

# 2. the same answers alone and in company: every held-out image is sent
# alone to the server that never batches, and concurrently, one image per
# request, to the batching one; the probabilities must be identical
timeout -k 2 60 $PY - "$FG_DIGITS_TEST" "$(model_url single /v2/models/digits/infer)" \
    "$(model_url batched /v2/models/digits/infer)" >"$T/cmp.txt" <<'PY'
import http.client, json, sys, threading, urllib.parse
rows = [[int(x) for x in l.split(",")][:64] for l in open(sys.argv[1]) if l.strip() and not l.startswith("#")][:200]
def post(url, img, conn_cache={}):
    u = urllib.parse.urlsplit(url)
    key = (u.netloc, threading.get_ident())
    c = conn_cache.get(key)
    if c is None:
        c = conn_cache[key] = http.client.HTTPConnection(u.hostname, u.port, timeout=10)
    body = json.dumps({"inputs": [{"name": "input", "shape": [1, 8, 8], "datatype": "FP32", "data": img}]})
    c.request("POST", u.path, body, {"content-type": "application/json"})
    r = c.getresponse()
    return r.status, json.loads(r.read())["outputs"][0]["data"]
alone = [post(sys.argv[2], img) for img in rows]
together = [None] * len(rows)
def worker(k):
    for i in range(k, len(rows), 20):
        together[i] = post(sys.argv[3], rows[i])
ts = [threading.Thread(target=worker, args=(k,)) for k in range(20)]
for t in ts: t.start()
for t in ts: t.join()
same = sum(1 for a, b in zip(alone, together) if a == b and a[0] == 200)
print(same, len(rows))
PY
read -r same total <"$T/cmp.txt"
assert_eq 200 "${total:-?}" "images compared"
assert_eq "$total" "${same:-0}" "identical probabilities alone and batched"
metrics=$(fcurl "$(model_url batched /metrics)")
batches2=$(printf '%s\n' "$metrics" | awk '/^fleetgate_model_batch_size_count/ {print $2}')
note "20 concurrent clients: 200 items in $((batches2 - batches)) batches"
assert_le "$((batches2 - batches))" 199 "the concurrent images were batched"

# 3. a full queue answers 503 at once: one batch of a slow model holds the
# only thread; a queue of 4 items is full after the first request
start_model slow --model "$FG_MODEL_V1" --max-batch 2 --max-queue 4 --max-delay-us 0 \
    --simulate-latency-us 1500000
IMG4=$($PY -c 'import json; print(json.dumps({"inputs":[{"name":"input","shape":[4,8,8],"datatype":"UINT8","data":[1]*256}]}))')
fcurl -o "$T/slow1" -w '%{http_code} %{time_total}\n' --data-binary "$IMG4" \
    "$(model_url slow /v2/models/digits/infer)" >"$T/slow1.status" &
SLOW=$!
sleep 0.3
fcurl -o "$T/slow2" -w '%{http_code} %{time_total}\n' --data-binary "$IMG4" \
    "$(model_url slow /v2/models/digits/infer)" >"$T/slow2.status"
wait $SLOW
read -r s1 t1 <"$T/slow1.status"
read -r s2 t2 <"$T/slow2.status"
note "first: $s1 after ${t1}s, second: $s2 after ${t2}s"
assert_eq 200 "$s1" "the first request (4 items, two batches of 2) is answered"
assert_eq 503 "$s2" "the second request finds the queue full"
assert_contains "$(cat "$T/slow2")" '"error"' "503 body"
assert_eq 1 "$($PY -c "print(int($t2 < $t1 - 0.5))")" "the 503 came back before the first answer, without waiting"
metrics=$(fcurl "$(model_url slow /metrics)")
assert_contains "$metrics" 'fleetgate_model_queue_rejected_total{model="digits",version="1"} 4' "rejected items counted"
assert_contains "$metrics" 'fleetgate_model_requests_total{code="503"} 1' "503 counted"

# 4. clients that go away while their items wait or run: an h2 stream
# (curl closes the connection, the front resets its streams) releases its
# job at once, so its waiting items leave the queue; an HTTP/1.1 client's
# close reads as a half-close while the answer is pending (as HAProxy does
# without abortonclose), so that job runs to its end. Either way the server
# keeps serving, the queue drains to 0, and the sanitizer build checks that
# nothing leaks.
for args in "--http2-prior-knowledge" ""; do
    out=$(fcurl $args --max-time 0.5 -o /dev/null -w '%{http_code}' --data-binary "$IMG4" \
        "$(model_url slow /v2/models/digits/infer)" 2>/dev/null)
    rc=$?
    assert_eq "28 000" "$rc $out" "client ${args:-(HTTP/1.1)} gave up after 0.5 s with no answer"
    if [ -n "$args" ]; then
        sleep 0.2
        metrics=$(fcurl "$(model_url slow /metrics)")
        assert_contains "$metrics" 'fleetgate_model_queue_depth{model="digits",version="1"} 0' \
            "the h2 client's waiting items left the queue with it"
    fi
    sleep 3.2      # what was running finishes
done
metrics=$(fcurl "$(model_url slow /metrics)")
assert_contains "$metrics" 'fleetgate_model_queue_depth{model="digits",version="1"} 0' "queue empty after the clients left"
st=$(fcurl -o /dev/null -w '%{http_code}' --max-time 10 --data-binary "$IMG4" "$(model_url slow /v2/models/digits/infer)")
assert_eq 200 "$st" "the server still answers after clients went away"

finish
