#include "rdma/iwarp.h"

#include <cstring>
#include <string>

namespace opensrd::rdma::iwarp {
namespace {

using F = CommandField;
using O = RdmaOpcode;

enum : uint8_t { kTagged, kUntaggedSend, kUntaggedRead, kUntaggedTerm, kReadReq, kTerm };

// Every segment opens with the DDP control byte (RFC 5041 5.1: T, L, Rsvd, DV) and the byte DDP
// reserves for its ULP, RDMAP's control byte (RFC 5040 4.2: RV, Rsvd, OpCode).
// RFC 5041 4.2: tagged buffer header, 14 bytes.
constexpr FieldDescriptor kTaggedFields[] = {
    {"T", F::kConstant, 0, 0, 1, 1},
    {"L", F::kLastFlag, 0, 1, 1},
    {"DdpRsvd", F::kReserved, 0, 2, 4},
    {"DV", F::kConstant, 0, 6, 2, kDdpVersion},
    {"RV", F::kConstant, 1, 0, 2, kRdmapVersion},
    {"RdmapRsvd", F::kReserved, 1, 2, 2},
    {"OpCode", F::kWireOpcode, 1, 4, 4},
    {"STag", F::kRkey, 2, 0, 32},
    {"TO", F::kVa, 6, 0, 64},
};
// RFC 5041 4.3: untagged buffer header, 18 bytes; one table per RDMAP queue so the table checks
// the QN. Bytes 2-5 belong to RDMAP: the invalidate STag of Send with Invalidate. Read requests
// and terminates are single-segment messages (RFC 5040 4.4, 4.8): L = 1 and MO = 0.
constexpr FieldDescriptor kUntaggedSendFields[] = {
    {"T", F::kConstant, 0, 0, 1, 0},
    {"L", F::kLastFlag, 0, 1, 1},
    {"DdpRsvd", F::kReserved, 0, 2, 4},
    {"DV", F::kConstant, 0, 6, 2, kDdpVersion},
    {"RV", F::kConstant, 1, 0, 2, kRdmapVersion},
    {"RdmapRsvd", F::kReserved, 1, 2, 2},
    {"OpCode", F::kWireOpcode, 1, 4, 4},
    {"InvalidateSTag", F::kInvalidateRkey, 2, 0, 32},
    {"QN", F::kConstant, 6, 0, 32, kSendQueue},
    {"MSN", F::kMsn, 10, 0, 32},
    {"MO", F::kMessageOffset, 14, 0, 32},
};
constexpr FieldDescriptor kUntaggedReadFields[] = {
    {"T", F::kConstant, 0, 0, 1, 0},
    {"L", F::kConstant, 0, 1, 1, 1},  // one segment per message
    {"DdpRsvd", F::kReserved, 0, 2, 4},
    {"DV", F::kConstant, 0, 6, 2, kDdpVersion},
    {"RV", F::kConstant, 1, 0, 2, kRdmapVersion},
    {"RdmapRsvd", F::kReserved, 1, 2, 2},
    {"OpCode", F::kWireOpcode, 1, 4, 4},
    {"UlpRsvd", F::kReserved, 2, 0, 32},
    {"QN", F::kConstant, 6, 0, 32, kReadRequestQueue},
    {"MSN", F::kMsn, 10, 0, 32},
    {"MO", F::kConstant, 14, 0, 32, 0},
};
constexpr FieldDescriptor kUntaggedTermFields[] = {
    {"T", F::kConstant, 0, 0, 1, 0},
    {"L", F::kConstant, 0, 1, 1, 1},  // one segment per message
    {"DdpRsvd", F::kReserved, 0, 2, 4},
    {"DV", F::kConstant, 0, 6, 2, kDdpVersion},
    {"RV", F::kConstant, 1, 0, 2, kRdmapVersion},
    {"RdmapRsvd", F::kReserved, 1, 2, 2},
    {"OpCode", F::kWireOpcode, 1, 4, 4},
    {"UlpRsvd", F::kReserved, 2, 0, 32},
    {"QN", F::kConstant, 6, 0, 32, kTerminateQueue},
    {"MSN", F::kMsn, 10, 0, 32},
    {"MO", F::kConstant, 14, 0, 32, 0},
};

// RFC 5040 4.4: RDMA read request header, 28 bytes.
constexpr FieldDescriptor kReadReqFields[] = {
    {"SinkSTag", F::kSinkStag, 0, 0, 32},   {"SinkTO", F::kSinkTo, 4, 0, 64},
    {"RDMARDSZ", F::kDmaLength, 12, 0, 32}, {"SrcSTag", F::kRkey, 16, 0, 32},
    {"SrcTO", F::kVa, 20, 0, 64},
};
// RFC 5040 4.8: terminate control, 4 bytes (the offending headers follow as payload).
constexpr FieldDescriptor kTermFields[] = {
    {"Layer", F::kTermLayer, 0, 0, 4},    {"EType", F::kTermEType, 0, 4, 4},
    {"ErrorCode", F::kTermCode, 1, 0, 8}, {"HdrCt", F::kTermHdrCt, 2, 0, 3},
    {"Rsvd", F::kReserved, 2, 3, 13},
};

constexpr HeaderTable kHeaders[] = {
    {"DDP tagged", kTaggedHeaderLen, kTaggedFields},
    {"DDP untagged (send)", kUntaggedHeaderLen, kUntaggedSendFields},
    {"DDP untagged (read request)", kUntaggedHeaderLen, kUntaggedReadFields},
    {"DDP untagged (terminate)", kUntaggedHeaderLen, kUntaggedTermFields},
    {"RDMAP read request", kReadRequestLen, kReadReqFields},
    {"RDMAP terminate", kTerminateLen, kTermFields},
};

constexpr uint8_t R(RdmapOpcode o) {
  return static_cast<uint8_t>(o);
}
constexpr uint8_t kSeInv = kFlagSolicited | kFlagInvalidate;

constexpr OpcodeLayout kLayouts[] = {
    {R(RdmapOpcode::kWrite), O::kWriteOnly, 1, {kTagged}, true},
    {R(RdmapOpcode::kReadRequest), O::kReadRequest, 2, {kUntaggedRead, kReadReq}, false},
    {R(RdmapOpcode::kReadResponse), O::kReadResponseOnly, 1, {kTagged}, true},
    {R(RdmapOpcode::kSend), O::kSendOnly, 1, {kUntaggedSend}, true, kSeInv, 0},
    {R(RdmapOpcode::kSendInvalidate),
     O::kSendOnly,
     1,
     {kUntaggedSend},
     true,
     kSeInv,
     kFlagInvalidate},
    {R(RdmapOpcode::kSendSe), O::kSendOnly, 1, {kUntaggedSend}, true, kSeInv, kFlagSolicited},
    {R(RdmapOpcode::kSendSeInvalidate), O::kSendOnly, 1, {kUntaggedSend}, true, kSeInv, kSeInv},
    {R(RdmapOpcode::kTerminate), O::kTerminate, 2, {kUntaggedTerm, kTerm}, true},
};

constexpr ProtocolTables kTables{
    ProtocolIndex::kIwarp, "iwarp", {"OpCode", F::kWireOpcode, 1, 4, 4}, kHeaders, kLayouts, true,
    F::kMessageOffset,     nullptr,
};

}  // namespace

const ProtocolTables& Tables() {
  return kTables;
}

Result<std::vector<uint8_t>> EncodeUlpdu(const RdmaCommand& cmd) {
  size_t hlen = EncodedHeaderLength(kTables, cmd);
  if (hlen == 0) {
    return Status(Code::kInvalidArgument,
                  std::string("iwarp has no opcode for ") + OpcodeName(cmd.opcode));
  }
  std::vector<uint8_t> out(hlen + cmd.payload.size());
  Result<size_t> n = EncodeHeaders(kTables, cmd, out);
  if (!n.ok()) return n.status();
  if (!cmd.payload.empty()) std::memcpy(out.data() + hlen, cmd.payload.data(), cmd.payload.size());
  return out;
}

Result<RdmaCommand> DecodeUlpdu(std::span<const uint8_t> ulpdu) {
  return DecodeHeaders(kTables, ulpdu);
}

}  // namespace opensrd::rdma::iwarp
