#!/usr/bin/env bash
# librdmacm's rping against `opensrd rdma rping` over RoCEv2, with Linux's rdma_rxe in a QEMU
# guest (tests/fixtures/rxe_guest.sh) as the peer, connected through the IB connection manager
# on QP1 (REQ with rdma_cm's header, REP, RTU; DREQ/DREP at the end). Both roles, with rping's
# -V on the guest's client: rping -s in the guest with our client (-V: our READ-back compare),
# our server with rping -c -V in the guest (our server also checks every READ against rping's
# text). 64-byte and 4000-byte buffers (the latter: READ responses and WRITEs of 4 packets at
# MTU 1024); every captured ICRC is recomputed by roce_pcap_icrc_check.py. Also CMP_SWAP
# through perftest's exchange (`opensrd rdma perftest --op cas` against ib_atomic_bw,
# -A CMP_AND_SWAP on the guest's client), both roles. Then both roles, 50 pings each, with
# reordering and no loss: opensrd holds 5% of its packets back (--reorder) and netem on the
# guest's eth0 lets a quarter of rxe's packets overtake the rest (delay 3ms reorder 25% 50%);
# data verified, opensrd's counters show the swaps and its queue pair's NAK/resend/duplicate
# counters moved, and the tap capture shows packets from each side out of order. Then both
# roles again, 100 pings each, under 1% loss each way (nft in the namespace), data verified,
# and the tap capture must show retransmitted requests. Owns netns rcns1 (10.79.0.1/.2;
# OPENSRD_TEST_NETNS renames it).
# Usage: roce_rping_rxe_test.sh OPENSRD
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=rdma_guest_lib.sh
source "$(cd "$(dirname "$0")" && pwd)/rdma_guest_lib.sh"
opensrd=$1
ns=$(guest_ns rcns1) host_ip=10.79.0.1 guest_ip=10.79.0.2
export OPENSRD_GUEST_STATE=/tmp/opensrd-rping-rxe-state
guest_preflight "$ns" tcpdump

guest_boot "$ns" "$host_ip" "$guest_ip"
"$guest" run "command -v rping >/dev/null" || skip "the guest image has no rping"
tap=$(guest_tap "$ns")
ours() { ip netns exec "$ns" "$opensrd" rdma rping "$@"; }
verified() { grep -q '"verified":true' "$capdir/last.json" || { cat "$capdir/last.json"; return 1; }; }

# client_round SIZE COUNT [OPTION...]: the guest's rping -s, our client with -V and OPTIONs.
client_round() {
  "$guest" run "for p in \$(pidof rping); do kill \$p; done
    (rping -s -a $guest_ip -S $1 -C $2 -V; echo rc=\$?) >/tmp/rping.log 2>&1 &"
  # rdma_cm listeners do not show in ss; `rdma res show cm_id` lists them (a REQ that comes
  # before the listener is rejected with reason 8).
  "$guest" run "n=0; until rdma res show cm_id | grep -q 'LISTEN.*:7174'; do sleep 0.1; n=\$((n+1)); [ \$n -lt 100 ] || exit 1; done"
  ours --connect "$guest_ip" -S "$1" -C "$2" -V --timeout 150 --json "${@:3}" | tee "$capdir/last.json"
  "$guest" run -t 30 "n=0; until grep -q '^rc=' /tmp/rping.log; do sleep 0.1; n=\$((n+1)); [ \$n -lt 200 ] || break; done
    cat /tmp/rping.log; grep -q '^rc=0' /tmp/rping.log"
}
# server_round SIZE COUNT [OPTION...]: our server with OPTIONs, the guest's rping -c -V.
server_round() {
  ours --bind "$host_ip" -S "$1" --timeout 150 --json "${@:3}" >"$capdir/last.json" 2>"$capdir/srv.log" &
  local pid=$!
  for _ in $(seq 50); do grep -q listening "$capdir/srv.log" 2>/dev/null && break; sleep 0.1; done
  "$guest" run -t 160 "rping -c -a $host_ip -S $1 -C $2 -V && echo guest-ok" | tee "$capdir/guest.log"
  wait "$pid"
  cat "$capdir/last.json"
  grep -q guest-ok "$capdir/guest.log"
  grep -q "\"pings\":$2," "$capdir/last.json"
}

