#!/usr/bin/env bash
# Regenerates fuzz/corpus/nbd from real client transcripts: tests/nbd_serve behind a recording
# proxy (fuzz/nbd_record_proxy.py), driven by qemu-io, qemu-img, nbdinfo, nbdcopy and fio with
# small transfers; each connection's client bytes become one seed, prefixed with the harness's
# mode byte (see fuzz/nbd_fuzz.cc), in a few modes. Hand-made seeds for the rejection paths
# (fuzz/nbd_seeds.py) are added, and if the fuzz preset is built, libFuzzer's -merge=1 keeps the
# subset that adds coverage.
# Needs: the release preset built (build/bin/nbd_serve), python3, qemu-utils, libnbd-bin, fio.
# Usage: fuzz/make_nbd_corpus.sh   (replaces fuzz/corpus/nbd)
set -euo pipefail
cd "$(dirname "$0")/.."
serve=build/bin/nbd_serve
[ -x "$serve" ] || { echo "missing $serve: build the release preset first" >&2; exit 1; }
work=$(mktemp -d /tmp/opensrd_nbd_corpus.XXXXXX)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
  rm -rf "$work"
}
trap cleanup EXIT

# The harness's device is 1 MiB with 64 KiB transfers; the server matches so the recorded
# requests stay valid when replayed.
"$serve" --listen "unix:$work/server.sock" --size 1M --max-transfer 64K >"$work/serve.log" 2>&1 &
pids+=($!)
python3 fuzz/nbd_record_proxy.py "$work/proxy.sock" "$work/server.sock" "$work/raw" \
  >"$work/proxy.log" 2>&1 &
pids+=($!)
for _ in $(seq 50); do [ -S "$work/proxy.sock" ] && grep -q listening "$work/proxy.log" && break; sleep 0.1; done
uri="nbd+unix:///disk?socket=$work/proxy.sock"

qemu-io -f raw "$uri" -c 'write -P 0xab 0 4k' -c 'read -P 0xab 0 4k' -c 'write -z 8k 4k' \
  -c 'discard 16k 4k' -c 'flush' -c 'write -f -P 1 32k 512' -c 'read 0 64k' >/dev/null
qemu-io -f raw "$uri" -c 'write -z -u 64k 64k' -c 'aio_write -P 3 0 512' -c 'aio_write -P 4 4k 512' \
  -c 'aio_flush' >/dev/null
nbdinfo "$uri" >/dev/null
nbdinfo --map "$uri" >/dev/null
nbdinfo --list "nbd+unix://?socket=$work/proxy.sock" >/dev/null
head -c 8k /dev/urandom >"$work/small.bin"
truncate -s 1M "$work/small.bin"
qemu-img convert -n -f raw -O raw "$work/small.bin" "$uri"
nbdcopy --connections=1 --request-size=65536 "$uri" "$work/copy.bin"
(cd "$work" && fio --name=c --ioengine=nbd --uri="$uri" --rw=randrw --bs=512 --size=64k \
  --iodepth=4 --number_ios=8 >/dev/null 2>&1) || true
sleep 0.5
kill "${pids[1]}" 2>/dev/null || true

dir=fuzz/corpus/nbd
rm -rf "$dir"
mkdir -p "$dir"
# Mode bytes: inline completions fed in 916-byte pieces; held completions, 62-byte pieces;
# read-only, byte by byte.
for f in "$work"/raw/*.bin; do
  [ -s "$f" ] || continue
  base=$(basename "$f" .bin)
  for mode in f0 16 01; do
    { printf "\\x$mode"; cat "$f"; } >"$dir/$base-m$mode"
  done
done
python3 fuzz/nbd_seeds.py "$dir"
if [ -x build-fuzz/bin/fuzz_nbd ]; then
  mkdir -p "$work/merged"
  build-fuzz/bin/fuzz_nbd -merge=1 "$work/merged" "$dir" >"$work/merge.log" 2>&1 ||
    { tail -n 20 "$work/merge.log" >&2; exit 1; }
  rm -rf "$dir"
  mkdir -p "$dir"
  cp "$work/merged"/* "$dir/"
fi
echo "nbd: $(ls "$dir" | wc -l) files, $(du -sk "$dir" | cut -f1) KiB"
