#!/usr/bin/env bash
# --metrics: Prometheus text at /metrics during a perf run, scraped with curl. The client's
# counters move between two scrapes; path 1, blackholed mid-run, goes from active to suspect and
# its losses show; the server's receive counter moves too. The text parses as the Prometheus
# exposition format (the test's own checker, and promtool check metrics: Debian's
# `prometheus` package ships it). A bad --metrics address is a usage error (exit 2).
# Ports: server 7420 (metrics 7421), client 7423-7426 (metrics 7422).
source "$(dirname "$0")/perf_lib.sh"
command -v curl >/dev/null || { echo "SKIPPED: no curl"; exit 77; }
command -v promtool >/dev/null || { echo "SKIPPED: no promtool (scripts/setup.sh installs prometheus)"; exit 77; }
command -v python3 >/dev/null || { echo "SKIPPED: no python3"; exit 77; }

start_server srv -- --bind 127.0.0.1:7420 --paths 4 --metrics 127.0.0.1:7421
timeout 60 "$bin" perf client --connect 127.0.0.1:7420 --paths 4 --source-port-base 7423 \
  --mode bw --size 16384 --duration 6 --metrics 127.0.0.1:7422 \
  --fault 'path=1:blackhole_after_ms=2000' --json >"$work/run.json" 2>"$work/client.log" &
client=$!
pids+=("$client")

# value FILE METRIC LABEL_MATCH: the sample's value (0 if absent).
value() {
  awk -v m="$2" -v l="$3" '$1 ~ "^"m"({|$)" && index($1, l) { v = $2 } END { print v + 0 }' "$1"
}
scrape() {  # scrape PORT FILE
  curl -sf --max-time 5 "http://127.0.0.1:$1/metrics" >"$2" || fail "curl :$1 failed"
}
# First scrape once the client has sent something, well before the blackhole.
for _ in $(seq 200); do
  curl -sf --max-time 5 http://127.0.0.1:7422/metrics >"$work/c1.txt" 2>/dev/null &&
    [ "$(value "$work/c1.txt" opensrd_tx_pkts_total '')" -gt 1000 ] && break
  sleep 0.01
done
[ "$(value "$work/c1.txt" opensrd_tx_pkts_total '')" -gt 1000 ] ||
  fail "the client's /metrics never showed traffic"
scrape 7421 "$work/s1.txt"
# Second scrape 3 s later: past the blackhole (2 s after the client started) and its detection,
# before the run ends (6 s), however slowly the client started (sanitizer builds).
sleep 3
scrape 7422 "$work/c2.txt"
scrape 7421 "$work/s2.txt"
wait "$client" || fail "client exited $?"
jq_check "$work/run.json" '.verified == true' "run not verified"
jq_check "$work/run.json" '.paths[1].state == "suspect"' "blackholed path not suspect at the end"

p1='path="1"'
check() {  # check DESCRIPTION CONDITION
  if eval "$2"; then echo "ok   $1"; else fail "$1 ($2)"; fi
}
c1_tx=$(value "$work/c1.txt" opensrd_tx_pkts_total '')
c2_tx=$(value "$work/c2.txt" opensrd_tx_pkts_total '')
check "client tx_pkts moves ($c1_tx -> $c2_tx)" '[ "$c2_tx" -gt "$c1_tx" ]'
s1_rx=$(value "$work/s1.txt" opensrd_rx_pkts_total '')
s2_rx=$(value "$work/s2.txt" opensrd_rx_pkts_total '')
check "server rx_pkts moves ($s1_rx -> $s2_rx)" '[ "$s2_rx" -gt "$s1_rx" ]'
check "path 1 active before the blackhole" \
  'grep -q "^opensrd_path_state{.*path=\"1\".*state=\"active\"} 1$" "$work/c1.txt"'
check "path 1 suspect after it" \
  'grep -q "^opensrd_path_state{.*path=\"1\".*state=\"suspect\"} 1$" "$work/c2.txt"'
check "path 1 suspect events counted" \
  '[ "$(value "$work/c2.txt" opensrd_path_suspect_events_total "$p1")" -gt 0 ]'
l1=$(value "$work/c1.txt" opensrd_path_lost_pkts_total "$p1")
l2=$(value "$work/c2.txt" opensrd_path_lost_pkts_total "$p1")
check "path 1 losses grow ($l1 -> $l2)" '[ "$l2" -gt "$l1" ]'
r1=$(value "$work/c1.txt" opensrd_retrans_pkts_total '')
r2=$(value "$work/c2.txt" opensrd_retrans_pkts_total '')
check "retransmissions grow ($r1 -> $r2)" '[ "$r2" -gt "$r1" ]'

# The exposition format (text 0.0.4): HELP/TYPE before samples, one TYPE per family, counters
# named *_total, valid names, labels and values, no series twice.
python3 - "$work"/c1.txt "$work"/c2.txt "$work"/s2.txt <<'PY' || fail "metrics text is not valid"
import re, sys
name_re = r"[a-zA-Z_:][a-zA-Z0-9_:]*"
sample_re = re.compile(rf"^({name_re})(\{{((?:[a-zA-Z_][a-zA-Z0-9_]*=\"(?:[^\"\\\\]|\\\\.)*\",?)*)\}})? (\S+)$")
for path in sys.argv[1:]:
    types, seen = {}, set()
    for n, line in enumerate(open(path), 1):
        line = line.rstrip("\n")
        where = f"{path}:{n}: {line}"
        if line.startswith("# TYPE "):
            _, _, name, typ = line.split(" ", 3)
            assert name not in types, "TYPE twice: " + where
            assert typ in ("counter", "gauge"), where
            assert typ != "counter" or name.endswith("_total"), "counter without _total: " + where
            assert name.startswith("opensrd_"), where
            types[name] = typ
        elif line.startswith("# HELP "):
            continue
        else:
            m = sample_re.match(line)
            assert m, "bad sample: " + where
            assert m.group(1) in types, "sample before its TYPE: " + where
            float(m.group(4))
            assert line.rsplit(" ", 1)[0] not in seen, "series twice: " + where
            seen.add(line.rsplit(" ", 1)[0])
    assert types and seen, path + " is empty"
print("exposition format ok")
PY
for f in c2 s2; do
  promtool check metrics <"$work/$f.txt" || fail "promtool check metrics $f.txt"
done
echo "ok   promtool check metrics"

# Bad addresses: usage errors.
for bad in nonsense 127.0.0.1:0; do
  rc=0
  "$bin" perf client --connect 127.0.0.1:7420 --metrics "$bad" >/dev/null 2>"$work/bad.log" || rc=$?
  [ "$rc" -eq 2 ] || fail "--metrics $bad: exit $rc, want 2"
  grep -q -- "--metrics" "$work/bad.log" || fail "--metrics $bad: message does not name it"
done
echo "metrics ok: $(grep -c '^opensrd_' "$work/c2.txt") client series"
