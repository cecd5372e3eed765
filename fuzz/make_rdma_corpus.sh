#!/usr/bin/env bash
# Regenerates the committed seed corpora fuzz/corpus/roce, fuzz/corpus/iwarp and
# fuzz/corpus/rdma_exec from the RoCEv2, iWARP and native encoders (fuzz/rdma_seeds.cc: every opcode in every input shape the harnesses
# take). Deterministic: the same code gives the same files. Needs the release preset built.
# Usage: fuzz/make_rdma_corpus.sh
set -euo pipefail
cd "$(dirname "$0")/.."
gen=build/bin/rdma_fuzz_seeds
[ -x "$gen" ] || { echo "missing $gen: build the release preset first" >&2; exit 1; }
work=$(mktemp -d /tmp/opensrd_rdma_seeds.XXXXXX)
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/roce" "$work/iwarp" "$work/rdma_exec"
"$gen" "$work"
for target in roce iwarp rdma_exec; do
  dir=fuzz/corpus/$target
  rm -rf "$dir"
  mkdir -p "$dir"
  for f in "$work/$target"/*; do
    cp "$f" "$dir/$(sha1sum "$f" | cut -d' ' -f1)"
  done
  echo "$target: $(ls "$dir" | wc -l) files, $(du -sk "$dir" | cut -f1) KiB"
done
