#!/usr/bin/env bash
# RoCEv2 interop with Linux's rdma_rxe in a QEMU guest (tests/fixtures/rxe_guest.sh): first the
# fixture itself (an in-guest ibv_rc_pingpong pair), then, when OPENSRD is given, `opensrd rdma
# pingpong` against the guest's ibv_rc_pingpong in both roles, 1 B to 64 KiB, with tcpdump on
# the tap and every captured ICRC recomputed by roce_pcap_icrc_check.py; then both roles again
# under 1% loss each way (nft in the namespace), data verified and retransmissions required
# from both sides. RDMA WRITE, READ and FETCH_ADD run through perftest's ib_write_bw /
# ib_read_bw / ib_atomic_bw in both roles (what can be verified there: docs/RDMA.md). Prints each phase's time and the total.
# Usage: roce_rxe_interop_test.sh [OPENSRD]
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=rdma_guest_lib.sh
source "$(cd "$(dirname "$0")" && pwd)/rdma_guest_lib.sh"
opensrd=${1:-}
ns=$(guest_ns rcns0) host_ip=10.77.0.1 guest_ip=10.77.0.2
export OPENSRD_GUEST_STATE=/tmp/opensrd-rxe-interop-state
guest_preflight "$ns" ibv_rc_pingpong

guest_boot "$ns" "$host_ip" "$guest_ip"

phase "fixture: in-guest ibv_rc_pingpong pair on rxe0"
"$guest" run -t 60 "ibv_rc_pingpong -d rxe0 -g 1 -n 5 >/tmp/srv.log 2>&1 & sleep 1;
  ibv_rc_pingpong -d rxe0 -g 1 -n 5 $guest_ip && sleep 0.3 && grep -q '5 iters' /tmp/srv.log"

[ -n "$opensrd" ] || exit 0
tap=$(guest_tap "$ns")
ours() { ip netns exec "$ns" "$opensrd" rdma "$@"; }
wait_guest_listener() { "$guest" run "n=0; until ss -Hltn | grep -q ':18515 '; do sleep 0.1; n=\$((n+1)); [ \$n -lt 100 ] || exit 1; done"; }
wait_host_listener() {
  for _ in $(seq 100); do ip netns exec "$ns" ss -Hltn | grep -q ':18515 ' && return 0; sleep 0.1; done
  return 1
}
# client_round SIZE ITERS: opensrd client -> guest ibv_rc_pingpong server.
client_round() {
  "$guest" run "(ibv_rc_pingpong -d rxe0 -g 1 -s $1 -n $2; echo rc=\$?) >/tmp/pp.log 2>&1 &"
  wait_guest_listener
  ours pingpong --connect "$guest_ip:18515" -s "$1" -n "$2" --timeout 120 --json "${@:3}" |
    tee "$capdir/last.json"
  "$guest" run -t 30 "n=0; until grep -q '^rc=' /tmp/pp.log; do sleep 0.1; n=\$((n+1)); [ \$n -lt 200 ] || break; done; cat /tmp/pp.log; grep -q '^rc=0' /tmp/pp.log && grep -q '$2 iters' /tmp/pp.log"
}
# server_round SIZE ITERS: guest ibv_rc_pingpong client -> opensrd server.
server_round() {
  ours pingpong --bind "$host_ip:18515" -s "$1" -n "$2" --timeout 120 --json >"$capdir/last.json" &
  local pid=$!
  wait_host_listener
  "$guest" run -t 150 "ibv_rc_pingpong -d rxe0 -g 1 -s $1 -n $2 $host_ip && echo guest-ok" | tee "$capdir/guest.log"
  wait "$pid"
  cat "$capdir/last.json"
  grep -q guest-ok "$capdir/guest.log"
}
verified() { grep -q '"verified":true' "$capdir/last.json"; }
# perftest_client OP SIZE ITERS: opensrd does RDMA OP against the guest's ib_OP_bw server.
perftest_client() {
  "$guest" run "(ib_$1_bw -d rxe0 -x 1 -F -s $2 -n $3; echo rc=\$?) >/tmp/pt.log 2>&1 &"
  wait_guest_listener
  ours perftest --connect "$guest_ip:18515" --op "$1" -s "$2" -n "$3" --timeout 120 --json |
    tee "$capdir/last.json"
  "$guest" run -t 30 "n=0; until grep -q '^rc=' /tmp/pt.log; do sleep 0.1; n=\$((n+1)); [ \$n -lt 200 ] || break; done; grep -q '^rc=0' /tmp/pt.log || { cat /tmp/pt.log; exit 1; }"
}
# perftest_server OP SIZE ITERS: the guest's ib_OP_bw client does RDMA OP against opensrd.
perftest_server() {
  ours perftest --bind "$host_ip:18515" --op "$1" -s "$2" -n "$3" --timeout 120 --json >"$capdir/last.json" &
  local pid=$!
  wait_host_listener
  "$guest" run -t 150 "ib_$1_bw -d rxe0 -x 1 -F -s $2 -n $3 $host_ip >/tmp/pt.log 2>&1 && echo guest-ok || cat /tmp/pt.log" | tee "$capdir/guest.log"
  wait "$pid"
  cat "$capdir/last.json"
  grep -q guest-ok "$capdir/guest.log"
}

phase "opensrd client -> rxe server, 1 B to 64 KiB (tcpdump on $tap)"
capture "$ns" "$tap" "$capdir/clean.pcap" udp port 4791
for size in 1 1024 1025 4096 65536; do
  client_round "$size" 10
  verified
done
phase "rxe client -> opensrd server, 1 B to 64 KiB"
for size in 1 1025 65536; do
  server_round "$size" 10
  verified
done
if command -v tshark >/dev/null; then
  phase "--pcap: opensrd's own capture decodes in tshark, no malformed packet or warning"
  client_round 65536 5 --pcap "$capdir/ours.pcap"
  verified
  n=$(tshark -r "$capdir/ours.pcap" -Y infiniband 2>/dev/null | wc -l)
  warn=$(tshark -r "$capdir/ours.pcap" -Y '_ws.malformed || _ws.expert.severity >= warning' 2>/dev/null | wc -l)
  echo "tshark: $n InfiniBand packets, $warn malformed or with warnings"
  [ "$n" -gt 600 ] && [ "$warn" = 0 ]
else
  echo "note: tshark missing, the --pcap check did not run"
fi
phase "RDMA WRITE, READ and FETCH_ADD with perftest (ib_{write,read,atomic}_bw -x 1), both roles"
for op_size in write:65536 read:65536 atomic:8; do
  perftest_client "${op_size%:*}" "${op_size#*:}" 100
  verified
  perftest_server "${op_size%:*}" "${op_size#*:}" 100
  verified
done
stop_capture
check_icrcs "$capdir/clean.pcap" "$host_ip"

phase "1% loss each way (nft in $ns): both roles, data verified, retransmissions on both sides"
roce_loss_on "$ns"
capture "$ns" "$tap" "$capdir/loss.pcap" udp port 4791
client_round 4096 300
verified
server_round 4096 300
verified
stop_capture
roce_loss_report "$ns"
check_icrcs "$capdir/loss.pcap" "$host_ip" --want-retransmits
phase "passed"
