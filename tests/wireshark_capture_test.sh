#!/usr/bin/env bash
# A faulted perf run (loss and duplication on the client's paths) captured three ways: tcpdump
# on lo, the client's --pcap and the server's --pcap. tshark with tools/wireshark/opensrd.lua
# must decode every frame of all three as opensrd (no malformed frame, no expert error, every
# CRC good), and what it decodes must agree with the endpoints' own counters (perf client
# --json) and across the captures (docs/OBSERVABILITY.md lists each check). Needs root (tcpdump
# on lo), tcpdump and tshark. Ports: server 7400, client 7401-7404.
source "$(dirname "$0")/perf_lib.sh"
here=$(cd "$(dirname "$0")" && pwd)
lua="$here/../tools/wireshark/opensrd.lua"
skip() {
  echo "SKIPPED: $*"
  exit 77
}
command -v tshark >/dev/null || skip "no tshark (scripts/setup.sh installs it)"
command -v tcpdump >/dev/null || skip "no tcpdump (scripts/setup.sh installs it)"
command -v python3 >/dev/null || skip "no python3"
[ "$(id -u)" -eq 0 ] || skip "needs root to capture on lo"

port=7400
# One captured run. Returns 1 (and the caller tries again, at most three times) only when
# tcpdump itself lost packets (its ring overflowed on a busy machine): a limit of the witness,
# not of what it watches.
capture_run() {
  rm -f "$work"/*.pcap "$work/tcpdump.log"
  timeout 60 tcpdump -i lo -n -w "$work/wire.pcap" --immediate-mode -U -s 65600 -B 65536 \
    "udp and port $port" 2>"$work/tcpdump.log" &
  local tcpdump_pid=$!
  pids+=("$tcpdump_pid")
  for _ in $(seq 50); do
    grep -q "listening on" "$work/tcpdump.log" 2>/dev/null && break
    sleep 0.1
  done
  grep -q "listening on" "$work/tcpdump.log" ||
    skip "tcpdump cannot capture on lo: $(cat "$work/tcpdump.log")"

  start_server srv -- --bind "127.0.0.1:$port" --paths 4 --pcap "$work/server.pcap"
  local server_pid=${pids[-1]}
  timeout 60 "$bin" perf client --connect "127.0.0.1:$port" --paths 4 --source-port-base 7401 \
    --mode bw --size 2048 --count 1500 --max-payload 1400 --seed 11 \
    --fault 'path=0:loss=0.05,dup=0.03;path=2:loss=0.03,dup=0.02' \
    --pcap "$work/client.pcap" --json >"$work/run.json" 2>"$work/client.log" ||
    fail "client exited $?"
  # The server and tcpdump stop in this order so that tcpdump sees whatever the server still
  # sends.
  sleep 0.3
  kill -INT "$server_pid"
  wait "$server_pid" 2>/dev/null || true
  sleep 0.3
  kill -INT "$tcpdump_pid"
  wait "$tcpdump_pid" 2>/dev/null || true
  grep -q "^0 packets dropped by kernel" "$work/tcpdump.log"
}
for attempt in 1 2 3; do
  capture_run && break
  echo "attempt $attempt: tcpdump lost packets: $(tr '\n' ' ' <"$work/tcpdump.log")"
  [ "$attempt" -lt 3 ] || fail "tcpdump lost packets three times"
done
jq_check "$work/run.json" '.verified == true and .errors == 0' "run not verified"
jq_check "$work/run.json" '.fault.dropped > 0 and .fault.duplicated > 0' "the faults did nothing"
jq_check "$work/run.json" '.pcap.dropped == 0 and .pcap.write_errors == 0 and .pcap.written == .pcap.captured' \
  "client --pcap lost datagrams"
grep -q "pcap .*server.pcap: [0-9]* datagrams written, 0 dropped" "$work/srv.log" ||
  fail "server --pcap summary: $(grep pcap "$work/srv.log")"

for c in wire client server; do
  timeout 120 python3 "$here/opensrd_decode.py" "$lua" "$work/$c.pcap" "$port" "$work/$c.json" ||
    fail "decoding $c.pcap"
done

timeout 60 python3 - "$work" <<'EOF' || fail "decoded captures disagree with the counters"
import collections, json, sys
work = sys.argv[1]
run = json.load(open(f"{work}/run.json"))
cap = {c: json.load(open(f"{work}/{c}.json")) for c in ("wire", "client", "server")}
failed = []

def check(ok, what):
    print(("ok   " if ok else "FAIL ") + what)
    if not ok:
        failed.append(what)

cl, fault = run["client"], run["fault"]
drop, dup = fault["dropped"], fault["duplicated"]
originals = sum(p["sent"] for p in run["paths"])
retx = cl["retransmits"]
w = cap["wire"]["counts"]

for c, d in cap.items():
    check(d["frames"] > 0 and not d["problems"],
          f"{c}.pcap: {d['frames']} frames all decode as opensrd, no malformed frame, no expert "
          f"error, every CRC good {d['problems'][:5]}")
for c in ("client", "server"):
    check(cap[c]["gso_frames"] == 0, f"{c}.pcap holds one datagram per record")
check(originals == cl["data_packets_sent"] - retx, "paths' sent == data_packets_sent - retransmits")
check(w.get("c2s_datagrams") == cl["datagrams_sent"],
      f"wire: client datagrams {w.get('c2s_datagrams')} == client.datagrams_sent {cl['datagrams_sent']}")
check(cap["wire"]["c2s_distinct_data_psns"] == originals,
      f"wire: distinct client DATA PSNs {cap['wire']['c2s_distinct_data_psns']} == data packets first sent {originals}")
check(w.get("c2s_data_retx", 0) > 0, "wire: retransmissions flagged kFlagRetx")
check(sum(p["retransmitted"] for p in run["paths"]) == retx,
      "paths' retransmitted sum to the client's retransmits")
# The injector sits between the core's counters and the wire; it counts what it dropped and
# duplicated on the send side, by kind, so the wire must match exactly: the core's count, less
# the copies dropped, plus the extra copies sent.
rd, rdup = fault["out_retx_dropped"], fault["out_retx_duplicated"]
od, odup = fault["out_data_dropped"] - rd, fault["out_data_duplicated"] - rdup
check(fault["out_data_dropped"] > 0 and fault["out_data_duplicated"] > 0,
      f"the injector dropped ({fault['out_data_dropped']}) and duplicated ({fault['out_data_duplicated']}) DATA")
check(w.get("c2s_data_retx", 0) == retx - rd + rdup,
      f"wire: kFlagRetx DATA {w.get('c2s_data_retx', 0)} == retransmits {retx} - dropped {rd} + duplicated {rdup}")
check(w.get("c2s_data_original", 0) == originals - od + odup,
      f"wire: original DATA {w.get('c2s_data_original', 0)} == first sends {originals} - dropped {od} + duplicated {odup}")
check(w.get("c2s_data", 0) == cl["data_packets_sent"] - fault["out_data_dropped"] + fault["out_data_duplicated"],
      f"wire: DATA {w.get('c2s_data', 0)} == data_packets_sent {cl['data_packets_sent']} - dropped + duplicated")
check(cl["send_errors"] == 0 and
      w.get("c2s_datagrams", 0) == cl["datagrams_out"] - fault["out_dropped"] + fault["out_duplicated"],
      f"wire: client datagrams {w.get('c2s_datagrams', 0)} == core datagrams_out {cl['datagrams_out']} "
      f"- dropped {fault['out_dropped']} + duplicated {fault['out_duplicated']}")
# Acks: standalone ones are the non-DATA the injector touched (with handshakes and probes),
# piggybacked ones ride on DATA.
acks = cl["acks_sent"] + cl["acks_piggybacked"]
wire_acks = w.get("c2s_acks", 0) + w.get("c2s_acks_piggybacked", 0)
check(acks - fault["out_dropped"] <= wire_acks <= acks + fault["out_duplicated"],
      f"wire: client acks {wire_acks} == acks_sent + acks_piggybacked {acks} give or take the send-side injector")
check(cap["wire"]["max_cum_psn"]["s2c"] == originals,
      f"wire: the server's last cumulative ack {cap['wire']['max_cum_psn']['s2c']} covers every PSN ({originals})")
check(cap["wire"]["sack_acked_psns"] > 0,
      f"wire: SACK ranges decoded ({cap['wire']['sack_acked_psns']} PSNs), each acking only PSNs sent before it")
acked = sum(p["acked"] for p in run["paths"])
check(acked == cap["wire"]["max_cum_psn"]["s2c"],
      f"wire: PSNs the server's acks cover {cap['wire']['max_cum_psn']['s2c']} == packets the client counts acked {acked}")

# The client's capture is what crossed its sockets; the server's capture has no injector in
# front of it. Both must match what tcpdump saw, datagram for datagram.
def multiset(c, d):
    return collections.Counter(cap[c]["signatures"][d])
check(multiset("client", "c2s") == multiset("wire", "c2s"),
      "client --pcap sends == tcpdump's client datagrams (same datagrams, same copies)")
extra = multiset("wire", "s2c") - multiset("client", "s2c")
check(not (multiset("client", "s2c") - multiset("wire", "s2c")) and sum(extra.values()) <= 20,
      f"client --pcap receives are tcpdump's server datagrams ({sum(extra.values())} more on the wire, sent after the client left)")
for d in ("c2s", "s2c"):
    check(multiset("server", d) == multiset("wire", d), f"server --pcap == tcpdump ({d})")
sys.exit(1 if failed else 0)
EOF
echo "wireshark capture ok: $(jq -c '{frames, gso_frames, counts}' "$work/wire.json")"
