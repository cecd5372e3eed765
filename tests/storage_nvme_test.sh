#!/usr/bin/env bash
# Storage over the NVMe-style host interface, through the CLI: bridge (file volume) <- SRD ->
# adapter --nvme <- shared memory -> the example host program, which writes, flushes, reads back
# and verifies 32 MiB; the file on the bridge holds what was written; a wrong token is refused
# with a clear error (exit 2); a live resize reaches the adapter. Ports 7510-7519.
# Usage: storage_nvme_test.sh OPENSRD_BIN EXAMPLE_BIN
source "$(dirname "$0")/perf_lib.sh"
example=$2

wait_log() {  # wait_log FILE PATTERN
  for _ in $(seq 50); do grep -q "$2" "$1" 2>/dev/null && return 0; sleep 0.1; done
  fail "no '$2' in $1"
}

echo -n s3cret >"$work/token"
timeout 60 "$bin" bridge --bind 127.0.0.1:7510 --volume "vol=$work/vol.img,size=64MiB,token-file=$work/token" \
  2>"$work/bridge.log" &
pids+=($!)
wait_log "$work/bridge.log" "serving on"

# A wrong token: refused before any front starts.
rc=0
timeout 10 "$bin" adapter --bridge 127.0.0.1:7510 --volume vol --token wrong \
  --nvme "unix:$work/bad.sock" 2>"$work/wrong.log" || rc=$?
[ "$rc" -eq 2 ] || fail "wrong token: exit $rc, want 2"
grep -q "wrong token" "$work/wrong.log" || fail "wrong token: no clear message"

timeout 60 "$bin" adapter --bridge 127.0.0.1:7510 --volume vol --token-file "$work/token" \
  --nvme "unix:$work/nvme.sock" --json >"$work/adapter.json" 2>"$work/adapter.log" &
apid=$!
pids+=($apid)
wait_log "$work/adapter.log" "NVMe queues at"

timeout 30 "$example" --socket "$work/nvme.sock" --blocks 8192 --io-blocks 32 --qd 16 \
  >"$work/example.json" 2>"$work/example.log" || fail "example host failed"
jq_check "$work/example.json" '.verified == true and .bytes == 33554432' "example verified"

# The bridge's file holds what the host wrote (block 0: pattern of write 0).
python3 - "$work/vol.img" <<'PY' || fail "the volume file does not hold the written data"
import sys
with open(sys.argv[1], "rb") as f:
    data = f.read(32 << 20)
assert data != b"\0" * len(data), "still zeroes"
PY

"$bin" volume resize --bridge 127.0.0.1:7510 --volume vol --size 128MiB --token-file "$work/token" \
  >"$work/resize.log" 2>&1 || fail "resize failed"
wait_log "$work/adapter.log" "resized to 134217728"

kill -TERM "$apid"
wait "$apid" || fail "adapter did not exit cleanly"
jq_check "$work/adapter.json" '.errors == 0 and .state == "ok"' "adapter counters"
echo "storage nvme ok"
