"""What bench/run and bench/idle share: ports, the certificate, the daemons
(two nginx backends, fleetgate, HAProxy, nginx as a proxy) on 127.0.0.1, and
the /proc readings (CPU time, RSS) of a target's processes.

Debian's python3, standard library only. Every process is started here by
Popen, recorded, and stopped by its PID (SIGTERM, then SIGKILL) by
Daemons.stop_all(), which the drivers call from a finally block and from
their SIGTERM/SIGINT handlers.
"""
import grp
import json
import os
import pwd
import random
import shutil
import signal
import socket
import string
import subprocess
import sys
import time

LIB = os.path.dirname(os.path.abspath(__file__))
TOP = os.path.dirname(os.path.dirname(LIB))
CLK_TCK = os.sysconf("SC_CLK_TCK")
PAGE_KIB = os.sysconf("SC_PAGE_SIZE") // 1024

# The request every benchmark sends; the backends answer it with 175 bytes of JSON.
PATH = "/v2/models/stand-in/ready"


def log(msg):
    sys.stderr.write("bench: %s\n" % msg)
    sys.stderr.flush()


class Template(string.Template):
    # '$' belongs to nginx (variables) and HAProxy; the templates use '@name'
    delimiter = "@"


def render(name, out, **values):
    with open(os.path.join(LIB, name)) as f:
        text = Template(f.read()).substitute(values)
    with open(out, "w") as f:
        f.write(text)
    return out


# ---- ports ------------------------------------------------------------------

_used_ports = set()


def pick_ports(n):
    """n free TCP ports on 127.0.0.1, outside the kernel's ephemeral range (so
    that the load generator's own connections never take one), at random (so
    that runs in parallel, e.g. under make check, rarely collide)."""
    try:
        with open("/proc/sys/net/ipv4/ip_local_port_range") as f:
            lo, hi = (int(x) for x in f.read().split())
    except OSError:
        lo, hi = 32768, 60999
    ranges = []
    if lo > 12000:
        ranges.append((10000, lo - 1))
    if hi < 63000:
        ranges.append((hi + 1, 65535))
    if not ranges:
        ranges = [(1025, 65535)]
    rnd = random.SystemRandom()
    out = []
    for _ in range(100 * n):
        if len(out) == n:
            break
        a, b = rnd.choice(ranges)
        p = rnd.randint(a, b)
        if p in _used_ports:
            continue
        s = socket.socket()
        try:
            s.bind(("127.0.0.1", p))
        except OSError:
            continue
        finally:
            s.close()
        _used_ports.add(p)
        out.append(p)
    if len(out) != n:
        raise RuntimeError("no free ports")
    return out


def wait_port(port, secs, proc=None):
    """True once 127.0.0.1:port accepts a connection (within secs)."""
    end = time.monotonic() + secs
    while time.monotonic() < end:
        if proc is not None and proc.poll() is not None:
            return False
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return True
        except OSError:
            time.sleep(0.05)
    return False


# ---- TLS --------------------------------------------------------------------

def make_cert(d):
    """One self-signed ECDSA P-256 certificate for 127.0.0.1, used by every
    TLS listener of the run. Returns (cert, key, cert+key PEM for HAProxy)."""
    cert, key, pem = (os.path.join(d, n) for n in ("cert.pem", "key.pem", "combined.pem"))
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                    "ec_paramgen_curve:prime256v1", "-nodes", "-days", "7",
                    "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
                    "-keyout", key, "-out", cert],
                   check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    with open(pem, "w") as f:
        f.write(open(cert).read() + open(key).read())
    return cert, key, pem


# ---- /proc --------------------------------------------------------------------

def children(pid):
    """PIDs whose parent is pid (nginx's workers under its master)."""
    out = []
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open("/proc/%s/stat" % d) as f:
                st = f.read()
        except OSError:
            continue
        if int(st[st.rindex(")") + 2:].split()[1]) == pid:
            out.append(int(d))
    return out


