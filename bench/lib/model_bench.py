"""bench/model: inferences per second of fleetgate-model against its batch
size, through fleetgate, under h2load. See bench/model --help.

For every device (the CPU; the GPU too where one is found) and every
--max-batch B it starts one fleetgate-model (digits v1, one batch thread)
and one fleetgate in front of it on 127.0.0.1, sends one-image infer
requests with h2load (h2c, C connections x M streams) for a fixed time, and
reads the server's /metrics before and after: requests/s (= inferences/s),
latency mean and p99 from h2load's log, failed requests, the mean batch the
server formed, and the model server's CPU time per inference.

Debian's python3, standard library only; every process is stopped by PID.
"""
import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import common  # noqa: E402
from bench import latency_from_log  # noqa: E402

TOP = common.TOP


def parse_args(argv):
    p = argparse.ArgumentParser(prog="bench/model", description=__doc__.split("\n\n")[0])
    p.add_argument("--fleetgate", required=True)
    p.add_argument("--model-server", required=True)
    p.add_argument("--model", default=os.path.join(TOP, "models", "digits-v1.fgm"))
    p.add_argument("--batches", default="1,4,16,64,256", help="--max-batch values (default 1,4,16,64,256)")
    p.add_argument("--devices", default="auto", help="cpu, gpu, cpu,gpu or auto (the CPU, and the GPU when found)")
    p.add_argument("--duration", type=float, default=10.0, help="seconds per run (default 10)")
    p.add_argument("--connections", "-c", type=int, default=64)
    p.add_argument("--streams", "-m", type=int, default=4)
    p.add_argument("--max-delay-us", type=int, default=2000)
    p.add_argument("--threads", type=int, default=1, help="batch threads of the model server (default 1)")
    p.add_argument("--smoke", action="store_true", help="batches 1 and 16, 1 s each, 4x2 streams")
    p.add_argument("--out", default=os.path.join(TOP, "bench", "results", "model"))
    p.add_argument("--docs", default=None, help="update this Markdown file between the bench:model markers")
    p.add_argument("--command", default="bench/model")
    a = p.parse_args(argv)
    if a.smoke:
        a.batches, a.duration, a.connections, a.streams = "1,16", 1.0, 4, 2
    a.batches = [int(x) for x in a.batches.split(",")]
    return a


def gpu_present():
    return shutil.which("nvidia-smi") is not None and subprocess.run(
        ["nvidia-smi", "-L"], capture_output=True).returncode == 0


def metrics(port):
    text = urllib.request.urlopen("http://127.0.0.1:%d/metrics" % port, timeout=5).read().decode()
    out = {}
    for key in ("fleetgate_model_batch_size_sum", "fleetgate_model_batch_size_count",
                "fleetgate_model_queue_rejected_total", "fleetgate_model_inference_seconds_sum"):
        m = re.search(r"^%s\{[^}]*\} (\S+)$" % key, text, re.M)
        out[key] = float(m.group(1)) if m else 0.0
    return out


def start(argv, log, env=None):
    f = open(log, "ab")
    p = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=f, stderr=subprocess.STDOUT,
                         start_new_session=True, preexec_fn=common.die_with_parent, env=env)
    f.close()
    return p


def stop(p):
    if p.poll() is None:
        p.terminate()
        try:
            p.wait(10)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()


def one_run(a, device, batch, work, body, per_request, conns, streams):
    model_port, gw_port = common.pick_ports(2)
    procs = []
    try:
        ms = start([a.model_server, "--model", a.model, "--listen", "127.0.0.1:%d" % model_port,
                    "--device", device, "--max-batch", str(batch), "--max-delay-us",
                    str(a.max_delay_us), "--threads", str(a.threads),
                    "--max-queue", str(max(4096, batch))],
                   os.path.join(work, "model-%s-%d.log" % (device, batch)))
        procs.append(ms)
        cfg = os.path.join(work, "gw-%d.json" % gw_port)
        with open(cfg, "w") as f:
            json.dump({"workers": 1, "listeners": [{"address": "127.0.0.1:%d" % gw_port}],
                       "upstreams": {"m": {"backends": [{"address": "127.0.0.1:%d" % model_port}]}},
                       "routes": [{"match": {"path_prefix": "/"}, "upstream": "m"}]}, f)
        gw = start([a.fleetgate, "-c", cfg], os.path.join(work, "fleetgate.log"))
        procs.append(gw)
        if not common.wait_port(model_port, 10, ms) or not common.wait_port(gw_port, 10, gw):
            raise RuntimeError("a daemon did not start (logs in %s)" % work)
        url = "http://127.0.0.1:%d/v2/models/digits/infer" % gw_port
        # warm-up: a few requests so that connections and pools exist
        subprocess.run(["h2load", "-n", "200", "-c", "4", "-m", "4", "-d", body, url],
                       capture_output=True, timeout=30)
        before, cpu0 = metrics(model_port), common.cpu_seconds([ms.pid])
        logf = os.path.join(work, "h2load-%s-%d.log" % (device, batch))
        h = subprocess.run(["h2load", "-t", "1", "-c", str(conns), "-m", str(streams),
                            "-D", "%dms" % round(a.duration * 1000), "--log-file", logf,
                            "-d", body, url], capture_output=True, text=True,
                           timeout=a.duration + 60)
        after, cpu1 = metrics(model_port), common.cpu_seconds([ms.pid])
        out = h.stdout
        m = re.search(r"finished in ([\d.]+)(m?s), ([\d.]+) req/s", out)
        r = re.search(r"requests: (\d+) total, (\d+) started, (\d+) done, (\d+) succeeded, (\d+) failed", out)
        sc = re.search(r"status codes: (\d+) 2xx, (\d+) 3xx, (\d+) 4xx, (\d+) 5xx", out)
        if not m or not r:
            raise RuntimeError("h2load said: " + out[-400:] + h.stderr[-400:])
        lat = latency_from_log(logf) or {}
        items = after["fleetgate_model_batch_size_sum"] - before["fleetgate_model_batch_size_sum"]
        batches = after["fleetgate_model_batch_size_count"] - before["fleetgate_model_batch_size_count"]
        infer_s = after["fleetgate_model_inference_seconds_sum"] - before["fleetgate_model_inference_seconds_sum"]
        succeeded = int(sc.group(1)) if sc else int(r.group(4))
        return {
            "device": device, "max_batch": batch, "images_per_request": per_request,
            "connections": conns, "streams": streams,
            "requests_per_s": float(m.group(3)),
            "inferences_per_s": round(float(m.group(3)) * per_request, 1),
            "succeeded": succeeded, "failed": int(r.group(5)) + (int(r.group(4)) - succeeded),
            "mean_ms": lat.get("mean_ms"), "p99_ms": lat.get("p99_ms"),
            "mean_batch": round(items / batches, 2) if batches else None,
            "engine_us_per_item": round(infer_s * 1e6 / items, 2) if items else None,
            "model_cpu_us_per_item": round((cpu1 - cpu0) * 1e6 / items, 1) if items else None,
        }
    finally:
        for p in reversed(procs):
            stop(p)


