#!/usr/bin/env python3
"""Decodes a capture with tshark and tools/wireshark/opensrd.lua and summarises it per direction.

Usage: opensrd_decode.py LUA PCAP SERVER_PORT OUT.json [TSHARK_OPTION...]

Every opensrd datagram (a UDP packet from a GSO batch may hold several) becomes one record:
direction (c2s: to SERVER_PORT, s2c: from it; all c2s when SERVER_PORT is 0), type, flags, path id, contexts, psn, tx_ts, crc
and the ack block's cum_psn. OUT.json gets the counts the tests compare with the endpoint's own
counters, plus every problem tshark reported (frames not decoded as opensrd, malformed frames,
expert errors, bad CRCs), and the datagram signatures used to compare two captures.
"""
import collections
import json
import subprocess
import sys

ERROR = 8388608  # PI_ERROR in _ws.expert.severity


def walk(node, fn):
    """Calls fn(key, value) for every key of a tshark JSON tree (lists from duplicate keys)."""
    if isinstance(node, dict):
        for k, v in node.items():
            if isinstance(v, list) and k != "_ws.expert":
                for x in v:
                    fn(k, x)
                    walk(x, fn)
            else:
                fn(k, v)
                walk(v, fn)
    elif isinstance(node, list):
        for x in node:
            walk(x, fn)


def fields(tree):
    """The opensrd.* leaf values of one datagram's tree: name -> list of values."""
    out = collections.defaultdict(list)

    def take(k, v):
        if k.startswith("opensrd.") and not isinstance(v, (dict, list)):
            out[k].append(v)

    walk(tree, take)
    return out


