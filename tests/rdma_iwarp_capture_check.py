#!/usr/bin/env python3
"""Judges a tcpdump capture of three `opensrd rdma client --protocol iwarp` runs (write 3000 B
x2, read 500 B x1, send 100 B x1, one op in flight) with tshark's own iWARP dissectors
(iwarp_mpa, iwarp_ddp_rdmap): the MPA request and reply, then every FPDU with the expected
RDMAP opcode, STag, tagged offset, ULPDU length and read size, in order; the STag and address
come from the server's MPA reply private data (opensrd's region description, decoded here), so
nothing is taken from the program under test's own report. Every FPDU must carry a CRC that
tshark recomputed and found good (\"Good CRC32\" in iwarp_mpa.crc_check's text;
without negotiated CRCs the dissector shows iwarp_mpa.crc instead), and no frame may be
malformed or carry an expert warning. Usage: rdma_iwarp_capture_check.py PCAP SERVER_PORT"""
import subprocess
import sys

pcap, port = sys.argv[1], sys.argv[2]
FIELDS = ["frame.number", "tcp.stream", "tcp.srcport", "iwarp_mpa.req", "iwarp_mpa.rep",
          "iwarp_mpa.privatedata", "iwarp_mpa.ulpdulength", "iwarp_mpa.crc", "iwarp_mpa.crc_check",
          "iwarp_rdma.opcode", "iwarp_ddp.stag", "iwarp_ddp.tagged_offset", "iwarp_ddp.qn",
          "iwarp_ddp.msn", "iwarp_ddp.mo", "iwarp_rdma.rdmardsz", "iwarp_rdma.srcstag",
          "iwarp_rdma.srcto", "iwarp_rdma.sinkstag", "_ws.malformed", "_ws.expert.severity",
          "_ws.expert.group", "_ws.expert.message"]
cmd = ["tshark", "-r", pcap, "-T", "fields", "-E", "occurrence=a", "-E", "separator=/t"]
for f in FIELDS:
    cmd += ["-e", f]
out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
failures = []


def check(ok, msg):
    if not ok:
        failures.append(msg)


WARN = 6291456  # PI_WARN
# TCP's own sequence analysis (a D-SACK or retransmission when the shared machine stalls the
# loopback) is the kernel's business, not the iWARP encoding: counted, not failed.
PI_SEQUENCE = 0x02000000
tcp_sequence_notes = 0
streams = {}
for line in out.splitlines():
    v = dict(zip(FIELDS, line.split("\t")))
    n = v["frame.number"]
    check(v["_ws.malformed"] == "", f"frame {n}: malformed")
    groups = v["_ws.expert.group"].split(",")
    for i, sev in enumerate(filter(None, v["_ws.expert.severity"].split(","))):
        if i < len(groups) and groups[i] and int(groups[i], 0) == PI_SEQUENCE:
            tcp_sequence_notes += int(sev) >= WARN
            continue
        check(int(sev) < WARN, f"frame {n}: expert warning {v['_ws.expert.message']}")
    check(v["iwarp_mpa.crc"] == "", f"frame {n}: MPA CRC bad ({v['iwarp_mpa.crc']})")
    s = streams.setdefault(int(v["tcp.stream"]), {"fpdus": [], "pd": None, "req": 0})
    to_server = v["tcp.srcport"] != port
    if v["iwarp_mpa.req"]:
        s["req"] += 1
    if v["iwarp_mpa.rep"]:
        s["pd"] = bytes.fromhex(v["iwarp_mpa.privatedata"].replace(":", ""))
    ulens = [x for x in v["iwarp_mpa.ulpdulength"].split(",") if x]
    crcs = [x for x in v["iwarp_mpa.crc_check"].split(",") if x]
    if v["iwarp_mpa.req"] or v["iwarp_mpa.rep"]:
        continue
    check(len(crcs) == len(ulens), f"frame {n}: {len(ulens)} FPDUs, {len(crcs)} good CRCs")
    cols = {f: v[f].split(",") for f in FIELDS}
    ops = [x for x in cols["iwarp_rdma.opcode"] if x]
    # Per FPDU: tshark lists each field once per FPDU that has it; tagged fields for tagged
    # FPDUs only, read fields for read requests only. Walk them with per-field cursors.
    cur = {f: 0 for f in FIELDS}

    def take(f):
        vals = [x for x in cols[f] if x]
        i = cur[f]
        cur[f] += 1
        return vals[i] if i < len(vals) else None

    for i, op in enumerate(ops):
        op = int(op, 16)
        e = {"dir": "c2s" if to_server else "s2c", "op": op, "ulen": int(ulens[i]) if i < len(ulens) else None}
        if op in (0, 2):
            e["stag"] = int(take("iwarp_ddp.stag"), 16)
            e["to"] = int(take("iwarp_ddp.tagged_offset"), 16)
        else:
            e["qn"] = int(take("iwarp_ddp.qn"))
            e["msn"] = int(take("iwarp_ddp.msn"))
            e["mo"] = int(take("iwarp_ddp.mo"))
        if op == 1:
            e["size"] = int(take("iwarp_rdma.rdmardsz"))
            e["src"] = int(take("iwarp_rdma.srcstag"), 16)
            e["srcto"] = int(take("iwarp_rdma.srcto"), 16)
        s["fpdus"].append(e)

