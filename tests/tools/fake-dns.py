#!/usr/bin/python3
"""A DNS server on loopback for the tests: answers A and AAAA queries (UDP)
from a JSON file read again for every query, so a test changes the answers
by rewriting it:

    {"ttl": 1, "names": {"models.test": {"A": ["127.0.0.2"], "AAAA": ["::1"]}}}

A name not in "names" gets NXDOMAIN; a name without records of the type
asked gets an empty answer (NODATA); {"servfail": true} answers SERVFAIL to
everything. Every query is logged to stdout.

    fake-dns.py --port PORT --records FILE
"""
import argparse
import json
import socket
import struct
import sys


def parse_question(msg):
    labels, i = [], 12
    while msg[i]:
        n = msg[i]
        labels.append(msg[i + 1:i + 1 + n].decode("ascii", "replace"))
        i += 1 + n
    qtype, qclass = struct.unpack("!HH", msg[i + 1:i + 5])
    return ".".join(labels).lower(), qtype, qclass, msg[12:i + 5]


def answer(msg, records):
    qid, flags = struct.unpack("!HH", msg[:4])
    name, qtype, _qclass, question = parse_question(msg)
    rd = flags & 0x0100
    if records.get("servfail"):
        return struct.pack("!HHHHHH", qid, 0x8080 | rd | 2, 1, 0, 0, 0) + question, name, qtype, "SERVFAIL"
    names = {k.lower(): v for k, v in records.get("names", {}).items()}
    if name not in names:
        return struct.pack("!HHHHHH", qid, 0x8480 | rd | 3, 1, 0, 0, 0) + question, name, qtype, "NXDOMAIN"
    kind, family = {1: ("A", socket.AF_INET), 28: ("AAAA", socket.AF_INET6)}.get(qtype, (None, None))
    addrs = names[name].get(kind, []) if kind else []
    ttl = int(records.get("ttl", 1))
    rrs = b""
    for a in addrs:
        data = socket.inet_pton(family, a)
        rrs += struct.pack("!HHHIH", 0xC00C, qtype, 1, ttl, len(data)) + data
    head = struct.pack("!HHHHHH", qid, 0x8480 | rd, 1, len(addrs), 0, 0)
    return head + question + rrs, name, qtype, ",".join(addrs) or "NODATA"


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--records", required=True)
    a = p.parse_args()
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("127.0.0.1", a.port))
    print("listening on 127.0.0.1:%d" % a.port, flush=True)
    while True:
        msg, peer = s.recvfrom(4096)
        if len(msg) < 17:
            continue
        try:
            with open(a.records) as f:
                records = json.load(f)
        except (OSError, ValueError):
            records = {"servfail": True}
        reply, name, qtype, what = answer(msg, records)
        print("%s type %d -> %s" % (name, qtype, what), flush=True)
        s.sendto(reply, peer)


if __name__ == "__main__":
    sys.exit(main())
