#!/bin/bash
# Packaging (packaging/README.md):
# - packaging/kubernetes: the manifests parse; the ConfigMap's fleetgate.json
#   passes fleetgate -t; its ports, paths and Service names agree with the
#   Deployments and Services (probes on the admin listener, drain within the
#   grace period, backends named by a Service that exists);
# - packaging/build-deb.sh builds the .deb from a copy of the source tree
#   (the tree itself is only read: make distcheck has it read-only); the
#   package holds both programs, the manuals, the models, the example
#   configuration as a conffile and the systemd unit, whose commands are the
#   packaged ones (systemd-analyze verify, where systemd is installed);
# - unpacked (never installed: nothing goes into the system's /usr or /etc),
#   its gateway accepts its configuration, and its two programs serve the
#   Kubernetes configuration (moved to loopback) with its models;
# - installed with apt-get on a minimal Debian booted with systemd in a
#   systemd-nspawn container (tests/tools/deb-systemd.sh: the unit starts,
#   notifies readiness, serves, reloads, stops), where this machine can boot
#   one (root, systemd-nspawn, overlayfs; the container's base root is built
#   once with debootstrap, a few minutes). Where it cannot, a note says why.
# SKIP (77) without dpkg-buildpackage/debhelper (scripts/deps.sh deb; the
# test set installs them), and in a sanitizer build, where the package (built
# its own way, not from this build) was already checked by the release run.
FG_TEST_TIMEOUT=${FG_TEST_TIMEOUT:-1500}
. "$(dirname "$0")/lib.sh"
[ -x "$FG_GATEWAY" ] || die "gateway $FG_GATEWAY is not built"

K8S=$FG_SRCDIR/packaging/kubernetes
[ -d "$K8S" ] || die "$K8S is missing"

# k8s.py DIR OUT [ROOT]: reads the manifests in DIR, writes the ConfigMap's
# fleetgate.json to OUT/k8s.json as it is, and to OUT/k8s-t.json with backend
# host names replaced by 127.0.0.1 (they resolve only inside the cluster, and
# -t resolves them); OUT/model.args: the model server's arguments but
# --listen, file names under ROOT. Prints "ok - ..." and "FAIL - ..." lines:
# without ROOT all but those about the package's files, with ROOT only those.
# The structure checks need python3-yaml (a "# ..." line says when missing).
cat >"$T/k8s.py" <<'EOF'
import ipaddress, json, os, re, sys

d, out = sys.argv[1], sys.argv[2]
root = sys.argv[3] if len(sys.argv) > 3 else None
files = sorted(os.path.join(d, f) for f in os.listdir(d) if f.endswith((".yaml", ".yml")))

def check(cond, msg):
    # without ROOT, nothing about the package's files; with ROOT, only that
    # (the rest was said before)
    if bool(root) == ("in the package" in msg):
        print(("ok - " if cond else "FAIL - ") + msg)
    return cond

def block(path):
    """The block scalar under 'fleetgate.json: |', read as text."""
    lines = open(path).read().split("\n")
    for i, line in enumerate(lines):
        m = re.match(r"^( *)fleetgate\.json: *\|-? *$", line)
        if not m:
            continue
        key_ind, ind, body = len(m.group(1)), None, []
        for l2 in lines[i + 1:]:
            if not l2.strip():
                body.append("")
                continue
            n = len(l2) - len(l2.lstrip(" "))
            if n <= key_ind:
                break
            ind = n if ind is None else ind
            body.append(l2[ind:])
        return "\n".join(body).rstrip("\n") + "\n"
    return None

texts = [(f, block(f)) for f in files]
texts = [(f, t) for f, t in texts if t is not None]
if not check(len(texts) == 1, "one ConfigMap holds fleetgate.json (%s)"
             % ", ".join(os.path.basename(f) for f, _ in texts)):
    sys.exit(0)
text = texts[0][1]
try:
    cfg = json.loads(text)
except ValueError as e:
    check(False, "the ConfigMap's fleetgate.json is JSON: %s" % e)
    sys.exit(0)
open(os.path.join(out, "k8s.json"), "w").write(text)

def split_addr(a):
    host, port = a.rsplit(":", 1)
    return host.strip("[]"), int(port)

def is_ip(h):
    try:
        ipaddress.ip_address(h)
        return True
    except ValueError:
        return False

