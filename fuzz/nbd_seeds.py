#!/usr/bin/env python3
"""Hand-made NBD fuzz seeds, one per rejection path and command, from an encoder written for
the purpose (the protocol's framing per NetworkBlockDevice/nbd doc/proto.md). Each file is the
harness's mode byte (fuzz/nbd_fuzz.cc) followed by client bytes.
Usage: nbd_seeds.py OUT_DIR"""
import os
import struct
import sys

OPT_MAGIC = 0x49484156454F5054
REQ_MAGIC = 0x25609513
(OPT_EXPORT_NAME, OPT_ABORT, OPT_LIST, OPT_STARTTLS, OPT_INFO, OPT_GO, OPT_SR, OPT_LIST_META,
 OPT_SET_META) = (1, 2, 3, 5, 6, 7, 8, 9, 10)
READ, WRITE, DISC, FLUSH, TRIM, CACHE, WZ, BS = range(8)
FUA, NO_HOLE, DF, REQ_ONE, FAST_ZERO = 1, 2, 4, 8, 16


def flags(v=3):
    return struct.pack(">I", v)


def opt(o, data=b""):
    return struct.pack(">QII", OPT_MAGIC, o, len(data)) + data


def info(name=b"disk", infos=(3,)):
    return struct.pack(">I", len(name)) + name + struct.pack(">H", len(infos)) + b"".join(
        struct.pack(">H", i) for i in infos)


def meta(name=b"disk", queries=(b"base:allocation",)):
    return struct.pack(">I", len(name)) + name + struct.pack(">I", len(queries)) + b"".join(
        struct.pack(">I", len(q)) + q for q in queries)


def req(cmd, handle, off, length, fl=0, payload=b""):
    return struct.pack(">IHHQQI", REQ_MAGIC, fl, cmd, handle, off, length) + payload


GO = flags() + opt(OPT_SR) + opt(OPT_SET_META, meta()) + opt(OPT_GO, info())
GO_SIMPLE = flags() + opt(OPT_GO, info())

SEEDS = {
    "bad-client-flags": flags(0x80000003),
    "bad-option-magic": flags() + struct.pack(">QII", 0x1234, OPT_LIST, 0),
    "oversize-option": flags() + opt(OPT_LIST, b"\0" * 65537) + opt(OPT_LIST),
    "options-all": flags() + opt(OPT_LIST) + opt(OPT_LIST, b"x") + opt(OPT_STARTTLS) + opt(99)
    + opt(OPT_SR, b"x") + opt(OPT_INFO, info()) + opt(OPT_INFO, info(b"nope"))
    + opt(OPT_INFO, b"\0\0\0\x40disk\0\0") + opt(OPT_LIST_META, meta(queries=()))
    + opt(OPT_SR) + opt(OPT_LIST_META, meta(queries=(b"base:",)))
    + opt(OPT_SET_META, meta(queries=(b"x-a:b", b"nocolon"))) + opt(OPT_SET_META, b"\0\0")
    + opt(OPT_ABORT),
    "export-name": flags(1) + opt(OPT_EXPORT_NAME, b"disk") + req(READ, 1, 0, 512),
    "export-name-unknown": flags() + opt(OPT_EXPORT_NAME, b"other"),
    "commands-structured": GO + req(WRITE, 1, 0, 4096, FUA, b"\xab" * 4096)
    + req(READ, 2, 0, 8192) + req(READ, 3, 0, 8192, DF) + req(FLUSH, 4, 0, 0)
    + req(TRIM, 5, 0, 512) + req(WZ, 6, 4096, 4096, NO_HOLE) + req(WZ, 7, 0, 512, FAST_ZERO)
    + req(CACHE, 8, 0, 65536) + req(BS, 9, 0, 1 << 20) + req(BS, 10, 0, 4096, REQ_ONE)
    + req(DISC, 11, 0, 0),
    "commands-simple": GO_SIMPLE + req(WRITE, 1, 512, 512, 0, b"\x01" * 512)
    + req(READ, 2, 0, 1024) + req(BS, 3, 0, 512) + req(READ, 4, 0, 512, DF) + req(DISC, 5, 0, 0),
    "rejections": GO + req(READ, 1, 1 << 20, 512) + req(READ, 2, 1, 512)
    + req(WRITE, 3, 1 << 20, 512, 0, b"\xee" * 512) + req(WRITE, 4, 0, 66048, 0, b"\0" * 66048)
    + req(READ, 5, 0, 131072) + req(42, 6, 0, 0) + req(READ, 7, 0, 512, 0x8000)
    + req(FLUSH, 8, 512, 0) + req(BS, 9, 0, 0) + req(WRITE, 10, 0, 0) + req(READ, 11, 0, 0),
    "bad-request-magic": GO + struct.pack(">IHHQQI", 0xdeadbeef, 0, READ, 1, 0, 512),
    "pipelined": GO + b"".join(req(READ, i, (i * 4096) % (1 << 20), 4096) for i in range(40)),
}


def main():
    out = sys.argv[1]
    os.makedirs(out, exist_ok=True)
    for name, body in SEEDS.items():
        # Large seeds once; the rest also with held completions in 62-byte pieces.
        for mode in (0xF0,) if len(body) > 16384 else (0xF0, 0x17):
            with open(os.path.join(out, f"seed-{name}-m{mode:02x}"), "wb") as f:
                f.write(bytes([mode]) + body)


if __name__ == "__main__":
    main()
