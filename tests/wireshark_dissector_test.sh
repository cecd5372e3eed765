#!/usr/bin/env bash
# tools/wireshark/opensrd.lua on hand-built datagrams (tests/opensrd_samples.py): both examples
# of docs/WIRE.md decode to the documented field values; a valid datagram of every type decodes
# with a good CRC and no expert error; every rejection rule of wire::Parse is flagged (malformed
# or bad CRC); the heuristic leaves datagrams without opensrd's magic, version and type alone,
# and the port preference decodes them as malformed. Needs tshark. No sockets.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
lua="$here/../tools/wireshark/opensrd.lua"
command -v tshark >/dev/null || { echo "SKIPPED: no tshark (scripts/setup.sh installs it)"; exit 77; }
command -v python3 >/dev/null || { echo "SKIPPED: no python3"; exit 77; }
work=$(mktemp -d /tmp/opensrd_test.XXXXXX)
trap 'rm -rf "$work"' EXIT
fail() {
  echo "FAIL: $*"
  exit 1
}

python3 "$here/opensrd_samples.py" "$work/s.pcap" "$work/cases.tsv"
decode() {  # decode OUT [tshark options...]: one line per frame
  local out=$1
  shift
  tshark -X lua_script:"$lua" "$@" -r "$work/s.pcap" -T fields -E separator='|' \
    -e frame.number -e frame.protocols -e _ws.expert.severity -e _ws.expert.message \
    -e opensrd.crc32c.status -e opensrd.type >"$out" 2>"$work/tshark.err" ||
    fail "tshark: $(cat "$work/tshark.err")"
}
decode "$work/port.txt" -o opensrd.udp_port:7441
decode "$work/heur.txt"

bad=0
while IFS=$'\t' read -r num name verdict; do
  IFS='|' read -r _ protos sev msg crc _ < <(sed -n "${num}p" "$work/port.txt")
  IFS='|' read -r _ hprotos _ < <(sed -n "${num}p" "$work/heur.txt")
  error=no
  [[ ",$sev," == *",8388608,"* ]] && error=yes
  case $verdict in
    ok) [[ $protos == *opensrd* && $error == no && $crc == 1 ]] || { echo "FAIL $name: expected a clean decode: $sev $msg crc=$crc"; bad=1; } ;;
    bad_crc) [[ $crc == 0 && $msg == *"Bad CRC32C"* ]] || { echo "FAIL $name: bad CRC not flagged: $msg"; bad=1; } ;;
    malformed) [[ $error == yes && $msg == *Malformed* ]] || { echo "FAIL $name: not flagged malformed: $msg"; bad=1; } ;;
    not_opensrd)
      [[ $error == yes && $msg == *Malformed* ]] || { echo "FAIL $name: by port, not flagged malformed: $msg"; bad=1; }
      [[ $hprotos != *opensrd* ]] || { echo "FAIL $name: the heuristic claimed it"; bad=1; } ;;
  esac
  if [[ $verdict != not_opensrd && $hprotos != *opensrd* ]]; then
    echo "FAIL $name: the heuristic did not find it ($hprotos)"
    bad=1
  fi
done <"$work/cases.tsv"
[ "$bad" -eq 0 ] || fail "see above"

# docs/WIRE.md's examples (frames 1 and 2), field by field. One tshark pass decodes every field
# checked below; `expect FRAME FIELD VALUE` looks it up (all occurrences, comma-separated).
fields=(opensrd.type opensrd.path_id opensrd.dst_ctx opensrd.src_ctx opensrd.src_incarnation
  opensrd.dst_incarnation opensrd.tx_ts opensrd.crc32c opensrd.cum_psn opensrd.echo_ts
  opensrd.ack_delay_us opensrd.echo_path opensrd.n_ranges opensrd.ranges.begin opensrd.ranges.end
  opensrd.flags.retx opensrd.flags.ack opensrd.psn opensrd.block.op opensrd.block.length
  opensrd.block.sequence opensrd.block.offset opensrd.block.name opensrd.block.session
  opensrd.block.block_size opensrd.block.max_transfer opensrd.block.message opensrd.block.size)
