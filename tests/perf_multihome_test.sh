#!/usr/bin/env bash
# Multi-homed paths through the CLI: a server listening on two addresses (--bind twice) and a
# client with explicit LOCAL=REMOTE paths over four different local addresses. The run verifies,
# each path reports the pair it was given, and with one pair blackholed the run still verifies
# and that path ends suspect. A malformed --path is exit code 2. Then IPv6 on [::1]. Ports:
# 7380-7382 (server).
source "$(dirname "$0")/perf_lib.sh"

start_server srv -- --bind 127.0.0.1:7380 --bind 127.0.0.2:7381 --paths 4
grep -q "127.0.0.1:7380, 127.0.0.2:7381" "$work/srv.log" || fail "server not on both addresses"
paths=(--path 127.0.0.3=127.0.0.1:7380 --path 127.0.0.4=127.0.0.2:7381
       --path 127.0.0.5=127.0.0.1:7380 --path 127.0.0.6=127.0.0.2:7381)
timeout 60 "$bin" perf client "${paths[@]}" --mode bw --duration 1 --json >"$work/m.json" \
  2>"$work/m.log" || fail "multi-homed client exited $?"
jq_check "$work/m.json" '.verified == true and .errors == 0' "multi-homed run"
jq_check "$work/m.json" '(.paths | length) == 4' "four paths"
jq_check "$work/m.json" \
  '[.paths[] | (.local | split(":")[0]) + "=" + .remote] == ["127.0.0.3=127.0.0.1:7380", "127.0.0.4=127.0.0.2:7381", "127.0.0.5=127.0.0.1:7380", "127.0.0.6=127.0.0.2:7381"]' \
  "paths are not the pairs given"
jq_check "$work/m.json" '[.paths[] | .sent > 0] | all' "a path carried nothing"

timeout 60 "$bin" perf client "${paths[@]}" --mode lat --count 2000 \
  --fault 'path=1:blackhole_after_ms=0' --json >"$work/f.json" 2>"$work/f.log" ||
  fail "client with a dead pair exited $?"
jq_check "$work/f.json" '.verified == true and .errors == 0 and .paths[1].state == "suspect"' \
  "dead pair"

for bad in "127.0.0.3" "127.0.0.3=nowhere" "x=127.0.0.1:7380" "127.0.0.3=127.0.0.1:0"; do
  set +e
  "$bin" perf client --path "$bad" >/dev/null 2>"$work/e"
  rc=$?
  set -e
  [ "$rc" -eq 2 ] || fail "--path '$bad': exit $rc, want 2"
  grep -q -- "--path" "$work/e" || fail "--path '$bad': unclear message: $(cat "$work/e")"
done
set +e
"$bin" perf client --path 127.0.0.3=127.0.0.1:7380 --connect 127.0.0.1:7380 >/dev/null 2>&1
rc=$?
set -e
[ "$rc" -ne 0 ] || fail "--path with --connect accepted"
echo "perf multihome ok: $(jq -c '{goodput_gbps, paths: [.paths[] | {local, remote, sent}]}' "$work/m.json")"

# IPv6: a server on [::1] and a client to it; and an IPv6 address without brackets is refused.
start_server v6 -- --bind '[::1]:7382' --paths 2
timeout 60 "$bin" perf client --connect '[::1]:7382' --paths 2 --mode lat --count 1000 --json \
  >"$work/v6.json" 2>"$work/v6.log" || fail "IPv6 client exited $?"
jq_check "$work/v6.json" '.verified == true and .errors == 0 and (.paths[0].remote == "[::1]:7382")' \
  "IPv6 run"
set +e
"$bin" perf client --connect '::1:7382' >/dev/null 2>"$work/e"
rc=$?
set -e
[ "$rc" -eq 2 ] && grep -q "\[ADDR\]:PORT" "$work/e" || fail "unbracketed IPv6: exit $rc: $(cat "$work/e")"
echo "perf ipv6 ok: p50 $(jq -c '.lat_us.p50' "$work/v6.json") us"
