#!/usr/bin/env bash
# The NBD front against the real clients: qemu-io (pattern write/read with verification),
# qemu-img convert in and out + compare, nbdcopy of a random 64 MiB file in and out (4
# connections when multi-conn is offered) compared byte for byte, nbdinfo (block sizes, contexts,
# --map after a trim), and a short fio job through its nbd engine with crc32c verification.
# Serves a MemoryDevice with tests/nbd_serve on a unix socket in a temp dir.
# Usage: nbd_clients_test.sh PATH/TO/nbd_serve     (exit 77 if a client is missing)
set -euo pipefail
serve=${1:?usage: nbd_clients_test.sh PATH/TO/nbd_serve}
for tool in qemu-io qemu-img nbdcopy nbdinfo fio; do
  command -v "$tool" >/dev/null || { echo "SKIPPED: $tool not installed (scripts/setup.sh)"; exit 77; }
done
fio --enghelp 2>/dev/null | grep -qx '[[:space:]]*nbd' ||
  { echo "SKIPPED: this fio has no nbd ioengine"; exit 77; }

work=$(mktemp -d /tmp/opensrd_nbd.XXXXXX)
server_pid=
cleanup() {
  [ -n "$server_pid" ] && kill "$server_pid" 2>/dev/null && wait "$server_pid" 2>/dev/null
  rm -rf "$work"
}
trap cleanup EXIT
fail() { echo "FAIL: $*" >&2; [ -f "$work/server.log" ] && cat "$work/server.log" >&2; exit 1; }

stop_server() {  # SIGTERM: nbd_serve prints its counters to the log as it exits
  if [ -n "$server_pid" ]; then kill "$server_pid"; wait "$server_pid" 2>/dev/null || true; fi
  server_pid=
}
start_server() {  # ARGS...: serves export "disk" on $work/nbd.sock
  stop_server
  : >"$work/server.log"  # exists before the background job opens it, for the wait below
  "$serve" --listen "unix:$work/nbd.sock" --name disk "$@" >"$work/server.log" 2>&1 &
  server_pid=$!
  for _ in $(seq 50); do grep -q "listening on" "$work/server.log" && return 0; sleep 0.1; done
  fail "nbd_serve did not start"
}
uri="nbd+unix:///disk?socket=$work/nbd.sock"
t0=$(date +%s%N)
step() { local ms=$((($(date +%s%N) - t0) / 1000000)); printf '== %6d ms  %s\n' "$ms" "$1"; }

start_server --size 128M

step "qemu-io: patterns written and verified"
qemu-io -f raw "$uri" -c 'write -P 0xab 0 1M' -c 'write -P 0xcd 1M 64k' -c 'write -z 2M 1M' \
  -c 'read -P 0xab 0 1M' -c 'read -P 0xcd 1M 64k' -c 'read -P 0 2M 1M' -c 'flush' \
  >"$work/qemu-io.log" 2>&1 || { cat "$work/qemu-io.log"; fail "qemu-io"; }
grep -qi "pattern verification failed\|error" "$work/qemu-io.log" && fail "qemu-io reported $(cat "$work/qemu-io.log")"
# A wrong pattern must be caught (the check above can fail).
qemu-io -f raw "$uri" -c 'read -P 0x11 0 4k' >"$work/qemu-io-neg.log" 2>&1 || true
grep -q "Pattern verification failed" "$work/qemu-io-neg.log" || fail "qemu-io did not notice a wrong pattern"

step "nbdinfo: sizes, block sizes, contexts, map"
nbdinfo "$uri" >"$work/info.txt" || fail "nbdinfo"
for want in "export-size: 134217728" "block_size_minimum: 512" "block_size_preferred: 4096" \
  "block_size_maximum: 33554432" "base:allocation" "can_multi_conn: true" "can_fua: true" \
  "can_trim: true" "can_zero: true" "can_fast_zero: true" "can_cache: true"; do
  grep -q "$want" "$work/info.txt" || fail "nbdinfo lacks '$want': $(cat "$work/info.txt")"
done
qemu-io -f raw "$uri" -c 'discard 0 512k' >/dev/null || fail "qemu-io discard"
nbdinfo --map "$uri" >"$work/map.txt" || fail "nbdinfo --map"
# 0-512K trimmed (hole), 512K-1M+64K data, 2M-3M written as zeroes (hole), the rest never written.
grep -Eq '^ +0 +524288 +3 +hole,zero' "$work/map.txt" || fail "map: $(cat "$work/map.txt")"
grep -Eq '^ +524288 +589824 +0 +data' "$work/map.txt" || fail "map: $(cat "$work/map.txt")"

