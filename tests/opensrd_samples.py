#!/usr/bin/env python3
"""Writes a pcap of hand-built opensrd datagrams, one per case, for the dissector test.

Usage: opensrd_samples.py OUT.pcap CASES.tsv
       opensrd_samples.py --mutants N SEED OUT.pcap

Each frame is IPv4 + UDP (127.0.0.1:7440 -> 127.0.0.1:7441) around one UDP payload built here
from docs/WIRE.md (an implementation independent of src/transport/wire.cc, CRC32C included), or
copied from docs/WIRE.md's examples. CASES.tsv gets one line per frame: number, case name,
expected verdict (ok | malformed | bad_crc | not_opensrd). With the port preference every frame
is dissected and a not_opensrd one must be flagged malformed (bad_magic, bad_version, bad_type,
too_short); by the heuristic alone, it must not be claimed at all.
"""
import struct
import sys

CRC_POLY = 0x82F63B78  # CRC32C, reflected
_table = []
for i in range(256):
    c = i
    for _ in range(8):
        c = (c >> 1) ^ CRC_POLY if c & 1 else c >> 1
    _table.append(c)


def crc32c(data: bytes) -> int:
    crc = 0xFFFFFFFF
    for b in data:
        crc = _table[(crc ^ b) & 0xFF] ^ (crc >> 8)
    return crc ^ 0xFFFFFFFF


assert crc32c(b"123456789") == 0xE3069283


def common(typ, flags=0, path=2, dst_ctx=1, src_ctx=3, src_inc=0x0A0B0C0D, dst_inc=0x11223344,
           tx_ts=1000000, magic=0x5344, version=1, reserved=0):
    return struct.pack(">HBBBBHIIIII", magic, version, typ, flags, path, reserved, dst_ctx,
                       src_ctx, src_inc, dst_inc, tx_ts)


def seal(body: bytes) -> bytes:
    return body + struct.pack(">I", crc32c(body))


def ack_block(cum, ranges, echo_ts=1000000, delay=12, echo_path=2, n=None):
    b = struct.pack(">IIHBB", cum, echo_ts, delay, echo_path, len(ranges) if n is None else n)
    for lo, hi in ranges:
        b += struct.pack(">II", lo, hi)
    return b


def data(psn=7, msg_id=3, msg_len=100, off=0, sq=0, payload=b"x" * 100, sq_seq=0, flags=0,
         ack=None, payload_len=None):
    plen = len(payload) if payload_len is None else payload_len
    b = common(1, flags | (0x08 if ack else 0))
    b += struct.pack(">IIIIHHI", psn, msg_id, msg_len, off, sq, plen, sq_seq)
    if ack:
        b += ack
    return b + payload


def hello(typ=3, num_paths=4, max_payload=1400, window=1024, src_ctx=3, src_inc=0x0A0B0C0D):
    b = common(typ, dst_ctx=0 if typ == 3 else 1, dst_inc=0 if typ == 3 else 0x11223344,
               src_ctx=src_ctx, src_inc=src_inc)
    b += struct.pack(">QHHIII", 0x0102030405060708, num_paths, max_payload, 5, 0, window)
    return b + bytes(range(16)) + bytes(24)


def block_io(op=1, length=512, flags=0x01, handle=0x1234, req=77, offset=4096, queue=2, seq=7):
    return struct.pack(">HBBIQQIBBHQQ", 0x4F42, 1, 3, handle, req, offset, length, op, flags,
                       queue, seq, 0)


def block_io_reply(status=0, data=b"", req=77):
    return struct.pack(">HBBIQB3sI8s", 0x4F42, 1, 4, 0x1234, req, status, bytes(3), len(data),
                       bytes(8)) + data


def block_attach(typ=1, name=b"vol0", token=b"secret", third=0x1122334455667788):
    return struct.pack(">HBBHHQQQ", 0x4F42, 1, typ, len(name), len(token), 5, third, 0) + name + token


def block_attach_reply(status=0, message=b""):
    return struct.pack(">HBBIQBBHIQII", 0x4F42, 1, 2, 0x1234, 5, status, 0x3E, len(message), 512,
                       1 << 30, 4096, 1 << 20) + message


def block_resize_reply(message=b"grown"):
    return struct.pack(">HBBHHQB7sQ", 0x4F42, 1, 6, len(message), 0, 5, 0, bytes(7), 2 << 30) + message


def block_info():
    return struct.pack(">HBBIQQ", 0x4F42, 1, 7, 0x1234, 2 << 30, 0)


def block_data(msg, msg_len=None, cut=None):
    """A DATA packet carrying the first fragment of the block message `msg`."""
    payload = msg if cut is None else msg[:cut]
    return seal(data(msg_len=len(msg) if msg_len is None else msg_len, payload=payload))


