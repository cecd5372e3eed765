#!/usr/bin/env bash
# --log-level on every command, and what the logs hold. A bad level exits 2 naming the option,
# for every command. The line format is "UTC-time level component message". At warn the info
# lines (the server's "listening on", a path's state change) are gone; at info a blackholed
# path's change to suspect is logged as a key=value event. At trace the fault injector's
# per-datagram drops are logged, rate-limited: a few tens of lines for thousands of drops, the
# rest counted in "unlogged=".
# Ports: server 7733, client 7734-7735.
source "$(dirname "$0")/perf_lib.sh"

for cmd in "demo" "perf server --bind 127.0.0.1:7733" "perf client --connect 127.0.0.1:7733" \
  "bridge --bind 127.0.0.1:7733 --volume v=$work/v.img" \
  "volume resize --bridge 127.0.0.1:7733 --volume v --size 1M" \
  "adapter --bridge 127.0.0.1:7733 --volume v --nvme unix:$work/s"; do
  for bad in bogus INFO warning ""; do
    rc=0
    # shellcheck disable=SC2086
    timeout 10 "$bin" $cmd --log-level "$bad" >/dev/null 2>"$work/bad.log" || rc=$?
    [ "$rc" -eq 2 ] || fail "$cmd --log-level '$bad': exit $rc, want 2"
    grep -q -- "--log-level" "$work/bad.log" || fail "$cmd --log-level '$bad': message does not name it"
  done
  "$bin" ${cmd%% -*} --help | grep -q -- "--log-level" || fail "${cmd%% -*} --help lacks --log-level"
done
echo "ok   a bad level exits 2 on every command"

ts='[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\.[0-9]{6}Z'
timeout 20 "$bin" perf server --bind 127.0.0.1:7733 --paths 2 --log-level warn 2>"$work/wsrv.log" &
wpid=$!
pids+=($wpid)
sleep 1
kill -INT "$wpid"
wait "$wpid" || fail "server at warn did not exit cleanly"
[ ! -s "$work/wsrv.log" ] || fail "server logged at warn: $(head -n 3 "$work/wsrv.log")"
# start_server waits for "listening on", so it doubles as the check that info shows it.
start_server srv -- --bind 127.0.0.1:7733 --paths 2 --log-level info
grep -Eq "^$ts info perf_server listening on 127.0.0.1:7733" "$work/srv.log" ||
  fail "server line not in the structured format: $(head -n 2 "$work/srv.log")"
echo "ok   info shows the server's line in the structured format, warn hides it"

run_client() {  # run_client NAME LEVEL FAULT
  timeout 60 "$bin" perf client --connect 127.0.0.1:7733 --paths 2 --source-port-base 7734 \
    --mode bw --size 16384 --duration 2 --fault "$3" --log-level "$2" --json \
    >"$work/$1.json" 2>"$work/$1.log" || fail "client $1 failed"
}
run_client info info 'path=1:blackhole_after_ms=500'
grep -Eq "^$ts info perf_client path state peer=[0-9]+ path=1 .*from=active to=suspect" \
  "$work/info.log" || fail "no path state event at info: $(head -n 5 "$work/info.log")"
run_client warn warn 'path=1:blackhole_after_ms=500'
[ ! -s "$work/warn.log" ] || fail "client logged at warn: $(head -n 3 "$work/warn.log")"
echo "ok   a blackholed path's state change is an info event (and silent at warn)"

run_client trace trace 'path=0:loss=0.1;path=1:loss=0.1'
drops=$(jq '.fault.dropped' "$work/trace.json")
lines=$(grep -c "trace udp fault injector dropped a datagram" "$work/trace.log" || true)
unlogged=$(grep -o "fault injector dropped a datagram .*unlogged=[0-9]*" "$work/trace.log" |
  sed 's/.*unlogged=//' | awk '{ s += $1 } END { print s + 0 }')
echo "     $drops datagrams dropped, $lines lines logged, $unlogged counted as unlogged"
[ "$drops" -gt 100 ] || fail "too few drops to test the rate limit ($drops)"
# 10 a second after a burst of 10, over about 2-3 s of run (startup included).
[ "$lines" -ge 10 ] && [ "$lines" -le 60 ] || fail "$lines drop lines: not rate-limited to ~10/s"
[ "$unlogged" -gt 0 ] && [ $((lines + unlogged)) -le "$drops" ] ||
  fail "unlogged ($unlogged) + lines ($lines) vs drops ($drops)"
echo "log levels ok"
