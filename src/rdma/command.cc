#include "rdma/command.h"

namespace opensrd::rdma {

OpcodeFamily Family(RdmaOpcode op) {
  switch (op) {
    case RdmaOpcode::kSendFirst:
    case RdmaOpcode::kSendMiddle:
    case RdmaOpcode::kSendLast:
    case RdmaOpcode::kSendLastImm:
    case RdmaOpcode::kSendLastInv:
    case RdmaOpcode::kSendOnly:
    case RdmaOpcode::kSendOnlyImm:
    case RdmaOpcode::kSendOnlyInv:
      return OpcodeFamily::kSend;
    case RdmaOpcode::kWriteFirst:
    case RdmaOpcode::kWriteMiddle:
    case RdmaOpcode::kWriteLast:
    case RdmaOpcode::kWriteLastImm:
    case RdmaOpcode::kWriteOnly:
    case RdmaOpcode::kWriteOnlyImm:
      return OpcodeFamily::kWrite;
    case RdmaOpcode::kReadResponseFirst:
    case RdmaOpcode::kReadResponseMiddle:
    case RdmaOpcode::kReadResponseLast:
    case RdmaOpcode::kReadResponseOnly:
      return OpcodeFamily::kReadResponse;
    default:
      return OpcodeFamily::kSingle;
  }
}

bool IsFirst(RdmaOpcode op) {
  switch (op) {
    case RdmaOpcode::kSendMiddle:
    case RdmaOpcode::kSendLast:
    case RdmaOpcode::kSendLastImm:
    case RdmaOpcode::kSendLastInv:
    case RdmaOpcode::kWriteMiddle:
    case RdmaOpcode::kWriteLast:
    case RdmaOpcode::kWriteLastImm:
    case RdmaOpcode::kReadResponseMiddle:
    case RdmaOpcode::kReadResponseLast:
      return false;
    default:
      return true;
  }
}

bool IsLast(RdmaOpcode op) {
  switch (op) {
    case RdmaOpcode::kSendFirst:
    case RdmaOpcode::kSendMiddle:
    case RdmaOpcode::kWriteFirst:
    case RdmaOpcode::kWriteMiddle:
    case RdmaOpcode::kReadResponseFirst:
    case RdmaOpcode::kReadResponseMiddle:
      return false;
    default:
      return true;
  }
}

bool HasImmediate(RdmaOpcode op) {
  return op == RdmaOpcode::kSendLastImm || op == RdmaOpcode::kSendOnlyImm ||
         op == RdmaOpcode::kWriteLastImm || op == RdmaOpcode::kWriteOnlyImm;
}

bool IsInvalidate(RdmaOpcode op) {
  return op == RdmaOpcode::kSendLastInv || op == RdmaOpcode::kSendOnlyInv;
}

RdmaOpcode Compose(OpcodeFamily family, bool first, bool last, bool invalidate) {
  // Index: first*2 + last -> middle, last, first, only.
  static constexpr RdmaOpcode kSend[4] = {RdmaOpcode::kSendMiddle, RdmaOpcode::kSendLast,
                                          RdmaOpcode::kSendFirst, RdmaOpcode::kSendOnly};
  static constexpr RdmaOpcode kSendInv[4] = {RdmaOpcode::kSendMiddle, RdmaOpcode::kSendLastInv,
                                             RdmaOpcode::kSendFirst, RdmaOpcode::kSendOnlyInv};
  static constexpr RdmaOpcode kWrite[4] = {RdmaOpcode::kWriteMiddle, RdmaOpcode::kWriteLast,
                                           RdmaOpcode::kWriteFirst, RdmaOpcode::kWriteOnly};
  static constexpr RdmaOpcode kRead[4] = {
      RdmaOpcode::kReadResponseMiddle, RdmaOpcode::kReadResponseLast,
      RdmaOpcode::kReadResponseFirst, RdmaOpcode::kReadResponseOnly};
  int i = (first ? 2 : 0) + (last ? 1 : 0);
  switch (family) {
    case OpcodeFamily::kSend:
      return invalidate ? kSendInv[i] : kSend[i];
    case OpcodeFamily::kWrite:
      return kWrite[i];
    case OpcodeFamily::kReadResponse:
      return kRead[i];
    case OpcodeFamily::kSingle:
      break;
  }
  return RdmaOpcode::kSendOnly;
}

const char* OpcodeName(RdmaOpcode op) {
  static constexpr const char* kNames[kRdmaOpcodeCount] = {"SEND_FIRST",
                                                           "SEND_MIDDLE",
                                                           "SEND_LAST",
                                                           "SEND_LAST_IMM",
                                                           "SEND_LAST_INV",
                                                           "SEND_ONLY",
                                                           "SEND_ONLY_IMM",
                                                           "SEND_ONLY_INV",
                                                           "WRITE_FIRST",
                                                           "WRITE_MIDDLE",
                                                           "WRITE_LAST",
                                                           "WRITE_LAST_IMM",
                                                           "WRITE_ONLY",
                                                           "WRITE_ONLY_IMM",
                                                           "READ_REQUEST",
                                                           "READ_RESPONSE_FIRST",
                                                           "READ_RESPONSE_MIDDLE",
                                                           "READ_RESPONSE_LAST",
                                                           "READ_RESPONSE_ONLY",
                                                           "ACK",
                                                           "RNR_NAK",
                                                           "NAK",
                                                           "COMPARE_SWAP",
                                                           "FETCH_ADD",
                                                           "ATOMIC_ACK",
                                                           "TERMINATE"};
  int i = static_cast<int>(op);
  return i >= 0 && i < kRdmaOpcodeCount ? kNames[i] : "?";
}

bool AckKindOfSyndrome(uint8_t syndrome, RdmaOpcode* kind) {
  switch (syndrome >> 5) {
    case 0:
      *kind = RdmaOpcode::kAck;
      return true;
    case 1:
      *kind = RdmaOpcode::kRnrNak;
      return true;
    case 3:
      *kind = RdmaOpcode::kNak;
      return true;
    default:
      return false;
  }
}

}  // namespace opensrd::rdma