t = json.loads(text)
for up in t.get("upstreams", {}).values():
    for b in up.get("backends", []):
        h, p = split_addr(b["address"])
        # a name found by DNS discovery is checked as written (-t does not
        # resolve it); others resolve only inside the cluster
        if not is_ip(h) and b.get("discovery") != "dns":
            b["address"] = "127.0.0.1:%d" % p
json.dump(t, open(os.path.join(out, "k8s-t.json"), "w"), indent=1)

try:
    import yaml
except ImportError:
    print("# python3-yaml is missing: the manifests' structure is not checked")
    sys.exit(0)

docs = []
for f in files:
    try:
        for doc in yaml.safe_load_all(open(f)):
            if doc is not None:
                docs.append((os.path.basename(f), doc))
    except yaml.YAMLError as e:
        check(False, "%s parses: %s" % (f, e))
        sys.exit(0)
check(all(isinstance(x, dict) and x.get("apiVersion") and x.get("kind")
          and x.get("metadata", {}).get("name") for _, x in docs),
      "%d manifests parse, each with apiVersion, kind and metadata.name" % len(docs))
by_kind = {}
for f, x in docs:
    by_kind.setdefault(x["kind"], []).append(x)
cms = [x for x in by_kind.get("ConfigMap", []) if "fleetgate.json" in x.get("data", {})]
check(len(cms) == 1 and cms[0]["data"]["fleetgate.json"] == text,
      "YAML reads the ConfigMap's fleetgate.json as the text checked here")
cm_name = cms[0]["metadata"]["name"] if cms else None
services = {x["metadata"]["name"]: x for x in by_kind.get("Service", [])}

def matches(selector, labels):
    return bool(selector) and all(labels.get(k) == v for k, v in selector.items())

def port_number(container, ref):
    """A probe's or Service's port (a name or a number) as a container port."""
    for p in container.get("ports", []):
        if ref == p.get("name") or ref == p.get("containerPort"):
            return p["containerPort"]
    return None

def pod_spec(dep):
    return dep["spec"]["template"]["spec"]

def service_ports(svc, dep):
    """The (service port, container port) pairs of svc for dep's pods."""
    c = pod_spec(dep)["containers"][0]
    return [(p["port"], port_number(c, p.get("targetPort", p["port"]))) for p in svc["spec"]["ports"]]

def under_root(path):
    return os.path.exists(root + path) if root else True

gw = model = None
for dep in by_kind.get("Deployment", []):
    vols = pod_spec(dep).get("volumes", [])
    if any(v.get("configMap", {}).get("name") == cm_name for v in vols):
        gw = dep
    else:
        model = dep
if not check(gw is not None and model is not None,
             "a gateway Deployment (mounting the ConfigMap) and a model Deployment"):
    sys.exit(0)

# ---- the gateway
spec = pod_spec(gw)
c = spec["containers"][0]
vol = [v["name"] for v in spec["volumes"] if v.get("configMap", {}).get("name") == cm_name][0]
mount = [m["mountPath"] for m in c.get("volumeMounts", []) if m["name"] == vol]
cmd = c.get("command", []) + c.get("args", [])
check(len(mount) == 1 and "-c" in cmd and cmd.index("-c") + 1 < len(cmd)
      and cmd[cmd.index("-c") + 1] == mount[0].rstrip("/") + "/fleetgate.json",
      "the gateway reads the ConfigMap's fleetgate.json where it is mounted (%s)" % " ".join(cmd))
check(under_root(cmd[0]), "the gateway's command %s is in the package" % cmd[0])
ah, ap = split_addr(cfg.get("admin", {}).get("address", "127.0.0.1:9901"))
check(ah in ("0.0.0.0", "::"), "the admin listener accepts on the pod's addresses (%s), where the kubelet probes" % ah)
for kind in ("readinessProbe", "livenessProbe"):
    pr = c.get(kind, {}).get("httpGet", {})
    check(pr.get("path") == "/status" and port_number(c, pr.get("port")) == ap,
          "%s: GET /status on the admin port %d" % (kind, ap))
lports = set()
for lst in cfg["listeners"]:
    h, p = split_addr(lst["address"])
    check(h in ("0.0.0.0", "::"), "listener %s accepts on the pod's addresses" % lst["address"])
    lports.add(p)
gw_svcs = [s for s in services.values()
           if matches(s["spec"].get("selector"), gw["spec"]["template"]["metadata"]["labels"])]
