# Shared helpers of the end-to-end tests (sourced, never run).
#
# Each test script is "#!/bin/bash", sources this file, starts real daemons on
# 127.0.0.1 (fg-testbackend and fleetgate), talks to them with curl, h2load or
# python3 and exits 0 (pass), 1 (fail) or 77 (skip), the automake convention.
#
# What this file provides:
#   $T                      scratch directory of this test (removed at exit
#                           unless FG_KEEP_TMP=1); every file a test writes goes there
#   pick_port VAR           a free TCP port on 127.0.0.1, stored in VAR
#   start_backend NAME [ARGS]   start fg-testbackend -n NAME on a fresh port;
#                           sets BACKEND_PORT[NAME], BACKEND_ADDR[NAME], BACKEND_PID[NAME]
#   write_config FILE       config from stdin (a heredoc), checked to be JSON
#   start_gateway CONFIG    start fleetgate -c CONFIG, wait (10 s at most) until
#                           its first listener accepts; sets GW_PID, GW_PORT, GW_LOG
#   stop_gateway            SIGTERM the last gateway and check that it stops
#   start_model NAME ARGS   start fleetgate-model on a fresh port (MODEL_PORT[NAME]);
#                           $FG_MODEL_V1, $FG_MODEL_V2: the trained models,
#                           $FG_DIGITS_TEST: their held-out test split
#   fcurl ARGS              curl, quiet, no proxy, always with --max-time
#   http_many ...           many requests from python3 (see below)
#   raw_http PORT           raw bytes from stdin to the port, responses as JSON
#   assert_* / ok / fail / skip / die / finish
#
# Every process started here is recorded by PID and stopped by PID at exit; a
# watchdog bounds the whole script to FG_TEST_TIMEOUT seconds (default 100;
# set it before sourcing this file to change it).
#
# Environment: FG_BUILDDIR (where fleetgate and tests/tools/fg-testbackend were
# built), FG_SRCDIR (the source tree); both are set by "make check".
# FG_GATEWAY / FG_BACKEND may name other binaries.

if [ -z "${BASH_VERSION:-}" ] || [ "${BASH_VERSINFO[0]}" -lt 4 ]; then
    echo "these tests need bash >= 4" >&2
    exit 77
fi

FG_SRCDIR=${FG_SRCDIR:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}
FG_BUILDDIR=${FG_BUILDDIR:-$PWD}
FG_SRCDIR=$(cd "$FG_SRCDIR" && pwd)
FG_BUILDDIR=$(cd "$FG_BUILDDIR" && pwd)
FG_GATEWAY=${FG_GATEWAY:-$FG_BUILDDIR/fleetgate}
FG_BACKEND=${FG_BACKEND:-$FG_BUILDDIR/tests/tools/fg-testbackend}
FG_MODEL=${FG_MODEL:-$FG_BUILDDIR/fleetgate-model}
# the trained digit classifiers and their held-out test split
FG_MODEL_V1=$FG_SRCDIR/models/digits-v1.fgm
FG_MODEL_V2=$FG_SRCDIR/models/digits-v2.fgm
FG_DIGITS_TEST=$FG_SRCDIR/tests/data/digits-test.csv
FG_TEST_NAME=$(basename "$0" .sh)
FG_TEST_TIMEOUT=${FG_TEST_TIMEOUT:-100}
# Debian's interpreter: the tests use only its standard library.
PY=/usr/bin/python3

[ -x "$PY" ] || { echo "SKIP - $PY (Debian's python3) is missing"; exit 77; }
command -v timeout >/dev/null || { echo "SKIP - timeout (coreutils) is missing"; exit 77; }

# A proxy from the environment must never sit between the tests and loopback.
unset http_proxy https_proxy HTTP_PROXY HTTPS_PROXY ALL_PROXY all_proxy no_proxy NO_PROXY
export LC_ALL=C

declare -A BACKEND_PORT BACKEND_ADDR BACKEND_PID MODEL_PORT MODEL_ADDR MODEL_PID MODEL_LOG PY_PORT PY_PID
FG_PIDS=()          # every daemon started, stopped at exit
FG_GW_PIDS=()       # the gateways among them (checked for crashes)
FG_USED_PORTS=" "   # ports handed out by pick_port in this test
FG_FAILS=0
FG_CHECKS=0
FG_WATCHDOG=
GW_PID= GW_PORT= GW_LOG=
FG_NGW=0

