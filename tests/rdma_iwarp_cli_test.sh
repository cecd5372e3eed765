#!/usr/bin/env bash
# `opensrd rdma server|client --protocol iwarp` on loopback (127.0.0.1:7773): WRITE, READ and
# SEND at sizes from 8 bytes to several FPDUs, each verified by the client (and SENDs by the
# server); a wrong STag must end in the peer's TERMINATE with the RFC 5040/5041 codes and a
# non-zero exit; the server's counters must show every SEND checked and none wrong.
set -euo pipefail
bin=$1
# OPENSRD_TEST_HOST / OPENSRD_TEST_PORT move the test (to run it beside other users of lo).
host=${OPENSRD_TEST_HOST:-127.0.0.1}
port=${OPENSRD_TEST_PORT:-7773}
dir=$(mktemp -d /tmp/opensrd_iwarp_cli.XXXXXX)
srv=
cleanup() {
  [ -n "$srv" ] && kill "$srv" 2>/dev/null || true
  wait 2>/dev/null || true
  rm -rf "$dir"
}
trap cleanup EXIT
"$bin" rdma server --bind $host:$port --protocol iwarp --region-size 8388608 --json \
  >"$dir/srv.json" 2>"$dir/srv.err" &
srv=$!
for _ in $(seq 50); do grep -qs "on $host:$port" "$dir/srv.err" && break; sleep 0.1; done
field() { python3 -c "import json,sys; j=json.load(open(sys.argv[1])); print(eval(sys.argv[2]))" "$@"; }
sends=0
for op in write read send; do
  for size in 8 4096 100000; do
    out=$dir/$op.$size.json
    "$bin" rdma client --connect $host:$port --protocol iwarp --op $op --size $size \
      --count 200 --inflight 8 --json >"$out"
    [ "$(field "$out" 'j["verified"] and j["errors"] == 0 and j["ops"] == 200 and j["bytes"] == 200 * j["size"]')" = True ] ||
      { echo "FAIL: $op $size: $(cat "$out")"; exit 1; }
    [ "$(field "$out" 'all(k in j["lat_us"] for k in ("p50","p99","p999","max")) and j["goodput_gbps"] > 0')" = True ] ||
      { echo "FAIL: $op $size: report fields: $(cat "$out")"; exit 1; }
    [ $op = send ] && sends=$((sends + 200))
  done
done
# A wrong STag: the server terminates (WRITE: DDP tagged buffer, invalid STag; READ: RDMAP
# remote protection, invalid STag), the client exits 1 and reports the peer's TERMINATE.
for spec in "write 1 1 0" "read 0 1 0"; do
  set -- $spec
  out=$dir/bad.$1.json
  rc=0
  "$bin" rdma client --connect $host:$port --protocol iwarp --op $1 --size 64 --count 5 \
    --bad-rkey --json >"$out" || rc=$?
  [ $rc = 1 ] || { echo "FAIL: bad rkey $1 exited $rc"; exit 1; }
  [ "$(field "$out" 'j["terminate"] == {"layer": '$2', "etype": '$3', "code": '$4'} and not j["verified"]')" = True ] ||
    { echo "FAIL: bad rkey $1: $(cat "$out")"; exit 1; }
done
kill "$srv"
wait "$srv"
srv=
[ "$(field "$dir/srv.json" 'j["sends_ok"] == '$sends' and j["sends_wrong"] == 0 and j["terminates_sent"] == 2')" = True ] ||
  { echo "FAIL: server counters: $(cat "$dir/srv.json")"; exit 1; }
echo "ok: iwarp write/read/send verified at 8 B, 4 KiB and 100000 B; wrong STags terminated"
