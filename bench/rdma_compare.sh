#!/usr/bin/env bash
# RDMA per protocol beside the transport's own perf, on loopback, in one run (one thing at a
# time): `opensrd perf` bw (64 KiB messages, 16 in flight) and 64 B ping-pong, each over 1 path
# (what `opensrd rdma` uses) and 4 paths; `opensrd rdma` WRITE and READ of 64 KiB with 16 in
# flight (bandwidth) and of 64 B with 1 in flight (latency: post to completion, a round trip)
# for each protocol: native over SRD, RoCEv2 (UDP 4791 on 127.0.13.21/.22, connected by the IB
# CM) and iWARP (kernel TCP). Every run is verified. Ports UDP 7710 (perf) and 7711 (rdma srd),
# TCP 7712 (iwarp). Prints a markdown table.
# Usage: bench/rdma_compare.sh [path/to/opensrd] [seconds per run, default 5]
set -euo pipefail
cd "$(dirname "$0")/.."
bin=${1:-build/bin/opensrd}
secs=${2:-5}
command -v jq >/dev/null || { echo "needs jq"; exit 1; }
work=$(mktemp -d)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
  rm -rf "$work"
}
trap cleanup EXIT

"$bin" perf server --bind 127.0.0.1:7710 --quiet 2>"$work/perf_server.log" &
pids+=($!)
"$bin" rdma server --bind 127.0.0.1:7711 --protocol srd 2>"$work/rdma_server.log" &
pids+=($!)
sleep 0.5

row() {  # LABEL JSONFILE
  jq -r --arg l "$1" '"| \($l) | \(.goodput_gbps * 1000 | round / 1000) | \(.lat_us.p50) | \(.lat_us.p99) | \(.verified) |"' "$2"
}
run() {  # NAME ARGS...
  local name=$1
  shift
  echo "opensrd $*" >&2
  timeout $((secs + 60)) "$bin" "$@" --json >"$work/$name.json"
  jq -e '.verified == true and .errors == 0' "$work/$name.json" >/dev/null ||
    { echo "not verified: $name: $(cat "$work/$name.json")" >&2; exit 1; }
}
run perf_bw1 perf client --connect 127.0.0.1:7710 --paths 1 --mode bw --size 65536 --inflight 16 --duration "$secs"
run perf_bw4 perf client --connect 127.0.0.1:7710 --paths 4 --mode bw --size 65536 --inflight 16 --duration "$secs"
run rdma_wbw rdma client --connect 127.0.0.1:7711 --protocol srd --op write --size 65536 --inflight 16 --duration "$secs"
run rdma_rbw rdma client --connect 127.0.0.1:7711 --protocol srd --op read --size 65536 --inflight 16 --duration "$secs"
run perf_lat1 perf client --connect 127.0.0.1:7710 --paths 1 --mode lat --size 64 --duration "$secs"
run perf_lat4 perf client --connect 127.0.0.1:7710 --paths 4 --mode lat --size 64 --duration "$secs"
run rdma_wlat rdma client --connect 127.0.0.1:7711 --protocol srd --op write --size 64 --inflight 1 --duration "$secs"
run rdma_rlat rdma client --connect 127.0.0.1:7711 --protocol srd --op read --size 64 --inflight 1 --duration "$secs"
# One server at a time from here: the RoCEv2 server's raw socket sees every UDP datagram on the
# host (it filters in user space), which would tax the other runs.
kill "${pids[@]}"
wait "${pids[@]}" 2>/dev/null || true
pids=()
"$bin" rdma server --bind 127.0.13.21:4791 --protocol roce 2>"$work/roce_server.log" &
pids+=($!)
sleep 0.5
roce=(--connect 127.0.13.21:4791 --bind 127.0.13.22 --protocol roce)
run roce_wbw rdma client "${roce[@]}" --op write --size 65536 --inflight 16 --duration "$secs"
run roce_rbw rdma client "${roce[@]}" --op read --size 65536 --inflight 16 --duration "$secs"
run roce_wlat rdma client "${roce[@]}" --op write --size 64 --inflight 1 --duration "$secs"
run roce_rlat rdma client "${roce[@]}" --op read --size 64 --inflight 1 --duration "$secs"
kill "${pids[@]}"
wait "${pids[@]}" 2>/dev/null || true
pids=()
"$bin" rdma server --bind 127.0.0.1:7712 --protocol iwarp 2>"$work/iwarp_server.log" &
pids+=($!)
sleep 0.5
iwarp=(--connect 127.0.0.1:7712 --protocol iwarp)
run iwarp_wbw rdma client "${iwarp[@]}" --op write --size 65536 --inflight 16 --duration "$secs"
run iwarp_rbw rdma client "${iwarp[@]}" --op read --size 65536 --inflight 16 --duration "$secs"
run iwarp_wlat rdma client "${iwarp[@]}" --op write --size 64 --inflight 1 --duration "$secs"
run iwarp_rlat rdma client "${iwarp[@]}" --op read --size 64 --inflight 1 --duration "$secs"

echo "CPU: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2-)"
echo "| run | Gbit/s | p50 us | p99 us | verified |"
echo "|---|---|---|---|---|"
row "perf bw 64 KiB, 1 path" "$work/perf_bw1.json"
row "perf bw 64 KiB, 4 paths" "$work/perf_bw4.json"
row "rdma WRITE 64 KiB, 16 in flight" "$work/rdma_wbw.json"
row "rdma READ 64 KiB, 16 in flight" "$work/rdma_rbw.json"
row "perf lat 64 B round trip, 1 path" "$work/perf_lat1.json"
row "perf lat 64 B round trip, 4 paths" "$work/perf_lat4.json"
row "rdma WRITE 64 B, 1 in flight" "$work/rdma_wlat.json"
row "rdma READ 64 B, 1 in flight" "$work/rdma_rlat.json"
row "RoCEv2 WRITE 64 KiB, 16 in flight" "$work/roce_wbw.json"
row "RoCEv2 READ 64 KiB, 16 in flight" "$work/roce_rbw.json"
row "RoCEv2 WRITE 64 B, 1 in flight" "$work/roce_wlat.json"
row "RoCEv2 READ 64 B, 1 in flight" "$work/roce_rlat.json"
row "iWARP WRITE 64 KiB, 16 in flight" "$work/iwarp_wbw.json"
row "iWARP READ 64 KiB, 16 in flight" "$work/iwarp_rbw.json"
row "iWARP WRITE 64 B, 1 in flight (+ 0-byte READ)" "$work/iwarp_wlat.json"
row "iWARP READ 64 B, 1 in flight" "$work/iwarp_rlat.json"
