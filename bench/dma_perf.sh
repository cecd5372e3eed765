#!/usr/bin/env bash
# opensrd perf with the transport's payload copies through the DMA engine (prefetch off, on,
# auto) and with direct memcpy, back to back, for docs/PERF.md: bandwidth (64 KiB messages,
# 8 KiB and 1400 B packets) and the 64 B round trip. Every variant restarts the server with the
# same --dma flags as the client (the server's reassembly copies are half of the work). The
# variants run interleaved, `reps` rounds; each cell is the median of its rounds.
# Usage: bench/dma_perf.sh [path/to/opensrd] [seconds per run, default 3] [rounds, default 3]
#        [port, default 7740]
set -euo pipefail
cd "$(dirname "$0")/.."
bin=${1:-build/bin/opensrd}
secs=${2:-3}
reps=${3:-3}
port=${4:-7740}
command -v jq >/dev/null || { echo "needs jq"; exit 1; }
work=$(mktemp -d)
server=""
stop_server() {
  if [ -n "$server" ]; then
    kill "$server" 2>/dev/null || true
    wait "$server" 2>/dev/null || true
    server=""
  fi
}
trap 'stop_server; rm -rf "$work"' EXIT

variants=(direct engine_off engine_on engine_auto)
flags() {
  case $1 in
    direct) echo "--dma off" ;;
    engine_off) echo "--dma on --dma-prefetch off" ;;
    engine_on) echo "--dma on --dma-prefetch on" ;;
    engine_auto) echo "--dma on --dma-prefetch auto" ;;
  esac
}
tests=(bw8k bw1400 lat)
args() {
  case $1 in
    bw8k) echo "--paths 4 --mode bw --size 65536 --inflight 16 --max-payload 8192" ;;
    bw1400) echo "--paths 4 --mode bw --size 65536 --inflight 16 --max-payload 1400" ;;
    lat) echo "--paths 4 --mode lat --size 64" ;;
  esac
}

for rep in $(seq 1 "$reps"); do
  for v in "${variants[@]}"; do
    # shellcheck disable=SC2046
    timeout 900 "$bin" perf server --bind "127.0.0.1:$port" --quiet $(flags "$v") &
    server=$!
    sleep 0.5
    for t in "${tests[@]}"; do
      echo "   [$rep] $bin perf client --connect 127.0.0.1:$port $(args "$t") $(flags "$v") --duration $secs"
      # shellcheck disable=SC2046
      timeout $((secs + 60)) "$bin" perf client --connect "127.0.0.1:$port" --json $(args "$t") \
        $(flags "$v") --duration "$secs" >"$work/$v.$t.$rep.json"
      jq -e '.verified' "$work/$v.$t.$rep.json" >/dev/null || { echo "$v $t: not verified"; exit 1; }
    done
    stop_server
  done
done

stat() {  # which (median|min|max), jq expression, variant, test
  for rep in $(seq 1 "$reps"); do jq -r "$2" "$work/$3.$4.$rep.json"; done | sort -g |
    awk -v w="$1" '{ v[NR] = $1 } END {
      if (w == "min") print v[1]; else if (w == "max") print v[NR];
      else if (NR % 2) print v[(NR + 1) / 2]; else print (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}
cell() { printf '%.2f (%.2f-%.2f)' "$(stat median "$@")" "$(stat min "$@")" "$(stat max "$@")"; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", a / b }'; }

printf '\n%-12s %20s %6s %20s %6s %20s %10s %6s\n' "copies" "bw8k Gb/s (min-max)" "/dir" \
  "bw1400 Gb/s" "/dir" "lat p50 us" "lat p99" "desc/cp"
d8=$(stat median .goodput_gbps direct bw8k)
d14=$(stat median .goodput_gbps direct bw1400)
for v in "${variants[@]}"; do
  b8=$(stat median .goodput_gbps "$v" bw8k)
  b14=$(stat median .goodput_gbps "$v" bw1400)
  dpc=$(jq -r 'if .dma.copies > 0 then (.dma.descriptors / .dma.copies * 100 | round / 100) else 0 end' \
    "$work/$v.bw1400.1.json")
  errs=$(cat "$work/$v".*.json | jq -s 'map(.dma.errors) | add')
  [ "$errs" = "0" ] || { echo "$v: $errs copy errors"; exit 1; }
  printf '%-12s %20s %6s %20s %6s %20s %10.1f %6s\n' "$v" "$(cell .goodput_gbps "$v" bw8k)" \
    "$(ratio "$b8" "$d8")" "$(cell .goodput_gbps "$v" bw1400)" "$(ratio "$b14" "$d14")" \
    "$(cell .lat_us.p50 "$v" lat)" "$(stat median .lat_us.p99 "$v" lat)" "$dpc"
done
echo
echo "medians (min-max) of $reps interleaved rounds of $secs s each; /dir: median over direct's median;"
echo "desc/cp: the client's engine descriptors per copy (bw1400, round 1); the server ran the same flags."
