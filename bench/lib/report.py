"""Turns OUT/runs.jsonl and OUT/meta.json (written by bench.py) into
OUT/results.csv, OUT/results.json and OUT/results.svg, and with --doc rewrites
the part of docs/performance.md between its "bench:results" markers.

    /usr/bin/python3 bench/lib/report.py OUT [--doc docs/performance.md] [--no-plot]

The plot is written twice, results.svg and results.png (the one the page
shows).

Per target x protocol x concurrency (-c) x streams (-m), over the rounds: the
median of req/s, mean and p99 latency, CPU time per request and peak RSS; the
failed requests summed over every round; the ratios of the medians to
HAProxy's in the same scenario (*_vs_haproxy), and for req/s, CPU and p99 the
median of the ratios within each round (*_vs_haproxy_paired).
"""
import csv
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile

LIB = os.path.dirname(os.path.abspath(__file__))
TOP = os.path.dirname(os.path.dirname(LIB))
PROTO_ORDER = {"h1": 0, "h2c": 1, "h2": 2}
TARGET_ORDER = {"fleetgate": 0, "haproxy": 1, "nginx": 2, "direct": 3}
PROTO_LABEL = {"h1": "HTTP/1.1", "h2c": "h2c", "h2": "h2 (TLS)"}
METRICS = ["req_s", "mean_ms", "p99_ms", "cpu_us_per_req", "sys_us_per_req", "peak_rss_kib"]


def load(out):
    runs = []
    with open(os.path.join(out, "runs.jsonl")) as f:
        for line in f:
            if line.strip():
                runs.append(json.loads(line))
    meta = json.load(open(os.path.join(out, "meta.json")))
    meta["repeated_runs"] = sum(1 for r in runs if r.get("superseded"))
    # a disturbed run repeated is replaced by its repetition
    runs = [r for r in runs if not r.get("superseded")]
    return meta, runs


def med(vals):
    vals = [v for v in vals if v is not None]
    return statistics.median(vals) if vals else None


def aggregate(runs):
    groups = {}
    for r in runs:
        groups.setdefault((r["target"], r["proto"], r["c"], r["m"]), []).append(r)
    rows = []
    for (t, p, c, m), rs in groups.items():
        ok = [r for r in rs if "succeeded" in r]
        row = {"target": t, "protocol": p, "c": c, "m": m, "rounds": len(rs),
               "runs_with_errors": sum(1 for r in rs if r.get("error")),
               "disturbed_runs": sum(1 for r in rs if r.get("disturbed")),
               "errors": sorted(set(r["error"] for r in rs if r.get("error"))),
               "succeeded_total": sum(r.get("succeeded", 0) for r in ok),
               "failed_total": sum(r.get("failed", 0) for r in ok)}
        for k in METRICS:
            row[k] = med([r.get(k) for r in ok])
        reqs = [r["req_s"] for r in ok if r.get("req_s") is not None]
        row["req_s_min"] = min(reqs) if reqs else None
        row["req_s_max"] = max(reqs) if reqs else None
        rows.append(row)
    # paired: the median over the rounds of the ratio within each round, where
    # the two targets ran one right after the other (drift hits both alike)
    per_round = {(r["target"], r["proto"], r["c"], r["m"], r.get("round")): r
                 for r in runs if "succeeded" in r}
    for row in rows:
        key = (row["protocol"], row["c"], row["m"])
        for k in ("req_s", "cpu_us_per_req", "p99_ms"):
            ratios = []
            for (t, p, c, m, rd), run in per_round.items():
                if t != row["target"] or (p, c, m) != key:
                    continue
                h = per_round.get(("haproxy", p, c, m, rd))
                if h and h.get(k) and run.get(k) is not None:
                    ratios.append(run[k] / h[k])
            row[k + "_vs_haproxy_paired"] = round(statistics.median(ratios), 3) if ratios else None
    base = {(r["protocol"], r["c"], r["m"]): r for r in rows if r["target"] == "haproxy"}
    for row in rows:
        h = base.get((row["protocol"], row["c"], row["m"]))
        for k in METRICS:
            v = None
            if h and h.get(k) and row.get(k) is not None:
                v = round(row[k] / h[k], 3)
            row[k + "_vs_haproxy"] = v
    rows.sort(key=lambda r: (PROTO_ORDER.get(r["protocol"], 9), r["c"], r["m"],
                             TARGET_ORDER.get(r["target"], 9)))
    return rows


