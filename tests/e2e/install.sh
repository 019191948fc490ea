#!/bin/bash
# make install: programs, manuals (they render without warnings), the
# example configuration (valid for the installed gateway) and the docs; and
# the service manager's readiness protocol (READY=1, STOPPING=1).
. "$(dirname "$0")/lib.sh"
require_cmd make groff

root=$T/root
make -s -C "$FG_BUILDDIR" install DESTDIR="$root" >"$T/install.out" 2>&1
assert_eq 0 $? "make install DESTDIR=...: $(tail -n 3 "$T/install.out")"
prefix=$(sed -n 's/^prefix = //p' "$FG_BUILDDIR/Makefile")
sysconfdir=$(sed -n 's/^sysconfdir = //p' "$FG_BUILDDIR/Makefile" | sed "s|\${prefix}|$prefix|")
for f in bin/fleetgate bin/fleetgate-model share/man/man8/fleetgate.8 share/man/man5/fleetgate.json.5 \
         share/man/man8/fleetgate-model.8 share/doc/fleetgate/configuration.md \
         share/doc/fleetgate/operations.md; do
    assert_true "installed: $prefix/$f" test -f "$root$prefix/$f"
done
assert_true "installed: $sysconfdir/fleetgate/fleetgate.json" test -f "$root$sysconfdir/fleetgate/fleetgate.json"
out=$("$root$prefix/bin/fleetgate" -t -c "$root$sysconfdir/fleetgate/fleetgate.json" 2>&1)
assert_eq 0 $? "the installed gateway accepts the installed example configuration: $out"
for m in man8/fleetgate.8 man5/fleetgate.json.5 man8/fleetgate-model.8; do
    w=$(LC_ALL=C.UTF-8 groff -man -Tutf8 -ww -z "$root$prefix/share/man/$m" 2>&1)
    assert_eq "" "$w" "$m renders without warnings"
done
assert_contains "$(LC_ALL=C.UTF-8 GROFF_NO_SGR=1 groff -man -Tutf8 -P-b -P-u "$root$prefix/share/man/man8/fleetgate.8" 2>/dev/null)" \
    "SIGUSR1" "fleetgate(8) documents the signals"

# ---- readiness: READY=1 once listening, STOPPING=1 on SIGTERM
start_backend a
pick_port GWP
write_config "$T/gw.json" <<JSON
{ "listeners": [ { "address": "127.0.0.1:$GWP" } ],
  "upstreams": { "m": { "backends": [ { "address": "${BACKEND_ADDR[a]}" } ] } },
  "routes": [ { "match": {}, "upstream": "m" } ] }
JSON
$PY - "$T/notify.sock" >"$T/notify.out" <<'PY' &
import socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind(sys.argv[1])
s.settimeout(15)
try:
    for _ in range(2):
        print(s.recv(4096).decode(), flush=True)
except socket.timeout:
    pass
PY
NPID=$!
for i in $(seq 1 50); do [ -S "$T/notify.sock" ] && break; sleep 0.05; done
NOTIFY_SOCKET=$T/notify.sock start_gateway "$T/gw.json"
stop_gateway
wait "$NPID"
assert_eq "READY=1 STOPPING=1" "$(tr '\n' ' ' <"$T/notify.out" | sed 's/ $//')" \
    "the service manager hears READY=1, then STOPPING=1"

finish
