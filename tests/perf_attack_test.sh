#!/usr/bin/env bash
# Attacks through the CLI on a live perf run (tests/attack_cli.py sniffs lo, so root is needed):
# forged RESETs to the client, a captured DATA packet replayed to the server from the attacker's
# address (path hijack), and a captured HELLO replayed from there. Every run must still verify
# with no errors, and nothing but path challenges (at most one per replay) and RETRYs may reach
# the attacker. Ports: server 7390-7392, clients 7393-7396.
source "$(dirname "$0")/perf_lib.sh"
[ "$(id -u)" -eq 0 ] || { echo "SKIPPED: needs root to sniff lo"; exit 77; }
command -v python3 >/dev/null || { echo "SKIPPED: needs python3"; exit 77; }
attack="$(dirname "$0")/attack_cli.py"

# Nothing but path challenges and RETRYs may reach the attacker, at most one per replay.
check_answers() {
  local back other
  back=$(sed -E 's/.*, ([0-9]+) datagrams came back.*/\1/' "$work/$1.attack")
  other=$(sed -E 's/.*attacker, ([0-9]+) other.*/\1/' "$work/$1.attack")
  [ "$other" -eq 0 ] || fail "attack $1: $other datagrams other than challenges went to the attacker"
  [ "$back" -le 20 ] || fail "attack $1: $back datagrams went to the attacker"
}

run_attack() {
  local mode=$1 port=$2 base=$3
  start_server "$mode" -- --bind "127.0.0.1:$port" --paths 2
  timeout 60 "$bin" perf client --connect "127.0.0.1:$port" --paths 2 --source-port-base "$base" \
    --mode bw --size 16384 --duration 3 --json >"$work/$mode.json" 2>"$work/$mode.log" &
  local client=$!
  timeout 30 python3 "$attack" "$mode" "$port" 20 >"$work/$mode.attack" 2>&1 ||
    fail "attack $mode: $(cat "$work/$mode.attack")"
  wait "$client" || fail "client under attack ($mode) exited $?"
  cat "$work/$mode.attack"
  jq_check "$work/$mode.json" '.verified == true and .errors == 0' "run under attack ($mode)"
  check_answers "$mode"
}

run_attack reset 7390 7393
run_attack hijack 7391 7395
# A HELLO is only seen at the start: the client starts once the sniffer says it listens.
start_server hello -- --bind 127.0.0.1:7392 --paths 1
ATTACK_READY="$work/hello.ready" timeout 30 python3 "$attack" hello 7392 20 \
  >"$work/hello.attack" 2>&1 &
attacker=$!
for _ in $(seq 100); do [ -e "$work/hello.ready" ] && break; sleep 0.05; done
[ -e "$work/hello.ready" ] || fail "the sniffer did not start: $(cat "$work/hello.attack")"
timeout 60 "$bin" perf client --connect 127.0.0.1:7392 --paths 1 --mode lat \
  --count 3000 --json >"$work/hello.json" 2>"$work/hello.log" &
client=$!
wait "$attacker" || fail "attack hello: $(cat "$work/hello.attack")"
wait "$client" || fail "client under HELLO replay exited $?"
cat "$work/hello.attack"
jq_check "$work/hello.json" '.verified == true and .errors == 0' "run under HELLO replay"
check_answers hello
echo "perf attack ok"
