#!/usr/bin/env python3
"""Judges rdma_wire_pcap's captures: tshark's decoding must match the expected header values
the generator wrote from its commands, with no malformed packet and no expert warning; every
RoCEv2 ICRC is recomputed here with zlib.crc32 and the RoCEv2 masking (an implementation that
shares nothing with the C++ codec), and every MPA CRC32C both by tshark and here.

Usage: rdma_tshark_check.py DIR   (DIR holds roce.pcap, roce.expect, iwarp.pcap, iwarp.expect)
"""
import struct
import subprocess
import sys
import zlib

WARN = 0x600000  # Wireshark's PI_WARN; chat (SYN) and note are fine


def read_pcap(path):
    data = open(path, "rb").read()
    magic, = struct.unpack_from("<I", data, 0)
    assert magic == 0xA1B2C3D4, "not a little-endian microsecond pcap"
    linktype, = struct.unpack_from("<I", data, 20)
    assert linktype == 1, "not Ethernet"
    off, frames = 24, []
    while off < len(data):
        _, _, incl, _ = struct.unpack_from("<IIII", data, off)
        frames.append(data[off + 16:off + 16 + incl])
        off += 16 + incl
    return frames


def roce_icrc(ip_packet):
    """CRC32 (Ethernet's) over 8 one-bytes, then the IPv4 header with TOS, TTL and checksum as
    ones (IPv6: traffic class, flow label and hop limit as ones), the UDP header with its
    checksum as ones, the BTH with byte 4 as ones, and the rest up to the ICRC."""
    if ip_packet[0] >> 4 == 6:
        ihl = 40
        ip = bytearray(ip_packet[:ihl])
        ip[0] |= 0x0F
        ip[1:4] = b"\xff\xff\xff"
        ip[7] = 0xFF
    else:
        ihl = (ip_packet[0] & 0x0F) * 4
        ip = bytearray(ip_packet[:ihl])
        ip[1] = 0xFF
        ip[8] = 0xFF
        ip[10:12] = b"\xff\xff"
    udp = bytearray(ip_packet[ihl:ihl + 8])
    udp[6:8] = b"\xff\xff"
    rest = bytearray(ip_packet[ihl + 8:-4])
    rest[4] = 0xFF
    return zlib.crc32(b"\xff" * 8 + bytes(ip) + bytes(udp) + bytes(rest)) & 0xFFFFFFFF


def crc32c(data):
    crc = 0xFFFFFFFF
    for b in data:
        crc ^= b
        for _ in range(8):
            crc = (crc >> 1) ^ (0x82F63B78 if crc & 1 else 0)
    return crc ^ 0xFFFFFFFF


# Checksums tshark skips by default are checked too (a bad one is an expert warning).
CHECKSUMS = ["-o", "ip.check_checksum:TRUE", "-o", "udp.check_checksum:TRUE",
             "-o", "tcp.check_checksum:TRUE"]


def tshark(pcap, fields, extra=()):
    cmd = ["tshark", "-r", pcap, "-T", "fields", "-E", "occurrence=f"] + CHECKSUMS + list(extra)
    for f in fields:
        cmd += ["-e", f]
    out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
    rows = {}
    for line in out.splitlines():
        cols = line.split("\t")
        rows[int(cols[0])] = dict(zip(fields[1:], cols[1:]))
    return rows


def expectations(path):
    exp = {}
    for line in open(path):
        kv = dict(item.split("=", 1) for item in line.split())
        exp[int(kv["frame"])] = kv
    return exp


def num(s):
    return int(s, 0) if s.startswith("0x") or s.isdigit() else int(s, 16)


errors = []


def check(cond, msg):
    if not cond:
        errors.append(msg)


def no_warnings(pcap):
    rows = tshark(pcap, ["frame.number", "_ws.malformed", "_ws.expert.severity",
                         "_ws.expert.message"], ["-E", "occurrence=a"])
    for frame, r in rows.items():
        check(r["_ws.malformed"] == "", f"{pcap} frame {frame}: malformed")
        for sev in filter(None, r["_ws.expert.severity"].split(",")):
            check(int(sev) < WARN, f"{pcap} frame {frame}: expert {r['_ws.expert.message']}")


ROCE_FIELDS = {  # expectation key -> tshark field
    "opcode": "infiniband.bth.opcode", "destqp": "infiniband.bth.destqp",
    "psn": "infiniband.bth.psn", "a": "infiniband.bth.a", "se": "infiniband.bth.se",
    "padcnt": "infiniband.bth.padcnt", "va": "infiniband.reth.va",
    "rkey": "infiniband.reth.r_key", "dmalen": "infiniband.reth.dmalen",
    "syndrome": "infiniband.aeth.syndrome", "msn": "infiniband.aeth.msn",
    "swap": "infiniband.atomiceth.swapdt", "cmp": "infiniband.atomiceth.cmpdt",
    "orig": "infiniband.atomicacketh.origremdt", "imm": "infiniband.immdt",
    "ieth": "infiniband.ieth",
}