def main():
    lua, pcap, server_port, out_path = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
    extra = sys.argv[5:]
    # Payload bytes are not needed: leave them out of the JSON (-J limits the layers, and the
    # payload field is filtered by name below).
    # Heuristics first: an endpoint's ephemeral port can be one Wireshark has registered for
    # another protocol (UDP tries the lower port's dissector before any heuristic), and then a
    # random quarter of a run's frames decode as that protocol. opensrd's heuristic checks the
    # magic, version and type, so trying it first is safe.
    proc = subprocess.run(
        ["tshark", "-X", "lua_script:" + lua, "-o", "udp.try_heuristic_first:TRUE", *extra,
         "-r", pcap, "-T", "json",
         "--no-duplicate-keys",
         "-J", "frame ip ipv6 udp opensrd _ws.malformed _ws.expert"],
        capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        print(proc.stderr, file=sys.stderr)
        sys.exit("tshark failed")
    frames = json.loads(proc.stdout or "[]")
    problems = []
    counts = collections.Counter()
    distinct_c2s_psn = set()
    signatures = {"c2s": [], "s2c": []}
    max_cum = {"c2s": None, "s2c": None}
    gso_frames = 0
    # Causality of acks: a PSN the server acknowledges (below cum_psn or inside a SACK range)
    # must have gone by as client DATA earlier in the capture (only meaningful for a capture
    # that sees the client's sends before the server's acks, e.g. tcpdump or the client's).
    sent_psns = collections.defaultdict(set)  # client context -> PSNs seen as c2s DATA
    lowest_unsent = collections.defaultdict(int)
    acked_psns = collections.defaultdict(set)  # client context -> PSNs covered by s2c ranges
    for fr in frames:
        layers = fr["_source"]["layers"]
        num = layers.get("frame", {}).get("frame.number", "?")
        udp = layers.get("udp")
        if udp is None:
            problems.append(f"frame {num}: not UDP")
            continue
        sport, dport = int(udp["udp.srcport"]), int(udp["udp.dstport"])
        direction = "c2s" if dport == server_port or server_port == 0 else \
            "s2c" if sport == server_port else None
        if direction is None:
            problems.append(f"frame {num}: ports {sport}->{dport} are not the run's")
            continue
        if "_ws.malformed" in layers:
            problems.append(f"frame {num}: malformed")

        def expert(k, v):
            if k == "_ws.expert.severity" and int(v) >= ERROR:
                problems.append(f"frame {num}: expert error")

        walk(layers, expert)
        trees = layers.get("opensrd")
        if trees is None:
            problems.append(f"frame {num}: not decoded as opensrd")
            continue
        if isinstance(trees, dict):
            trees = [trees]
        if len(trees) > 1:
            gso_frames += 1
        for t in trees:
            f = fields(t)

            def one(name, default=None):
                v = f.get(name)
                return v[0] if v else default

            for bt in f.get("opensrd.block.type", []):
                counts[f"block_type_{bt}"] += 1
            counts["key_trailers"] += 1 if "opensrd.tag" in f else 0
            counts["encrypted"] += 1 if "opensrd.ciphertext" in f else 0
            # AEAD: the CRC is encrypted, the dissector cannot check it.
            if "opensrd.ciphertext" not in f and one("opensrd.crc32c.status") != "1":
                problems.append(f"frame {num}: CRC status {one('opensrd.crc32c.status')}")
            typ = int(one("opensrd.type", "0"))
            flags = int(one("opensrd.flags", "0x00"), 16)
            psn = one("opensrd.psn")
            counts[f"{direction}_datagrams"] += 1
            counts[f"{direction}_type_{typ}"] += 1
            if typ == 1:
                counts[f"{direction}_data"] += 1
                if flags & 0x04:
                    counts[f"{direction}_data_retx"] += 1
                else:
                    counts[f"{direction}_data_original"] += 1
                if flags & 0x08:
                    counts[f"{direction}_acks_piggybacked"] += 1
                if direction == "c2s":
                    distinct_c2s_psn.add((one("opensrd.src_ctx"), psn))
            elif typ == 2:
                counts[f"{direction}_acks"] += 1
            if direction == "c2s" and typ == 1 and psn is not None:
                ctx = one("opensrd.src_ctx")
                sent_psns[ctx].add(int(psn))
                while lowest_unsent[ctx] in sent_psns[ctx]:
                    lowest_unsent[ctx] += 1
            if direction == "s2c" and one("opensrd.cum_psn") is not None:
                ctx = one("opensrd.dst_ctx")
                if int(one("opensrd.cum_psn")) > lowest_unsent[ctx]:
                    problems.append(f"frame {num}: cum_psn {one('opensrd.cum_psn')} acks PSNs "
                                    f"never seen sent (first unseen {lowest_unsent[ctx]})")
                for b, e in zip(f.get("opensrd.ranges.begin", []), f.get("opensrd.ranges.end", [])):
                    for x in range(int(b), int(e)):
                        acked_psns[ctx].add(x)
                        if x not in sent_psns[ctx]:
                            problems.append(f"frame {num}: SACK range acks PSN {x} never seen sent")
                            break
            cum = one("opensrd.cum_psn")
            if cum is not None:
                c = int(cum)
                if max_cum[direction] is None or ((c - max_cum[direction]) & 0xFFFFFFFF) < 2**31:
                    max_cum[direction] = c
            signatures[direction].append("|".join(
                str(x) for x in (typ, flags, one("opensrd.path_id"), one("opensrd.src_ctx"),
                                 one("opensrd.dst_ctx"), psn, one("opensrd.tx_ts"),
                                 one("opensrd.crc32c"))))
    result = {
        "frames": len(frames),
        "gso_frames": gso_frames,
        "counts": dict(counts),
        "c2s_distinct_data_psns": len(distinct_c2s_psn),
        "max_cum_psn": max_cum,
        "sack_acked_psns": sum(len(v) for v in acked_psns.values()),
        "problems": problems,
        "signatures": {k: sorted(v) for k, v in signatures.items()},
    }
    with open(out_path, "w") as out:
        json.dump(result, out)


if __name__ == "__main__":
    main()
