#!/usr/bin/env bash
# Tail latency under packet loss, for docs/PERF.md: fio 4 KiB random reads at QD 1 (the clearest
# view of a stall) over (a) opensrd: fio -> NBD (unix socket) -> adapter -> SRD over UDP ->
# bridge -> file, and (b) NBD over TCP: fio -> qemu-nbd on TCP -> file; each without loss and
# with nft dropping 1% of the packets of that hop (both directions). Everything runs inside a
# network namespace made for the run (its loopback carries the hop). Needs root.
# Usage: bench/storage_loss.sh [path/to/opensrd] [seconds per job, default 10]
set -euo pipefail
cd "$(dirname "$0")/.."
bin=$(realpath "${1:-build/bin/opensrd}")
secs=${2:-10}
[ "$(id -u)" -eq 0 ] || { echo "needs root (network namespace, nft)"; exit 1; }
for tool in fio qemu-nbd nft jq; do command -v $tool >/dev/null || { echo "needs $tool"; exit 1; }; done
ns=opensrd_sloss_$$
work=$(mktemp -d /var/tmp/opensrd_storage_loss.XXXXXX)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
  ip netns delete "$ns" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT
ip netns add "$ns"
in_ns=(ip netns exec "$ns")
"${in_ns[@]}" ip link set lo up
"${in_ns[@]}" nft add table inet t
"${in_ns[@]}" nft add chain inet t in '{ type filter hook input priority 0; }'
file=$work/vol.img
dd if=/dev/zero of="$file" bs=1M count=256 oflag=direct status=none

loss() {  # loss on|off PROTO PORT
  "${in_ns[@]}" nft flush chain inet t in
  if [ "$1" = on ]; then
    "${in_ns[@]}" nft add rule inet t in "$2" dport "$3" numgen random mod 100 '<' 1 counter drop
    "${in_ns[@]}" nft add rule inet t in "$2" sport "$3" numgen random mod 100 '<' 1 counter drop
  fi
}
run_fio() {  # run_fio NAME URI
  "${in_ns[@]}" fio --name=j --ioengine=nbd --uri="$2" --rw=randread --bs=4k --iodepth=1 \
    --size=256M --time_based --runtime="$secs" --output-format=json --output="$work/fio.json" 2>"$work/fio.err" ||
    { echo "fio failed: $(cat "$work/fio.err")"; exit 1; }
  jq -r --arg n "$1" '.jobs[0].read as $x | $x.clat_ns.percentile as $p |
    "| \($n) | \($x.iops | floor) | \($p["50.000000"] / 1000 | floor) | \($p["99.000000"] / 1000 | floor) | \($p["99.900000"] / 1000 | floor) | \($x.clat_ns.max / 1000 | floor) | \($d) |"' \
    --arg d "$(dropped)" "$work/fio.json"
}
dropped() {  # packets the loss rules dropped so far
  "${in_ns[@]}" nft list chain inet t in | grep -o 'packets [0-9]*' | awk '{s += $2} END {print s + 0}'
}
wait_sock() { for _ in $(seq 100); do [ -S "$1" ] && return 0; sleep 0.05; done; echo "no $1"; exit 1; }

echo "CPU: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), $(nproc) cores; fio 4 KiB randread QD 1, ${secs}s per run"
echo
echo "| path | IOPS | p50 us | p99 us | p99.9 us | max us | packets dropped |"
echo "|---|---|---|---|---|---|---|"
"${in_ns[@]}" "$bin" bridge --bind 127.0.0.1:7550 --volume "v=$file" --quiet &
pids+=($!)
sleep 0.3
"${in_ns[@]}" "$bin" adapter --bridge 127.0.0.1:7550 --volume v --nbd "unix:$work/o.sock" --quiet &
pids+=($!)
wait_sock "$work/o.sock"
loss off udp 7550
run_fio "opensrd over SRD, no loss" "nbd+unix:///v?socket=$work/o.sock"
loss on udp 7550
run_fio "opensrd over SRD, 1% loss" "nbd+unix:///v?socket=$work/o.sock"
loss off udp 7550

"${in_ns[@]}" qemu-nbd -f raw -b 127.0.0.1 -p 10809 -t --cache=none --aio=native "$file" &
pids+=($!)
sleep 0.5
run_fio "NBD over TCP (qemu-nbd), no loss" "nbd://127.0.0.1:10809/"
loss on tcp 10809
run_fio "NBD over TCP (qemu-nbd), 1% loss" "nbd://127.0.0.1:10809/"
