#!/usr/bin/env bash
# Regenerates fuzz/corpus/ib_cm from the CM encoders (fuzz/ib_cm_seeds.cc). Deterministic.
# Needs the release preset built. Usage: fuzz/make_ib_cm_corpus.sh
set -euo pipefail
cd "$(dirname "$0")/.."
gen=build/bin/ib_cm_fuzz_seeds
[ -x "$gen" ] || { echo "missing $gen: build the release preset first" >&2; exit 1; }
work=$(mktemp -d /tmp/opensrd_ib_cm_seeds.XXXXXX)
trap 'rm -rf "$work"' EXIT
"$gen" "$work"
dir=fuzz/corpus/ib_cm
rm -rf "$dir"
mkdir -p "$dir"
for f in "$work"/*; do cp "$f" "$dir/$(sha1sum "$f" | cut -d' ' -f1)"; done
echo "ib_cm: $(ls "$dir" | wc -l) files"
