#!/usr/bin/env bash
# Bad input: a malformed --fault is exit code 2 with a message naming the problem; a server
# that does not exist is a clear timeout error within a bounded time and a non-zero exit.
source "$(dirname "$0")/perf_lib.sh"

set +e
"$bin" perf client --connect 127.0.0.1:7599 --fault 'path=1:loss=2' >"$work/o" 2>"$work/e"
rc=$?
set -e
[ "$rc" -eq 2 ] || fail "bad --fault exit code $rc, want 2"
grep -q -- "--fault" "$work/e" && grep -q "probability" "$work/e" || fail "unclear message: $(cat "$work/e")"

for spec in 'loss=0.1' 'path=1:bogus=1' 'path=9:loss=0.1'; do
  set +e
  "$bin" perf client --connect 127.0.0.1:7599 --paths 4 --fault "$spec" >/dev/null 2>"$work/e"
  rc=$?
  set -e
  [ "$rc" -eq 2 ] || fail "--fault '$spec': exit $rc, want 2"
  [ -s "$work/e" ] || fail "--fault '$spec': no message"
done

set +e
"$bin" perf client --connect nonsense >/dev/null 2>"$work/e"
rc=$?
set -e
[ "$rc" -eq 2 ] || fail "bad --connect: exit $rc, want 2"

# Nobody listens on 7599: the handshake times out after --peer-timeout-ms.
start=$(date +%s%N)
set +e
timeout 20 "$bin" perf client --connect 127.0.0.1:7599 --source-port-base 7591 --paths 2 \
  --peer-timeout-ms 1000 --duration 5 --json >"$work/t.json" 2>"$work/t.log"
rc=$?
set -e
elapsed_ms=$((($(date +%s%N) - start) / 1000000))
[ "$rc" -ne 0 ] || fail "no server, yet exit 0"
[ "$rc" -ne 124 ] || fail "client hung until the test's timeout"
grep -q "did not answer" "$work/t.log" || fail "unclear timeout error: $(cat "$work/t.log")"
[ "$elapsed_ms" -lt 5000 ] || fail "timeout took ${elapsed_ms} ms, want < 5000"
jq_check "$work/t.json" '.verified == false and .errors > 0' "timeout JSON"
echo "bad input ok (timeout reported after ${elapsed_ms} ms)"
