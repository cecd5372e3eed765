#!/usr/bin/env bash
# --pcap files decode cleanly with tools/wireshark/opensrd.lua: `opensrd demo` (loss injected on
# one path; its storage part is left out: under TSan it reports races of its own, and
# tests/storage_pcap_test.sh covers the storage commands' captures), a perf run with the
# cluster key in mac mode (trailers recognised, CRCs checked) and
# one in aead mode (decoded with the dissector's aead preference). Each file holds exactly the
# records its writer reported, one datagram each; an unwritable --pcap path is refused with exit
# code 2. Needs tshark. Ports: server 7410, 7411; clients 7412-7415.
source "$(dirname "$0")/perf_lib.sh"
here=$(cd "$(dirname "$0")" && pwd)
lua="$here/../tools/wireshark/opensrd.lua"
command -v tshark >/dev/null || { echo "SKIPPED: no tshark (scripts/setup.sh installs it)"; exit 77; }
command -v python3 >/dev/null || { echo "SKIPPED: no python3"; exit 77; }

# decode NAME PORT [tshark options]: NAME.pcap -> NAME.json; fails on any problem.
decode() {
  local name=$1 port=$2
  shift 2
  timeout 120 python3 "$here/opensrd_decode.py" "$lua" "$work/$name.pcap" "$port" \
    "$work/$name.json" "$@" || fail "decoding $name.pcap"
  jq_check "$work/$name.json" '.problems == [] and .gso_frames == 0 and .frames > 0' \
    "$name.pcap does not decode cleanly"
}

timeout 60 "$bin" demo --messages 300 --storage-ops 0 --pcap "$work/demo.pcap" >"$work/demo.out" 2>&1 ||
  fail "demo exited $?: $(cat "$work/demo.out")"
written=$(sed -nE 's/.*pcap .*: ([0-9]+) datagrams written, 0 dropped.*/\1/p' "$work/demo.out")
[ -n "$written" ] || fail "demo did not report its capture: $(cat "$work/demo.out")"
decode demo 0
jq_check "$work/demo.json" ".frames == $written" "demo.pcap frames != datagrams written ($written)"
jq_check "$work/demo.json" '.counts.c2s_type_1 > 0 and .counts.c2s_type_2 > 0 and .counts.c2s_type_3 > 0 and .counts.c2s_type_4 > 0' \
  "demo.pcap lacks DATA, ACK, HELLO or HELLO_ACK"

head -c 32 /dev/urandom >"$work/cluster.key"
for mode in mac aead; do
  port=$([ $mode = mac ] && echo 7410 || echo 7411)
  base=$([ $mode = mac ] && echo 7412 || echo 7414)
  start_server "srv_$mode" -- --bind "127.0.0.1:$port" --paths 2 --key-file "$work/cluster.key" \
    --key-mode $mode
  timeout 60 "$bin" perf client --connect "127.0.0.1:$port" --paths 2 --source-port-base "$base" \
    --key-file "$work/cluster.key" --key-mode $mode --mode bw --size 2048 --count 300 \
    --max-payload 1400 --pcap "$work/$mode.pcap" --json >"$work/$mode.run.json" \
    2>"$work/$mode.log" || fail "$mode client exited $?"
  jq_check "$work/$mode.run.json" '.verified and .pcap.dropped == 0 and .pcap.written > 0' \
    "$mode run or its capture"
  if [ $mode = mac ]; then
    decode mac "$port"
    jq_check "$work/mac.json" '.counts.key_trailers == .frames' "not every mac trailer recognised"
  else
    decode aead "$port" -o opensrd.key_mode:aead
    jq_check "$work/aead.json" '.counts.encrypted == .frames' "aead datagrams not shown encrypted"
  fi
  written=$(jq .pcap.written "$work/$mode.run.json")
  jq_check "$work/$mode.json" ".frames == $written" "$mode.pcap frames != datagrams written"
done

# A file that cannot be created: usage error naming it.
set +e
"$bin" perf client --connect 127.0.0.1:7410 --pcap /nonexistent-dir/x.pcap >"$work/bad.out" 2>&1
rc=$?
set -e
[ $rc -eq 2 ] || fail "unwritable --pcap: exit $rc, want 2"
grep -q "/nonexistent-dir/x.pcap" "$work/bad.out" || fail "message does not name the file: $(cat "$work/bad.out")"
echo "pcap files ok: demo $(jq -c .counts "$work/demo.json")"
