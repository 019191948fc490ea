#!/bin/bash
# Builds the Debian package (fleetgate_VERSION_ARCH.deb) from this source tree:
#
#   packaging/build-deb.sh OUTDIR [TARBALL]
#
# Debian's tools want the packaging in debian/ at the root of the tree; it
# lives in packaging/debian/ here. So this script copies the source into a
# temporary directory, puts packaging/debian there as debian/, runs
# "dpkg-buildpackage -us -uc -b" in it and copies the .deb files (and the
# .buildinfo and .changes) into OUTDIR. The source tree itself is only read.
#
# What is copied:
#   - TARBALL given (fleetgate-VERSION.tar.gz from "make dist"): its contents;
#   - else, in a git checkout: the files git knows plus untracked files that
#     are not ignored (what "git status" shows: uncommitted changes included;
#     build directories and autotools output left out);
#   - else (an unpacked release): the whole tree but for .git and build
#     directories (those holding a config.status). A tree configured in
#     place is refused: run "make distclean" there first.
# Needs dpkg-dev and debhelper (scripts/deps.sh deb) and the build
# dependencies (scripts/deps.sh build). Set FG_DEB_KEEP=1 to keep the
# temporary directory.
set -euo pipefail

usage() { echo "usage: $0 OUTDIR [TARBALL]" >&2; exit 2; }
[ $# -ge 1 ] && [ $# -le 2 ] || usage
out=$1
tarball=${2:-}
top=$(cd "$(dirname "$0")/.." && pwd -P)   # physical: compared with git's below

for c in dpkg-buildpackage dpkg-checkbuilddeps dh; do
    command -v "$c" >/dev/null 2>&1 || {
        echo "$c is missing: install dpkg-dev and debhelper (scripts/deps.sh deb)" >&2
        exit 1
    }
done
[ -f "$top/packaging/debian/control" ] || { echo "no packaging/debian in $top" >&2; exit 1; }
mkdir -p "$out"
out=$(cd "$out" && pwd)

work=$(mktemp -d "${TMPDIR:-/tmp}/fleetgate-deb.XXXXXX")
if [ "${FG_DEB_KEEP:-0}" = 1 ]; then
    trap 'echo "build directory kept: $work" >&2' EXIT
else
    trap 'rm -rf "$work"' EXIT
fi
src=$work/fleetgate
mkdir "$src"

if [ -n "$tarball" ]; then
    echo "copying $tarball" >&2
    tar -xzf "$tarball" -C "$src" --strip-components=1
elif command -v git >/dev/null 2>&1 &&
     [ "$(git -C "$top" rev-parse --show-toplevel 2>/dev/null)" = "$top" ]; then
    echo "copying the files git knows in $top" >&2
    # (files deleted but not yet committed are listed too: leave them out)
    git -C "$top" ls-files -z --cached --others --exclude-standard |
        (cd "$top" && while IFS= read -r -d '' f; do
             [ -e "$f" ] && printf '%s\0' "$f"
         done) |
        tar -C "$top" --null -T - -cf - | tar -C "$src" -xf -
else
    if [ -e "$top/config.status" ]; then
        echo "$top is configured in place: run 'make distclean' there, or give a tarball" >&2
        exit 1
    fi
    echo "copying $top (not a git checkout, or git refuses it), build directories left out" >&2
    excl=(--exclude=./.git --exclude=./autom4te.cache)
    while IFS= read -r d; do
        excl+=("--exclude=./${d#"$top"/}")
    done < <(find "$top" -mindepth 2 -maxdepth 4 -name config.status -printf '%h\n')
    tar -C "$top" "${excl[@]}" -cf - . | tar -C "$src" -xf -
fi
# (make distcheck unpacks its tree read-only; the copy must be writable)
chmod -R u+w "$src"

rm -rf "$src/debian"
cp -R "$src/packaging/debian" "$src/debian"
chmod +x "$src/debian/rules"

# A make above this one (make check) must not pass its flags or variables
# down into the package's own build.
unset MAKEFLAGS MFLAGS MAKELEVEL MAKEOVERRIDES

echo "building the package in $src" >&2
(cd "$src" && dpkg-buildpackage -us -uc -b -J"$(nproc)")

found=0
for f in "$work"/*.deb "$work"/*.ddeb "$work"/*.buildinfo "$work"/*.changes; do
    [ -f "$f" ] || continue
    cp "$f" "$out/"
    found=1
    echo "$out/$(basename "$f")"
done
[ "$found" = 1 ] || { echo "dpkg-buildpackage made no package" >&2; exit 1; }
