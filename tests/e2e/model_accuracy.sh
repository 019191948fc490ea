#!/bin/bash
# The shipped models classify the held-out digits through HTTP as well as
# through the C API: every held-out image is sent to fleetgate-model (v1 and
# v2, HTTP/1.1) and through fleetgate in front of them (h2c to the gateway),
# and the labels that come back are scored. Each model must reach 97%.
. "$(dirname "$0")/lib.sh"
require_cmd curl

start_model v1 --model "$FG_MODEL_V1"
start_model v2 --model "$FG_MODEL_V2"

# score URL_BASE [h2]: prints "correct total" for the whole held-out set,
# sent in requests of 40 images (the last one shorter)
score() {
    timeout -k 2 60 $PY - "$FG_DIGITS_TEST" "$1" "${2:-}" <<'PY'
import json, subprocess, sys
rows = []
for line in open(sys.argv[1]):
    if line.startswith("#") or not line.strip():
        continue
    v = [int(x) for x in line.split(",")]
    rows.append((v[:64], v[64]))
url, h2 = sys.argv[2], sys.argv[3] == "h2"
correct = 0
for i in range(0, len(rows), 40):
    part = rows[i:i + 40]
    body = json.dumps({"inputs": [{"name": "input", "shape": [len(part), 8, 8], "datatype": "UINT8",
                                   "data": [p for img, _ in part for p in img]}],
                       "outputs": [{"name": "label"}]})
    cmd = ["curl", "-sS", "--noproxy", "*", "--max-time", "10", "--data-binary", "@-", url]
    if h2:
        cmd.insert(1, "--http2-prior-knowledge")
    out = subprocess.run(cmd, input=body.encode(), capture_output=True, check=True).stdout
    labels = json.loads(out)["outputs"][0]["data"]
    correct += sum(1 for (img, want), got in zip(part, labels) if want == got)
print(correct, len(rows))
PY
}

check() {  # check WHAT URL [h2]
    local r correct total
    r=$(score "$2" "${3:-}") || { fail "$1: the client failed"; return; }
    read -r correct total <<<"$r"
    note "$1: held-out accuracy $($PY -c "print('%.4f' % ($correct / $total))") ($correct/$total)"
    assert_ge "$((correct * 10000 / total))" 9700 "$1: accuracy x 10000"
}

check "digits v1 over HTTP/1.1" "$(model_url v1 /v2/models/digits/infer)"
check "digits v2 over HTTP/1.1" "$(model_url v2 /v2/models/digits/versions/2/infer)"

pick_port GWP
write_config "$T/gw.json" <<JSON
{
  "listeners": [{"address": "127.0.0.1:$GWP"}],
  "upstreams": {
    "v1": {"backends": [{"address": "${MODEL_ADDR[v1]}"}]},
    "v2": {"backends": [{"address": "${MODEL_ADDR[v2]}"}]}
  },
  "routes": [
    {"match": {"path_prefix": "/v2/models/digits/versions/1/"}, "upstream": "v1"},
    {"match": {"path_prefix": "/"}, "upstream": "v2"}
  ]
}
JSON
start_gateway "$T/gw.json"
check "digits v1 through fleetgate (h2c)" "$(gw_url /v2/models/digits/versions/1/infer)" h2
check "digits v2 through fleetgate (h2c)" "$(gw_url /v2/models/digits/infer)" h2

finish
