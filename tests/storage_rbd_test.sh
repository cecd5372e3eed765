#!/usr/bin/env bash
# Storage on Ceph RBD through the CLI, on a one-node cluster the test starts itself
# (tests/fixtures/ceph_cluster.sh: monitor on 127.0.0.1:7752-7753; bridges on 7756-7757):
# 1. adapter --nbd -> SRD -> bridge -> librbd: qemu-io patterns, fio's nbd engine with crc32c
#    verification, a live resize; the image itself (`rbd export`) holds what qemu-io wrote.
# 2. A wrong token is refused; a missing image is a clear startup error (exit 1, named).
# 3. Failover: two bridges serve the image. A verified write load (16 KiB units, qd 16) runs
#    through the first, which is killed with SIGKILL mid-run. The adapter moves to the second,
#    which breaks the dead bridge's exclusive lock (blocklisting it) instead of waiting for its
#    watch to expire (30 s): no I/O error, every acknowledged write is in the image, and the
#    client's longest wait for an acknowledgement is printed (the failover time).
# Exit 77 (SKIPPED) if Ceph or a client is missing.
# Usage: storage_rbd_test.sh OPENSRD_BIN BLOCK_LOAD_BIN
source "$(dirname "$0")/perf_lib.sh"
load=$2
for tool in ceph-mon ceph-osd rbd qemu-io fio; do
  command -v "$tool" >/dev/null || { echo "SKIPPED: $tool not installed (scripts/setup.sh)"; exit 77; }
done
fixture="$(dirname "$0")/fixtures/ceph_cluster.sh"
# Bridges and clients stop before the cluster (a librbd client of a dead cluster waits for it).
stop_all() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
  "$fixture" stop "$work/ceph"
}
cleanup_hooks+=(stop_all)
t0=$(date +%s%3N)
"$fixture" start "$work/ceph" 7752 >"$work/ceph.env" 2>"$work/ceph.log" ||
  fail "cluster did not start: $(cat "$work/ceph.log")"
echo "cluster up in $(($(date +%s%3N) - t0)) ms"
export CEPH_CONF=$work/ceph/ceph.conf
rbd create --size 256M rbd/vol || fail "rbd create"

# What a failed load run says, short enough for a CI log: its counters, how many writes failed
# and the first failures, the adapter's own events (lost bridge, attached, refused), and the
# bridges' attach, takeover and fencing lines (ATTACH ids are in the order the adapter sent them).
load_report() {  # load_report NAME (NAME.json, NAME.log)
  echo "$(cat "$work/$1.json" 2>/dev/null)"
  echo "failed writes: $(grep -c "block_load: write" "$work/$1.log")"
  grep -m 3 "block_load: write" "$work/$1.log"
  grep -v "block_load: write" "$work/$1.log"
  for b in bridge_a bridge_b bridge_a2; do
    echo "--- $b"; grep -E "attach|taken over|fenced|reconnect" "$work/$b.log" 2>/dev/null
  done
}

wait_log() {  # wait_log FILE PATTERN [COUNT]
  for _ in $(seq 100); do
    local n
    n=$(grep -c "$2" "$1" 2>/dev/null) || true
    [ "${n:-0}" -ge "${3:-1}" ] && return 0
    sleep 0.1
  done
  fail "no '$2' in $1"
}
echo -n rbd-s3cret >"$work/token"
spec="vol=rbd:rbd/vol,conf=$CEPH_CONF,token-file=$work/token"

# --- 2 (first, it is quick): a missing image, a wrong token
if timeout 30 "$bin" bridge --bind 127.0.0.1:7756 --volume "x=rbd:rbd/missing,conf=$CEPH_CONF" \
  >"$work/missing.out" 2>&1; then
  fail "a bridge on a missing image started"
fi
grep -q "rbd/missing" "$work/missing.out" || fail "missing image not named: $(cat "$work/missing.out")"

# No timeout wrapper: the kill -9 below must hit the bridge itself.
"$bin" bridge --bind 127.0.0.1:7756 --volume "$spec" 2>"$work/bridge_a.log" &
bridge_a=$!
pids+=($bridge_a)
wait_log "$work/bridge_a.log" "serving on"
grep -q "librbd cache off" "$work/bridge_a.log" || fail "bridge log: $(cat "$work/bridge_a.log")"
echo -n wrong >"$work/bad_token"
if timeout 20 "$bin" adapter --bridge 127.0.0.1:7756 --volume vol --token-file "$work/bad_token" \
  --nbd "unix:$work/bad.sock" >"$work/bad.out" 2>&1; then
  fail "an adapter with a wrong token attached"
fi
grep -qi "token" "$work/bad.out" || fail "wrong token not reported: $(cat "$work/bad.out")"

# --- 1: the real clients through the NBD front
timeout 100 "$bin" adapter --bridge 127.0.0.1:7756 --volume vol --token-file "$work/token" \
  --nbd "unix:$work/nbd.sock" --json >"$work/adapter.json" 2>"$work/adapter.log" &
apid=$!
pids+=($apid)
wait_log "$work/adapter.log" "NBD export 'vol' at"
uri="nbd+unix:///vol?socket=$work/nbd.sock"
timeout 60 qemu-io -f raw "$uri" -c 'write -P 0xab 0 1M' -c 'write -P 0xcd -f 1M 64k' \
  -c 'write -z 2M 128k' -c 'read -P 0xab 0 1M' -c 'read -P 0xcd 1M 64k' -c 'read -P 0 2M 128k' \
  -c 'flush' -c 'discard 4M 4M' >"$work/qemu-io.log" 2>&1 ||
  fail "qemu-io: $(cat "$work/qemu-io.log")"
