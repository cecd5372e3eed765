#!/usr/bin/env bash
# perf with the payload copies through the DMA engine (--dma on) on both ends: bw and lat
# verified, the engine really carried the copies (descriptors counted, no errors), every
# --dma-prefetch value accepted, bad values refused with exit 2.
# Ports: server 7745, client source ports 7746-7749 (bw) and 7750-7753 (lat).
source "$(dirname "$0")/perf_lib.sh"

start_server srv -- --bind 127.0.0.1:7745 --paths 4 --dma on --dma-prefetch auto

timeout 30 "$bin" perf client --connect 127.0.0.1:7745 --paths 4 --source-port-base 7746 \
  --mode bw --size 65536 --count 2000 --dma on --dma-prefetch on --json >"$work/bw.json" \
  2>"$work/bw.log" || fail "bw client exited $?"
jq_check "$work/bw.json" '.verified == true and .errors == 0' "bw not verified"
jq_check "$work/bw.json" '.dma.engine == true and .dma.prefetch == "on"' "bw dma settings"
# Every copy of a single-element message is one descriptor; 2000 x 64 KiB need >= 16000 gathers.
jq_check "$work/bw.json" '.dma.copies >= 16000 and .dma.descriptors == .dma.copies' "bw copies"
jq_check "$work/bw.json" '.dma.errors == 0' "bw copy errors"

timeout 30 "$bin" perf client --connect 127.0.0.1:7745 --paths 4 --source-port-base 7750 \
  --mode lat --size 64 --count 2000 --dma on --dma-prefetch off --json >"$work/lat.json" \
  2>"$work/lat.log" || fail "lat client exited $?"
jq_check "$work/lat.json" '.verified == true and .errors == 0 and .messages == 2000' "lat"
# The client gathers each request and places each reply: at least 2 copies per round trip.
jq_check "$work/lat.json" '.dma.copies >= 4000 and .dma.errors == 0' "lat copies"

# Direct copies report no descriptors.
timeout 30 "$bin" perf client --connect 127.0.0.1:7745 --paths 2 --count 200 --dma off --json \
  >"$work/direct.json" 2>/dev/null || fail "direct client exited $?"
jq_check "$work/direct.json" '.verified == true and .dma.engine == false and .dma.descriptors == 0' \
  "direct"

for bad in "--dma maybe" "--dma-prefetch sometimes"; do
  # shellcheck disable=SC2086
  rc=0
  "$bin" perf client --connect 127.0.0.1:7745 $bad >/dev/null 2>&1 || rc=$?
  [ "$rc" = 2 ] || fail "client $bad exited $rc, not 2"
  rc=0
  "$bin" perf server --bind 127.0.0.1:7754 $bad >/dev/null 2>&1 || rc=$?
  [ "$rc" = 2 ] || fail "server $bad exited $rc, not 2"
done
echo "perf dma ok: bw $(jq .goodput_gbps "$work/bw.json") Gbit/s ($(jq .dma.descriptors "$work/bw.json") descriptors), lat p50 $(jq .lat_us.p50 "$work/lat.json") us"
