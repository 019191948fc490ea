#!/bin/bash
# fleetgate-model speaks the Open Inference Protocol (KServe v2, REST): every
# endpoint and every error path, over HTTP/1.1 and h2c, with errors in the
# protocol's form {"error": "..."}.
. "$(dirname "$0")/lib.sh"
require_cmd curl

start_model m --model "$FG_MODEL_V1,$FG_MODEL_V2" --max-body-bytes 65536 --max-queue 512

# call [curl args...] URL: sets STATUS and BODY
call() {
    local out
    out=$(fcurl -o "$T/body" -w '%{http_code}' "$@") || true
    STATUS=$out
    BODY=$(cat "$T/body" 2>/dev/null)
}
u() { model_url m "$1"; }

# one image of the held-out set (64 pixel values) and its label
read -r IMG LABEL < <($PY - "$FG_DIGITS_TEST" <<'PY'
import sys
for line in open(sys.argv[1]):
    if line.startswith("#") or not line.strip():
        continue
    v = [int(x) for x in line.split(",")]
    print(",".join(map(str, v[:64])), v[64])
    break
PY
)
[ -n "$IMG" ] || die "no image read from $FG_DIGITS_TEST"
infer_body() {  # infer_body SHAPE DATATYPE DATA [EXTRA]
    echo "{\"id\":\"req-1\",\"inputs\":[{\"name\":\"input\",\"shape\":$1,\"datatype\":\"$2\",\"data\":[$3]}]${4:-}}"
}
is_protocol_error() {  # is_protocol_error WHAT: BODY is {"error": "<non-empty string>"}
    local e
    e=$($PY -c 'import json,sys; d=json.loads(sys.argv[1]); print(isinstance(d.get("error"), str) and len(d) == 1 and len(d["error"]) > 0)' "$BODY" 2>/dev/null)
    assert_eq True "$e" "$1: error body in the protocol's form ($BODY)"
}