def rnd(v, n):
    return None if v is None else round(v, n)


CSV_COLS = ["target", "protocol", "c", "m", "rounds", "req_s", "req_s_min", "req_s_max",
            "mean_ms", "p99_ms", "failed_total", "succeeded_total", "cpu_us_per_req",
            "sys_us_per_req", "peak_rss_kib", "req_s_vs_haproxy", "mean_ms_vs_haproxy", "p99_ms_vs_haproxy",
            "cpu_us_per_req_vs_haproxy", "peak_rss_kib_vs_haproxy", "req_s_vs_haproxy_paired",
            "cpu_us_per_req_vs_haproxy_paired", "p99_ms_vs_haproxy_paired", "runs_with_errors",
            "disturbed_runs"]


def write_csv(path, rows):
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(CSV_COLS)
        for r in rows:
            w.writerow(["" if r.get(k) is None else
                        (round(r[k], 4) if isinstance(r[k], float) else r[k]) for k in CSV_COLS])


def scenario_label(p, c, m):
    return "%s -c %d" % (p, c) + ("" if p == "h1" else " -m %d" % m)


def plot(out, meta, rows, name="results.svg"):
    if not shutil.which("gnuplot"):
        sys.stderr.write("report: gnuplot is not installed: no plot\n")
        return None
    targets = [t for t in meta.get("targets", []) if t != "direct" and any(r["target"] == t for r in rows)]
    scen = []
    for r in rows:
        k = (r["protocol"], r["c"], r["m"])
        if k not in scen:
            scen.append(k)
    by = {(r["target"], r["protocol"], r["c"], r["m"]): r for r in rows}
    d = tempfile.mkdtemp(prefix="fleetgate-plot.")
    try:
        for dat, key in (("reqs", "req_s"), ("cpu", "cpu_us_per_req"), ("p99", "p99_ms")):
            with open(os.path.join(d, dat + ".dat"), "w") as f:
                f.write("scenario\t" + "\t".join(targets) + "\n")
                for s in scen:
                    vals = []
                    for t in targets:
                        v = by.get((t,) + s, {}).get(key)
                        vals.append("NaN" if v is None else "%.4f" % v)
                    f.write(scenario_label(*s) + "\t" + "\t".join(vals) + "\n")
        svg = os.path.join(out, name)
        m = meta.get("machine", {})
        heading = ("fleetgate, HAProxy and nginx, %s worker each, before two nginx backends; "
                   "%s CPUs (%s); %s" % (meta.get("workers"), m.get("nproc"), m.get("cpu_model"),
                                          meta.get("date")))
        r = subprocess.run(["gnuplot", "-e", "dir='%s'; out='%s'; n=%d; heading='%s'"
                            % (d, svg, len(targets), heading.replace("'", "")),
                            os.path.join(LIB, "plot.gp")], stderr=subprocess.PIPE, text=True)
        for line in r.stderr.splitlines():
            if "empty y range" not in line:        # one bar per panel: harmless
                sys.stderr.write(line + "\n")
        if r.returncode != 0:
            raise SystemExit("report: gnuplot failed")
        return svg
    finally:
        shutil.rmtree(d, ignore_errors=True)


# ---- markdown ------------------------------------------------------------------

def f0(v):
    return "–" if v is None else "{:,.0f}".format(v)


def f2(v):
    return "–" if v is None else "%.2f" % v


