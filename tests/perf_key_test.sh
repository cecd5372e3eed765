#!/usr/bin/env bash
# The cluster key through the CLI: with the same --key-file on both ends a run verifies in mac
# and aead modes; a client with another key cannot talk to the server (it times out, exit 1, and
# the server counts what failed authentication); a bad key file is exit code 2 with a message.
# Ports: 7350-7352.
source "$(dirname "$0")/perf_lib.sh"

head -c 32 /dev/urandom >"$work/k1"
od -An -tx1 -v "$work/k1" | tr -d ' \n' >"$work/k1.hex"  # the same key as 64 hex digits
head -c 32 /dev/urandom >"$work/k2"

start_server mac -- --bind 127.0.0.1:7350 --paths 4 --key-file "$work/k1"
timeout 60 "$bin" perf client --connect 127.0.0.1:7350 --paths 4 --mode bw --duration 1 \
  --key-file "$work/k1.hex" --json >"$work/mac.json" 2>"$work/mac.log" || fail "mac client exited $?"
jq_check "$work/mac.json" '.verified == true and .errors == 0 and .key_mode == "mac"' "mac run"

start_server aead -- --bind 127.0.0.1:7351 --paths 4 --key-file "$work/k1" --key-mode aead
timeout 60 "$bin" perf client --connect 127.0.0.1:7351 --paths 4 --mode lat --count 500 \
  --key-file "$work/k1" --key-mode aead --json >"$work/aead.json" 2>"$work/aead.log" ||
  fail "aead client exited $?"
jq_check "$work/aead.json" '.verified == true and .errors == 0 and .key_mode == "aead"' "aead run"

# Another key: nothing it sends is believed; the handshake times out.
set +e
timeout 60 "$bin" perf client --connect 127.0.0.1:7350 --paths 2 --mode lat --count 10 \
  --key-file "$work/k2" --peer-timeout-ms 500 --json >"$work/wrong.json" 2>"$work/wrong.log"
rc=$?
set -e
[ "$rc" -eq 1 ] || fail "client with the wrong key: exit $rc, want 1"
jq_check "$work/wrong.json" '.verified == false' "wrong key verified"

# No key against a keyed server: likewise refused.
set +e
timeout 60 "$bin" perf client --connect 127.0.0.1:7350 --paths 1 --mode lat --count 10 \
  --peer-timeout-ms 500 >/dev/null 2>&1
rc=$?
set -e
[ "$rc" -eq 1 ] || fail "client without a key: exit $rc, want 1"

# Bad key files and modes: exit 2, and the message names the problem.
printf 'short' >"$work/bad"
for args in "--key-file $work/missing" "--key-file $work/bad" "--key-file $work/k1 --key-mode rot13" \
  "--key-mode aead"; do
  set +e
  # shellcheck disable=SC2086
  "$bin" perf client --connect 127.0.0.1:7352 $args >/dev/null 2>"$work/e"
  rc=$?
  set -e
  [ "$rc" -eq 2 ] || fail "client $args: exit $rc, want 2"
  grep -qi "key" "$work/e" || fail "client $args: unclear message: $(cat "$work/e")"
done
set +e
"$bin" perf server --bind 127.0.0.1:7352 --key-file "$work/bad" >/dev/null 2>"$work/e"
rc=$?
set -e
[ "$rc" -eq 2 ] || fail "server with a bad key file: exit $rc, want 2"
echo "perf key ok: mac $(jq -c '.goodput_gbps' "$work/mac.json") Gbit/s, aead p50 $(jq -c '.lat_us.p50' "$work/aead.json") us"
