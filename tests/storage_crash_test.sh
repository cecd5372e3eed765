#!/usr/bin/env bash
# Crash tests of the storage path (ports 7520-7529):
# 1. Durability: a bridge is killed with SIGKILL 5 times under a verified write load of 16 KiB
#    units (qd 16) and restarted each time; the load (an in-process adapter) sees no error, and
#    at the end every unit of the file holds its last acknowledged write.
# 2. Torn writes: right after each kill, before the restart, every 16 KiB unit (the advertised
#    atomic write unit) holds one write whole: all old or all new.
# 3. Power cut: a crash-test volume (unflushed writes live in the bridge's memory) is killed
#    mid-load (FUA every 7th write, FLUSH every 1000); exactly the durable writes survive: every
#    unit holds its last write acknowledged with FUA or before an acknowledged FLUSH (or one in
#    flight at the cut), and newer acknowledged but unflushed writes are gone.
# Usage: storage_crash_test.sh OPENSRD_BIN BLOCK_LOAD_BIN
source "$(dirname "$0")/perf_lib.sh"
load=$2

start_bridge() {  # start_bridge PORT SPEC LOG: background bridge; its pid in $bridge_pid
  "$bin" bridge --bind "127.0.0.1:$1" --volume "$2" 2>>"$3" &  # no timeout wrapper: kill -9 must hit the bridge
  bridge_pid=$!
  pids+=($bridge_pid)
  for _ in $(seq 50); do
    [ "$(grep -c "serving on" "$3")" -ge "$4" ] && return 0
    sleep 0.1
  done
  fail "bridge on $1 did not start"
}

# --- 1 and 2: SIGKILL under load, torn-write check between kill and restart
spec="vol=$work/vol.img,size=64MiB"
start_bridge 7520 "$spec" "$work/bridge.log" 1
timeout 90 "$load" write --bridge 127.0.0.1:7520 --volume vol --log "$work/ack.log" --seconds 7 \
  --unit 16384 --units 2048 --qd 16 >"$work/load.json" 2>"$work/load.log" &
load_pid=$!
pids+=($load_pid)
for round in 1 2 3 4 5; do
  sleep 1.0
  kill -9 "$bridge_pid"
  wait "$bridge_pid" 2>/dev/null || true
  sleep 0.2
  "$load" torn --file "$work/vol.img" --unit 16384 >"$work/torn$round.json" 2>"$work/torn$round.log" ||
    fail "torn 16 KiB unit after kill $round: $(cat "$work/torn$round.log")"
  start_bridge 7520 "$spec" "$work/bridge.log" $((round + 1))
done
wait "$load_pid" || fail "the load saw errors across bridge kills: $(cat "$work/load.json")"
jq_check "$work/load.json" '.errors == 0 and .pending == 0 and .acked > 200 and .attaches >= 4' \
  "load survived 5 kills"
"$load" check --file "$work/vol.img" --log "$work/ack.log" --unit 16384 >"$work/check.json" \
  2>"$work/check.log" || fail "acknowledged writes lost: $(cat "$work/check.log")"
jq_check "$work/torn5.json" '.written > 50' "the torn check saw written units"
echo "durability: $(cat "$work/load.json") $(cat "$work/check.json")"

# --- 3: power cut of a crash-test volume
spec="pc=$work/pc.img,size=32MiB,crash-test"
start_bridge 7521 "$spec" "$work/bridge_pc.log" 1
timeout 60 "$load" write --bridge 127.0.0.1:7521 --volume pc --log "$work/pc.log" --seconds 30 \
  --unit 4096 --units 4096 --qd 8 --fua-every 7 --flush-every 1000 --drain-seconds 1 \
  >"$work/pc.json" 2>"$work/pc_load.log" &
load_pid=$!
pids+=($load_pid)
sleep 1.5
kill -9 "$bridge_pid"  # the power cut
kill -TERM "$load_pid"
wait "$load_pid" 2>/dev/null || true
grep -q '^F' "$work/pc.log" || fail "no flush completed before the cut"
"$load" check --file "$work/pc.img" --log "$work/pc.log" --unit 4096 --durable-only \
  >"$work/pc_check.json" 2>"$work/pc_check.log" ||
  fail "power cut: not exactly the durable writes: $(cat "$work/pc_check.log")"
jq_check "$work/pc_check.json" '.lost_nondurable > 0' "some unflushed writes were lost (the test can fail)"
echo "power cut: $(cat "$work/pc.json") $(cat "$work/pc_check.json")"
echo "storage crash ok"
