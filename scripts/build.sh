#!/bin/bash
# Builds fleetgate out of tree: scripts/build.sh [BUILD-DIR [CONFIGURE-ARGS...]]
# (default build/). Regenerates configure when configure.ac or Makefile.am
# changed. Prints the build directory on the last line.
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
dir=${1:-$top/build}
shift || true
cd "$top"
if [ ! -x configure ] || [ configure.ac -nt configure ] || [ Makefile.am -nt Makefile.in ] \
   || [ tests/e2e/tests.am -nt Makefile.in ] || [ src/model/model.am -nt Makefile.in ] \
   || [ src/model/cudnn.am -nt Makefile.in ]; then
    autoreconf -fi >/dev/null
fi
mkdir -p "$dir"
cd "$dir"
# configure again when it changed or when the arguments differ from last time
if [ ! -f Makefile ] || [ "$top/configure" -nt config.status ] ||
   [ "$(./config.status --config 2>/dev/null | tr -d "'")" != "$*" ]; then
    "$top/configure" -q "$@"
fi
make -j"$(nproc)" >/dev/null
echo "$dir"
