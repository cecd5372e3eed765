#!/usr/bin/env bash
# Builds and runs every test: release (unit, deterministic-network, CLI and real-socket
# integration), ASan+UBSan and TSan builds of the same, and bounded libFuzzer runs from the
# committed corpora (OPENSRD_FUZZ_SECONDS in total, default 240; see scripts/fuzz.sh).
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

echo "=== fuzz: build, then run the targets from their committed corpora (one shared budget)"
cmake --preset fuzz >/dev/null
cmake --build --preset fuzz -j "$jobs"
scripts/fuzz.sh build-fuzz/bin
echo "=== all test stages passed"
