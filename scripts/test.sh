#!/usr/bin/env bash
# Builds and runs every test: release (unit, deterministic-network, CLI and real-socket
# integration), ASan+UBSan and TSan builds of the same, and a bounded libFuzzer run per parser.
# Usage: scripts/test.sh [--quick]   (--quick: release build only)
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh --deps-only

jobs=$(nproc)
run_preset() {
  local preset=$1
  echo "=== $preset: build"
  cmake --preset "$preset" >/dev/null
  cmake --build --preset "$preset" -j "$jobs"
  echo "=== $preset: ctest"
  ctest --preset "$preset" -j "$jobs"
}

run_preset release
[ "${1:-}" = "--quick" ] && exit 0

export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
run_preset asan
export TSAN_OPTIONS=halt_on_error=1:second_deadlock_stack=1
run_preset tsan

echo "=== fuzz: build and run each target for a bounded time"
cmake --preset fuzz >/dev/null
cmake --build --preset fuzz -j "$jobs"
fuzz_seconds=${OPENSRD_FUZZ_SECONDS:-60}
for target in build-fuzz/bin/fuzz_*; do
  corpus=$(mktemp -d)
  echo "--- $(basename "$target") for ${fuzz_seconds}s"
  "$target" -max_total_time="$fuzz_seconds" -print_final_stats=1 "$corpus" 2>&1 | tail -n 12
  rm -rf "$corpus"
done
echo "=== all test stages passed"
