// Table-driven header codec: the heart of the receive pipeline. A protocol is described as data
// (ProtocolTables): its headers as lists of bit fields that map to RdmaCommand fields, and for
// each wire opcode the headers that follow in order. One generic decoder and one encoder serve
// every protocol; adding a protocol means adding tables (plus a small codec for its framing and
// checksums), never touching this code. Tables are constexpr data; the codec is pure and
// thread-safe.
#pragma once
#include <cstddef>
#include <cstdint>
#include <span>
#include <string_view>

#include "common/status.h"
#include "rdma/command.h"
#include "rdma/protocol_index.h"

namespace opensrd::rdma {

// Where a header field's value goes in the command.
enum class CommandField : uint8_t {
  kReserved,    // sent as zero, ignored on receipt
  kConstant,    // sent as FieldDescriptor::constant; anything else on receipt is rejected
  kWireOpcode,  // the protocol's opcode number (OpcodeLayout::wire_opcode)
  kSolicited,   // 1-bit fields mapped to command flags
  kAckRequest,
  kMigReq,
  kLastFlag,
  kPadCount,
  kPkey,
  kDestQp,
  kSrcQp,
  kPsn,
  kMsn,
  kVa,
  kRkey,
  kDmaLength,
  kImm,
  kInvalidateRkey,
  kSwapAdd,
  kCompare,
  kAtomicOrig,
  kSyndrome,
  kMessageOffset,
  kSinkStag,
  kSinkTo,
  kTermLayer,
  kTermEType,
  kTermCode,
  kTermHdrCt,
};

// One field: `width` bits starting `bit_offset` bits (from the most significant bit) into the
// byte at `byte_offset` of its header, big-endian. A field spans at most 8 bytes.
struct FieldDescriptor {
  std::string_view name;  // as the specification names it (error messages, docs)
  CommandField field;
  uint16_t byte_offset;
  uint8_t bit_offset;
  uint8_t width;
  uint64_t constant = 0;  // kConstant only
};

struct HeaderTable {
  std::string_view name;
  uint16_t length;  // bytes; every bit is covered by exactly one field (ValidateTables)
  std::span<const FieldDescriptor> fields;
};

inline constexpr size_t kMaxHeadersPerOpcode = 4;

// Which headers a wire opcode carries, and what command it becomes.
struct OpcodeLayout {
  uint8_t wire_opcode;
  RdmaOpcode opcode;  // exact, or (ProtocolTables::position_from_flags) any of its family
  uint8_t header_count;
  uint8_t headers[kMaxHeadersPerOpcode];  // indices into ProtocolTables::headers, in wire order
  bool payload;                           // whether data may follow the headers
  // Flags the opcode itself implies (e.g. iWARP "Send with SE" sets kFlagSolicited): decoding
  // sets flags_set; encoding picks the layout whose (command flags & flags_mask) == flags_set.
  uint8_t flags_mask = 0;
  uint8_t flags_set = 0;
};

struct ProtocolTables {
  ProtocolIndex index;
  std::string_view name;
  // Where the wire opcode sits, relative to the first byte (always inside every first header).
  FieldDescriptor opcode_field;
  std::span<const HeaderTable> headers;
  std::span<const OpcodeLayout> layouts;  // on decode the first match of wire_opcode wins
  // false: the opcode names the segment position (InfiniBand). true: a header flag says "last"
  // (kLastFlag) and `first_field` being zero says "first" (iWARP DDP: L bit, MO == 0; tagged
  // segments have no MO and are never reported first).
  bool position_from_flags = false;
  CommandField first_field = CommandField::kReserved;
  // Optional final check and refinement of a decoded command (e.g. the AETH syndrome picks
  // ACK, RNR NAK or NAK); returns false to reject. Decoding only.
  bool (*refine)(RdmaCommand&) = nullptr;
};

// Decodes the headers at the start of `bytes`; the command's payload is everything after them
// (framing such as pad, ICRC or MPA CRC is the protocol codec's business). Errors have code
// kMalformed and a message starting with a stable token: "too_short", "bad_opcode",
// "bad_field", "unexpected_payload".
Result<RdmaCommand> DecodeHeaders(const ProtocolTables& tables, std::span<const uint8_t> bytes);

// Bytes of header the command's opcode needs (0 if the protocol has no layout for it).
size_t EncodedHeaderLength(const ProtocolTables& tables, const RdmaCommand& cmd);

// Writes the command's headers (not its payload) at the start of `out`; returns their length.
// kInvalidArgument if the protocol has no layout for the opcode, a value does not fit its
// field, or `out` is too small.
Result<size_t> EncodeHeaders(const ProtocolTables& tables, const RdmaCommand& cmd,
                             std::span<uint8_t> out);

// Checks a table set: every header's fields cover each of its bits exactly once and stay inside
// it, every layout names existing headers, and the opcode field lies inside each first header.
Status ValidateTables(const ProtocolTables& tables);

// Bit-field access used by the codec (exposed for tests and the protocol codecs).
uint64_t ReadField(std::span<const uint8_t> header, const FieldDescriptor& f);
void WriteField(std::span<uint8_t> header, const FieldDescriptor& f, uint64_t value);

}  // namespace opensrd::rdma
