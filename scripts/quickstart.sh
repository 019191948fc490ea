#!/bin/bash
# Quick start: installs what is missing, builds, starts two reference
# backends (fleetgate-model: digits v1 on 127.0.0.1:9001, digits v2 on
# 127.0.0.1:9002) and runs fleetgate in the foreground with
# etc/fleetgate.json (127.0.0.1:8080 and [::1]:8080), which splits the digits
# traffic 90/10 between v1 and v2, sticky on the x-user header (requests
# without one are drawn at random). Ctrl-C stops everything it started.
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"
scripts/deps.sh run
build=$(scripts/build.sh "$top/build" | tail -n 1)

run=$(mktemp -d "${TMPDIR:-/tmp}/fleetgate-quickstart.XXXXXX")
pids=()
cleanup() {
    for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
    for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
    rm -rf "$run"
}
trap cleanup EXIT

"$build/fleetgate-model" --model "$top/models/digits-v1.fgm" --listen 127.0.0.1:9001 \
    2>"$run/model-v1.log" &
pids+=($!)
"$build/fleetgate-model" --model "$top/models/digits-v2.fgm" --listen 127.0.0.1:9002 \
    2>"$run/model-v2.log" &
pids+=($!)
for port in 9001 9002; do
    for _ in $(seq 1 100); do
        curl -fs --noproxy '*' -o /dev/null "http://127.0.0.1:$port/v2/health/ready" && break
        sleep 0.1
    done
    curl -fs --noproxy '*' -o /dev/null "http://127.0.0.1:$port/v2/health/ready" || {
        echo "quickstart: the model server on 127.0.0.1:$port did not start:" >&2
        cat "$run"/model-*.log >&2
        exit 1
    }
done

cat <<MSG

fleetgate is starting on 127.0.0.1:8080 and [::1]:8080, in front of two fleetgate-model
servers: digits v1 on 127.0.0.1:9001 (90% of the traffic) and digits v2 on 127.0.0.1:9002 (10%),
an A/B split sticky on the x-user header. Classify a handwritten 3 (etc/examples/digit-3.json)
from another terminal:
  curl -s http://127.0.0.1:8080/v2/models/digits/infer -H 'x-user: alice' \\
       -d @$top/etc/examples/digit-3.json
More:
  curl -s http://127.0.0.1:8080/v2/models/digits                 # model metadata
  curl -s --http2-prior-knowledge http://127.0.0.1:8080/v2/models/digits/versions/2/infer \\
       -d @$top/etc/examples/digit-3.json                         # version 2 only, over h2c
  curl -s http://127.0.0.1:9001/metrics                            # batching and latency of v1
  curl -s http://127.0.0.1:9901/status                             # the gateway's view of its backends
  h2load -n 20000 -c 32 -m 8 -d $top/etc/examples/digit-3.json http://127.0.0.1:8080/v2/models/digits/infer
Ctrl-C stops the gateway and the model servers.

MSG
"$build/fleetgate" -c "$top/etc/fleetgate.json" &
gw=$!
trap 'trap - EXIT INT TERM; kill -INT $gw 2>/dev/null; wait $gw; cleanup; exit 0' INT TERM
wait $gw
