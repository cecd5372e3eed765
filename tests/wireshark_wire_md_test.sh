#!/usr/bin/env bash
# Keeps tools/wireshark/opensrd.lua in step with docs/WIRE.md, both ways (fields of the section
# "Block protocol" are opensrd.block.<name>; sections about RoCEv2 and iWARP are skipped, since
# Wireshark's own infiniband and iwarp dissectors decode those):
#   * every field docs/WIRE.md's layout tables name in `backticks` (column "Field"), and every
#     flag of its flags table (kFlagDupSeen -> flags.dup_seen), is a field the dissector
#     registers as opensrd.<name> (ranges[i].begin -> opensrd.ranges.begin);
#   * every field the dissector registers is one of those, or a plain-text row of the same
#     tables (reserved, pad, payload, CRC32C -> reserved, pad, payload, crc32c), or one of the
#     two fields the dissector makes up itself: crc32c.status (its verdict on the CRC) and
#     ciphertext (the encrypted part in AEAD mode). Expert infos (FT_NONE) are not fields.
# The fields come from tshark itself (-G fields with the script installed as a plugin in a
# scratch HOME), so a field that fails to register is caught too. Needs tshark.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
command -v tshark >/dev/null || { echo "SKIPPED: no tshark (scripts/setup.sh installs it)"; exit 77; }
command -v python3 >/dev/null || { echo "SKIPPED: no python3"; exit 77; }
work=$(mktemp -d /tmp/opensrd_test.XXXXXX)
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/.local/lib/wireshark/plugins"
cp "$here/../tools/wireshark/opensrd.lua" "$work/.local/lib/wireshark/plugins/"
HOME="$work" tshark -G fields >"$work/fields.tsv" 2>"$work/tshark.err" ||
  { echo "FAIL: tshark -G fields: $(cat "$work/tshark.err")"; exit 1; }

python3 - "$here/../docs/WIRE.md" "$work/fields.tsv" <<'PY'
import re, sys
wire_md, fields_tsv = sys.argv[1], sys.argv[2]
GENERATED = {"crc32c.status", "ciphertext"}

documented, plain = set(), set()
column = None
prefix = ""  # the block protocol's fields are opensrd.block.<name>
skip = False  # RoCEv2 and iWARP: Wireshark's own infiniband and iwarp dissectors decode them
for line in open(wire_md):
    if line.startswith("## "):
        prefix = "block." if line.startswith("## Block protocol") else ""
        skip = "RoCEv2" in line or "iWARP" in line
    if skip:
        continue
    if not line.startswith("|"):
        column = None
        continue
    cells = [c.strip() for c in line.strip().strip("|").split("|")]
    if column is None:
        column = ("field", cells.index("Field")) if "Field" in cells else \
                 ("flag", cells.index("Name")) if "Name" in cells and "Mask" in cells else ("none", -1)
        continue
    kind, i = column
    if kind == "none" or set(line) <= set("|-: \n") or i >= len(cells):
        continue
    cell = cells[i]
    names = re.findall(r"`([^`]+)`", cell)
    if kind == "flag":
        for n in names:
            snake = re.sub(r"(?<!^)([A-Z])", r"_\1", n.removeprefix("kFlag")).lower()
            documented.add(prefix + "flags." + snake)
    elif names:
        for n in names:
            documented.add(prefix + re.sub(r"\[i\]", "", n))
    elif cell and cell not in ("common", "ack block", "—"):
        plain.add(prefix + cell.lower().replace(" ", "_"))

registered = set()
for line in open(fields_tsv):
    f = line.rstrip("\n").split("\t")
    if len(f) >= 5 and f[0] == "F" and f[4] == "opensrd" and f[3] != "FT_NONE":
        registered.add(f[2].removeprefix("opensrd."))
# The protocol's own bare fields (opensrd.flags) count as named by the table they head.
bad = False
missing = sorted(documented - registered)
if missing:
    print("FAIL: docs/WIRE.md names fields the dissector does not declare:", missing)
    bad = True
extra = sorted(registered - documented - plain - GENERATED)
if extra:
    print("FAIL: the dissector declares fields docs/WIRE.md does not name:", extra)
    bad = True
if not documented or not registered:
    print("FAIL: nothing parsed", documented, registered)
    bad = True
print(f"docs/WIRE.md: {len(documented)} fields, {len(plain)} plain rows {sorted(plain)}; "
      f"dissector: {len(registered)} fields")
sys.exit(1 if bad else 0)
PY
echo "wireshark fields in step with docs/WIRE.md"