def cpu_split(pids):
    """(utime, stime) of the processes (all their threads), in seconds."""
    user = system = 0
    for pid in pids:
        try:
            with open("/proc/%d/stat" % pid) as f:
                st = f.read()
        except OSError:
            continue
        fields = st[st.rindex(")") + 2:].split()
        user += int(fields[11])                         # fields 14 and 15 of stat(5)
        system += int(fields[12])
    return user / CLK_TCK, system / CLK_TCK


def cpu_seconds(pids):
    """utime + stime of the processes (all their threads), in seconds."""
    return sum(cpu_split(pids))


def status_kib(pids, key):
    """Sum of a /proc/PID/status field given in kB (VmRSS, VmHWM) over pids."""
    total = 0
    for pid in pids:
        try:
            with open("/proc/%d/status" % pid) as f:
                for line in f:
                    if line.startswith(key + ":"):
                        total += int(line.split()[1])
        except OSError:
            pass
    return total


def reset_peak_rss(pids):
    """Reset VmHWM to the current RSS (clear_refs "5", Linux >= 4.0), so that a
    run's peak is its own; False where that is not allowed."""
    ok = True
    for pid in pids:
        try:
            with open("/proc/%d/clear_refs" % pid, "w") as f:
                f.write("5")
        except OSError:
            ok = False
    return ok


def cpu_busy():
    """Per-CPU (busy, total) jiffies from /proc/stat."""
    out = {}
    with open("/proc/stat") as f:
        for line in f:
            if line.startswith("cpu") and line[3].isdigit():
                p = line.split()
                v = [int(x) for x in p[1:]]
                idle = v[3] + (v[4] if len(v) > 4 else 0)
                out[p[0]] = (sum(v[:8]) - idle, sum(v[:8]))
    return out


def busy_fraction(a, b):
    return {k: round((b[k][0] - a[k][0]) / max(1, b[k][1] - a[k][1]), 3) for k in b if k in a}


# ---- machine and versions ------------------------------------------------------

def first_line(argv):
    try:
        r = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=10)
        return r.stdout.strip().splitlines()[0] if r.stdout.strip() else "?"
    except Exception:
        return "?"


def machine():
    model = "?"
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem = status_line("/proc/meminfo", "MemTotal")
    debian = "?"
    try:
        debian = open("/etc/debian_version").read().strip()
    except OSError:
        pass
    return {"nproc": os.cpu_count(), "online_cpus": len(os.sched_getaffinity(0)),
            "cpu_model": model, "kernel": os.uname().release, "debian": debian,
            "mem_total": mem}


def status_line(path, key):
    try:
        for line in open(path):
            if line.startswith(key + ":"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return "?"


def source_tree():
    """The commit of the source tree this runs from, "+changes" if modified."""
    try:
        r = subprocess.run(["git", "-C", TOP, "describe", "--always", "--dirty=+changes"],
                           stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, timeout=10)
        return r.stdout.strip() or "?"
    except Exception:
        return "?"


def versions(fleetgate):
    return {"fleetgate": first_line([fleetgate, "-v"]) + " (source tree %s)" % source_tree(),
            "haproxy": first_line(["haproxy", "-v"]),
            "nginx": first_line(["nginx", "-v"]),
            "h2load": first_line(["h2load", "--version"]),
            "openssl": first_line(["openssl", "version"])}


# ---- daemons --------------------------------------------------------------------

def user_line():
    # As root, nginx's workers would run as nobody and could not read the
    # private (mode 700) work directory: keep them as the caller, as
    # scripts/nginx-backend.sh does.
    if os.getuid() != 0:
        return ""
    return "user %s %s;" % (pwd.getpwuid(os.getuid()).pw_name, grp.getgrgid(os.getgid()).gr_name)


def nofile():
    import resource
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


def die_with_parent():
    """In the child before exec: SIGTERM when the driver dies, even by SIGKILL
    (prctl PR_SET_PDEATHSIG), so that no daemon outlives a run."""
    try:
        import ctypes
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM, 0, 0, 0)
    except Exception:
        pass