def f3(v):
    return "–" if v is None else "%.3f" % v


def fr(v, good=None):
    """A ratio, in bold where it misses the target (good: a predicate)."""
    if v is None:
        return "–"
    s = "%.2f" % v
    if good is not None and not good(v):
        s = "**%s**" % s
    return s


def versions_md(meta):
    v = meta.get("versions", {})
    return "; ".join("%s: `%s`" % (k, v[k]) for k in ("fleetgate", "haproxy", "nginx", "h2load", "openssl")
                     if k in v)


def header_md(meta):
    m = meta.get("machine", {})
    if meta.get("requests"):
        per = "-n %d per run" % meta["requests"]
    else:
        per = "%.1f s warm-up + %.1f s measured per run (h2load -D)" % (meta["warm_up_s"], meta["duration_s"])
    lines = [
        "Measured %s (%s mode, %s s in all), command: `%s`." % (
            meta.get("date"), meta.get("mode"), meta.get("elapsed_s", "?"), meta.get("command")),
        "",
        "- Machine: %s CPUs (`nproc`), %s, kernel %s, Debian %s, %s RAM." % (
            m.get("nproc"), m.get("cpu_model"), m.get("kernel"), m.get("debian"), m.get("mem_total")),
        "- Versions: %s." % versions_md(meta),
        "- Workers: %s per proxy (fleetgate `workers`, HAProxy `nbthread`, nginx "
        "`worker_processes`). Pinning: %s." % (meta.get("workers"), meta.get("pinning")),
        "- Runs: %d rounds, targets alternating (each round starting with the next target); %s; "
        "`GET %s`, a %s-byte JSON body from the nginx backends." % (
            meta.get("rounds"), per, meta.get("path"), meta.get("body_bytes")),
    ]
    if meta.get("requests") is None:
        lines.append("- Runs during which another program kept more than %s CPU busy were repeated "
                     "(up to %s times): %d repeated; %d of the kept runs still disturbed (see "
                     "`disturbed_runs` in results.csv)." % (
                         meta.get("disturbed_cpus", 0.3), meta.get("retries", 2),
                         meta.get("repeated_runs", 0), meta.get("disturbed_kept", 0)))
    dead = [t for t, alive in meta.get("alive_at_end", {}).items() if not alive]
    if dead:
        lines.append("- **Died during the run: %s.**" % ", ".join(dead))
    return "\n".join(lines)


def cpu_md(r):
    """CPU time per request and, in parentheses, its kernel (stime) part."""
    if r.get("sys_us_per_req") is None:
        return f2(r["cpu_us_per_req"])
    return "%s (%s)" % (f2(r["cpu_us_per_req"]), f2(r["sys_us_per_req"]))


def versus_md(rows):
    by = {(r["target"], r["protocol"], r["c"], r["m"]): r for r in rows}
    out = ["| protocol | -c | -m | req/s fleetgate | req/s HAProxy | ratio (≥ 1) "
           "| CPU µs/req fleetgate (kernel) | CPU µs/req HAProxy (kernel) | ratio (≤ 0.80) "
           "| p99 ms fleetgate | p99 ms HAProxy | ratio (≤ 1) |",
           "|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|"]
    n = 0
    for r in rows:
        if r["target"] != "fleetgate":
            continue
        h = by.get(("haproxy", r["protocol"], r["c"], r["m"]))
        if not h:
            continue
        n += 1
        out.append("| %s | %d | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s |" % (
            PROTO_LABEL[r["protocol"]], r["c"], "–" if r["protocol"] == "h1" else r["m"],
            f0(r["req_s"]), f0(h["req_s"]), fr(r["req_s_vs_haproxy"], lambda v: v >= 1.0),
            cpu_md(r), cpu_md(h),
            fr(r["cpu_us_per_req_vs_haproxy"], lambda v: v <= 0.8),
            f3(r["p99_ms"]), f3(h["p99_ms"]), fr(r["p99_ms_vs_haproxy"], lambda v: v <= 1.0)))
    return "\n".join(out) if n else ""


