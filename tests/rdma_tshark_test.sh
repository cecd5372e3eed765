#!/usr/bin/env bash
# tshark judges opensrd's RoCEv2 and iWARP encoders: rdma_wire_pcap writes pcaps of every
# opcode, rdma_tshark_check.py compares tshark's decoding with what was encoded and recomputes
# every ICRC and MPA CRC independently. Exit 77 (skipped) without tshark.
set -euo pipefail
gen=$1
command -v tshark >/dev/null || { echo "SKIPPED: tshark not installed (apt-get install tshark)"; exit 77; }
dir=$(mktemp -d /tmp/opensrd_rdma_tshark.XXXXXX)
trap 'rm -rf "$dir"' EXIT
"$gen" "$dir"
# tshark reads only the pcaps written above; its personal configuration cannot change fields.
export WIRESHARK_CONFIG_DIR="$dir/wsconf"
mkdir -p "$WIRESHARK_CONFIG_DIR"
python3 "$(dirname "$0")/rdma_tshark_check.py" "$dir"