class Target:
    """One thing h2load is pointed at: its URLs per protocol and the PIDs whose
    CPU time and memory count as its own."""

    def __init__(self, name, proc, urls, label):
        self.name = name
        self.proc = proc
        self.urls = urls            # protocol -> URL ("h1", "h2c", "h2")
        self.label = label

    def pids(self):
        if self.proc.poll() is not None:
            return []
        return [self.proc.pid] + children(self.proc.pid)

    def alive(self):
        return self.proc.poll() is None


class Daemons:
    """Starts the backends and the proxies; remembers every process."""

    def __init__(self, workdir, fleetgate, workers=1, proxy_cpus=None, idle_timeout_s=60,
                 backend_cpus=None):
        self.dir = workdir
        self.fleetgate = fleetgate
        self.workers = workers
        self.proxy_cpus = proxy_cpus          # e.g. "0", or None for no pinning
        self.backend_cpus = backend_cpus      # None: the scheduler places them
        self.idle_timeout_s = idle_timeout_s
        self.procs = []                       # (name, Popen)
        self.logs = os.path.join(workdir, "logs")
        os.makedirs(self.logs, exist_ok=True)
        self.cert, self.key, self.pem = make_cert(workdir)
        self.backend_ports = []
        self.direct = None

    def _start(self, name, argv, pin, ready_port):
        """pin: True for a proxy, False for a backend."""
        cpus = self.proxy_cpus if pin else self.backend_cpus
        if cpus is not None:
            argv = ["taskset", "-c", cpus] + argv
        logf = open(os.path.join(self.logs, name + ".log"), "ab")
        p = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=logf, stderr=subprocess.STDOUT,
                             cwd=self.dir, start_new_session=True, preexec_fn=die_with_parent)
        logf.close()
        self.procs.append((name, p))
        if not wait_port(ready_port, 15, p):
            tail = open(os.path.join(self.logs, name + ".log"), errors="replace").read()[-1500:]
            raise RuntimeError("%s did not start (listening on %d): %s" % (name, ready_port, tail))
        return p

    def _nginx(self, name, template, ready_port, pin, **values):
        d = os.path.join(self.dir, name)
        os.makedirs(os.path.join(d, "tmp"), exist_ok=True)
        n = nofile()
        conf = render(template, os.path.join(d, "nginx.conf"), dir=d, user_line=user_line(),
                      nofile=n, worker_connections=max(1024, n - 200),
                      cert=self.cert, key=self.key, **values)
        # -e: the error log before the configuration is read (not /var/log)
        return self._start(name, ["nginx", "-e", os.path.join(d, "error.log"), "-p", d, "-c", conf],
                           pin, ready_port)

    def start_backends(self):
        """Two nginx backends, each its own master and one worker, on
        backend_cpus (default: not pinned, the scheduler places them). The first one also serves h2c and h2 over
        TLS on two more ports, for the direct baseline."""
        b1, b2, b1_h2c, b1_tls = pick_ports(4)
        self.backend_ports = [b1, b2]
        extra = "listen 127.0.0.1:%d http2;\n        listen 127.0.0.1:%d ssl http2;" % (b1_h2c, b1_tls)
        p1 = self._nginx("backend1", "nginx-backend.conf.in", b1, False, port=b1, extra_listens=extra)
        self._nginx("backend2", "nginx-backend.conf.in", b2, False, port=b2, extra_listens="")
        for port in (b1_h2c, b1_tls):
            if not wait_port(port, 5):
                raise RuntimeError("backend1 does not listen on %d" % port)
        self.direct = Target("direct", p1, {"h1": "http://127.0.0.1:%d" % b1,
                                            "h2c": "http://127.0.0.1:%d" % b1_h2c,
                                            "h2": "https://127.0.0.1:%d" % b1_tls},
                             "direct to backend 1 (its own nginx; h2c and h2 terminated by that nginx)")
        return self.direct

    def start_fleetgate(self, max_connections=4000):
        # max_connections as HAProxy's maxconn: left automatic it would be
        # half the descriptor limit, which depends on the machine
        clear, tls = pick_ports(2)
        b1, b2 = self.backend_ports
        cfg = render("fleetgate.json.in", os.path.join(self.dir, "fleetgate.json"),
                     workers=self.workers, port_clear=clear, port_tls=tls, cert=self.cert,
                     key=self.key, b1=b1, b2=b2, idle_timeout_ms=self.idle_timeout_s * 1000,
                     max_connections=max_connections)
        json.load(open(cfg))
        p = self._start("fleetgate", [self.fleetgate, "-c", cfg], True, clear)
        wait_port(tls, 5, p)
        return Target("fleetgate", p, {"h1": "http://127.0.0.1:%d" % clear,
                                       "h2c": "http://127.0.0.1:%d" % clear,
                                       "h2": "https://127.0.0.1:%d" % tls}, "fleetgate")

    def start_haproxy(self, maxconn=4000):
        clear, tls = pick_ports(2)
        b1, b2 = self.backend_ports
        cfg = render("haproxy.cfg.in", os.path.join(self.dir, "haproxy.cfg"),
                     workers=self.workers, maxconn=maxconn, port_clear=clear,
                     port_tls=tls, pem=self.pem, b1=b1, b2=b2,
                     idle_timeout_s="%ds" % self.idle_timeout_s)
        # -db: foreground, no master process: the PID is the one process
        p = self._start("haproxy", ["haproxy", "-db", "-f", cfg], True, clear)
        wait_port(tls, 5, p)
        return Target("haproxy", p, {"h1": "http://127.0.0.1:%d" % clear,
                                     "h2c": "http://127.0.0.1:%d" % clear,
                                     "h2": "https://127.0.0.1:%d" % tls}, "HAProxy")

    def start_nginx_proxy(self):
        h1, h2c, tls = pick_ports(3)
        b1, b2 = self.backend_ports
        p = self._nginx("nginx-proxy", "nginx-proxy.conf.in", h1, True, workers=self.workers,
                        port_h1=h1, port_h2c=h2c, port_tls=tls, b1=b1, b2=b2,
                        idle_timeout_s="%ds" % self.idle_timeout_s)
        wait_port(h2c, 5, p)
        wait_port(tls, 5, p)
        return Target("nginx", p, {"h1": "http://127.0.0.1:%d" % h1,
                                   "h2c": "http://127.0.0.1:%d" % h2c,
                                   "h2": "https://127.0.0.1:%d" % tls}, "nginx")

    def start(self, name):
        return {"fleetgate": self.start_fleetgate, "haproxy": self.start_haproxy,
                "nginx": self.start_nginx_proxy}[name]()

    def stop(self, target_or_proc, secs=10):
        """SIGTERM one process, SIGKILL after secs; returns its exit status."""
        p = getattr(target_or_proc, "proc", target_or_proc)
        if p.poll() is None:
            try:
                p.send_signal(signal.SIGTERM)
                p.wait(secs)
            except subprocess.TimeoutExpired:
                log("pid %d did not stop within %d s of SIGTERM: SIGKILL" % (p.pid, secs))
                p.kill()
                p.wait()
        self.procs = [(n, q) for n, q in self.procs if q is not p]
        return p.returncode

    def stop_all(self):
        for name, p in reversed(list(self.procs)):
            self.stop(p)


def on_signals(cleanup):
    """SIGTERM/SIGINT/SIGHUP: clean up (stop every daemon by PID) and exit 130."""
    def handler(sig, frame):
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        log("signal %d: stopping" % sig)
        try:
            cleanup()
        finally:
            os._exit(130)
    for s in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(s, handler)


def have(cmd):
    return shutil.which(cmd) is not None
