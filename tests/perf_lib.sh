# Shared helpers for the perf integration tests (sourced). Every background process is killed on
# exit; every step is bounded by `timeout`.
set -euo pipefail
bin=$1
work=$(mktemp -d /tmp/opensrd_test.XXXXXX)
pids=()
cleanup_hooks=()
cleanup() {
  for h in "${cleanup_hooks[@]}"; do eval "$h" || true; done
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
  rm -rf "$work"
}
trap cleanup EXIT

fail() {
  echo "FAIL: $*"
  for f in "$work"/*.log; do [ -f "$f" ] && { echo "--- $f"; tail -n 20 "$f"; }; done
  exit 1
}

# start_server NAME [PREFIX...] -- ARGS: runs `PREFIX $bin perf server ARGS` in the background
# and waits (at most 5 s) until it listens.
start_server() {
  local name=$1
  shift
  local prefix=()
  while [ "$1" != "--" ]; do prefix+=("$1"); shift; done
  shift
  timeout 120 "${prefix[@]}" "$bin" perf server "$@" 2>"$work/$name.log" &
  pids+=($!)
  for _ in $(seq 50); do
    grep -q "listening on" "$work/$name.log" 2>/dev/null && return 0
    sleep 0.1
  done
  fail "server $name did not start"
}

# jq_check FILE EXPR MESSAGE: fails unless `jq -e EXPR` holds on FILE.
jq_check() {
  jq -e "$2" "$1" >/dev/null || { echo "JSON: $(cat "$1")"; fail "$3 ($2)"; }
}
