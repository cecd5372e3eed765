#!/usr/bin/env python3
"""Turns a loopback capture of `opensrd perf` runs into fuzz seeds (used by make_corpus.sh).

Reads a pcap (tcpdump -i lo) and writes candidate seeds for every fuzz target under OUT:
  OUT/<target>/must/  seeds kept whatever libFuzzer's merge thinks of them
  OUT/<target>/cand/  seeds kept only if they add coverage (fuzzer -merge=1)
Files are named by the SHA-1 of their content, as libFuzzer names the files it adds.

Seed formats follow the harnesses in this folder:
  wire            a datagram without its CRC trailer; its first byte (0x53) is odd, so
                  wire_fuzz.cc seals it with a valid CRC again before parsing.
  endpoint        records [flags][len][datagram without CRC] as endpoint_fuzz.cc reads them,
                  each flagged "patch ids, seal, pump one round", in capture order.
  receive_window  [window selector] then 2-byte ops, see receive_window_fuzz.cc.
  fault_spec      --fault text.
"""
import argparse
import hashlib
import os
import random
import struct
import sys

MAGIC = 0x5344
TYPES = {1: "data", 2: "ack", 3: "hello", 4: "hello_ack", 5: "probe", 6: "nack", 7: "reset",
         8: "retry", 9: "path_challenge", 10: "path_response"}
FLAG_IN_ORDER, FLAG_RETX, FLAG_ACK = 0x02, 0x04, 0x08
CRC_LEN = 4


def _crc_table():
    table = []
    for i in range(256):
        c = i
        for _ in range(8):
            c = (c >> 1) ^ (0x82F63B78 if c & 1 else 0)
        table.append(c)
    return table


CRC_TABLE = _crc_table()


def crc32c(data):
    crc = 0xFFFFFFFF
    for b in data:
        crc = (crc >> 8) ^ CRC_TABLE[(crc ^ b) & 0xFF]
    return crc ^ 0xFFFFFFFF


def datagram_len(buf, off):
    """Length of the opensrd datagram at buf[off:] from its header, or None if unknown."""
    rest = len(buf) - off
    if rest < 4 or struct.unpack_from(">H", buf, off)[0] != MAGIC or buf[off + 2] != 1:
        return None
    t = buf[off + 3]
    if t == 1:
        if rest < 52:
            return None
        payload_len = struct.unpack_from(">H", buf, off + 46)[0]
        ack = 0
        if buf[off + 4] & FLAG_ACK:
            if rest < 64:
                return None
            ack = 12 + 8 * buf[off + 63]
        return 52 + ack + payload_len + CRC_LEN
    if t == 2:
        return 44 + 8 * buf[off + 39] if rest >= 40 else None
    return {3: 96, 4: 96, 5: 32, 6: 40, 7: 56, 8: 56, 9: 40, 10: 40}.get(t)


def split_gso(payload):
    """A UDP GSO send shows on lo as one datagram holding equal-size segments (the last may be
    shorter); the first segment's header gives the segment size."""
    n = datagram_len(payload, 0)
    if n is None or n >= len(payload):
        return [payload]
    return [payload[i:i + n] for i in range(0, len(payload), n)]


def read_pcap(path, server_ports):
    """Yields (server_port, to_server, datagram) in capture order."""
    with open(path, "rb") as f:
        data = f.read()
    magic = struct.unpack_from("<I", data, 0)[0]
    if magic not in (0xA1B2C3D4, 0xA1B23C4D):
        sys.exit("not a little-endian pcap file: " + path)
    linktype = struct.unpack_from("<I", data, 20)[0]
    link_len = {1: 14, 113: 16, 0: 4}.get(linktype)
    if link_len is None:
        sys.exit("unsupported pcap link type %d" % linktype)
    off = 24
    while off + 16 <= len(data):
        caplen = struct.unpack_from("<I", data, off + 8)[0]
        frame = data[off + 16:off + 16 + caplen]
        off += 16 + caplen
        ip = frame[link_len:]
        if len(ip) < 20 or ip[0] >> 4 != 4 or ip[9] != 17:
            continue
        udp = ip[(ip[0] & 15) * 4:]
        if len(udp) < 8:
            continue
        sport, dport = struct.unpack_from(">HH", udp, 0)
        if dport in server_ports:
            port, to_server = dport, True
        elif sport in server_ports:
            port, to_server = sport, False
        else:
            continue
        for d in split_gso(udp[8:]):
            yield port, to_server, d


def kind(d):
    """The packet kind a datagram shows, as listed in docs/WIRE.md; None if not opensrd."""
    n = datagram_len(d, 0)
    if n is None or n != len(d):
        return None
    name = TYPES[d[3]]
    if name == "data" and d[4] & FLAG_ACK:
        return "data+ack"
    return name


def crc_ok(d):
    return len(d) > CRC_LEN and crc32c(d[:-CRC_LEN]) == struct.unpack_from(">I", d, len(d) - 4)[0]


