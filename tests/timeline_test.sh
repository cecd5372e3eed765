#!/usr/bin/env bash
# perf client --timeline: a 3 s run over 2 paths, path 1 blackholed from 1.0 s to 2.0 s. The CSV
# has the documented header, a row per path every interval, path 1 sends next to nothing while dark
# (under 5% of path 0's rate, after its detection) and reads suspect there and active again at the end; the counts of
# first sends in the CSV add up to what --json says was sent. scripts/plot_timeline.py makes a
# PNG of it. An unwritable --timeline exits 2.
# Ports: server 7730, client 7731-7732.
source "$(dirname "$0")/perf_lib.sh"
here=$(cd "$(dirname "$0")" && pwd)

start_server srv -- --bind 127.0.0.1:7730 --paths 2
timeout 60 "$bin" perf client --connect 127.0.0.1:7730 --paths 2 --source-port-base 7731 \
  --mode bw --size 16384 --inflight 2 --duration 3 --timeline "$work/t.csv" \
  --timeline-interval-ms 50 --fault 'path=1:blackhole_after_ms=1000,blackhole_for_ms=1000' \
  --json >"$work/run.json" 2>"$work/client.log" || fail "client failed"
jq_check "$work/run.json" '.verified == true' "run not verified"
/usr/bin/python3 - "$work/t.csv" "$work/run.json" <<'PY' || fail "timeline CSV check"
import csv, json, sys
rows = list(csv.DictReader(open(sys.argv[1])))
run = json.load(open(sys.argv[2]))
head = open(sys.argv[1]).readline().strip().split(",")
assert head == ["t_s", "peer", "path", "state", "sent_pps", "acked_pps", "retx_pps", "lost",
                "rack", "rto", "tlp", "srtt_us", "min_rtt_us", "state_changes"], head
by_path = {}
for r in rows:
    by_path.setdefault(r["path"], []).append(r)
assert sorted(by_path) == ["0", "1"], sorted(by_path)
for p, rs in by_path.items():
    # 50 ms rows over about 3 s (the loop can only be late, never early).
    assert 30 <= len(rs) <= 70, (p, len(rs))
    ts = [float(r["t_s"]) for r in rs]
    assert ts == sorted(ts) and all(b - a >= 0.049 for a, b in zip(ts, ts[1:])), (p, ts[:5])
p1 = by_path["1"]
dark = [r for r in p1 if 1.3 <= float(r["t_s"]) <= 1.95]
# While dark, path 1 carries almost nothing (probes, and a packet when path 0 is suspect too:
# with every path suspect the sender still has to try one).
p0_dark = sum(float(r["sent_pps"]) for r in by_path["0"] if 1.3 <= float(r["t_s"]) <= 1.95)
p1_dark = sum(float(r["sent_pps"]) for r in dark)
assert dark and p1_dark < 0.05 * p0_dark, ("path 1 sent while dark", p1_dark, p0_dark)
assert any(r["state"] == "suspect" for r in dark), "path 1 never suspect while dark"
assert p1[-1]["state"] == "active", "path 1 not active again at the end"
assert any(float(r["sent_pps"]) > 0 for r in p1 if float(r["t_s"]) > 2.3), "path 1 never came back"
# Rates x intervals = packets first sent; the last packets after the last row are not in it.
sent_csv = 0.0
for rs in by_path.values():
    prev = 0.0
    for r in rs:
        t = float(r["t_s"])
        sent_csv += float(r["sent_pps"]) * (t - prev)
        prev = t
sent_json = sum(p["sent"] for p in run["paths"])
assert 0.9 * sent_json <= sent_csv <= sent_json + 2, (sent_csv, sent_json)
print(f"timeline ok: {len(rows)} rows, {sent_csv:.0f} of {sent_json} first sends")
PY
if /usr/bin/python3 -c 'import matplotlib' 2>/dev/null; then
  "$here/../scripts/plot_timeline.py" "$work/t.csv" "$work/t.png" >"$work/plot.log" ||
    fail "plot failed"
  [ "$(head -c 8 "$work/t.png" | od -An -tx1 | tr -d ' \n')" = 89504e470d0a1a0a ] ||
    fail "plot_timeline.py did not write a PNG"
  echo "ok   plot: $(cat "$work/plot.log")"
else
  echo "SKIPPED part: no python3-matplotlib for /usr/bin/python3 (scripts/setup.sh installs it)"
fi
rc=0
"$bin" perf client --connect 127.0.0.1:7730 --timeline /nonexistent/dir/t.csv >/dev/null \
  2>"$work/bad.log" || rc=$?
[ "$rc" -eq 2 ] || fail "unwritable --timeline: exit $rc, want 2"
grep -q -- "--timeline" "$work/bad.log" || fail "the message does not name --timeline"
echo "timeline test ok"
