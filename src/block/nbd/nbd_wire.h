// The NBD protocol's constants and byte-order helpers, as the NBD protocol specification
// (NetworkBlockDevice/nbd, doc/proto.md) defines them: every field is big-endian, and messages
// are encoded and decoded field by field (never by casting bytes). Only what opensrd's server
// speaks is named here. Pure definitions; thread-safe.
#pragma once

#include <cstddef>
#include <cstdint>

namespace opensrd::block::nbd {

// Handshake.
inline constexpr uint64_t kNbdMagic = 0x4e42444d41474943ull;       // "NBDMAGIC"
inline constexpr uint64_t kOptMagic = 0x49484156454f5054ull;       // "IHAVEOPT"
inline constexpr uint64_t kOptReplyMagic = 0x0003e889045565a9ull;  // option replies
inline constexpr uint16_t kFlagFixedNewstyle = 1 << 0;             // handshake flags
inline constexpr uint16_t kFlagNoZeroes = 1 << 1;
inline constexpr uint32_t kClientFixedNewstyle = 1 << 0;  // client flags
inline constexpr uint32_t kClientNoZeroes = 1 << 1;
inline constexpr size_t kGreetingLen = 8 + 8 + 2;
inline constexpr size_t kOptionHeaderLen = 8 + 4 + 4;
inline constexpr size_t kOptionReplyHeaderLen = 8 + 4 + 4 + 4;
inline constexpr size_t kExportNameReplyZeroes = 124;

enum Option : uint32_t {
  kOptExportName = 1,
  kOptAbort = 2,
  kOptList = 3,
  kOptStartTls = 5,
  kOptInfo = 6,
  kOptGo = 7,
  kOptStructuredReply = 8,
  kOptListMetaContext = 9,
  kOptSetMetaContext = 10,
  kOptExtendedHeaders = 11,
};

enum OptionReply : uint32_t {
  kRepAck = 1,
  kRepServer = 2,
  kRepInfo = 3,
  kRepMetaContext = 4,
  kRepErrUnsup = 0x80000001u,
  kRepErrPolicy = 0x80000002u,
  kRepErrInvalid = 0x80000003u,
  kRepErrPlatform = 0x80000004u,
  kRepErrTlsReqd = 0x80000005u,
  kRepErrUnknown = 0x80000006u,
  kRepErrShutdown = 0x80000007u,
  kRepErrBlockSizeReqd = 0x80000008u,
  kRepErrTooBig = 0x80000009u,
};

enum Info : uint16_t {
  kInfoExport = 0,
  kInfoName = 1,
  kInfoDescription = 2,
  kInfoBlockSize = 3,
};

// Transmission flags (16 bits, sent with the export's size).
inline constexpr uint16_t kFlagHasFlags = 1 << 0;
inline constexpr uint16_t kFlagReadOnly = 1 << 1;
inline constexpr uint16_t kFlagSendFlush = 1 << 2;
inline constexpr uint16_t kFlagSendFua = 1 << 3;
inline constexpr uint16_t kFlagRotational = 1 << 4;
inline constexpr uint16_t kFlagSendTrim = 1 << 5;
inline constexpr uint16_t kFlagSendWriteZeroes = 1 << 6;
inline constexpr uint16_t kFlagSendDf = 1 << 7;
inline constexpr uint16_t kFlagCanMultiConn = 1 << 8;
inline constexpr uint16_t kFlagSendCache = 1 << 10;
inline constexpr uint16_t kFlagSendFastZero = 1 << 11;

// Transmission phase.
inline constexpr uint32_t kRequestMagic = 0x25609513u;
inline constexpr uint32_t kSimpleReplyMagic = 0x67446698u;
inline constexpr uint32_t kStructuredReplyMagic = 0x668e33efu;
inline constexpr size_t kRequestHeaderLen = 4 + 2 + 2 + 8 + 8 + 4;  // 28
inline constexpr size_t kSimpleReplyLen = 4 + 4 + 8;                // 16
inline constexpr size_t kStructuredHeaderLen = 4 + 2 + 2 + 8 + 4;   // 20
static_assert(kRequestHeaderLen == 28 && kSimpleReplyLen == 16 && kStructuredHeaderLen == 20);

enum Command : uint16_t {
  kCmdRead = 0,
  kCmdWrite = 1,
  kCmdDisc = 2,
  kCmdFlush = 3,
  kCmdTrim = 4,
  kCmdCache = 5,
  kCmdWriteZeroes = 6,
  kCmdBlockStatus = 7,
};

// Command flags.
inline constexpr uint16_t kCmdFlagFua = 1 << 0;
inline constexpr uint16_t kCmdFlagNoHole = 1 << 1;
inline constexpr uint16_t kCmdFlagDf = 1 << 2;
inline constexpr uint16_t kCmdFlagReqOne = 1 << 3;
inline constexpr uint16_t kCmdFlagFastZero = 1 << 4;

// Structured reply chunks.
inline constexpr uint16_t kReplyFlagDone = 1 << 0;
enum ReplyType : uint16_t {
  kReplyNone = 0,
  kReplyOffsetData = 1,
  kReplyOffsetHole = 2,
  kReplyBlockStatus = 5,
  kReplyError = 0x8001,
  kReplyErrorOffset = 0x8002,
};

// base:allocation status flags.
inline constexpr uint32_t kStateHole = 1 << 0;
inline constexpr uint32_t kStateZero = 1 << 1;

// Error values (the spec's fixed set, not the host's errno).
enum Error : uint32_t {
  kEperm = 1,
  kEio = 5,
  kEnomem = 12,
  kEinval = 22,
  kEnospc = 28,
  kEoverflow = 75,
  kEnotsup = 95,
  kEshutdown = 108,
};

// Strings (export names, queries, messages) are at most 4096 bytes.
inline constexpr size_t kMaxString = 4096;

inline void Put16(uint8_t* p, uint16_t v) {
  p[0] = v >> 8;
  p[1] = v;
}
inline void Put32(uint8_t* p, uint32_t v) {
  for (int i = 0; i < 4; ++i) p[i] = v >> (24 - 8 * i);
}
inline void Put64(uint8_t* p, uint64_t v) {
  for (int i = 0; i < 8; ++i) p[i] = v >> (56 - 8 * i);
}
inline uint16_t Get16(const uint8_t* p) {
  return uint16_t(p[0] << 8 | p[1]);
}
inline uint32_t Get32(const uint8_t* p) {
  return uint32_t(p[0]) << 24 | uint32_t(p[1]) << 16 | uint32_t(p[2]) << 8 | p[3];
}
inline uint64_t Get64(const uint8_t* p) {
  return uint64_t(Get32(p)) << 32 | Get32(p + 4);
}

}  // namespace opensrd::block::nbd