WIRE_MD_PROBE = bytes.fromhex(
    "5344010500020000000000010000000" "3" "0a0b0c0d1122334400" "0f4240b5c0e5af")
WIRE_MD_ACK = bytes.fromhex(
    "53440102000200000000000100000003"
    "0a0b0c0d11223344000f424000000005"
    "000f4240000c02010000000700000009"
    "468691be")

CASES = [
    # name, payload, expected verdict
    ("wire_md_probe", WIRE_MD_PROBE, "ok"),
    ("wire_md_ack", WIRE_MD_ACK, "ok"),
    ("data", seal(data()), "ok"),
    ("data_retx_in_order", seal(data(flags=0x06)), "ok"),
    ("data_piggyback_ack", seal(data(ack=ack_block(5, [(7, 9), (11, 12)]), flags=0x10)), "ok"),
    ("data_empty_message", seal(data(msg_len=0, payload=b"")), "ok"),
    ("ack_probe_reply", seal(common(2, flags=0x01) + ack_block(0, [])), "ok"),
    ("ack_16_ranges", seal(common(2) + ack_block(0, [(2 * i + 1, 2 * i + 2) for i in range(16)])), "ok"),
    ("hello", seal(hello()), "ok"),
    ("hello_ack", seal(hello(typ=4)), "ok"),
    ("probe", seal(common(5)), "ok"),
    ("nack_rnr", seal(common(6) + struct.pack(">IBBH", 9, 1, 0, 0)), "ok"),
    ("nack_truncated", seal(common(6) + struct.pack(">IBBH", 9, 3, 0, 0)), "ok"),
    ("reset", seal(common(7) + struct.pack(">II", 0x11223344, 0) + bytes(range(16))), "ok"),
    ("retry", seal(common(8, src_ctx=0) + bytes(range(24))), "ok"),
    ("path_challenge", seal(common(9) + bytes(range(8))), "ok"),
    ("path_response", seal(common(10) + bytes(range(8))), "ok"),
    ("mac_trailer", seal(common(5)) + bytes(range(32)), "ok"),
    # the block protocol in the first fragment of an SRD message
    ("block_io_write", block_data(block_io() + bytes(512)), "ok"),
    ("block_io_read", block_data(block_io(op=0, length=4096, flags=0, seq=0)), "ok"),
    ("block_io_write_first_fragment", block_data(block_io(length=8192) + bytes(8192), cut=1000), "ok"),
    ("block_io_reply", block_data(block_io_reply(data=bytes(16))), "ok"),
    ("block_attach", block_data(block_attach()), "ok"),
    ("block_attach_reply", block_data(block_attach_reply()), "ok"),
    ("block_resize", block_data(block_attach(typ=5, third=2 << 30)), "ok"),
    ("block_resize_reply", block_data(block_resize_reply()), "ok"),
    ("block_info", block_data(block_info()), "ok"),
    # rejection paths of wire::Parse, each must be flagged
    ("bad_crc", seal(common(5))[:-1] + b"\x00", "bad_crc"),
    ("bad_crc_data", bytes([b ^ (1 if i == 60 else 0) for i, b in enumerate(seal(data()))]), "bad_crc"),
    ("bad_version", seal(common(5, version=2)), "not_opensrd"),
    ("reserved_nonzero", seal(common(5, reserved=1)), "malformed"),
    ("data_too_short", seal(common(1) + bytes(8)), "malformed"),
    ("data_bad_length", seal(data(payload_len=99)), "malformed"),
    ("data_past_msg_len", seal(data(off=50)), "malformed"),
    ("data_empty_fragment", seal(data(msg_len=5, payload=b"")), "malformed"),
    ("ack_17_ranges", seal(common(2) + ack_block(0, [(2 * i + 1, 2 * i + 2) for i in range(17)])), "malformed"),
    ("ack_bad_length", seal(common(2) + ack_block(5, [(7, 9)]) + bytes(4)), "malformed"),
    ("ack_empty_range", seal(common(2) + ack_block(5, [(9, 9)])), "malformed"),
    ("ack_range_below_cum", seal(common(2) + ack_block(5, [(5, 9)])), "malformed"),
    ("ack_ranges_adjacent", seal(common(2) + ack_block(5, [(7, 9), (9, 11)])), "malformed"),
    ("hello_bad_length", seal(hello()[:-4]), "malformed"),
    ("hello_num_paths_0", seal(hello(num_paths=0)), "malformed"),
    ("hello_num_paths_257", seal(hello(num_paths=257)), "malformed"),
    ("hello_small_payload", seal(hello(max_payload=63)), "malformed"),
    ("hello_window_not_pow2", seal(hello(window=1000)), "malformed"),
    ("hello_window_too_big", seal(hello(window=1 << 21)), "malformed"),
    ("hello_src_ctx_0", seal(hello(src_ctx=0)), "malformed"),
    ("hello_src_inc_0", seal(hello(src_inc=0)), "malformed"),
    ("probe_bad_length", seal(common(5) + bytes(4)), "malformed"),
    ("nack_bad_reason", seal(common(6) + struct.pack(">IBBH", 9, 4, 0, 0)), "malformed"),
    ("nack_pad", seal(common(6) + struct.pack(">IBBH", 9, 1, 0, 1)), "malformed"),
    ("reset_reserved", seal(common(7) + struct.pack(">II", 1, 1) + bytes(16)), "malformed"),
    ("reset_bad_length", seal(common(7) + bytes(20)), "malformed"),
    ("retry_dst_ctx_0", seal(common(8, dst_ctx=0) + bytes(24)), "malformed"),
    ("path_bad_length", seal(common(9) + bytes(4)), "malformed"),
    ("block_io_write_short", block_data(block_io() + bytes(100)), "malformed"),
    ("block_io_bad_op", block_data(block_io(op=7, length=0)), "malformed"),
    ("block_io_bad_flags", block_data(block_io(op=0, flags=0x08)), "malformed"),
    ("block_attach_no_name", block_data(block_attach(name=b"")), "malformed"),
    ("block_bad_type", block_data(struct.pack(">HBB", 0x4F42, 1, 9) + bytes(28)), "malformed"),
    ("block_info_too_short", block_data(block_info()[:20]), "malformed"),
    # not opensrd at all: the heuristic must leave these alone (decoded by port: malformed)
    ("bad_magic", seal(common(5, magic=0x5345)), "not_opensrd"),
    ("bad_type", seal(common(11)), "not_opensrd"),
    ("too_short", seal(common(5))[:20], "not_opensrd"),
]