def write_seed(directory, content):
    os.makedirs(directory, exist_ok=True)
    with open(os.path.join(directory, hashlib.sha1(content).hexdigest()), "wb") as f:
        f.write(content)


def wire_seeds(packets, out):
    """One seed of every kind is a must; the rest are candidates, a few per shape."""
    per_bucket = {}
    must_kinds = set()
    for _, _, d in packets:
        k = kind(d)
        if k is None:
            continue
        shape = (d[3], d[4])
        if d[3] == 1:
            payload_len = struct.unpack_from(">H", d, 46)[0]
            shape += (min(payload_len.bit_length(), 14),)
        if d[3] == 2 or (d[3] == 1 and d[4] & FLAG_ACK):
            n_ranges = d[39] if d[3] == 2 else d[63]
            shape += (min(n_ranges, 4), )
        if d[3] == 6:
            shape += (d[32], )
        seen = per_bucket.setdefault(shape, set())
        body = bytes(d[:-CRC_LEN])
        if len(seen) >= 3 or body in seen:
            continue
        seen.add(body)
        good = crc_ok(d)  # corrupted copies (the fault injector's) are candidates too
        if good and k not in must_kinds:
            must_kinds.add(k)
            write_seed(os.path.join(out, "wire", "must"), body)
        else:
            write_seed(os.path.join(out, "wire", "cand"), body)
    return must_kinds


# Endpoint seeds: the harness's B plays the server (clients send to B), A the client.
ENDPOINT_NODE = {True: 1, False: 2}  # node id of the sender, by "sent to the server"
ENDPOINT_MAX_LEN = 255  # the record length is one byte
ENDPOINT_WINDOW = 40  # records per seed


def endpoint_record(to_server, d):
    body = bytearray(d[:-CRC_LEN])
    if len(body) > ENDPOINT_MAX_LEN or not crc_ok(d):
        return None
    if body[3] in (3, 4):  # HELLO/HELLO_ACK name the harness's nodes, as a real handshake does
        struct.pack_into(">Q", body, 28, ENDPOINT_NODE[to_server])
    flags = (0 if to_server else 1) | 2 | 4 | (1 << 4)
    return bytes([flags, len(body)]) + bytes(body)


