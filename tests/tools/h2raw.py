"""A raw HTTP/2 client (prior knowledge, cleartext) for the end-to-end tests
that must control frames and their timing: what curl and h2load cannot do
(send a body a few bytes at a time, stall, reset one stream of many).

    import sys; sys.path.insert(0, TOOLS_DIR); import h2raw
    c = h2raw.Conn(port)
    sid = c.request("/echo", method="POST", end_stream=False,
                    extra=[("content-length", "100")])
    c.data(sid, b"x" * 10)
    c.pump(5, until=lambda: sid in c.ended or sid in c.rst)
    c.status[sid], c.body[sid], c.rst.get(sid), c.goaway

HPACK is written without Huffman coding and without the dynamic table;
the responses' headers are decoded only as far as :status (the static
table, or a literal the gateway may Huffman-code: digits only). The client
gives its windows back as DATA arrives, so a response is never stalled on
it. Debian's python3, standard library only."""
import socket
import struct
import time

PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
DATA, HEADERS, PRIORITY, RST_STREAM, SETTINGS, PUSH_PROMISE, PING, GOAWAY, \
    WINDOW_UPDATE, CONTINUATION = range(10)
F_END_STREAM = F_ACK = 0x1
F_END_HEADERS = 0x4
CANCEL = 8


def frame(t, flags, sid, payload=b""):
    return (struct.pack(">I", len(payload))[1:] + bytes([t, flags]) +
            struct.pack(">I", sid & 0x7fffffff) + payload)


def hpack_int(v, bits, first=0):
    """An HPACK integer with a BITS-bit prefix, FIRST in the high bits."""
    m = (1 << bits) - 1
    if v < m:
        return bytes([first | v])
    out = [first | m]
    v -= m
    while v >= 128:
        out.append((v & 127) | 128)
        v >>= 7
    out.append(v)
    return bytes(out)


def hpack_str(s):
    """An HPACK string literal, not Huffman-coded."""
    if isinstance(s, str):
        s = s.encode("latin-1")
    return hpack_int(len(s), 7) + s


def literal(name, value):
    """A header field, literal without indexing, new name."""
    return b"\x00" + hpack_str(name) + hpack_str(value)


_STATIC_STATUS = {8: 200, 9: 204, 10: 206, 11: 304, 12: 400, 13: 404, 14: 500}
_HUFF_DIGITS = {"00000": "0", "00001": "1", "00010": "2", "011001": "3", "011010": "4",
                "011011": "5", "011100": "6", "011101": "7", "011110": "8", "011111": "9"}


def _dec_int(b, i, bits):
    m = (1 << bits) - 1
    v = b[i] & m
    i += 1
    if v < m:
        return v, i
    shift = 0
    while True:
        c = b[i]
        i += 1
        v += (c & 127) << shift
        shift += 7
        if not c & 128:
            return v, i


def _dec_str(b, i):
    huff = b[i] & 0x80
    n, i = _dec_int(b, i, 7)
    s = bytes(b[i:i + n])
    i += n
    if not huff:
        return s.decode("latin-1"), i
    bits, out, cur = "".join(format(c, "08b") for c in s), "", ""
    for bit in bits:
        cur += bit
        if cur in _HUFF_DIGITS:
            out += _HUFF_DIGITS[cur]
            cur = ""
    return out, i


def parse_status(block):
    """:status of a response head (it comes first), or -1."""
    i = 0
    try:
        while i < len(block):
            c = block[i]
            if c & 0x80:
                idx, i = _dec_int(block, i, 7)
                return _STATIC_STATUS.get(idx, -1)
            if c & 0xe0 == 0x20:            # dynamic table size update
                _, i = _dec_int(block, i, 5)
                continue
            idx, i = _dec_int(block, i, 6 if c & 0x40 else 4)
            if idx == 0:
                _, i = _dec_str(block, i)
            v, i = _dec_str(block, i)
            return int(v)
    except (IndexError, ValueError):
        pass
    return -1


