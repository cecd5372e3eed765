#!/usr/bin/env bash
# `opensrd rdma server|client --protocol roce` on loopback: a server on 127.0.13.1:4791, clients
# from 127.0.13.2, connected through the connection manager on QP1 (REQ/REP/RTU, DREQ/DREP).
# WRITE, READ, SEND and FETCH_ADD at 1 B, 4 KiB and 64 KiB (64 packets of 1024 bytes) verify
# their data; a --duration run; a wrong rkey gives remote access errors the server NAKed; an
# rdma_cm port nobody listens on is rejected (REJ reason 8, invalid service ID). Both ends write
# --pcap files that tshark must decode without a malformed packet or warning and with the
# opcodes each operation uses; tcpdump on lo captures the same traffic and every ICRC there
# is recomputed by tests/roce_pcap_icrc_check.py (zlib, nothing shared with the codec).
# A client asking for --mtu 4096 sends a quarter as many packets, and the server follows.
# Usage: roce_cli_test.sh OPENSRD_BIN
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
source "$here/perf_lib.sh"
command -v jq >/dev/null || { echo "SKIPPED: no jq (scripts/setup.sh installs it)"; exit 77; }
command -v tshark >/dev/null || { echo "SKIPPED: no tshark (scripts/setup.sh installs it)"; exit 77; }
srv=127.0.13.1
cli=127.0.13.2

tcpdump_pid=""
if [ "$(id -u)" = 0 ] && command -v tcpdump >/dev/null; then
  tcpdump -i lo -U -s 0 -w "$work/lo.pcap" "udp port 4791 and net 127.0.13.0/24" \
    2>"$work/tcpdump.log" &
  tcpdump_pid=$!
  pids+=($tcpdump_pid)
  for _ in $(seq 50); do grep -q "listening on" "$work/tcpdump.log" && break; sleep 0.1; done
else
  echo "note: not root or no tcpdump: the independent ICRC check on lo does not run"
fi

timeout 300 "$bin" rdma server --bind "$srv:4791" --protocol roce --region-size 4194304 --json \
  --pcap "$work/server.pcap" >"$work/srv.json" 2>"$work/srv.log" &
server_pid=$!
pids+=($server_pid)
for _ in $(seq 50); do grep -q "rdma_cm port" "$work/srv.log" 2>/dev/null && break; sleep 0.1; done
grep -q "rdma_cm port" "$work/srv.log" || fail "server did not start"

client() {  # NAME ARGS...
  local name=$1
  shift
  timeout 60 "$bin" rdma client --connect "$srv:4791" --bind "$cli" --protocol roce --json "$@" \
    >"$work/$name.json" 2>"$work/$name.log"
}

runs=0
for op in write read send atomic; do
  for size in 1 4096 65536; do
    [ "$op" = atomic ] && [ "$size" != 1 ] && continue
    args=(--op "$op" --count 100 --inflight 8)
    [ "$op" = atomic ] || args+=(--size "$size")
    client "$op-$size" "${args[@]}" || fail "client --op $op --size $size exited $?"
    want=$([ "$op" = atomic ] && echo 8 || echo "$size")
    jq_check "$work/$op-$size.json" \
      ".verified == true and .errors == 0 and .ops == 100 and .bytes == 100 * $want and .disconnected == true" \
      "$op of $size bytes"
    jq_check "$work/$op-$size.json" \
      '.lat_us.p50 > 0 and .lat_us.max >= .lat_us.p99 and .goodput_gbps > 0 and .counters.icrc_bad == 0' \
      "$op report fields"
    runs=$((runs + 1))
  done
done
client pcap --op write --size 3000 --count 20 --pcap "$work/client.pcap" || fail "pcap client"
jq_check "$work/pcap.json" '.verified == true and .pcap.written > 40' "client capture"
client dur --op read --size 512 --duration 0.5 || fail "duration client exited $?"
jq_check "$work/dur.json" '.verified == true and .ops > 0 and .seconds >= 0.5' "--duration"
runs=$((runs + 2))
# The path MTU is the client's: 100 WRITEs of 64 KiB were 64 packets each above (the default
# 1024); 10 at 4096 are 16 packets each, plus the CM's MADs and the verifying READ requests,
# and READ responses come back cut at 4096 too (before the fix the client ran at 1024, the
# server at 4096, and every 64 KiB WRITE and READ failed verification).
jq_check "$work/write-65536.json" '.counters.tx_packets >= 6400' "1024-byte packets at the default MTU"
client mtu4k --op write --size 65536 --count 10 --inflight 4 --mtu 4096 || fail "--mtu 4096 write"
jq_check "$work/mtu4k.json" '.verified == true and .counters.tx_packets >= 160 and .counters.tx_packets < 200' \
  "4096-byte packets with --mtu 4096"
