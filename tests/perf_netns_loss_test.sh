#!/usr/bin/env bash
# Kernel loss: inside a network namespace made for this test, nft drops 10% of the datagrams
# whose UDP source port is 7401 (client path 0). The run must still verify and must show
# retransmissions. Skips (exit 77) where namespaces cannot be made. Ports: 7400, 7401-7404.
source "$(dirname "$0")/perf_lib.sh"

skip() {
  echo "SKIPPED: $*"
  exit 77
}
[ "$(id -u)" -eq 0 ] || skip "needs root to create a network namespace"
command -v ip >/dev/null || skip "no 'ip' command"
command -v nft >/dev/null || skip "no 'nft' command"
ns="opensrd_loss_$$"
ip netns add "$ns" 2>"$work/ns.err" || skip "cannot create a network namespace: $(cat "$work/ns.err")"
cleanup_hooks+=("ip netns delete $ns 2>/dev/null")
in_ns=(ip netns exec "$ns")
"${in_ns[@]}" ip link set lo up || fail "lo up in the namespace"
"${in_ns[@]}" nft add table inet t || skip "nft does not work in the namespace"
"${in_ns[@]}" nft add chain inet t in '{ type filter hook input priority 0; }'
"${in_ns[@]}" nft add rule inet t in udp sport 7401 numgen random mod 100 '<' 10 counter drop

start_server srv "${in_ns[@]}" -- --bind 127.0.0.1:7400 --paths 4
timeout 60 "${in_ns[@]}" "$bin" perf client --connect 127.0.0.1:7400 --paths 4 \
  --source-port-base 7401 --mode bw --duration 2 --json >"$work/k.json" 2>"$work/k.log" ||
  fail "client exited $?"
dropped=$("${in_ns[@]}" nft list chain inet t in | grep -o 'packets [0-9]*' | awk '{print $2}')
[ "${dropped:-0}" -gt 0 ] || fail "nft dropped nothing"
jq_check "$work/k.json" '.verified == true and .errors == 0 and .messages > 0' "not verified under kernel loss"
jq_check "$work/k.json" '.retransmits > 0' "no retransmissions despite kernel loss"
jq_check "$work/k.json" '.paths[0].lost > 0' "path 0 shows no loss"
echo "netns loss ok: nft dropped $dropped, $(jq -c '{retransmits, goodput_gbps, p0: .paths[0]}' "$work/k.json")"