for proto in h1 h2c; do
    P=()
    [ $proto == h2c ] && P=(--http2-prior-knowledge)

    # ---- health and metadata
    call "${P[@]}" -D "$T/h" "$(u /v2/health/live)"
    assert_eq 200 "$STATUS" "$proto: live"
    assert_eq "" "$BODY" "$proto: live body"
    call "${P[@]}" "$(u /v2/health/ready)"
    assert_eq 200 "$STATUS" "$proto: ready"
    call "${P[@]}" "$(u /v2)"
    assert_eq 200 "$STATUS" "$proto: server metadata"
    assert_json "$BODY" name fleetgate-model "$proto: server name"
    assert_json "$BODY" extensions '["generate"]' "$proto: extensions"
    call "${P[@]}" "$(u /v2/models/digits)"
    assert_eq 200 "$STATUS" "$proto: model metadata"
    assert_json "$BODY" name digits "$proto: metadata name"
    assert_json "$BODY" versions '["1","2"]' "$proto: metadata versions"
    assert_json "$BODY" inputs '[{"name":"input","datatype":"FP32","shape":[-1,8,8]}]' "$proto: metadata inputs"
    assert_json "$BODY" outputs.0 '{"name":"probabilities","datatype":"FP32","shape":[-1,10]}' "$proto: output probabilities"
    assert_json "$BODY" outputs.1 '{"name":"label","datatype":"INT64","shape":[-1]}' "$proto: output label"
    call "${P[@]}" "$(u /v2/models/digits/versions/1)"
    assert_eq 200 "$STATUS" "$proto: versioned metadata"
    call "${P[@]}" "$(u /v2/models/digits/ready)"
    assert_eq 200 "$STATUS" "$proto: model ready"
    call "${P[@]}" "$(u /v2/models/digits/versions/2/ready)"
    assert_eq 200 "$STATUS" "$proto: version 2 ready"

    # ---- unknown things: 404
    for path in /v2/models/nope /v2/models/nope/ready /v2/models/digits/versions/9/ready /v2/nothing /; do
        call "${P[@]}" "$(u $path)"
        assert_eq 404 "$STATUS" "$proto: GET $path"
        is_protocol_error "$proto: GET $path"
    done
    call "${P[@]}" -H 'content-type: application/json' --data-binary "$(infer_body '[1,8,8]' FP32 "$IMG")" "$(u /v2/models/nope/infer)"
    assert_eq 404 "$STATUS" "$proto: infer on an unknown model"
    assert_contains "$BODY" nope "$proto: the message names the model"

    # ---- inference
    call "${P[@]}" --data-binary "$(infer_body '[1,8,8]' FP32 "$IMG")" "$(u /v2/models/digits/infer)"
    assert_eq 200 "$STATUS" "$proto: infer FP32"
    assert_json "$BODY" model_name digits "$proto: model_name"
    assert_json "$BODY" model_version 2 "$proto: unversioned infer uses the latest version"
    assert_json "$BODY" id req-1 "$proto: id echoed"
    assert_json "$BODY" outputs.0.shape '[1,10]' "$proto: probabilities shape"
    assert_json "$BODY" outputs.1.data "[$LABEL]" "$proto: label of a held-out image"
    SUM=$($PY -c 'import json,sys; print(round(sum(json.loads(sys.argv[1])["outputs"][0]["data"]), 4))' "$BODY")
    assert_eq 1.0 "$SUM" "$proto: probabilities sum to 1"
    call "${P[@]}" --data-binary "$(infer_body '[1,8,8]' UINT8 "$IMG")" "$(u /v2/models/digits/versions/1/infer)"
    assert_eq 200 "$STATUS" "$proto: infer UINT8"
    assert_json "$BODY" model_version 1 "$proto: versioned infer"
    NESTED=$($PY -c 'import json,sys; v=[int(x) for x in sys.argv[1].split(",")]; print(json.dumps([[v[r*8:r*8+8] for r in range(8)]]*2))' "$IMG")
    call "${P[@]}" --data-binary "{\"inputs\":[{\"name\":\"input\",\"shape\":[2,8,8],\"datatype\":\"FP32\",\"data\":$NESTED}],\"outputs\":[{\"name\":\"label\"}]}" "$(u /v2/models/digits/infer)"
    assert_eq 200 "$STATUS" "$proto: nested data, batch of 2"
    assert_json "$BODY" outputs "[{\"name\":\"label\",\"datatype\":\"INT64\",\"shape\":[2],\"data\":[$LABEL,$LABEL]}]" "$proto: only the requested output"

    # ---- bad tensors: 400
    bad() {  # bad WHAT BODY NEEDLE
        call "${P[@]}" --data-binary "$2" "$(u /v2/models/digits/infer)"
        assert_eq 400 "$STATUS" "$proto: $1"
        is_protocol_error "$proto: $1"
        assert_contains "$BODY" "$3" "$proto: $1: reason"
    }
    bad "wrong input name" '{"inputs":[{"name":"pixels","shape":[1,8,8],"datatype":"FP32","data":[0]}]}' pixels
    bad "wrong shape" "$(infer_body '[1,64]' FP32 "$IMG")" "[1,64]"
    bad "empty batch" "$(infer_body '[0,8,8]' FP32 "")" "empty batch"
    bad "wrong datatype" "$(infer_body '[1,8,8]' INT32 "$IMG")" INT32
    bad "too few values" "$(infer_body '[1,8,8]' FP32 "1,2,3")" "3 values"
    bad "too many values" "$(infer_body '[1,8,8]' FP32 "$IMG,1")" "65 values"
    bad "a string among the values" "$(infer_body '[1,8,8]' FP32 "\"x\",${IMG#*,}")" "not a number"
    bad "null among the values" "$(infer_body '[1,8,8]' FP32 "null,${IMG#*,}")" "not a number"
    bad "UINT8 out of range" "$(infer_body '[1,8,8]' UINT8 "300,${IMG#*,}")" "0..255"
    bad "UINT8 fraction" "$(infer_body '[1,8,8]' UINT8 "0.5,${IMG#*,}")" "integers"
    bad "FP32 overflow" "$(infer_body '[1,8,8]' FP32 "1e300,${IMG#*,}")" "FP32"
    bad "ragged nesting" '{"inputs":[{"name":"input","shape":[1,8,8],"datatype":"FP32","data":[[[1,2]]]}]}' "depth"
    bad "two inputs" "{\"inputs\":[{\"name\":\"input\",\"shape\":[1,8,8],\"datatype\":\"FP32\",\"data\":[$IMG]},{\"name\":\"input\",\"shape\":[1,8,8],\"datatype\":\"FP32\",\"data\":[$IMG]}]}" "exactly one"
    bad "no inputs" '{"id":"x"}' inputs
    bad "unknown output" "$(infer_body '[1,8,8]' FP32 "$IMG" ',"outputs":[{"name":"logits"}]')" logits
    bad "unknown member" "$(infer_body '[1,8,8]' FP32 "$IMG" ',"extra":1')" extra
    bad "not JSON" '{"inputs":' "invalid JSON"
    bad "not an object" '[1,2]' "JSON object"
    bad "empty body" '' "no body"

    # ---- limits: 413
    BIG=$($PY -c 'print("{\"inputs\":[{\"name\":\"input\",\"shape\":[300,8,8],\"datatype\":\"FP32\",\"data\":[" + ",".join(["16.0"]*19200) + "]}]}")')
    call "${P[@]}" --data-binary "$BIG" "$(u /v2/models/digits/infer)"
    assert_eq 413 "$STATUS" "$proto: body over --max-body-bytes"
    is_protocol_error "$proto: 413 body"
    MANY=$($PY -c 'print("{\"inputs\":[{\"name\":\"input\",\"shape\":[600,8,8],\"datatype\":\"UINT8\",\"data\":[" + ",".join(["1"]*38400) + "]}]}")')
    call "${P[@]}" --data-binary "$MANY" "$(u /v2/models/digits/infer)"
    assert_eq 413 "$STATUS" "$proto: a batch larger than the queue (600 > 512)"
    is_protocol_error "$proto: 413 batch"

    # ---- methods: 405 with Allow
    call "${P[@]}" -D "$T/h" -X DELETE "$(u /v2/models/digits/infer)"
    assert_eq 405 "$STATUS" "$proto: DELETE infer"
    assert_eq POST "$(header_value "$T/h" allow)" "$proto: Allow of infer"
    is_protocol_error "$proto: 405"
    call "${P[@]}" -D "$T/h" --data-binary x "$(u /v2/health/live)"
    assert_eq 405 "$STATUS" "$proto: POST live"
    assert_eq "GET, HEAD" "$(header_value "$T/h" allow)" "$proto: Allow of live"

    # ---- generate extension
    ROWS=$($PY -c 'import json,sys; v=[int(x) for x in sys.argv[1].split(",")]; print(json.dumps([v[r*8:r*8+8] for r in range(8)]))' "$IMG")
    call "${P[@]}" --data-binary "{\"input\":$ROWS}" "$(u /v2/models/digits/generate)"
    assert_eq 200 "$STATUS" "$proto: generate, one 8x8 image"
    assert_json "$BODY" label "[$LABEL]" "$proto: generate label"
    call "${P[@]}" --data-binary "{\"input\":[$IMG,$IMG,$IMG],\"id\":\"g\"}" "$(u /v2/models/digits/versions/1/generate)"
    assert_eq 200 "$STATUS" "$proto: generate, three flat images"
    assert_json "$BODY" label "[$LABEL,$LABEL,$LABEL]" "$proto: generate labels"
    assert_json "$BODY" model_version 1 "$proto: generate version"
    assert_json "$BODY" id g "$proto: generate id"
    call "${P[@]}" --data-binary "{\"input\":[1,2,3]}" "$(u /v2/models/digits/generate)"
    assert_eq 400 "$STATUS" "$proto: generate with a partial image"
    is_protocol_error "$proto: generate 400"
    call "${P[@]}" --data-binary "{\"text_input\":\"hello\"}" "$(u /v2/models/digits/generate)"
    assert_eq 400 "$STATUS" "$proto: generate without input"

    call "${P[@]}" -N -D "$T/h" --data-binary "{\"input\":[[$IMG],[$IMG],[$IMG],[$IMG]]}" "$(u /v2/models/digits/generate_stream)"
    assert_eq 200 "$STATUS" "$proto: generate_stream"
    assert_eq "text/event-stream" "$(header_value "$T/h" content-type)" "$proto: SSE content type"
    EV=$($PY -c '
import json, sys
ev = [json.loads(l[5:]) for l in sys.argv[1].splitlines() if l.startswith("data:")]
print(len(ev), sorted(e["index"] for e in ev), sorted(set(e["label"] for e in ev)))' "$BODY")
    assert_eq "4 [0, 1, 2, 3] [$LABEL]" "$EV" "$proto: one event per item"
done

# ---- metrics (Prometheus text)
call "$(u /metrics)"
assert_eq 200 "$STATUS" "metrics"
for m in 'fleetgate_model_queue_depth{model="digits",version="1"} 0' \
         '# TYPE fleetgate_model_batch_size histogram' \
         'fleetgate_model_batch_size_bucket{model="digits",version="2",le="+Inf"}' \
         '# TYPE fleetgate_model_inference_seconds histogram' \
         'fleetgate_model_inference_seconds_count{model="digits",version="1"}' \
         'fleetgate_model_requests_total{code="200"}' \
         'fleetgate_model_requests_total{code="400"}' \
         'fleetgate_model_requests_total{code="404"}' \
         'fleetgate_model_requests_total{code="413"}'; do
    assert_contains "$BODY" "$m" "metrics"
done
N400=$(printf '%s\n' "$BODY" | awk '/^fleetgate_model_requests_total\{code="400"\}/ {print $2}')
assert_ge "$N400" 42 "400s counted (21 per protocol)"

# ---- command line errors
out=$("$FG_MODEL" --listen 127.0.0.1:1 2>&1); rc=$?
assert_eq 2 "$rc" "no --model: exit status"
assert_contains "$out" "--model is required" "no --model: message"
out=$("$FG_MODEL" --model "$T/missing.fgm" --listen 127.0.0.1:1 2>&1); rc=$?
assert_eq 1 "$rc" "missing model file: exit status"
assert_contains "$out" "missing.fgm" "missing model file: message names it"
out=$("$FG_MODEL" --model "$FG_MODEL_V1" --listen 127.0.0.1:1 --max-batch 0 2>&1); rc=$?
assert_eq 2 "$rc" "--max-batch 0: exit status"
out=$("$FG_MODEL" --model "$FG_MODEL_V1" --listen 127.0.0.1:1 --device tpu 2>&1); rc=$?
assert_eq 2 "$rc" "--device tpu: exit status"
out=$("$FG_MODEL" --model "$FG_MODEL_V1,$FG_MODEL_V1" --listen 127.0.0.1:1 2>&1); rc=$?
assert_eq 1 "$rc" "the same model twice: exit status"
assert_contains "$out" "loaded twice" "the same model twice: message"
if ! nvidia-smi -L >/dev/null 2>&1; then     # no GPU here
    out=$("$FG_MODEL" --model "$FG_MODEL_V1" --listen 127.0.0.1:1 --device gpu 2>&1); rc=$?
    assert_eq 1 "$rc" "--device gpu without a GPU: exit status"
    assert_match "$out" "no GPU found|built without CUDA" "--device gpu without a GPU: message"
fi

finish
