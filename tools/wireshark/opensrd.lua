-- Wireshark dissector for opensrd's native SRD transport (docs/WIRE.md is the byte-by-byte
-- description; field names here are docs/WIRE.md's, prefixed "opensrd.").
--
-- Load it with `tshark -X lua_script:tools/wireshark/opensrd.lua` (or copy it into the personal
-- plugin folder, ~/.local/lib/wireshark/plugins/). opensrd has no well-known port, so packets
-- are found by a heuristic on UDP (magic "SD", version 1, type 1..10) and, optionally, by the
-- "UDP port" preference (opensrd.udp_port), which also makes "Decode As" work.
--
-- What it does beyond showing fields:
--   * verifies the CRC32C trailer (its own CRC32C; Wireshark 4.0's Lua has no CRC32C) and marks
--     a mismatch with expert info (error); preference opensrd.verify_crc turns this off for big
--     captures, where a CRC in Lua is slow (tens of MB/s);
--   * applies wire::Parse's rules (lengths, ranges, reserved bytes) and marks every violation
--     with expert info (error, group "malformed"), naming wire::Parse's error (bad_length ...);
--   * recognises the cluster key's 32-byte trailer (nonce + tag, docs/WIRE.md) after a datagram
--     in MAC mode (the inner CRC then verifies 32 bytes before the end); with the preference
--     opensrd.key_mode = aead everything after the common header is shown as ciphertext;
--   * decodes the block protocol (docs/WIRE.md, "Block protocol") in the first fragment of an
--     SRD message that carries one (payload at offset 0 starting with "OB", version 1): fields
--     opensrd.block.<name>, with its length rules as expert info;
--   * splits UDP GSO batches: a capture on the sending host (tcpdump on lo, above all) sees a
--     batch of datagrams sent with UDP_SEGMENT as one UDP packet holding several opensrd
--     datagrams back to back; each gets its own opensrd tree.
--
-- Written for the Lua 5.2 of Debian 12's Wireshark 4.0 (bit32 for bit operations).

local bit = bit32
local band, bxor, rshift, bor, lshift = bit.band, bit.bxor, bit.rshift, bit.bor, bit.lshift

local MAGIC = 0x5344
local VERSION = 1
local COMMON_LEN = 28
local CRC_LEN = 4
local DATA_HDR_LEN = 52
local ACK_FIXED_LEN = 12
local SACK_RANGE_LEN = 8
local MAX_SACK_RANGES = 16
local KEY_TRAILER_LEN = 32 -- 16-byte nonce + 16-byte tag (src/transport/protection.h)
local MAX_DATAGRAM = 65507

local T_DATA, T_ACK, T_HELLO, T_HELLO_ACK, T_PROBE, T_NACK, T_RESET, T_RETRY, T_PATH_CHALLENGE,
      T_PATH_RESPONSE = 1, 2, 3, 4, 5, 6, 7, 8, 9, 10

local type_names = {
  [T_DATA] = "DATA", [T_ACK] = "ACK", [T_HELLO] = "HELLO", [T_HELLO_ACK] = "HELLO_ACK",
  [T_PROBE] = "PROBE", [T_NACK] = "NACK", [T_RESET] = "RESET", [T_RETRY] = "RETRY",
  [T_PATH_CHALLENGE] = "PATH_CHALLENGE", [T_PATH_RESPONSE] = "PATH_RESPONSE",
}
local nack_reasons = { [1] = "receiver not ready", [2] = "out of window", [3] = "truncated" }

-- Fixed total lengths (CRC included) of the types that have one.
local fixed_len = {
  [T_HELLO] = 96, [T_HELLO_ACK] = 96, [T_PROBE] = 32, [T_NACK] = 40, [T_RESET] = 56,
  [T_RETRY] = 56, [T_PATH_CHALLENGE] = 40, [T_PATH_RESPONSE] = 40,
}

local FLAG_PROBE, FLAG_IN_ORDER, FLAG_RETX, FLAG_ACK, FLAG_DUP_SEEN = 0x01, 0x02, 0x04, 0x08, 0x10
local FLAG_RETX_DUP = 0x20

local p = Proto("opensrd", "opensrd SRD transport")

local f = {
  -- common header
  magic = ProtoField.uint16("opensrd.magic", "Magic", base.HEX),
  version = ProtoField.uint8("opensrd.version", "Version", base.DEC),
  type = ProtoField.uint8("opensrd.type", "Type", base.DEC, type_names),
  flags = ProtoField.uint8("opensrd.flags", "Flags", base.HEX),
  flag_probe = ProtoField.bool("opensrd.flags.probe", "Probe reply (kFlagProbe)", 8, nil,
                               FLAG_PROBE),
  flag_in_order = ProtoField.bool("opensrd.flags.in_order", "In order (kFlagInOrder)", 8, nil,
                                  FLAG_IN_ORDER),
  flag_retx = ProtoField.bool("opensrd.flags.retx", "Retransmission (kFlagRetx)", 8, nil,
                              FLAG_RETX),
  flag_ack = ProtoField.bool("opensrd.flags.ack", "Ack block follows (kFlagAck)", 8, nil,
                             FLAG_ACK),
  flag_dup_seen = ProtoField.bool("opensrd.flags.dup_seen", "Duplicate seen (kFlagDupSeen)", 8,
                                  nil, FLAG_DUP_SEEN),
  flag_retx_dup = ProtoField.bool("opensrd.flags.retx_dup", "Re-send not needed (kFlagRetxDup)",
                                  8, nil, FLAG_RETX_DUP),
  path_id = ProtoField.uint8("opensrd.path_id", "Path id", base.DEC),
  reserved = ProtoField.bytes("opensrd.reserved", "Reserved"),
  dst_ctx = ProtoField.uint32("opensrd.dst_ctx", "Destination context", base.DEC),
  src_ctx = ProtoField.uint32("opensrd.src_ctx", "Source context", base.DEC),
  src_incarnation = ProtoField.uint32("opensrd.src_incarnation", "Source incarnation", base.HEX),
  dst_incarnation = ProtoField.uint32("opensrd.dst_incarnation", "Destination incarnation",
                                      base.HEX),
  tx_ts = ProtoField.uint32("opensrd.tx_ts", "Transmit time (ns mod 2^32)", base.DEC),
  -- DATA
  psn = ProtoField.uint32("opensrd.psn", "PSN", base.DEC),
  msg_id = ProtoField.uint32("opensrd.msg_id", "Message id", base.DEC),
  msg_len = ProtoField.uint32("opensrd.msg_len", "Message length", base.DEC),
  offset = ProtoField.uint32("opensrd.offset", "Offset", base.DEC),
  sq_id = ProtoField.uint16("opensrd.sq_id", "Send queue", base.DEC),
  payload_len = ProtoField.uint16("opensrd.payload_len", "Payload length", base.DEC),
  sq_seq = ProtoField.uint32("opensrd.sq_seq", "Send queue sequence", base.DEC),
  payload = ProtoField.bytes("opensrd.payload", "Payload"),
  -- ACK block (ACK, and DATA with kFlagAck)
  cum_psn = ProtoField.uint32("opensrd.cum_psn", "Cumulative PSN", base.DEC),
  echo_ts = ProtoField.uint32("opensrd.echo_ts", "Echoed transmit time", base.DEC),
  ack_delay_us = ProtoField.uint16("opensrd.ack_delay_us", "Ack delay (us)", base.DEC),
  echo_path = ProtoField.uint8("opensrd.echo_path", "Echoed path", base.DEC),
  n_ranges = ProtoField.uint8("opensrd.n_ranges", "SACK ranges", base.DEC),
  range_begin = ProtoField.uint32("opensrd.ranges.begin", "Range begin", base.DEC),
  range_end = ProtoField.uint32("opensrd.ranges.end", "Range end (exclusive)", base.DEC),
  -- HELLO / HELLO_ACK
  node_id = ProtoField.uint64("opensrd.node_id", "Node id", base.HEX),
  num_paths = ProtoField.uint16("opensrd.num_paths", "Paths", base.DEC),
  max_payload = ProtoField.uint16("opensrd.max_payload", "Max payload", base.DEC),
  generation = ProtoField.uint32("opensrd.generation", "Generation", base.DEC),
  echo_generation = ProtoField.uint32("opensrd.echo_generation", "Echoed generation", base.DEC),
  window_packets = ProtoField.uint32("opensrd.window_packets", "Window (packets)", base.DEC),
  reset_token = ProtoField.bytes("opensrd.reset_token", "Reset token"),
  cookie = ProtoField.bytes("opensrd.cookie", "Cookie"),
  -- NACK
  reason = ProtoField.uint8("opensrd.reason", "Reason", base.DEC, nack_reasons),
  pad = ProtoField.bytes("opensrd.pad", "Padding"),
  -- RESET
  addressed_incarnation = ProtoField.uint32("opensrd.addressed_incarnation",
                                            "Addressed incarnation", base.HEX),
  -- RESET (16 bytes) and PATH_CHALLENGE / PATH_RESPONSE (8 bytes)
  token = ProtoField.bytes("opensrd.token", "Token"),
  -- trailers
  crc32c = ProtoField.uint32("opensrd.crc32c", "CRC32C", base.HEX),
  crc32c_status = ProtoField.uint8("opensrd.crc32c.status", "CRC32C status", base.DEC,
                                   { [0] = "Bad", [1] = "Good", [2] = "Unverified" }),
  nonce = ProtoField.bytes("opensrd.nonce", "Cluster-key nonce"),
  tag = ProtoField.bytes("opensrd.tag", "Cluster-key tag"),
  ciphertext = ProtoField.bytes("opensrd.ciphertext", "Encrypted (cluster key, AEAD)"),
}
-- The block protocol (storage adapter <-> bridge), one SRD message each.
local block_types = {
  [1] = "ATTACH", [2] = "ATTACH_REPLY", [3] = "IO", [4] = "IO_REPLY", [5] = "RESIZE",
  [6] = "RESIZE_REPLY", [7] = "INFO",
}
local block_ops = { [0] = "READ", [1] = "WRITE", [2] = "FLUSH", [3] = "DISCARD",
                    [4] = "WRITE_ZEROES" }
local block_status = {
  [0] = "ok", [1] = "invalid", [2] = "I/O error", [3] = "no space", [4] = "read-only",
  [5] = "not attached", [6] = "not supported", [7] = "access denied", [8] = "no such volume",
  [9] = "malformed",
}
local bf = {
  magic = ProtoField.uint16("opensrd.block.magic", "Magic", base.HEX),
  version = ProtoField.uint8("opensrd.block.version", "Version", base.DEC),
  type = ProtoField.uint8("opensrd.block.type", "Type", base.DEC, block_types),
  handle = ProtoField.uint32("opensrd.block.handle", "Handle", base.HEX),
  request_id = ProtoField.uint64("opensrd.block.request_id", "Request id", base.DEC),
  offset = ProtoField.uint64("opensrd.block.offset", "Offset", base.DEC),
  length = ProtoField.uint32("opensrd.block.length", "Length", base.DEC),
  op = ProtoField.uint8("opensrd.block.op", "Operation", base.DEC, block_ops),
  flags = ProtoField.uint8("opensrd.block.flags", "Flags", base.HEX),
  queue = ProtoField.uint16("opensrd.block.queue", "Queue", base.DEC),
  sequence = ProtoField.uint64("opensrd.block.sequence", "Write sequence", base.DEC),
  status = ProtoField.uint8("opensrd.block.status", "Status", base.DEC, block_status),
  name_len = ProtoField.uint16("opensrd.block.name_len", "Name length", base.DEC),
  token_len = ProtoField.uint16("opensrd.block.token_len", "Token length", base.DEC),
  session = ProtoField.uint64("opensrd.block.session", "Session", base.HEX),
  new_size = ProtoField.uint64("opensrd.block.new_size", "New size", base.DEC),
  name = ProtoField.string("opensrd.block.name", "Volume"),
  token = ProtoField.bytes("opensrd.block.token", "Token"),
  msg_len = ProtoField.uint16("opensrd.block.msg_len", "Message length", base.DEC),
  block_size = ProtoField.uint32("opensrd.block.block_size", "Block size", base.DEC),
  size = ProtoField.uint64("opensrd.block.size", "Size", base.DEC),
  atomic_write_unit = ProtoField.uint32("opensrd.block.atomic_write_unit", "Atomic write unit",
                                        base.DEC),
  max_transfer = ProtoField.uint32("opensrd.block.max_transfer", "Max transfer", base.DEC),
  message = ProtoField.string("opensrd.block.message", "Message"),
  reserved = ProtoField.bytes("opensrd.block.reserved", "Reserved"),
}
for k, v in pairs(bf) do f["block_" .. k] = v end

local field_list = {}
for _, v in pairs(f) do field_list[#field_list + 1] = v end
p.fields = field_list

local ex = {
  bad_crc = ProtoExpert.new("opensrd.bad_checksum", "Bad CRC32C (bad_checksum)",
                            expert.group.CHECKSUM, expert.severity.ERROR),
  malformed = ProtoExpert.new("opensrd.malformed", "Malformed opensrd packet",
                              expert.group.MALFORMED, expert.severity.ERROR),
  retx = ProtoExpert.new("opensrd.retransmission", "Retransmission", expert.group.SEQUENCE,
                         expert.severity.NOTE),
  trailer = ProtoExpert.new("opensrd.key_trailer", "Cluster-key trailer (not verified)",
                            expert.group.SECURITY, expert.severity.CHAT),
}
p.experts = { ex.bad_crc, ex.malformed, ex.retx, ex.trailer }

local KEY_AUTO, KEY_AEAD = 0, 1
p.prefs.udp_port = Pref.uint("UDP port", 0,
                             "A UDP port to decode as opensrd (0: none; the heuristic still finds "
                             .. "opensrd on any port)")
p.prefs.verify_crc = Pref.bool("Verify CRC32C", true,
                               "Check every datagram's CRC32C (slow in Lua on big captures)")
p.prefs.key_mode = Pref.enum("Cluster key", KEY_AUTO,
                             "auto: plain, or MAC trailer recognised when the inner CRC verifies; "
                             .. "aead: everything after the common header is encrypted",
                             { { 1, "auto (plain or mac)", KEY_AUTO },
                               { 2, "aead", KEY_AEAD } }, false)

-- CRC32C (Castagnoli, reflected polynomial 0x82F63B78), table driven.
local crc_table = {}
for i = 0, 255 do
  local c = i
  for _ = 1, 8 do
    if band(c, 1) ~= 0 then c = bxor(rshift(c, 1), 0x82F63B78) else c = rshift(c, 1) end
  end
  crc_table[i] = c
end

local function crc32c(s)
  local crc = 0xFFFFFFFF
  local n = #s
  local i = 1
  while i <= n do
    local j = i + 255
    if j > n then j = n end
    local chunk = { s:byte(i, j) }
    for k = 1, #chunk do
      crc = bxor(crc_table[band(bxor(crc, chunk[k]), 0xFF)], rshift(crc, 8))
    end
    i = j + 1
  end
  return bxor(crc, 0xFFFFFFFF)
end

-- Serial-number comparison: a after b iff (int32)(a - b) > 0.
local function serial_after(a, b)
  local d = (a - b) % 4294967296
  return d ~= 0 and d < 2147483648
end

local function looks_like_opensrd(tvb, off)
  local avail = tvb:len() - off
  if avail < COMMON_LEN + CRC_LEN then return false end
  if tvb(off, 2):uint() ~= MAGIC or tvb(off + 2, 1):uint() ~= VERSION then return false end
  local t = tvb(off + 3, 1):uint()
  return t >= T_DATA and t <= T_PATH_RESPONSE
end

-- Length of the inner datagram (CRC included) starting at `off`, from its header, or nil when
-- the header does not say (too short to read the lengths).
local function inner_length(tvb, off)
  local avail = tvb:len() - off
  local t = tvb(off + 3, 1):uint()
  if fixed_len[t] then return fixed_len[t] end
  if t == T_ACK then
    if avail < COMMON_LEN + ACK_FIXED_LEN then return nil end
    return COMMON_LEN + ACK_FIXED_LEN + SACK_RANGE_LEN * tvb(off + 39, 1):uint() + CRC_LEN
  end
  -- DATA
  if avail < DATA_HDR_LEN then return nil end
  local header = DATA_HDR_LEN
  if band(tvb(off + 4, 1):uint(), FLAG_ACK) ~= 0 then
    if avail < DATA_HDR_LEN + ACK_FIXED_LEN then return nil end
    header = header + ACK_FIXED_LEN + SACK_RANGE_LEN * tvb(off + DATA_HDR_LEN + 11, 1):uint()
  end
  return header + tvb(off + 46, 2):uint() + CRC_LEN
end

-- Splits the UDP payload into opensrd datagrams: returns a list of {off, len, trailer}. One
-- datagram unless a GSO batch holds several; a datagram whose length the header cannot explain
-- takes the rest of the buffer (and is reported malformed by dissect_one).
local function split(tvb)
  local out = {}
  local total = tvb:len()
  local off = 0
  local aead = p.prefs.key_mode == KEY_AEAD
  while off < total do
    local rest = total - off
    local len = (not aead) and looks_like_opensrd(tvb, off) and inner_length(tvb, off) or nil
    local seg = { off = off, len = rest, trailer = false }
    if len and len <= rest then
      if len == rest then
        seg.len = len
      elseif looks_like_opensrd(tvb, off + len) then
        seg.len = len -- the next datagram of a GSO batch
      elseif len + KEY_TRAILER_LEN == rest or
             (len + KEY_TRAILER_LEN < rest and looks_like_opensrd(tvb, off + len + KEY_TRAILER_LEN)) then
        seg.len = len + KEY_TRAILER_LEN
        seg.trailer = true
      end
    end
    out[#out + 1] = seg
    off = off + seg.len
  end
  return out
end

local function malformed(item, pinfo, what)
  item:add_proto_expert_info(ex.malformed, "Malformed: " .. what)
end

-- Ack block at `off` (ACK's extension, or piggybacked on DATA); `avail` bytes before the CRC.
-- Returns the block's length, or nil if it is cut short.
local function dissect_ack_block(tvb, off, avail, tree, pinfo, info)
  local st = tree:add(p, tvb(off, math.min(avail, ACK_FIXED_LEN)), "Ack block")
  if avail < ACK_FIXED_LEN then
    malformed(st, pinfo, "too_short: ack block cut short")
    return nil
  end
  local cum = tvb(off, 4):uint()
  st:add(f.cum_psn, tvb(off, 4))
  st:add(f.echo_ts, tvb(off + 4, 4))
  st:add(f.ack_delay_us, tvb(off + 8, 2))
  st:add(f.echo_path, tvb(off + 10, 1))
  local n = tvb(off + 11, 1):uint()
  local ni = st:add(f.n_ranges, tvb(off + 11, 1))
  local parts = { "cum=" .. cum }
  if n > MAX_SACK_RANGES then
    malformed(ni, pinfo, "bad_field: more than 16 SACK ranges")
    return nil
  end
  local len = ACK_FIXED_LEN + SACK_RANGE_LEN * n
  if avail < len then
    malformed(ni, pinfo, "bad_length: ranges run past the datagram")
    return nil
  end
  st:set_len(len)
  local prev_end = nil
  for i = 0, n - 1 do
    local r = off + ACK_FIXED_LEN + SACK_RANGE_LEN * i
    local b, e = tvb(r, 4):uint(), tvb(r + 4, 4):uint()
    local ri = st:add(p, tvb(r, SACK_RANGE_LEN), string.format("Range %d: [%u, %u)", i, b, e))
    ri:add(f.range_begin, tvb(r, 4))
    ri:add(f.range_end, tvb(r + 4, 4))
    if not serial_after(e, b) then
      malformed(ri, pinfo, "bad_field: empty range (end not after begin)")
    elseif not serial_after(b, cum) then
      malformed(ri, pinfo, "bad_field: range not above cum_psn")
    elseif prev_end and not serial_after(b, prev_end) then
      malformed(ri, pinfo, "bad_field: ranges not ascending, disjoint and non-adjacent")
    end
    prev_end = e
    parts[#parts + 1] = string.format("[%u,%u)", b, e)
  end
  info[#info + 1] = table.concat(parts, " ")
  return len
end

-- Checks a fixed-length type; returns true if the length is right.
local function check_fixed(t, body, item, pinfo)
  if body + CRC_LEN ~= fixed_len[t] then
    malformed(item, pinfo, string.format("bad_length: %s is %d bytes, not %d", type_names[t],
                                         fixed_len[t], body + CRC_LEN))
    return false
  end
  return true
end

local function must_be_zero(tvb, off, len, field, tree, pinfo, what)
  local item = tree:add(field, tvb(off, len))
  for i = 0, len - 1 do
    if tvb(off + i, 1):uint() ~= 0 then
      malformed(item, pinfo, "bad_field: " .. what .. " not zero")
      return
    end
  end
end

local BLOCK_MAGIC = 0x4F42 -- "OB"

-- The block protocol message whose first `avail` bytes are at `off` (the first fragment of an
-- SRD message of `msg_len` bytes). Checks what the fragment lets it check: the type's fixed
-- length and the total length its fields imply against msg_len.
local function dissect_block(tvb, off, avail, msg_len, tree, pinfo, info)
  local bt = tree:add(p, tvb(off, avail), "Block protocol")
  bt:add(bf.magic, tvb(off, 2))
  bt:add(bf.version, tvb(off + 2, 1))
  local t = tvb(off + 3, 1):uint()
  local ti = bt:add(bf.type, tvb(off + 3, 1))
  local name = block_types[t]
  if not name then
    malformed(ti, pinfo, "block: unknown type")
    return
  end
  bt:append_text(": " .. name)
  local fixed = ({ 32, 40, 48, 32, 32, 32, 24 })[t]
  if avail < fixed then
    malformed(bt, pinfo, string.format("block: %s needs %d bytes, the fragment has %d", name,
                                       fixed, avail))
    return
  end
  local x = off
  local function u8(o) return tvb(x + o, 1):uint() end
  local function u16(o) return tvb(x + o, 2):uint() end
  local function u32(o) return tvb(x + o, 4):uint() end
  local total -- the message length the fields imply
  local summary = "block " .. name
  if t == 3 then -- IO
    bt:add(bf.handle, tvb(x + 4, 4))
    bt:add(bf.request_id, tvb(x + 8, 8))
    bt:add(bf.offset, tvb(x + 16, 8))
    bt:add(bf.length, tvb(x + 24, 4))
    local op = u8(28)
    local oi = bt:add(bf.op, tvb(x + 28, 1))
    local fi = bt:add(bf.flags, tvb(x + 29, 1))
    bt:add(bf.queue, tvb(x + 30, 2))
    bt:add(bf.sequence, tvb(x + 32, 8))
    bt:add(bf.reserved, tvb(x + 40, 8))
    if not block_ops[op] then malformed(oi, pinfo, "block: unknown op") end
    if band(u8(29), 0xF8) ~= 0 then malformed(fi, pinfo, "block: unknown IO flags") end
    total = 48 + (op == 1 and u32(24) or 0)
    summary = string.format("block IO %s off=%s len=%u", block_ops[op] or "?",
                            tostring(tvb(x + 16, 8):uint64()), u32(24))
  elseif t == 4 then -- IO_REPLY
    bt:add(bf.handle, tvb(x + 4, 4))
    bt:add(bf.request_id, tvb(x + 8, 8))
    bt:add(bf.status, tvb(x + 16, 1))
    bt:add(bf.reserved, tvb(x + 17, 3))
    bt:add(bf.length, tvb(x + 20, 4))
    bt:add(bf.reserved, tvb(x + 24, 8))
    total = 32 + u32(20)
    summary = string.format("block IO_REPLY %s len=%u", block_status[u8(16)] or "?", u32(20))
  elseif t == 1 or t == 5 then -- ATTACH, RESIZE
    bt:add(bf.name_len, tvb(x + 4, 2))
    bt:add(bf.token_len, tvb(x + 6, 2))
    bt:add(bf.request_id, tvb(x + 8, 8))
    bt:add(t == 1 and bf.session or bf.new_size, tvb(x + 16, 8))
    bt:add(bf.reserved, tvb(x + 24, 8))
    local nl, tl = u16(4), u16(6)
    if nl < 1 or nl > 255 or tl > 255 then
      malformed(bt, pinfo, "block: name_len not in 1..255 or token_len above 255")
    end
    if avail >= 32 + nl then bt:add(bf.name, tvb(x + 32, nl)) end
    if tl > 0 and avail >= 32 + nl + tl then bt:add(bf.token, tvb(x + 32 + nl, tl)) end
    total = 32 + nl + tl
  elseif t == 2 then -- ATTACH_REPLY
    bt:add(bf.handle, tvb(x + 4, 4))
    bt:add(bf.request_id, tvb(x + 8, 8))
    bt:add(bf.status, tvb(x + 16, 1))
    bt:add(bf.flags, tvb(x + 17, 1))
    bt:add(bf.msg_len, tvb(x + 18, 2))
    bt:add(bf.block_size, tvb(x + 20, 4))
    bt:add(bf.size, tvb(x + 24, 8))
    bt:add(bf.atomic_write_unit, tvb(x + 32, 4))
    bt:add(bf.max_transfer, tvb(x + 36, 4))
    local ml = u16(18)
    if ml > 0 and avail >= 40 + ml then bt:add(bf.message, tvb(x + 40, ml)) end
    total = 40 + ml
    summary = "block ATTACH_REPLY " .. (block_status[u8(16)] or "?")
  elseif t == 6 then -- RESIZE_REPLY
    bt:add(bf.msg_len, tvb(x + 4, 2))
    bt:add(bf.reserved, tvb(x + 6, 2))
    bt:add(bf.request_id, tvb(x + 8, 8))
    bt:add(bf.status, tvb(x + 16, 1))
    bt:add(bf.reserved, tvb(x + 17, 7))
    bt:add(bf.size, tvb(x + 24, 8))
    local ml = u16(4)
    if ml > 0 and avail >= 32 + ml then bt:add(bf.message, tvb(x + 32, ml)) end
    total = 32 + ml
    summary = "block RESIZE_REPLY " .. (block_status[u8(16)] or "?")
  else -- INFO
    bt:add(bf.handle, tvb(x + 4, 4))
    bt:add(bf.size, tvb(x + 8, 8))
    bt:add(bf.reserved, tvb(x + 16, 8))
    total = 24
  end
  if total ~= msg_len then
    malformed(bt, pinfo, string.format("block: %s of %d bytes by its fields, the SRD message has %d",
                                       name, total, msg_len))
  end
  info[#info + 1] = summary
end

-- One opensrd datagram at seg.off (seg.len bytes, the key trailer included if seg.trailer).
-- Returns a short summary for the Info column.
local function dissect_one(tvb, seg, pinfo, tree)
  local off, n = seg.off, seg.len
  local ti = tree:add(p, tvb(off, n))
  local info = {}
  if n < COMMON_LEN + CRC_LEN then
    malformed(ti, pinfo, "too_short: " .. n .. " bytes")
    return "opensrd (too short)"
  end
  local t = tvb(off + 3, 1):uint()
  local tname = type_names[t] or string.format("type %d", t)
  ti:append_text(", " .. tname)
  local mi = ti:add(f.magic, tvb(off, 2))
  if tvb(off, 2):uint() ~= MAGIC then
    malformed(mi, pinfo, "bad_magic")
    return "opensrd (bad magic)"
  end
  local vi = ti:add(f.version, tvb(off + 2, 1))
  if tvb(off + 2, 1):uint() ~= VERSION then malformed(vi, pinfo, "bad_version") end
  local tyi = ti:add(f.type, tvb(off + 3, 1))
  if not type_names[t] then
    malformed(tyi, pinfo, "bad_type")
    return "opensrd " .. tname
  end
  local flags = tvb(off + 4, 1):uint()
  local fi = ti:add(f.flags, tvb(off + 4, 1))
  fi:add(f.flag_probe, tvb(off + 4, 1))
  fi:add(f.flag_in_order, tvb(off + 4, 1))
  fi:add(f.flag_retx, tvb(off + 4, 1))
  fi:add(f.flag_ack, tvb(off + 4, 1))
  fi:add(f.flag_dup_seen, tvb(off + 4, 1))
  fi:add(f.flag_retx_dup, tvb(off + 4, 1))
  ti:add(f.path_id, tvb(off + 5, 1))
  must_be_zero(tvb, off + 6, 2, f.reserved, ti, pinfo, "reserved bytes 6-7")
  ti:add(f.dst_ctx, tvb(off + 8, 4))
  ti:add(f.src_ctx, tvb(off + 12, 4))
  ti:add(f.src_incarnation, tvb(off + 16, 4))
  ti:add(f.dst_incarnation, tvb(off + 20, 4))
  ti:add(f.tx_ts, tvb(off + 24, 4))
  ti:append_text(string.format(", path %d, ctx %d -> %d", tvb(off + 5, 1):uint(),
                               tvb(off + 12, 4):uint(), tvb(off + 8, 4):uint()))

  local inner = seg.trailer and n - KEY_TRAILER_LEN or n
  if n > MAX_DATAGRAM then malformed(ti, pinfo, "bad_length: larger than 65507 bytes") end

  if p.prefs.key_mode == KEY_AEAD then
    -- Everything after the common header is ciphertext, then nonce and tag.
    if n >= COMMON_LEN + KEY_TRAILER_LEN then
      local ct = n - COMMON_LEN - KEY_TRAILER_LEN
      if ct > 0 then ti:add(f.ciphertext, tvb(off + COMMON_LEN, ct)) end
      ti:add(f.nonce, tvb(off + n - KEY_TRAILER_LEN, 16))
      ti:add(f.tag, tvb(off + n - 16, 16))
    else
      malformed(ti, pinfo, "too_short: no room for the cluster-key trailer")
    end
    return tname .. " (encrypted)"
  end

  -- The CRC trailer of the inner datagram.
  local body = inner - CRC_LEN
  local crc_off = off + body
  local ci = ti:add(f.crc32c, tvb(crc_off, 4))
  if p.prefs.verify_crc then
    local want = crc32c(tvb:raw(off, body))
    if want == tvb(crc_off, 4):uint() then
      ci:append_text(" [correct]")
      ti:add(f.crc32c_status, 1):set_generated()
    else
      ci:append_text(string.format(" [incorrect, should be 0x%08x]", want))
      ti:add(f.crc32c_status, 0):set_generated()
      ci:add_proto_expert_info(ex.bad_crc)
      info[#info + 1] = "[BAD CRC]"
    end
  else
    ti:add(f.crc32c_status, 2):set_generated()
  end
  if seg.trailer then
    local tr = ti:add(p, tvb(off + inner, KEY_TRAILER_LEN), "Cluster-key trailer")
    tr:add(f.nonce, tvb(off + inner, 16))
    tr:add(f.tag, tvb(off + inner + 16, 16))
    tr:add_proto_expert_info(ex.trailer)
  end

  local x = off + COMMON_LEN -- start of the type extension
  if t == T_DATA then
    if body < DATA_HDR_LEN then
      malformed(ti, pinfo, "too_short: DATA header cut short")
    else
      local psn = tvb(x, 4):uint()
      ti:add(f.psn, tvb(x, 4))
      ti:add(f.msg_id, tvb(x + 4, 4))
      ti:add(f.msg_len, tvb(x + 8, 4))
      ti:add(f.offset, tvb(x + 12, 4))
      ti:add(f.sq_id, tvb(x + 16, 2))
      local pli = ti:add(f.payload_len, tvb(x + 18, 2))
      ti:add(f.sq_seq, tvb(x + 20, 4))
      local msg_len, foff, plen = tvb(x + 8, 4):uint(), tvb(x + 12, 4):uint(),
                                  tvb(x + 18, 2):uint()
      info[#info + 1] = string.format("psn=%u msg=%u off=%u len=%u", psn, tvb(x + 4, 4):uint(),
                                      foff, plen)
      if band(flags, FLAG_RETX) ~= 0 then
        info[#info + 1] = "[RETX]"
        ti:add_proto_expert_info(ex.retx)
      end
      local header = DATA_HDR_LEN
      local ok = true
      if band(flags, FLAG_ACK) ~= 0 then
        local a = dissect_ack_block(tvb, off + DATA_HDR_LEN, body - DATA_HDR_LEN, ti, pinfo, info)
        if a then header = header + a else ok = false end
      end
      if ok then
        if body ~= header + plen then
          malformed(pli, pinfo, string.format(
            "bad_length: header + payload_len is %d bytes, the datagram has %d before its CRC",
            header + plen, body))
        else
          if plen > 0 then ti:add(f.payload, tvb(off + header, plen)) end
          if foff == 0 and plen >= 4 and tvb(off + header, 2):uint() == BLOCK_MAGIC and
             tvb(off + header + 2, 1):uint() == 1 then
            dissect_block(tvb, off + header, plen, msg_len, ti, pinfo, info)
          end
          if foff + plen > msg_len then
            malformed(pli, pinfo, "bad_field: offset + payload_len past msg_len")
          elseif plen == 0 and msg_len ~= 0 then
            malformed(pli, pinfo, "bad_field: empty fragment of a non-empty message")
          end
        end
      end
    end
  elseif t == T_ACK then
    if body < COMMON_LEN + ACK_FIXED_LEN then
      malformed(ti, pinfo, "too_short: ACK cut short")
    else
      local a = dissect_ack_block(tvb, x, body - COMMON_LEN, ti, pinfo, info)
      if a and body ~= COMMON_LEN + a then
        malformed(ti, pinfo, "bad_length: ACK length disagrees with n_ranges")
      end
      if band(flags, FLAG_PROBE) ~= 0 then info[#info + 1] = "[probe reply]" end
    end
  elseif t == T_HELLO or t == T_HELLO_ACK then
    if check_fixed(t, body, ti, pinfo) then
      ti:add(f.node_id, tvb(x, 8))
      local np = tvb(x + 8, 2):uint()
      local npi = ti:add(f.num_paths, tvb(x + 8, 2))
      local mpi = ti:add(f.max_payload, tvb(x + 10, 2))
      ti:add(f.generation, tvb(x + 12, 4))
      ti:add(f.echo_generation, tvb(x + 16, 4))
      local w = tvb(x + 20, 4):uint()
      local wi = ti:add(f.window_packets, tvb(x + 20, 4))
      ti:add(f.reset_token, tvb(x + 24, 16))
      ti:add(f.cookie, tvb(x + 40, 24))
      if np < 1 or np > 256 then malformed(npi, pinfo, "bad_field: num_paths not in 1..256") end
      if tvb(x + 10, 2):uint() < 64 then malformed(mpi, pinfo, "bad_field: max_payload < 64") end
      if w < 64 or w > 1048576 or band(w, w - 1) ~= 0 then
        malformed(wi, pinfo, "bad_field: window_packets not a power of two in 64..2^20")
      end
      if tvb(off + 12, 4):uint() == 0 or tvb(off + 16, 4):uint() == 0 then
        malformed(ti, pinfo, "bad_field: src_ctx and src_incarnation must be non-zero")
      end
      info[#info + 1] = string.format("node=%s gen=%u paths=%u", tostring(tvb(x, 8):uint64():tohex()),
                                      tvb(x + 12, 4):uint(), np)
    end
  elseif t == T_PROBE then
    check_fixed(t, body, ti, pinfo)
  elseif t == T_NACK then
    if check_fixed(t, body, ti, pinfo) then
      ti:add(f.psn, tvb(x, 4))
      local r = tvb(x + 4, 1):uint()
      local ri = ti:add(f.reason, tvb(x + 4, 1))
      if not nack_reasons[r] then malformed(ri, pinfo, "bad_field: unknown NACK reason") end
      must_be_zero(tvb, x + 5, 3, f.pad, ti, pinfo, "NACK padding")
      info[#info + 1] = string.format("psn=%u %s", tvb(x, 4):uint(), nack_reasons[r] or "?")
    end
  elseif t == T_RESET then
    if check_fixed(t, body, ti, pinfo) then
      ti:add(f.addressed_incarnation, tvb(x, 4))
      must_be_zero(tvb, x + 4, 4, f.reserved, ti, pinfo, "RESET reserved bytes")
      ti:add(f.token, tvb(x + 8, 16))
      info[#info + 1] = string.format("addressed_incarnation=0x%08x", tvb(x, 4):uint())
    end
  elseif t == T_RETRY then
    if check_fixed(t, body, ti, pinfo) then
      ti:add(f.cookie, tvb(x, 24))
      if tvb(off + 8, 4):uint() == 0 or tvb(off + 20, 4):uint() == 0 then
        malformed(ti, pinfo, "bad_field: RETRY needs dst_ctx and dst_incarnation")
      end
    end
  elseif t == T_PATH_CHALLENGE or t == T_PATH_RESPONSE then
    if check_fixed(t, body, ti, pinfo) then
      ti:add(f.token, tvb(x, 8))
      info[#info + 1] = "token=" .. tostring(tvb(x, 8):bytes():tohex())
    end
  end
  if band(flags, FLAG_DUP_SEEN) ~= 0 then info[#info + 1] = "[dup seen]" end
  if band(flags, FLAG_RETX_DUP) ~= 0 then info[#info + 1] = "[retx dup]" end
  return tname .. (#info > 0 and (" " .. table.concat(info, " ")) or "")
end

function p.dissector(tvb, pinfo, tree)
  if tvb:len() == 0 then return 0 end
  pinfo.cols.protocol = "opensrd"
  if tvb:captured_len() < tvb:reported_length_remaining() then
    -- Cut by the capture's snap length: lengths and the CRC cannot be checked; show what is
    -- there of the first datagram's common header.
    local ti = tree:add(p, tvb(0, tvb:captured_len()), "opensrd (capture cut short)")
    if tvb:captured_len() >= COMMON_LEN then
      ti:add(f.type, tvb(3, 1))
      ti:add(f.flags, tvb(4, 1))
      ti:add(f.path_id, tvb(5, 1))
      ti:add(f.dst_ctx, tvb(8, 4))
      ti:add(f.src_ctx, tvb(12, 4))
      ti:add(f.tx_ts, tvb(24, 4))
    end
    ti:add(f.crc32c_status, 2):set_generated()
    local t = tvb:captured_len() >= 4 and type_names[tvb(3, 1):uint()] or nil
    pinfo.cols.info = (t or "?") .. " [capture cut short]"
    return tvb:captured_len()
  end
  local segs = split(tvb)
  local summaries = {}
  for _, seg in ipairs(segs) do
    summaries[#summaries + 1] = dissect_one(tvb, seg, pinfo, tree)
  end
  local text = table.concat(summaries, " | ")
  if #segs > 1 then text = string.format("[%d datagrams, GSO] ", #segs) .. text end
  pinfo.cols.info = text
  return tvb:len()
end

local function heuristic(tvb, pinfo, tree)
  if not looks_like_opensrd(tvb, 0) then return false end
  p.dissector(tvb, pinfo, tree)
  return true
end

p:register_heuristic("udp", heuristic)

local udp_table = DissectorTable.get("udp.port")
udp_table:add_for_decode_as(p)
local registered_port = 0
function p.prefs_changed()
  if registered_port ~= 0 then udp_table:remove(registered_port, p) end
  registered_port = p.prefs.udp_port
  if registered_port ~= 0 then udp_table:add(registered_port, p) end
end
