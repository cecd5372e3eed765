#!/usr/bin/env bash
# --metrics on the storage commands: a bridge and an adapter (NVMe front driven by the example
# host program) each serve Prometheus text. Scraped with curl after the host's writes and reads:
# the bridge counts read and write operations and bytes, the adapter the same from its side and
# its volume's state (ok); an attach with a wrong token shows as attach_denied on the bridge.
# Both texts pass the exposition-format check and promtool. Bad --metrics addresses exit 2.
# Ports: bridge 7727 (metrics 7728), adapter metrics 7729.
# Usage: storage_metrics_test.sh OPENSRD_BIN EXAMPLE_BIN
source "$(dirname "$0")/perf_lib.sh"
example=$2
command -v curl >/dev/null || { echo "SKIPPED: no curl"; exit 77; }
command -v promtool >/dev/null || { echo "SKIPPED: no promtool (scripts/setup.sh installs prometheus)"; exit 77; }
command -v python3 >/dev/null || { echo "SKIPPED: no python3"; exit 77; }

wait_log() {  # wait_log FILE PATTERN
  for _ in $(seq 50); do grep -q "$2" "$1" 2>/dev/null && return 0; sleep 0.1; done
  fail "no '$2' in $1"
}
value() {  # value FILE METRIC [LABEL_MATCH [LABEL_MATCH2]]: the sample's value (0 if absent)
  awk -v m="$2" -v l="${3:-}" -v l2="${4:-}" \
    '$1 ~ "^"m"({|$)" && index($1, l) && index($1, l2) { v = $2 } END { print v + 0 }' "$1"
}
check() {  # check DESCRIPTION CONDITION
  if eval "$2"; then echo "ok   $1"; else fail "$1 ($2)"; fi
}

echo -n s3cret >"$work/token"
echo -n wrong >"$work/bad_token"
timeout 60 "$bin" bridge --bind 127.0.0.1:7727 --metrics 127.0.0.1:7728 \
  --volume "vol=$work/vol.img,size=16MiB,token-file=$work/token" 2>"$work/bridge.log" &
bpid=$!
pids+=($bpid)
wait_log "$work/bridge.log" "serving on"
rc=0
timeout 20 "$bin" adapter --bridge 127.0.0.1:7727 --volume vol --token-file "$work/bad_token" \
  --nvme "unix:$work/bad.sock" 2>"$work/bad_adapter.log" || rc=$?
[ "$rc" -eq 2 ] || fail "adapter with a wrong token: exit $rc, want 2"
timeout 60 "$bin" adapter --bridge 127.0.0.1:7727 --volume vol --token-file "$work/token" \
  --nvme "unix:$work/nvme.sock" --metrics 127.0.0.1:7729 2>"$work/adapter.log" &
apid=$!
pids+=($apid)
wait_log "$work/adapter.log" "NVMe queues at"
timeout 30 "$example" --socket "$work/nvme.sock" --blocks 256 --io-blocks 8 --qd 4 \
  >"$work/example.json" 2>"$work/example.log" || fail "example host failed"
jq_check "$work/example.json" '.verified == true' "example verified"
sleep 0.3  # the snapshots are at most 100 ms old (and the loops turn at least every 20 ms)
curl -sf --max-time 5 http://127.0.0.1:7728/metrics >"$work/bridge.txt" || fail "curl bridge"
curl -sf --max-time 5 http://127.0.0.1:7729/metrics >"$work/adapter.txt" || fail "curl adapter"

b=$work/bridge.txt a=$work/adapter.txt
check "bridge: opensrd_info says bridge" 'grep -q "^opensrd_info{command=\"bridge\"} 1$" "$b"'
check "adapter: opensrd_info says adapter" 'grep -q "^opensrd_info{command=\"adapter\"} 1$" "$a"'
bw=$(value "$b" opensrd_block_ops_total 'op="write"')
br=$(value "$b" opensrd_block_ops_total 'op="read"')
check "bridge counts writes ($bw) and reads ($br)" '[ "$bw" -gt 0 ] && [ "$br" -gt 0 ]'
check "bridge write bytes = adapter write bytes" \
  '[ "$(value "$b" opensrd_block_bytes_total dir=\"write\")" = "$(value "$a" opensrd_block_bytes_total dir=\"write\")" ]'
check "bridge read bytes = adapter read bytes" \
  '[ "$(value "$b" opensrd_block_bytes_total dir=\"read\")" = "$(value "$a" opensrd_block_bytes_total dir=\"read\")" ]'
check "bridge write bytes > 0" '[ "$(value "$b" opensrd_block_bytes_total dir=\"write\")" -gt 0 ]'
check "adapter writes = bridge writes" '[ "$(value "$a" opensrd_block_ops_total op=\"write\")" = "$bw" ]'
check "adapter reads = bridge reads" '[ "$(value "$a" opensrd_block_ops_total op=\"read\")" = "$br" ]'
check "no errors on either side" \
  '[ "$(value "$b" opensrd_block_errors_total)" = 0 ] && [ "$(value "$a" opensrd_block_errors_total)" = 0 ]'
check "bridge: one attach granted, one denied" \
  '[ "$(value "$b" opensrd_block_attaches_total)" = 1 ] && [ "$(value "$b" opensrd_block_attach_denied_total)" = 1 ]'
check "adapter: volume state ok" \
  'grep -q "^opensrd_volume_state{volume=\"vol\",state=\"ok\"} 1$" "$a" && grep -q "^opensrd_volume_state{volume=\"vol\",state=\"impaired\"} 0$" "$a"'
check "both carry the transport's counters" \
  '[ "$(value "$b" opensrd_rx_pkts_total)" -gt 0 ] && [ "$(value "$a" opensrd_tx_pkts_total)" -gt 0 ]'
python3 "$(dirname "$0")/prom_text_check.py" "$b" "$a" || fail "metrics text is not valid"
for f in "$b" "$a"; do promtool check metrics <"$f" || fail "promtool check metrics $f"; done
echo "ok   promtool check metrics"
kill -TERM "$apid"
wait "$apid" || fail "adapter did not exit cleanly"
kill -TERM "$bpid"
wait "$bpid" || fail "bridge did not exit cleanly"

for bad in nonsense 127.0.0.1:0; do
  rc=0
  timeout 10 "$bin" bridge --bind 127.0.0.1:7727 --volume "vol=$work/vol.img" --metrics "$bad" \
    >/dev/null 2>"$work/bad.log" || rc=$?
  [ "$rc" -eq 2 ] || fail "bridge --metrics $bad: exit $rc, want 2"
  rc=0
  timeout 10 "$bin" adapter --bridge 127.0.0.1:7727 --volume vol --nvme unix:$work/x.sock \
    --metrics "$bad" >/dev/null 2>"$work/bad.log" || rc=$?
  [ "$rc" -eq 2 ] || fail "adapter --metrics $bad: exit $rc, want 2"
  grep -q -- "--metrics" "$work/bad.log" || fail "--metrics $bad: message does not name it"
done
echo "storage metrics ok"
