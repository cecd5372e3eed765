#!/usr/bin/env bash
# `opensrd stat` in a real terminal: tmux runs it against a perf client's --metrics during a run
# whose path 1 is blackholed after 3 s. capture-pane shows the header, the endpoint lines and
# one row per path with sparklines; later path 1 reads suspect with RTO-caused retransmissions;
# send-keys q ends it with exit 0. An unreachable address exits 1, a bad one 2.
# Ports: server 7736, client metrics 7737, client 7738-7739.
source "$(dirname "$0")/perf_lib.sh"
command -v tmux >/dev/null || { echo "SKIPPED: no tmux (scripts/setup.sh installs it)"; exit 77; }
command -v curl >/dev/null || { echo "SKIPPED: no curl"; exit 77; }
sock="opensrd_stat_$$"
cleanup_hooks+=("tmux -L $sock kill-server 2>/dev/null")

start_server srv -- --bind 127.0.0.1:7736 --paths 2
timeout 60 "$bin" perf client --connect 127.0.0.1:7736 --paths 2 --source-port-base 7738 \
  --mode bw --size 16384 --duration 8 --metrics 127.0.0.1:7737 \
  --fault 'path=1:blackhole_after_ms=3000' --json >"$work/run.json" 2>"$work/client.log" &
client=$!
pids+=($client)
for _ in $(seq 100); do curl -sf http://127.0.0.1:7737/metrics >/dev/null 2>&1 && break; sleep 0.05; done
curl -sf http://127.0.0.1:7737/metrics >/dev/null || fail "client /metrics never came up"

LANG=C.UTF-8 tmux -u -L "$sock" new-session -d -x 150 -y 30 \
  "LANG=C.UTF-8 '$bin' stat --metrics 127.0.0.1:7737 --interval-ms 250; echo STAT_EXIT=\$?; sleep 60"
pane() { tmux -u -L "$sock" capture-pane -p -t 0 >"$work/$1.txt"; }
check() {  # check DESCRIPTION CONDITION
  if eval "$2"; then echo "ok   $1"; else echo "--- pane:"; cat "$work/pane.txt"; fail "$1"; fi
}
# Frames every 250 ms; wait (up to 2.5 s, before the blackhole) for one with both paths and
# their sparklines (the first frames can be late on a loaded machine).
for _ in $(seq 25); do
  sleep 0.1
  pane early
  [ "$(grep -Ec "^1 +[01] +active " "$work/early.txt")" = 2 ] &&
    grep -q "[▁▂▃▄▅▆▇█]" "$work/early.txt" && break
done
cp "$work/early.txt" "$work/pane.txt"
check "header names the address and the command" \
  'grep -q "opensrd stat  127.0.0.1:7737  perf_client" "$work/early.txt"'
check "endpoint and retransmission lines" \
  'grep -q "^endpoint  tx " "$work/early.txt" && grep -q "^retrans .*(rack .* rto .* tlp " "$work/early.txt"'
check "a row per path, both active" \
  '[ "$(grep -Ec "^1 +[01] +active " "$work/early.txt")" = 2 ]'
check "sparklines drawn" 'grep -q "[▁▂▃▄▅▆▇█]" "$work/early.txt"'
for _ in $(seq 60); do  # path 1 goes suspect some time after 3 s
  pane late
  grep -Eq "^1 +1 +suspect " "$work/late.txt" && break
  sleep 0.25
done
cp "$work/late.txt" "$work/pane.txt"
check "path 1 reads suspect after the blackhole" 'grep -Eq "^1 +1 +suspect " "$work/late.txt"'
check "path 0 still active" 'grep -Eq "^1 +0 +active " "$work/late.txt"'
rto=$(grep -o "rto [0-9.k]*  tlp" "$work/late.txt" | awk '{ print $2 }')
check "RTO-caused retransmissions shown ($rto)" '[ -n "$rto" ] && [ "$rto" != 0 ]'
tmux -u -L "$sock" send-keys -t 0 q
for _ in $(seq 40); do pane end; grep -q "STAT_EXIT=" "$work/end.txt" && break; sleep 0.1; done
cp "$work/end.txt" "$work/pane.txt"
check "q ends it with exit 0" 'grep -q "STAT_EXIT=0" "$work/end.txt"'
wait "$client" || fail "client exited $?"

rc=0
timeout 10 "$bin" stat --metrics 127.0.0.1:7737 --count 1 >/dev/null 2>"$work/gone.log" || rc=$?
[ "$rc" -eq 1 ] || fail "stat against nothing: exit $rc, want 1"
rc=0
"$bin" stat --metrics nonsense >/dev/null 2>"$work/bad.log" || rc=$?
[ "$rc" -eq 2 ] || fail "stat --metrics nonsense: exit $rc, want 2"
echo "stat ok"
