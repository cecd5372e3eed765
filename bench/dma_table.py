#!/usr/bin/env python3
"""Turns bench_dma's JSON output (--benchmark_out, with --benchmark_repetitions) into the
Markdown tables of docs/DMA.md.

Paired table (BM_Paired): per size and depth, ns per descriptor of memcpy and of the engine
with prefetch off, on, auto and the helper thread (each the median over iterations, then the median over
repetitions), the ratios on/off and auto/off, and what auto had settled on at the end.
Warm table (BM_PairedWarm): the same without the flush.
Separate table (BM_Dma, BM_Memcpy, BM_DmaWarm), if present: median ns per descriptor over
repetitions of each mode, including the helper thread, which cannot be paired.
Usage: bench/dma_table.py RESULT.json"""
import json
import re
import statistics
import sys

MODES = ["off", "on", "auto", "helper"]
NAME = re.compile(r"BM_(\w+)/size:(\d+)/depth:(\d+)(?:/mode:(\d))?")


def main():
    data = json.load(open(sys.argv[1]))
    reps = {}
    for b in data["benchmarks"]:
        if b.get("run_type") != "aggregate":
            reps.setdefault(b["run_name"], []).append(b)
    paired, warm, single = {}, {}, {}
    for name, runs in reps.items():
        m = NAME.match(name)
        if not m:
            continue
        kind, size, depth, mode = m.group(1), int(m.group(2)), int(m.group(3)), m.group(4)
        med = lambda k: statistics.median(r[k] for r in runs)
        if kind in ("Paired", "PairedWarm"):
            (paired if kind == "Paired" else warm)[(size, depth)] = {k: med(k) for k in (
                "memcpy_ns", "off_ns", "on_ns", "auto_ns", "helper_ns", "on/off", "auto/off",
                "helper/off", "auto_on")}
        else:
            col = "memcpy" if kind == "Memcpy" else ("warm_" if kind == "DmaWarm" else "") + \
                MODES[int(mode)]
            single.setdefault((size, depth), {})[col] = med("ns_per_desc")
    for title, table in (("", paired), ("Warm sources (BM_PairedWarm):", warm)):
        if not table:
            continue
        if title:
            print()
            print(title)
            print()
        print("| size | depth | memcpy ns | off ns | on ns | auto ns | helper ns | on/off | "
              "auto/off | helper/off | auto chose | off GB/s | best GB/s | memcpy GB/s |")
        print("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|:---:|---:|---:|---:|")
        for (size, depth), r in sorted(table.items(), key=lambda kv: (kv[0][1], kv[0][0])):
            best = min(r["off_ns"], r["on_ns"], r["auto_ns"])
            print(f"| {size} | {depth} | {r['memcpy_ns']:.0f} | {r['off_ns']:.0f} | "
                  f"{r['on_ns']:.0f} | {r['auto_ns']:.0f} | {r['helper_ns']:.0f} | "
                  f"{r['on/off']:.2f} | {r['auto/off']:.2f} | {r['helper/off']:.2f} | "
                  f"{'on' if r['auto_on'] >= 0.5 else 'off'} | "
                  f"{size / r['off_ns']:.2f} | {size / best:.2f} | {size / r['memcpy_ns']:.2f} |")
    if single:
        print()
        cols = [c for c in ["memcpy"] + MODES + ["warm_off", "warm_on", "warm_auto"]
                if any(c in r for r in single.values())]
        print("| size | depth | " + " | ".join(f"{c} ns" for c in cols) + " |")
        print("|---:|---:|" + "---:|" * len(cols))
        for (size, depth), r in sorted(single.items(), key=lambda kv: (kv[0][1], kv[0][0])):
            print(f"| {size} | {depth} | " +
                  " | ".join(f"{r[c]:.0f}" if c in r else "" for c in cols) + " |")


if __name__ == "__main__":
    main()
