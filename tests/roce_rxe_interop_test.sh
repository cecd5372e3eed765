#!/usr/bin/env bash
# RoCEv2 interop with Linux's rdma_rxe in a QEMU guest (tests/fixtures/rxe_guest.sh): first the
# fixture itself (an in-guest ibv_rc_pingpong pair), then `opensrd rdma pingpong` against the
# guest's ibv_rc_pingpong when OPENSRD is given. Prints each phase's time and the total.
# Usage: roce_rxe_interop_test.sh [OPENSRD]
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
guest=$here/fixtures/rxe_guest.sh
opensrd=${1:-}
ns=rcns0 host_ip=10.77.0.1 guest_ip=10.77.0.2
export OPENSRD_GUEST_STATE=/tmp/opensrd-rxe-interop-state

skip() {
  echo "SKIPPED: $*"
  exit 77
}
[ "$(id -u)" = 0 ] || skip "needs root (netns, tap)"
[ -e /dev/net/tun ] || skip "/dev/net/tun missing"
command -v qemu-system-x86_64 >/dev/null || skip "qemu-system-x86_64 missing (scripts/setup.sh)"
command -v ibv_rc_pingpong >/dev/null || skip "ibv_rc_pingpong missing (scripts/setup.sh)"
ip netns list | grep -qw "^$ns" && skip "netns $ns in use (another run?)"

t_start=$SECONDS
phase() { echo "== $1 ($((SECONDS - t_start)) s so far)"; }
trap '"$guest" stop; echo "total $((SECONDS - t_start)) s"' EXIT

phase "build image"
"$guest" build >/dev/null
phase "boot guest"
"$guest" start "$ns" "$host_ip" "$guest_ip"

phase "fixture: in-guest ibv_rc_pingpong pair on rxe0"
"$guest" run -t 60 "ibv_rc_pingpong -d rxe0 -g 1 -n 5 >/tmp/srv.log 2>&1 & sleep 1;
  ibv_rc_pingpong -d rxe0 -g 1 -n 5 $guest_ip && sleep 0.3 && grep -q '5 iters' /tmp/srv.log"
