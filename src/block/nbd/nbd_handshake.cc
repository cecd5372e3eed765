// NbdSession, handshake phase: client flags and option haggling (fixed newstyle).
#include <algorithm>
#include <cstring>
#include <string>

#include "block/nbd/nbd_session.h"

namespace opensrd::block::nbd {
namespace {

constexpr const char kAllocationContext[] = "base:allocation";

uint32_t RoundUpPow2(uint32_t v) {
  uint32_t p = 1;
  while (p < v && p < (1u << 31)) p <<= 1;
  return p;
}

}  // namespace

void NbdSession::OnClientFlags() {
  const uint32_t flags = Get32(hdr_);
  // The spec requires dropping a client that sets a flag we did not offer.
  if (flags & ~(kClientFixedNewstyle | kClientNoZeroes)) {
    return Close("client flags 0x" + std::to_string(flags) + " include unknown bits");
  }
  no_zeroes_ = (flags & kClientNoZeroes) != 0;
  state_ = State::kOptionHeader;
}

void NbdSession::OnOptionHeader() {
  if (Get64(hdr_) != kOptMagic) return Close("bad option magic");
  opt_ = Get32(hdr_ + 8);
  const uint32_t len = Get32(hdr_ + 12);
  if (len > kMaxOptionData) {
    // NBD_OPT_EXPORT_NAME has no error reply: the only answer is to hang up.
    if (opt_ == kOptExportName) return Close("export name longer than the option limit");
    to_skip_ = len;
    state_ = State::kOptionSkip;
    return;
  }
  opt_len_ = len;
  opt_data_.clear();
  opt_data_.reserve(len);
  state_ = State::kOptionData;
}

void NbdSession::OptionReply(uint32_t type, const uint8_t* data, size_t len) {
  Segment s;
  Put64(s.head, kOptReplyMagic);
  Put32(s.head + 8, opt_);
  Put32(s.head + 12, type);
  Put32(s.head + 16, static_cast<uint32_t>(len));
  s.head_len = kOptionReplyHeaderLen;
  if (len > 0) {
    std::shared_ptr<uint8_t[]> body(new uint8_t[len]);
    std::memcpy(body.get(), data, len);
    const uint8_t* b = body.get();
    PushBody(s, std::move(body), b, len);
  }
  Enqueue(std::move(s));
}

void NbdSession::OptionError(uint32_t type, const std::string& message) {
  OptionReply(type, reinterpret_cast<const uint8_t*>(message.data()), message.size());
}

bool NbdSession::IsOurExport(const std::string& name) const {
  return name.empty() || name == config_.name;
}

NbdSession::BlockSizes NbdSession::Sizes() const {
  const VolumeInfo info = device_.Info();
  BlockSizes b;
  b.minimum = std::max<uint32_t>(info.block_size, 1);
  b.preferred = RoundUpPow2(std::max({b.minimum, 512u, config_.preferred_block}));
  uint32_t max = std::min(config_.max_payload, info.max_transfer);
  max -= max % b.minimum;
  b.maximum = std::max(max, b.preferred);
  return b;
}

uint16_t NbdSession::TransmissionFlags() const {
  const VolumeInfo info = device_.Info();
  uint16_t f = kFlagHasFlags | kFlagSendCache;
  if (info.read_only) f |= kFlagReadOnly;
  if (info.can_flush) f |= kFlagSendFlush;
  if (!info.read_only) {
    if (info.can_fua) f |= kFlagSendFua;
    if (info.can_discard) f |= kFlagSendTrim;
    // FAST_ZERO is offered whenever WRITE_ZEROES is: a device that cannot zero quickly makes the
    // request fail at once with ENOTSUP, which is exactly what the flag asks for.
    if (info.can_write_zeroes) f |= kFlagSendWriteZeroes | kFlagSendFastZero;
  }
  if (structured_) f |= kFlagSendDf;  // the spec forbids DF without structured replies
  if (config_.multi_conn) f |= kFlagCanMultiConn;
  return f;
}

void NbdSession::EnterTransmission() {
  transmission_ = true;
  sizes_ = Sizes();
  tflags_ = TransmissionFlags();
  state_ = State::kRequestHeader;
}

void NbdSession::OnOption() {
  switch (opt_) {
    case kOptExportName: {
      const std::string name(opt_data_.begin(), opt_data_.end());
      if (!IsOurExport(name)) return Close("unknown export '" + name + "' (EXPORT_NAME)");
      Segment s;
      Put64(s.head, device_.Info().size_bytes);
      Put16(s.head + 8, TransmissionFlags());
      s.head_len = 10;
      if (!no_zeroes_) {
        static const uint8_t kZeroes[kExportNameReplyZeroes] = {};
        PushBody(s, nullptr, kZeroes, sizeof(kZeroes));
      }
      Enqueue(std::move(s));
      return EnterTransmission();
    }
    case kOptAbort:
      OptionReply(kRepAck);
      return Close("client aborted the handshake");
    case kOptList:
      return OnOptionList();
    case kOptInfo:
    case kOptGo:
      return OnOptionInfo(opt_ == kOptGo);
    case kOptStructuredReply:
      if (!opt_data_.empty()) return OptionError(kRepErrInvalid, "STRUCTURED_REPLY takes no data");
      structured_ = true;
      return OptionReply(kRepAck);
    case kOptListMetaContext:
    case kOptSetMetaContext:
      return OnOptionMetaContext(opt_ == kOptSetMetaContext);
    case kOptStartTls:
      return OptionError(kRepErrUnsup, "this server does not offer TLS");
    default:
      return OptionError(kRepErrUnsup, "option " + std::to_string(opt_) + " is not supported");
  }
}

void NbdSession::OnOptionList() {
  if (!opt_data_.empty()) return OptionError(kRepErrInvalid, "LIST takes no data");
  std::vector<uint8_t> d(4);
  Put32(d.data(), static_cast<uint32_t>(config_.name.size()));
  d.insert(d.end(), config_.name.begin(), config_.name.end());
  d.insert(d.end(), config_.description.begin(), config_.description.end());
  OptionReply(kRepServer, d.data(), d.size());
  OptionReply(kRepAck);
}

void NbdSession::OnOptionInfo(bool go) {
  const std::vector<uint8_t>& d = opt_data_;
  const char* what = go ? "GO" : "INFO";
  if (d.size() < 6) return OptionError(kRepErrInvalid, std::string(what) + ": data too short");
  const uint32_t name_len = Get32(d.data());
  if (name_len > d.size() - 6) {
    return OptionError(kRepErrInvalid, std::string(what) + ": name longer than the option");
  }
  const std::string name(d.begin() + 4, d.begin() + 4 + name_len);
  const uint16_t n_info = Get16(d.data() + 4 + name_len);
  if (6 + name_len + 2ull * n_info != d.size()) {
    return OptionError(kRepErrInvalid, std::string(what) + ": information list length mismatch");
  }
  bool want_name = false, want_description = false;
  for (uint16_t i = 0; i < n_info; ++i) {
    const uint16_t type = Get16(d.data() + 6 + name_len + 2 * i);
    want_name |= type == kInfoName;
    want_description |= type == kInfoDescription;
  }
  if (!IsOurExport(name)) return OptionError(kRepErrUnknown, "no export named '" + name + "'");

  uint8_t r[14];
  Put16(r, kInfoExport);
  Put64(r + 2, device_.Info().size_bytes);
  Put16(r + 10, TransmissionFlags());
  OptionReply(kRepInfo, r, 12);
  // Block sizes are sent whether or not the client asked: a client that did not ask may ignore
  // them, and misaligned requests are refused with EINVAL either way.
  const BlockSizes b = Sizes();
  Put16(r, kInfoBlockSize);
  Put32(r + 2, b.minimum);
  Put32(r + 6, b.preferred);
  Put32(r + 10, b.maximum);
  OptionReply(kRepInfo, r, 14);
  if (want_name) {
    std::vector<uint8_t> v(2);
    Put16(v.data(), kInfoName);
    v.insert(v.end(), config_.name.begin(), config_.name.end());
    OptionReply(kRepInfo, v.data(), v.size());
  }
  if (want_description && !config_.description.empty()) {
    std::vector<uint8_t> v(2);
    Put16(v.data(), kInfoDescription);
    v.insert(v.end(), config_.description.begin(), config_.description.end());
    OptionReply(kRepInfo, v.data(), v.size());
  }
  OptionReply(kRepAck);
  if (go) EnterTransmission();
}

void NbdSession::OnOptionMetaContext(bool set) {
  const char* what = set ? "SET_META_CONTEXT" : "LIST_META_CONTEXT";
  // A SET replaces the selection even when it fails.
  if (set) meta_allocation_ = false;
  if (!structured_) {
    return OptionError(kRepErrInvalid,
                       std::string(what) + " needs structured replies negotiated first");
  }
  const std::vector<uint8_t>& d = opt_data_;
  auto invalid = [&](const char* why) {
    OptionError(kRepErrInvalid, std::string(what) + ": " + why);
  };
  size_t at = 0;
  if (d.size() < 4) return invalid("data too short");
  const uint32_t name_len = Get32(d.data());
  at = 4;
  if (name_len > d.size() - at || d.size() - at - name_len < 4) return invalid("bad name length");
  const std::string name(d.begin() + at, d.begin() + at + name_len);
  at += name_len;
  const uint32_t n_queries = Get32(d.data() + at);
  at += 4;
  if (n_queries > (d.size() - at) / 4) return invalid("more queries than data");
  bool match = !set && n_queries == 0;  // an empty LIST asks for every context
  for (uint32_t i = 0; i < n_queries; ++i) {
    if (d.size() - at < 4) return invalid("truncated query");
    const uint32_t q_len = Get32(d.data() + at);
    at += 4;
    if (q_len > d.size() - at) return invalid("query longer than the option");
    const std::string q(d.begin() + at, d.begin() + at + q_len);
    at += q_len;
    if (q.find(':') == std::string::npos) return invalid("query without a namespace");
    // Unknown namespaces and leaf names are ignored, as the spec requires; "base:" is a wildcard
    // for LIST only.
    if (q == kAllocationContext || (!set && q == "base:")) match = true;
  }
  if (at != d.size()) return invalid("trailing bytes after the queries");
  if (!IsOurExport(name)) return OptionError(kRepErrUnknown, "no export named '" + name + "'");
  if (match) {
    std::vector<uint8_t> v(4);
    Put32(v.data(), set ? kMetaContextAllocation : 0);
    v.insert(v.end(), kAllocationContext, kAllocationContext + sizeof(kAllocationContext) - 1);
    OptionReply(kRepMetaContext, v.data(), v.size());
    if (set) meta_allocation_ = true;
  }
  OptionReply(kRepAck);
}

}  // namespace opensrd::block::nbd
