#!/bin/bash
# Installs the Debian 12 packages the benchmarks need that are not installed
# yet (the same logic as scripts/deps.sh, which bench/run calls for building):
#   bench/lib/deps.sh bench     HAProxy, nginx, h2load, gnuplot, openssl, python3
# Runs apt-get only when something is missing (as root, or through sudo).
set -euo pipefail

case "${1:-bench}" in
    bench) want=(haproxy nginx-light nghttp2-client gnuplot-nox openssl python3 procps util-linux) ;;
    *) echo "usage: $0 bench" >&2; exit 2 ;;
esac

missing=()
for p in "${want[@]}"; do
    if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
        missing+=("$p")
    fi
done
[ ${#missing[@]} -eq 0 ] && exit 0

echo "installing: ${missing[*]}"
sudo=()
if [ "$(id -u)" -ne 0 ]; then
    command -v sudo >/dev/null || { echo "not root and no sudo: install ${missing[*]} first" >&2; exit 1; }
    sudo=(sudo)
fi
export DEBIAN_FRONTEND=noninteractive
"${sudo[@]}" apt-get update -qq
"${sudo[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
# Installing haproxy or nginx may start their packaged instances (port 80);
# the benchmarks never use those and leave them alone.
