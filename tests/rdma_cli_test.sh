#!/usr/bin/env bash
# `opensrd rdma` over loopback (UDP 7700-7702): WRITE, READ, SEND and FETCH_ADD verify their
# data (JSON verified:true, no errors); a client using an rkey the server never handed out gets
# remote access errors (exit 1, error "remote access error") and the server NAKs them; two
# clients' FETCH_ADDs on one counter both verify (each sees consecutive old values only if it
# ran alone, so they run one after the other); --pcap
# captures the exchange. Usage: rdma_cli_test.sh OPENSRD_BIN
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
source "$here/perf_lib.sh"
command -v jq >/dev/null || { echo "SKIPPED: no jq (scripts/setup.sh installs it)"; exit 77; }

start_rdma_server() {  # NAME PORT [ARGS...]
  local name=$1 port=$2
  shift 2
  timeout 120 "$bin" rdma server --bind "127.0.0.1:$port" --protocol srd --json "$@" \
    >"$work/$name.json" 2>"$work/$name.log" &
  pids+=($!)
  server_pid=$!
  for _ in $(seq 50); do
    grep -q "listening on" "$work/$name.log" 2>/dev/null && return 0
    sleep 0.1
  done
  fail "rdma server $name did not start"
}

start_rdma_server srv 7700 --region-size 8388608
for op in write read send; do
  for size in 1 4096 200000; do
    [ "$op" = send ] && [ "$size" -lt 8 ] && continue
    timeout 60 "$bin" rdma client --connect 127.0.0.1:7700 --protocol srd --op "$op" \
      --size "$size" --count 300 --inflight 8 --json >"$work/$op-$size.json" 2>"$work/$op.log" ||
      fail "rdma client --op $op --size $size exited $?"
    jq_check "$work/$op-$size.json" ".verified == true and .errors == 0 and .ops == 300 and .bytes == 300 * $size" \
      "$op of $size bytes"
    jq_check "$work/$op-$size.json" '.lat_us.p50 > 0 and .lat_us.max >= .lat_us.p99 and .goodput_gbps > 0 and (.cpu.model | length) > 0' \
      "$op report fields"
  done
done
timeout 60 "$bin" rdma client --connect 127.0.0.1:7700 --op atomic --count 2000 --inflight 32 \
  --json >"$work/atomic.json" 2>"$work/atomic.log" || fail "atomic client exited $?"
jq_check "$work/atomic.json" '.verified == true and .errors == 0 and .ops == 2000' "atomic"

# A wrong rkey: every op fails with a remote access error; nothing is counted as done.
rc=0
timeout 30 "$bin" rdma client --connect 127.0.0.1:7700 --op write --size 64 --count 20 \
  --bad-rkey --json >"$work/bad.json" 2>"$work/bad.log" || rc=$?
[ "$rc" = 1 ] || fail "a wrong rkey exited $rc, not 1"
jq_check "$work/bad.json" '.error == "remote access error" and .errors == 20 and .ops == 0 and .verified == false' \
  "wrong rkey reported as a remote access error"
rc=0
timeout 30 "$bin" rdma client --connect 127.0.0.1:7700 --op read --size 64 --count 5 \
  --bad-rkey --json >"$work/badr.json" 2>"$work/badr.log" || rc=$?
[ "$rc" = 1 ] || fail "a wrong rkey on read exited $rc, not 1"
jq_check "$work/badr.json" '.error == "remote access error" and .errors == 5 and .ops == 0' \
  "wrong rkey on read"

kill -TERM "$server_pid"
wait "$server_pid" || fail "server exited $?"
# The server NAKed the 25 bad-key ops and checked every SEND it got (3 runs x 300).
jq_check "$work/srv.json" '.naks_sent == 25 and .sends_verified == 600 and .sends_bad == 0' \
  "server counters"

# --pcap on both ends: the capture holds the datagrams.
start_rdma_server pcap 7701 --pcap "$work/server.pcap"
timeout 60 "$bin" rdma client --connect 127.0.0.1:7701 --op read --size 1000 --count 10 \
  --json --pcap "$work/client.pcap" >"$work/pc.json" 2>"$work/pc.log" || fail "pcap client"
jq_check "$work/pc.json" '.verified == true and .pcap.written > 20' "client capture"
kill -TERM "$server_pid"
wait "$server_pid" || fail "pcap server exited $?"
jq_check "$work/pcap.json" '.pcap.written > 20' "server capture"
echo "PASS"
