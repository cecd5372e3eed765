#!/usr/bin/python3
"""Plots `opensrd sim --csv` output: FCT CDFs (one line per flows CSV given) and goodput over
time (from each run's <stem>_goodput.csv, when present) into PNG files.

usage: scripts/plot_sim.py --out PREFIX [--fail-us T] LABEL=FLOWS.csv [LABEL=FLOWS.csv ...]
writes PREFIX_fct_cdf.png and, if goodput series exist, PREFIX_goodput.png.
"""
import argparse
import csv
import os
import sys

import matplotlib

matplotlib.use("Agg")  # files only, no display
import matplotlib.pyplot as plt  # noqa: E402


def read_rows(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def goodput_path(flows_csv):
    stem, ext = os.path.splitext(flows_csv)
    return (stem if ext else flows_csv) + "_goodput.csv"


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", required=True, help="prefix of the PNG files")
    ap.add_argument("--fail-us", type=float, help="draw a line at this time (a link failure)")
    ap.add_argument("--smooth-us", type=float, default=5.0, help="goodput moving window")
    ap.add_argument("runs", nargs="+", help="LABEL=FLOWS.csv")
    a = ap.parse_args()

    runs = []
    for r in a.runs:
        if "=" not in r:
            sys.exit(f"plot_sim: '{r}' is not LABEL=FLOWS.csv")
        label, path = r.split("=", 1)
        runs.append((label, path))

    fig, ax = plt.subplots(figsize=(6, 4))
    for label, path in runs:
        fct = sorted(float(x["fct_us"]) for x in read_rows(path) if x["status"] == "ok")
        if not fct:
            continue
        ys = [(i + 1) / len(fct) for i in range(len(fct))]
        ax.step(fct, ys, where="post", label=label)
        ideal = float(read_rows(path)[0]["ideal_us"])
    ax.axvline(ideal, color="grey", linestyle=":", label="ideal (unloaded)")
    ax.set_xlabel("flow completion time (us)")
    ax.set_ylabel("fraction of flows")
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(a.out + "_fct_cdf.png", dpi=120)
    print(a.out + "_fct_cdf.png")

    series = [(label, goodput_path(p)) for label, p in runs if os.path.exists(goodput_path(p))]
    if not series:
        return
    fig, ax = plt.subplots(figsize=(6, 4))
    for label, path in series:
        rows = read_rows(path)
        t = [float(r["t_us"]) for r in rows]
        g = [float(r["gbps"]) for r in rows]
        step = (t[1] - t[0]) if len(t) > 1 else 1.0
        w = max(1, int(round(a.smooth_us / step)))
        smooth = [sum(g[max(0, i - w + 1) : i + 1]) / len(g[max(0, i - w + 1) : i + 1])
                  for i in range(len(g))]
        ax.plot(t, [x / 1000 for x in smooth], label=label)
    if a.fail_us is not None:
        ax.axvline(a.fail_us, color="red", linestyle="--", label="link fails")
    ax.set_xlabel("time since the flows started (us)")
    ax.set_ylabel(f"data arriving at hosts (Tbit/s, {a.smooth_us:g} us mean)")
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(a.out + "_goodput.png", dpi=120)
    print(a.out + "_goodput.png")


if __name__ == "__main__":
    main()
