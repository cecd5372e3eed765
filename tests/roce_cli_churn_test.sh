#!/usr/bin/env bash
# A RoCEv2 server serving a long SEND client while other clients connect, send and disconnect
# around it. The server counts every SEND it checks in the client's status pair, and the client
# verifies that count. Each disconnect used to drain the shared completion queue, throwing away
# the other sessions' receive completions waiting there: their SENDs went uncounted and their
# receives were never reposted, so the long client failed its verification (seen once as a TSan
# flake of roce_cli_limits, where two SEND clients end one after the other).
# Addresses: server 127.0.13.14:4791, clients 127.0.13.15 (long) and .16 (short ones).
# Usage: roce_cli_churn_test.sh OPENSRD_BIN
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
source "$here/perf_lib.sh"
command -v jq >/dev/null || { echo "SKIPPED: no jq (scripts/setup.sh installs it)"; exit 77; }
srv=127.0.13.14

"$bin" rdma server --bind "$srv:4791" --protocol roce --region-size 4194304 --json \
  >"$work/srv.json" 2>"$work/srv.log" &
server_pid=$!
pids+=($server_pid)
for _ in $(seq 50); do grep -q "rdma_cm port" "$work/srv.log" 2>/dev/null && break; sleep 0.1; done
grep -q "rdma_cm port" "$work/srv.log" || fail "server did not start"

client() {  # NAME LAST_OCTET ARGS...
  local name=$1 octet=$2
  shift 2
  timeout -k 5 60 "$bin" rdma client --connect "$srv:4791" --bind "127.0.13.$octet" \
    --protocol roce --json "$@" >"$work/$name.json" 2>"$work/$name.log"
}

client long 15 --op send --size 16384 --inflight 4 --duration 4 &
long_pid=$!
pids+=($long_pid)
sleep 0.3
short=0
while kill -0 "$long_pid" 2>/dev/null && [ "$short" -lt 40 ]; do
  short=$((short + 1))
  client "short$short" 16 --op send --size 4096 --inflight 4 --count 50 ||
    fail "short SEND client $short failed"
  jq_check "$work/short$short.json" '.verified == true and .errors == 0' "short SEND client $short"
done
rc=0
wait "$long_pid" || rc=$?
echo "$short short clients came and went during the long one"
[ "$rc" = 0 ] || fail "the long SEND client failed (exit $rc) while $short others came and went"
jq_check "$work/long.json" '.verified == true and .errors == 0 and .ops > 0' "the long SEND client"
[ "$short" -ge 3 ] || fail "only $short short clients ran during the long one"

kill -TERM "$server_pid"
wait "$server_pid" || fail "server exited $?"
jq_check "$work/srv.json" '.sends_bad == 0' "server saw bad SENDs"
echo "PASS"
