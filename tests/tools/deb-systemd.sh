#!/bin/bash
# The Debian package under a real systemd: boots systemd (PID 1) in a
# systemd-nspawn container and installs the package there the way a user
# does (apt-get install of the .deb on a running system: the maintainer
# scripts enable and start the unit), then checks the unit:
#   - systemd-analyze verify (inside the container, where only the package's
#     dependencies are installed: a command the unit names must be there);
#   - it is enabled and active after the install (Type=notify: systemctl
#     start returns only once READY=1 came), runs as a dynamic (non-root)
#     user, has not restarted;
#   - the gateway answers on the shipped configuration's listeners
#     (127.0.0.1:8080, [::1]:8080; no backends run, so a 502/503 JSON error
#     is the answer) and its admin listener's GET /status (200, JSON);
#   - systemctl reload: succeeds, the configuration is reloaded (journal),
#     the unit stays active with the same MainPID;
#   - systemctl stop: inactive, Result=success, the drain in the journal;
#     systemctl start again: active;
#   - the journal holds the gateway's own log lines.
#
#   deb_systemd.sh FLEETGATE_DEB [MORE_DEBS...]
#
# The container's root is a minimal Debian (debootstrap --variant=minbase,
# the host's release) at $FG_SD_ROOT, built once (about 4 minutes, needs the
# mirror) and reused read-only: each run works on an overlay of it that is
# thrown away. The package's dependencies are downloaded (host network)
# before the boot; the booted container has a private network (loopback
# only), so the ports do not meet the host's.
#
# Needs root, systemd-nspawn (systemd-container), nsenter, overlayfs, and
# debootstrap while $FG_SD_ROOT is not built. Works without systemd on the
# host (no machined: --register=no --keep-unit, commands through nsenter
# into the container's PID 1). Exit 0: all checks passed; 1: a check
# failed; 77: this machine cannot run the test (said why).
set -uo pipefail

