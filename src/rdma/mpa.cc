#include "rdma/mpa.h"

#include <cstring>
#include <string>

#include "common/crc32c.h"

namespace opensrd::rdma::mpa {
namespace {

Status Malformed(const std::string& m) {
  return Status(Code::kMalformed, m);
}

size_t PadFor(size_t ulpdu_len) {
  return (4 - (kLengthLen + ulpdu_len) % 4) % 4;
}

uint16_t Be16(const uint8_t* p) {
  return static_cast<uint16_t>(p[0] << 8 | p[1]);
}

}  // namespace

Result<std::vector<uint8_t>> EncodeStartFrame(const StartFrame& f) {
  size_t pd = f.private_data.size() + (f.enhanced ? kEnhancedLen : 0);
  if (pd > kMaxPrivateData) {
    return Status(Code::kInvalidArgument, "MPA private data over 512 bytes");
  }
  std::vector<uint8_t> out(kStartHeaderLen + pd);
  std::memcpy(out.data(), f.reply ? kReplyKey : kRequestKey, kKeyLen);
  out[16] = f.flags;
  if (f.enhanced) out[16] |= kFlagEnhanced;
  out[17] = f.revision;
  out[18] = static_cast<uint8_t>(pd >> 8);
  out[19] = static_cast<uint8_t>(pd);
  size_t off = kStartHeaderLen;
  if (f.enhanced) {
    const Enhanced& e = *f.enhanced;
    if (e.ird > 0x3FFF || e.ord > 0x3FFF) {
      return Status(Code::kInvalidArgument, "MPA IRD/ORD over 14 bits");
    }
    uint16_t ird =
        static_cast<uint16_t>((e.peer_to_peer ? 0x8000 : 0) | (e.send_rtr ? 0x4000 : 0) | e.ird);
    uint16_t ord =
        static_cast<uint16_t>((e.write_rtr ? 0x8000 : 0) | (e.read_rtr ? 0x4000 : 0) | e.ord);
    out[off++] = static_cast<uint8_t>(ird >> 8);
    out[off++] = static_cast<uint8_t>(ird);
    out[off++] = static_cast<uint8_t>(ord >> 8);
    out[off++] = static_cast<uint8_t>(ord);
  }
  if (!f.private_data.empty()) {
    std::memcpy(out.data() + off, f.private_data.data(), f.private_data.size());
  }
  return out;
}

size_t StartFrameLength(std::span<const uint8_t> bytes) {
  if (bytes.size() < kStartHeaderLen) return 0;
  return kStartHeaderLen + Be16(bytes.data() + 18);
}

Result<StartFrame> DecodeStartFrame(std::span<const uint8_t> bytes, bool expect_reply) {
  if (bytes.size() < kStartHeaderLen) return Malformed("too_short: MPA start frame");
  if (std::memcmp(bytes.data(), expect_reply ? kReplyKey : kRequestKey, kKeyLen) != 0) {
    return Malformed(std::string("bad_key: not an MPA ") + (expect_reply ? "reply" : "request"));
  }
  StartFrame f;
  f.reply = expect_reply;
  f.flags = bytes[16];
  f.revision = bytes[17];
  if (f.revision != 1 && f.revision != 2) {
    return Malformed("bad_revision: MPA revision " + std::to_string(f.revision));
  }
  size_t pd = Be16(bytes.data() + 18);
  if (pd > kMaxPrivateData) return Malformed("bad_length: MPA private data over 512 bytes");
  if (bytes.size() < kStartHeaderLen + pd) return Malformed("too_short: MPA private data");
  const uint8_t* p = bytes.data() + kStartHeaderLen;
  if (f.revision == 2 && (f.flags & kFlagEnhanced)) {
    if (pd < kEnhancedLen) return Malformed("bad_length: MPA enhanced word missing");
    uint16_t ird = Be16(p);
    uint16_t ord = Be16(p + 2);
    Enhanced e;
    e.peer_to_peer = ird & 0x8000;
    e.send_rtr = ird & 0x4000;
    e.ird = ird & 0x3FFF;
    e.write_rtr = ord & 0x8000;
    e.read_rtr = ord & 0x4000;
    e.ord = ord & 0x3FFF;
    f.enhanced = e;
    f.flags &= static_cast<uint8_t>(~kFlagEnhanced);
    p += kEnhancedLen;
    pd -= kEnhancedLen;
  }
  f.private_data.assign(p, p + pd);
  return f;
}

size_t FpduLength(size_t ulpdu_len) {
  return kLengthLen + ulpdu_len + PadFor(ulpdu_len) + kCrcLen;
}

Result<std::vector<uint8_t>> EncodeFpdu(std::span<const uint8_t> ulpdu, bool crc) {
  if (ulpdu.empty() || ulpdu.size() > 0xFFFF) {
    return Status(Code::kInvalidArgument, "MPA ULPDU must be 1..65535 bytes");
  }
  std::vector<uint8_t> out(FpduLength(ulpdu.size()), 0);
  out[0] = static_cast<uint8_t>(ulpdu.size() >> 8);
  out[1] = static_cast<uint8_t>(ulpdu.size());
  std::memcpy(out.data() + kLengthLen, ulpdu.data(), ulpdu.size());
  size_t covered = out.size() - kCrcLen;
  uint32_t c = crc ? Crc32c(out.data(), covered) : 0;
  // Least significant byte first, as iSCSI sends its CRC32C (and Linux siw does).
  for (int i = 0; i < 4; ++i) out[covered + i] = static_cast<uint8_t>(c >> (8 * i));
  return out;
}

void MpaReceiver::Feed(std::span<const uint8_t> bytes) {
  if (!error_.ok()) return;  // a dead stream keeps nothing
  if (pos_ > 0 && pos_ == buf_.size()) {
    buf_.clear();
    pos_ = 0;
  }
  buf_.insert(buf_.end(), bytes.begin(), bytes.end());
}

Result<MpaReceiver::Event> MpaReceiver::Next() {
  if (!error_.ok()) return error_;
  // Drop what earlier events handed out (their spans are no longer promised to be valid).
  if (pos_ > 0 && pos_ >= buf_.size() / 2) {
    buf_.erase(buf_.begin(), buf_.begin() + static_cast<std::ptrdiff_t>(pos_));
    pos_ = 0;
  }
  std::span<const uint8_t> avail(buf_.data() + pos_, buf_.size() - pos_);
  Event ev;
  if (cfg_.expect != Expect::kFpdus) {
    bool reply = cfg_.expect == Expect::kReply;
    // Check the key as soon as it has arrived, so garbage is refused without waiting.
    size_t key_bytes = avail.size() < kKeyLen ? avail.size() : kKeyLen;
    if (std::memcmp(avail.data(), reply ? kReplyKey : kRequestKey, key_bytes) != 0) {
      error_ = Malformed(std::string("bad_key: not an MPA ") + (reply ? "reply" : "request"));
      return error_;
    }
    size_t n = StartFrameLength(avail);
    if (n == 0) return ev;
    if (n > kStartHeaderLen + kMaxPrivateData) {
      error_ = Malformed("bad_length: MPA private data over 512 bytes");
      return error_;
    }
    if (avail.size() < n) return ev;
    Result<StartFrame> f = DecodeStartFrame(avail.first(n), reply);
    if (!f.ok()) {
      error_ = f.status();
      return error_;
    }
    pos_ += n;
    ev.kind = Event::Kind::kStartFrame;
    ev.start = std::move(f.value());
    return ev;
  }
  if (avail.size() < kLengthLen) return ev;
  size_t len = Be16(avail.data());
  if (len < kMinUlpdu || len > cfg_.max_ulpdu) {
    error_ = Malformed("bad_length: MPA ULPDU length " + std::to_string(len));
    return error_;
  }
  size_t total = FpduLength(len);
  if (avail.size() < total) return ev;
  if (cfg_.crc) {
    size_t covered = total - kCrcLen;
    uint32_t want = Crc32c(avail.data(), covered);
    const uint8_t* c = avail.data() + covered;
    uint32_t got =
        uint32_t{c[0]} | uint32_t{c[1]} << 8 | uint32_t{c[2]} << 16 | uint32_t{c[3]} << 24;
    if (want != got) {
      error_ = Malformed("bad_crc: MPA FPDU CRC32C does not match");
      return error_;
    }
  }
  ev.kind = Event::Kind::kUlpdu;
  ev.ulpdu = avail.subspan(kLengthLen, len);
  pos_ += total;
  return ev;
}

}  // namespace opensrd::rdma::mpa
