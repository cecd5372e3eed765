#!/usr/bin/env bash
# opensrd's iWARP against Linux's own soft-iWARP (siw) in the QEMU guest fixture
# (tests/fixtures/rxe_guest.sh, OPENSRD_GUEST_SIW=1), with librdmacm's rping on the guest side:
#   1. `rping -s` on siw, `opensrd rdma client --protocol iwarp --rping` (rping -c -V's
#      exchange, verified) from the host side of the namespace;
#   2. `opensrd rdma server --protocol iwarp --rping`, `rping -c -V` on siw;
#   3. both again with 1% of the tap's TCP segments dropped in each direction by nft in the
#      namespace: both kernels' TCP retransmits (counted), data still verified;
#   4. both again with netem on the guest's siw NIC (delay 5ms reorder 25% 50%: a quarter of
#      siw's segments overtake the rest; the fixture gives the guest tc and sch_netem): TCP
#      hides the reordering from iWARP, so the proof it happened is the host kernel's count of
#      segments it queued out of order (TcpExtTCPOFOQueue), and the data still verifies.
# Owns netns iwns1 (10.78.2.0/24 for the guest's rxe NIC, 10.78.3.0/24 for siw0; the name
# changes with OPENSRD_TEST_NETNS) and TCP ports 7776-7779 and 7800-7801. Exits 77 (skipped)
# without root, /dev/net/tun, qemu or rping.
set -euo pipefail
bin=$1
# shellcheck source-path=SCRIPTDIR source=rdma_guest_lib.sh
source "$(cd "$(dirname "$0")" && pwd)/rdma_guest_lib.sh"
ns=$(guest_ns iwns1)
hip=10.78.3.1 gip=10.78.3.2
export OPENSRD_GUEST_SIW=1 OPENSRD_GUEST_STATE=/tmp/opensrd-iwarp-siw-state
ip netns list | grep -qw "^$ns" && { echo "netns $ns exists (another run?)"; exit 1; }
guest_preflight "$ns" rping nft
out=$capdir
srv=
on_exit=('[ -n "$srv" ] && kill $srv 2>/dev/null')
on_failure() {
  echo "-- guest rping logs"
  "$guest" run 'tail -n 5 /tmp/rs.*.log; dmesg | grep -i siw | tail -n 5'
  if [ -f "$out/tap.pcap" ]; then
    echo "-- last frames on the siw tap"
    tshark -r "$out/tap.pcap" 2>/dev/null | tail -n 15
    cp "$out/tap.pcap" /tmp/opensrd_siw_interop_failed.pcap
  fi
}
inns() { ip netns exec $ns "$@"; }
json_ok() { python3 -c "import json,sys; j=json.load(open(sys.argv[1])); sys.exit(0 if $2 else 1)" "$1"; }

guest_boot $ns 10.78.2.1 10.78.2.2 $hip $gip
"$guest" run 'rdma link show' | grep -q 'siw0.*ACTIVE' || { echo "siw0 not ACTIVE"; exit 1; }
tap=$(guest_tap $ns 1)
capture $ns "$tap" "$out/tap.pcap" tcp

