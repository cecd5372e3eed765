#!/usr/bin/env bash
# The rxe guest fixture with soft-iWARP (tests/fixtures/rxe_guest.sh, OPENSRD_GUEST_SIW=1):
# siw.ko compiled from Debian's linux-source for the guest's kernel, siw0 on a second NIC and
# /24 next to rxe0; checks both devices are ACTIVE, an in-guest rping pair on siw0 (iWARP,
# rdma_cm) and on rxe0, and that the guest reaches the host from siw0's address. Prints the phase times.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
guest=$here/fixtures/rxe_guest.sh
ns=rcns2
export OPENSRD_GUEST_SIW=1 OPENSRD_GUEST_STATE=/tmp/opensrd-siw-fixture-state
skip() {
  echo "SKIPPED: $*"
  exit 77
}
[ "$(id -u)" = 0 ] || skip "needs root (netns, tap)"
[ -e /dev/net/tun ] || skip "/dev/net/tun missing"
command -v qemu-system-x86_64 >/dev/null || skip "qemu-system-x86_64 missing (scripts/setup.sh)"
command -v rping >/dev/null || skip "rping missing (scripts/setup.sh)"
ip netns list | grep -qw "^$ns" && skip "netns $ns in use (another run?)"
t0=$SECONDS
trap 'rc=$?; set +e; "$guest" stop; echo "total $((SECONDS - t0)) s"; exit $rc' EXIT
echo "== build (siw.ko included; ~60 s and ~250 MB of packages the first time)"
"$guest" build >/dev/null
echo "== boot ($((SECONDS - t0)) s so far)"
"$guest" start "$ns" 10.77.2.1 10.77.2.2 10.77.3.1 10.77.3.2
"$guest" run 'rdma link show' | tee /dev/stderr | grep -c ACTIVE | grep -qx 2
echo "== rping on siw0 (iWARP) and on rxe0 ($((SECONDS - t0)) s so far)"
"$guest" run -t 60 'rping -s -a 10.77.3.2 -C 3 >/tmp/s.log 2>&1 & sleep 1; rping -c -a 10.77.3.2 -C 3 -V'
"$guest" run -t 60 'rping -s -a 10.77.2.2 -C 3 >/tmp/s.log 2>&1 & sleep 1; rping -c -a 10.77.2.2 -C 3 -V'
"$guest" run -t 20 "ping -c 1 -W 5 10.77.3.1 >/dev/null"  # the host reaches siw0's network
echo "== passed"
