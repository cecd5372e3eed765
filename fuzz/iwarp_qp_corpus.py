#!/usr/bin/env python3
"""Writes the seed corpus of fuzz/iwarp_qp_fuzz.cc to fuzz/corpus/iwarp_qp: TCP streams as a
Linux siw peer would send them (MPA v2 request or reply with the RFC 6581 word, the RTR, then
SEND, WRITE, READ request, READ response and TERMINATE FPDUs with CRC32C). Built from the RFC
layouts here, independently of the C++ encoders. Deterministic. Usage: fuzz/iwarp_qp_corpus.py"""
import hashlib
import os
import struct


def crc32c(data):
    crc = 0xFFFFFFFF
    for b in data:
        crc ^= b
        for _ in range(8):
            crc = (crc >> 1) ^ (0x82F63B78 if crc & 1 else 0)
    return crc ^ 0xFFFFFFFF


def start(reply, pd=b"", enhanced=True, rev=2, ird=0x8010, ord_=0xC010):
    key = b"MPA ID Rep Frame" if reply else b"MPA ID Req Frame"
    flags = 0x40 | (0x10 if enhanced else 0)
    body = (struct.pack(">HH", ird, ord_) if enhanced else b"") + pd
    return key + bytes([flags, rev]) + struct.pack(">H", len(body)) + body


def fpdu(ulpdu):
    pad = (4 - (2 + len(ulpdu)) % 4) % 4
    f = struct.pack(">H", len(ulpdu)) + ulpdu + b"\0" * pad
    return f + struct.pack("<I", crc32c(f))


def tagged(op, stag, to, data=b"", last=True):
    return bytes([0x80 | (0x40 if last else 0) | 1, 0x40 | op]) + struct.pack(">IQ", stag, to) + data


def untagged(op, qn, msn, mo=0, data=b"", last=True):
    return bytes([(0x40 if last else 0) | 1, 0x40 | op]) + struct.pack(">IIII", 0, qn, msn, mo) + data


def read_req(msn, sink, sink_to, size, src, src_to):
    return untagged(1, 1, msn) + struct.pack(">IQIIQ", sink, sink_to, size, src, src_to)


def term(layer, etype, code):
    return untagged(7, 2, 1) + bytes([layer << 4 | etype, code, 0, 0])


RTR = fpdu(tagged(0, 0, 0))
seeds = {
    "req_send": [0x0E, start(False, b"hi") + RTR + fpdu(untagged(3, 0, 1, data=b"hello"))],
    "req_send_split": [0x00, start(False) + RTR
                       + fpdu(untagged(3, 0, 1, 0, b"a" * 100, last=False))
                       + fpdu(untagged(3, 0, 1, 100, b"b" * 50))],
    "req_write": [0x20, start(False) + RTR + fpdu(tagged(0, 0x12345678, 0x1000, b"x" * 64))],
    "req_read": [0x7E, start(False) + RTR + fpdu(read_req(1, 0xAABBCCDD, 0x2000, 128, 0x1, 0x0))],
    "req_read_rtr": [0x10, start(False, ord_=0x4010) + fpdu(read_req(1, 0, 0, 0, 0, 0))],
    "req_rev1": [0x08, start(False, b"v1", enhanced=False, rev=1)
                 + fpdu(untagged(3, 0, 1, data=b"z" * 8))],
    "req_bad_crc": [0x06, start(False) + RTR + fpdu(untagged(3, 0, 1, data=b"q"))[:-1] + b"\0"],
    "rep_read_resp": [0x0F, start(True, b"ok", ord_=0x8010) + fpdu(tagged(2, 0, 0x0, b"r" * 40))],
    "rep_terminate": [0x01, start(True) + fpdu(term(0, 1, 0))],
    "rep_reject": [0x03, b"MPA ID Rep Frame" + bytes([0x60, 2, 0, 0])],
}
out = os.path.join(os.path.dirname(os.path.abspath(__file__)), "corpus", "iwarp_qp")
os.makedirs(out, exist_ok=True)
for name, (mode, stream) in sorted(seeds.items()):
    blob = bytes([mode]) + stream
    with open(os.path.join(out, hashlib.sha1(blob).hexdigest()), "wb") as f:
        f.write(blob)
print(f"iwarp_qp: {len(seeds)} files")
