#!/usr/bin/env bash
# `opensrd rdma --protocol iwarp` on loopback, judged by an independent capture: tcpdump on lo
# records three client runs (write, read, send) against a server, and
# rdma_iwarp_capture_check.py has tshark's iWARP dissectors decode every FPDU (opcodes, STag,
# offsets, lengths, CRCs good, nothing malformed). Needs root for tcpdump; exits 77 (skipped)
# without it, tcpdump or tshark. Port 7774.
set -euo pipefail
bin=$1
# OPENSRD_TEST_HOST / OPENSRD_TEST_PORT move the test (to run it beside other users of lo).
host=${OPENSRD_TEST_HOST:-127.0.0.1}
port=${OPENSRD_TEST_PORT:-7774}
command -v tshark >/dev/null || { echo "SKIPPED: tshark not installed"; exit 77; }
command -v tcpdump >/dev/null || { echo "SKIPPED: tcpdump not installed"; exit 77; }
[ "$(id -u)" = 0 ] || { echo "SKIPPED: capturing on lo needs root"; exit 77; }
dir=$(mktemp -d /tmp/opensrd_iwarp_tshark.XXXXXX)
chmod 777 "$dir"  # tcpdump drops to its own user before writing
srv= dump=
cleanup() {
  [ -n "$srv" ] && kill "$srv" 2>/dev/null || true
  [ -n "$dump" ] && kill "$dump" 2>/dev/null || true
  wait 2>/dev/null || true
  rm -rf "$dir"
}
trap cleanup EXIT
[ -n "${KEEP:-}" ] && trap - EXIT
export WIRESHARK_CONFIG_DIR="$dir/wsconf"
mkdir -p "$WIRESHARK_CONFIG_DIR"
tcpdump -i lo --immediate-mode -s 0 -U -w "$dir/iwarp.pcap" "tcp port $port" 2>"$dir/tcpdump.err" &
dump=$!
for _ in $(seq 50); do grep -qs listening "$dir/tcpdump.err" && break; sleep 0.1; done
"$bin" rdma server --bind $host:$port --protocol iwarp --region-size 1048576 \
  --pcap "$dir/server.pcap" --json >"$dir/srv.json" 2>"$dir/srv.err" &
srv=$!
for _ in $(seq 50); do grep -qs "on $host:$port" "$dir/srv.err" && break; sleep 0.1; done
c="$bin rdma client --connect $host:$port --protocol iwarp --inflight 1 --json"
$c --op write --size 3000 --count 2 >"$dir/w.json"
$c --op read --size 500 --count 1 >"$dir/r.json"
$c --op send --size 100 --count 1 >"$dir/s.json"
for f in w r s; do grep -q '"verified":true' "$dir/$f.json" || { cat "$dir/$f.json"; exit 1; }; done
sleep 1  # let tcpdump write the last frames
kill "$srv"; wait "$srv" || true; srv=
kill -INT "$dump"; wait "$dump" || true; dump=
python3 "$(dirname "$0")/rdma_iwarp_capture_check.py" "$dir/iwarp.pcap" $port
# The server's own --pcap (TCP segments synthesized from what its sockets read and wrote, no
# handshake) must pass the same judge, and lose nothing.
grep -q '"dropped":0' "$dir/srv.json" || { cat "$dir/srv.json"; exit 1; }
python3 "$(dirname "$0")/rdma_iwarp_capture_check.py" "$dir/server.pcap" $port
