"""The driver of bench/idle (see bench/idle --help): the memory a proxy holds
per idle client connection.

For each target (fleetgate, HAProxy, nginx) and each mode (h2, h2-bare, h1;
see idle_client.py), on a freshly started proxy in front of the two nginx
backends:
  1. a few requests of each protocol (h2load), so that lazily made things
     (backend connections, buffers) exist before the baseline;
  2. RSS0: the sum of VmRSS over the proxy's processes;
  3. idle_client.py opens N connections and leaves them idle; 2 s later
  4. RSS1, and the client counts the connections still open;
  5. (RSS1 - RSS0) / connections = KiB per idle connection.
The proxy is stopped and started again before the next mode, so that memory
freed but kept by the allocator from the previous mode does not hide the next
one's.
"""
import argparse
import datetime
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import common  # noqa: E402
from common import log  # noqa: E402

MODES = ["h2", "h2-bare", "h1"]
TARGETS = ["fleetgate", "haproxy", "nginx"]
MODE_LABEL = {"h2": "HTTP/2 (h2c), after one request", "h2-bare": "HTTP/2 (h2c), preface and SETTINGS only",
              "h1": "HTTP/1.1 keep-alive, after one request"}


def parse_args(argv):
    ap = argparse.ArgumentParser(prog="bench/idle",
                                 description="RSS of fleetgate, HAProxy and nginx holding many idle "
                                 "client connections, on 127.0.0.1.")
    ap.add_argument("--fleetgate", required=True, help="the fleetgate binary (bench/idle passes it)")
    ap.add_argument("-n", "--connections", type=int, default=10000)
    ap.add_argument("--targets", default=",".join(TARGETS))
    ap.add_argument("--modes", default=",".join(MODES), help="of h2,h2-bare,h1")
    ap.add_argument("-w", "--workers", type=int, default=1)
    ap.add_argument("--proxy-cpus", default="0")
    ap.add_argument("--load-cpus", default="1")
    ap.add_argument("--no-pin", action="store_true")
    ap.add_argument("--out", default=os.path.join(common.TOP, "bench", "results", "latest"),
                    help="writes idle.json there (default bench/results/latest)")
    ap.add_argument("--doc", dest="doc", action="store_true", default=True,
                    help="refresh the idle table of docs/performance.md (default)")
    ap.add_argument("--no-doc", dest="doc", action="store_false")
    ap.add_argument("--workdir")
    ap.add_argument("--command", help=argparse.SUPPRESS)
    a = ap.parse_args(argv)
    a.targets = a.targets.split(",")
    a.modes = a.modes.split(",")
    for t in a.targets:
        if t not in TARGETS:
            ap.error("unknown target %r" % t)
    for m in a.modes:
        if m not in MODES:
            ap.error("unknown mode %r" % m)
    return a


def warm(target):
    for proto in ("h1", "h2c"):
        argv = ["h2load", "-n", "200", "-c", "4", "-m", "4", target.urls[proto] + common.PATH]
        if proto == "h1":
            argv.insert(1, "--h1")
        subprocess.run(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=60)


def measure(a, daemons, name, mode):
    target = daemons.start(name)
    try:
        warm(target)
        time.sleep(0.5)
        pids = target.pids()
        rss0 = common.status_kib(pids, "VmRSS")
        port = int(target.urls["h1" if mode == "h1" else "h2c"].rsplit(":", 1)[1])
        argv = ["/usr/bin/python3", "-B", os.path.join(common.LIB, "idle_client.py"), mode, str(port),
                str(a.connections), common.PATH]
        if a.load_cpus:
            argv = ["taskset", "-c", a.load_cpus] + argv
        cl = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
                              preexec_fn=common.die_with_parent)
        rec = {"target": name, "mode": mode, "connections_asked": a.connections, "rss0_kib": rss0}
        try:
            line = cl.stdout.readline().split()
            if not line or line[0] != "ready":
                rec["error"] = "client: %r" % line
                return rec
            rec["opened"], rec["failed"], rec["setup_s"] = int(line[1]), int(line[2]), float(line[3])
            if rec["failed"]:
                rec["client_errors"] = cl.stdout.readline().strip()
            time.sleep(2)
            rec["rss1_kib"] = common.status_kib(target.pids(), "VmRSS")
            rec["hwm_kib"] = common.status_kib(target.pids(), "VmHWM")
            cl.stdin.write("\n")
            cl.stdin.flush()
            line = cl.stdout.readline().split()
            rec["alive"] = int(line[1]) if line and line[0] == "alive" else None
        finally:
            try:
                cl.stdin.close()
            except OSError:
                pass
            try:
                cl.wait(60)
            except subprocess.TimeoutExpired:
                cl.kill()
                cl.wait()
        n = rec.get("alive") or 0
        if n:
            rec["kib_per_conn"] = round((rec["rss1_kib"] - rec["rss0_kib"]) / n, 2)
        if rec.get("alive") != rec.get("opened"):
            rec["note"] = "%s connections closed by the proxy while idle" % (
                (rec.get("opened") or 0) - (rec.get("alive") or 0))
        rec["alive_after"] = target.alive()
        return rec
    finally:
        daemons.stop(target)


