#include "transport/wire.h"

#include <cstring>

#include "common/byte_io.h"
#include "common/crc32c.h"

namespace opensrd::wire {
namespace {

using Writer = ByteWriter;
using Reader = ByteReader;

void WriteCommon(Writer& w, const Common& c) {
  w.U16(kMagic);
  w.U8(kVersion);
  w.U8(static_cast<uint8_t>(c.type));
  w.U8(c.flags);
  w.U8(c.path_id);
  w.U16(0);
  w.U32(c.dst_ctx);
  w.U32(c.src_ctx);
  w.U32(c.src_incarnation);
  w.U32(c.dst_incarnation);
  w.U32(c.tx_ts);
}

size_t AckBodyLen(uint8_t n_ranges) {
  return kCommonLen + AckBlockLen(n_ranges);
}

void WriteAckBlock(Writer& w, const AckExt& a) {
  w.U32(a.cum_psn);
  w.U32(a.echo_ts);
  w.U16(a.ack_delay_us);
  w.U8(a.echo_path);
  w.U8(a.n_ranges);
  for (uint8_t i = 0; i < a.n_ranges; ++i) {
    w.U32(a.ranges[i].begin);
    w.U32(a.ranges[i].end);
  }
}

// Reads an ack block from `avail` bytes (ACK packets and data packets with kFlagAck share it).
ParseError ReadAckBlock(Reader& r, size_t avail, AckExt& a) {
  if (avail < kAckFixedLen) return ParseError::kTooShort;
  a.cum_psn = r.U32();
  a.echo_ts = r.U32();
  a.ack_delay_us = r.U16();
  a.echo_path = r.U8();
  a.n_ranges = r.U8();
  if (a.n_ranges > kMaxSackRanges) return ParseError::kBadField;
  if (avail < AckBlockLen(a.n_ranges)) return ParseError::kBadLength;
  for (uint8_t i = 0; i < a.n_ranges; ++i) {
    a.ranges[i].begin = r.U32();
    a.ranges[i].end = r.U32();
    // Ranges are non-empty, above the cumulative point and ascending (serial arithmetic).
    if (static_cast<int32_t>(a.ranges[i].end - a.ranges[i].begin) <= 0) {
      return ParseError::kBadField;
    }
    if (static_cast<int32_t>(a.ranges[i].begin - a.cum_psn) <= 0) return ParseError::kBadField;
    if (i > 0 && static_cast<int32_t>(a.ranges[i].begin - a.ranges[i - 1].end) <= 0) {
      return ParseError::kBadField;
    }
  }
  return ParseError::kNone;
}

}  // namespace

const char* ParseErrorName(ParseError e) {
  switch (e) {
    case ParseError::kNone:
      return "none";
    case ParseError::kTooShort:
      return "too_short";
    case ParseError::kBadMagic:
      return "bad_magic";
    case ParseError::kBadVersion:
      return "bad_version";
    case ParseError::kBadType:
      return "bad_type";
    case ParseError::kBadChecksum:
      return "bad_checksum";
    case ParseError::kBadLength:
      return "bad_length";
    case ParseError::kBadField:
      return "bad_field";
    case ParseError::kCount:
      break;
  }
  return "unknown";
}

size_t SealDatagram(std::span<uint8_t> buf, size_t body_len) {
  uint32_t crc = Crc32c(buf.data(), body_len);
  Writer w{buf.data() + body_len};
  w.U32(crc);
  return body_len + kCrcLen;
}

size_t EncodeDataHeader(const Common& c, const DataExt& d, std::span<uint8_t> buf,
                        const AckExt* ack) {
  if (ack != nullptr && ack->n_ranges > kMaxSackRanges) return 0;
  const size_t header = kDataHeaderLen + (ack ? AckBlockLen(ack->n_ranges) : 0);
  if (buf.size() < header + d.payload_len + kCrcLen) return 0;
  Writer w{buf.data()};
  Common cc = c;
  cc.type = Type::kData;
  cc.flags = ack ? (c.flags | kFlagAck) : (c.flags & ~kFlagAck);
  WriteCommon(w, cc);
  w.U32(d.psn);
  w.U32(d.msg_id);
  w.U32(d.msg_len);
  w.U32(d.offset);
  w.U16(d.sq_id);
  w.U16(d.payload_len);
  w.U32(d.sq_seq);
  if (ack) WriteAckBlock(w, *ack);
  return header;
}

size_t EncodeData(const Common& c, const DataExt& d, std::span<const uint8_t> payload,
                  std::span<uint8_t> buf, const AckExt* ack) {
  DataExt dd = d;
  if (payload.size() > 0xFFFF) return 0;
  dd.payload_len = static_cast<uint16_t>(payload.size());
  const size_t header = EncodeDataHeader(c, dd, buf, ack);
  if (header == 0) return 0;
  if (!payload.empty()) __builtin_memcpy(buf.data() + header, payload.data(), payload.size());
  return SealDatagram(buf, header + payload.size());
}

size_t EncodeAck(const Common& c, const AckExt& a, std::span<uint8_t> buf) {
  if (a.n_ranges > kMaxSackRanges) return 0;
  size_t body = AckBodyLen(a.n_ranges);
  if (buf.size() < body + kCrcLen) return 0;
  Writer w{buf.data()};
  Common cc = c;
  cc.type = Type::kAck;
  WriteCommon(w, cc);
  WriteAckBlock(w, a);
  return SealDatagram(buf, body);
}

size_t EncodeHello(const Common& c, const HelloExt& h, std::span<uint8_t> buf) {
  if (c.type != Type::kHello && c.type != Type::kHelloAck) return 0;
  if (buf.size() < kCommonLen + kHelloExtLen + kCrcLen) return 0;
  Writer w{buf.data()};
  WriteCommon(w, c);
  w.U64(h.node_id);
  w.U16(h.num_paths);
  w.U16(h.max_payload);
  w.U32(h.generation);
  w.U32(h.echo_generation);
  w.U32(h.window_packets);
  w.Bytes(h.reset_token, kTokenLen);
  w.Bytes(h.cookie, kCookieLen);
  return SealDatagram(buf, kCommonLen + kHelloExtLen);
}

size_t EncodeNack(const Common& c, const NackExt& n, std::span<uint8_t> buf) {
  if (buf.size() < kCommonLen + kNackExtLen + kCrcLen) return 0;
  Writer w{buf.data()};
  Common cc = c;
  cc.type = Type::kNack;
  WriteCommon(w, cc);
  w.U32(n.psn);
  w.U8(static_cast<uint8_t>(n.reason));
  w.U8(0);
  w.U16(0);
  return SealDatagram(buf, kCommonLen + kNackExtLen);
}

size_t EncodeReset(const Common& c, const ResetExt& r, std::span<uint8_t> buf) {
  if (buf.size() < kCommonLen + kResetExtLen + kCrcLen) return 0;
  Writer w{buf.data()};
  Common cc = c;
  cc.type = Type::kReset;
  WriteCommon(w, cc);
  w.U32(r.addressed_incarnation);
  w.U32(0);
  w.Bytes(r.token, kTokenLen);
  return SealDatagram(buf, kCommonLen + kResetExtLen);
}

size_t EncodeRetry(const Common& c, const RetryExt& r, std::span<uint8_t> buf) {
  if (buf.size() < kCommonLen + kRetryExtLen + kCrcLen) return 0;
  Writer w{buf.data()};
  Common cc = c;
  cc.type = Type::kRetry;
  WriteCommon(w, cc);
  w.Bytes(r.cookie, kCookieLen);
  return SealDatagram(buf, kCommonLen + kRetryExtLen);
}

size_t EncodePath(const Common& c, const PathExt& e, std::span<uint8_t> buf) {
  if (c.type != Type::kPathChallenge && c.type != Type::kPathResponse) return 0;
  if (buf.size() < kCommonLen + kPathExtLen + kCrcLen) return 0;
  Writer w{buf.data()};
  WriteCommon(w, c);
  w.U64(e.token);
  return SealDatagram(buf, kCommonLen + kPathExtLen);
}

size_t EncodeBare(const Common& c, std::span<uint8_t> buf) {
  if (c.type != Type::kProbe) return 0;
  if (buf.size() < kCommonLen + kCrcLen) return 0;
  Writer w{buf.data()};
  WriteCommon(w, c);
  return SealDatagram(buf, kCommonLen);
}

ParseError Parse(std::span<const uint8_t> bytes, Packet& out) {
  const size_t n = bytes.size();
  if (n < kCommonLen + kCrcLen) return ParseError::kTooShort;
  if (n > kMaxDatagram) return ParseError::kBadLength;
  Reader r{bytes.data()};
  if (r.U16() != kMagic) return ParseError::kBadMagic;
  if (r.U8() != kVersion) return ParseError::kBadVersion;
  const uint8_t type = r.U8();
  if (type < static_cast<uint8_t>(Type::kData) || type > kMaxType) {
    return ParseError::kBadType;
  }
  // Checksum before any field is trusted: a flipped bit anywhere must not steer the parser.
  Reader tail{bytes.data() + n - kCrcLen};
  if (tail.U32() != Crc32c(bytes.data(), n - kCrcLen)) return ParseError::kBadChecksum;
  const size_t body = n - kCrcLen;

  Common& c = out.common;
  c.type = static_cast<Type>(type);
  c.flags = r.U8();
  c.path_id = r.U8();
  if (r.U16() != 0) return ParseError::kBadField;  // reserved must be zero
  c.dst_ctx = r.U32();
  c.src_ctx = r.U32();
  c.src_incarnation = r.U32();
  c.dst_incarnation = r.U32();
  c.tx_ts = r.U32();
  out.payload = {};

  switch (c.type) {
    case Type::kData: {
      if (body < kDataHeaderLen) return ParseError::kTooShort;
      DataExt& d = out.data;
      d.psn = r.U32();
      d.msg_id = r.U32();
      d.msg_len = r.U32();
      d.offset = r.U32();
      d.sq_id = r.U16();
      d.payload_len = r.U16();
      d.sq_seq = r.U32();
      size_t header = kDataHeaderLen;
      if (c.flags & kFlagAck) {
        const ParseError e = ReadAckBlock(r, body - kDataHeaderLen, out.ack);
        if (e != ParseError::kNone) return e;
        header += AckBlockLen(out.ack.n_ranges);
      }
      if (body != header + d.payload_len) return ParseError::kBadLength;
      // A fragment must lie inside its message; only an empty message has an empty fragment.
      if (uint64_t{d.offset} + d.payload_len > d.msg_len) return ParseError::kBadField;
      if (d.payload_len == 0 && d.msg_len != 0) return ParseError::kBadField;
      out.payload = bytes.subspan(header, d.payload_len);
      return ParseError::kNone;
    }
    case Type::kAck: {
      if (body < kCommonLen + kAckFixedLen) return ParseError::kTooShort;
      const ParseError e = ReadAckBlock(r, body - kCommonLen, out.ack);
      if (e != ParseError::kNone) return e;
      if (body != AckBodyLen(out.ack.n_ranges)) return ParseError::kBadLength;
      return ParseError::kNone;
    }
    case Type::kHello:
    case Type::kHelloAck: {
      if (body != kCommonLen + kHelloExtLen) return ParseError::kBadLength;
      HelloExt& h = out.hello;
      h.node_id = r.U64();
      h.num_paths = r.U16();
      h.max_payload = r.U16();
      h.generation = r.U32();
      h.echo_generation = r.U32();
      h.window_packets = r.U32();
      r.Bytes(h.reset_token, kTokenLen);
      r.Bytes(h.cookie, kCookieLen);
      if (h.num_paths == 0 || h.num_paths > 256 || h.max_payload < 64) return ParseError::kBadField;
      if (h.window_packets < 64 || h.window_packets > (1u << 20) ||
          (h.window_packets & (h.window_packets - 1)) != 0) {
        return ParseError::kBadField;
      }
      if (c.src_ctx == 0 || c.src_incarnation == 0) return ParseError::kBadField;
      return ParseError::kNone;
    }
    case Type::kNack: {
      if (body != kCommonLen + kNackExtLen) return ParseError::kBadLength;
      out.nack.psn = r.U32();
      const uint8_t reason = r.U8();
      if (reason < 1 || reason > 3) return ParseError::kBadField;
      if (r.U8() != 0 || r.U16() != 0) return ParseError::kBadField;  // padding must be zero
      out.nack.reason = static_cast<NackReason>(reason);
      return ParseError::kNone;
    }
    case Type::kProbe:
      if (body != kCommonLen) return ParseError::kBadLength;
      return ParseError::kNone;
    case Type::kReset:
      if (body != kCommonLen + kResetExtLen) return ParseError::kBadLength;
      out.reset.addressed_incarnation = r.U32();
      if (r.U32() != 0) return ParseError::kBadField;  // reserved
      r.Bytes(out.reset.token, kTokenLen);
      return ParseError::kNone;
    case Type::kRetry:
      if (body != kCommonLen + kRetryExtLen) return ParseError::kBadLength;
      if (c.dst_ctx == 0 || c.dst_incarnation == 0) return ParseError::kBadField;
      r.Bytes(out.retry.cookie, kCookieLen);
      return ParseError::kNone;
    case Type::kPathChallenge:
    case Type::kPathResponse:
      if (body != kCommonLen + kPathExtLen) return ParseError::kBadLength;
      out.path.token = r.U64();
      return ParseError::kNone;
  }
  return ParseError::kBadType;
}

}  // namespace opensrd::wire
