// iWARP codec for the DDP segment (RFC 5041) and the RDMAP header inside it (RFC 5040): the
// ULPDU that an MPA FPDU (mpa.h) carries. Layouts are tables (iwarp.cc) decoded by the generic
// codec. iWARP has no QP number or PSN on the wire (the TCP connection names the QP and orders
// the bytes); tagged segments (WRITE, READ RESPONSE) place data at STag + tagged offset on their
// own and do not say whether they are a message's first, so they decode as *_MIDDLE or *_LAST.
// Pure functions; thread-safe.
#pragma once
#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

#include "common/status.h"
#include "rdma/command.h"
#include "rdma/header_table.h"

namespace opensrd::rdma::iwarp {

inline constexpr size_t kTaggedHeaderLen = 14;    // DDP tagged: control, RDMAP control, STag, TO
inline constexpr size_t kUntaggedHeaderLen = 18;  // DDP untagged: control, ULP, QN, MSN, MO
inline constexpr size_t kReadRequestLen = 28;     // RDMAP read request header
inline constexpr size_t kTerminateLen = 4;        // RDMAP terminate control
inline constexpr uint8_t kDdpVersion = 1;
inline constexpr uint8_t kRdmapVersion = 1;

// RDMAP opcodes (RFC 5040, 4.3).
enum class RdmapOpcode : uint8_t {
  kWrite = 0,
  kReadRequest = 1,
  kReadResponse = 2,
  kSend = 3,
  kSendInvalidate = 4,
  kSendSe = 5,
  kSendSeInvalidate = 6,
  kTerminate = 7,
};

// DDP untagged queues RDMAP uses (RFC 5040, 5.1).
inline constexpr uint32_t kSendQueue = 0;
inline constexpr uint32_t kReadRequestQueue = 1;
inline constexpr uint32_t kTerminateQueue = 2;

// Terminate: layer (RFC 5040, 4.8) and the error types and codes of each layer (RFC 5040 7,
// RFC 5041 7, RFC 5044 8; IANA "RDMAP Errors" / "DDP Errors").
enum class TermLayer : uint8_t { kRdmap = 0, kDdp = 1, kLlp = 2 };
enum class RdmapErrorType : uint8_t {
  kLocalCatastrophic = 0,
  kRemoteProtection = 1,
  kRemoteOperation = 2,
};
enum class RdmapErrorCode : uint8_t {
  kInvalidStag = 0x00,
  kBaseOrBounds = 0x01,
  kAccessRights = 0x02,
  kStagNotAssociated = 0x03,
  kToWrap = 0x04,
  kInvalidRdmapVersion = 0x05,
  kUnexpectedOpcode = 0x06,
  kCatastrophicStream = 0x07,
  kCatastrophicGlobal = 0x08,
  kStagCannotBeInvalidated = 0x09,
  kUnspecified = 0xFF,
};
enum class DdpErrorType : uint8_t { kCatastrophic = 0, kTaggedBuffer = 1, kUntaggedBuffer = 2 };
enum class DdpTaggedErrorCode : uint8_t {
  kInvalidStag = 0x00,
  kBaseOrBounds = 0x01,
  kStagNotAssociated = 0x02,
  kToWrap = 0x03,
  kInvalidDdpVersion = 0x04,
};
enum class DdpUntaggedErrorCode : uint8_t {
  kInvalidQn = 0x01,
  kInvalidMsnNoBuffer = 0x02,
  kInvalidMsnRange = 0x03,
  kInvalidMo = 0x04,
  kMessageTooLong = 0x05,
  kInvalidDdpVersion = 0x06,
};
// Terminate Hdr-Ct bits (term_hdrct): which copies of the offending segment's headers follow.
inline constexpr uint8_t kHdrCtSegmentLength = 0x4;  // M: DDP segment length (2 bytes)
inline constexpr uint8_t kHdrCtDdpHeader = 0x2;      // D: its DDP header
inline constexpr uint8_t kHdrCtRdmapHeader = 0x1;    // R: its RDMAP header

const ProtocolTables& Tables();

// A DDP segment (the MPA ULPDU): headers then payload.
Result<std::vector<uint8_t>> EncodeUlpdu(const RdmaCommand& cmd);
// Decodes one ULPDU; the payload points into `ulpdu`. Errors: see DecodeHeaders.
Result<RdmaCommand> DecodeUlpdu(std::span<const uint8_t> ulpdu);

}  // namespace opensrd::rdma::iwarp
