"""The driver of bench/run (see bench/run --help): starts the backends and the
proxies, runs h2load against every target, protocol and concurrency, round
after round, targets alternating, and records one JSON line per run in
OUT/runs.jsonl; report.py then makes results.csv, results.json, the plot and
the table in docs/performance.md.

One run:
  1. reset the peak RSS of the target's processes (clear_refs);
  2. start h2load (pinned to the load CPUs) with --log-file;
  3. when h2load prints "Warm-up phase is over" and again at "Main benchmark
     duration is over", read the utime+stime of the target, of the backends
     and of h2load, and the per-CPU busy counters (snapshot()): the CPU time
     then covers exactly the requests h2load counts (in -n mode, which has no
     phases: just before start and just after exit);
  4. after it exits: req/s and the request counts from its summary, mean and
     percentiles of the per-request durations from the log file, VmHWM;
  5. CPU time busy on the machine but outside those processes means another
     program ran meanwhile: such a run is "disturbed" and done again (main()).
"""
import argparse
import datetime
import json
import math
import os
import re
import shlex
import shutil
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import common  # noqa: E402
from common import log  # noqa: E402

ALL_TARGETS = ["fleetgate", "haproxy", "nginx", "direct"]
ALL_PROTOS = ["h1", "h2c", "h2"]