client mtu4kr --op read --size 65536 --count 10 --inflight 4 --mtu 4096 || fail "--mtu 4096 read"
jq_check "$work/mtu4kr.json" '.verified == true and .counters.rx_packets >= 160 and .counters.rx_packets < 200' \
  "4096-byte READ responses with --mtu 4096"
rc=0
client mtubad --op write --size 64 --count 1 --mtu 1000 || rc=$?
[ "$rc" = 2 ] || fail "--mtu 1000 exited $rc, not 2 (bad usage)"
runs=$((runs + 2))

# A wrong rkey: the first WRITE is NAKed (remote access error), the rest are flushed.
rc=0
client bad --op write --size 64 --count 5 --bad-rkey || rc=$?
[ "$rc" = 1 ] || fail "a wrong rkey exited $rc, not 1"
jq_check "$work/bad.json" '.error == "remote access error" and .ops == 0 and .errors == 5 and .verified == false' \
  "wrong rkey"
# No listener on that rdma_cm port: the server's CM rejects the REQ (invalid service ID).
rc=0
client nolisten --op write --size 64 --count 1 --cm-port 7175 || rc=$?
[ "$rc" = 1 ] || fail "an unknown service exited $rc, not 1"
jq_check "$work/nolisten.json" '.error == "connection rejected (reason 8)"' "REJ reason 8"

kill -TERM "$server_pid"
wait "$server_pid" || fail "server exited $?"
jq_check "$work/srv.json" ".connections == $((runs + 1)) and .naks_sent >= 1 and .sends_bad == 0 and .sends_ok == 300 and .counters.icrc_bad == 0" \
  "server counters"
jq_check "$work/srv.json" '.pcap.written > 1000' "server capture"

# tshark judges both captures: no malformed packet or warning, and the opcodes each op uses.
# RDMA payloads are application bytes: tshark is told not to guess an upper protocol in them
# (identify_payload off, and the protocols its payload heuristics would pick disabled). With
# them on, a 1-byte WRITE of 0x06 plus its pad reads as Ethertype 0x0600 (IDP) and a 1-byte SEND
# as RPC-over-RDMA, both then "malformed".
guess=()
for p in smc smb_direct rpcordma nvme-rdma lnet iser idp infiniband.eoib infiniband_sdp fcoib; do
  guess+=(--disable-protocol "$p")
done
tshark() { command tshark -o infiniband.identify_payload:FALSE "${guess[@]}" "$@"; }
tshark -r "$work/server.pcap" -c 1 >/dev/null || fail "tshark cannot read server.pcap"
for f in server client; do
  warn=$(tshark -r "$work/$f.pcap" -Y '_ws.malformed || _ws.expert.severity >= warning' 2>/dev/null | wc -l)
  if [ "$warn" != 0 ]; then
    tshark -r "$work/$f.pcap" -Y '_ws.malformed || _ws.expert.severity >= warning' -V 2>/dev/null |
      grep -E "Opcode|Expert Info|Malformed|Attribute ID" | sort | uniq -c | head -20
    fail "tshark: $warn malformed packets or warnings in $f.pcap"
  fi
done
tshark -r "$work/server.pcap" -T fields -e infiniband.bth.opcode 2>/dev/null | sort -n | uniq -c \
  >"$work/opcodes.txt"
# SEND first/middle/last/only, WRITE first/middle/last/only, READ request and its four
# responses, ACK, atomic ACK, FETCH_ADD, and UD SEND ONLY (100) for the CM.
for op in 0 1 2 4 6 7 8 10 12 13 14 15 16 17 18 20 100; do
  grep -qE "^ *[0-9]+ $op\$" "$work/opcodes.txt" || { cat "$work/opcodes.txt"; fail "opcode $op missing"; }
done
tshark -r "$work/server.pcap" -Y 'infiniband.bth.opcode == 100' -T fields -e infiniband.mad.attributeid \
  2>/dev/null | sort | uniq -c >"$work/cm.txt"
for attr in 0x0010 0x0012 0x0013 0x0014 0x0015 0x0016; do
  grep -q "$attr" "$work/cm.txt" || { cat "$work/cm.txt"; fail "CM attribute $attr missing"; }
done
# rdma_cm's header as Wireshark reads it: IPv4, from the client to the server.
tshark -r "$work/server.pcap" -Y 'infiniband.mad.attributeid == 0x0010' -V >"$work/req.txt" 2>/dev/null
grep -q "IP CM Destination IP: $srv" "$work/req.txt" && grep -q "IP CM Source IP: $cli" "$work/req.txt" ||
  fail "tshark does not see rdma_cm's IP header in the REQ"

if [ -n "$tcpdump_pid" ]; then
  sleep 0.5
  kill -INT "$tcpdump_pid"
  wait "$tcpdump_pid" || true
  python3 "$here/roce_pcap_icrc_check.py" "$work/lo.pcap" "$cli" >"$work/icrc.log" 2>&1 ||
    { cat "$work/icrc.log"; fail "ICRC check of the lo capture"; }
  cat "$work/icrc.log"
fi
echo "PASS"
