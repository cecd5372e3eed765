# shellcheck shell=bash
# What the RDMA guest tests share (sourced by roce_rxe_interop_test.sh, roce_rping_rxe_test.sh,
# rdma_guest_siw_test.sh, rdma_siw_interop_test.sh): the preflight checks, phase timing, the
# guest fixture's build and boot (tests/fixtures/rxe_guest.sh), tcpdump on the guest's tap, the
# RoCEv2 1% loss rule, the ICRC check of a capture, netem inside the guest, and one EXIT trap
# that undoes all of it. Each test owns its namespace; OPENSRD_TEST_NETNS overrides the name
# (so a run can use a namespace range it was given).
#
# After sourcing: $here, $guest (the fixture); after guest_preflight, $capdir (a scratch
# directory removed at exit).
# Hooks a test may set: on_exit (commands run first at exit) and a function on_failure
# (diagnostics, run before the guest stops when the test fails).
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
guest=$here/fixtures/rxe_guest.sh
t_start=$SECONDS
tcpdump_pid=
capdir=
on_exit=()

skip() {
  echo "SKIPPED: $*"
  exit 77
}
phase() { echo "== $1 ($((SECONDS - t_start)) s so far)"; }

# guest_ns DEFAULT: the namespace this test uses.
guest_ns() { echo "${OPENSRD_TEST_NETNS:-$1}"; }

# guest_preflight NS [PROGRAM...]: skips (77) without root, /dev/net/tun, qemu, one of the host
# programs named, or when NS exists already (another run). Then makes $capdir and sets the EXIT
# trap (not before: a skipped run must not stop a guest another run started).
guest_preflight() {
  local ns=$1 prog
  shift
  [ "$(id -u)" = 0 ] || skip "needs root (netns, tap)"
  [ -e /dev/net/tun ] || skip "/dev/net/tun missing"
  command -v qemu-system-x86_64 >/dev/null || skip "qemu-system-x86_64 missing (scripts/setup.sh)"
  for prog in "$@"; do
    command -v "$prog" >/dev/null || skip "$prog missing (scripts/setup.sh)"
  done
  if ip netns list | grep -qw "^$ns"; then skip "netns $ns in use (another run?)"; fi
  capdir=$(mktemp -d /tmp/opensrd_guest.XXXXXX)
  chmod 777 "$capdir"  # tcpdump may drop privileges before it writes
  trap 'guest_lib_exit $?' EXIT
}

guest_lib_exit() {
  local rc=$1 h
  set +e
  for h in "${on_exit[@]}"; do eval "$h"; done
  stop_capture 2>/dev/null
  if [ "$rc" != 0 ] && declare -F on_failure >/dev/null; then on_failure; fi
  "$guest" stop
  [ -z "$capdir" ] || rm -rf "$capdir"
  echo "total $((SECONDS - t_start)) s"
  exit "$rc"
}

# guest_boot NS HOST_IP GUEST_IP [SIW_HOST_IP SIW_GUEST_IP]: builds (or reuses) the image and
# boots the guest on a tap in NS.
guest_boot() {
  phase "build image"
  "$guest" build >/dev/null
  phase "boot guest"
  "$guest" start "$@"
}

# guest_tap NS [N]: the tap the fixture made in NS (N=1: the second one, siw's).
guest_tap() { echo "$1tap${2:-}"; }

# capture NS IFACE FILE FILTER...: tcpdump on IFACE in NS into FILE until stop_capture.
capture() {
  local ns=$1 iface=$2 file=$3
  shift 3
  ip netns exec "$ns" tcpdump -i "$iface" -U -s 0 -w "$file" "$@" 2>"$capdir/tcpdump.log" &
  tcpdump_pid=$!
  for _ in $(seq 50); do grep -q listening "$capdir/tcpdump.log" 2>/dev/null && break; sleep 0.1; done
}
stop_capture() {
  [ -n "$tcpdump_pid" ] || return 0
  sleep 0.3
  kill "$tcpdump_pid"
  wait "$tcpdump_pid" || true
  tcpdump_pid=
}

# roce_loss_on NS: nft drops 1% of the UDP 4791 packets entering and leaving NS (table rcloss);
# roce_loss_report NS prints the counts.
roce_loss_on() {
  ip netns exec "$1" nft -f - <<NFT
table inet rcloss {
  chain in { type filter hook input priority 0; udp dport 4791 numgen random mod 100 == 0 counter drop; }
  chain out { type filter hook output priority 0; udp dport 4791 numgen random mod 100 == 0 counter drop; }
}
NFT
}
roce_loss_off() { ip netns exec "$1" nft delete table inet rcloss; }
roce_loss_report() {
  ip netns exec "$1" nft list table inet rcloss | grep -o 'counter packets [0-9]*' | sed 's/^/dropped: /'
}

# check_icrcs PCAP HOST_IP [roce_pcap_icrc_check.py flags]: every captured ICRC recomputed.
check_icrcs() {
  phase "every captured ICRC of $(basename "$1"), recomputed independently"
  python3 "$here/roce_pcap_icrc_check.py" "$@"
}

# guest_has_netem: the guest has tc and the netem qdisc (image format 3 and later).
guest_has_netem() {
  "$guest" run "command -v tc >/dev/null && tc qdisc add dev lo root netem delay 0ms &&
    tc qdisc del dev lo root" >/dev/null 2>&1
}
# guest_netem IFACE ARGS...: netem on the guest's IFACE egress (replacing any); guest_netem_off.
guest_netem() {
  local dev=$1
  shift
  "$guest" run "tc qdisc replace dev $dev root netem $*"
}
guest_netem_off() { "$guest" run "tc qdisc del dev $1 root" >/dev/null 2>&1 || true; }
guest_netem_report() { "$guest" run "tc -s qdisc show dev $1"; }
