#!/usr/bin/env bash
# Storage through the NBD front, through the CLI: bridge (file volume) <- SRD -> adapter --nbd
# <- unix socket -> the real clients: qemu-io patterns, nbdinfo, nbdcopy of 32 MiB in and out
# over 4 connections compared byte for byte, fio's nbd engine with crc32c verification; the file
# on the bridge holds what was copied; a live resize is seen by a client that connects after it.
# Ports 7460-7469. Exit 77 if a client is missing.
# Usage: storage_nbd_test.sh OPENSRD_BIN
source "$(dirname "$0")/perf_lib.sh"
for tool in qemu-io nbdcopy nbdinfo fio; do
  command -v "$tool" >/dev/null || { echo "SKIPPED: $tool not installed (scripts/setup.sh)"; exit 77; }
done

wait_log() {  # wait_log FILE PATTERN
  for _ in $(seq 50); do grep -q "$2" "$1" 2>/dev/null && return 0; sleep 0.1; done
  fail "no '$2' in $1"
}

echo -n s3cret >"$work/token"
timeout 90 "$bin" bridge --bind 127.0.0.1:7460 --volume "vol=$work/vol.img,size=64MiB,token-file=$work/token" \
  2>"$work/bridge.log" &
pids+=($!)
wait_log "$work/bridge.log" "serving on"

timeout 90 "$bin" adapter --bridge 127.0.0.1:7460 --volume vol --token-file "$work/token" \
  --nbd "unix:$work/nbd.sock" --json >"$work/adapter.json" 2>"$work/adapter.log" &
apid=$!
pids+=($apid)
wait_log "$work/adapter.log" "NBD export 'vol' at"
uri="nbd+unix:///vol?socket=$work/nbd.sock"

timeout 30 qemu-io -f raw "$uri" -c 'write -P 0xab 0 1M' -c 'write -P 0xcd -f 1M 64k' \
  -c 'read -P 0xab 0 1M' -c 'read -P 0xcd 1M 64k' -c 'flush' >"$work/qemu-io.log" 2>&1 ||
  fail "qemu-io: $(cat "$work/qemu-io.log")"
grep -q "Pattern verification failed" "$work/qemu-io.log" && fail "qemu-io: $(cat "$work/qemu-io.log")"

timeout 30 nbdinfo "$uri" >"$work/info.txt" || fail "nbdinfo"
grep -q "export-size: 67108864" "$work/info.txt" || fail "nbdinfo size: $(cat "$work/info.txt")"
grep -q "can_multi_conn: true" "$work/info.txt" || fail "no multi-conn: $(cat "$work/info.txt")"

head -c 32M /dev/urandom >"$work/random.bin"
timeout 60 nbdcopy --connections=4 --threads=4 "$work/random.bin" "$uri" || fail "nbdcopy in"
timeout 60 nbdcopy --connections=4 --threads=4 "$uri" "$work/back.bin" || fail "nbdcopy out"
cmp -n 32M "$work/back.bin" "$work/random.bin" || fail "nbdcopy round trip differs"
cmp -n 32M "$work/vol.img" "$work/random.bin" || fail "the bridge's file does not hold the copy"

(cd "$work" && timeout 60 fio --name=verify --ioengine=nbd --uri="$uri" --rw=randwrite --bs=4k \
  --offset=32m --size=8m --iodepth=16 --verify=crc32c --do_verify=1 --verify_fatal=1 \
  >"$work/fio.log" 2>&1) || fail "fio: $(tail -n 20 "$work/fio.log")"

"$bin" volume resize --bridge 127.0.0.1:7460 --volume vol --size 128MiB --token-file "$work/token" \
  >"$work/resize.log" 2>&1 || fail "resize failed"
wait_log "$work/adapter.log" "resized to 134217728"
timeout 30 nbdinfo "$uri" | grep -q "export-size: 134217728" || fail "a new client does not see the new size"
timeout 30 qemu-io -f raw "$uri" -c 'write -P 0x77 120M 64k' -c 'read -P 0x77 120M 64k' \
  >"$work/qemu-io2.log" 2>&1 || fail "I/O in the grown area: $(cat "$work/qemu-io2.log")"

kill -TERM "$apid"
wait "$apid" || fail "adapter did not exit cleanly"
jq_check "$work/adapter.json" '.errors == 0 and .state == "ok"' "adapter counters"
echo "storage nbd ok"