class Conn:
    """One connection. status/body/rst are by stream id; ended holds the
    streams whose response ended (END_STREAM); goaway is (last stream id,
    error code) once one came; closed says the gateway closed the socket."""

    def __init__(self, port, host="127.0.0.1"):
        self.s = socket.create_connection((host, port), timeout=5)
        self.s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.t0 = time.monotonic()
        self.buf = bytearray()
        self.next_sid = 1
        self.status, self.body, self.rst, self.ended = {}, {}, {}, set()
        self.goaway = None
        self.closed = False
        self.send(PREFACE + frame(SETTINGS, 0, 0))

    def elapsed(self):
        return time.monotonic() - self.t0

    def send(self, data):
        try:
            self.s.sendall(data)
            return True
        except OSError:
            return False

    def request(self, path, method="GET", end_stream=True, extra=()):
        """Sends a request head on a new stream; returns its id."""
        sid, self.next_sid = self.next_sid, self.next_sid + 2
        block = b"".join(literal(n, v) for n, v in
                         [(":method", method), (":scheme", "http"), (":path", path),
                          (":authority", "h2raw.test")] + list(extra))
        flags = F_END_HEADERS | (F_END_STREAM if end_stream else 0)
        self.send(frame(HEADERS, flags, sid, block))
        return sid

    def data(self, sid, payload, end_stream=False):
        return self.send(frame(DATA, F_END_STREAM if end_stream else 0, sid, payload))

    def reset(self, sid, code=CANCEL):
        return self.send(frame(RST_STREAM, 0, sid, struct.pack(">I", code)))

    def done(self, sid):
        return sid in self.ended or sid in self.rst or self.closed

    def pump(self, secs, until=None):
        """Reads frames for up to SECS seconds, or until until() is true
        (checked after every read); returns whether it became true."""
        end = time.monotonic() + secs
        while not self.closed:
            if until and until():
                return True
            left = end - time.monotonic()
            if left <= 0:
                break
            self.s.settimeout(min(left, 0.1))
            try:
                d = self.s.recv(262144)
            except socket.timeout:
                continue
            except OSError:
                d = b""
            if not d:
                self.closed = True
                break
            self.buf += d
            self._parse()
        return bool(until and until())

    def _parse(self):
        b, i = self.buf, 0
        while len(b) - i >= 9:
            n = int.from_bytes(b[i:i + 3], "big")
            if len(b) - i < 9 + n:
                break
            t, fl = b[i + 3], b[i + 4]
            sid = int.from_bytes(b[i + 5:i + 9], "big") & 0x7fffffff
            self._frame(t, fl, sid, bytes(b[i + 9:i + 9 + n]))
            i += 9 + n
        del b[:i]

    def _frame(self, t, fl, sid, p):
        if t == HEADERS and sid not in self.status:
            self.status[sid] = parse_status(p)
        elif t == DATA:
            self.body[sid] = self.body.get(sid, b"") + p
            if p:                            # the windows back at once
                inc = struct.pack(">I", len(p))
                self.send(frame(WINDOW_UPDATE, 0, 0, inc) + frame(WINDOW_UPDATE, 0, sid, inc))
        elif t == RST_STREAM:
            self.rst[sid] = int.from_bytes(p[:4], "big")
        elif t == GOAWAY:
            self.goaway = (int.from_bytes(p[:4], "big") & 0x7fffffff,
                           int.from_bytes(p[4:8], "big"))
        elif t == SETTINGS and not fl & F_ACK:
            self.send(frame(SETTINGS, F_ACK, 0))
        elif t == PING and not fl & F_ACK:
            self.send(frame(PING, F_ACK, 0, p))
        if t in (HEADERS, DATA) and fl & F_END_STREAM:
            self.ended.add(sid)

    def close(self):
        self.s.close()
