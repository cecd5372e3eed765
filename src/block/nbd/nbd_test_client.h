// Test-only NBD client pieces: encoders for the messages a client sends and a decoder for the
// server's replies, so unit tests, the socket test and the fuzz corpus generator speak NBD from
// the client's side without a real client. Plain functions over byte vectors; thread-safe.
#pragma once

#include <cstdint>
#include <cstring>
#include <optional>
#include <string>
#include <vector>

#include "block/nbd/nbd_wire.h"

namespace opensrd::block::nbd::client {

using Bytes = std::vector<uint8_t>;

inline void Append16(Bytes& b, uint16_t v) {
  b.resize(b.size() + 2);
  Put16(&b[b.size() - 2], v);
}
inline void Append32(Bytes& b, uint32_t v) {
  b.resize(b.size() + 4);
  Put32(&b[b.size() - 4], v);
}
inline void Append64(Bytes& b, uint64_t v) {
  b.resize(b.size() + 8);
  Put64(&b[b.size() - 8], v);
}
inline void AppendString(Bytes& b, const std::string& s) {
  b.insert(b.end(), s.begin(), s.end());
}

inline Bytes ClientFlags(uint32_t flags = kClientFixedNewstyle | kClientNoZeroes) {
  Bytes b;
  Append32(b, flags);
  return b;
}
inline Bytes OptionRequest(uint32_t opt, const Bytes& data = {}) {
  Bytes b;
  Append64(b, kOptMagic);
  Append32(b, opt);
  Append32(b, static_cast<uint32_t>(data.size()));
  b.insert(b.end(), data.begin(), data.end());
  return b;
}
// NBD_OPT_GO / NBD_OPT_INFO data.
inline Bytes InfoData(const std::string& name, const std::vector<uint16_t>& infos = {}) {
  Bytes d;
  Append32(d, static_cast<uint32_t>(name.size()));
  AppendString(d, name);
  Append16(d, static_cast<uint16_t>(infos.size()));
  for (uint16_t i : infos) Append16(d, i);
  return d;
}
// NBD_OPT_SET/LIST_META_CONTEXT data.
inline Bytes MetaData(const std::string& name, const std::vector<std::string>& queries) {
  Bytes d;
  Append32(d, static_cast<uint32_t>(name.size()));
  AppendString(d, name);
  Append32(d, static_cast<uint32_t>(queries.size()));
  for (const auto& q : queries) {
    Append32(d, static_cast<uint32_t>(q.size()));
    AppendString(d, q);
  }
  return d;
}
inline Bytes Request(uint16_t type, uint64_t handle, uint64_t offset, uint32_t length,
                     uint16_t flags = 0, const Bytes& payload = {}) {
  Bytes b;
  Append32(b, kRequestMagic);
  Append16(b, flags);
  Append16(b, type);
  Append64(b, handle);
  Append64(b, offset);
  Append32(b, length);
  b.insert(b.end(), payload.begin(), payload.end());
  return b;
}
inline Bytes Cat(std::initializer_list<Bytes> parts) {
  Bytes b;
  for (const auto& p : parts) b.insert(b.end(), p.begin(), p.end());
  return b;
}

struct OptionReplyMsg {
  uint32_t option = 0;
  uint32_t type = 0;
  Bytes data;
};
// One structured chunk or simple reply.
struct ReplyMsg {
  bool structured = false;
  uint16_t flags = 0;  // structured
  uint16_t type = 0;   // structured
  uint32_t error = 0;  // simple reply error, or the error of an error chunk
  uint64_t handle = 0;
  Bytes payload;  // structured payload, or the data of a simple READ reply
  bool done() const { return !structured || (flags & kReplyFlagDone); }
};

// Pulls server messages off the front of a byte stream; nullopt when incomplete.
class ReplyReader {
 public:
  void Add(const uint8_t* p, size_t n) { buf_.insert(buf_.end(), p, p + n); }
  void Add(const Bytes& b) { Add(b.data(), b.size()); }
  size_t available() const { return buf_.size() - at_; }

  std::optional<Bytes> Take(size_t n) {
    if (available() < n) return std::nullopt;
    Bytes out(buf_.begin() + at_, buf_.begin() + at_ + n);
    at_ += n;
    return out;
  }
  std::optional<OptionReplyMsg> NextOption() {
    if (available() < kOptionReplyHeaderLen) return std::nullopt;
    const uint8_t* p = buf_.data() + at_;
    const uint32_t len = Get32(p + 16);
    if (Get64(p) != kOptReplyMagic || available() < kOptionReplyHeaderLen + len) {
      return std::nullopt;
    }
    OptionReplyMsg m;
    m.option = Get32(p + 8);
    m.type = Get32(p + 12);
    m.data.assign(p + kOptionReplyHeaderLen, p + kOptionReplyHeaderLen + len);
    at_ += kOptionReplyHeaderLen + len;
    return m;
  }
  // simple_read_len: bytes of data that follow a successful simple reply (READ without
  // structured replies); the caller knows it from its request.
  std::optional<ReplyMsg> NextReply(uint32_t simple_read_len = 0) {
    if (available() < 4) return std::nullopt;
    const uint8_t* p = buf_.data() + at_;
    ReplyMsg m;
    if (Get32(p) == kSimpleReplyMagic) {
      if (available() < kSimpleReplyLen) return std::nullopt;
      m.error = Get32(p + 4);
      m.handle = Get64(p + 8);
      const size_t data = m.error == 0 ? simple_read_len : 0;
      if (available() < kSimpleReplyLen + data) return std::nullopt;
      m.payload.assign(p + kSimpleReplyLen, p + kSimpleReplyLen + data);
      at_ += kSimpleReplyLen + data;
      return m;
    }
    if (Get32(p) != kStructuredReplyMagic || available() < kStructuredHeaderLen) {
      return std::nullopt;
    }
    const uint32_t len = Get32(p + 16);
    if (available() < kStructuredHeaderLen + len) return std::nullopt;
    m.structured = true;
    m.flags = Get16(p + 4);
    m.type = Get16(p + 6);
    m.handle = Get64(p + 8);
    m.payload.assign(p + kStructuredHeaderLen, p + kStructuredHeaderLen + len);
    if ((m.type & 0x8000) && len >= 4) m.error = Get32(m.payload.data());
    at_ += kStructuredHeaderLen + len;
    return m;
  }

 private:
  Bytes buf_;
  size_t at_ = 0;
};

}  // namespace opensrd::block::nbd::client