# run_pair TAG PINGS SIZE PORT_A PORT_B
run_pair() {
  local tag=$1 pings=$2 size=$3 pa=$4 pb=$5
  echo "== $tag: rping -s on siw, opensrd as rping client ($pings x $size B)"
  "$guest" run "rping -s -a $gip -p $pa -C $pings -S $size -v >/tmp/rs.$tag.log 2>&1 &"
  # The first rdma_cm program in the guest may take seconds to listen (no iwpmd there).
  for _ in $(seq 60); do "$guest" run "ss -ltn | grep -q ':$pa '" && break; sleep 0.5; done
  inns "$bin" rdma client --protocol iwarp --rping --connect $gip:$pa --size $size \
    --count $pings --json | tee "$out/client.$tag.json"
  json_ok "$out/client.$tag.json" "j['verified'] and j['pings'] == $pings and j['mismatches'] == 0"
  sleep 1
  "$guest" run "cat /tmp/rs.$tag.log" >"$out/rs.$tag.log" || true
  # rping -s -v prints every ping's data as READ from opensrd's buffer.
  grep -c "server ping data: rdma-ping-" "$out/rs.$tag.log" | grep -qx "$pings" ||
    { echo "rping -s saw:"; tail -5 "$out/rs.$tag.log"; exit 1; }
  echo "== $tag: opensrd as rping server, rping -c -V on siw"
  inns "$bin" rdma server --protocol iwarp --rping --bind $hip:$pb --max-size $size --json \
    >"$out/server.$tag.json" 2>"$out/server.$tag.err" &
  srv=$!
  for _ in $(seq 50); do grep -qs "on $hip:$pb" "$out/server.$tag.err" && break; sleep 0.1; done
  "$guest" run -t 300 "rping -c -a $hip -p $pb -C $pings -S $size -V -v" >"$out/rc.$tag.log" ||
    { echo "rping -c failed:"; tail -5 "$out/rc.$tag.log"; cat "$out/server.$tag.err"; exit 1; }
  wait $srv
  srv=
  cat "$out/server.$tag.json"
  json_ok "$out/server.$tag.json" "j['verified'] and j['pings'] == $pings"
  grep -c "ping data: rdma-ping-" "$out/rc.$tag.log" | grep -qx "$pings" ||
    { echo "rping -c saw:"; tail -5 "$out/rc.$tag.log"; exit 1; }
}

run_pair clean 20 64 7776 7777

# 1% loss each way on the siw tap, TCP only (ARP and the rest pass).
inns nft -f - <<NFT
table inet iwloss {
  chain in { type filter hook input priority 0; iifname "$tap" meta l4proto tcp numgen random mod 100 0 counter drop; }
  chain out { type filter hook output priority 0; oifname "$tap" meta l4proto tcp numgen random mod 100 0 counter drop; }
}
NFT
host_retx0=$(inns nstat -az TcpRetransSegs | awk '/TcpRetransSegs/{print $2}')
guest_retx() { "$guest" run "awk '/^Tcp:/{n++; if(n==1) for(i=1;i<=NF;i++) h[i]=\$i; else for(i=1;i<=NF;i++) if(h[i]==\"RetransSegs\") print \$i}' /proc/net/snmp"; }
guest_retx0=$(guest_retx)
run_pair loss 300 4096 7778 7779
host_retx=$(( $(inns nstat -az TcpRetransSegs | awk '/TcpRetransSegs/{print $2}') - host_retx0 ))
guest_retx1=$(( $(guest_retx) - guest_retx0 ))
drops=$(inns nft list table inet iwloss | grep -o 'packets [0-9]*' | awk '{s+=$2} END{print s}')
echo "loss: $drops segments dropped by nft; TCP retransmissions: host $host_retx, guest $guest_retx1"
[ "$drops" -gt 0 ] || { echo "FAIL: nft dropped nothing"; exit 1; }
[ "$host_retx" -gt 0 ] && [ "$guest_retx1" -gt 0 ] ||
  { echo "FAIL: expected retransmissions on both sides"; exit 1; }
inns nft delete table inet iwloss

# Reordering of siw's segments by netem in the guest (no loss).
guest_has_netem || { echo "FAIL: no tc or sch_netem in the guest (the fixture installs both)"; exit 1; }
guest_netem eth1 delay 5ms reorder 25% 50%
ofo0=$(inns nstat -az TcpExtTCPOFOQueue | awk '/TCPOFOQueue/{print $2}')
run_pair reorder 100 4096 7800 7801
ofo=$(( $(inns nstat -az TcpExtTCPOFOQueue | awk '/TCPOFOQueue/{print $2}') - ofo0 ))
guest_netem_report eth1
guest_netem_off eth1
echo "reorder: the host's TCP queued $ofo segments out of order (TcpExtTCPOFOQueue)"
[ "$ofo" -gt 0 ] || { echo "FAIL: netem reordered nothing the host saw"; exit 1; }
echo "== passed"
