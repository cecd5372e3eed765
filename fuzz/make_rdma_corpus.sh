#!/usr/bin/env bash
# Regenerates the committed seed corpora fuzz/corpus/roce and fuzz/corpus/iwarp from the RoCEv2
# and iWARP encoders (fuzz/rdma_seeds.cc: every opcode in every input shape the harnesses
# take). Deterministic: the same code gives the same files. Needs the release preset built.
# Usage: fuzz/make_rdma_corpus.sh
set -euo pipefail
cd "$(dirname "$0")/.."
gen=build/bin/rdma_fuzz_seeds
[ -x "$gen" ] || { echo "missing $gen: build the release preset first" >&2; exit 1; }
work=$(mktemp -d /tmp/opensrd_rdma_seeds.XXXXXX)
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/roce" "$work/iwarp"
"$gen" "$work"
for target in roce iwarp; do
  dir=fuzz/corpus/$target
  rm -rf "$dir"
  mkdir -p "$dir"
  for f in "$work/$target"/*; do
    cp "$f" "$dir/$(sha1sum "$f" | cut -d' ' -f1)"
  done
  echo "$target: $(ls "$dir" | wc -l) files, $(du -sk "$dir" | cut -f1) KiB"
done
