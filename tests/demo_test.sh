#!/usr/bin/env bash
# `opensrd demo` finishes in a few seconds, verifies, retransmits what path 1 lost and reports
# every path; then the storage part (bridge and adapter) verifies every block it wrote.
set -euo pipefail
bin=$1
out=$(timeout 30 "$bin" demo --paths 4 --loss 0.05) || { echo "demo failed: $out"; exit 1; }
echo "$out"
grep -q "verified     yes" <<<"$out" || { echo "demo not verified"; exit 1; }
grep -Eq "retransmits  [1-9]" <<<"$out" || { echo "demo: no retransmissions despite loss"; exit 1; }
[ "$(grep -c '^  path ' <<<"$out")" -eq 4 ] || { echo "demo: not 4 paths"; exit 1; }
# The storage part: bridge and adapter on a temporary file volume, every block read back.
grep -q "opensrd demo: storage: adapter -> SRD -> bridge" <<<"$out" || { echo "demo: no storage part"; exit 1; }
grep -Eq "^  writes .* [0-9.]+k IOPS" <<<"$out" || { echo "demo: no write IOPS"; exit 1; }
[ "$(grep -c '^  verified     yes' <<<"$out")" -eq 2 ] || { echo "demo: storage not verified"; exit 1; }
