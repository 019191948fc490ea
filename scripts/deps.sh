#!/bin/bash
# Installs the Debian 12 packages fleetgate needs that are not installed yet.
#   scripts/deps.sh build    what building needs
#   scripts/deps.sh test     building + the test suite's real peers (and what
#                            tests/e2e/deb.sh builds and checks the package with)
#   scripts/deps.sh run      building + what the quick start runs
#   scripts/deps.sh bench    what bench/run and bench/idle run (not the build)
#   scripts/deps.sh train    what scripts/train-digits.py needs (numpy, sklearn's data)
#   scripts/deps.sh deb      building + what packaging/build-deb.sh needs (the .deb)
# Runs apt-get only when something is missing (as root, or through sudo).
set -euo pipefail

build_pkgs=(build-essential autoconf automake libtool pkg-config
            libevent-dev libnghttp2-dev libssl-dev libjansson-dev libmaxminddb-dev node-llhttp)
test_pkgs=(curl nghttp2-client nginx-light haproxy openssl python3 procps prometheus groff-base make
           debhelper dpkg-dev python3-yaml systemd clang libclang-rt-14-dev
           systemd-container debootstrap)
run_pkgs=(curl nghttp2-client)
train_pkgs=(python3 python3-numpy python3-sklearn)
# dpkg-buildpackage and dh (autoreconf comes with debhelper's dh-autoreconf);
# no fakeroot: debian/control says Rules-Requires-Root: no
deb_pkgs=(debhelper dpkg-dev)
bench_pkgs=(haproxy nginx-light nghttp2-client gnuplot-nox openssl python3 procps util-linux)

case "${1:-build}" in
    build) want=("${build_pkgs[@]}") ;;
    test)  want=("${build_pkgs[@]}" "${test_pkgs[@]}") ;;
    run)   want=("${build_pkgs[@]}" "${run_pkgs[@]}") ;;
    bench) want=("${bench_pkgs[@]}") ;;
    train) want=("${train_pkgs[@]}") ;;
    deb)   want=("${build_pkgs[@]}" "${deb_pkgs[@]}") ;;
    *) echo "usage: $0 build|test|run|bench|train|deb" >&2; exit 2 ;;
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
# Installing nginx or haproxy starts their packaged instances (port 80) on
# some images; the project never uses those and leaves them alone.
