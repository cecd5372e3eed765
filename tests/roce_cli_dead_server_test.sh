#!/usr/bin/env bash
# A RoCEv2 client whose server stops answering mid-run (SIGSTOP: the host is alive, the process
# says nothing) must still obey SIGTERM. RoCEv2's retry count 7 retries forever, so the client
# used to wait for completions that never came, deaf to the signal; now it gives up 1 s after a
# signal (10 s without one, not exercised here: it would cost CI 10 s), reports the operations
# that got no answer as errors, and exits 1 with a JSON report.
# Addresses: server 127.0.13.10:4791, client 127.0.13.11.
# Usage: roce_cli_dead_server_test.sh OPENSRD_BIN
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
source "$here/perf_lib.sh"
command -v jq >/dev/null || { echo "SKIPPED: no jq (scripts/setup.sh installs it)"; exit 77; }
srv=127.0.13.10
cli=127.0.13.11

# Not under timeout(1): SIGSTOP must reach the server itself (perf_lib kills it at exit).
"$bin" rdma server --bind "$srv:4791" --protocol roce --region-size 4194304 --json \
  >"$work/srv.json" 2>"$work/srv.log" &
server_pid=$!
pids+=($server_pid)
for _ in $(seq 50); do grep -q "rdma_cm port" "$work/srv.log" 2>/dev/null && break; sleep 0.1; done
grep -q "rdma_cm port" "$work/srv.log" || fail "server did not start"

timeout 60 "$bin" rdma client --connect "$srv:4791" --bind "$cli" --protocol roce --json \
  --op write --size 4096 --inflight 8 --duration 30 >"$work/cli.json" 2>"$work/cli.log" &
client_pid=$!
pids+=($client_pid)
# Running: the server has seen the connection and the client is moving data.
for _ in $(seq 100); do grep -qi "connect" "$work/srv.log" && break; sleep 0.05; done
sleep 1
kill -0 "$client_pid" 2>/dev/null || { cat "$work/cli.log"; fail "the client ended before the server stopped"; }
kill -STOP "$server_pid"
sleep 0.5
start=$(date +%s%N)
kill -TERM "$client_pid"
rc=0
wait "$client_pid" || rc=$?
ms=$((($(date +%s%N) - start) / 1000000))
kill -CONT "$server_pid"
echo "client exited $rc, $ms ms after SIGTERM"
# timeout(1) ends a hung client at 60 s with 124: that is the defect this test pins.
[ "$rc" != 124 ] || fail "the client ignored SIGTERM with its server stopped (killed by timeout)"
[ "$rc" = 1 ] || { cat "$work/cli.log"; fail "the client exited $rc, want 1 (operations unanswered)"; }
# Given up on the signal (1 s grace, then a short wait for the DREP), not on the 10 s stall.
[ "$ms" -lt 8000 ] || fail "the client took $ms ms to go after SIGTERM"
jq_check "$work/cli.json" '.errors > 0 and (.error | test("no answer"))' \
  "the report counts the unanswered operations"
grep -q "signal's grace second" "$work/cli.log" "$work/cli.json" ||
  fail "the client does not say it gave up after the signal"

kill -TERM "$server_pid"
wait "$server_pid" || fail "server exited $? after the client vanished"
echo "PASS"
