// The network block protocol that storage adapters and bridges speak over SRD (docs/WIRE.md,
// "Block protocol"). Every protocol message is one SRD message: a fixed header, then for IO
// requests that write, and IO replies that read, the data. The transport already gives
// reliability, integrity (CRC32C, optionally the cluster key) and message boundaries, so the
// protocol carries no checksums or lengths of its own beyond what parsing needs.
//
// Requests name a volume by the handle an ATTACH returned (ATTACH presents the volume's name
// and token); a request id, chosen by the adapter, matches a reply to its request; replies
// may come in any order. Writes also carry a per-session sequence number so that a write the
// adapter replays after a reconnection is recognised and not applied twice.
//
// Parsers take untrusted bytes and never read past them; they reject anything malformed with
// a message naming the bad field. Plain functions, no state, thread-safe.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>

#include "common/status.h"
#include "opensrd/block.h"

namespace opensrd::block::proto {

inline constexpr uint16_t kMagic = 0x4F42;  // "OB"
inline constexpr uint8_t kVersion = 1;

enum class Type : uint8_t {
  kAttach = 1,       // adapter -> bridge: open a volume (name, token)
  kAttachReply = 2,  // bridge -> adapter: handle and geometry, or an error
  kIo = 3,           // adapter -> bridge: READ / WRITE / FLUSH / DISCARD / WRITE_ZEROES
  kIoReply = 4,      // bridge -> adapter: status (+ data for READ)
  kResize = 5,       // tool -> bridge: grow a volume (name, token, new size)
  kResizeReply = 6,  // bridge -> tool
  kInfo = 7,         // bridge -> adapter: the volume's geometry changed (live resize)
};
inline constexpr uint8_t kMaxType = 7;

// Wire status codes (one byte). Mapped to and from Status in protocol.cc.
enum class WireStatus : uint8_t {
  kOk = 0,
  kInvalid = 1,       // out of range, misaligned, bad length
  kIoError = 2,       // the backend failed
  kNoSpace = 3,       // the backend is full
  kReadOnly = 4,      // write to a read-only volume
  kBadHandle = 5,     // no such attachment (the bridge restarted: attach again)
  kNotSupported = 6,  // operation or flag not offered by this volume
  kDenied = 7,        // wrong token
  kNoVolume = 8,      // unknown volume name
  kMalformed = 9,     // the request did not parse
};
const char* WireStatusName(WireStatus s);
// Status for a reply code, with `message` (the bridge's words) as the message.
Status ToStatus(WireStatus s, const std::string& message);
WireStatus FromCode(Code c);

inline constexpr size_t kIoHeaderLen = 48;
inline constexpr size_t kIoReplyLen = 32;
inline constexpr size_t kAttachFixedLen = 32;
inline constexpr size_t kAttachReplyFixedLen = 40;
inline constexpr size_t kResizeFixedLen = 32;
inline constexpr size_t kResizeReplyFixedLen = 32;
inline constexpr size_t kInfoLen = 24;
inline constexpr size_t kMaxName = 255;
inline constexpr size_t kMaxToken = 255;
inline constexpr size_t kMaxReplyMessage = 1024;
// The largest ATTACH / RESIZE / ATTACH_REPLY message: receive buffers for control traffic.
inline constexpr size_t kMaxControlMessage =
    kResizeFixedLen + kMaxName + kMaxToken + 64 + kMaxReplyMessage;

// Peeks at a message's type after checking magic and version.
Result<Type> PeekType(std::span<const uint8_t> msg);

struct IoHeader {
  uint32_t handle = 0;
  uint64_t request_id = 0;
  uint64_t offset = 0;
  uint32_t length = 0;
  Op op = Op::kRead;
  uint8_t flags = 0;
  uint16_t queue = 0;
  uint64_t sequence = 0;  // writes: per-session sequence number (from 1); others 0
};
// Writes the 48-byte header; the data of a WRITE follows it in the same message.
void EncodeIo(const IoHeader& h, std::span<uint8_t, kIoHeaderLen> out);
// Parses an IO message: header plus exactly `length` data bytes for WRITE, none otherwise.
// `data` is set to the WRITE payload inside `msg`.
Result<IoHeader> ParseIo(std::span<const uint8_t> msg, std::span<const uint8_t>* data);

struct IoReply {
  uint32_t handle = 0;
  uint64_t request_id = 0;
  WireStatus status = WireStatus::kOk;
  uint32_t length = 0;  // data bytes that follow (READ that succeeded)
};
void EncodeIoReply(const IoReply& r, std::span<uint8_t, kIoReplyLen> out);
Result<IoReply> ParseIoReply(std::span<const uint8_t> msg, std::span<const uint8_t>* data);

struct Attach {
  uint64_t request_id = 0;
  uint64_t session = 0;  // the adapter's session: write sequence numbers are per session
  std::string volume;
  std::string token;
};
// Returns the encoded length; `out` must hold kAttachFixedLen + name + token bytes.
Result<size_t> EncodeAttach(const Attach& a, std::span<uint8_t> out);
Result<Attach> ParseAttach(std::span<const uint8_t> msg);

struct AttachReply {
  uint64_t request_id = 0;
  uint32_t handle = 0;
  WireStatus status = WireStatus::kOk;
  VolumeInfo info;
  std::string message;  // why, when status is not kOk
};
Result<size_t> EncodeAttachReply(const AttachReply& r, std::span<uint8_t> out);
Result<AttachReply> ParseAttachReply(std::span<const uint8_t> msg);

struct Resize {
  uint64_t request_id = 0;
  uint64_t new_size = 0;
  std::string volume;
  std::string token;
};
Result<size_t> EncodeResize(const Resize& r, std::span<uint8_t> out);
Result<Resize> ParseResize(std::span<const uint8_t> msg);

struct ResizeReply {
  uint64_t request_id = 0;
  WireStatus status = WireStatus::kOk;
  uint64_t size = 0;  // the volume's size after the request
  std::string message;
};
Result<size_t> EncodeResizeReply(const ResizeReply& r, std::span<uint8_t> out);
Result<ResizeReply> ParseResizeReply(std::span<const uint8_t> msg);

struct Info {
  uint32_t handle = 0;
  uint64_t size = 0;
};
void EncodeInfo(const Info& i, std::span<uint8_t, kInfoLen> out);
Result<Info> ParseInfo(std::span<const uint8_t> msg);

}  // namespace opensrd::block::proto
