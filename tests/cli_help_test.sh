#!/usr/bin/env bash
# The CLI contract: --help lists every subcommand; an unknown subcommand is a clear error.
set -euo pipefail
bin=$1
out=$("$bin" --help)
for sub in demo perf bridge volume; do
  grep -q "^  $sub" <<<"$out" || { echo "--help does not list '$sub'"; echo "$out"; exit 1; }
done
if "$bin" no-such-command 2>/tmp/opensrd_cli_err.$$; then echo "unknown subcommand accepted"; exit 1; fi
[ -s /tmp/opensrd_cli_err.$$ ] || { echo "unknown subcommand: no error message"; exit 1; }
rm -f /tmp/opensrd_cli_err.$$
# perf lists its two halves; a missing required option is a usage error (exit 2).
out=$("$bin" perf --help)
for sub in server client; do
  grep -q "^  $sub" <<<"$out" || { echo "perf --help does not list '$sub'"; echo "$out"; exit 1; }
done
rc=0; "$bin" perf client 2>/dev/null || rc=$?
[ "$rc" -eq 2 ] || { echo "perf client without --connect: exit $rc, want 2"; exit 1; }
# Bad storage input is a usage error that names the bad part.
rc=0; err=$("$bin" bridge --bind 127.0.0.1:0 --volume 'v=/tmp/x,size=12Q' 2>&1) || rc=$?
[ "$rc" -eq 2 ] && grep -q "size" <<<"$err" || { echo "bad volume size: exit $rc: $err"; exit 1; }
rc=0; err=$("$bin" bridge --bind 127.0.0.1:0 --volume 'v=/nonexistent-dir/x' 2>&1) || rc=$?
[ "$rc" -eq 2 ] && grep -q "does not exist" <<<"$err" || { echo "missing file: exit $rc: $err"; exit 1; }
rc=0; "$bin" volume resize --bridge 127.0.0.1:1 --volume v --size 1M --token a --token-file /x \
  2>/dev/null || rc=$?
[ "$rc" -eq 2 ] || { echo "--token with --token-file: exit $rc, want 2"; exit 1; }
# --reorder is a RoCEv2 shell option, a probability: elsewhere or out of range, a usage error.
rc=0; err=$("$bin" rdma client --connect 127.0.0.1:1 --protocol srd --reorder 0.1 2>&1) || rc=$?
[ "$rc" -eq 2 ] && grep -q "protocol roce only" <<<"$err" || { echo "srd --reorder: exit $rc: $err"; exit 1; }
rc=0; "$bin" rdma rping --connect 127.0.0.1 --reorder 1.5 2>/dev/null || rc=$?
[ "$rc" -eq 2 ] || { echo "rping --reorder 1.5: exit $rc, want 2"; exit 1; }
echo "cli help ok"
