#!/usr/bin/env bash
# RBD comparison for docs/PERF.md: fio 4 KiB random read and random write at queue depth 1 and
# 32 on one RBD image of a one-node memstore cluster (tests/fixtures/ceph_cluster.sh), through
# (a) fio's own rbd engine (librbd in fio's process, cache off), and (b) opensrd: fio's nbd
# engine -> adapter --nbd -> SRD over loopback -> bridge -> librbd (cache off). One at a time
# (2-core machines); the image is written in full first, so reads find data. IOPS per bridge
# core: IOPS divided by the bridge's CPU seconds per second. The OSD shares the machine.
# Usage: bench/storage_rbd_compare.sh [path/to/opensrd] [seconds per job, default 5] [image MiB, default 256]
set -euo pipefail
cd "$(dirname "$0")/.."
bin=${1:-build/bin/opensrd}
secs=${2:-5}
mib=${3:-256}
for tool in fio jq rbd ceph-osd; do command -v $tool >/dev/null || { echo "needs $tool"; exit 1; }; done
fixture=tests/fixtures/ceph_cluster.sh
work=$(mktemp -d /tmp/opensrd_rbd_bench.XXXXXX)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
  "$fixture" stop "$work/ceph" || true
  rm -rf "$work"
}
trap cleanup EXIT
"$fixture" start "$work/ceph" 7560 >/dev/null 2>"$work/ceph.log" || { cat "$work/ceph.log"; exit 1; }
export CEPH_CONF=$work/ceph/ceph.conf
export CEPH_ARGS="--rbd_cache=false"  # fio's librbd as the bridge's: write-through
rbd create --size "${mib}M" rbd/bench
fio --name=fill --ioengine=rbd --clientname=admin --pool=rbd --rbdname=bench --rw=write --bs=4M \
  --iodepth=8 --size="${mib}M" >/dev/null 2>&1

cpu_secs() { awk -v hz="$(getconf CLK_TCK)" '{print ($14 + $15) / hz}' "/proc/$1/stat"; }
wait_sock() { for _ in $(seq 100); do [ -S "$1" ] && return 0; sleep 0.05; done; echo "no $1"; exit 1; }

# run_fio NAME RW QD PID ENGINE-ARGS...: one fio job, one table row.
run_fio() {
  local name=$1 rw=$2 qd=$3 pid=$4
  shift 4
  local c0=0 c1=0
  [ "$pid" != - ] && c0=$(cpu_secs "$pid")
  fio --name=j "$@" --rw="$rw" --bs=4k --iodepth="$qd" --size="${mib}M" --time_based \
    --runtime="$secs" --ramp_time=1 --output-format=json --output="$work/fio.json" 2>"$work/fio.err" ||
    { echo "fio failed: $(cat "$work/fio.err")"; exit 1; }
  [ "$pid" != - ] && c1=$(cpu_secs "$pid")
  local side=read
  [ "$rw" = randwrite ] && side=write
  jq -r --arg n "$name" --arg rw "$rw" --arg qd "$qd" --arg side "$side" \
    --arg cpu "$(awk -v a="$c0" -v b="$c1" -v s="$((secs + 1))" 'BEGIN{print (b-a)/s}')" '
    .jobs[0][$side] as $x |
    ($x.clat_ns.percentile // {}) as $p |
    "| \($n) | \($rw) | \($qd) | \($x.iops | floor) | \(($p["50.000000"] // 0) / 1000 | floor) | \(($p["99.000000"] // 0) / 1000 | floor) | \(($p["99.900000"] // 0) / 1000 | floor) | \(if ($cpu|tonumber) > 0 then (($x.iops / ($cpu|tonumber)) | floor | tostring) else "-" end) |"' \
    "$work/fio.json"
}

echo "CPU: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), $(nproc) cores; Ceph $(ceph --version | awk '{print $3}') memstore, one OSD; image $mib MiB; fio ${secs}s per job"
echo
echo "| path | rw | QD | IOPS | p50 us | p99 us | p99.9 us | IOPS per bridge core |"
echo "|---|---|---|---|---|---|---|---|"
for rw in randread randwrite; do
  for qd in 1 32; do
    run_fio "fio rbd engine" $rw $qd - --ioengine=rbd --clientname=admin --pool=rbd --rbdname=bench
  done
done

"$bin" bridge --bind 127.0.0.1:7562 --volume "v=rbd:rbd/bench,conf=$CEPH_CONF" --quiet &
bpid=$!
pids+=($bpid)
sleep 0.5
"$bin" adapter --bridge 127.0.0.1:7562 --volume v --nbd "unix:$work/o.sock" --quiet &
pids+=($!)
wait_sock "$work/o.sock"
for rw in randread randwrite; do
  for qd in 1 32; do
    run_fio "opensrd (nbd -> SRD -> bridge -> librbd)" $rw $qd $bpid --ioengine=nbd \
      --uri="nbd+unix:///v?socket=$work/o.sock"
  done
done
