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


def recovery(label, t, g, fail_us, rtt_us, end_us, hold_us=50.0):
    """Prints how far goodput fell after the failure and when it was back above 90% of its
    mean over the 50 us before, to stay there for hold_us (or that it was not, before the
    first flow ended at end_us: goodput falls as flows end, which is no failure)."""
    kept = [(ti, x) for ti, x in zip(t, g) if ti < end_us]
    if not kept:
        return
    t, g = zip(*kept)
    before = [x for ti, x in zip(t, g) if fail_us - 50 <= ti < fail_us]
    if not before:
        return
    level = sum(before) / len(before)
    after = [(ti, x) for ti, x in zip(t, g) if ti >= fail_us]
    low = min((x for _, x in after), default=0)
    print(f"{label}: goodput {level / 1000:.2f} Tbit/s before the failure, "
          f"{low / 1000:.2f} at worst after it", end="")
    if all(x >= 0.9 * level for _, x in after):
        print("; never below 90%")
        return
    dipped = False
    for i, (ti, x) in enumerate(after):
        dipped |= x < 0.9 * level
        window = [y for tj, y in after[i:] if tj < ti + hold_us]
        if dipped and after[-1][0] >= ti + hold_us and all(y >= 0.9 * level for y in window):
            d = ti - fail_us
            print(f"; back above 90% (for {hold_us:g} us) after {d:.1f} us "
                  f"({d / rtt_us:.1f} RTTs of {rtt_us:g} us)")
            return
    print("; not back above 90% before the first flow ended")


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", required=True, help="prefix of the PNG files")
    ap.add_argument("--fail-us", type=float, help="draw a line at this time (a link failure)")
    ap.add_argument("--rtt-us", type=float, default=14.0, help="unloaded RTT (recovery in RTTs)")
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

    runs_by_label = dict(runs)
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
            ends = [float(x["start_us"]) + float(x["fct_us"])
                    for x in read_rows(runs_by_label[label]) if x["status"] == "ok"]
            recovery(label, t, smooth, a.fail_us, a.rtt_us, min(ends, default=float("inf")))
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