check(len(gw_svcs) == 1 and all(cp in lports for _, cp in service_ports(gw_svcs[0], gw)),
      "the gateway's Service sends to a listener port (%s)" % sorted(lports))
grace = spec.get("terminationGracePeriodSeconds", 30) * 1000
pre = c.get("lifecycle", {}).get("preStop", {}).get("exec", {}).get("command", [])
pause = int(pre[1]) * 1000 if len(pre) == 2 and pre[0].endswith("/sleep") else 0
drain = cfg.get("drain_timeout_ms", 30000)
check(grace > drain + pause, "terminationGracePeriodSeconds (%d ms) > preStop pause (%d ms) + drain_timeout_ms (%d ms)"
      % (grace, pause, drain))

# ---- the backends: by a Service of the model pods, by its name
mspec = pod_spec(model)
mc = mspec["containers"][0]
mlabels = model["spec"]["template"]["metadata"]["labels"]
margs = mc.get("command", []) + mc.get("args", [])
check(under_root(margs[0]), "the model server's command %s is in the package" % margs[0])
mlisten = [split_addr(margs[i + 1]) for i, a in enumerate(margs[:-1]) if a == "--listen"]
check(len(mlisten) == 1 and mlisten[0][0] in ("0.0.0.0", "::")
      and port_number(mc, mc["readinessProbe"]["httpGet"]["port"]) == mlisten[0][1],
      "the model server listens on the pod's addresses, on the port its probes use (%s)" % mlisten)
models = [m for i, a in enumerate(margs[:-1]) if a == "--model" for m in margs[i + 1].split(",")]
check(len(models) >= 1 and all(under_root(m) for m in models),
      "the model files are in the package (%s)" % ", ".join(models))
args, skip = [], False
for i, a in enumerate(margs[1:]):
    if skip:
        skip = False
        continue
    if a == "--listen":
        skip = True
        continue
    if root and margs[i] == "--model":
        a = ",".join(root + m for m in a.split(","))
    args.append(a)
open(os.path.join(out, "model.args"), "w").write("\n".join(args) + "\n")

headless = [s for s in services.values() if s["spec"].get("clusterIP") == "None"
            and matches(s["spec"].get("selector"), mlabels)]
check(len(headless) == 1, "a headless Service (clusterIP: None) selects the model pods")
for name, up in cfg["upstreams"].items():
    for b in up["backends"]:
        h, p = split_addr(b["address"])
        if is_ip(h):
            check(False, "upstream %s: backend %s is an address, not a Service" % (name, b["address"]))
            continue
        svc = services.get(h.split(".")[0])
        check(svc is not None and matches(svc["spec"].get("selector"), mlabels)
              and any(sp == p and cp == mlisten[0][1] for sp, cp in service_ports(svc, model)),
              "upstream %s: backend %s is a Service port of the model pods" % (name, b["address"]))
        # a headless Service's name has one address per ready pod: only
        # DNS discovery makes each a backend (a plain name keeps its first)
        check(svc is None or svc["spec"].get("clusterIP") != "None" or b.get("discovery") == "dns",
              "upstream %s: backend %s, a headless Service, has \"discovery\": \"dns\""
              % (name, b["address"]))
EOF

# k8s_run [ROOT]: k8s.py on packaging/kubernetes, the checks above, counted here.
k8s_run() {
    local line
    $PY "$T/k8s.py" "$K8S" "$T" "$@" >"$T/k8s.out" 2>&1 || fail "k8s.py failed: $(tail -n 5 "$T/k8s.out")"
    while IFS= read -r line; do
        case $line in
            "ok - "*) ok "${line#ok - }" ;;
            "FAIL - "*) fail "${line#FAIL - }" ;;
            *) echo "$line" ;;
        esac
    done <"$T/k8s.out"
}

# ---- the Kubernetes manifests, with the gateway of this build
k8s_run
if [ -f "$T/k8s-t.json" ]; then
    out=$(timeout -k 2 10 "$FG_GATEWAY" -t -c "$T/k8s-t.json" 2>&1)
    assert_eq 0 $? "fleetgate -t accepts the ConfigMap's fleetgate.json (backend host names as 127.0.0.1): $out"
fi

# ---- the Debian package
missing=
for c in dpkg-buildpackage dpkg-deb dpkg-checkbuilddeps dh; do
    command -v "$c" >/dev/null 2>&1 || missing+=" $c"