# ---- reporting -------------------------------------------------------------

ok()   { FG_CHECKS=$((FG_CHECKS + 1)); echo "ok - $*"; }
fail() { FG_CHECKS=$((FG_CHECKS + 1)); FG_FAILS=$((FG_FAILS + 1)); echo "FAIL - $*"; }
note() { echo "# $*"; }
# die MSG: a failure after which the test cannot go on.
die()  { fail "$*"; exit 1; }
# skip MSG: the test cannot run here (exit 77).
skip() { echo "SKIP - $*"; FG_SKIPPED=1; exit 77; }

require_cmd() {
    local c
    for c in "$@"; do
        command -v "$c" >/dev/null 2>&1 || skip "$c is not installed"
    done
}

# finish: last line of every test; fails if a gateway died during the test.
finish() {
    local pid
    for pid in "${FG_GW_PIDS[@]}"; do
        if ! kill -0 "$pid" 2>/dev/null; then
            fail "gateway pid $pid died during the test (log: see below)"
        fi
    done
    if [ "$FG_FAILS" -gt 0 ]; then
        echo "# $FG_TEST_NAME: $FG_FAILS of $FG_CHECKS checks failed"
        exit 1
    fi
    echo "# $FG_TEST_NAME: all $FG_CHECKS checks passed"
    exit 0
}

# ---- assertions (a failed one is counted and the test goes on) -------------

# assert_eq EXPECTED GOT WHAT
assert_eq() {
    if [ "$1" == "$2" ]; then ok "$3 = '$2'"
    else fail "$3: expected '$1', got '$2'"; fi
}
# assert_ne UNEXPECTED GOT WHAT
assert_ne() {
    if [ "$1" != "$2" ]; then ok "$3 ('$2' != '$1')"
    else fail "$3: got '$2', which it must not be"; fi
}
# assert_contains HAYSTACK NEEDLE WHAT
assert_contains() {
    if [[ "$1" == *"$2"* ]]; then ok "$3 contains '$2'"
    else fail "$3: '$2' not found in: $(printf '%s' "$1" | head -c 600)"; fi
}
# assert_not_contains HAYSTACK NEEDLE WHAT
assert_not_contains() {
    if [[ "$1" != *"$2"* ]]; then ok "$3 does not contain '$2'"
    else fail "$3: '$2' must not be in: $(printf '%s' "$1" | head -c 600)"; fi
}
# assert_match STRING ERE WHAT
assert_match() {
    if [[ "$1" =~ $2 ]]; then ok "$3 ('$(printf '%s' "$1" | head -n 1 | head -c 100)' matches /$2/)"
    else fail "$3: '$(printf '%s' "$1" | head -c 600)' does not match /$2/"; fi
}
# assert_ge A B WHAT   (integers: A >= B)
assert_ge() {
    if [[ "$1" =~ ^-?[0-9]+$ ]] && [ "$1" -ge "$2" ]; then ok "$3 ($1 >= $2)"
    else fail "$3: expected >= $2, got '$1'"; fi
}
# assert_le A B WHAT   (integers: A <= B)
assert_le() {
    if [[ "$1" =~ ^-?[0-9]+$ ]] && [ "$1" -le "$2" ]; then ok "$3 ($1 <= $2)"
    else fail "$3: expected <= $2, got '$1'"; fi
}
# assert_true WHAT CMD...   (the command succeeds)
assert_true() {
    local what=$1; shift
    if "$@"; then ok "$what"; else fail "$what (command failed: $*)"; fi
}