grep -q "Pattern verification failed" "$work/qemu-io.log" && fail "qemu-io: $(cat "$work/qemu-io.log")"
rbd export --no-progress rbd/vol "$work/export1.img" 2>/dev/null || fail "rbd export"
cmp -n 1M "$work/export1.img" <(head -c 1M /dev/zero | tr '\0' '\253') ||
  fail "the image does not hold qemu-io's pattern"
(cd "$work" && timeout 90 fio --name=verify --ioengine=nbd --uri="$uri" --rw=randwrite --bs=4k \
  --offset=32m --size=8m --iodepth=16 --verify=crc32c --do_verify=1 --verify_fatal=1 \
  >"$work/fio.log" 2>&1) || fail "fio: $(tail -n 20 "$work/fio.log")"
"$bin" volume resize --bridge 127.0.0.1:7756 --volume vol --size 320MiB --token-file "$work/token" \
  >"$work/resize.log" 2>&1 || fail "resize: $(cat "$work/resize.log")"
wait_log "$work/adapter.log" "resized to 335544320"
[ "$(rbd info rbd/vol --format json | jq .size)" = 335544320 ] || fail "the image was not resized"
kill -TERM "$apid"
wait "$apid" || fail "adapter did not exit cleanly"
jq_check "$work/adapter.json" '.errors == 0 and .state == "ok"' "adapter counters"

# --- 3: failover between two bridges under a verified write load
"$bin" bridge --bind 127.0.0.1:7757 --volume "$spec" 2>"$work/bridge_b.log" &  # signalled below
bridge_b=$!
pids+=($bridge_b)
wait_log "$work/bridge_b.log" "serving on"
timeout 100 "$load" write --bridge 127.0.0.1:7756,127.0.0.1:7757 --volume vol \
  --token "$(cat "$work/token")" --log "$work/ack.log" --seconds 8 --unit 16384 --units 2048 \
  --qd 16 --peer-timeout-ms 500 >"$work/load.json" 2>"$work/load.log" &
load_pid=$!
pids+=($load_pid)
sleep 2.5
rbd lock ls rbd/vol >"$work/lock_before.txt"
kill -9 "$bridge_a"
wait "$bridge_a" 2>/dev/null || true
wait "$load_pid" || fail "the load saw errors across the failover: $(load_report load)"
jq_check "$work/load.json" '.errors == 0 and .pending == 0 and .acked > 100 and .failovers == 1' \
  "load survived the failover"
# Not a speed target: a failover that waited for the dead bridge's watch to expire (30 s) would
# show here as a wait of more than 30 s.
jq_check "$work/load.json" '.max_gap_ms < 15000' "the failover waited for the watch timeout"
grep -q "taken over" "$work/bridge_b.log" || fail "bridge B did not take the volume over"
rbd export --no-progress rbd/vol "$work/export2.img" 2>/dev/null || fail "rbd export"
"$load" check --file "$work/export2.img" --log "$work/ack.log" --unit 16384 >"$work/check.json" \
  2>"$work/check.log" || fail "acknowledged writes lost: $(cat "$work/check.log")"
rbd lock ls rbd/vol >"$work/lock_after.txt"
cmp -s "$work/lock_before.txt" "$work/lock_after.txt" && fail "the lock did not move to bridge B"
echo "failover: $(cat "$work/load.json") $(cat "$work/check.json")"
echo "failover: $(grep "taken over" "$work/bridge_b.log")"

# --- 4: fencing. Bridge B (serving) is frozen (SIGSTOP) under load: the adapter moves to a new
# bridge A, which blocklists B. B is thawed with writes still queued in it: the cluster must
# refuse them (they would overwrite newer data) and B's late replies must not fail the client.
# Then A is killed and the adapter goes back to B, which reconnects to the cluster.
"$bin" bridge --bind 127.0.0.1:7756 --volume "$spec" 2>"$work/bridge_a2.log" &
bridge_a=$!
pids+=($bridge_a)
wait_log "$work/bridge_a2.log" "serving on"
timeout 100 "$load" write --bridge 127.0.0.1:7757,127.0.0.1:7756 --volume vol \
  --token "$(cat "$work/token")" --log "$work/ack2.log" --seconds 9 --unit 16384 --units 2048 \
  --qd 16 --peer-timeout-ms 500 --seed 2 --first-seq 1000000 >"$work/load2.json" 2>"$work/load2.log" &
load_pid=$!
pids+=($load_pid)
sleep 1.5
kill -STOP "$bridge_b"
sleep 2
kill -CONT "$bridge_b"
sleep 1.5
kill -9 "$bridge_a"
wait "$load_pid" || fail "the load saw errors across fencing: $(load_report load2)"
jq_check "$work/load2.json" '.errors == 0 and .pending == 0 and .failovers == 2' \
  "load survived the freeze and the kill"
grep -q "taken over" "$work/bridge_a2.log" || fail "the new bridge did not take the volume over"
rbd export --no-progress rbd/vol "$work/export3.img" 2>/dev/null || fail "rbd export"
# The first run's log first: units the second run never touched keep their first-run data.
cat "$work/ack.log" "$work/ack2.log" >"$work/ack_all.log"
"$load" check --file "$work/export3.img" --log "$work/ack_all.log" --unit 16384 \
  >"$work/check2.json" 2>"$work/check2.log" ||
  fail "a fenced bridge's late write landed, or a write was lost: $(cat "$work/check2.log")"
echo "fencing: $(cat "$work/load2.json") $(cat "$work/check2.json")"
echo "storage rbd ok"
