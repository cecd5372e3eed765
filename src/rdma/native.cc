#include "rdma/native.h"

#include <cstring>
#include <string>

#include "rdma/protocol_index.h"

namespace opensrd::rdma::native {
namespace {

using F = CommandField;
using O = RdmaOpcode;

enum : uint8_t { kBase, kAtomic, kAtomicAck, kAckHdr, kInv };

constexpr FieldDescriptor kBaseFields[] = {
    {"Marker", F::kConstant, 0, 0, 8, kNativeMarker},
    {"Version", F::kConstant, 1, 0, 8, kVersion},
    {"OpCode", F::kWireOpcode, 2, 0, 8},
    {"SE", F::kSolicited, 3, 0, 1},
    {"A", F::kAckRequest, 3, 1, 1},
    {"Rsvd", F::kReserved, 3, 2, 6},
    {"DestQP", F::kDestQp, 4, 0, 32},
    {"SrcQP", F::kSrcQp, 8, 0, 32},
    {"ReqID", F::kMsn, 12, 0, 32},
    {"VA", F::kVa, 16, 0, 64},
    {"R_Key", F::kRkey, 24, 0, 32},
    {"Length", F::kDmaLength, 28, 0, 32},
    {"Imm", F::kImm, 32, 0, 32},
};
constexpr FieldDescriptor kAtomicFields[] = {
    {"SwapAdd", F::kSwapAdd, 0, 0, 64},
    {"Compare", F::kCompare, 8, 0, 64},
};
constexpr FieldDescriptor kAtomicAckFields[] = {{"Orig", F::kAtomicOrig, 0, 0, 64}};
constexpr FieldDescriptor kAckFields[] = {
    {"Syndrome", F::kSyndrome, 0, 0, 8},
    {"Rsvd", F::kReserved, 1, 0, 24},
};
constexpr FieldDescriptor kInvFields[] = {{"InvR_Key", F::kInvalidateRkey, 0, 0, 32}};

constexpr HeaderTable kHeaders[] = {
    {"native base", kBaseHeaderLen, kBaseFields}, {"native atomic", 16, kAtomicFields},
    {"native atomic ack", 8, kAtomicAckFields},   {"native ack", 4, kAckFields},
    {"native invalidate", 4, kInvFields},
};

constexpr uint8_t W(O o) {
  return static_cast<uint8_t>(o);
}
constexpr OpcodeLayout Data(O o) {
  return {W(o), o, 1, {kBase}, true};
}
constexpr OpcodeLayout Bare(O o) {
  return {W(o), o, 1, {kBase}, false};
}

constexpr OpcodeLayout kLayouts[] = {
    Data(O::kSendFirst),
    Data(O::kSendMiddle),
    Data(O::kSendLast),
    Data(O::kSendLastImm),
    {W(O::kSendLastInv), O::kSendLastInv, 2, {kBase, kInv}, true},
    Data(O::kSendOnly),
    Data(O::kSendOnlyImm),
    {W(O::kSendOnlyInv), O::kSendOnlyInv, 2, {kBase, kInv}, true},
    Data(O::kWriteFirst),
    Data(O::kWriteMiddle),
    Data(O::kWriteLast),
    Data(O::kWriteLastImm),
    Data(O::kWriteOnly),
    Data(O::kWriteOnlyImm),
    Bare(O::kReadRequest),
    Data(O::kReadResponseFirst),
    Data(O::kReadResponseMiddle),
    Data(O::kReadResponseLast),
    Data(O::kReadResponseOnly),
    {W(O::kAck), O::kAck, 2, {kBase, kAckHdr}, false},
    {W(O::kRnrNak), O::kRnrNak, 2, {kBase, kAckHdr}, false},
    {W(O::kNak), O::kNak, 2, {kBase, kAckHdr}, false},
    {W(O::kCompareSwap), O::kCompareSwap, 2, {kBase, kAtomic}, false},
    {W(O::kFetchAdd), O::kFetchAdd, 2, {kBase, kAtomic}, false},
    {W(O::kAtomicAck), O::kAtomicAck, 2, {kBase, kAtomicAck}, false},
};

constexpr ProtocolTables kTables{
    ProtocolIndex::kNative,
    "native",
    {"OpCode", F::kWireOpcode, 2, 0, 8},
    kHeaders,
    kLayouts,
    false,
    F::kReserved,
    nullptr,
};

}  // namespace

const ProtocolTables& Tables() {
  return kTables;
}

Result<std::vector<uint8_t>> Encode(const RdmaCommand& cmd) {
  size_t hlen = EncodedHeaderLength(kTables, cmd);
  if (hlen == 0) {
    return Status(Code::kInvalidArgument,
                  std::string("native has no opcode for ") + OpcodeName(cmd.opcode));
  }
  std::vector<uint8_t> out(hlen + cmd.payload.size());
  Result<size_t> n = EncodeHeaders(kTables, cmd, out);
  if (!n.ok()) return n.status();
  if (!cmd.payload.empty()) std::memcpy(out.data() + hlen, cmd.payload.data(), cmd.payload.size());
  return out;
}

Result<RdmaCommand> Decode(std::span<const uint8_t> message) {
  return DecodeHeaders(kTables, message);
}

}  // namespace opensrd::rdma::native
