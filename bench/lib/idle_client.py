"""Opens N connections to 127.0.0.1:PORT and keeps them idle (for bench/idle).

    idle_client.py MODE PORT N PATH

MODE:
  h1       one HTTP/1.1 keep-alive request per connection, response read whole, then idle
  h2       HTTP/2 with prior knowledge: preface, SETTINGS, ACK of the server's
           SETTINGS, one GET on stream 1 read to its end, then idle
  h2-bare  preface, SETTINGS and the ACK only, then idle

Prints "ready OPENED FAILED SECONDS" once every connection is set up (at most
256 being set up at a time), then waits for a line on stdin, then prints
"alive N" (connections the server has not closed meanwhile) and exits, which
closes them all. Debian's python3, standard library only.
"""
import asyncio
import struct
import sys
import time

PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"


def frame(ftype, flags, stream, payload=b""):
    return struct.pack(">I", len(payload))[1:] + bytes([ftype, flags]) + struct.pack(">I", stream) + payload


def hpack_request(path, authority):
    # :method GET (static 2), :scheme http (static 6), then :path (name 4) and
    # :authority (name 1) as literals without indexing, no Huffman coding
    def lit(idx, value):
        v = value.encode()
        assert len(v) < 127
        return bytes([idx]) + bytes([len(v)]) + v
    return b"\x82\x86" + lit(4, path) + lit(1, authority)


async def read_frame(r):
    head = await r.readexactly(9)
    length = int.from_bytes(head[:3], "big")
    payload = await r.readexactly(length) if length else b""
    return head[3], head[4], int.from_bytes(head[5:9], "big") & 0x7FFFFFFF, payload


async def h2_setup(r, w, port, path, request):
    w.write(PREFACE + frame(0x4, 0, 0))                 # empty SETTINGS
    got_settings = False
    done = not request
    sent_request = False
    while not (got_settings and done):
        ftype, flags, stream, payload = await read_frame(r)
        if ftype == 0x4 and not flags & 0x1:            # SETTINGS: ACK it
            w.write(frame(0x4, 0x1, 0))
            got_settings = True
            if request and not sent_request:
                w.write(frame(0x1, 0x5, 1, hpack_request(path, "127.0.0.1:%d" % port)))
                sent_request = True
        elif ftype == 0x6 and not flags & 0x1:          # PING: answer it
            w.write(frame(0x6, 0x1, 0, payload))
        elif ftype == 0x7:                              # GOAWAY
            raise ConnectionError("GOAWAY")
        elif ftype == 0x3 and stream == 1:              # RST_STREAM
            raise ConnectionError("RST_STREAM")
        elif ftype in (0x0, 0x1) and stream == 1 and flags & 0x1:
            done = True                                 # END_STREAM of our request
        elif ftype == 0x0 and stream == 1 and payload:
            # give the flow-control window back, as a real client would
            inc = struct.pack(">I", len(payload))
            w.write(frame(0x8, 0, 0, inc) + frame(0x8, 0, 1, inc))
    await w.drain()


async def h1_setup(r, w, port, path):
    w.write(("GET %s HTTP/1.1\r\nHost: 127.0.0.1:%d\r\n\r\n" % (path, port)).encode())
    head = await r.readuntil(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    if not lines[0].startswith("HTTP/1.1 200"):
        raise ConnectionError(lines[0])
    n = None
    for line in lines[1:]:
        k, _, v = line.partition(":")
        if k.strip().lower() == "content-length":
            n = int(v)
        if k.strip().lower() == "connection" and v.strip().lower() == "close":
            raise ConnectionError("server closes the connection")
    if n is None:
        raise ConnectionError("no content-length")
    await r.readexactly(n)


async def main():
    mode, port, n, path = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
    sem = asyncio.Semaphore(256)
    conns = []
    failed = [0]
    errors = {}

    async def one():
        async with sem:
            try:
                r, w = await asyncio.wait_for(asyncio.open_connection("127.0.0.1", port), 30)
                if mode == "h1":
                    await asyncio.wait_for(h1_setup(r, w, port, path), 30)
                else:
                    await asyncio.wait_for(h2_setup(r, w, port, path, mode == "h2"), 30)
                conns.append((r, w))
            except Exception as e:
                failed[0] += 1
                k = type(e).__name__ + (": " + str(e) if str(e) else "")
                errors[k] = errors.get(k, 0) + 1

    t0 = time.monotonic()
    await asyncio.gather(*(one() for _ in range(n)))
    print("ready %d %d %.2f" % (len(conns), failed[0], time.monotonic() - t0), flush=True)
    if errors:
        print("errors %s" % "; ".join("%s x%d" % kv for kv in sorted(errors.items())), flush=True)
    loop = asyncio.get_running_loop()
    await loop.run_in_executor(None, sys.stdin.readline)
    await asyncio.sleep(0.1)            # let pending EOFs arrive
    # _eof: the peer closed, whether or not unread bytes remain (at_eof()
    # waits for those to be read)
    alive = sum(1 for r, w in conns if not getattr(r, "_eof", r.at_eof()) and not w.is_closing())
    print("alive %d" % alive, flush=True)
    for r, w in conns:
        w.transport.abort()


if __name__ == "__main__":
    asyncio.run(main())
