#!/usr/bin/env python3
"""Writes the seed corpus of fuzz_block_proto (fuzz/corpus/block_proto/): one valid message of
every kind in docs/WIRE.md's "Block protocol", encoded here from the documented layout (not by
the C++ encoder, so the seeds also check the page), plus a few near misses.
Usage: fuzz/block_corpus.py [DIR]"""
import hashlib
import os
import struct
import sys

out = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(__file__), "corpus", "block_proto")
os.makedirs(out, exist_ok=True)
P = lambda t: struct.pack(">HBB", 0x4F42, 1, t)


def io(op, flags=0, off=0, length=4096, data=b""):
    return P(3) + struct.pack(">IQQIBBHQQ", 0x1234, 7, off, length, op, flags, 0, 5 if op == 1 else 0, 0) + data


def named(t, a, b, name=b"vol0", token=b"secret"):
    return P(t) + struct.pack(">HHQQQ", len(name), len(token), 9, a, b) + name + token


seeds = [
    io(0), io(1, data=b"\xab" * 4096), io(1, 1, data=b"\x01" * 512, length=512), io(2, length=0),
    io(3, 0, 8192, 65536), io(4, 2, 0, 1 << 20), io(4, 4, 0, 4096),
    P(4) + struct.pack(">IQB3xIQ", 0x1234, 7, 0, 16, 0) + b"\x00" * 16,
    P(4) + struct.pack(">IQB3xIQ", 0x1234, 7, 2, 0, 0),
    named(1, 0xABCDEF, 0), named(1, 1, 0, b"v", b""),
    P(2) + struct.pack(">IQBBHIQII", 0x55, 9, 0, 0x3E, 0, 4096, 1 << 30, 16384, 1 << 20),
    P(2) + struct.pack(">IQBBHIQII", 0, 9, 7, 0, 11, 0, 0, 0, 0) + b"wrong token",
    named(5, 64 << 20, 0),
    P(6) + struct.pack(">HHQB7xQ", 0, 0, 9, 0, 64 << 20),
    P(6) + struct.pack(">HHQB7xQ", 9, 0, 9, 7, 0) + b"no access",
    P(7) + struct.pack(">IQQ", 0x1234, 1 << 31, 0),
    io(1, data=b"\x00" * 100),  # data shorter than the length
    io(9), P(0), P(8),
]
for s in seeds:
    with open(os.path.join(out, hashlib.sha1(s).hexdigest()), "wb") as f:
        f.write(s)
print(f"{len(seeds)} seeds in {out}")
