#!/usr/bin/env bash
# librdmacm's rping against `opensrd rdma rping` over RoCEv2, with Linux's rdma_rxe in a QEMU
# guest (tests/fixtures/rxe_guest.sh) as the peer, connected through the IB connection manager
# on QP1 (REQ with rdma_cm's header, REP, RTU; DREQ/DREP at the end). Both roles, with rping's
# -V on the guest's client: rping -s in the guest with our client (-V: our READ-back compare),
# our server with rping -c -V in the guest (our server also checks every READ against rping's
# text). 64-byte and 4000-byte buffers (the latter: READ responses and WRITEs of 4 packets at
# MTU 1024). Then both roles again, 100 pings each, under 1% loss each way (nft in the
# namespace), data verified, and the tap capture must show retransmitted requests; every
# captured ICRC is recomputed by roce_pcap_icrc_check.py. Also CMP_SWAP through perftest's
# exchange (`opensrd rdma perftest --op cas` against ib_atomic_bw, -A CMP_AND_SWAP on the guest's
# client), both roles. Owns netns rcns1 (10.79.0.1/.2).
# Usage: roce_rping_rxe_test.sh OPENSRD
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
guest=$here/fixtures/rxe_guest.sh
opensrd=$1
ns=rcns1 host_ip=10.79.0.1 guest_ip=10.79.0.2
export OPENSRD_GUEST_STATE=/tmp/opensrd-rping-rxe-state

skip() {
  echo "SKIPPED: $*"
  exit 77
}
[ "$(id -u)" = 0 ] || skip "needs root (netns, tap)"
[ -e /dev/net/tun ] || skip "/dev/net/tun missing"
command -v qemu-system-x86_64 >/dev/null || skip "qemu-system-x86_64 missing (scripts/setup.sh)"
command -v tcpdump >/dev/null || skip "tcpdump missing (scripts/setup.sh)"
ip netns list | grep -qw "^$ns" && skip "netns $ns in use (another run?)"

t_start=$SECONDS
phase() { echo "== $1 ($((SECONDS - t_start)) s so far)"; }
capdir=$(mktemp -d)
tcpdump_pid=
trap 'rc=$?; set +e; [ -z "$tcpdump_pid" ] || kill "$tcpdump_pid" 2>/dev/null; "$guest" stop
  rm -rf "$capdir"; echo "total $((SECONDS - t_start)) s"; exit $rc' EXIT

phase "build image"
"$guest" build >/dev/null
phase "boot guest"
"$guest" start "$ns" "$host_ip" "$guest_ip"
"$guest" run "command -v rping >/dev/null" || skip "the guest image has no rping"
tap=$(ip -n "$ns" -br link | awk '/tap/{print $1; exit}')
tap=${tap%@*}
capture() {
  ip netns exec "$ns" tcpdump -i "$tap" -U -s 0 -w "$1" udp port 4791 2>"$capdir/tcpdump.log" &
  tcpdump_pid=$!
  for _ in $(seq 50); do grep -q listening "$capdir/tcpdump.log" 2>/dev/null && break; sleep 0.1; done
}
stop_capture() {
  sleep 0.3
  kill "$tcpdump_pid"
  wait "$tcpdump_pid" || true
  tcpdump_pid=
}
ours() { ip netns exec "$ns" "$opensrd" rdma rping "$@"; }
verified() { grep -q '"verified":true' "$capdir/last.json" || { cat "$capdir/last.json"; return 1; }; }

# client_round SIZE COUNT: the guest's rping -s, our client with -V.
client_round() {
  "$guest" run "for p in \$(pidof rping); do kill \$p; done
    (rping -s -a $guest_ip -S $1 -C $2 -V; echo rc=\$?) >/tmp/rping.log 2>&1 &"
  # rdma_cm listeners do not show in ss; `rdma res show cm_id` lists them (a REQ that comes
  # before the listener is rejected with reason 8).
  "$guest" run "n=0; until rdma res show cm_id | grep -q 'LISTEN.*:7174'; do sleep 0.1; n=\$((n+1)); [ \$n -lt 100 ] || exit 1; done"
  ours --connect "$guest_ip" -S "$1" -C "$2" -V --timeout 150 --json | tee "$capdir/last.json"
  "$guest" run -t 30 "n=0; until grep -q '^rc=' /tmp/rping.log; do sleep 0.1; n=\$((n+1)); [ \$n -lt 200 ] || break; done
    cat /tmp/rping.log; grep -q '^rc=0' /tmp/rping.log"
}
# server_round SIZE COUNT: our server, the guest's rping -c -V.
server_round() {
  ours --bind "$host_ip" -S "$1" --timeout 150 --json >"$capdir/last.json" 2>"$capdir/srv.log" &
  local pid=$!
  for _ in $(seq 50); do grep -q listening "$capdir/srv.log" 2>/dev/null && break; sleep 0.1; done
  "$guest" run -t 160 "rping -c -a $host_ip -S $1 -C $2 -V && echo guest-ok" | tee "$capdir/guest.log"
  wait "$pid"
  cat "$capdir/last.json"
  grep -q guest-ok "$capdir/guest.log"
  grep -q "\"pings\":$2," "$capdir/last.json"
}

capture "$capdir/clean.pcap"
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
phase "every captured ICRC, recomputed independently"
python3 "$here/roce_pcap_icrc_check.py" "$capdir/clean.pcap" "$host_ip"

phase "1% loss each way (nft in $ns): both roles, data verified, retransmissions"
ip netns exec "$ns" nft -f - <<NFT
table inet rcloss {
  chain in { type filter hook input priority 0; udp dport 4791 numgen random mod 100 == 0 counter drop; }
  chain out { type filter hook output priority 0; udp dport 4791 numgen random mod 100 == 0 counter drop; }
}
NFT
capture "$capdir/loss.pcap"
client_round 4000 100
verified
server_round 4000 100
verified
stop_capture
ip netns exec "$ns" nft list table inet rcloss | grep -o 'counter packets [0-9]*' | sed 's/^/dropped: /'
python3 "$here/roce_pcap_icrc_check.py" "$capdir/loss.pcap" "$host_ip" --want-retransmits
phase "passed"
