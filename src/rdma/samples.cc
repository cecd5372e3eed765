#include "rdma/samples.h"

#include <array>
#include <cstdint>

namespace opensrd::rdma {
namespace {

const std::array<uint8_t, 512>& PayloadBytes() {
  static const std::array<uint8_t, 512> bytes = [] {
    std::array<uint8_t, 512> b{};
    for (size_t i = 0; i < b.size(); ++i) b[i] = static_cast<uint8_t>(i * 7 + 3);
    return b;
  }();
  return bytes;
}

bool CarriesPayload(RdmaOpcode op) {
  return Family(op) != OpcodeFamily::kSingle || op == RdmaOpcode::kTerminate;
}

}  // namespace

std::vector<RdmaCommand> SampleCommands(ProtocolIndex index) {
  std::vector<RdmaCommand> out;
  const bool roce = index == ProtocolIndex::kRoce;
  const bool iwarp = index == ProtocolIndex::kIwarp;
  for (int i = 0; i < kRdmaOpcodeCount; ++i) {
    RdmaOpcode op = static_cast<RdmaOpcode>(i);
    if (op == RdmaOpcode::kTerminate && !iwarp) continue;
    if (iwarp && (HasImmediate(op) || op == RdmaOpcode::kAck || op == RdmaOpcode::kRnrNak ||
                  op == RdmaOpcode::kNak || op == RdmaOpcode::kCompareSwap ||
                  op == RdmaOpcode::kFetchAdd || op == RdmaOpcode::kAtomicAck)) {
      continue;  // RFC 5040 has no immediates, acknowledgements or atomics
    }
    RdmaCommand c;
    c.opcode = op;
    uint32_t n = static_cast<uint32_t>(i);
    c.dest_qp = iwarp ? 0 : 0x000100 + n;
    c.psn = iwarp ? 0 : (0xFFFFF0 + n) & 0xFFFFFF;  // crosses the 24-bit wrap
    c.msn = 0x10 + n;
    c.va = 0x00007F0012340000ull + n * 0x1000;
    c.rkey = 0xA5000000u + n;
    c.dma_length = 4096 + n;
    if (HasImmediate(op)) c.imm = 0xD00D0000u + n;
    if (IsInvalidate(op)) {
      c.invalidate_rkey = 0xBEEF0000u + n;
      c.flags |= kFlagInvalidate;
    }
    if (op == RdmaOpcode::kCompareSwap) {
      c.swap_add = 0x1111222233334444ull;
      c.compare = 0x5555666677778888ull;
    }
    if (op == RdmaOpcode::kFetchAdd) c.swap_add = 42;
    if (op == RdmaOpcode::kAtomicAck) c.atomic_orig = 0x0123456789ABCDEFull;
    if (op == RdmaOpcode::kAck) c.syndrome = 0x1F;          // ACK, credit code 31 (no credit limit)
    if (op == RdmaOpcode::kRnrNak) c.syndrome = 0x20 | 14;  // RNR timer code 14
    if (op == RdmaOpcode::kNak)
      c.syndrome = 0x60 | static_cast<uint8_t>(NakCode::kRemoteAccessError);
    if (Family(op) == OpcodeFamily::kReadResponse || op == RdmaOpcode::kAtomicAck) {
      c.syndrome = 0x1F;
    }
    if (op == RdmaOpcode::kReadRequest) {
      c.sink_stag = iwarp ? 0x5A000000u + n : 0;
      c.sink_to = iwarp ? 0x0000600000001000ull : 0;
    }
    if (op == RdmaOpcode::kTerminate) {
      c.term_layer = 0;  // RDMAP
      c.term_etype = 1;  // remote protection error
      c.term_code = 2;   // access rights violation
      c.term_hdrct = 0;
    }
    if (roce && IsLast(op)) c.flags |= kFlagAckRequest;
    if (roce && (op == RdmaOpcode::kSendOnlyImm || op == RdmaOpcode::kWriteOnlyImm)) {
      c.flags |= kFlagSolicited;
    }
    if (iwarp && Family(op) == OpcodeFamily::kSend && !IsFirst(op)) c.message_offset = 1000 + n;
    if (iwarp && (op == RdmaOpcode::kSendOnly)) c.flags |= kFlagSolicited;
    if (CarriesPayload(op)) {
      size_t len = (op == RdmaOpcode::kTerminate) ? 8 : 1 + (n * 37) % 97;  // every pad count
      c.payload = std::span<const uint8_t>(PayloadBytes().data() + n, len);
    }
    out.push_back(c);
  }
  return out;
}

}  // namespace opensrd::rdma