# json_get JSON PATH: the value at PATH ("a.b.0.c"; a key may hold dots only
# if written "a.[x.y]"), strings raw, anything else as compact JSON; exit 1 and
# prints nothing when the text is not JSON or PATH is absent.
json_get() {
    $PY - "$1" "$2" <<'EOF'
import json, re, sys
try:
    v = json.loads(sys.argv[1])
except Exception:
    sys.exit(1)
path = sys.argv[2]
keys = [a or b for a, b in re.findall(r'\[([^\]]*)\]|([^.\[\]]+)', path)] if path else []
for k in keys:
    if isinstance(v, dict) and k in v:
        v = v[k]
    elif isinstance(v, list) and k.isdigit() and int(k) < len(v):
        v = v[int(k)]
    else:
        sys.exit(1)
if isinstance(v, str):
    sys.stdout.write(v)
else:
    sys.stdout.write(json.dumps(v, separators=(",", ":")))
EOF
}
# assert_json JSON PATH EXPECTED [WHAT]
assert_json() {
    local got
    if ! got=$(json_get "$1" "$2"); then
        fail "${4:-$2}: '$2' missing in: $(printf '%s' "$1" | head -c 600)"
        return
    fi
    assert_eq "$3" "$got" "${4:-$2}"
}
# assert_json_match JSON PATH ERE [WHAT]
assert_json_match() {
    local got
    if ! got=$(json_get "$1" "$2"); then
        fail "${4:-$2}: '$2' missing in: $(printf '%s' "$1" | head -c 600)"
        return
    fi
    assert_match "$got" "$3" "${4:-$2}"
}
# assert_json_absent JSON PATH [WHAT]
assert_json_absent() {
    local got
    if got=$(json_get "$1" "$2"); then
        fail "${3:-$2}: must be absent, is '$got'"
    else
        ok "${3:-$2} absent"
    fi
}

# assert_error_json BODY STATUS CODE WHAT: a gateway-made error body
# {"error":{"status":S,"code":C,"message":...,"request_id":...}}
assert_error_json() {
    local body=$1 status=$2 code=$3 what=$4
    assert_json "$body" error.status "$status" "$what: error.status"
    assert_json "$body" error.code "$code" "$what: error.code"
    assert_json_match "$body" error.request_id '^[A-Za-z0-9._-]{1,128}$' "$what: error.request_id"
    assert_json_match "$body" error.message '.' "$what: error.message"
}

# ---- processes -------------------------------------------------------------

fg_track_pid() { FG_PIDS+=("$1"); }

# stop_pid PID [SECONDS]: SIGTERM, then SIGKILL after SECONDS (default 5).
# Returns 0 if it stopped on SIGTERM, 1 if it had to be killed, 2 if it was
# not running. The exit status is left in FG_STOP_STATUS.
# wait_gone PID SECONDS: 0 once PID has exited (a zombie counts: wait reaps
# it), 1 if it still runs after SECONDS.
wait_gone() {
    local pid=$1 secs=$2 i
    for ((i = 0; i < secs * 20; i++)); do
        kill -0 "$pid" 2>/dev/null || return 0
        [ "$(awk '{print $3}' "/proc/$pid/stat" 2>/dev/null)" == Z ] && return 0
        sleep 0.05
    done
    kill -0 "$pid" 2>/dev/null || return 0
    [ "$(awk '{print $3}' "/proc/$pid/stat" 2>/dev/null)" == Z ]
}

stop_pid() {
    local pid=$1 secs=${2:-5} i
    FG_STOP_STATUS=
    if ! kill -0 "$pid" 2>/dev/null; then
        wait "$pid" 2>/dev/null; FG_STOP_STATUS=$?
        return 2
    fi
    kill -TERM "$pid" 2>/dev/null
    if ! wait_gone "$pid" "$secs"; then
        kill -KILL "$pid" 2>/dev/null
        wait "$pid" 2>/dev/null; FG_STOP_STATUS=$?
        return 1
    fi
    wait "$pid" 2>/dev/null; FG_STOP_STATUS=$?
    return 0
}

