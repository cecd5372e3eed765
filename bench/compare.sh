#!/usr/bin/env bash
# Loopback comparison for docs/PERF.md: opensrd perf (bw, 64 B ping-pong, 5% loss on one of 4
# paths) beside iperf3 TCP single stream, a raw UDP GSO/GRO blast at opensrd's packet sizes
# (bench_udp_blast, built beside the opensrd binary: the limit of a datagram transport through the
# kernel) and a raw UDP ping-pong (sockperf, non-blocking). Runs everything in sequence (one thing
# at a time on a 2-core machine) and prints a table.
# Usage: bench/compare.sh [path/to/opensrd] [seconds per run, default 5]
set -euo pipefail
cd "$(dirname "$0")/.."
bin=${1:-build/bin/opensrd}
secs=${2:-5}
blast=$(dirname "$bin")/bench_udp_blast
[ -x "$blast" ] || { echo "needs $blast (build the release preset)"; exit 1; }
for tool in iperf3 sockperf jq; do command -v $tool >/dev/null || { echo "needs $tool"; exit 1; }; done
work=$(mktemp -d)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
  rm -rf "$work"
}
trap cleanup EXIT

echo "== iperf3 TCP single stream: iperf3 -s -1 -B 127.0.0.1 / iperf3 -c 127.0.0.1 -t $secs"
timeout $((secs + 30)) iperf3 -s -1 -B 127.0.0.1 -p 5299 >/dev/null 2>&1 &
pids+=($!)
sleep 0.5
timeout $((secs + 20)) iperf3 -c 127.0.0.1 -p 5299 -t "$secs" -J >"$work/iperf.json"
tcp_gbps=$(jq '.end.sum_received.bits_per_second / 1e9' "$work/iperf.json")

for seg in 1400 8192; do
  echo "== raw UDP GSO/GRO blast: $blast --segment $seg --duration $secs"
  timeout $((secs + 20)) "$blast" --segment "$seg" --duration "$secs" --port 7799 >"$work/blast$seg.json"
done
blast1400=$(jq '.received_gbps' "$work/blast1400.json")
blast8k=$(jq '.received_gbps' "$work/blast8192.json")

echo "== raw UDP ping-pong: sockperf server --nonblocked / sockperf ping-pong --nonblocked -m 64"
timeout $((secs + 30)) sockperf server --nonblocked -i 127.0.0.1 -p 11199 >/dev/null 2>&1 &
pids+=($!)
sleep 0.5
timeout $((secs + 20)) sockperf ping-pong --nonblocked -m 64 -i 127.0.0.1 -p 11199 -t "$secs" \
  >"$work/sockperf.txt" 2>&1
# sockperf reports half round trips: double them.
pct() { awk -v p="$1" '$0 ~ "percentile "p" =" {print $NF * 2}' "$work/sockperf.txt"; }
udp_p50=$(pct 50.000)
udp_p99=$(pct 99.000)
kill "${pids[-1]}" 2>/dev/null || true

echo "== opensrd perf (server on 127.0.0.1:7699)"
timeout 600 "$bin" perf server --bind 127.0.0.1:7699 --quiet &
pids+=($!)
sleep 0.5
run() {  # name, client args...
  local name=$1
  shift
  echo "   $bin perf client --connect 127.0.0.1:7699 $*"
  timeout $((secs + 60)) "$bin" perf client --connect 127.0.0.1:7699 --json "$@" >"$work/$name.json"
  jq -e '.verified' "$work/$name.json" >/dev/null || { echo "$name: not verified"; exit 1; }
}
run bw8k --paths 4 --mode bw --size 65536 --inflight 16 --max-payload 8192 --duration "$secs"
run bw1400 --paths 4 --mode bw --size 65536 --inflight 16 --max-payload 1400 --duration "$secs"
run lat --paths 4 --mode lat --size 64 --duration "$secs"
run lat_loss --paths 4 --mode lat --size 64 --duration "$secs" --fault 'path=1:loss=0.05'
run bw_loss --paths 4 --mode bw --size 65536 --inflight 16 --max-payload 8192 --duration "$secs" \
  --fault 'path=1:loss=0.05'