step "nbdcopy: random 64 MiB in and out, 4 connections"
start_server --size 64M
head -c 64M /dev/urandom >"$work/random.bin"
# nbdcopy opens 4 connections only if multi-conn is offered (and caps them at its thread count).
nbdcopy --connections=4 --threads=4 "$work/random.bin" "$uri" || fail "nbdcopy in"
nbdcopy --connections=4 --threads=4 "$uri" "$work/back.bin" || fail "nbdcopy out"
cmp "$work/back.bin" "$work/random.bin" || fail "nbdcopy round trip differs"
stop_server
conns=$(sed -n 's/^nbd_serve: \([0-9]*\) connections.*/\1/p' "$work/server.log")
[ "${conns:-0}" -ge 8 ] || fail "expected at least 8 connections (4 per copy): $(cat "$work/server.log")"

step "qemu-img convert in and out, compare"
start_server --size 32M  # an export the image's size, so compare checks every byte
head -c 8M /dev/urandom >"$work/img.bin"
truncate -s 32M "$work/img.bin"  # a sparse tail: qemu-img writes zeroes or trusts the hole
qemu-img convert -n -f raw -O raw "$work/img.bin" "$uri" || fail "qemu-img convert in"
qemu-img convert -f raw -O raw "$uri" "$work/img_back.bin" || fail "qemu-img convert out"
qemu-img compare -f raw -F raw "$work/img.bin" "$uri" >/dev/null || fail "qemu-img compare (nbd)"
cmp "$work/img_back.bin" "$work/img.bin" || fail "qemu-img round trip differs"

start_server --size 64M
step "fio: nbd engine, randwrite + verify crc32c, QD 16"
(cd "$work" && fio --name=verify --ioengine=nbd --uri="$uri" --rw=randwrite --bs=4k --size=16m --iodepth=16 \
  --verify=crc32c --do_verify=1 --verify_fatal=1 --output-format=json) >"$work/fio.json" \
  2>"$work/fio.err" || { cat "$work/fio.err"; fail "fio"; }
# fio's nbd engine prints a line before the JSON.
errs=$(python3 -c 'import json,sys; t=open(sys.argv[1]).read(); j=json.loads(t[t.index("{"):]); print(sum(x["error"] for x in j["jobs"]))' "$work/fio.json")
[ "$errs" = "0" ] || fail "fio reported $errs errors"

step "4 KiB-sector export: qemu-io read-modify-write of unaligned I/O"
start_server --size 16M --block-size 4096
nbdinfo "$uri" | grep -q "block_size_minimum: 4096" || fail "minimum block size not 4096"
qemu-io -f raw "$uri" -c 'write -P 0x5a 512 1024' -c 'read -P 0x5a 512 1024' \
  -c 'read -P 0 0 512' -c 'read -P 0 1536 2560' >"$work/qemu-io-4k.log" 2>&1 ||
  fail "qemu-io on a 4K export: $(cat "$work/qemu-io-4k.log")"
grep -q "Pattern verification failed" "$work/qemu-io-4k.log" && fail "4K export: $(cat "$work/qemu-io-4k.log")"

step "file-backed export (FileDevice, io_uring): nbdcopy in, the file holds the bytes"
start_server --size 64M --file "$work/vol.img"
nbdcopy --connections=4 --threads=4 "$work/random.bin" "$uri" || fail "nbdcopy into the file export"
qemu-io -f raw "$uri" -c 'write -P 0x3c -f 1M 64k' -c 'flush' >/dev/null || fail "qemu-io FUA write"
nbdcopy "$uri" "$work/vol_back.bin" || fail "nbdcopy out of the file export"
stop_server
cmp "$work/vol.img" "$work/vol_back.bin" || fail "what the clients read is not what the file holds"
cmp -n 1M "$work/vol.img" "$work/random.bin" || fail "the file does not hold the copied bytes"
head -c 1114112 "$work/vol.img" | tail -c 65536 | tr -d '\074' | wc -c | grep -qx 0 ||
  fail "the FUA write is not in the file"

step "read-only export refuses writes"
start_server --size 16M --read-only
qemu-io -f raw -r "$uri" -c 'read -P 0 0 64k' >/dev/null || fail "read-only read"
# qemu sees NBD_FLAG_READ_ONLY and refuses to open for writing (EPERM itself: unit tests).
if qemu-io -f raw "$uri" -c 'write -P 1 0 4k' >"$work/ro.log" 2>&1; then
  fail "a write to a read-only export succeeded: $(cat "$work/ro.log")"
fi

step "done"
echo "PASS"
