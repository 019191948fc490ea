#!/bin/bash
# Quick start: installs what is missing, builds, starts two stand-in model
# backends (nginx on 127.0.0.1:9001 and :9002) and runs fleetgate in the
# foreground with etc/fleetgate.json (listening on 127.0.0.1:8080 and [::1]:8080).
# Ctrl-C stops everything it started.
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"
scripts/deps.sh run
build=$(scripts/build.sh "$top/build" | tail -n 1)

run=$(mktemp -d "${TMPDIR:-/tmp}/fleetgate-quickstart.XXXXXX")
nginx_pid=$(scripts/nginx-backend.sh "$run/backends" 9001 9002)
cleanup() {
    kill "$nginx_pid" 2>/dev/null || true
    rm -rf "$run"
}
trap cleanup EXIT

cat <<MSG

fleetgate is starting on 127.0.0.1:8080 and [::1]:8080, in front of nginx stand-ins on :9001 and :9002.
Try it from another terminal:
  curl -i http://127.0.0.1:8080/v2/models/digits
  curl -i --http2-prior-knowledge http://127.0.0.1:8080/v2/health/ready
  h2load -n 100000 -c 32 -m 16 http://127.0.0.1:8080/v2/health/ready
  h2load --h1 -n 100000 -c 32 http://127.0.0.1:8080/v2/health/ready
Ctrl-C stops the gateway and the backends.

MSG
"$build/fleetgate" -c "$top/etc/fleetgate.json" &
gw=$!
trap 'kill -INT $gw 2>/dev/null; wait $gw; cleanup; exit 0' INT TERM
wait $gw