tshark -X lua_script:"$lua" -r "$work/s.pcap" -T fields -E separator=/t -E occurrence=a \
  -E aggregator=, -e frame.number $(printf -- '-e %s ' "${fields[@]}") >"$work/fields.tsv" \
  2>"$work/tshark.err" || fail "tshark: $(cat "$work/tshark.err")"
expect() {
  local col=0 i got
  for i in "${!fields[@]}"; do [ "${fields[$i]}" = "$2" ] && col=$((i + 2)); done
  [ "$col" -gt 0 ] || fail "test bug: $2 is not in the field list"
  got=$(awk -F'\t' -v n="$1" -v c="$col" '$1 == n { print $c }' "$work/fields.tsv")
  [ "$got" = "$3" ] || fail "frame $1 $2: got '$got', want '$3'"
}
expect 1 opensrd.type 5
expect 1 opensrd.path_id 2
expect 1 opensrd.dst_ctx 1
expect 1 opensrd.src_ctx 3
expect 1 opensrd.src_incarnation 0x0a0b0c0d
expect 1 opensrd.dst_incarnation 0x11223344
expect 1 opensrd.tx_ts 1000000
expect 1 opensrd.crc32c 0xb5c0e5af
expect 2 opensrd.type 2
expect 2 opensrd.cum_psn 5
expect 2 opensrd.echo_ts 1000000
expect 2 opensrd.ack_delay_us 12
expect 2 opensrd.echo_path 2
expect 2 opensrd.n_ranges 1
expect 2 opensrd.ranges.begin 7
expect 2 opensrd.ranges.end 9
expect 2 opensrd.crc32c 0x468691be
# A piggybacked ack (frame 5) and the retransmission flag (frame 4).
expect 4 opensrd.flags.retx 1
expect 5 opensrd.flags.ack 1
expect 5 opensrd.ranges.begin 7,11
expect 5 opensrd.ranges.end 9,12
expect 5 opensrd.psn 7
# The block protocol (frames named in cases.tsv).
frame_of() { awk -F'\t' -v n="$1" '$2 == n { print $1 }' "$work/cases.tsv"; }
expect "$(frame_of block_io_write)" opensrd.block.op 1
expect "$(frame_of block_io_write)" opensrd.block.length 512
expect "$(frame_of block_io_write)" opensrd.block.sequence 7
expect "$(frame_of block_io_write)" opensrd.block.offset 4096
expect "$(frame_of block_attach)" opensrd.block.name vol0
expect "$(frame_of block_attach)" opensrd.block.session 0x1122334455667788
expect "$(frame_of block_attach_reply)" opensrd.block.block_size 512
expect "$(frame_of block_attach_reply)" opensrd.block.max_transfer 1048576
expect "$(frame_of block_resize_reply)" opensrd.block.message grown
expect "$(frame_of block_info)" opensrd.block.size 2147483648
# Robustness: 3000 mutated datagrams (seeded) through the heuristic and the port preference;
# a Lua runtime error anywhere is a dissector bug.
python3 "$here/opensrd_samples.py" --mutants 3000 16 "$work/m.pcap"
for opt in "" "-o opensrd.udp_port:7441" "-o opensrd.key_mode:aead -o opensrd.udp_port:7441"; do
  # shellcheck disable=SC2086
  tshark -X lua_script:"$lua" $opt -r "$work/m.pcap" -T fields -e frame.protocols \
    -e _ws.expert.message >"$work/m.txt" 2>&1 || fail "tshark on mutants ($opt) exited $?"
  if grep -q "Lua Error" "$work/m.txt"; then
    grep -m3 "Lua Error" "$work/m.txt"
    fail "the dissector raised a Lua error on a mutant ($opt)"
  fi
  [ "$(grep -c 'opensrd' "$work/m.txt")" -gt 1000 ] || fail "mutants were not dissected ($opt)"
done
echo "wireshark dissector ok: $(wc -l <"$work/cases.tsv") cases, 3000 mutants"
