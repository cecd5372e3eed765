#!/usr/bin/python3
"""Draws `opensrd perf client --timeline FILE.csv` as a PNG: per path, the DATA packet rate
(first sends and acks), the smoothed RTT, and the re-sends of its lost packets by cause (RACK,
RTO, tail-loss probe), with the time the path spent suspect shaded.

Usage: scripts/plot_timeline.py TIMELINE.csv OUT.png [--title TEXT]
Needs python3-matplotlib (scripts/setup.sh installs it), hence Debian's /usr/bin/python3 in the
first line rather than whichever python3 comes first in PATH."""
import argparse
import csv
import sys
from collections import defaultdict

import matplotlib

matplotlib.use("Agg")  # no display needed
import matplotlib.pyplot as plt  # noqa: E402


def load(path):
    series = defaultdict(lambda: defaultdict(list))  # (peer, path) -> column -> values
    with open(path, newline="") as f:
        rows = csv.DictReader(f)
        need = {"t_s", "peer", "path", "state", "sent_pps", "acked_pps", "srtt_us", "rack",
                "rto", "tlp"}
        missing = need - set(rows.fieldnames or [])
        if missing:
            sys.exit(f"{path}: not a --timeline CSV (missing {', '.join(sorted(missing))})")
        for r in rows:
            s = series[(r["peer"], r["path"])]
            for k, v in r.items():
                s[k].append(v if k == "state" else float(v))
    if not series:
        sys.exit(f"{path}: no rows")
    return series


def suspect_spans(t, states):
    spans, start = [], None
    for ti, st in zip(t, states):
        if st == "suspect" and start is None:
            start = ti
        elif st != "suspect" and start is not None:
            spans.append((start, ti))
            start = None
    if start is not None:
        spans.append((start, t[-1]))
    return spans


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("csv")
    ap.add_argument("png")
    ap.add_argument("--title", default="")
    a = ap.parse_args()
    series = load(a.csv)
    fig, (ax_rate, ax_rtt, ax_retx) = plt.subplots(3, 1, sharex=True, figsize=(10, 8))
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for i, ((peer, path), s) in enumerate(sorted(series.items())):
        c = colors[i % len(colors)]
        label = f"path {path}" if len(series) <= len(colors) else f"peer {peer} path {path}"
        t = s["t_s"]
        ax_rate.plot(t, [v / 1e3 for v in s["sent_pps"]], color=c, label=f"{label} sent")
        ax_rate.plot(t, [v / 1e3 for v in s["acked_pps"]], color=c, ls=":", label=f"{label} acked")
        ax_rtt.plot(t, s["srtt_us"], color=c, label=label)
        for cause, marker in (("rto", "o"), ("tlp", "^"), ("rack", "s")):
            pts = [(ti, v) for ti, v in zip(t, s[cause]) if v > 0]
            if pts:
                ax_retx.scatter([p[0] for p in pts], [p[1] for p in pts], color=c, marker=marker,
                                s=14, label=f"{label} {cause}")
        for lo, hi in suspect_spans(t, s["state"]):
            for ax in (ax_rate, ax_rtt, ax_retx):
                ax.axvspan(lo, hi, color=c, alpha=0.12, lw=0)
    ax_rate.set_ylabel("DATA packets/s (k)")
    ax_rtt.set_ylabel("smoothed RTT (us)")
    ax_retx.set_ylabel("lost packets re-sent\nper interval")
    ax_retx.set_xlabel("seconds since the run began (shaded: path suspect)")
    for ax in (ax_rate, ax_rtt, ax_retx):
        ax.grid(alpha=0.3)
        handles, _ = ax.get_legend_handles_labels()
        if handles:
            ax.legend(fontsize=7, ncol=4, loc="upper right")
    if a.title:
        fig.suptitle(a.title)
    fig.tight_layout()
    fig.savefig(a.png, dpi=100)
    print(f"{a.png}: {sum(len(s['t_s']) for s in series.values())} rows, {len(series)} paths")


if __name__ == "__main__":
    main()