def check_roce(d):
    pcap = f"{d}/roce.pcap"
    exp = expectations(f"{d}/roce.expect")
    frames = read_pcap(pcap)
    check(len(frames) == len(exp) and len(exp) >= 50, f"roce: {len(frames)} frames")
    ipv6 = sum(1 for f in frames if f[12:14] == b"\x86\xdd")
    check(ipv6 >= 25, f"roce: only {ipv6} IPv6 frames")
    fields = ["frame.number", "infiniband.invariant.crc"] + sorted(set(ROCE_FIELDS.values()))
    rows = tshark(pcap, fields)
    for n, e in exp.items():
        r = rows.get(n, {})
        for key, field in ROCE_FIELDS.items():
            if key not in e:
                continue
            got = r.get(field, "")
            check(got != "" and num(got) == num(e[key]),
                  f"roce frame {n} ({e['name']}): {field} = {got!r}, encoded {e[key]}")
        ip = frames[n - 1][14:]
        sent = int.from_bytes(ip[-4:], "little")
        want = roce_icrc(ip)
        check(sent == want, f"roce frame {n}: ICRC {sent:#010x}, recomputed {want:#010x}")
        shown = r.get("infiniband.invariant.crc", "")
        check(shown != "" and num(shown) == int.from_bytes(ip[-4:], "big"),
              f"roce frame {n}: tshark's ICRC {shown!r} is not the trailer")
    no_warnings(pcap)
    # The recomputation can fail: a flipped payload bit must change it.
    ip = bytearray(frames[0][14:])
    ip[-5] ^= 1
    check(roce_icrc(bytes(ip)) != int.from_bytes(ip[-4:], "little"), "ICRC check is blind")


IWARP_FIELDS = {
    "rev": "iwarp_mpa.rev", "pdlength": "iwarp_mpa.pdlength",
    "ulpdulength": "iwarp_mpa.ulpdulength", "opcode": "iwarp_rdma.opcode",
    "tagged": "iwarp_ddp.tagged_flag", "last": "iwarp_ddp.last_flag", "stag": "iwarp_ddp.stag",
    "to": "iwarp_ddp.tagged_offset", "qn": "iwarp_ddp.qn", "msn": "iwarp_ddp.msn",
    "mo": "iwarp_ddp.mo", "sinkstag": "iwarp_rdma.sinkstag", "sinkto": "iwarp_rdma.sinkto",
    "rdmardsz": "iwarp_rdma.rdmardsz", "srcstag": "iwarp_rdma.srcstag",
    "srcto": "iwarp_rdma.srcto",
}


def check_iwarp(d):
    pcap = f"{d}/iwarp.pcap"
    exp = expectations(f"{d}/iwarp.expect")
    frames = read_pcap(pcap)
    fields = ["frame.number", "iwarp_mpa.req", "iwarp_mpa.rep", "iwarp_mpa.fpdu"] + \
        sorted(set(IWARP_FIELDS.values()))
    rows = tshark(pcap, fields)
    fpdus = 0
    for n, e in exp.items():
        r = rows.get(n, {})
        kind = e["kind"]
        check(f"iwarp_mpa.{kind}" in r and r[f"iwarp_mpa.{kind}"] != "",
              f"iwarp frame {n}: tshark does not see an MPA {kind}")
        for key, field in IWARP_FIELDS.items():
            if key not in e:
                continue
            got = r.get(field, "")
            check(got != "" and num(got) == num(e[key]),
                  f"iwarp frame {n} ({e.get('name', kind)}): {field} = {got!r}, encoded {e[key]}")
        if kind == "fpdu":
            fpdus += 1
            tcp = frames[n - 1][14 + 20 + 20:]
            ulen = int.from_bytes(tcp[:2], "big")
            covered = tcp[:len(tcp) - 4]
            check(len(covered) == (2 + ulen + 3) // 4 * 4, f"iwarp frame {n}: pad")
            check(int.from_bytes(tcp[-4:], "little") == crc32c(covered),
                  f"iwarp frame {n}: MPA CRC32C does not match the recomputation")
    check(fpdus >= 16, f"iwarp: only {fpdus} FPDUs")
    verbose = subprocess.run(["tshark", "-r", pcap, "-V"], check=True, capture_output=True,
                             text=True).stdout
    good, bad = verbose.count("(Good CRC32)"), verbose.count("Bad CRC32")
    check(good == fpdus and bad == 0, f"iwarp: tshark CRC check good {good} bad {bad}")
    no_warnings(pcap)
    # tshark's CRC verdict is not vacuous: one flipped ULPDU byte makes exactly one "Bad CRC32".
    data = bytearray(open(pcap, "rb").read())
    off, n, target = 24, 0, max(k for k, e in exp.items() if e["kind"] == "fpdu")
    while off < len(data):
        incl, = struct.unpack_from("<I", data, off + 8)
        n += 1
        if n == target:
            data[off + 16 + 14 + 20 + 20 + 4] ^= 0x01
        off += 16 + incl
    bad_pcap = f"{d}/iwarp_badcrc.pcap"
    open(bad_pcap, "wb").write(data)
    verbose = subprocess.run(["tshark", "-r", bad_pcap, "-V"], check=True, capture_output=True,
                             text=True).stdout
    check(verbose.count("Bad CRC32") == 1, "iwarp: tshark does not notice a corrupted FPDU")


def main():
    d = sys.argv[1]
    check_roce(d)
    check_iwarp(d)
    for e in errors:
        print("FAIL:", e)
    if errors:
        return 1
    print("rdma_tshark_check: RoCEv2 and iWARP frames decode as encoded; ICRCs and MPA CRCs good")
    return 0


if __name__ == "__main__":
    sys.exit(main())
