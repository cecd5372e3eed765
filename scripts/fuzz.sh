#!/usr/bin/env bash
# Runs every libFuzzer target for a bounded time, each from a temporary copy of its committed
# corpus (fuzz/corpus/<name> for build-fuzz/bin/fuzz_<name>), so a run never writes into the
# repository. One total budget, OPENSRD_FUZZ_SECONDS (default 240), is split evenly across the
# targets. Exits non-zero if a target crashes, leaks, times out or has no committed corpus;
# the crashing input is kept in build-fuzz/crashes/.
# Usage: scripts/fuzz.sh [BIN_DIR]   (default build-fuzz/bin; build the fuzz preset first)
set -euo pipefail
cd "$(dirname "$0")/.."
bin_dir=${1:-build-fuzz/bin}
targets=("$bin_dir"/fuzz_*)
[ -x "${targets[0]}" ] || { echo "no fuzz targets in $bin_dir" >&2; exit 1; }
total=${OPENSRD_FUZZ_SECONDS:-240}
per_target=$((total / ${#targets[@]}))
[ "$per_target" -ge 1 ] || per_target=1
crashes=build-fuzz/crashes
mkdir -p "$crashes"

work=$(mktemp -d /tmp/opensrd_fuzz.XXXXXX)
trap 'rm -rf "$work"' EXIT
for target in "${targets[@]}"; do
  name=$(basename "$target")
  seeds=fuzz/corpus/${name#fuzz_}
  [ -d "$seeds" ] && [ -n "$(ls -A "$seeds")" ] ||
    { echo "FAIL: $name has no committed corpus in $seeds (see fuzz/make_corpus.sh)" >&2; exit 1; }
  corpus=$work/$name
  mkdir -p "$corpus"
  cp "$seeds"/* "$corpus"/
  echo "--- $name for ${per_target}s from $(ls "$seeds" | wc -l) seeds"
  # The log goes to a file, not a pipe, so the fuzzer's own exit code decides.
  if ! "$target" -max_total_time="$per_target" -timeout=30 -print_final_stats=1 \
      -artifact_prefix="$crashes/$name-" "$corpus" >"$work/$name.log" 2>&1; then
    tail -n 60 "$work/$name.log"
    echo "FAIL: $name crashed; input kept as $(ls -t "$crashes/$name-"* 2>/dev/null | head -n 1)"
    exit 1
  fi
  grep -E "INITED|DONE" "$work/$name.log" || true
  tail -n 6 "$work/$name.log"
done