done
if [ -n "$missing" ] || gw_built_with_sanitizers; then
    [ "$FG_FAILS" -gt 0 ] && finish
    [ -n "$missing" ] && skip "the package is not built:$missing missing (scripts/deps.sh deb)"
    skip "the package is not built in a sanitizer build (the release build's run builds it)"
fi

note "building the package (packaging/build-deb.sh), a few minutes at most"
TMPDIR=$T timeout -k 10 600 nice -n 10 "$FG_SRCDIR/packaging/build-deb.sh" "$T/out" >"$T/build-deb.log" 2>&1
assert_eq 0 $? "packaging/build-deb.sh builds the package: $(tail -n 3 "$T/build-deb.log" | tr '\n' ' ')"
arch=$(dpkg --print-architecture)
debs=("$T"/out/fleetgate_*_"$arch".deb)
[ -f "${debs[0]}" ] && [ ${#debs[@]} -eq 1 ] || die "no single fleetgate_*_$arch.deb in $T/out: $(ls "$T/out" 2>&1)"
deb=${debs[0]}
note "package: $(basename "$deb")"
src_untouched=$(cd "$FG_SRCDIR" && ls -d debian 2>/dev/null)
assert_eq "" "$src_untouched" "the source tree has no debian/ afterwards"

# ---- its control data
assert_eq fleetgate "$(dpkg-deb -f "$deb" Package)" "Package"
upstream=$("$FG_GATEWAY" -v | awk '{print $2}')
version=$(dpkg-deb -f "$deb" Version)
assert_eq "$upstream" "${version%-*}" "the package's upstream version (debian/changelog) is configure's ($version)"
assert_match "$(dpkg-deb -f "$deb" Depends)" 'libevent.*libjansson|libjansson.*libevent' "Depends (from shlibs)"
list=$(dpkg-deb -c "$deb" | awk '{print $1, $NF}')
files=$(printf '%s\n' "$list" | awk '{print $2}' | sed 's|^\./|/|')
for f in /usr/bin/fleetgate /usr/bin/fleetgate-model /etc/fleetgate/fleetgate.json \
         /usr/share/man/man8/fleetgate.8.gz /usr/share/man/man5/fleetgate.json.5.gz \
         /usr/share/man/man8/fleetgate-model.8.gz /usr/share/fleetgate/models/digits-v1.fgm \
         /usr/share/fleetgate/models/digits-v2.fgm /usr/share/doc/fleetgate/copyright; do
    assert_true "the package holds $f" grep -qxF "$f" <<<"$files"
done
for f in /usr/bin/fleetgate /usr/bin/fleetgate-model; do
    assert_true "$f is executable (-rwxr-xr-x)" grep -qxF -- "-rwxr-xr-x .$f" <<<"$list"
done
unit=$(grep -xE '(/usr)?/lib/systemd/system/fleetgate\.service' <<<"$files")
assert_ne "" "$unit" "the package holds the systemd unit"
assert_eq "" "$(grep -vE '^/(etc|lib|usr)(/|$)|^/$' <<<"$files")" "nothing outside /etc, /lib and /usr (prefix /usr)"
conffiles=$(dpkg-deb -I "$deb" conffiles 2>/dev/null)
assert_true "/etc/fleetgate/fleetgate.json is a conffile" grep -qxF /etc/fleetgate/fleetgate.json <<<"$conffiles"
assert_eq "$(grep '^/etc/.*[^/]$' <<<"$files" | sort)" "$(sort <<<"$conffiles")" \
    "every file under /etc is a conffile, and nothing else is"
postinst=$(dpkg-deb -I "$deb" postinst 2>/dev/null)
assert_contains "$postinst" "deb-systemd-helper enable 'fleetgate.service'" "postinst enables the unit (dh_installsystemd)"

# ---- unpacked: never installed
root=$T/root
dpkg-deb -x "$deb" "$root" || die "dpkg-deb -x failed"
assert_eq "fleetgate $upstream" "$("$root/usr/bin/fleetgate" -v)" "the packaged gateway's version"
out=$(timeout -k 2 10 "$root/usr/bin/fleetgate" -t -c "$root/etc/fleetgate/fleetgate.json" 2>&1)
assert_eq 0 $? "the packaged gateway accepts the packaged configuration: $out"
assert_eq "" "$(ldd "$root/usr/bin/fleetgate-model" | grep -iE 'libcud|not found')" \
    "the packaged model server needs no CUDA library (--without-cuda) and nothing missing"

# the unit's commands are the packaged programs and configuration
for cmd in $(sed -n 's/^ExecStart\(Pre\)\?=[-@+!:]*\([^ ]*\).*/\2/p' "$root$unit"); do
    assert_true "the unit's command $cmd is in the package" test -x "$root$cmd"
done
for cfgf in $(grep -E '^ExecStart(Pre)?=' "$root$unit" | grep -oE -- ' -c [^ ]+' | awk '{print $2}' | sort -u); do
    assert_true "the unit's configuration $cfgf is in the package" test -f "$root$cfgf"
done
if command -v systemd-analyze >/dev/null 2>&1; then
    # under its own name, the packaged programs' paths moved under $root
    # (verify checks that they exist); man pages are not looked up
    mkdir -p "$T/unit"
    sed "s|/usr/bin/fleetgate|$root/usr/bin/fleetgate|g" "$root$unit" >"$T/unit/fleetgate.service"
    out=$(timeout -k 2 30 systemd-analyze verify --man=no "$T/unit/fleetgate.service" 2>&1)
    assert_eq "0 ''" "$? '$out'" "systemd-analyze verify: exit status and output"
else
    note "systemd-analyze is not installed: the unit is not verified"
fi

# ---- the Kubernetes manifests against the package, and run as configured
k8s_run "$root"
if [ -f "$T/model.args" ]; then
    mapfile -t margs <"$T/model.args"
    FG_MODEL=$root/usr/bin/fleetgate-model start_model k8s "${margs[@]}"
    pick_port LP
    pick_port AP
    $PY - "$T/k8s.json" "$T/k8s-run.json" "${MODEL_ADDR[k8s]}" "$LP" "$AP" <<'EOF'
import json, sys
c = json.load(open(sys.argv[1]))
for up in c["upstreams"].values():
    for b in up["backends"]:
        b["address"] = sys.argv[3]
        b.pop("discovery", None)        # the model server here is an address
c["listeners"] = [{"address": "127.0.0.1:" + sys.argv[4]}]
c["admin"]["address"] = "127.0.0.1:" + sys.argv[5]
c["drain_timeout_ms"] = 2000
json.dump(c, open(sys.argv[2], "w"), indent=1)
EOF
    FG_GATEWAY=$root/usr/bin/fleetgate start_gateway "$T/k8s-run.json"
    code=$(fcurl -o "$T/status.json" -w '%{http_code}' "http://127.0.0.1:$AP/status")
    assert_eq 200 "$code" "the probes' GET /status on the admin listener"
    for i in $(seq 1 50); do
        code=$(fcurl -o "$T/infer.json" -w '%{http_code}' "$(gw_url /v2/models/digits/infer)" \
            --data-binary @"$FG_SRCDIR/etc/examples/digit-3.json")
        [ "$code" = 200 ] && break
        sleep 0.1
    done
    assert_eq 200 "$code" "inference through the packaged gateway and model server"
    assert_json "$(cat "$T/infer.json")" outputs.0.data '[3]' "the digit 3 reads as 3"
    stop_gateway
fi

# ---- installed on a Debian booted with systemd (container)
note "installing it under systemd (tests/tools/deb-systemd.sh; its base root: a few minutes the first time)"
timeout -k 10 1200 "$FG_SRCDIR/tests/tools/deb-systemd.sh" "$deb" >"$T/systemd.out" 2>"$T/systemd.err"
rc=$?
grep -E '^#' "$T/systemd.out" | while read -r line; do note "${line#\# }"; done
if [ "$rc" = 77 ]; then
    note "not run under systemd here: $(grep -E '^SKIP' "$T/systemd.err" | tail -n 1)"
else
    n=0
    while read -r line; do
        case $line in
            "ok - "*) assert_true "under systemd: ${line#ok - }" true; n=$((n + 1)) ;;
            "not ok - "*) assert_true "under systemd: ${line#not ok - }" false; n=$((n + 1)) ;;
        esac
    done <"$T/systemd.out"
    assert_eq 0 "$rc" "tests/tools/deb-systemd.sh exit status ($n checks; $(tail -n 3 "$T/systemd.err" | tr '\n' ' '))"
fi

finish
