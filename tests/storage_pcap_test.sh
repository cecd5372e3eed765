#!/usr/bin/env bash
# --pcap on the storage commands: a bridge and an adapter (NVMe front driven by the example host
# program), then a live resize, each capturing its sockets. Both captures decode cleanly with
# tools/wireshark/opensrd.lua, and the bridge's shows every block-protocol message type decoded
# from real traffic (ATTACH, ATTACH_REPLY, IO, IO_REPLY, RESIZE, RESIZE_REPLY, INFO). Needs tshark.
# Ports 7443 (bridge).
# Usage: storage_pcap_test.sh OPENSRD_BIN EXAMPLE_BIN
source "$(dirname "$0")/perf_lib.sh"
example=$2
here=$(cd "$(dirname "$0")" && pwd)
lua="$here/../tools/wireshark/opensrd.lua"
command -v tshark >/dev/null || { echo "SKIPPED: no tshark (scripts/setup.sh installs it)"; exit 77; }
command -v python3 >/dev/null || { echo "SKIPPED: no python3"; exit 77; }

wait_log() {  # wait_log FILE PATTERN
  for _ in $(seq 50); do grep -q "$2" "$1" 2>/dev/null && return 0; sleep 0.1; done
  fail "no '$2' in $1"
}

echo -n s3cret >"$work/token"
timeout 60 "$bin" bridge --bind 127.0.0.1:7443 \
  --volume "vol=$work/vol.img,size=16MiB,token-file=$work/token" --pcap "$work/bridge.pcap" \
  2>"$work/bridge.log" &
bpid=$!
pids+=($bpid)
wait_log "$work/bridge.log" "serving on"
timeout 60 "$bin" adapter --bridge 127.0.0.1:7443 --volume vol --token-file "$work/token" \
  --nvme "unix:$work/nvme.sock" --pcap "$work/adapter.pcap" 2>"$work/adapter.log" &
apid=$!
pids+=($apid)
wait_log "$work/adapter.log" "NVMe queues at"
timeout 30 "$example" --socket "$work/nvme.sock" --blocks 256 --io-blocks 8 --qd 4 \
  >"$work/example.json" 2>"$work/example.log" || fail "example host failed"
jq_check "$work/example.json" '.verified == true' "example verified"
"$bin" volume resize --bridge 127.0.0.1:7443 --volume vol --size 32MiB --token-file "$work/token" \
  >"$work/resize.log" 2>&1 || fail "resize failed"
wait_log "$work/adapter.log" "resized to"
kill -TERM "$apid"
wait "$apid" || fail "adapter did not exit cleanly"
kill -TERM "$bpid"
wait "$bpid" || fail "bridge did not exit cleanly (exit $?): $(tail -n 30 "$work/bridge.log")"
for who in bridge adapter; do
  grep -q "pcap .*$who.pcap: [0-9]* datagrams written, 0 dropped" "$work/$who.log" ||
    fail "$who --pcap summary: $(grep pcap "$work/$who.log")"
  timeout 120 python3 "$here/opensrd_decode.py" "$lua" "$work/$who.pcap" 7443 "$work/$who.json" ||
    fail "decoding $who.pcap"
  jq_check "$work/$who.json" '.problems == [] and .frames > 0' "$who.pcap does not decode cleanly"
done
for t in 1 2 3 4 5 6 7; do
  jq_check "$work/bridge.json" ".counts.block_type_$t > 0" "block type $t not decoded in bridge.pcap"
done
jq_check "$work/adapter.json" '.counts.block_type_3 > 0 and .counts.block_type_4 > 0' \
  "adapter.pcap: no IO / IO_REPLY decoded"
echo "storage pcap ok: $(jq -c '.counts | with_entries(select(.key | startswith("block")))' "$work/bridge.json")"
