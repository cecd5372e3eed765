// The SRD wire format: one header per packet type, encoded and decoded explicitly in network
// byte order (never by casting bytes). docs/WIRE.md is the byte-by-byte description; the
// constants here are its single source of truth. Pure functions; thread-safe.
#pragma once
#include <cstddef>
#include <cstdint>
#include <span>

namespace opensrd::wire {

inline constexpr uint16_t kMagic = 0x5344;  // "SD"
inline constexpr uint8_t kVersion = 1;
inline constexpr size_t kCommonLen = 28;
inline constexpr size_t kDataExtLen = 24;
inline constexpr size_t kDataHeaderLen = kCommonLen + kDataExtLen;  // 52
inline constexpr size_t kAckFixedLen = 12;
inline constexpr size_t kSackRangeLen = 8;
inline constexpr size_t kMaxSackRanges = 16;
inline constexpr size_t kTokenLen = 16;   // per-context reset token
inline constexpr size_t kCookieLen = 24;  // address-validation cookie: 8 B time + 16 B MAC
inline constexpr size_t kHelloExtLen = 24 + kTokenLen + kCookieLen;  // 64
inline constexpr size_t kNackExtLen = 8;
inline constexpr size_t kResetExtLen = 8 + kTokenLen;  // 24
inline constexpr size_t kRetryExtLen = kCookieLen;
inline constexpr size_t kPathExtLen = 8;  // PATH_CHALLENGE / PATH_RESPONSE
inline constexpr size_t kCrcLen = 4;
// Largest UDP payload we ever build or accept.
inline constexpr size_t kMaxDatagram = 65507;
static_assert(kDataHeaderLen == 52);

enum class Type : uint8_t {
  kData = 1,
  kAck = 2,       // selective ack (also answers a probe when kFlagProbe is set)
  kHello = 3,     // opens a context: carries the sender's incarnation and node id
  kHelloAck = 4,  // accepts it: carries the responder's context id and incarnation
  kProbe = 5,     // liveness probe for a suspect path; answered by an ack on the same path
  kNack = 6,      // a data packet refused for a named reason (receiver not ready, out of window)
  kReset = 7,     // "I have no such context / you talk to my previous incarnation"
  kRetry = 8,     // answers a HELLO from an unvalidated address with a cookie to echo
  kPathChallenge = 9,  // "are you at this address?": sent to a path's new address
  kPathResponse = 10,  // echoes a challenge's token from the address it reached
};
inline constexpr uint8_t kMaxType = 10;

// Flags byte (common header offset 4).
inline constexpr uint8_t kFlagProbe = 0x01;    // kAck: this ack answers a kProbe
inline constexpr uint8_t kFlagInOrder = 0x02;  // kData: message belongs to an in-order SQ
inline constexpr uint8_t kFlagRetx = 0x04;     // kData: this copy is a retransmission
inline constexpr uint8_t kFlagAck = 0x08;      // kData: an ack block follows the data header
// kAck, or kData with kFlagAck: since the path's previous ack, an original copy arrived on it
// after its retransmission had (the sender declared it lost too early).
inline constexpr uint8_t kFlagDupSeen = 0x10;
// kAck, or kData with kFlagAck: since the path's previous ack, a retransmitted copy arrived on it
// for a PSN already received (the re-send was not needed: the sender may undo a timeout's cut).
inline constexpr uint8_t kFlagRetxDup = 0x20;

enum class NackReason : uint8_t {
  kReceiverNotReady = 1,  // no posted receive buffer: retry later, not a loss
  kOutOfWindow = 2,       // PSN beyond the receiver's tracking window
  kTruncated = 3,         // accepted, but its message is larger than the receive buffer
};

struct Common {
  Type type = Type::kData;
  uint8_t flags = 0;
  uint8_t path_id = 0;   // sender's path index; the receiver answers on the same path
  uint32_t dst_ctx = 0;  // receiver's context id (0 in kHello)
  uint32_t src_ctx = 0;  // sender's context id
  uint32_t src_incarnation = 0;
  uint32_t dst_incarnation = 0;  // 0 in kHello
  uint32_t tx_ts = 0;  // sender's clock at transmit, nanoseconds mod 2^32 (wraps in 4.29 s)
};

struct DataExt {
  uint32_t psn = 0;
  uint32_t msg_id = 0;
  uint32_t msg_len = 0;
  uint32_t offset = 0;  // byte offset of this fragment in the message
  uint16_t sq_id = 0;
  uint16_t payload_len = 0;
  uint32_t sq_seq = 0;  // per-SQ message sequence (in-order delivery)
};

struct SackRange {
  uint32_t begin = 0;  // first PSN received
  uint32_t end = 0;    // one past the last
};

struct AckExt {
  uint32_t cum_psn = 0;  // every PSN below this has been received
  uint32_t echo_ts = 0;
  uint16_t ack_delay_us = 0;  // time the echoed packet waited at the receiver before this ack
  uint8_t echo_path = 0;
  uint8_t n_ranges = 0;
  SackRange ranges[kMaxSackRanges];
};

struct HelloExt {
  uint64_t node_id = 0;      // stable identity across restarts; incarnation changes on restart
  uint16_t num_paths = 0;    // paths the sender can use toward the peer (1..256)
  uint16_t max_payload = 0;  // largest DATA payload the sender sends or accepts
  uint32_t generation = 0;   // bumps when a context gives up its sequence state: the peer resets
  uint32_t echo_generation = 0;  // HELLO_ACK: the HELLO's generation it answers (HELLO: 0)
  uint32_t window_packets = 0;   // the sender's PSN window (power of two, 64..2^20)
  // The reset token of the sender's context: a RESET or a newer-generation HELLO for this
  // context is believed only if it carries it.
  uint8_t reset_token[kTokenLen] = {};
  uint8_t cookie[kCookieLen] = {};  // HELLO: the cookie from a RETRY (zero before one)
};

struct NackExt {
  uint32_t psn = 0;
  NackReason reason = NackReason::kReceiverNotReady;
  uint8_t pad[3] = {};
};

struct ResetExt {
  // The dst_incarnation of the packet that provoked this reset: the incarnation its sender
  // believed we had. A reset about an incarnation the receiver no longer talks to is stale.
  uint32_t addressed_incarnation = 0;
  // The reset token of the context the provoking packet was addressed to (src_ctx here).
  uint8_t token[kTokenLen] = {};
};

struct RetryExt {
  uint8_t cookie[kCookieLen] = {};
};

struct PathExt {
  uint64_t token = 0;  // unpredictable; the response echoes it
};

// Bytes of an ack block (the ACK packet's extension, or piggybacked on data with kFlagAck).
inline constexpr size_t AckBlockLen(uint8_t n_ranges) {
  return kAckFixedLen + size_t{n_ranges} * kSackRangeLen;
}

// A decoded packet. `payload` points into the buffer handed to Parse. A data packet with
// kFlagAck also fills `ack`.
struct Packet {
  Common common;
  DataExt data;
  AckExt ack;
  HelloExt hello;
  NackExt nack;
  ResetExt reset;
  RetryExt retry;
  PathExt path;
  std::span<const uint8_t> payload;
};

enum class ParseError : uint8_t {
  kNone = 0,
  kTooShort,
  kBadMagic,
  kBadVersion,
  kBadType,
  kBadChecksum,
  kBadLength,  // length disagrees with the type's layout or payload_len
  kBadField,   // a field outside its legal range (offset past msg_len, inverted range ...)
  kCount,
};
const char* ParseErrorName(ParseError e);

// Validates everything a receiver relies on: checksum, lengths, field ranges. On success fills
// `out` and returns kNone.
ParseError Parse(std::span<const uint8_t> bytes, Packet& out);

// Encoders write header + (payload for data) + CRC into `buf` and return the datagram length,
// or 0 if `buf` is too small. The CRC covers everything before it.
// `ack` (optional) is piggybacked after the data header and sets kFlagAck.
size_t EncodeData(const Common& c, const DataExt& d, std::span<const uint8_t> payload,
                  std::span<uint8_t> buf, const AckExt* ack = nullptr);
// Writes the data header (and the piggybacked ack block, if any) and returns its length H; the
// caller copies `d.payload_len` bytes of payload to buf[H...] and then calls
// SealDatagram(buf, H + payload_len).
size_t EncodeDataHeader(const Common& c, const DataExt& d, std::span<uint8_t> buf,
                        const AckExt* ack = nullptr);
size_t EncodeAck(const Common& c, const AckExt& a, std::span<uint8_t> buf);
size_t EncodeHello(const Common& c, const HelloExt& h, std::span<uint8_t> buf);
size_t EncodeNack(const Common& c, const NackExt& n, std::span<uint8_t> buf);
size_t EncodeBare(const Common& c, std::span<uint8_t> buf);  // kProbe
size_t EncodeReset(const Common& c, const ResetExt& r, std::span<uint8_t> buf);
size_t EncodeRetry(const Common& c, const RetryExt& r, std::span<uint8_t> buf);
// kPathChallenge or kPathResponse (c.type says which).
size_t EncodePath(const Common& c, const PathExt& e, std::span<uint8_t> buf);
// Appends the CRC over buf[0, body_len); returns body_len + kCrcLen.
size_t SealDatagram(std::span<uint8_t> buf, size_t body_len);

}  // namespace opensrd::wire
