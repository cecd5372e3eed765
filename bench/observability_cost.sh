#!/usr/bin/env bash
# The cost of observability (issue 16; docs/PERF.md): perf bw (64 KiB messages, 8 KiB packets)
# and 64 B round-trip latency over 4 loopback paths with nothing on, with --metrics on both ends
# (scraped by curl every second, as a fast Prometheus would), with --pcap on both ends, and with
# --timeline on the client, interleaved over ROUNDS rounds so a shared machine's drift hits every
# mode alike. Prints a Markdown table. Ports PORT (server, default 7720), PORT+1 and PORT+2
# (metrics). Usage: bench/observability_cost.sh OPENSRD_BIN [ROUNDS] [SECONDS] [PORT]
set -euo pipefail
bin=$1
rounds=${2:-2}
secs=${3:-3}
port=${4:-7720}
work=$(mktemp -d /tmp/opensrd_obscost.XXXXXX)
srv=""
scraper=""
trap '[ -n "$scraper" ] && kill $scraper 2>/dev/null; [ -n "$srv" ] && kill $srv 2>/dev/null; rm -rf "$work"' EXIT

run() {  # run MODE KIND ROUND: one client run, JSON to $work/MODE.KIND.ROUND.json
  local mode=$1 kind=$2 round=$3 sargs=() cargs=()
  case $mode in
    metrics) sargs=(--metrics 127.0.0.1:$((port + 1))); cargs=(--metrics 127.0.0.1:$((port + 2))) ;;
    pcap) sargs=(--pcap "$work/s.pcap"); cargs=(--pcap "$work/c.pcap") ;;
    timeline) cargs=(--timeline "$work/t.csv") ;;
  esac
  "$bin" perf server --bind 127.0.0.1:$port --paths 4 --quiet --log-level warn "${sargs[@]}" &
  srv=$!
  sleep 0.3
  if [ "$mode" = metrics ]; then
    (while sleep 1; do
       curl -sf http://127.0.0.1:$((port + 1))/metrics >/dev/null
       curl -sf http://127.0.0.1:$((port + 2))/metrics >/dev/null
     done) 2>/dev/null &
    scraper=$!
  fi
  local k=(--mode bw --size 65536 --inflight 16 --max-payload 8192)
  [ "$kind" = lat ] && k=(--mode lat --size 64)
  timeout 60 "$bin" perf client --connect 127.0.0.1:$port --paths 4 "${k[@]}" --duration "$secs" \
    --log-level warn --json "${cargs[@]}" >"$work/$mode.$kind.$round.json"
  [ -n "$scraper" ] && { kill "$scraper" 2>/dev/null; wait "$scraper" 2>/dev/null || true; scraper=""; }
  kill -INT "$srv"; wait "$srv" 2>/dev/null || true; srv=""
  rm -f "$work"/*.pcap "$work/t.csv"
}

modes=(off metrics pcap timeline)
for r in $(seq "$rounds"); do
  for m in "${modes[@]}"; do run "$m" bw "$r"; run "$m" lat "$r"; done
done
echo "CPU: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ //'), $(nproc) vCPUs; load average at the end: $(cut -d' ' -f1-3 /proc/loadavg)"
echo
echo "| mode | bw Gbit/s (per round) | 64 B round trip p50 / p99 us (per round) | capture records dropped (bw) |"
echo "|---|---|---|---|"
for m in "${modes[@]}"; do
  bw="" lat="" drop=""
  for r in $(seq "$rounds"); do
    bw+="$(jq -r '.goodput_gbps * 100 | round / 100' "$work/$m.bw.$r.json") "
    lat+="$(jq -r '"\(.lat_us.p50 * 10 | round / 10)/\(.lat_us.p99 * 10 | round / 10)"' "$work/$m.lat.$r.json") "
    drop+="$(jq -r '.pcap.dropped // "-"' "$work/$m.bw.$r.json") "
  done
  echo "| $m | ${bw% } | ${lat% } | ${drop% } |"
done