def parse_args(argv):
    ap = argparse.ArgumentParser(
        prog="bench/run",
        description="fleetgate, HAProxy, nginx and direct-to-backend under h2load on 127.0.0.1.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="""modes:
  (default)  4 rounds; h1 at -c 1,16,64,256; h2c and h2 (TLS) at the same -c with
             -m 1 and -m 10; 0.5 s warm-up + 2 s measured per run; 320 runs,
             about 15 minutes.
             Writes bench/results/latest and refreshes docs/performance.md.
  --quick    1 round, -c 16,256, 0.5 s + 2 s per run; about 2 minutes;
             writes ${TMPDIR:-/tmp}/fleetgate-bench-quick unless --out is given.
  --smoke    every target x protocol once, -n 200 -c 4 (-m 4 for h2): a few
             seconds; for the test suite; writes ${TMPDIR:-/tmp}/fleetgate-bench-smoke
             unless --out is given; exit status 1 if any target failed a request.
Options given explicitly override the mode's values (e.g. --quick --rounds 2).""")
    ap.add_argument("--fleetgate", required=True,
                    help="the fleetgate binary (bench/run passes $FLEETGATE or the one it built)")
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--smoke", action="store_true")
    ap.add_argument("--rounds", type=int)
    ap.add_argument("--duration", type=float, help="seconds measured per run (h2load -D)")
    ap.add_argument("--warm-up", type=float, help="seconds of warm-up per run, not measured")
    ap.add_argument("--requests", type=int, help="h2load -n instead of -D (no warm-up)")
    ap.add_argument("--concurrency", help="client connections, comma-separated (h2load -c)")
    ap.add_argument("--streams", help="streams per h2 connection, comma-separated (h2load -m)")
    ap.add_argument("--protocols", help="of h1,h2c,h2 (h2 is over TLS)")
    ap.add_argument("--targets", help="of fleetgate,haproxy,nginx,direct")
    ap.add_argument("-w", "--workers", type=int, default=1,
                    help="worker threads/processes of every proxy (default 1)")
    ap.add_argument("--proxy-cpus", default="0", help="taskset list for the proxies (default 0)")
    ap.add_argument("--load-cpus", default="1", help="taskset list for h2load (default 1)")
    ap.add_argument("--backend-cpus", help="taskset list for the two backends (default: not pinned)")
    ap.add_argument("--no-pin", action="store_true", help="no taskset at all")
    ap.add_argument("--path", default=common.PATH, help="request path (default %(default)s)")
    ap.add_argument("--disturbed", type=float, default=0.3,
                    help="a run during which more than this many CPUs were busy outside the "
                    "run's processes (another program) is disturbed (default %(default)s)")
    ap.add_argument("--retries", type=int, default=2,
                    help="repeat a disturbed run up to this many times (default %(default)s)")
    ap.add_argument("--out", help="results directory")
    ap.add_argument("--workdir", help="configs, logs and scratch files (default: a temporary "
                    "directory, removed at the end)")
    ap.add_argument("--doc", dest="doc", action="store_true", default=None,
                    help="refresh docs/performance.md (default only in the default mode)")
    ap.add_argument("--no-doc", dest="doc", action="store_false")
    ap.add_argument("--command", help=argparse.SUPPRESS)     # the command line, from bench/run
    a = ap.parse_args(argv)

    tmp = os.environ.get("TMPDIR", "/tmp")
    if a.smoke:
        d = dict(rounds=1, requests=200, concurrency="4", streams="4",
                 out=os.path.join(tmp, "fleetgate-bench-smoke"), doc=False, mode="smoke")
    elif a.quick:
        d = dict(rounds=1, duration=2.0, warm_up=0.5, concurrency="16,256", streams="1,10",
                 out=os.path.join(tmp, "fleetgate-bench-quick"), doc=False, mode="quick")
    else:
        d = dict(rounds=4, duration=2.0, warm_up=0.5, concurrency="1,16,64,256", streams="1,10",
                 out=os.path.join(common.TOP, "bench", "results", "latest"), doc=True,
                 mode="default")
    for k, v in d.items():
        if getattr(a, k, None) is None:
            setattr(a, k, v)
    a.mode = d["mode"]
    a.concurrency = [int(x) for x in a.concurrency.split(",")]
    a.streams = [int(x) for x in a.streams.split(",")]
    a.protocols = (a.protocols or ",".join(ALL_PROTOS)).split(",")
    a.targets = (a.targets or ",".join(ALL_TARGETS)).split(",")
    for p in a.protocols:
        if p not in ALL_PROTOS:
            ap.error("unknown protocol %r" % p)
    for t in a.targets:
        if t not in ALL_TARGETS:
            ap.error("unknown target %r" % t)
    if a.requests is None and (a.duration is None or a.duration <= 0):
        ap.error("--duration must be positive")
    if a.warm_up is None:
        a.warm_up = 0.0
    if a.requests is not None:
        a.duration = None
        a.warm_up = 0.0
    return a


def scenarios(a):
    out = []
    for proto in a.protocols:
        for c in a.concurrency:
            for m in ([1] if proto == "h1" else a.streams):
                out.append((proto, c, m))
    return out


# ---- one h2load run -------------------------------------------------------------

SUMMARY = {
    "finished": re.compile(r"^finished in ([0-9.]+)(m?s), ([0-9.]+) req/s"),
    "requests": re.compile(r"^requests: (\d+) total, (\d+) started, (\d+) done, (\d+) succeeded, "
                           r"(\d+) failed, (\d+) errored, (\d+) timeout"),
    "status": re.compile(r"^status codes: (\d+) 2xx, (\d+) 3xx, (\d+) 4xx, (\d+) 5xx"),
    "app": re.compile(r"^Application protocol: (\S+)"),
    "tlsproto": re.compile(r"^TLS Protocol: (\S+)"),
    "cipher": re.compile(r"^Cipher: (\S+)"),
}


def percentile(sorted_vals, q):
    """Nearest-rank percentile of an ascending list."""
    if not sorted_vals:
        return None
    k = max(1, math.ceil(q / 100.0 * len(sorted_vals)))
    return sorted_vals[k - 1]


def latency_from_log(path):
    """(mean, p50, p90, p99, p99.9, max) in ms, and the number of rows, of the
    per-request durations h2load logged (status -1, a failed stream, left out)."""
    vals = []
    failed_rows = 0
    try:
        with open(path) as f:
            for line in f:
                p = line.split("\t")
                if len(p) < 3:
                    continue
                if p[1] == "-1":
                    failed_rows += 1
                    continue
                vals.append(int(p[2]))
    except OSError:
        return None
    vals.sort()
    if not vals:
        return {"rows": 0, "failed_rows": failed_rows}
    ms = lambda us: round(us / 1000.0, 4)
    return {"rows": len(vals), "failed_rows": failed_rows,
            "mean_ms": ms(sum(vals) / len(vals)), "p50_ms": ms(percentile(vals, 50)),
            "p90_ms": ms(percentile(vals, 90)), "p99_ms": ms(percentile(vals, 99)),
            "p999_ms": ms(percentile(vals, 99.9)), "max_ms": ms(vals[-1])}


def h2load_argv(a, proto, c, m, url, logfile):
    argv = ["h2load", "-t", "1", "-c", str(c), "-m", str(m), "--log-file", logfile]
    if proto == "h1":
        argv.append("--h1")
    if a.requests is not None:
        argv += ["-n", str(max(a.requests, c))]
    else:
        argv += ["-D", "%dms" % round(a.duration * 1000)]
        if a.warm_up > 0:
            argv += ["--warm-up-time", "%dms" % round(a.warm_up * 1000)]
    argv.append(url + a.path)
    if a.load_cpus is not None:
        argv = ["taskset", "-c", a.load_cpus] + argv
    return argv


def snapshot(target, backends, load_pid):
    """CPU seconds so far of the target, of the backends (when the target is a
    proxy), of the load generator (h2load and this driver), and the per-CPU
    busy counters of the machine."""
    user, system = common.cpu_split(target.pids())
    return {"t": time.monotonic(),
            "target": user + system, "target_sys": system,
            "backends": common.cpu_seconds(backends) if backends else 0.0,
            "load": common.cpu_seconds([load_pid, os.getpid()] if load_pid else [os.getpid()]),
            "busy": common.cpu_busy()}


def run_h2load(a, target, proto, c, m, scratch, limit, backends=()):
    """One run against one target; returns the record (see the module doc).
    backends: the backends' PIDs, whose CPU time is recorded apart."""
    logfile = os.path.join(scratch, "h2load-requests.log")
    if os.path.exists(logfile):
        os.unlink(logfile)
    argv = h2load_argv(a, proto, c, m, target.urls[proto], logfile)
    rec = {"target": target.name, "proto": proto, "c": c, "m": m,
           "argv": " ".join(shlex.quote(x) for x in argv)}
    pids = target.pids()
    if not pids:
        rec["error"] = "%s is not running" % target.name
        return rec
    rec["hwm_reset"] = common.reset_peak_rss(pids)
    s0 = snapshot(target, backends, None)
    s1 = None
    out_lines = []
    p = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                         bufsize=1, stdin=subprocess.DEVNULL, preexec_fn=common.die_with_parent)
    killed = []
    timer = threading.Timer(limit, lambda: (killed.append(1), p.kill()))
    timer.start()
    try:
        for line in p.stdout:
            if line.startswith("Warm-up phase is over"):
                s0 = snapshot(target, backends, p.pid)
            elif line.startswith("Main benchmark duration is over"):
                s1 = snapshot(target, backends, p.pid)
            out_lines.append(line.rstrip("\n"))
        # wait4: h2load's own CPU time comes with its exit status
        _, st, ru = os.wait4(p.pid, 0)
        rc = p.returncode = os.waitstatus_to_exitcode(st)
    finally:
        timer.cancel()
    if s1 is None:                      # -n mode: no phases
        s1 = snapshot(target, backends, None)
        s1["load"] += ru.ru_utime + ru.ru_stime
    win = s1["t"] - s0["t"]
    rec["window_s"] = round(win, 4)
    rec["cpu_s"] = round(s1["target"] - s0["target"], 4)
    rec["cpu_sys_s"] = round(s1["target_sys"] - s0["target_sys"], 4)
    rec["backend_cpu_s"] = round(s1["backends"] - s0["backends"], 4)
    rec["load_cpu_s"] = round(s1["load"] - s0["load"], 4)
    rec["cpu_busy"] = common.busy_fraction(s0["busy"], s1["busy"])
    # CPU time nobody of this run accounts for: another program on the machine
    # (or kernel threads, softirq time not charged to a process)
    busy_s = sum(s1["busy"][k][0] - s0["busy"][k][0] for k in s1["busy"] if k in s0["busy"]) / common.CLK_TCK
    rec["other_cpu_s"] = round(busy_s - rec["cpu_s"] - rec["backend_cpu_s"] - rec["load_cpu_s"], 4)
    rec["h2load_cpu_s"] = round(ru.ru_utime + ru.ru_stime, 4)
    rec["rc"] = rc
    if killed:
        rec["error"] = "h2load ran past %d s and was killed" % limit
    rec["peak_rss_kib"] = common.status_kib(target.pids(), "VmHWM")
    rec["rss_kib"] = common.status_kib(target.pids(), "VmRSS")
    for line in out_lines:
        for key, rx in SUMMARY.items():
            mt = rx.match(line)
            if not mt:
                continue
            g = mt.groups()
            if key == "finished":
                rec["req_s"] = float(g[2])
            elif key == "requests":
                for name, v in zip(("total", "started", "done", "succeeded", "failed",
                                    "errored", "timeout"), g):
                    rec[name] = int(v)
            elif key == "status":
                for name, v in zip(("s2xx", "s3xx", "s4xx", "s5xx"), g):
                    rec[name] = int(v)
            elif key == "app":
                rec["app_proto"] = g[0]
            elif key == "tlsproto":
                rec["tls"] = g[0]
            elif key == "cipher":
                rec["cipher"] = g[0]
    if "succeeded" not in rec:
        rec["error"] = rec.get("error") or ("h2load gave no summary (exit %d): %s"
                                            % (rc, " | ".join(out_lines[-5:])))
        return rec
    lat = latency_from_log(logfile)
    if lat:
        rec.update(lat)
    if rec["succeeded"] > 0:
        rec["cpu_us_per_req"] = round(rec["cpu_s"] * 1e6 / rec["succeeded"], 3)
        rec["sys_us_per_req"] = round(rec["cpu_sys_s"] * 1e6 / rec["succeeded"], 3)
    want = {"h1": "http/1.1", "h2c": "h2c", "h2": "h2"}[proto]
    if rec.get("app_proto") != want:
        rec["error"] = "expected application protocol %s, h2load got %s" % (want, rec.get("app_proto"))
    return rec