FG_SD_ROOT=${FG_SD_ROOT:-/var/tmp/fleetgate-sd-root}
FG_SD_MIRROR=${FG_SD_MIRROR:-http://deb.debian.org/debian}
BOOT_TIMEOUT=${FG_SD_BOOT_TIMEOUT:-90}

skip() { echo "SKIP: $*" >&2; exit 77; }
die()  { echo "ERROR: $*" >&2; exit 1; }
now()  { date +%s.%N; }
since() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.1f", b - a }'; }

[ $# -ge 1 ] || { echo "usage: $0 FLEETGATE_DEB [MORE_DEBS...]" >&2; exit 2; }
debs=()
for d in "$@"; do
    case $(basename "$d") in *-dbgsym_*) continue ;; esac
    [ -f "$d" ] || die "$d: no such file"
    debs+=("$(cd "$(dirname "$d")" && pwd)/$(basename "$d")")
done
[ ${#debs[@]} -ge 1 ] || die "no package given (only -dbgsym ones)"

[ "$(id -u)" -eq 0 ] || skip "needs root (systemd-nspawn, mount)"
for c in systemd-nspawn nsenter mount timeout flock; do
    command -v "$c" >/dev/null 2>&1 || skip "$c is missing (apt-get install systemd-container util-linux)"
done
grep -qw overlay /proc/filesystems || modprobe overlay 2>/dev/null
grep -qw overlay /proc/filesystems || skip "no overlayfs in this kernel"

fails=0
ok()    { echo "ok - $*"; }
notok() { echo "not ok - $*"; fails=$((fails + 1)); }
check() { local m=$1; shift; if "$@"; then ok "$m"; else notok "$m"; fi; }

[ ! -e "$FG_SD_ROOT/.fg-sd-base" ] || [ -x "$FG_SD_ROOT/usr/lib/systemd/systemd" ] ||
    skip "$FG_SD_ROOT is marked built but holds no systemd: remove it to have it built again"

# --- this run: its cgroups, its overlay, the teardown ------------------------------------
run=$(mktemp -d "${TMPDIR:-/tmp}/fg-sd.XXXXXX")
name=fg-sd-$$
nspawn_pid=
cgs=()
teardown() {
    if [ -n "$nspawn_pid" ] && kill -0 "$nspawn_pid" 2>/dev/null; then
        # nspawn turns SIGTERM into SIGRTMIN+3 for the container's systemd: a
        # clean halt (about 2 s). Sent again every 5 s (one sent before
        # systemd set its handlers is lost); after 20 s SIGKILL to the
        # container's PID 1 (its whole PID namespace goes; killing only nspawn
        # would leave the container running), then to nspawn.
        local i c
        for i in $(seq 100); do
            kill -0 "$nspawn_pid" 2>/dev/null || break
            [ $((i % 25)) = 1 ] && kill -TERM "$nspawn_pid" 2>/dev/null
            sleep 0.2
        done
        if kill -0 "$nspawn_pid" 2>/dev/null; then
            echo "# the container did not halt in 20 s: SIGKILL" >&2
            for c in $(cat "/proc/$nspawn_pid/task/$nspawn_pid/children" 2>/dev/null); do
                kill -KILL "$c" 2>/dev/null
            done
            for i in $(seq 25); do kill -0 "$nspawn_pid" 2>/dev/null || break; sleep 0.2; done
            kill -KILL "$nspawn_pid" 2>/dev/null
        fi
        wait "$nspawn_pid" 2>/dev/null
    fi
    mountpoint -q "$run/merged" 2>/dev/null && umount "$run/merged" 2>/dev/null
    mountpoint -q "$run/merged" 2>/dev/null && umount -l "$run/merged"
    for cg in "${cgs[@]}"; do
        [ -d "$cg" ] && find "$cg" -depth -type d -exec rmdir {} \; 2>/dev/null
    done
    rm -rf "$run"
}
trap teardown EXIT
trap 'exit 1' INT TERM HUP

# Without systemd on the host, nspawn (--keep-unit) puts the container under
# its own cgroup: give each run its own, so that runs side by side do not
# share one.
for h in /sys/fs/cgroup/systemd /sys/fs/cgroup/unified /sys/fs/cgroup; do
    [ -f "$h/cgroup.procs" ] || continue
    [ "$h" = /sys/fs/cgroup ] && [ ${#cgs[@]} -gt 0 ] && continue   # hybrid: done
    mkdir -p "$h/$name" 2>/dev/null && cgs+=("$h/$name")
done

# (incg CMD...): CMD in this run's cgroup; call it in a subshell
incg() {
    local cg
    for cg in "${cgs[@]}"; do echo "$BASHPID" >"$cg/cgroup.procs" 2>/dev/null; done
    exec "$@"
}

# --- the base root (built once, then only read) -------------------------------
if [ ! -e "$FG_SD_ROOT/.fg-sd-base" ]; then
    mkdir -p "$(dirname "$FG_SD_ROOT")"
    exec 9>"$FG_SD_ROOT.lock"
    flock -w 900 9 || skip "timed out waiting for another run building $FG_SD_ROOT"
    if [ ! -e "$FG_SD_ROOT/.fg-sd-base" ]; then
        command -v debootstrap >/dev/null 2>&1 ||
            skip "$FG_SD_ROOT is not built and debootstrap is missing (apt-get install debootstrap)"
        suite=$(. /etc/os-release && echo "${VERSION_CODENAME:-}")
        [ -n "$suite" ] || skip "cannot tell the host's Debian release"
        tmp=$FG_SD_ROOT.new
        rm -rf "$tmp"
        t=$(now)
        echo "# building $FG_SD_ROOT: debootstrap $suite from $FG_SD_MIRROR (a few minutes)"
        if ! timeout 1200 debootstrap --variant=minbase --include=systemd,systemd-sysv,dbus,curl \
                "$suite" "$tmp" "$FG_SD_MIRROR" >"$FG_SD_ROOT.debootstrap.log" 2>&1; then
            tail -5 "$FG_SD_ROOT.debootstrap.log" >&2
            rm -rf "$tmp"
            skip "debootstrap failed (no mirror?): $FG_SD_ROOT.debootstrap.log"
        fi
        # the host's sources (security and updates too), lists fetched now
        if [ -f /etc/apt/sources.list.d/debian.sources ]; then
            cp /etc/apt/sources.list.d/debian.sources "$tmp/etc/apt/sources.list.d/"
            rm -f "$tmp/etc/apt/sources.list"
        fi
        echo fleetgate-sd >"$tmp/etc/hostname"
        (incg timeout 300 systemd-nspawn -q -D "$tmp" --pipe --register=no --keep-unit \
            sh -c 'apt-get update -q && apt-get clean') >>"$FG_SD_ROOT.debootstrap.log" 2>&1 ||
            { rm -rf "$tmp"; skip "apt-get update in the new root failed"; }
        touch "$tmp/.fg-sd-base"
        rm -rf "$FG_SD_ROOT" && mv "$tmp" "$FG_SD_ROOT"
        echo "# base root built in $(since "$t") s"
    fi
    exec 9>&-
fi

mkdir "$run/upper" "$run/work" "$run/merged"
mount -t overlay overlay \
    -o "lowerdir=$FG_SD_ROOT,upperdir=$run/upper,workdir=$run/work" "$run/merged" ||
    skip "cannot mount an overlay of $FG_SD_ROOT"
root=$run/merged
mkdir -p "$root/var/tmp/fg"       # (not /tmp: nspawn mounts a tmpfs there)
cp "${debs[@]}" "$root/var/tmp/fg/"

# The package's dependencies, downloaded with the host's network (the booted
# container has none): apt-get install in the container then needs no mirror.
t=$(now)
if ! (incg timeout 300 systemd-nspawn -q -D "$root" --pipe --register=no --keep-unit \
        sh -c 'apt-get install -y -q --download-only /var/tmp/fg/*.deb') >"$run/download.log" 2>&1; then
    tail -5 "$run/download.log" >&2
    skip "cannot download the package's dependencies into the container (no mirror?)"
fi
echo "# dependencies downloaded in $(since "$t") s"

t=$(now)
(incg systemd-nspawn -D "$root" -b --register=no --keep-unit -M "$name" --private-network \
    --console=passive) >"$run/boot.log" 2>&1 </dev/null &
nspawn_pid=$!

# the container's PID 1 is nspawn's child once it runs systemd; its manager
# answers once /run/systemd/private exists
leader=
for _ in $(seq $((BOOT_TIMEOUT * 10))); do
    kill -0 "$nspawn_pid" 2>/dev/null || break
    c=$(cat "/proc/$nspawn_pid/task/$nspawn_pid/children" 2>/dev/null | awk '{print $1}')
    if [ -n "$c" ] && [ "$(cat "/proc/$c/comm" 2>/dev/null)" = systemd ] &&
       [ -S "/proc/$c/root/run/systemd/private" ]; then
        leader=$c
        break
    fi
    sleep 0.1
done
if [ -z "$leader" ]; then
    sed 's/^/# /' "$run/boot.log" >&2
    skip "systemd-nspawn could not boot systemd here (no manager in ${BOOT_TIMEOUT} s)"
fi

# ct SECONDS CMD...: CMD in the container (all its namespaces), clean env
ct() {
    local s=$1; shift
    timeout "$s" nsenter -t "$leader" -a \
        env -i PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
        LANG=C.UTF-8 SYSTEMD_PAGER= SYSTEMD_COLORS=0 "$@"
}
prop() { ct 10 systemctl show fleetgate.service -P "$1" 2>/dev/null; }

state=$(ct "$BOOT_TIMEOUT" systemctl is-system-running --wait 2>/dev/null)
case $state in
    running|degraded) ;;
    *) sed 's/^/# /' "$run/boot.log" >&2
       skip "the container's systemd did not finish booting (state: ${state:-none})" ;;
esac
echo "# container booted in $(since "$t") s (state: $state)"
ok "systemd boots in a container here (systemd-nspawn, PID 1 $leader)"
[ "$state" = running ] ||
    echo "# failed units before the install: $(ct 10 systemctl --failed --plain --no-legend | awk '{print $1}' | tr '\n' ' ')"

# --- the install ----------------------------------------------------------------
t=$(now)
if ct 300 sh -c 'DEBIAN_FRONTEND=noninteractive apt-get install -y -q /var/tmp/fg/*.deb' \
        >"$run/install.log" 2>&1; then
    ok "apt-get install of $(basename "${debs[0]}") in the booted container ($(since "$t") s)"
else
    sed 's/^/# /' "$run/install.log" | tail -20
    notok "apt-get install of $(basename "${debs[0]}") in the booted container"
    exit 1
fi

verify=$(ct 30 systemd-analyze verify --man=no fleetgate.service 2>&1)
if [ -z "$verify" ]; then
    ok "systemd-analyze verify fleetgate.service (with only the package's dependencies)"
else
    printf '%s\n' "$verify" | sed 's/^/# /'
    notok "systemd-analyze verify fleetgate.service (with only the package's dependencies)"
fi

check "the unit is enabled" test "$(ct 10 systemctl is-enabled fleetgate.service)" = enabled
check "the install started the unit: active (Type=$(prop Type), READY=1 received)" \
    test "$(prop ActiveState)/$(prop SubState)/$(prop Type)" = active/running/notify
pid=$(prop MainPID)
uid=$(ct 5 awk '/^Uid:/ { print $2 }' "/proc/$pid/status" 2>/dev/null)
check "MainPID $pid runs as a dynamic user (uid ${uid:-?}, User=$(prop User))" \
    test -n "$uid" -a "${uid:-0}" != 0
check "no restart (NRestarts=$(prop NRestarts))" test "$(prop NRestarts)" = 0

# --- it answers -----------------------------------------------------------------
code=$(ct 10 curl -s -m 5 -o /dev/null -w '%{http_code}' http://127.0.0.1:9901/status)
body=$(ct 10 curl -s -m 5 http://127.0.0.1:9901/status | head -c 200)
check "admin listener 127.0.0.1:9901 GET /status: $code, JSON" \
    test "$code" = 200 -a "${body:0:1}" = "{"
for url in http://127.0.0.1:8080/ 'http://[::1]:8080/'; do
    out=$(ct 10 curl -s -g -m 5 -w '\n%{http_code}' "$url")
    code=${out##*$'\n'}
    body=${out%$'\n'*}
    case $code in
        200|502|503|504) ;;
        *) code="bad:$code" ;;
    esac
    check "listener $url answers ($code${body:+, ${body:0:60}})" \
        test "${code#bad:}" = "$code" -a "${body:0:1}" = "{"
done

# --- reload ---------------------------------------------------------------------
mark=$(ct 5 date '+%Y-%m-%d %H:%M:%S')
if ct 30 systemctl reload fleetgate.service 2>"$run/reload.err"; then
    ok "systemctl reload fleetgate"
else
    sed 's/^/# /' "$run/reload.err"
    ct 10 journalctl -u fleetgate.service --since "$mark" --no-pager -o cat | sed 's/^/# /'
    notok "systemctl reload fleetgate"
fi
sleep 1
check "after the reload: still active, same MainPID ($pid -> $(prop MainPID))" \
    test "$(prop ActiveState)/$(prop MainPID)" = "active/$pid"
check "the journal says the configuration was reloaded" \
    sh -c "timeout 10 nsenter -t $leader -a journalctl -u fleetgate.service --since '$mark' --no-pager -o cat | grep -q 'reloaded (reload '"

# --- stop, start ------------------------------------------------------------------
t=$(now)
if ct 60 systemctl stop fleetgate.service; then
    ok "systemctl stop fleetgate ($(since "$t") s)"
else
    notok "systemctl stop fleetgate"
fi
check "stopped cleanly: $(prop ActiveState), Result=$(prop Result)" \
    test "$(prop ActiveState)/$(prop Result)" = inactive/success
jr=$(ct 10 journalctl -u fleetgate.service --no-pager -o cat)
check "the journal holds the gateway's lines (started, drained)" \
    sh -c 'printf "%s\n" "$1" | grep -q "started with" && printf "%s\n" "$1" | grep -q "drained"' _ "$jr"
t=$(now)
ct 60 systemctl start fleetgate.service
check "systemctl start again: $(prop ActiveState) ($(since "$t") s)" test "$(prop ActiveState)" = active

if [ "$fails" -gt 0 ]; then
    echo "# the unit's journal:"
    ct 10 journalctl -u fleetgate.service --no-pager -o short-monotonic | tail -30 | sed 's/^/# /'
    echo "# $fails check(s) failed"
    exit 1
fi
exit 0