capture "$ns" "$tap" "$capdir/clean.pcap" udp port 4791
for size in 64 4000; do
  phase "rping -s in the guest, opensrd client, $size bytes"
  client_round "$size" 20
  verified
  phase "opensrd server, rping -c -V in the guest, $size bytes"
  server_round "$size" 20
  verified
done
phase "CMP_SWAP: opensrd client -> ib_atomic_bw server (chained swaps, each must hit)"
"$guest" run "(ib_atomic_bw -d rxe0 -x 1 -F -n 100; echo rc=\$?) >/tmp/pt.log 2>&1 &"
"$guest" run "n=0; until ss -Hltn | grep -q ':18515 '; do sleep 0.1; n=\$((n+1)); [ \$n -lt 100 ] || exit 1; done"
ip netns exec "$ns" "$opensrd" rdma perftest --connect "$guest_ip:18515" --op cas -n 100 \
  --timeout 100 --json | tee "$capdir/last.json"
verified
"$guest" run -t 30 "n=0; until grep -q '^rc=' /tmp/pt.log; do sleep 0.1; n=\$((n+1)); [ \$n -lt 200 ] || break; done; grep -q '^rc=0' /tmp/pt.log"
phase "CMP_SWAP: ib_atomic_bw -A CMP_AND_SWAP client -> opensrd server"
ip netns exec "$ns" "$opensrd" rdma perftest --bind "$host_ip:18515" --op cas -n 100 --timeout 100 \
  --json >"$capdir/last.json" &
pt_pid=$!
for _ in $(seq 100); do ip netns exec "$ns" ss -Hltn | grep -q ':18515 ' && break; sleep 0.1; done
"$guest" run -t 100 "ib_atomic_bw -d rxe0 -x 1 -F -A CMP_AND_SWAP -n 100 $host_ip >/tmp/pt.log 2>&1 && echo guest-ok || cat /tmp/pt.log" |
  tee "$capdir/guest.log"
wait "$pt_pid"
cat "$capdir/last.json"
verified
grep -q guest-ok "$capdir/guest.log"
grep -q '"messages_executed":100' "$capdir/last.json"
stop_capture
check_icrcs "$capdir/clean.pcap" "$host_ip"

# json_val EXPR: EXPR evaluated over the last round's JSON (as j).
json_val() { python3 -c "import json,sys; j=json.load(open(sys.argv[1])); print($1)" "$capdir/last.json"; }
# moved: the round's swaps and what the queue pairs did about reordering.
moved() {
  echo "reordered by opensrd: $(json_val "j['counters']['reordered']"); NAKs sent $(json_val "j['naks_sent']"), received $(json_val "j['naks_received']"); resent $(json_val "j['retransmits']"); duplicates $(json_val "j['duplicates']")"
  [ "$(json_val "j['counters']['reordered']")" -gt 0 ] || { echo "FAIL: opensrd reordered nothing"; return 1; }
  [ "$(json_val "j['naks_sent'] + j['naks_received'] + j['retransmits'] + j['duplicates']")" -gt 0 ] ||
    { echo "FAIL: no NAK, resend or duplicate: the reordering went unnoticed"; return 1; }
}
phase "reordering: opensrd --reorder 0.05 towards rxe, netem reorder on the guest's eth0 (no loss)"
guest_has_netem || { echo "FAIL: no tc or sch_netem in the guest (the fixture installs both)"; exit 1; }
guest_netem eth0 delay 3ms reorder 25% 50%
capture "$ns" "$tap" "$capdir/reorder.pcap" udp port 4791
client_round 4000 50 --reorder 0.05 --seed 5
verified
moved
server_round 4000 50 --reorder 0.05 --seed 6
verified
moved
stop_capture
guest_netem_report eth0
guest_netem_off eth0
check_icrcs "$capdir/reorder.pcap" "$host_ip" --want-reordered both

phase "1% loss each way (nft in $ns): both roles, data verified, retransmissions"
roce_loss_on "$ns"
capture "$ns" "$tap" "$capdir/loss.pcap" udp port 4791
client_round 4000 100
verified
server_round 4000 100
verified
stop_capture
roce_loss_report "$ns"
check_icrcs "$capdir/loss.pcap" "$host_ip" --want-retransmits
phase "passed"
