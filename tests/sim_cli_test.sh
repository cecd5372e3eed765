#!/usr/bin/env bash
# `opensrd sim`: its exit codes (2 names the bad spec, 1 when messages are lost), the JSON fields
# the issue asks for, the CSVs, and the plot script on them. Small fabrics only (seconds).
set -euo pipefail
bin=$1
root=$(cd "$(dirname "$0")/.." && pwd)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
ls='leafspine:leaves=4,spines=2,hosts=4'

"$bin" --help | grep -q "^  sim" || { echo "--help does not list 'sim'"; exit 1; }
expect2() {  # expect2 NEEDLE ARGS...: exit 2 with a message containing NEEDLE
  local needle=$1 rc=0 err; shift
  err=$("$bin" sim --quiet "$@" 2>&1 >/dev/null) || rc=$?
  [ "$rc" -eq 2 ] && grep -qF -- "$needle" <<<"$err" ||
    { echo "sim $*: exit $rc, want 2 naming '$needle': $err"; exit 1; }
}
expect2 "k must be even" --topology fattree:k=7
expect2 "unknown kind 'torus'" --topology torus:k=4
expect2 "unknown key 'spines'" --topology fattree:k=4,spines=2
expect2 "unknown kind 'shuffle'" --topology "$ls" --workload shuffle
expect2 "no node named 'spine9'" --topology "$ls" --fail spine9-leaf0@1us
expect2 "a time needs a unit" --topology "$ls" --time-limit 5
expect2 "--paths" --topology "$ls" --paths 0

"$bin" sim --quiet --topology "$ls" --workload permutation:size=64KiB --paths 8 --seed 3 \
  --json --csv "$tmp/flows.csv" >"$tmp/out.json"
for f in .hosts .flows .fct_us.min .fct_us.p50 .fct_us.p99 .fct_us.max .ideal_fct_us \
  .goodput_frac .retransmits .lost_messages .sim.events .sim.wall_s .sim.peak_rss_mb; do
  v=$(jq -e "$f" "$tmp/out.json") || { echo "JSON lacks $f: $(cat "$tmp/out.json")"; exit 1; }
  [ "$v" != null ] || { echo "JSON $f is null"; exit 1; }
done
[ "$(jq .hosts "$tmp/out.json")" -eq 16 ] || { echo "hosts != 16"; exit 1; }
[ "$(jq .lost_messages "$tmp/out.json")" -eq 0 ] || { echo "lost messages"; exit 1; }
[ "$(wc -l <"$tmp/flows.csv")" -eq 17 ] || { echo "flows.csv: want 16 rows + header"; exit 1; }
[ -s "$tmp/flows_goodput.csv" ] || { echo "no goodput CSV"; exit 1; }

# Flows cut off by the time limit are lost: exit 1.
rc=0; "$bin" sim --quiet --topology "$ls" --time-limit 2us >/dev/null || rc=$?
[ "$rc" -eq 1 ] || { echo "unfinished flows: exit $rc, want 1"; exit 1; }

# Debian's python3 (python3-matplotlib), not whichever python3 leads PATH.
/usr/bin/python3 "$root/scripts/plot_sim.py" --out "$tmp/p" --fail-us 10 "run=$tmp/flows.csv" >/dev/null
[ -s "$tmp/p_fct_cdf.png" ] && [ -s "$tmp/p_goodput.png" ] || { echo "plots missing"; exit 1; }
echo "sim cli ok"
