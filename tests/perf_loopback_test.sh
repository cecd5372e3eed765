#!/usr/bin/env bash
# perf bw and lat over 4 paths on loopback: verified, no errors, every path carries traffic.
# Ports: server 7200, client source ports 7201-7204 (bw) and 7211-7214 (lat).
source "$(dirname "$0")/perf_lib.sh"

start_server srv -- --bind 127.0.0.1:7200 --paths 4

timeout 30 "$bin" perf client --connect 127.0.0.1:7200 --paths 4 --source-port-base 7201 \
  --mode bw --size 65536 --duration 2 --json >"$work/bw.json" 2>"$work/bw.log" ||
  fail "bw client exited $?"
jq_check "$work/bw.json" '.verified == true' "bw not verified"
jq_check "$work/bw.json" '.errors == 0' "bw errors"
jq_check "$work/bw.json" '.messages > 0 and .goodput_gbps > 0' "bw moved nothing"
# Where the kernel has UDP GSO/GRO (it does on the project's machines), bulk sends use it.
jq_check "$work/bw.json" '(.client.gso | not) or .client.gso_batches > 0' "GSO enabled but unused"
jq_check "$work/bw.json" '(.paths | length) == 4 and all(.paths[]; .sent > 0)' "a bw path sent nothing"
jq_check "$work/bw.json" '.paths[0].local == "127.0.0.1:7201" and .paths[3].local == "127.0.0.1:7204"' \
  "bw source ports"
jq_check "$work/bw.json" '.lat_us.p50 > 0 and .lat_us.p50 <= .lat_us.p99 and .lat_us.p99 <= .lat_us.max' \
  "bw latency percentiles"

timeout 30 "$bin" perf client --connect 127.0.0.1:7200 --paths 4 --source-port-base 7211 \
  --mode lat --size 64 --count 3000 --in-order --json >"$work/lat.json" 2>"$work/lat.log" ||
  fail "lat client exited $?"
jq_check "$work/lat.json" '.verified == true and .errors == 0' "lat not verified"
jq_check "$work/lat.json" '.messages == 3000' "lat message count"
jq_check "$work/lat.json" 'all(.paths[]; .sent > 0)' "a lat path sent nothing"
jq_check "$work/lat.json" '.lat_us.p50 > 0' "lat latency"

# The human-readable report says verified.
timeout 30 "$bin" perf client --connect 127.0.0.1:7200 --paths 2 --count 200 >"$work/text.out" ||
  fail "text client exited $?"
grep -q "verified: yes" "$work/text.out" || fail "text report: $(cat "$work/text.out")"
echo "perf loopback ok: bw $(jq .goodput_gbps "$work/bw.json") Gbit/s, lat p50 $(jq .lat_us.p50 "$work/lat.json") us"
