#!/usr/bin/env bash
# Storage comparison for docs/PERF.md: fio 4 KiB random read and random write at queue depth 1
# and 32 through its nbd engine against (a) opensrd: adapter --nbd -> SRD over loopback ->
# bridge -> the file (O_DIRECT), (b) qemu-nbd serving the same file directly (cache=none,
# aio=native), (c) nbdkit's file plugin on the same file. One thing at a time (2-core machines),
# the same preallocated file for all. IOPS per core of the bridge: IOPS divided by the bridge
# process's CPU seconds per second (utime + stime from /proc).
# Usage: bench/storage_compare.sh [path/to/opensrd] [seconds per job, default 5] [file MiB, default 512]
set -euo pipefail
cd "$(dirname "$0")/.."
bin=${1:-build/bin/opensrd}
secs=${2:-5}
mib=${3:-512}
for tool in fio qemu-nbd nbdkit jq; do command -v $tool >/dev/null || { echo "needs $tool"; exit 1; }; done
work=$(mktemp -d /var/tmp/opensrd_storage_bench.XXXXXX)  # on disk, not tmpfs
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
  rm -rf "$work"
}
trap cleanup EXIT
file=$work/vol.img
# Written, not sparse: every server then overwrites allocated blocks (ext4 serialises O_DIRECT
# writes that allocate).
dd if=/dev/zero of="$file" bs=1M count="$mib" oflag=direct status=none

cpu_secs() {  # utime + stime of PID, in seconds
  awk -v hz="$(getconf CLK_TCK)" '{print ($14 + $15) / hz}' "/proc/$1/stat"
}
wait_sock() { for _ in $(seq 100); do [ -S "$1" ] && return 0; sleep 0.05; done; echo "no $1"; exit 1; }

# run_fio NAME URI RW QD [PID]: one fio job; prints a table row; PID's CPU use gives IOPS/core.
run_fio() {
  local name=$1 uri=$2 rw=$3 qd=$4 pid=${5:-}
  local c0=0 c1=0
  [ -n "$pid" ] && c0=$(cpu_secs "$pid")
  fio --name=j --ioengine=nbd --uri="$uri" --rw="$rw" --bs=4k --iodepth="$qd" --size="${mib}M" \
    --time_based --runtime="$secs" --ramp_time=1 --output-format=json --output="$work/fio.json" 2>"$work/fio.err" ||
    { echo "fio failed: $(cat "$work/fio.err")"; exit 1; }
  [ -n "$pid" ] && c1=$(cpu_secs "$pid")
  local side=read
  [ "$rw" = randwrite ] && side=write
  jq -r --arg n "$name" --arg rw "$rw" --arg qd "$qd" --arg side "$side" \
    --arg cpu "$(awk -v a="$c0" -v b="$c1" -v s="$((secs + 1))" 'BEGIN{print (b-a)/s}')" '
    .jobs[0][$side] as $x |
    ($x.clat_ns.percentile // {}) as $p |
    "| \($n) | \($rw) | \($qd) | \($x.iops | floor) | \(($p["50.000000"] // 0) / 1000 | floor) | \(($p["99.000000"] // 0) / 1000 | floor) | \(($p["99.900000"] // 0) / 1000 | floor) | \(if ($cpu|tonumber) > 0 then (($x.iops / ($cpu|tonumber)) | floor | tostring) else "-" end) |"' \
    "$work/fio.json"
}

echo "CPU: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), $(nproc) cores; file $mib MiB on $(df -T "$work" | awk 'NR==2{print $2}'); fio ${secs}s per job"
echo
echo "| server | rw | QD | IOPS | p50 us | p99 us | p99.9 us | IOPS per server core |"
echo "|---|---|---|---|---|---|---|---|"

# (a) opensrd
"$bin" bridge --bind 127.0.0.1:7540 --volume "v=$file" --quiet &
bpid=$!
pids+=($bpid)
sleep 0.3
"$bin" adapter --bridge 127.0.0.1:7540 --volume v --nbd "unix:$work/o.sock" --quiet &
apid=$!
pids+=($apid)
wait_sock "$work/o.sock"
for rw in randread randwrite; do
  for qd in 1 32; do run_fio "opensrd (bridge)" "nbd+unix:///v?socket=$work/o.sock" $rw $qd $bpid; done
done
kill $apid $bpid
wait $apid $bpid 2>/dev/null || true

# (b) qemu-nbd, the same file
qemu-nbd -f raw -k "$work/q.sock" -t --cache=none --aio=native "$file" &
qpid=$!
pids+=($qpid)
wait_sock "$work/q.sock"
for rw in randread randwrite; do
  for qd in 1 32; do run_fio "qemu-nbd" "nbd+unix:///?socket=$work/q.sock" $rw $qd $qpid; done
done
kill $qpid
wait $qpid 2>/dev/null || true

# (c) nbdkit file plugin
nbdkit -f -U "$work/k.sock" file "$file" cache=none &
kpid=$!
pids+=($kpid)
wait_sock "$work/k.sock"
for rw in randread randwrite; do
  for qd in 1 32; do run_fio "nbdkit file" "nbd+unix:///?socket=$work/k.sock" $rw $qd $kpid; done
done
