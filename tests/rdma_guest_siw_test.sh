#!/usr/bin/env bash
# The rxe guest fixture with soft-iWARP (tests/fixtures/rxe_guest.sh, OPENSRD_GUEST_SIW=1):
# siw.ko compiled from Debian's linux-source for the guest's kernel, siw0 on a second NIC and
# /24 next to rxe0; checks both devices are ACTIVE, an in-guest rping pair on siw0 (iWARP,
# rdma_cm) and on rxe0, that the guest reaches the host from siw0's address, and that tc can
# put netem on a link in the guest. Prints the phase times.
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=rdma_guest_lib.sh
source "$(cd "$(dirname "$0")" && pwd)/rdma_guest_lib.sh"
ns=$(guest_ns rcns2)
export OPENSRD_GUEST_SIW=1 OPENSRD_GUEST_STATE=/tmp/opensrd-siw-fixture-state
guest_preflight "$ns" rping
echo "== build (siw.ko included; ~60 s and ~250 MB of packages the first time)"
guest_boot "$ns" 10.77.2.1 10.77.2.2 10.77.3.1 10.77.3.2
"$guest" run 'rdma link show' | tee /dev/stderr | grep -c ACTIVE | grep -qx 2
phase "rping on siw0 (iWARP) and on rxe0"
"$guest" run -t 60 'rping -s -a 10.77.3.2 -C 3 >/tmp/s.log 2>&1 & sleep 1; rping -c -a 10.77.3.2 -C 3 -V'
"$guest" run -t 60 'rping -s -a 10.77.2.2 -C 3 >/tmp/s.log 2>&1 & sleep 1; rping -c -a 10.77.2.2 -C 3 -V'
"$guest" run -t 20 "ping -c 1 -W 5 10.77.3.1 >/dev/null"  # the host reaches siw0's network
phase "tc with the netem qdisc in the guest (the interop tests reorder with it)"
guest_has_netem || { echo "FAIL: no tc or sch_netem in the guest"; exit 1; }
echo "== passed"