def full_md(rows):
    out = ["| protocol | -c | -m | target | req/s | (min–max) | mean ms | p99 ms | failed "
           "| CPU µs/req | peak RSS MiB | req/s ÷ HAProxy | CPU ÷ HAProxy | p99 ÷ HAProxy |",
           "|---|--:|--:|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|"]
    for r in rows:
        failed = str(r["failed_total"])
        if r["runs_with_errors"]:
            failed += " (%d runs in error)" % r["runs_with_errors"]
        out.append("| %s | %d | %s | %s | %s | %s–%s | %s | %s | %s | %s | %s | %s | %s | %s |" % (
            PROTO_LABEL[r["protocol"]], r["c"], "–" if r["protocol"] == "h1" else r["m"],
            r["target"], f0(r["req_s"]), f0(r["req_s_min"]), f0(r["req_s_max"]),
            f3(r["mean_ms"]), f3(r["p99_ms"]), failed, f2(r["cpu_us_per_req"]),
            "–" if r["peak_rss_kib"] is None else "%.1f" % (r["peak_rss_kib"] / 1024.0),
            fr(r["req_s_vs_haproxy"]), fr(r["cpu_us_per_req_vs_haproxy"]),
            fr(r["p99_ms_vs_haproxy"])))
    return "\n".join(out)


def results_md(meta, rows, svg, doc):
    parts = [header_md(meta), "",
             "#### fleetgate against HAProxy",
             "",
             "Medians over the rounds; a ratio that misses the goal of issue 3 is in bold.",
             "",
             versus_md(rows), "",
             "#### Every target", "",
             "req/s, latency, CPU and peak RSS: medians over the rounds (min–max: the "
             "spread of req/s); failed: summed over every round. The direct baseline's CPU "
             "and RSS are the backend nginx's own (master and worker).", "",
             full_md(rows)]
    if svg:
        rel = os.path.relpath(svg, os.path.dirname(os.path.abspath(doc)))
        parts += ["", "![requests/s, CPU per request and p99 per scenario](%s)" % rel,
                  "", "(also as [SVG](%s.svg))" % os.path.splitext(rel)[0]]
    return "\n".join(parts)


def replace_between(doc, name, text):
    """Replace what lies between <!-- NAME:begin --> and <!-- NAME:end -->."""
    begin, end = "<!-- %s:begin -->" % name, "<!-- %s:end -->" % name
    s = open(doc).read()
    i, j = s.find(begin), s.find(end)
    if i < 0 or j < i:
        raise SystemExit("report: %s has no %s ... %s markers" % (doc, begin, end))
    s = s[:i + len(begin)] + "\n" + text.rstrip("\n") + "\n" + s[j:]
    with open(doc, "w") as f:
        f.write(s)


def main(argv):
    if not argv or argv[0].startswith("-"):
        sys.stderr.write(__doc__)
        return 2
    out = argv[0]
    doc = argv[argv.index("--doc") + 1] if "--doc" in argv else None
    meta, runs = load(out)
    rows = aggregate(runs)
    meta["disturbed_kept"] = sum(r["disturbed_runs"] for r in rows)
    write_csv(os.path.join(out, "results.csv"), rows)
    with open(os.path.join(out, "results.json"), "w") as f:
        json.dump({"meta": meta, "results": rows}, f, indent=1)
    svg = png = None
    if "--no-plot" not in argv:
        svg = plot(out, meta, rows)
        try:
            png = plot(out, meta, rows, "results.png")
        except (SystemExit, OSError) as e:     # no pngcairo: the SVG will do
            sys.stderr.write("report: no PNG: %s\n" % e)
    if doc:
        replace_between(doc, "bench:results", results_md(meta, rows, png or svg, doc))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
