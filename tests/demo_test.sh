#!/usr/bin/env bash
# `opensrd demo` finishes in a few seconds, verifies, retransmits what path 1 lost and reports
# every path.
set -euo pipefail
bin=$1
out=$(timeout 30 "$bin" demo --paths 4 --loss 0.05) || { echo "demo failed: $out"; exit 1; }
echo "$out"
grep -q "verified     yes" <<<"$out" || { echo "demo not verified"; exit 1; }
grep -Eq "retransmits  [1-9]" <<<"$out" || { echo "demo: no retransmissions despite loss"; exit 1; }
[ "$(grep -c '^  path ' <<<"$out")" -eq 4 ] || { echo "demo: not 4 paths"; exit 1; }
