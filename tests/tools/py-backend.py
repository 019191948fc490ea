#!/usr/bin/python3
"""A small HTTP/1.1 backend for the end-to-end tests whose answers the test
controls (fg-testbackend answers by path only):

  py-backend.py --name NAME --port PORT [--status N | --status-from-path]
                [--flags DIR] [--retry-after VALUE]

Every answer carries "x-backend: NAME", after the request body (length or
chunked) was read. --status N: every answer has status N (default 200);
--status-from-path: the status is the path's last component when it is
three digits ("/x/429"), else 503. --flags DIR: /health answers 503 "down"
while DIR/NAME.down exists, 200 "warming" while DIR/NAME.warm exists, else
200 "ready", and appends one byte to DIR/NAME.checks per check.
--retry-after VALUE: 503 and 429 answers carry "Retry-After: VALUE".
Every request but health checks appends one byte to DIR/NAME.requests
when --flags is given. A query "ms=N" delays the answer N milliseconds
(the path without its query decides the status). A path ending in
/tokens/N answers an OpenAI-style JSON body whose usage.total_tokens is N;
/sse-tokens/N the same as a Server-Sent-Events stream whose last event
before [DONE] carries the usage.
Answers go out in one write with Nagle off (no delayed-ACK stalls).
Debian's python3, standard library only."""
import argparse
import http.server
import os
import re
import time

a = argparse.ArgumentParser()
a.add_argument("--name", required=True)
a.add_argument("--port", type=int, required=True)
a.add_argument("--status", type=int, default=200)
a.add_argument("--status-from-path", action="store_true")
a.add_argument("--flags")
a.add_argument("--retry-after")
opt = a.parse_args()


class H(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    wbufsize = 65536
    disable_nagle_algorithm = True

    def read_body(self):
        if self.headers.get("transfer-encoding", "").lower() == "chunked":
            while True:
                size = int(self.rfile.readline().split(b";")[0], 16)
                self.rfile.read(size + 2)
                if size == 0:
                    return
        n = int(self.headers.get("content-length") or 0)
        if n:
            self.rfile.read(n)

    def answer(self):
        self.read_body()
        code, body = opt.status, b'{"backend":"%s"}' % opt.name.encode()
        path, _, query = self.path.partition("?")
        m = re.search(r"(?:^|&)ms=(\d+)", query)
        if m:
            time.sleep(int(m.group(1)) / 1000)
        ctype = None
        m = re.search(r"/(sse-)?tokens/(\d+)$", path)
        if m:
            n = int(m.group(2))
            usage = b'"usage":{"prompt_tokens":1,"completion_tokens":%d,"total_tokens":%d}' % (n - 1, n)
            if m.group(1):
                ctype = "text/event-stream"
                body = (b'data: {"choices":[{"delta":{"content":"\\"total_tokens\\": 99999"}}]}\n\n'
                        b'data: {"choices":[],' + usage + b'}\n\n' + b'data: [DONE]\n\n')
            else:
                ctype = "application/json"
                body = b'{"id":"x","choices":[{"message":{"content":"hi"}}],' + usage + b'}'
        if opt.status_from_path and not ctype:
            m = re.search(r"/(\d{3})$", path)
            code = int(m.group(1)) if m else 503
        if opt.flags and self.path == "/health":
            flag = os.path.join(opt.flags, opt.name)
            with open(flag + ".checks", "a") as f:
                f.write("x")
            if os.path.exists(flag + ".down"):
                code, body = 503, b"down"
            elif os.path.exists(flag + ".warm"):
                code, body = 200, b"warming"
            else:
                code, body = 200, b"ready"
        elif opt.flags:
            with open(os.path.join(opt.flags, opt.name) + ".requests", "a") as f:
                f.write("x")
        self.send_response(code)
        self.send_header("x-backend", opt.name)
        if ctype:
            self.send_header("content-type", ctype)
        if opt.retry_after and code in (429, 503):
            self.send_header("retry-after", opt.retry_after)
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_GET = do_POST = do_PUT = do_DELETE = answer

    def log_message(self, *args):
        pass


http.server.ThreadingHTTPServer(("127.0.0.1", opt.port), H).serve_forever()