def endpoint_seeds(packets, out):
    """Per run: the opening (handshake, first data and acks) is a must; windows around the first
    packet of each other kind and shape are candidates."""
    runs = {}
    for port, to_server, d in packets:
        rec = endpoint_record(to_server, d)
        if rec is not None:
            runs.setdefault(port, []).append((kind(d), d, rec))
    count = 0
    for port, recs in sorted(runs.items()):
        write_seed(os.path.join(out, "endpoint", "must"),
                   b"".join(r for _, _, r in recs[:ENDPOINT_WINDOW]))
        count += 1
        firsts = {}
        for i, (k, d, _) in enumerate(recs):
            firsts.setdefault((k, d[4] & (FLAG_IN_ORDER | FLAG_RETX)), i)
        for i in sorted(set(firsts.values())):
            lo = max(0, i - ENDPOINT_WINDOW // 2)
            write_seed(os.path.join(out, "endpoint", "cand"),
                       b"".join(r for _, _, r in recs[lo:lo + ENDPOINT_WINDOW]))
            count += 1
    return count


def window_ops(window_sel, ops):
    return bytes([window_sel]) + b"".join(struct.pack(">H", op) for op in ops)


def receive_window_seeds(packets, out):
    """Hand-made shapes for each window size, and the PSN arrival order of each captured run."""
    must = os.path.join(out, "receive_window", "must")
    cand = os.path.join(out, "receive_window", "cand")
    near = lambda off: 0x4000 | off  # op 4: cum + off (mod window + window / 4)
    readback = 0x1000
    rng = random.Random(12)
    for sel in range(5):
        w = 64 << sel
        write_seed(must, window_ops(sel, [near(0)] * (w + 8) + [readback]))  # in order
        write_seed(must, window_ops(sel, [near(i) for i in range(w - 1, -1, -1)] + [readback]))
        gaps = [near(i) for i in range(1, w, 2)] + [readback] + [near(0)] * (w // 2) + [readback]
        write_seed(must, window_ops(sel, gaps))
        edge = [near(w - 1), near(w), near(w + w // 4 - 1), readback, 0x3000, 0x3FFF, 0x2001,
                0x2FFF, readback, 0x0000, near(5), readback]
        write_seed(must, window_ops(sel, edge))
        # Reordering within a small span, as multipath spraying makes.
        ops = []
        for base in range(0, 4 * w, 8):
            ops += [near(i) for i in rng.sample(range(8), 8)]
        write_seed(cand, window_ops(sel, ops[:4000] + [readback]))
    # Captured arrival order of DATA PSNs at the server, relative to the cumulative point a
    # receive window would have.
    runs = {}
    for port, to_server, d in packets:
        # No CRC check (too slow here for large packets): a corrupted PSN is a fine input too.
        if to_server and kind(d) in ("data", "data+ack"):
            ctx = struct.unpack_from(">II", d, 12)
            runs.setdefault(port, []).append((ctx, struct.unpack_from(">I", d, 28)[0]))
    for port, arrivals in sorted(runs.items()):
        sel, w = 4, 1024
        ops, got, cum, ctx_now = [], set(), 0, None
        for ctx, psn in arrivals:
            if ctx != ctx_now:
                ops.append(0x0000)
                got, cum, ctx_now = set(), 0, ctx
            d = (psn - cum) & 0xFFFFFFFF
            if d >= 1 << 31:
                ops.append(0x3000 | min((cum - 1 - psn) & 0xFFFFFFFF, 0xFFF))
                continue
            if d >= w + w // 4:
                continue
            ops.append(near(d))
            if d < w:
                got.add(psn)
                while cum in got:
                    got.discard(cum)
                    cum = (cum + 1) & 0xFFFFFFFF
            if len(ops) % 256 == 0:
                ops.append(readback)
            if len(ops) >= 4000:
                break
        write_seed(cand, window_ops(sel, ops + [readback]))


# From README.md, tests/perf_*_test.sh and src/transport/fault_test.cc: specs that parse and
# specs that must be refused.
FAULT_SPECS_MUST = [
    "path=1:loss=0.05,dup=0.02;path=3:blackhole_after_ms=1000",
    "path=0:loss=0.05,dup=0.02;path=1:corrupt=0.02,delay_us=100,jitter_us=50;"
    "path=2:loss=0.02,reorder=0.1;path=3:blackhole_after_ms=300",
    "path=2:loss=0.125,dup=0.25,corrupt=0.5,reorder=0.75,delay_us=11,jitter_us=22,"
    "reorder_us=33,blackhole_after_ms=44,blackhole_for_ms=55",
    "path=255:loss=0,dup=1,corrupt=1e-3,delay_us=0",
    "path=1:loss=0.1,dup=0.02;path=3:blackhole_after_ms=1000;path=0:delay_us=7;",
]
FAULT_SPECS_CAND = [
    "path=0:loss=0.5", "path=3:blackhole_after_ms=1000", "path=3:blackhole_after_ms=0",
    "path=1:loss=2", "loss=0.1", "path=1:bogus=1", "path=9:loss=0.1", "path=1:loss=0.1;dup=0.2",
    "Path=1:loss=0.1", "path=1,loss=0.1", "path=x:loss=0.1", "path=:loss=0.1",
    "path=-1:loss=0.1", "path=+1:loss=0.1", "path=1.5:loss=0.1", "path=1x:loss=0.1",
    "path=256:loss=0.1", "path=4294967296:loss=0.1", "path=99999999999999999999999:loss=0.1",
    "path=1:loss=0.1;path=1:dup=0.1", "path=2:loss=0.1;path=02:dup=0.1", "path=1:loss=0.1,dup",
    "path=1:loss=0.1,,dup=0.1", "path=1:loss=0.1, dup=0.1", "path=1:loss=1.5",
    "path=1:loss=abc", "path=1:loss=", "path=1:loss=0.1x", "path=1:blackhole_for_ms=5",
    "path=0:reorder=0.2,reorder_us=500,jitter_us=18446744073709551615",
    "path=0:delay_us=1e3", "path=0:loss=nan", "path=0:loss=inf", "path=0:loss=-0",
    "path=0:blackhole_after_ms=18446744073709551", "",
]


def fault_spec_seeds(out):
    for s in FAULT_SPECS_MUST:
        write_seed(os.path.join(out, "fault_spec", "must"), s.encode())
    for s in FAULT_SPECS_CAND:
        write_seed(os.path.join(out, "fault_spec", "cand"), s.encode())


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--pcap", required=True)
    ap.add_argument("--server-ports", required=True, help="comma-separated UDP ports")
    ap.add_argument("--out", required=True)
    args = ap.parse_args()
    ports = {int(p) for p in args.server_ports.split(",")}
    packets = list(read_pcap(args.pcap, ports))
    counts = {}
    for _, _, d in packets:
        k = kind(d) or "other"
        counts[k] = counts.get(k, 0) + 1
    print("captured datagrams by kind:", dict(sorted(counts.items())))
    kinds = wire_seeds(packets, args.out)
    missing = set(TYPES.values()) | {"data+ack"}
    missing -= kinds
    if missing:
        sys.exit("the capture lacks packet kinds: " + ", ".join(sorted(missing)))
    print("endpoint seeds:", endpoint_seeds(packets, args.out))
    receive_window_seeds(packets, args.out)
    fault_spec_seeds(args.out)


if __name__ == "__main__":
    main()
