#include "rdma/header_table.h"

#include <cstring>
#include <string>
#include <vector>

namespace opensrd::rdma {
namespace {

Status Malformed(std::string_view token, const ProtocolTables& t, std::string_view what) {
  std::string m(token);
  m += ": ";
  m += t.name;
  if (!what.empty()) {
    m += " ";
    m += what;
  }
  return Status(Code::kMalformed, std::move(m));
}

size_t FieldBytes(const FieldDescriptor& f) {
  return (f.bit_offset + f.width + 7u) / 8u;
}

uint64_t Mask(uint8_t width) {
  return width >= 64 ? ~uint64_t{0} : (uint64_t{1} << width) - 1;
}

bool SetFlag(RdmaCommand& c, uint8_t flag, uint64_t v) {
  if (v) c.flags |= flag;
  return true;
}

// Stores a decoded value; the tables guarantee widths fit the command's members.
void Apply(RdmaCommand& c, CommandField f, uint64_t v) {
  switch (f) {
    case CommandField::kReserved:
    case CommandField::kConstant:
    case CommandField::kWireOpcode:
      break;
    case CommandField::kSolicited:
      SetFlag(c, kFlagSolicited, v);
      break;
    case CommandField::kAckRequest:
      SetFlag(c, kFlagAckRequest, v);
      break;
    case CommandField::kMigReq:
      SetFlag(c, kFlagMigReq, v);
      break;
    case CommandField::kLastFlag:
      SetFlag(c, kFlagLast, v);
      break;
    case CommandField::kPadCount:
      c.pad_count = static_cast<uint8_t>(v);
      break;
    case CommandField::kPkey:
      c.pkey = static_cast<uint16_t>(v);
      break;
    case CommandField::kDestQp:
      c.dest_qp = static_cast<uint32_t>(v);
      break;
    case CommandField::kSrcQp:
      c.src_qp = static_cast<uint32_t>(v);
      break;
    case CommandField::kPsn:
      c.psn = static_cast<uint32_t>(v);
      break;
    case CommandField::kMsn:
      c.msn = static_cast<uint32_t>(v);
      break;
    case CommandField::kVa:
      c.va = v;
      break;
    case CommandField::kRkey:
      c.rkey = static_cast<uint32_t>(v);
      break;
    case CommandField::kDmaLength:
      c.dma_length = static_cast<uint32_t>(v);
      break;
    case CommandField::kImm:
      c.imm = static_cast<uint32_t>(v);
      break;
    case CommandField::kInvalidateRkey:
      c.invalidate_rkey = static_cast<uint32_t>(v);
      break;
    case CommandField::kSwapAdd:
      c.swap_add = v;
      break;
    case CommandField::kCompare:
      c.compare = v;
      break;
    case CommandField::kAtomicOrig:
      c.atomic_orig = v;
      break;
    case CommandField::kSyndrome:
      c.syndrome = static_cast<uint8_t>(v);
      break;
    case CommandField::kMessageOffset:
      c.message_offset = static_cast<uint32_t>(v);
      break;
    case CommandField::kSinkStag:
      c.sink_stag = static_cast<uint32_t>(v);
      break;
    case CommandField::kSinkTo:
      c.sink_to = v;
      break;
    case CommandField::kTermLayer:
      c.term_layer = static_cast<uint8_t>(v);
      break;
    case CommandField::kTermEType:
      c.term_etype = static_cast<uint8_t>(v);
      break;
    case CommandField::kTermCode:
      c.term_code = static_cast<uint8_t>(v);
      break;
    case CommandField::kTermHdrCt:
      c.term_hdrct = static_cast<uint8_t>(v);
      break;
  }
}

// The value a field takes when `c` is encoded with `layout`.
uint64_t Extract(const RdmaCommand& c, const ProtocolTables& t, const OpcodeLayout& layout,
                 const FieldDescriptor& f) {
  switch (f.field) {
    case CommandField::kReserved:
      return 0;
    case CommandField::kConstant:
      return f.constant;
    case CommandField::kWireOpcode:
      return layout.wire_opcode;
    case CommandField::kSolicited:
      return (c.flags & kFlagSolicited) != 0;
    case CommandField::kAckRequest:
      return (c.flags & kFlagAckRequest) != 0;
    case CommandField::kMigReq:
      return (c.flags & kFlagMigReq) != 0;
    case CommandField::kLastFlag:
      return t.position_from_flags ? IsLast(c.opcode) : (c.flags & kFlagLast) != 0;
    case CommandField::kPadCount:
      return c.pad_count;
    case CommandField::kPkey:
      return c.pkey;
    case CommandField::kDestQp:
      return c.dest_qp;
    case CommandField::kSrcQp:
      return c.src_qp;
    case CommandField::kPsn:
      return c.psn;
    case CommandField::kMsn:
      return c.msn;
    case CommandField::kVa:
      return c.va;
    case CommandField::kRkey:
      return c.rkey;
    case CommandField::kDmaLength:
      return c.dma_length;
    case CommandField::kImm:
      return c.imm;
    case CommandField::kInvalidateRkey:
      return c.invalidate_rkey;
    case CommandField::kSwapAdd:
      return c.swap_add;
    case CommandField::kCompare:
      return c.compare;
    case CommandField::kAtomicOrig:
      return c.atomic_orig;
    case CommandField::kSyndrome:
      return c.syndrome;
    case CommandField::kMessageOffset:
      return c.message_offset;
    case CommandField::kSinkStag:
      return c.sink_stag;
    case CommandField::kSinkTo:
      return c.sink_to;
    case CommandField::kTermLayer:
      return c.term_layer;
    case CommandField::kTermEType:
      return c.term_etype;
    case CommandField::kTermCode:
      return c.term_code;
    case CommandField::kTermHdrCt:
      return c.term_hdrct;
  }
  return 0;
}

uint8_t EffectiveFlags(const RdmaCommand& c) {
  return c.flags | (IsInvalidate(c.opcode) ? kFlagInvalidate : 0);
}

const OpcodeLayout* FindForEncode(const ProtocolTables& t, const RdmaCommand& c) {
  uint8_t flags = EffectiveFlags(c);
  // Where the position is in header flags, only the plain forms of a family exist (no
  // immediates): the opcode must be what its family, position and invalidate flag compose.
  if (t.position_from_flags && Family(c.opcode) != OpcodeFamily::kSingle &&
      Compose(Family(c.opcode), IsFirst(c.opcode), IsLast(c.opcode),
              (flags & kFlagInvalidate) != 0) != c.opcode) {
    return nullptr;
  }
  for (const OpcodeLayout& l : t.layouts) {
    bool match = t.position_from_flags
                     ? Family(l.opcode) == Family(c.opcode) &&
                           (Family(c.opcode) != OpcodeFamily::kSingle || l.opcode == c.opcode)
                     : l.opcode == c.opcode;
    if (match && (flags & l.flags_mask) == l.flags_set) return &l;
  }
  return nullptr;
}

size_t LayoutLength(const ProtocolTables& t, const OpcodeLayout& l) {
  size_t n = 0;
  for (size_t i = 0; i < l.header_count; ++i) n += t.headers[l.headers[i]].length;
  return n;
}

}  // namespace

uint64_t ReadField(std::span<const uint8_t> header, const FieldDescriptor& f) {
  size_t n = FieldBytes(f);
  uint64_t v = 0;
  for (size_t i = 0; i < n; ++i) v = (v << 8) | header[f.byte_offset + i];
  // n*8 - bit_offset - width bits of the last byte belong to later fields.
  v >>= n * 8 - f.bit_offset - f.width;
  return v & Mask(f.width);
}

void WriteField(std::span<uint8_t> header, const FieldDescriptor& f, uint64_t value) {
  size_t n = FieldBytes(f);
  unsigned shift = static_cast<unsigned>(n * 8 - f.bit_offset - f.width);
  uint64_t mask = Mask(f.width) << shift;
  uint64_t v = (value << shift) & mask;
  for (size_t i = 0; i < n; ++i) {
    unsigned s = static_cast<unsigned>((n - 1 - i) * 8);
    uint8_t m = static_cast<uint8_t>(mask >> s);
    uint8_t& b = header[f.byte_offset + i];
    b = static_cast<uint8_t>((b & ~m) | (static_cast<uint8_t>(v >> s) & m));
  }
}

Result<RdmaCommand> DecodeHeaders(const ProtocolTables& t, std::span<const uint8_t> bytes) {
  if (bytes.size() < t.opcode_field.byte_offset + FieldBytes(t.opcode_field)) {
    return Malformed("too_short", t, "no room for the opcode");
  }
  uint64_t wire = ReadField(bytes, t.opcode_field);
  const OpcodeLayout* layout = nullptr;
  for (const OpcodeLayout& l : t.layouts) {
    if (l.wire_opcode == wire) {
      layout = &l;
      break;
    }
  }
  if (layout == nullptr) return Malformed("bad_opcode", t, "opcode " + std::to_string(wire));

  RdmaCommand c;
  c.opcode = layout->opcode;
  c.flags = layout->flags_set;
  bool first = false;
  size_t off = 0;
  for (size_t h = 0; h < layout->header_count; ++h) {
    const HeaderTable& table = t.headers[layout->headers[h]];
    if (bytes.size() - off < table.length) return Malformed("too_short", t, table.name);
    std::span<const uint8_t> hdr = bytes.subspan(off, table.length);
    for (const FieldDescriptor& f : table.fields) {
      uint64_t v = ReadField(hdr, f);
      if (f.field == CommandField::kConstant && v != f.constant) {
        return Malformed("bad_field", t,
                         std::string(table.name) + "." + std::string(f.name) + " = " +
                             std::to_string(v) + ", expected " + std::to_string(f.constant));
      }
      if (t.position_from_flags && f.field == t.first_field) first = (v == 0);
      Apply(c, f.field, v);
    }
    off += table.length;
  }
  c.payload = bytes.subspan(off);
  if (!layout->payload && !c.payload.empty()) {
    return Malformed("unexpected_payload", t,
                     std::string(OpcodeName(c.opcode)) + " carries " +
                         std::to_string(c.payload.size()) + " bytes");
  }

  OpcodeFamily family = Family(c.opcode);
  if (t.position_from_flags && family != OpcodeFamily::kSingle) {
    bool last = (c.flags & kFlagLast) != 0;
    c.opcode = Compose(family, first, last, (c.flags & kFlagInvalidate) != 0);
  }
  if (IsFirst(c.opcode)) c.flags |= kFlagFirst;
  if (IsLast(c.opcode)) c.flags |= kFlagLast;
  if (IsInvalidate(c.opcode)) c.flags |= kFlagInvalidate;
  if (t.refine != nullptr && !t.refine(c)) {
    return Malformed("bad_field", t, std::string(OpcodeName(c.opcode)) + " refused by the codec");
  }
  return c;
}

size_t EncodedHeaderLength(const ProtocolTables& t, const RdmaCommand& cmd) {
  const OpcodeLayout* l = FindForEncode(t, cmd);
  return l == nullptr ? 0 : LayoutLength(t, *l);
}

Result<size_t> EncodeHeaders(const ProtocolTables& t, const RdmaCommand& cmd,
                             std::span<uint8_t> out) {
  const OpcodeLayout* layout = FindForEncode(t, cmd);
  if (layout == nullptr) {
    return Status(Code::kInvalidArgument,
                  std::string(t.name) + " has no opcode for " + OpcodeName(cmd.opcode));
  }
  size_t total = LayoutLength(t, *layout);
  if (out.size() < total) return Status(Code::kInvalidArgument, "output buffer too small");
  if (!layout->payload && !cmd.payload.empty()) {
    return Status(Code::kInvalidArgument,
                  std::string(OpcodeName(cmd.opcode)) + " carries no payload");
  }
  std::memset(out.data(), 0, total);
  size_t off = 0;
  for (size_t h = 0; h < layout->header_count; ++h) {
    const HeaderTable& table = t.headers[layout->headers[h]];
    std::span<uint8_t> hdr = out.subspan(off, table.length);
    for (const FieldDescriptor& f : table.fields) {
      uint64_t v = Extract(cmd, t, *layout, f);
      if ((v & ~Mask(f.width)) != 0) {
        return Status(Code::kInvalidArgument, std::string(t.name) + " " + std::string(table.name) +
                                                  "." + std::string(f.name) + " does not fit " +
                                                  std::to_string(f.width) + " bits");
      }
      WriteField(hdr, f, v);
    }
    off += table.length;
  }
  return total;
}

Status ValidateTables(const ProtocolTables& t) {
  auto bad = [&](const std::string& what) {
    return Status(Code::kInvalidArgument, std::string(t.name) + " tables: " + what);
  };
  for (const HeaderTable& h : t.headers) {
    std::vector<uint8_t> seen(h.length * 8u, 0);
    for (const FieldDescriptor& f : h.fields) {
      if (f.width == 0 || f.width > 64 || f.bit_offset > 7 || FieldBytes(f) > 8) {
        return bad(std::string(h.name) + "." + std::string(f.name) + " has a bad shape");
      }
      size_t begin = f.byte_offset * 8u + f.bit_offset;
      if (begin + f.width > seen.size()) {
        return bad(std::string(h.name) + "." + std::string(f.name) + " overruns the header");
      }
      for (size_t b = begin; b < begin + f.width; ++b) {
        if (seen[b]++) return bad(std::string(h.name) + " bit " + std::to_string(b) + " twice");
      }
    }
    for (size_t b = 0; b < seen.size(); ++b) {
      if (!seen[b]) return bad(std::string(h.name) + " bit " + std::to_string(b) + " undescribed");
    }
  }
  for (const OpcodeLayout& l : t.layouts) {
    if (l.header_count == 0 || l.header_count > kMaxHeadersPerOpcode) {
      return bad(std::string("opcode ") + std::to_string(l.wire_opcode) + " header count");
    }
    for (size_t i = 0; i < l.header_count; ++i) {
      if (l.headers[i] >= t.headers.size()) {
        return bad(std::string("opcode ") + std::to_string(l.wire_opcode) + " header index");
      }
    }
    const HeaderTable& first = t.headers[l.headers[0]];
    if (t.opcode_field.byte_offset + FieldBytes(t.opcode_field) > first.length) {
      return bad("opcode field outside " + std::string(first.name));
    }
    bool has_opcode = false;
    for (const FieldDescriptor& f : first.fields) {
      if (f.field == CommandField::kWireOpcode) {
        has_opcode = f.byte_offset == t.opcode_field.byte_offset &&
                     f.bit_offset == t.opcode_field.bit_offset && f.width == t.opcode_field.width;
      }
    }
    if (!has_opcode) return bad(std::string(first.name) + " lacks the opcode field");
    if (l.wire_opcode > Mask(t.opcode_field.width)) return bad("wire opcode too wide");
  }
  return Status::Ok();
}

}  // namespace opensrd::rdma