def table(rows):
    lines = ["| device | max batch | images per request | h2load -c × -m | inferences/s | mean batch | latency mean ms | p99 ms | engine µs/item | model server CPU µs/item | failed |",
             "|---|---:|---:|---|---:|---:|---:|---:|---:|---:|---:|"]
    for r in rows:
        lines.append("| %s | %d | %d | %d × %d | %.0f | %s | %s | %s | %s | %s | %d |" % (
            r["device"], r["max_batch"], r["images_per_request"], r["connections"], r["streams"],
            r["inferences_per_s"], r["mean_batch"], r["mean_ms"],
            r["p99_ms"], r["engine_us_per_item"], r["model_cpu_us_per_item"], r["failed"]))
    return "\n".join(lines)


def update_docs(path, text):
    begin, end = "<!-- bench:model:begin -->", "<!-- bench:model:end -->"
    with open(path) as f:
        doc = f.read()
    if begin not in doc or end not in doc:
        common.log("%s has no %s/%s markers: not updated" % (path, begin, end))
        return
    i, j = doc.index(begin) + len(begin), doc.index(end)
    with open(path, "w") as f:
        f.write(doc[:i] + "\n" + text + "\n" + doc[j:])


def main(argv):
    a = parse_args(argv)
    devices = ["cpu"] + (["gpu"] if gpu_present() else []) if a.devices == "auto" else a.devices.split(",")
    work = tempfile.mkdtemp(prefix="fleetgate-bench-model.")
    with open(os.path.join(TOP, "tests", "data", "digits-test.csv")) as f:
        imgs = [[int(x) for x in l.split(",")][:64] for l in f if l.strip() and not l.startswith("#")]

    def body_of(n):
        path = os.path.join(work, "images-%d.json" % n)
        data = [p for i in range(n) for p in imgs[i % len(imgs)]]
        with open(path, "w") as f:
            json.dump({"inputs": [{"name": "input", "shape": [n, 8, 8], "datatype": "UINT8",
                                   "data": data}], "outputs": [{"name": "label"}]}, f)
        return path

    rows = []
    try:
        for dev in devices:
            # dynamic batching: one image per request, the server batches
            for b in a.batches:
                rows.append(one_run(a, dev, b, work, body_of(1), 1, a.connections, a.streams))
            # client batches: b images per request, so JSON and HTTP are paid once per b
            for b in a.batches:
                if b > 1:
                    rows.append(one_run(a, dev, b, work, body_of(b), b, max(1, a.connections // 8), 1))
    finally:
        for row in rows:
            common.log("%s max_batch %d, %d per request: %.0f inferences/s, mean batch %s, p99 %s ms, failed %d"
                       % (row["device"], row["max_batch"], row["images_per_request"], row["inferences_per_s"],
                          row["mean_batch"], row["p99_ms"], row["failed"]))
        if not os.environ.get("BENCH_KEEP"):
            shutil.rmtree(work, ignore_errors=True)
    os.makedirs(a.out, exist_ok=True)
    meta = {"command": a.command, "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
            "machine": common.machine(), "connections": a.connections, "streams": a.streams,
            "duration_s": a.duration, "max_delay_us": a.max_delay_us, "threads": a.threads}
    with open(os.path.join(a.out, "results.json"), "w") as f:
        json.dump({"meta": meta, "results": rows}, f, indent=1)
    with open(os.path.join(a.out, "results.csv"), "w") as f:
        keys = list(rows[0].keys()) if rows else []
        f.write(",".join(keys) + "\n")
        for r in rows:
            f.write(",".join("" if r[k] is None else str(r[k]) for k in keys) + "\n")
    mc = meta["machine"]
    where = "%s, %s CPUs, Debian %s, kernel %s" % (mc["cpu_model"], mc["nproc"], mc["debian"], mc["kernel"])
    text = ("`%s` — %s, %s; %.0f s per run through fleetgate (1 worker) to fleetgate-model "
            "(digits v1, %d batch thread, --max-delay-us %d); nothing pinned. First one image "
            "per request (the server batches), then as many images per request as the batch.\n\n%s" % (
                a.command, meta["date"], where, a.duration, a.threads, a.max_delay_us, table(rows)))
    print(text)
    if a.docs:
        update_docs(a.docs, text)
    return 0 if all(r["failed"] == 0 and r["succeeded"] > 0 for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
