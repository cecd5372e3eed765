#!/usr/bin/env bash
# Regenerates the committed seed corpora in fuzz/corpus/<target>/ from real traffic: runs
# `opensrd perf` servers and clients on loopback under faults (loss, duplication, corruption,
# reordering, a blackholed path, starved receive buffers, a server restart), captures the UDP
# payloads with tcpdump, turns them into seeds with fuzz/corpus_seeds.py, and keeps a small
# subset with libFuzzer's -merge=1 (plus one seed of every packet kind in docs/WIRE.md).
#
# Needs (only to regenerate; CI uses the committed files): root for the capture on lo, tcpdump
# (apt-get install tcpdump), python3, and both the release and the fuzz preset built:
#   cmake --preset release && cmake --build --preset release -j2
#   cmake --preset fuzz && cmake --build --preset fuzz -j2
# Usage: fuzz/make_corpus.sh   (replaces fuzz/corpus/; the capture is random, so the files change)
set -euo pipefail
cd "$(dirname "$0")/.."
bin=build/bin/opensrd
fuzzers=build-fuzz/bin
for f in "$bin" "$fuzzers/fuzz_wire" "$fuzzers/fuzz_endpoint"; do
  [ -x "$f" ] || { echo "missing $f: build the release and fuzz presets first" >&2; exit 1; }
done
command -v tcpdump >/dev/null || { echo "needs tcpdump (apt-get install tcpdump)" >&2; exit 1; }

work=$(mktemp -d /tmp/opensrd_corpus.XXXXXX)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
  rm -rf "$work"
}
trap cleanup EXIT

# One server port per run, so the seed builder can tell runs (and directions) apart.
ports=(7790 7791 7792 7793 7794 7795)
filter="udp and ($(printf 'port %s or ' "${ports[@]}" | sed 's/ or $//'))"
tcpdump -i lo -n -U -s 0 -w "$work/capture.pcap" "$filter" 2>"$work/tcpdump.log" &
tcpdump_pid=$!
pids+=("$tcpdump_pid")
for _ in $(seq 50); do grep -q "listening on" "$work/tcpdump.log" && break; sleep 0.1; done
grep -q "listening on" "$work/tcpdump.log" || { cat "$work/tcpdump.log" >&2; exit 1; }

server_pid=
start_server() {  # PORT ARGS...
  local port=$1
  shift
  : >"$work/server_$port.log"
  timeout 120 "$bin" perf server --bind "127.0.0.1:$port" "$@" 2>"$work/server_$port.log" &
  server_pid=$!
  pids+=("$server_pid")
  for _ in $(seq 50); do grep -q "listening on" "$work/server_$port.log" && return 0; sleep 0.1; done
  echo "server on $port did not start" >&2
  exit 1
}
stop_server() {
  kill "$server_pid" 2>/dev/null || true
  wait "$server_pid" 2>/dev/null || true
}
client() {  # PORT ARGS...: a failed run is fine (some are meant to be hurt), a hang is not
  local port=$1
  shift
  timeout 60 "$bin" perf client --connect "127.0.0.1:$port" --json "$@" >>"$work/client.json" \
    2>>"$work/client.log" || echo "  (client on $port exited $?)"
}
faults='path=0:loss=0.05,dup=0.02;path=1:corrupt=0.02,delay_us=100,jitter_us=50;'
faults+='path=2:loss=0.02,reorder=0.1;path=3:blackhole_after_ms=100'

echo "=== capture"
# 1. Ping-pong of small messages on 4 paths: piggybacked acks, retransmissions, a path that
#    goes dark (suspect, probes), duplicates and corrupted copies.
start_server 7790 --paths 4
client 7790 --paths 4 --mode lat --size 64 --count 600 --seed 1 --fault "$faults"
stop_server
# 2. Large messages on an in-order SQ: 8 KiB packets, SACK ranges, RACK and RTO retransmits.
start_server 7791 --paths 4
client 7791 --paths 4 --mode bw --size 65536 --count 150 --inflight 8 --in-order --seed 2 \
  --fault "$faults"
stop_server
# 3-4. Packets small enough for the endpoint harness (one-byte record length): 128-byte
#      payloads, too few receive buffers (receiver-not-ready NACKs), reordering, a dark path.
start_server 7792 --paths 2 --max-payload 128 --buffers 2
client 7792 --paths 2 --mode bw --size 1000 --count 400 --inflight 16 --max-payload 128 \
  --seed 3 --fault 'path=0:loss=0.03,reorder=0.1;path=1:dup=0.05'
stop_server
start_server 7793 --paths 2 --max-payload 128
client 7793 --paths 2 --mode lat --size 300 --count 300 --max-payload 128 --in-order --seed 4 \
  --fault 'path=0:reorder=0.2;path=1:blackhole_after_ms=50'
stop_server
# 5. A server restart under a running client: RESETs from the new incarnation, a second
#    handshake (restart detection).
start_server 7794 --paths 2 --max-payload 128
timeout 60 "$bin" perf client --connect 127.0.0.1:7794 --paths 2 --mode lat --size 200 \
  --count 100000 --max-payload 128 --seed 5 --peer-timeout-ms 3000 >/dev/null 2>>"$work/client.log" &
client_pid=$!
pids+=("$client_pid")
sleep 0.5
stop_server
start_server 7794 --paths 2 --max-payload 128
sleep 1
kill "$client_pid" 2>/dev/null || true
wait "$client_pid" 2>/dev/null || true
stop_server
# 6. Many paths and the smallest messages, out of order.
start_server 7795 --paths 8
client 7795 --paths 8 --mode bw --size 24 --count 2000 --inflight 64 --seed 6 \
  --fault 'path=5:loss=0.1;path=6:dup=0.1'
stop_server
sleep 0.5
kill -INT "$tcpdump_pid"
wait "$tcpdump_pid" 2>/dev/null || true
grep -E "packets (captured|dropped by kernel)" "$work/tcpdump.log" || true

echo "=== seeds"
python3 fuzz/corpus_seeds.py --pcap "$work/capture.pcap" \
  --server-ports "$(IFS=,; echo "${ports[*]}")" --out "$work/seeds"

echo "=== merge"
for target in wire endpoint receive_window fault_spec; do
  dir=fuzz/corpus/$target
  rm -rf "$dir"
  mkdir -p "$dir"
  [ -d "$work/seeds/$target/must" ] && cp "$work/seeds/$target/must/"* "$dir/"
  # Files already in $dir stay; a candidate is added only if it brings new coverage.
  "$fuzzers/fuzz_$target" -merge=1 "$dir" "$work/seeds/$target/cand" >"$work/merge_$target.log" 2>&1 ||
    { tail -n 20 "$work/merge_$target.log" >&2; exit 1; }
  echo "$target: $(ls "$dir" | wc -l) files, $(du -sk "$dir" | cut -f1) KiB"
done
