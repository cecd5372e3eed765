#!/usr/bin/env bash
# `opensrd rdma server|client --protocol roce` under 1% loss: server and clients in a network
# namespace of their own (rcns1loss; 127.0.13.1 and .2 on its loopback) where nft drops 1% of
# the UDP 4791 packets leaving (CM MADs included). WRITE, READ, SEND and FETCH_ADD of 300 x 4 KiB
# (atomics: 8 B) must all verify, and the queue pairs must have resent something. Then the same
# four ops with both sides also reordering (--reorder 0.03: a packet held back and sent after
# its queue pair's next one, fixed seeds): verified again, both sides' JSON counters show
# reordered packets, the server NAKed sequence errors and the client resent after NAKs.
# Usage: roce_cli_loss_test.sh OPENSRD_BIN
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
source "$here/perf_lib.sh"
ns=rcns1loss
[ "$(id -u)" = 0 ] || { echo "SKIPPED: needs root (netns, nft)"; exit 77; }
command -v nft >/dev/null || { echo "SKIPPED: no nft (scripts/setup.sh installs nftables)"; exit 77; }
command -v jq >/dev/null || { echo "SKIPPED: no jq"; exit 77; }
ip netns list | grep -qw "^$ns" && { echo "SKIPPED: netns $ns in use (another run?)"; exit 77; }
ip netns add "$ns"
cleanup_hooks+=("ip netns del $ns")
ip -n "$ns" link set lo up
ip netns exec "$ns" nft -f - <<NFT
table inet rcloss {
  chain out { type filter hook output priority 0; udp dport 4791 numgen random mod 100 == 0 counter drop; }
}
NFT
in_ns() { ip netns exec "$ns" "$@"; }

# start_server [ARGS...]: a server in the namespace, waited for until its CM listens.
start_server() {
  timeout 300 ip netns exec "$ns" "$bin" rdma server --bind 127.0.13.1:4791 --protocol roce \
    --region-size 4194304 --json "$@" >"$work/srv.json" 2>"$work/srv.log" &
  server_pid=$!
  pids+=($server_pid)
  for _ in $(seq 50); do grep -q "rdma_cm port" "$work/srv.log" 2>/dev/null && break; sleep 0.1; done
}
# run_ops TAG [ARGS...]: the four ops from a client with ARGS, each verified; adds the clients'
# retransmits to $resent.
run_ops() {
  local tag=$1 op
  shift
  for op in write read send atomic; do
    local args=(--op "$op" --count 300 --inflight 8 "$@")
    [ "$op" = atomic ] || args+=(--size 4096)
    timeout 120 ip netns exec "$ns" "$bin" rdma client --connect 127.0.13.1:4791 --bind 127.0.13.2 \
      --protocol roce --json "${args[@]}" >"$work/$tag.$op.json" 2>"$work/$tag.$op.log" ||
      fail "client --op $op ($tag) exited $?"
    jq_check "$work/$tag.$op.json" '.verified == true and .errors == 0 and .ops == 300' "$op ($tag)"
    resent=$((resent + $(jq '.retransmits' "$work/$tag.$op.json")))
  done
}
stop_server() {
  kill -TERM "$server_pid"
  wait "$server_pid" || fail "server exited $?"
}

start_server
resent=0
run_ops loss
stop_server
resent=$((resent + $(jq '.retransmits' "$work/srv.json")))
dropped=$(ip netns exec "$ns" nft list table inet rcloss | grep -o 'packets [0-9]*' | awk '{s += $2} END {print s}')
echo "dropped $dropped packets; queue pairs resent $resent"
[ "$dropped" -gt 0 ] || fail "nft dropped nothing"
[ "$resent" -gt 0 ] || fail "nothing was resent"

echo "== 1% loss and 3% reordering on both sides"
start_server --reorder 0.03 --seed 7
resent=0
run_ops reorder --reorder 0.03 --seed 11
stop_server
cat "$work/srv.json"
jq_check "$work/srv.json" '.counters.reordered > 0 and .naks_sent > 0' "server reordered and NAKed"
swapped=0 naks=0
for op in write read send atomic; do
  swapped=$((swapped + $(jq '.counters.reordered' "$work/reorder.$op.json")))
  naks=$((naks + $(jq '.naks_received' "$work/reorder.$op.json")))
done
echo "clients: $swapped packets swapped, $naks NAKs received, $resent packets resent;" \
  "server: $(jq -c '{reordered: .counters.reordered, naks_sent, retransmits}' "$work/srv.json")"
[ "$swapped" -gt 0 ] || fail "the clients reordered nothing"
[ "$naks" -gt 0 ] || fail "no client received a NAK"
[ "$resent" -gt 0 ] || fail "no client resent anything"
echo "PASS"
