#!/usr/bin/env python3
"""Writes the seed corpus of fuzz_nvme_cmd (fuzz/corpus/nvme_cmd/): NVMe-style commands (64 bytes,
little-endian, the layout in include/opensrd/nvme_queue.h) followed by data-area bytes (dataset
management ranges), one of each opcode plus near misses. Usage: fuzz/nvme_corpus.py [DIR]"""
import hashlib
import os
import struct
import sys

out = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(__file__), "corpus", "nvme_cmd")
os.makedirs(out, exist_ok=True)


def cmd(op, cid=1, nsid=1, off=0, dlen=4096, slba=0, cdw12=7, cdw10=None, cdw11=None):
    lo = slba & 0xFFFFFFFF if cdw10 is None else cdw10
    hi = slba >> 32 if cdw11 is None else cdw11
    return struct.pack("<BBHIQQQQIIIIII", op, 0, cid, nsid, 0, 0, off, dlen, lo, hi, cdw12, 0, 0, 0)


seeds = [cmd(2), cmd(1, cdw12=7 | (1 << 30)), cmd(0), cmd(8, cdw12=15 | (1 << 25)), cmd(8, cdw12=3),
         cmd(9, off=0, dlen=32, cdw10=1, cdw11=4) + struct.pack("<IIQIIQ", 0, 8, 16, 0, 8, 100),
         cmd(9, off=0, dlen=16, cdw10=0, cdw11=0) + struct.pack("<IIQ", 0, 8, 16),
         cmd(2, slba=8190, cdw12=7), cmd(1, nsid=2), cmd(0x7F), cmd(2, off=1 << 40),
         cmd(1, cdw12=0xFFFF) + b"\0" * 64]
for s in seeds:
    with open(os.path.join(out, hashlib.sha1(s).hexdigest()), "wb") as f:
        f.write(s)
print(f"{len(seeds)} seeds in {out}")