check(len(streams) == 3, f"{len(streams)} TCP connections, 3 expected")
runs = [s for _, s in sorted(streams.items())]
if len(runs) != 3:
    print("\n".join(failures))
    sys.exit(1)


def expect(run, name, want):
    pd = run["pd"]
    check(run["req"] == 1, f"{name}: {run['req']} MPA requests")
    if pd is None or len(pd) < 36 or pd[4:8] != b"OSRD":
        check(False, f"{name}: the MPA reply's private data is not an opensrd region description")
        return
    # RFC 6581 word first, then opensrd's 32 bytes: magic, version, VA, length, STag, credits.
    va = int.from_bytes(pd[12:20], "big")
    rkey = int.from_bytes(pd[28:32], "big")
    got = run["fpdus"]
    want = [dict(w, **{k: (va if w[k] == "VA" else rkey if w[k] == "RKEY" else w[k])
                       for k in w if w[k] in ("VA", "RKEY")}) for w in want]
    for d in ("c2s", "s2c"):
        g = [f for f in got if f["dir"] == d]
        w = [f for f in want if f["dir"] == d]
        check(len(g) == len(w), f"{name} {d}: {len(g)} FPDUs, {len(w)} expected")
        for i, (a, b) in enumerate(zip(g, w)):
            for k, val in b.items():
                check(a.get(k) == val, f"{name} {d} FPDU {i}: {k} = {a.get(k)!r}, expected {val!r}")


RTR = {"dir": "c2s", "op": 0, "stag": 0, "to": 0, "ulen": 14}
def W(n): return {"dir": "c2s", "op": 0, "stag": "RKEY", "to": "VA", "ulen": 14 + n}
def RQ(n): return {"dir": "c2s", "op": 1, "src": "RKEY", "srcto": "VA", "size": n, "qn": 1, "ulen": 46}
def RS(n): return {"dir": "s2c", "op": 2, "ulen": 14 + n}
expect(runs[0], "write run", [RTR, W(3000), RQ(0), W(3000), RQ(0), RQ(3000), RS(0), RS(0), RS(3000)])
expect(runs[1], "read run", [RTR, W(500), RQ(0), RQ(500), RS(0), RS(500)])
expect(runs[2], "send run", [RTR, {"dir": "c2s", "op": 3, "qn": 0, "msn": 1, "mo": 0, "ulen": 118},
                             {"dir": "s2c", "op": 3, "qn": 0, "msn": 1, "mo": 0, "ulen": 34}])
# The dissector recomputes each CRC32C and says so only in the field's text.
text = subprocess.run(["tshark", "-r", pcap, "-V"], check=True, capture_output=True,
                      text=True).stdout
nfpdus = sum(len(s["fpdus"]) for s in runs)
good, bad = text.count("(Good CRC32)"), text.count("Bad CRC32")
check(bad == 0, f"{bad} FPDUs with a bad CRC32C")
check(good == nfpdus, f"{good} good CRC32Cs for {nfpdus} FPDUs")
if failures:
    print("\n".join(failures[:40]))
    sys.exit(1)
print(f"ok: {nfpdus} FPDUs in 3 connections decoded as expected, CRCs good "
      f"({tcp_sequence_notes} TCP sequence warnings ignored)")