j() { jq -r "$2" "$work/$1.json"; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", a / b }'; }
printf '\n%-44s %12s %12s %10s\n' "measurement" "opensrd" "baseline" "ratio"
printf '%-44s %12.2f %12.2f %10s\n' "bw Gbit/s, 64 KiB msgs, 8 KiB packets" "$(j bw8k .goodput_gbps)" \
  "$tcp_gbps" "$(ratio "$(j bw8k .goodput_gbps)" "$tcp_gbps")"
printf '%-44s %12.2f %12.2f %10s\n' "bw Gbit/s, 8 KiB packets (vs raw blast 8 KiB)" "$(j bw8k .goodput_gbps)" \
  "$blast8k" "$(ratio "$(j bw8k .goodput_gbps)" "$blast8k")"
printf '%-44s %12.2f %12.2f %10s\n' "bw Gbit/s, 64 KiB msgs, 1400 B packets" "$(j bw1400 .goodput_gbps)" \
  "$tcp_gbps" "$(ratio "$(j bw1400 .goodput_gbps)" "$tcp_gbps")"
printf '%-44s %12.2f %12.2f %10s\n' "bw Gbit/s, 1400 B packets (vs raw blast 1400)" "$(j bw1400 .goodput_gbps)" \
  "$blast1400" "$(ratio "$(j bw1400 .goodput_gbps)" "$blast1400")"
printf '%-44s %12.1f %12.1f %10s\n' "64 B round trip p50 us (vs sockperf x2)" "$(j lat .lat_us.p50)" \
  "$udp_p50" "$(ratio "$(j lat .lat_us.p50)" "$udp_p50")"
printf '%-44s %12.1f %12.1f %10s\n' "64 B round trip p99 us (vs sockperf x2)" "$(j lat .lat_us.p99)" \
  "$udp_p99" "$(ratio "$(j lat .lat_us.p99)" "$udp_p99")"
printf '%-44s %12.1f %12.1f %10s\n' "64 B RTT p99 us, 5% loss path 1 (vs lossless)" \
  "$(j lat_loss .lat_us.p99)" "$(j lat .lat_us.p99)" "$(ratio "$(j lat_loss .lat_us.p99)" "$(j lat .lat_us.p99)")"
printf '%-44s %12.1f %12.1f %10s\n' "bw completion p99 us, 5% loss (vs lossless)" \
  "$(j bw_loss .lat_us.p99)" "$(j bw8k .lat_us.p99)" "$(ratio "$(j bw_loss .lat_us.p99)" "$(j bw8k .lat_us.p99)")"
printf '%-44s %12.2f %12.2f %10s\n' "bw Gbit/s, 5% loss path 1 (vs lossless)" "$(j bw_loss .goodput_gbps)" \
  "$(j bw8k .goodput_gbps)" "$(ratio "$(j bw_loss .goodput_gbps)" "$(j bw8k .goodput_gbps)")"
echo
echo "retransmits: bw8k $(j bw8k .retransmits), bw1400 $(j bw1400 .retransmits), lat $(j lat .retransmits), lat_loss $(j lat_loss .retransmits), bw_loss $(j bw_loss .retransmits)"
echo "gso datagrams per send: bw8k $(j bw8k '.client.datagrams_sent / .client.gso_batches * 10 | round / 10'), bw1400 $(j bw1400 '.client.datagrams_sent / .client.gso_batches * 10 | round / 10')"
echo "lat p50/p99/p99.9/max: lossless $(j lat '.lat_us|[.p50,.p99,.p999,.max]|@csv'), 5% loss $(j lat_loss '.lat_us|[.p50,.p99,.p999,.max]|@csv')"
