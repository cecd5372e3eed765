#!/usr/bin/env bash
# `opensrd rdma server|client --metrics`: Prometheus text at /metrics during an RDMA WRITE run
# (--protocol srd), scraped with curl twice. The client's transport counters and its device's
# requests_sent move between the scrapes, the server's requests_executed moves, the client's
# min RTT is above 0, and the text passes the exposition-format checker and promtool. A bad
# --metrics address is a usage error (exit 2) that names the option. With --dma on the server's
# RDMA executor copies through the DMA engine (issue 17).
# Ports: server 7780 (metrics 7781), client metrics 7782, --dma on server 7783. Usage: rdma_metrics_test.sh OPENSRD_BIN
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
source "$here/perf_lib.sh"
command -v curl >/dev/null || { echo "SKIPPED: no curl"; exit 77; }
command -v jq >/dev/null || { echo "SKIPPED: no jq (scripts/setup.sh installs it)"; exit 77; }
command -v promtool >/dev/null || { echo "SKIPPED: no promtool (scripts/setup.sh installs prometheus)"; exit 77; }

timeout 120 "$bin" rdma server --bind 127.0.0.1:7780 --protocol srd --metrics 127.0.0.1:7781 \
  --json >"$work/srv.json" 2>"$work/srv.log" &
pids+=($!)
for _ in $(seq 50); do
  grep -q "listening on" "$work/srv.log" 2>/dev/null && break
  sleep 0.1
done
grep -q "listening on" "$work/srv.log" || fail "rdma server did not start"

timeout 60 "$bin" rdma client --connect 127.0.0.1:7780 --protocol srd --op write --size 4096 \
  --inflight 8 --duration 5 --metrics 127.0.0.1:7782 --json >"$work/run.json" 2>"$work/client.log" &
client=$!
pids+=("$client")

value() {  # value FILE METRIC: the (last) sample's value, 0 if absent
  awk -v m="$2" '$1 ~ "^"m"({|$)" { v = $2 } END { print v + 0 }' "$1"
}
scrape() {  # scrape PORT FILE
  curl -sf --max-time 5 "http://127.0.0.1:$1/metrics" >"$2" || fail "curl :$1 failed"
}
for _ in $(seq 300); do
  curl -sf --max-time 5 http://127.0.0.1:7782/metrics >"$work/c1.txt" 2>/dev/null &&
    [ "$(value "$work/c1.txt" opensrd_rdma_requests_sent_total)" -gt 100 ] && break
  sleep 0.01
done
[ "$(value "$work/c1.txt" opensrd_rdma_requests_sent_total)" -gt 100 ] ||
  fail "the client's /metrics never showed RDMA requests"
scrape 7781 "$work/s1.txt"
sleep 1.5
scrape 7782 "$work/c2.txt"
scrape 7781 "$work/s2.txt"
wait "$client" || fail "client exited $?"
jq_check "$work/run.json" '.verified == true and .errors == 0' "run not verified"

check() {  # check DESCRIPTION CONDITION
  if eval "$2"; then echo "ok   $1"; else fail "$1 ($2)"; fi
}
grep -q '^opensrd_info{command="rdma_client"} 1$' "$work/c1.txt" || fail "client opensrd_info"
grep -q '^opensrd_info{command="rdma_server"} 1$' "$work/s1.txt" || fail "server opensrd_info"
for m in opensrd_tx_pkts_total opensrd_rx_pkts_total opensrd_rdma_requests_sent_total; do
  a=$(value "$work/c1.txt" $m) b=$(value "$work/c2.txt" $m)
  check "client $m moves ($a -> $b)" '[ "$b" -gt "$a" ]'
done
a=$(value "$work/s1.txt" opensrd_rdma_requests_executed_total)
b=$(value "$work/s2.txt" opensrd_rdma_requests_executed_total)
check "server requests_executed moves ($a -> $b)" '[ "$b" -gt "$a" ]'
v=$(awk '$1 ~ /^opensrd_context_min_rtt_seconds({|$)/ { print ($2 > 0) ? 1 : 0; exit }' "$work/c2.txt")
check "client min RTT > 0" '[ "${v:-0}" = 1 ]'
python3 "$here/prom_text_check.py" "$work"/c2.txt "$work"/s2.txt || fail "metrics text is not valid"
for f in c2 s2; do
  promtool check metrics <"$work/$f.txt" || fail "promtool check metrics $f.txt"
done
echo "ok   promtool check metrics"

rc=0
"$bin" rdma client --connect 127.0.0.1:7780 --metrics 127.0.0.1:0 >/dev/null 2>"$work/bad.log" || rc=$?
[ "$rc" -eq 2 ] || fail "--metrics 127.0.0.1:0: exit $rc, want 2"
grep -q -- "--metrics" "$work/bad.log" || fail "bad --metrics: message does not name it"

# --dma on: the server's executor moves WRITE and SEND payloads through the DMA engine (its
# descriptors counted at exit), the client's transport packetizes through it; data verified.
timeout 60 "$bin" rdma server --bind 127.0.0.1:7783 --protocol srd --dma on --json \
  >"$work/dsrv.json" 2>"$work/dsrv.log" &
dsrv=$!
pids+=("$dsrv")
for _ in $(seq 50); do
  grep -q "listening on" "$work/dsrv.log" 2>/dev/null && break
  sleep 0.1
done
for op in write send; do
  timeout 60 "$bin" rdma client --connect 127.0.0.1:7783 --protocol srd --op $op --size 20000 \
    --count 300 --dma on --json >"$work/d_$op.json" 2>"$work/d_$op.log" || fail "--dma on $op"
  jq_check "$work/d_$op.json" '.verified == true and .dma.transport_descriptors > 0' "--dma on $op"
done
kill -INT "$dsrv"
wait "$dsrv" || fail "--dma on server exited $?"
jq_check "$work/dsrv.json" '.sends_bad == 0 and .dma.mode == "on" and .dma.executor_descriptors > 0' \
  "--dma on: the server's executor did not copy through the engine"
echo "ok   --dma on: executor copies through the engine"
echo "rdma metrics ok"
