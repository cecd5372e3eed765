#!/usr/bin/env python3
"""An on-path attacker against a live opensrd perf run on loopback (needs root: it sniffs lo
with an AF_PACKET socket). It waits for a DATA packet from the client to the server, reads the
context ids and incarnations off it, then:
  reset   sends forged RESETs to the client "from the server" (right ids, no reset token);
  hijack  replays the captured DATA packet to the server from its own address, repeatedly;
  hello   replays a captured HELLO (with its cookie) to the server from its own address.
It prints what it did and how many datagrams came back to its own socket.
Usage: attack_cli.py MODE SERVER_PORT [COUNT]"""
import os
import socket
import struct
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "fuzz"))
from corpus_seeds import crc32c, split_gso  # noqa: E402

ETH_P_ALL = 0x0003


def sniff(server_port, want_type, timeout):
    """(udp payload, client address) of the first opensrd packet of `want_type` to the server."""
    s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ALL))
    s.bind(("lo", 0))
    s.settimeout(0.2)
    ready = os.environ.get("ATTACK_READY")
    if ready:  # tell the test the sniffer is listening (a HELLO is only sent once)
        open(ready, "w").close()
    end = time.time() + timeout
    while time.time() < end:
        try:
            frame = s.recv(65535)
        except socket.timeout:
            continue
        ip = frame[14:]
        if len(ip) < 28 or ip[0] >> 4 != 4 or ip[9] != 17:
            continue
        ihl = (ip[0] & 15) * 4
        sport, dport = struct.unpack_from(">HH", ip, ihl)
        payload = ip[ihl + 8:]
        if dport != server_port or len(payload) < 32 or payload[:2] != b"SD":
            continue
        if payload[3] == want_type:
            src = socket.inet_ntoa(ip[12:16])
            # A UDP GSO send shows on lo as one payload of several datagrams: take the first.
            return split_gso(payload)[0], (src, sport)
    return None, None


def main():
    mode, server_port = sys.argv[1], int(sys.argv[2])
    count = int(sys.argv[3]) if len(sys.argv) > 3 else 20
    want = {"reset": 1, "hijack": 1, "hello": 3}[mode]
    pkt, client = sniff(server_port, want, 5.0)
    if pkt is None:
        sys.exit("no packet of type %d to port %d seen" % (want, server_port))
    me = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    me.bind(("127.0.0.99", 0))
    me.setblocking(False)
    flags, path, dst_ctx, src_ctx, src_inc, dst_inc = (pkt[4], pkt[5]) + struct.unpack_from(
        ">IIII", pkt, 8)
    for _ in range(count):
        if mode == "reset":
            # As the server would answer the client's packet: mirrored ids, token unknown (zeros).
            body = struct.pack(">HBBBBHIIIII", 0x5344, 1, 7, 0, path, 0, src_ctx, dst_ctx,
                               dst_inc, src_inc, 0)
            body += struct.pack(">II", dst_inc, 0) + bytes(16)
            me.sendto(body + struct.pack(">I", crc32c(body)), client)
        else:
            me.sendto(pkt, ("127.0.0.1", server_port))
        time.sleep(0.02)
    time.sleep(0.3)
    back = other = 0
    while True:
        try:
            d = me.recv(65535)
        except BlockingIOError:
            break
        back += 1
        # Path challenges (9) and RETRYs (8) are the only answers an unproven address may get.
        other += not (len(d) > 3 and d[3] in (8, 9))
    print("attack %s: sent %d, %d datagrams came back to the attacker, %d other than "
          "PATH_CHALLENGE/RETRY" % (mode, count, back, other))


if __name__ == "__main__":
    main()
