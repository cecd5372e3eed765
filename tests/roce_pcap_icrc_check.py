#!/usr/bin/env python3
"""Checks every RoCEv2 frame of a tcpdump capture (Ethernet, as taken on the guest's tap): its
ICRC is recomputed with rdma_tshark_check.roce_icrc (zlib.crc32, nothing shared with the C++
codec). Prints per-direction counts and the retransmitted request packets each side sent (a
request PSN seen again from the same sender) and the packets that arrived out of order (a request
or READ response PSN seen for the first time after a later PSN of the same queue pair: reordered
on the way, not resent; meaningful only without loss, since a packet dropped before the capture
point makes its resend look out of order). Usage: roce_pcap_icrc_check.py PCAP HOST_IP
[--want-retransmits] [--want-reordered host|guest|both] -- exits 1 on a bad ICRC, no frames in a
direction, or (with the flags) no retransmission by either side, no reordered packet from the
side(s) named."""
import os
import struct
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from rdma_tshark_check import read_pcap, roce_icrc  # noqa: E402


def main():
    path, host_ip = sys.argv[1], sys.argv[2]
    want_retx = "--want-retransmits" in sys.argv
    want_reordered = []
    if "--want-reordered" in sys.argv:
        which = sys.argv[sys.argv.index("--want-reordered") + 1]
        want_reordered = ["host", "guest"] if which == "both" else [which]
    highest = {}  # (side, dest QPN, response?) -> highest PSN seen (24-bit, wrapping)
    reordered = {"host": 0, "guest": 0}
    host = bytes(int(x) for x in host_ip.split("."))
    count = {"host": 0, "guest": 0}
    bad = 0
    seen = {"host": set(), "guest": set()}
    retx = {"host": 0, "guest": 0}
    ids = {"host": set(), "guest": set()}
    for f in read_pcap(path):
        if len(f) < 14 + 28 + 16 or f[12:14] != b"\x08\x00":
            continue
        ip = f[14:]
        ihl = (ip[0] & 0x0F) * 4
        total, = struct.unpack_from(">H", ip, 2)
        ip = ip[:total]
        if ip[9] != 17 or struct.unpack_from(">H", ip, ihl + 2)[0] != 4791:
            continue
        side = "host" if ip[12:16] == host else "guest"
        count[side] += 1
        ids[side].add(struct.unpack_from(">H", ip, 4)[0])
        got, = struct.unpack_from("<I", ip, len(ip) - 4)
        if got != roce_icrc(ip):
            bad += 1
            print("bad ICRC in a %s frame of %d bytes" % (side, len(ip)))
        bth = ip[ihl + 8:]
        opcode, qpn, psn = bth[0], int.from_bytes(bth[5:8], "big"), int.from_bytes(bth[9:12], "big")
        is_request = opcode <= 0x0C or opcode in (0x13, 0x14)  # SEND, WRITE, READ, atomics
        if is_request or 0x0D <= opcode <= 0x10:  # or READ responses
            key = (qpn, psn, is_request)
            if key in seen[side]:
                retx[side] += is_request
            else:
                flow = (side, qpn, is_request)
                top = highest.get(flow)
                behind = top is not None and 0 < (top - psn) % (1 << 24) < (1 << 23)
                if behind:
                    reordered[side] += 1
                elif top is None or (psn - top) % (1 << 24) < (1 << 23):
                    highest[flow] = psn
            seen[side].add(key)
    print("RoCEv2 frames: host %d, guest %d; bad ICRC %d; retransmitted requests: host %d, "
          "guest %d; out of order: host %d, guest %d; distinct IP IDs: host %d, guest %d"
          % (count["host"], count["guest"], bad, retx["host"], retx["guest"],
             reordered["host"], reordered["guest"], len(ids["host"]), len(ids["guest"])))
    ok = bad == 0 and count["host"] > 0 and count["guest"] > 0
    if want_retx and (retx["host"] == 0 or retx["guest"] == 0):
        print("expected retransmissions from both sides")
        ok = False
    for side in want_reordered:
        if reordered[side] == 0:
            print("expected packets from the %s out of order" % side)
            ok = False
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