def table_md(meta, recs):
    m = meta["machine"]
    lines = [
        "Measured %s with `%s`: %d connections per target and mode, each proxy with %d worker, "
        "started afresh for each mode. Machine: %s CPUs, %s, kernel %s. Versions: %s." % (
            meta["date"], meta["command"], meta["connections"], meta["workers"], m["nproc"],
            m["cpu_model"], m["kernel"],
            "; ".join("%s `%s`" % (k, v) for k, v in meta["versions"].items() if k != "h2load")),
        "",
        "| connections | target | idle connections | RSS before MiB | RSS with them MiB | KiB per connection |",
        "|---|---|--:|--:|--:|--:|"]
    for r in recs:
        if r.get("error"):
            lines.append("| %s | %s | error: %s | | | |" % (MODE_LABEL[r["mode"]], r["target"], r["error"]))
            continue
        alive = str(r.get("alive"))
        if r.get("failed"):
            alive += " (%d failed to open)" % r["failed"]
        if r.get("note"):
            alive += " (%s)" % r["note"]
        lines.append("| %s | %s | %s | %.1f | %.1f | %s |" % (
            MODE_LABEL[r["mode"]], r["target"], alive, r["rss0_kib"] / 1024.0,
            r["rss1_kib"] / 1024.0, "–" if r.get("kib_per_conn") is None else "%.2f" % r["kib_per_conn"]))
    return "\n".join(lines)


def main(argv):
    a = parse_args(argv)
    if a.no_pin or len(os.sched_getaffinity(0)) < 2:
        a.proxy_cpus = a.load_cpus = None
    a.fleetgate = os.path.abspath(a.fleetgate)
    for cmd in ("h2load", "haproxy", "nginx", "openssl"):
        if not common.have(cmd):
            log("%s is not installed (bench/lib/deps.sh bench installs it)" % cmd)
            return 2
    nofile = common.nofile()
    if nofile < a.connections + 1000:
        log("the descriptor limit (%d) is too low for %d connections" % (nofile, a.connections))
        return 2
    own = a.workdir is None
    workdir = os.path.abspath(tempfile.mkdtemp(prefix="fleetgate-idle.") if own else a.workdir)
    os.makedirs(workdir, exist_ok=True)
    # idle timeouts far beyond the measurement; HAProxy's maxconn and
    # fleetgate's max_connections above N
    daemons = common.Daemons(workdir, a.fleetgate, workers=a.workers, proxy_cpus=a.proxy_cpus,
                             idle_timeout_s=600)
    start_haproxy = daemons.start_haproxy
    daemons.start_haproxy = lambda: start_haproxy(maxconn=a.connections + 500)
    start_fleetgate = daemons.start_fleetgate
    daemons.start_fleetgate = lambda: start_fleetgate(max_connections=a.connections + 500)
    def on_signal():
        daemons.stop_all()
        if own:
            shutil.rmtree(workdir, ignore_errors=True)

    common.on_signals(on_signal)
    recs = []
    status = 0
    try:
        daemons.start_backends()
        for name in a.targets:
            for mode in a.modes:
                rec = measure(a, daemons, name, mode)
                recs.append(rec)
                log("%-9s %-7s %s" % (name, mode, brief(rec)))
                if rec.get("error") or not rec.get("alive"):
                    status = 1
    finally:
        daemons.stop_all()
        if own and status == 0:
            shutil.rmtree(workdir, ignore_errors=True)
        elif own:
            log("work directory kept: %s" % workdir)
    meta = {"date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "command": a.command or "bench/idle " + " ".join(argv), "connections": a.connections,
            "workers": a.workers, "machine": common.machine(), "versions": common.versions(a.fleetgate),
            "pinning": ("proxy on CPU %s, client on CPU %s" % (a.proxy_cpus, a.load_cpus))
            if a.proxy_cpus else "not pinned",
            "rss": "sum of VmRSS over the proxy's processes (nginx: master and worker)"}
    os.makedirs(a.out, exist_ok=True)
    with open(os.path.join(a.out, "idle.json"), "w") as f:
        json.dump({"meta": meta, "results": recs}, f, indent=1)
    print(table_md(meta, recs))
    if a.doc:
        import report
        report.replace_between(os.path.join(common.TOP, "docs", "performance.md"), "bench:idle",
                               table_md(meta, recs))
    return status


def brief(r):
    if r.get("error"):
        return "ERROR " + r["error"]
    return "%s open (%s failed), alive %s; RSS %.1f -> %.1f MiB: %s KiB per connection%s" % (
        r.get("opened"), r.get("failed"), r.get("alive"), r["rss0_kib"] / 1024.0,
        r.get("rss1_kib", 0) / 1024.0, r.get("kib_per_conn"),
        ("  (" + r["client_errors"] + ")") if r.get("client_errors") else "")


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
