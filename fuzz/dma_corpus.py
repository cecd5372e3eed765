#!/usr/bin/env python3
"""Writes the seed corpus of the dma fuzz target (fuzz/dma_fuzz.cc) into fuzz/corpus/dma/.

One seed per descriptor type, per rejection path, for ring wrap-around and for an overflowing
producer. The layout follows the harness: [config][count][skew], `count` raw 64-byte
descriptors (include/opensrd/dma.h), then the arena's initial bytes. The read-write arena is at
IOVA 0x10000 (64 KiB), the read-only region at 0x30000 (4 KiB). Deterministic: rerunning writes
the same files. Usage: fuzz/dma_corpus.py [OUT_DIR]
"""
import os
import struct
import sys

ARENA, RO = 0x10000, 0x30000
COPY, COPY_SG, FILL, COPY_CRC, COMPARE = 1, 2, 3, 4, 5
NOTIFY = 1


def desc(opcode, src=0, dst=0, length=0, pattern=0, user=0, crc_seed=0, src_count=0,
         dst_count=0, flags=0, reserved0=0, reserved=(0, 0)):
    d = struct.pack("<BBHIQQQQIHHQQ", opcode, flags, src_count, length, src, dst, pattern, user,
                    crc_seed, dst_count, reserved0, *reserved)
    assert len(d) == 64
    return d


def sg(*entries):
    return b"".join(struct.pack("<QII", iova, length, 0) for iova, length in entries)


def seed(descs, config=0, skew=0, arena=b""):
    return bytes([config, len(descs), skew & 0xFF]) + b"".join(descs) + arena


def seeds():
    # Arena bytes: SG lists at offset 0x100 (sources) and 0x200 (destinations), data from 0x1000.
    lists = bytearray(0x1000)
    src_list = sg((ARENA + 0x1000, 100), (ARENA + 0x2000, 300), (RO + 0x10, 200))
    dst_list = sg((ARENA + 0x8000, 250), (ARENA + 0x9000, 350))
    lists[0x100:0x100 + len(src_list)] = src_list
    lists[0x200:0x200 + len(dst_list)] = dst_list
    data = bytes((i * 7 + 3) & 0xFF for i in range(0x1000))
    arena = bytes(lists) + data

    good = {
        "copy": [desc(COPY, ARENA + 0x1000, ARENA + 0x4000, 4096, user=1)],
        "copy_from_ro": [desc(COPY, RO, ARENA + 0x4000, 4096, user=2)],
        "fill": [desc(FILL, 0, ARENA + 0x4000, 1000, pattern=0x0102030405060708, user=3)],
        "copy_crc": [desc(COPY_CRC, ARENA + 0x1000, ARENA + 0x6000, 3000, crc_seed=0x1234)],
        "compare_equal": [desc(COMPARE, ARENA + 0x1000, ARENA + 0x1000, 64)],
        "compare_ro": [desc(COMPARE, ARENA + 0x1000, RO, 4096)],
        "copy_sg": [desc(COPY_SG, ARENA + 0x100, ARENA + 0x200, 600, src_count=3, dst_count=2)],
        "notify": [desc(COPY, ARENA + 0x1000, ARENA + 0x4000, 64, flags=NOTIFY)],
    }
    bad = {
        "bad_opcode": [desc(0x42, ARENA, ARENA + 0x100, 64)],
        "zero_opcode": [desc(0)],
        "bad_flags": [desc(COPY, ARENA, ARENA + 0x100, 64, flags=0x80)],
        "bad_reserved": [desc(COPY, ARENA, ARENA + 0x100, 64, reserved=(0, 1))],
        "null_src": [desc(COPY, 0, ARENA, 64)],
        "null_dst": [desc(FILL, 0, 0, 64, pattern=1)],
        "zero_length": [desc(COPY, ARENA, ARENA + 0x100, 0)],
        "overlap": [desc(COPY, ARENA, ARENA + 0x20, 64)],
        "outside": [desc(COPY, ARENA, ARENA + 0x10000 - 32, 64)],
        "below": [desc(COPY, ARENA - 64, ARENA + 0x100, 64)],
        "ro_dst": [desc(COPY, ARENA, RO, 64)],
        "huge": [desc(COPY, ARENA, ARENA + 0x8000, 0xFFFFFFFF)],
        "wrap_iova": [desc(COPY, 0xFFFFFFFFFFFFFFF0, ARENA, 64)],
        "sg_count": [desc(COPY_SG, ARENA + 0x100, ARENA + 0x200, 600, src_count=65, dst_count=2)],
        "sg_total": [desc(COPY_SG, ARENA + 0x100, ARENA + 0x200, 599, src_count=3, dst_count=2)],
        "sg_list_outside": [desc(COPY_SG, RO + 0xFF0, ARENA + 0x200, 600, src_count=3,
                                 dst_count=2)],
    }
    out = {}
    for name, d in {**good, **bad}.items():
        out[name] = seed(d, config=1, arena=arena)
    # Every kind in one ring, prefetch off / on / auto: the look-ahead sees mixed descriptors.
    mixed = [v[0] for v in good.values()] + [v[0] for v in bad.values()]
    for config in (0, 1, 2):
        out[f"mixed_{config}"] = seed(mixed[:48], config=config, arena=arena)
    # 40 descriptors on a 16-slot ring: wraps twice.
    wrap = [desc(COPY, ARENA + 0x1000 + 64 * i, ARENA + 0x8000 + 64 * i, 64, user=i)
            for i in range(40)]
    out["wrap"] = seed(wrap, config=1, arena=arena)
    # An overflowing producer (head past the ring), then a head behind the tail.
    out["overflow"] = seed(wrap[:20], config=4 | 1, skew=3, arena=arena)
    out["overflow_back"] = seed(wrap[:20], config=4, skew=-20, arena=arena)
    return out


def main():
    out_dir = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(__file__),
                                                                  "corpus", "dma")
    os.makedirs(out_dir, exist_ok=True)
    for name, data in seeds().items():
        with open(os.path.join(out_dir, name), "wb") as f:
            f.write(data)
    print(f"wrote {len(seeds())} seeds to {out_dir}")


if __name__ == "__main__":
    main()
