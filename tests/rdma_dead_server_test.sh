#!/usr/bin/env bash
# An `opensrd rdma client` whose server stops answering mid-run (SIGSTOP: the host and its
# kernel are alive, the process says nothing) must still obey SIGTERM. RoCEv2's retry count 7
# retries forever and iWARP's TCP keeps the connection up, so the client used to wait for
# completions that never came, deaf to the signal. Now it gives up 1 s after a signal (or after
# 10 s without a completion: not exercised here, it would cost CI 10 s), counts the operations
# that got no answer as errors, and exits 1 with a JSON report. READs for iWARP: its WRITEs
# complete when the server's kernel takes them, which it still does for a while. (The SRD client
# did not catch the signal at all: it died without a report.) First, with the server alive, a
# SIGTERM ends a long run early with a verified report and exit 0 (what Ctrl-C should give).
# Addresses: RoCEv2 server 127.0.13.10:4791, client 127.0.13.11; iWARP 127.0.13.12:7775; native
# SRD 127.0.13.13:7703.
# Usage: rdma_dead_server_test.sh OPENSRD_BIN roce|iwarp|srd
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
source "$here/perf_lib.sh"
proto=${2:?usage: rdma_dead_server_test.sh OPENSRD_BIN roce|iwarp|srd}
command -v jq >/dev/null || { echo "SKIPPED: no jq (scripts/setup.sh installs it)"; exit 77; }
case $proto in
  roce)
    listen=127.0.13.10:4791 ready="rdma_cm port" op=write
    client_args=(--bind 127.0.13.11) ;;
  iwarp)
    listen=127.0.13.12:7775 ready="on 127.0.13.12:7775" op=read
    client_args=() ;;
  srd)  # the SRD transport would fail the sends itself, later: the signal comes first
    listen=127.0.13.13:7703 ready="listening on 127.0.13.13:7703" op=read
    client_args=() ;;
  *) fail "unknown protocol $proto" ;;
esac

# Not under timeout(1): SIGSTOP must reach the server itself (perf_lib kills it at exit).
"$bin" rdma server --bind "$listen" --protocol "$proto" --region-size 4194304 --json \
  >"$work/srv.json" 2>"$work/srv.log" &
server_pid=$!
pids+=($server_pid)
for _ in $(seq 50); do grep -q "$ready" "$work/srv.log" 2>/dev/null && break; sleep 0.1; done
grep -q "$ready" "$work/srv.log" || fail "server did not start"

# Live server: SIGTERM 1 s into a 30 s run finishes what is in flight, verifies, exits 0.
timeout -k 10 60 "$bin" rdma client --connect "$listen" "${client_args[@]}" --protocol "$proto" \
  --json --op write --size 4096 --inflight 8 --duration 30 >"$work/live.json" 2>"$work/live.log" &
client_pid=$!
pids+=($client_pid)
sleep 1
kill -TERM "$client_pid"
rc=0
wait "$client_pid" || rc=$?
[ "$rc" = 0 ] || { cat "$work/live.log" "$work/live.json"; fail "SIGTERM with a live server: exit $rc, want 0"; }
jq_check "$work/live.json" '.verified == true and .errors == 0 and .ops > 0 and .seconds < 20' \
  "SIGTERM with a live server: a verified report of the shortened run"

timeout -k 10 60 "$bin" rdma client --connect "$listen" "${client_args[@]}" --protocol "$proto" --json \
  --op $op --size 4096 --inflight 8 --duration 30 >"$work/cli.json" 2>"$work/cli.log" &
client_pid=$!
pids+=($client_pid)
sleep 1.5
kill -0 "$client_pid" 2>/dev/null || { cat "$work/cli.log"; fail "the client ended before the server stopped"; }
kill -STOP "$server_pid"
sleep 0.5
start=$(date +%s%N)
kill -TERM "$client_pid"
rc=0
wait "$client_pid" || rc=$?
ms=$((($(date +%s%N) - start) / 1000000))
kill -CONT "$server_pid"
echo "$proto client exited $rc, $ms ms after SIGTERM"
# A client deaf to SIGTERM is killed 10 s after it (timeout -k: 137), or by the 60 s limit (124).
[ "$rc" != 124 ] && [ "$rc" != 137 ] ||
  fail "the client ignored SIGTERM with its server stopped (killed by timeout, $rc)"
[ "$rc" = 1 ] || { cat "$work/cli.log"; fail "the client exited $rc, want 1 (operations unanswered)"; }
# Given up on the signal (1 s grace, then a short wait to disconnect), not on the 10 s stall.
[ "$ms" -lt 8000 ] || fail "the client took $ms ms to go after SIGTERM"
jq_check "$work/cli.json" '.errors > 0 and (.error | test("no answer")) and .verified == false' \
  "the report counts the unanswered operations"
grep -q "signal's grace second" "$work/cli.log" "$work/cli.json" ||
  fail "the client does not say it gave up after the signal"

kill -TERM "$server_pid"
wait "$server_pid" || fail "server exited $? after the client vanished"
echo "PASS"
