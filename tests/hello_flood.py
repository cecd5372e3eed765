#!/usr/bin/env python3
"""Sends N opensrd HELLOs, each with a fresh identity (node id, context, incarnation) and a guessed
cookie, each from a different source address in 127.0.0.0/8, to HOST:PORT: a spoofed-source
HELLO flood as far as loopback allows (the sources are real, but none ever answers the RETRY).
Every 100th source waits briefly for the answer; prints how many answers of each packet type
came back (a server doing address validation answers RETRY, type 8).
Usage: hello_flood.py HOST PORT N"""
import os
import socket
import struct
import sys

# One CRC32C in Python for the project: the corpus builder's.
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "fuzz"))
from corpus_seeds import crc32c  # noqa: E402


def hello(i):
    # Common header (docs/WIRE.md): magic "SD", version 1, type 3 (HELLO), flags, path, reserved,
    # dst_ctx 0, src_ctx, src_incarnation, dst_incarnation 0, tx timestamp.
    common = struct.pack(">HBBBBHIIIII", 0x5344, 1, 3, 0, 0, 0, 0, 1 + i, 0x1000 + i, 0, i)
    ext = struct.pack(">QHHIII", 0xF00D0000 + i, 4, 1400, 1, 0, 8192)
    ext += bytes(16)            # reset token
    ext += bytes([0x5A]) * 24   # a guessed cookie
    body = common + ext
    return body + struct.pack(">I", crc32c(body))


def main():
    host, port, n = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    answers = {}
    sampled = 0
    for i in range(n):
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.bind(("127.%d.%d.%d" % (1 + (i >> 16) % 200, (i >> 8) & 0xFF, 1 + (i & 0xFF) % 254), 0))
        s.sendto(hello(i), (host, port))
        if i % 100 == 0:
            sampled += 1
            s.settimeout(0.2)
            try:
                reply = s.recv(65536)
                kind = reply[3] if len(reply) > 3 else -1
                answers[kind] = answers.get(kind, 0) + 1
            except socket.timeout:
                pass
        s.close()
    print("sampled %d sources; answers by packet type: %s" % (sampled, answers))


if __name__ == "__main__":
    main()
