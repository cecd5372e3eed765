#!/usr/bin/env bash
# --fault: loss, duplication, corruption and delay on some paths and a blackhole on path 3.
# The run must still verify; retransmissions and checksum drops must show; the blackholed path
# ends suspect with a small share of the packets. Ports: server 7300, client 7301-7304.
source "$(dirname "$0")/perf_lib.sh"

start_server srv -- --bind 127.0.0.1:7300 --paths 4

fault='path=0:loss=0.05,dup=0.02;path=1:corrupt=0.02,delay_us=100,jitter_us=50;path=2:loss=0.02,reorder=0.1;path=3:blackhole_after_ms=300'
timeout 60 "$bin" perf client --connect 127.0.0.1:7300 --paths 4 --source-port-base 7301 \
  --mode bw --size 65536 --duration 3 --seed 7 --fault "$fault" --json >"$work/f.json" \
  2>"$work/f.log" || fail "client exited $?"
jq_check "$work/f.json" '.verified == true and .errors == 0' "not verified under faults"
jq_check "$work/f.json" '.messages > 0' "no messages"
jq_check "$work/f.json" '.retransmits > 0' "no retransmissions despite loss"
jq_check "$work/f.json" '.corrupt_dropped > 0' "corruption not caught by the checksum"
jq_check "$work/f.json" '.fault.dropped > 0 and .fault.duplicated > 0 and .fault.corrupted > 0 and .fault.delayed > 0' \
  "injector counters"
jq_check "$work/f.json" '.paths[3].state == "suspect"' "blackholed path not suspect"
# What went into the blackhole is what path 3 lost: under 5% of all sent. (Its share of all
# packets is no measure: it carries a quarter of them until 300 ms, and on a loaded machine the
# three faulty paths may move little after that; CI once saw a 28% share with 24 lost.)
jq_check "$work/f.json" \
  '(.paths | map(.sent) | add) as $t | .paths[3].lost / $t < 0.05' \
  "the blackholed path kept carrying data (too many packets lost into it)"
jq_check "$work/f.json" '.paths[0].state == "active" and .paths[2].state == "active"' \
  "lossy paths should stay active"
# Out of order by default: under these faults later messages finish first at the server ...
jq_check "$work/f.json" '.server.overtaken > 0' "no message was overtaken: is delivery really unordered?"

# ... and --in-order delivers in posting order under the same faults.
timeout 60 "$bin" perf client --connect 127.0.0.1:7300 --paths 4 --source-port-base 7301 \
  --mode bw --size 65536 --duration 2 --seed 9 --in-order --fault "$fault" --json >"$work/o.json" \
  2>"$work/o.log" || fail "in-order client exited $?"
jq_check "$work/o.json" '.verified == true and .errors == 0 and .messages > 0' "in-order under faults"
jq_check "$work/o.json" '.server.overtaken == 0' "in-order delivery out of order"

# lat mode through the same faults.
timeout 60 "$bin" perf client --connect 127.0.0.1:7300 --paths 4 --source-port-base 7301 \
  --mode lat --count 2000 --seed 8 --fault "$fault" --json >"$work/l.json" 2>"$work/l.log" ||
  fail "lat client exited $?"
jq_check "$work/l.json" '.verified == true and .errors == 0 and .messages == 2000' "lat under faults"
echo "perf fault ok: $(jq -c '{retransmits, corrupt_dropped, duplicates_dropped, fault, share3: ((.paths[3].sent) / (.paths | map(.sent) | add)), lost3: .paths[3].lost}' "$work/f.json")"