def ip_udp(payload: bytes, sport=7440, dport=7441) -> bytes:
    udp_len = 8 + len(payload)
    udp = struct.pack(">HHHH", sport, dport, udp_len, 0) + payload
    total = 20 + udp_len
    ip = struct.pack(">BBHHHBBH4s4s", 0x45, 0, total, 0, 0x4000, 64, 17, 0,
                     bytes([127, 0, 0, 1]), bytes([127, 0, 0, 1]))
    s = sum(struct.unpack(">10H", ip))
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    ip = ip[:10] + struct.pack(">H", ~s & 0xFFFF) + ip[12:]
    return ip + udp


def write_pcap(path, payloads):
    with open(path, "wb") as f:
        f.write(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 101))  # LINKTYPE_RAW
        for i, payload in enumerate(payloads):
            frame = ip_udp(payload)
            f.write(struct.pack("<IIII", 1700000000 + i, 0, len(frame), len(frame)))
            f.write(frame)


def mutants(n, seed):
    """N datagrams made from the valid cases (and GSO-like concatenations of them) by flipping
    bits, overwriting bytes with boundary values, cutting and extending: the dissector must
    survive all of them (a Lua error is a dissector bug)."""
    import random
    rng = random.Random(seed)
    valid = [p for _, p, v in CASES if v == "ok"]
    out = []
    for _ in range(n):
        d = bytearray(rng.choice(valid))
        if rng.random() < 0.2:
            d += rng.choice(valid)
        for _ in range(rng.randint(1, 4)):
            op = rng.randrange(4)
            if op == 0 and d:
                i = rng.randrange(len(d))
                d[i] ^= 1 << rng.randrange(8)
            elif op == 1 and d:
                i = rng.randrange(len(d))
                d[i] = rng.choice([0, 1, 0x7F, 0x80, 0xFF, 16, 17])
            elif op == 2 and d:
                del d[rng.randrange(len(d)):]
            else:
                d += bytes(rng.randrange(256) for _ in range(rng.randint(1, 40)))
        out.append(bytes(d[:65000]) if d else b"SD")
    return out


def main():
    if sys.argv[1] == "--mutants":
        write_pcap(sys.argv[4], mutants(int(sys.argv[2]), int(sys.argv[3])))
        return
    out, cases = sys.argv[1], sys.argv[2]
    with open(out, "wb") as f, open(cases, "w") as c:
        f.write(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 101))  # LINKTYPE_RAW
        for i, (name, payload, verdict) in enumerate(CASES):
            frame = ip_udp(payload)
            f.write(struct.pack("<IIII", 1700000000 + i, 0, len(frame), len(frame)))
            f.write(frame)
            c.write(f"{i + 1}\t{name}\t{verdict}\n")


if __name__ == "__main__":
    main()