fg_cleanup() {
    local rc=$? pid f i
    trap - EXIT TERM INT
    for ((i = ${#FG_PIDS[@]} - 1; i >= 0; i--)); do
        pid=${FG_PIDS[i]}
        local is_gw=0 g
        for g in "${FG_GW_PIDS[@]}"; do [ "$g" == "$pid" ] && is_gw=1; done
        stop_pid "$pid" 10
        local r=$?
        if [ $is_gw == 1 ] && [ $r == 1 ]; then
            echo "FAIL - gateway pid $pid did not stop within 10 s of SIGTERM"
            [ "${FG_SKIPPED:-0}" == 1 ] || rc=1
        fi
    done
    if [ -d "${T:-}" ]; then
        for f in "$T"/gateway*.log "$T"/model-*.log; do
            [ -f "$f" ] || continue
            if grep -qE 'ERROR: (Address|Leak|Thread)Sanitizer|runtime error:' "$f"; then
                echo "FAIL - sanitizer report in $(basename "$f")"
                rc=1
            fi
        done
        if [ "$rc" != 0 ] && [ "$rc" != 77 ]; then
            for f in "$T"/*.log; do
                [ -f "$f" ] || continue
                echo "# ---- last lines of $(basename "$f") ----"
                tail -n 40 "$f" | sed 's/^/# /'
            done
        fi
    fi
    if [ -n "$FG_WATCHDOG" ]; then
        kill -TERM "$FG_WATCHDOG" 2>/dev/null
        wait "$FG_WATCHDOG" 2>/dev/null
    fi
    if [ -d "${T:-}" ]; then
        if [ "${FG_KEEP_TMP:-0}" == 1 ]; then
            echo "# scratch directory kept: $T"
        else
            rm -rf "$T"
        fi
    fi
    exit "$rc"
}

fg_on_signal() {
    echo "FAIL - $FG_TEST_NAME stopped by a signal (or its ${FG_TEST_TIMEOUT} s time bound)"
    exit 1
}

# The watchdog: after FG_TEST_TIMEOUT seconds it sends SIGTERM to every
# descendant of this shell (so that a hanging foreground command returns) and
# then to the shell itself, whose trap reaps the daemons. It goes away by
# itself if the shell is gone.
fg_start_watchdog() {
    $PY - "$$" "$FG_TEST_TIMEOUT" <<'EOF' &
import os, signal, sys, time
shell, limit = int(sys.argv[1]), float(sys.argv[2])
me = os.getpid()
end = time.monotonic() + limit
while time.monotonic() < end:
    time.sleep(0.25)
    if os.getppid() != shell:
        sys.exit(0)
sys.stderr.write("watchdog: test ran past %d s, stopping it\n" % limit)
# every descendant of the shell (commands inside $(...) included), by PID
children = {}
for d in os.listdir("/proc"):
    if not d.isdigit() or int(d) == me:
        continue
    try:
        with open("/proc/%s/stat" % d) as f:
            st = f.read()
        ppid = int(st[st.rindex(")") + 2:].split()[1])
    except Exception:
        continue
    children.setdefault(ppid, []).append(int(d))
todo, tree = [shell], []
while todo:
    for c in children.get(todo.pop(), []):
        tree.append(c)
        todo.append(c)
for pid in tree:
    try:
        os.kill(pid, signal.SIGTERM)
    except Exception:
        pass
os.kill(shell, signal.SIGTERM)
EOF
    FG_WATCHDOG=$!
}

# ---- scratch dir, ports ----------------------------------------------------

T=$(mktemp -d "${TMPDIR:-/tmp}/fg-e2e-$FG_TEST_NAME.XXXXXX") || { echo "mktemp failed"; exit 1; }
trap fg_cleanup EXIT
trap fg_on_signal TERM INT
fg_start_watchdog
echo "# $FG_TEST_NAME: scratch $T, time bound ${FG_TEST_TIMEOUT} s"

# pick_port VAR: a port on 127.0.0.1 that nothing uses now, outside the
# kernel's ephemeral range (so that outgoing connections of tests running in
# parallel do not take it), chosen at random (so that parallel tests rarely
# pick the same one) and never twice in one test.
pick_port() {
    local p
    p=$($PY - "$FG_USED_PORTS" <<'EOF'
import random, socket, sys
used = set(int(x) for x in sys.argv[1].split())
try:
    lo, hi = (int(x) for x in open("/proc/sys/net/ipv4/ip_local_port_range").read().split())
except Exception:
    lo, hi = 32768, 60999
ranges = []
if lo > 12000:
    ranges.append((10000, lo - 1))
if hi < 63000:
    ranges.append((hi + 1, 65535))
if not ranges:
    ranges = [(1025, 65535)]
rnd = random.SystemRandom()
for _ in range(500):
    a, b = rnd.choice(ranges)
    p = rnd.randint(a, b)
    if p in used:
        continue
    s = socket.socket()
    try:
        s.bind(("127.0.0.1", p))
    except OSError:
        continue
    finally:
        s.close()
    print(p)
    sys.exit(0)
sys.exit(1)
EOF
) || die "no free port found"
    FG_USED_PORTS+="$p "
    printf -v "$1" '%s' "$p"
}

# dead_port VAR: a port where connections are refused, kept so for the whole
# test: a helper holds it bound without listening (and without
# SO_REUSEADDR), so that no test running beside this one can pick it and
# start a server there.
dead_port() {
    local dead i
    pick_port dead
    $PY -c 'import socket, sys, time
s = socket.socket()
s.bind(("127.0.0.1", int(sys.argv[1])))
print("held", flush=True)
time.sleep(86400)' "$dead" >"$T/dead-$dead" 2>&1 &
    fg_track_pid $!
    for ((i = 0; i < 100; i++)); do
        grep -q held "$T/dead-$dead" 2>/dev/null && break
        kill -0 $! 2>/dev/null || die "cannot hold port $dead: $(cat "$T/dead-$dead")"
        sleep 0.02
    done
    printf -v "$1" '%s' "$dead"
}

# wait_port PORT SECONDS [PID]: until 127.0.0.1:PORT accepts a connection;
# fails early if PID is gone.
wait_port() {
    $PY - "$@" <<'EOF'
import os, socket, sys, time
port, secs = int(sys.argv[1]), float(sys.argv[2])
pid = int(sys.argv[3]) if len(sys.argv) > 3 else 0
end = time.monotonic() + secs
while time.monotonic() < end:
    if pid:
        try:
            with open("/proc/%d/stat" % pid) as f:
                if f.read().rsplit(")", 1)[1].split()[0] == "Z":
                    sys.exit(2)
        except FileNotFoundError:
            sys.exit(2)
    s = socket.socket()
    s.settimeout(0.5)
    try:
        s.connect(("127.0.0.1", port))
        sys.exit(0)
    except OSError:
        time.sleep(0.05)
    finally:
        s.close()
sys.exit(1)
EOF
}

# ---- daemons ---------------------------------------------------------------

# start_backend NAME [ARGS...]: fg-testbackend on a fresh port, named NAME,
# ready when it printed "listening" (or accepts). Sets BACKEND_PORT[NAME],
# BACKEND_ADDR[NAME] ("127.0.0.1:PORT") and BACKEND_PID[NAME].
start_backend() {
    local name=$1; shift
    [ -x "$FG_BACKEND" ] || die "test backend $FG_BACKEND is not built (make check builds it)"
    local try port pid log=$T/backend-$name.log i
    for try in 1 2 3; do
        pick_port port
        "$FG_BACKEND" -l "127.0.0.1:$port" -n "$name" "$@" >"$log" 2>&1 &
        pid=$!
        fg_track_pid "$pid"
        for ((i = 0; i < 200; i++)); do
            if grep -q listening "$log" 2>/dev/null; then break; fi
            if ! kill -0 "$pid" 2>/dev/null; then break; fi
            if ((i % 10 == 9)) && wait_port "$port" 0.1; then break; fi
            sleep 0.05
        done
        if kill -0 "$pid" 2>/dev/null && wait_port "$port" 2 "$pid"; then
            BACKEND_PORT[$name]=$port
            BACKEND_ADDR[$name]=127.0.0.1:$port
            BACKEND_PID[$name]=$pid
            note "backend $name listening on 127.0.0.1:$port (pid $pid${*:+, args: $*})"
            return 0
        fi
        stop_pid "$pid" 1
        note "backend $name failed to start on port $port (try $try): $(tail -n 3 "$log")"
    done
    die "backend $name did not start"
}

# start_model NAME ARGS...: fleetgate-model --listen 127.0.0.1:PORT ARGS
# (ARGS name the --model files), stderr to $T/model-NAME.log, ready when it
# accepts. Sets MODEL_PORT[NAME], MODEL_ADDR[NAME], MODEL_PID[NAME],
# MODEL_LOG[NAME]. Checked like a gateway: it must not die, must stop on
# SIGTERM, and its log must hold no sanitizer report.
start_model() {
    local name=$1; shift
    [ -x "$FG_MODEL" ] || die "model server $FG_MODEL is not built"
    local try port pid log=$T/model-$name.log
    for try in 1 2 3; do
        pick_port port
        "$FG_MODEL" --listen "127.0.0.1:$port" "$@" >"$log" 2>&1 &
        pid=$!
        fg_track_pid "$pid"
        if wait_port "$port" 10 "$pid"; then
            FG_GW_PIDS+=("$pid")
            MODEL_PORT[$name]=$port
            MODEL_ADDR[$name]=127.0.0.1:$port
            MODEL_PID[$name]=$pid
            MODEL_LOG[$name]=$log
            note "model server $name on 127.0.0.1:$port (pid $pid, args: $*)"
            return 0
        fi
        stop_pid "$pid" 1
        note "model server $name failed to start on port $port (try $try): $(tail -n 3 "$log")"
    done
    die "model server $name did not start"
}

# start_py_backend NAME ARGS...: tests/tools/py-backend.py on a fresh port
# (answers the test controls: --status N, --status-from-path, --flags DIR;
# see that file). Sets PY_PORT[NAME], PY_PID[NAME].
start_py_backend() {
    local name=$1 port; shift
    pick_port port
    $PY "$FG_SRCDIR/tests/tools/py-backend.py" --name "$name" --port "$port" "$@" \
        >"$T/py-$name.log" 2>&1 &
    fg_track_pid $!
    PY_PID[$name]=$!
    wait_port "$port" 10 "$!" || die "py-backend $name did not start: $(tail -n 3 "$T/py-$name.log")"
    PY_PORT[$name]=$port
    note "py-backend $name on 127.0.0.1:$port (pid $!, $*)"
}

# model_url NAME PATH
model_url() { echo "http://127.0.0.1:${MODEL_PORT[$1]}$2"; }

# backend_stat NAME FIELD: FIELD of the backend's /stats, asked directly.
backend_stat() {
    local j
    j=$(fcurl "http://127.0.0.1:${BACKEND_PORT[$1]}/stats") || { echo "?"; return 1; }
    json_get "$j" "$2" || echo "?"
}

# write_config FILE: the config read from stdin; dies if it is not JSON (a
# bug of the test, not of the gateway).
write_config() {
    cat >"$1"
    $PY -c 'import json,sys; json.load(open(sys.argv[1]))' "$1" 2>"$T/config-error" ||
        die "test bug: $1 is not JSON: $(cat "$T/config-error")"
}

# config_port CONFIG [N]: port of listener N (default 0) of CONFIG.
config_port() {
    $PY - "$1" "${2:-0}" <<'EOF'
import json, sys
a = json.load(open(sys.argv[1]))["listeners"][int(sys.argv[2])]["address"]
print(a.rsplit(":", 1)[1])
EOF
}

# start_gateway CONFIG: fleetgate -c CONFIG, stderr to $T/gateway-N.log, ready
# when the first listener accepts (10 s at most). Sets GW_PID, GW_PORT, GW_LOG.
start_gateway() {
    local cfg=$1 port
    [ -x "$FG_GATEWAY" ] || die "gateway $FG_GATEWAY is not built"
    port=$(config_port "$cfg") || die "no listener port in $cfg"
    # SIGTERM drains for drain_timeout_ms (default 30 s): tests that do not
    # say otherwise get 2 s, within stop_gateway's bound
    $PY - "$cfg" <<'EOF'
import json, sys
c = json.load(open(sys.argv[1]))
if "drain_timeout_ms" not in c:
    c["drain_timeout_ms"] = 2000
    json.dump(c, open(sys.argv[1], "w"), indent=1)
EOF
    FG_NGW=$((FG_NGW + 1))
    GW_LOG=$T/gateway-$FG_NGW.log
    "$FG_GATEWAY" -c "$cfg" >"$GW_LOG" 2>&1 &
    GW_PID=$!
    fg_track_pid "$GW_PID"
    FG_GW_PIDS+=("$GW_PID")
    if ! wait_port "$port" 10 "$GW_PID"; then
        die "gateway did not accept on 127.0.0.1:$port within 10 s: $(tail -n 5 "$GW_LOG")"
    fi
    GW_PORT=$port
    note "gateway pid $GW_PID listening on 127.0.0.1:$port ($(basename "$cfg"))"
}

# admin_status PORT: GET /status of the admin listener on 127.0.0.1:PORT.
admin_status() { fcurl "http://127.0.0.1:$1/status"; }

# stop_gateway: stop the last gateway started; it must stop on SIGTERM.
stop_gateway() {
    local pid=$GW_PID g new=()
    [ -n "$pid" ] || return 0
    stop_pid "$pid" 10
    case $? in
        0) ok "gateway stopped on SIGTERM (exit status $FG_STOP_STATUS)" ;;
        1) fail "gateway did not stop within 5 s of SIGTERM" ;;
        2) fail "gateway was not running any more when it was to be stopped (exit status $FG_STOP_STATUS)" ;;
    esac
    for g in "${FG_GW_PIDS[@]}"; do [ "$g" != "$pid" ] && new+=("$g"); done
    FG_GW_PIDS=("${new[@]}")
    GW_PID=
}

# gateway_exits [SECONDS]: the last gateway started must exit by itself
# (after a signal the test sent) within SECONDS (default 10); sets
# FG_STOP_STATUS to its exit status.
gateway_exits() {
    local pid=$GW_PID secs=${1:-10} g new=()
    if ! wait_gone "$pid" "$secs"; then
        fail "gateway did not exit within $secs s"
        stop_pid "$pid" 1
    else
        wait "$pid" 2>/dev/null; FG_STOP_STATUS=$?
    fi
    for g in "${FG_GW_PIDS[@]}"; do [ "$g" != "$pid" ] && new+=("$g"); done
    FG_GW_PIDS=("${new[@]}")
    GW_PID=
}

# gw_built_with_sanitizers: the gateway links AddressSanitizer (memory
# figures mean nothing then).
gw_built_with_sanitizers() {
    ldd "$FG_GATEWAY" 2>/dev/null | grep -q 'libasan\|libubsan' && return 0
    grep -q '^SANITIZER_CFLAGS = *-fsanitize' "$FG_BUILDDIR/Makefile" 2>/dev/null
}

# vm_hwm_kb PID: peak resident set size (VmHWM) in KiB.
vm_hwm_kb() {
    awk '/^VmHWM:/ {print $2}' "/proc/$1/status" 2>/dev/null
}

# ---- clients ---------------------------------------------------------------

# fcurl ARGS: curl that never waits forever (CURL_MAX_TIME, default 20 s; a
# later --max-time in ARGS wins) and never uses a proxy.
fcurl() {
    timeout -k 5 "${FCURL_HARD_TIMEOUT:-400}" \
        curl -sS --noproxy '*' --max-time "${CURL_MAX_TIME:-20}" "$@"
}

gw_url() { echo "http://127.0.0.1:$GW_PORT$1"; }

# header_value FILE NAME: value of header NAME (case-insensitive) in a curl
# -D dump, last response only, CR stripped.
header_value() {
    $PY - "$1" "$2" <<'EOF'
import sys
blocks, cur = [], []
for line in open(sys.argv[1], "rb").read().decode("latin-1").split("\n"):
    line = line.rstrip("\r")
    if line.startswith("HTTP/"):
        cur = []
        blocks.append(cur)
    elif line and ":" in line:
        cur.append(line)
name = sys.argv[2].lower()
for line in (blocks[-1] if blocks else []):
    k, v = line.split(":", 1)
    if k.strip().lower() == name:
        print(v.strip())
        sys.exit(0)
sys.exit(1)
EOF
}

sha256_file() { sha256sum "$1" | awk '{print $1}'; }

# pattern_sha256 N: sha256 of the first N bytes of "0123456789abcdef" repeated
# (the body of the backend's /bytes/N and /chunked/N).
pattern_sha256() {
    $PY - "$1" <<'EOF'
import hashlib, sys
n = int(sys.argv[1])
unit = b"0123456789abcdef" * (1 << 20)      # 16 MiB, a multiple of 16
h = hashlib.sha256()
while n >= len(unit):
    h.update(unit)
    n -= len(unit)
h.update(unit[:n])
print(h.hexdigest())
EOF
}

# http_many PORT PATH COUNT CONCURRENCY [HEADER: VALUE]...: COUNT requests
# GET PATH over HTTP/1.1 keep-alive from CONCURRENCY threads; one line per
# request: "STATUS X-BACKEND" ("000 -" when the request failed).
http_many() {
    timeout -k 5 "${HTTP_MANY_TIMEOUT:-120}" $PY - "$@" <<'EOF'
import http.client, sys, threading
port, path, count, conc = int(sys.argv[1]), sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
hdrs = dict(h.split(":", 1) for h in sys.argv[5:])
hdrs = {k.strip(): v.strip() for k, v in hdrs.items()}
lock = threading.Lock()
left = [count]
out = []
def worker():
    c = None
    while True:
        with lock:
            if left[0] == 0:
                break
            left[0] -= 1
        try:
            if c is None:
                c = http.client.HTTPConnection("127.0.0.1", port, timeout=20)
            c.request("GET", path, headers=hdrs)
            r = c.getresponse()
            r.read()
            line = "%d %s" % (r.status, r.getheader("x-backend", "-"))
            if r.getheader("connection", "").lower() == "close":
                c.close(); c = None
        except Exception as e:
            line = "000 - %s" % type(e).__name__
            try:
                c.close()
            except Exception:
                pass
            c = None
        with lock:
            out.append(line)
ts = [threading.Thread(target=worker) for _ in range(conc)]
for t in ts: t.start()
for t in ts: t.join()
print("\n".join(out))
EOF
}

# raw_http PORT [READ_TIMEOUT]: send stdin as is to 127.0.0.1:PORT in one
# write, read until the peer closes or READ_TIMEOUT (default 5) seconds pass,
# and print JSON: {"responses":[{"status","reason","headers":{lowercase:
# value},"body"}...], "closed": bool, "first_byte_s": float|null,
# "close_s": float|null, "raw": first 2000 bytes as latin-1}.
raw_http() {
    timeout -k 5 60 $PY -c "$FG_RAW_HTTP_PY" "$@"
}
# (stdin carries the request, so the program is passed with -c)
read -r -d '' FG_RAW_HTTP_PY <<'EOF'
import json, socket, sys, time
port = int(sys.argv[1])
read_timeout = float(sys.argv[2]) if len(sys.argv) > 2 else 5.0
data = sys.stdin.buffer.read()
s = socket.create_connection(("127.0.0.1", port), timeout=5)
t0 = time.monotonic()
s.sendall(data)
s.settimeout(0.2)
buf = b""
first = None
closed = False
end = time.monotonic() + read_timeout
close_t = None
while time.monotonic() < end:
    try:
        d = s.recv(65536)
    except socket.timeout:
        continue
    except ConnectionResetError:
        closed = True
        close_t = time.monotonic() - t0
        break
    if not d:
        closed = True
        close_t = time.monotonic() - t0
        break
    if first is None:
        first = time.monotonic() - t0
    buf += d
s.close()

def parse(b):
    res = []
    while b:
        i = b.find(b"\r\n\r\n")
        if i < 0:
            break
        head = b[:i].decode("latin-1").split("\r\n")
        b = b[i + 4:]
        parts = head[0].split(" ", 2)
        try:
            status = int(parts[1])
        except Exception:
            break
        hdrs = {}
        for line in head[1:]:
            if ":" in line:
                k, v = line.split(":", 1)
                hdrs[k.strip().lower()] = v.strip()
        if 100 <= status < 200:
            continue
        body = b""
        if hdrs.get("transfer-encoding", "").lower() == "chunked":
            while True:
                j = b.find(b"\r\n")
                if j < 0:
                    break
                n = int(b[:j].split(b";")[0], 16)
                b = b[j + 2:]
                if n == 0:
                    k = b.find(b"\r\n\r\n") if not b.startswith(b"\r\n") else 0
                    trailer = b[:k].decode("latin-1") if k > 0 else ""
                    for line in trailer.split("\r\n"):
                        if ":" in line:
                            kk, vv = line.split(":", 1)
                            hdrs.setdefault("trailer:" + kk.strip().lower(), vv.strip())
                    b = b[(k + 4 if k > 0 else 2):]
                    break
                body += b[:n]
                b = b[n + 2:]
        elif "content-length" in hdrs:
            n = int(hdrs["content-length"])
            body, b = b[:n], b[n:]
        elif status in (204, 304):
            pass
        else:
            body, b = b, b""
        res.append({"status": status, "reason": parts[2] if len(parts) > 2 else "",
                    "headers": hdrs, "body": body.decode("latin-1")})
    return res

try:
    responses = parse(buf)
except Exception as e:
    responses = []
print(json.dumps({"responses": responses, "closed": closed, "first_byte_s": first,
                  "close_s": close_t, "raw": buf[:2000].decode("latin-1")}))
EOF

# simple_config FILE BACKEND_NAME...: two workers, one cleartext listener on a
# fresh port, upstream "main" (least_conn) over the named backends, route "/"
# to it. The "client" object comes from $CLIENT_JSON when set.
simple_config() {
    local file=$1; shift
    local port n list=""
    pick_port port
    for n in "$@"; do
        list+="${list:+, }{ \"address\": \"${BACKEND_ADDR[$n]}\" }"
    done
    write_config "$file" <<JSON
{
  "workers": 2,
  "listeners": [ { "address": "127.0.0.1:$port" } ],
  ${CLIENT_JSON:+\"client\": $CLIENT_JSON,}
  "upstreams": { "main": { "backends": [ $list ] } },
  "routes": [ { "match": { "path_prefix": "/" }, "upstream": "main" } ]
}
JSON
}
