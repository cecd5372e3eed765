#!/usr/bin/env bash
# A HELLO flood against a real perf server: 5,000 HELLOs with fresh identities from 5,000 source
# addresses that never answer. Before address validation this grew a server by ~983 MB (a
# ~200 KiB context each); now no state may be created: the server's RSS grows by less than 8 MB
# and a real client is still served. Port 7360.
source "$(dirname "$0")/perf_lib.sh"
command -v python3 >/dev/null || { echo "SKIPPED: needs python3"; exit 77; }

start_server srv -- --bind 127.0.0.1:7360 --paths 4
pid=
for p in $(pgrep -f -- "perf server --bind 127.0.0.1:7360"); do
  [ "$(cat "/proc/$p/comm" 2>/dev/null)" = opensrd ] && pid=$p  # not the `timeout` wrapper
done
[ -n "$pid" ] || fail "no server pid"
rss() { awk '/VmRSS/ {print $2}' "/proc/$pid/status"; }
before=$(rss)
timeout 120 python3 "$(dirname "$0")/hello_flood.py" 127.0.0.1 7360 5000 >"$work/flood.out" ||
  fail "flood script failed"
cat "$work/flood.out"
sleep 0.5
after=$(rss)
grown=$((after - before))
echo "server RSS: $before kB before, $after kB after 5000 spoofed HELLOs (+$grown kB)"
[ "$grown" -lt 8192 ] || fail "the flood grew the server by $grown kB"
# The HELLOs were parsed and answered, with a RETRY (type 8) and nothing else.
grep -qE "answers by packet type: \{8: (4[0-9]|50)\}" "$work/flood.out" ||
  fail "the server did not answer the sampled HELLOs with RETRY: $(cat "$work/flood.out")"
timeout 60 "$bin" perf client --connect 127.0.0.1:7360 --paths 4 --mode lat --count 200 --json \
  >"$work/c.json" 2>"$work/c.log" || fail "client after the flood exited $?"
jq_check "$work/c.json" '.verified == true and .errors == 0' "client after the flood"
echo "perf hello flood ok"