# ---- the run ----------------------------------------------------------------------

def main(argv):
    a = parse_args(argv)
    ncpu = len(os.sched_getaffinity(0))
    pin_note = None
    if a.no_pin:
        a.proxy_cpus = a.load_cpus = a.backend_cpus = None
        pin_note = "not pinned (--no-pin)"
    elif ncpu < 2:
        a.proxy_cpus = a.load_cpus = a.backend_cpus = None
        pin_note = "not pinned (only %d CPU usable)" % ncpu
    else:
        pin_note = ("proxy on CPU %s and h2load on CPU %s (taskset), backends %s"
                    % (a.proxy_cpus, a.load_cpus,
                       "on CPU %s" % a.backend_cpus if a.backend_cpus else "not pinned"))

    for cmd in ("h2load", "haproxy", "nginx", "openssl") + (("taskset",) if a.proxy_cpus else ()):
        if not common.have(cmd):
            log("%s is not installed (bench/lib/deps.sh bench installs it)" % cmd)
            return 2
    if not os.access(a.fleetgate, os.X_OK):
        log("fleetgate binary %s is not executable" % a.fleetgate)
        return 2
    a.fleetgate = os.path.abspath(a.fleetgate)

    own_workdir = a.workdir is None
    workdir = tempfile.mkdtemp(prefix="fleetgate-bench.") if own_workdir else a.workdir
    os.makedirs(workdir, exist_ok=True)
    workdir = os.path.abspath(workdir)
    scratch = os.path.join(workdir, "scratch")
    os.makedirs(scratch, exist_ok=True)
    out = os.path.abspath(a.out)

    daemons = common.Daemons(workdir, a.fleetgate, workers=a.workers, proxy_cpus=a.proxy_cpus,
                             backend_cpus=a.backend_cpus)

    def cleanup():
        daemons.stop_all()

    def on_signal():
        cleanup()
        if own_workdir:
            shutil.rmtree(workdir, ignore_errors=True)

    common.on_signals(on_signal)
    status = 0
    try:
        log("work directory %s" % workdir)
        targets = {}
        direct = daemons.start_backends()
        for name in ("fleetgate", "haproxy", "nginx"):
            if name in a.targets:
                targets[name] = daemons.start(name)
        if "direct" in a.targets:
            targets["direct"] = direct
        order = [t for t in ALL_TARGETS if t in targets]
        backend_pids = [q for name, proc in daemons.procs if name.startswith("backend")
                        for q in [proc.pid] + common.children(proc.pid)]
        for t in order:
            log("%-9s pids %s  %s" % (t, targets[t].pids(), " ".join(
                "%s=%s" % (p, targets[t].urls[p]) for p in a.protocols)))
        # This process waits on h2load: keep it off the proxy's CPU too.
        if a.load_cpus is not None:
            os.sched_setaffinity(0, parse_cpus(a.load_cpus))

        meta = {
            "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "mode": a.mode, "command": a.command or "bench/run " + " ".join(argv),
            "machine": common.machine(), "versions": common.versions(a.fleetgate),
            "workers": a.workers, "pinning": pin_note,
            "proxy_cpus": a.proxy_cpus, "load_cpus": a.load_cpus, "backend_cpus": a.backend_cpus,
            "rounds": a.rounds, "duration_s": a.duration, "warm_up_s": a.warm_up,
            "disturbed_cpus": a.disturbed, "retries": a.retries,
            "requests": a.requests, "path": a.path, "targets": order,
            "protocols": a.protocols, "concurrency": a.concurrency, "streams": a.streams,
            "body_bytes": body_size(targets[order[0]].urls["h1"] + a.path) if order else None,
            "nofile": common.nofile(),
        }

        # every target answers every protocol before anything is measured
        for t in order:
            for proto in a.protocols:
                chk = run_h2load(argparse.Namespace(**dict(vars(a), requests=20, duration=None,
                                                           warm_up=0.0)),
                                 targets[t], proto, 1, 1, scratch, 30)
                if chk.get("error") or chk.get("succeeded") != 20:
                    log("%s does not answer %s: %s" % (t, proto, chk.get("error") or chk))
                    status = 1
                    raise SystemExit(1)

        os.makedirs(out, exist_ok=True)
        runs_path = os.path.join(out, "runs.jsonl")
        with open(os.path.join(out, "meta.json"), "w") as f:
            json.dump(meta, f, indent=1)
        scen = scenarios(a)
        total = a.rounds * len(scen) * len(order)
        per = (a.warm_up + a.duration + 0.35) if a.requests is None else 0.3
        log("%d runs (%d rounds x %d scenarios x %d targets), about %d s; %s"
            % (total, a.rounds, len(scen), len(order), total * per, pin_note))
        limit = int((a.warm_up + a.duration) + 30) if a.requests is None else 60
        n = 0
        started = time.monotonic()
        with open(runs_path, "w") as runs:
            for r in range(a.rounds):
                # each round starts with the next target, so that no target
                # always follows the same one
                rot = order[r % len(order):] + order[:r % len(order)]
                for proto, c, m in scen:
                    for t in rot:
                        n += 1
                        for attempt in range(1 + a.retries):
                            rec = run_h2load(a, targets[t], proto, c, m, scratch, limit,
                                             backend_pids if t != "direct" else ())
                            rec["round"] = r + 1
                            rec["attempt"] = attempt + 1
                            other = (rec.get("other_cpu_s", 0) / rec["window_s"]
                                     if a.requests is None and rec.get("window_s") else 0)
                            rec["disturbed"] = other > a.disturbed
                            again = rec["disturbed"] and attempt < a.retries
                            rec["superseded"] = again
                            runs.write(json.dumps(rec, sort_keys=True) + "\n")
                            runs.flush()
                            log("[%3d/%d] r%d %-3s c=%-3d m=%-2d %-9s %s%s"
                                % (n, total, r + 1, proto, c, m, t, brief(rec),
                                   "  (disturbed: %.2f CPU outside the run%s)"
                                   % (other, ", again" if again else "") if rec["disturbed"] else ""))
                            if a.requests is None:
                                time.sleep(1.0 if again else 0.1)
                            if not again:
                                break
                        if rec.get("error") or rec.get("failed", 0) or not rec.get("succeeded"):
                            status = 1
        meta["elapsed_s"] = round(time.monotonic() - started, 1)
        meta["alive_at_end"] = {t: targets[t].alive() for t in order}
        for t in order:
            if not targets[t].alive():
                log("%s died during the run (see %s)" % (t, daemons.logs))
                status = 1
        with open(os.path.join(out, "meta.json"), "w") as f:
            json.dump(meta, f, indent=1)
    finally:
        cleanup()
        if own_workdir and status == 0:
            shutil.rmtree(workdir, ignore_errors=True)
        elif own_workdir:
            log("work directory kept: %s" % workdir)

    import report
    report.main([out] + (["--doc", os.path.join(common.TOP, "docs", "performance.md")] if a.doc else [])
                + (["--no-plot"] if a.mode == "smoke" else []))
    log("results in %s" % out)
    return status


def parse_cpus(s):
    cpus = set()
    for part in s.split(","):
        if "-" in part:
            lo, hi = part.split("-")
            cpus.update(range(int(lo), int(hi) + 1))
        else:
            cpus.add(int(part))
    return cpus


def body_size(url):
    import urllib.request
    try:
        opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
        return len(opener.open(url, timeout=5).read())
    except Exception:
        return None


def brief(rec):
    if rec.get("error") and "succeeded" not in rec:
        return "ERROR " + rec["error"]
    s = ("%9.0f req/s  mean %7.3f ms  p99 %7.3f ms  cpu %6.2f us/req (sys %6.2f)  "
         "peak %6.1f MiB  failed %d") % (
        rec.get("req_s", 0), rec.get("mean_ms") or 0, rec.get("p99_ms") or 0,
        rec.get("cpu_us_per_req") or 0, rec.get("sys_us_per_req") or 0,
        (rec.get("peak_rss_kib") or 0) / 1024.0,
        rec.get("failed", -1))
    if rec.get("error"):
        s += "  ERROR " + rec["error"]
    return s


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
