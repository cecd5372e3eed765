// NbdSession framing, limits and output queue; the handshake is in nbd_handshake.cc and the
// transmission phase in nbd_transmission.cc.
#include "block/nbd/nbd_session.h"

#include <algorithm>
#include <cstring>
#include <utility>

namespace opensrd::block::nbd {

NbdSession::NbdSession(BlockDevice& device, NbdExportConfig config)
    : device_(device), config_(std::move(config)) {
  Segment s;
  Put64(s.head, kNbdMagic);
  Put64(s.head + 8, kOptMagic);
  Put16(s.head + 16, kFlagFixedNewstyle | kFlagNoZeroes);
  s.head_len = kGreetingLen;
  Enqueue(std::move(s));
}

NbdSession::~NbdSession() = default;

void NbdSession::Close(std::string reason) {
  if (state_ == State::kClosed) return;
  state_ = State::kClosed;
  close_reason_ = std::move(reason);
}

size_t NbdSession::Collect(const uint8_t* data, size_t n, size_t want) {
  const size_t take = std::min(n, want - hdr_have_);
  if (take > 0) std::memcpy(hdr_ + hdr_have_, data, take);
  hdr_have_ += take;
  return take;
}

size_t NbdSession::Feed(const uint8_t* data, size_t n) {
  size_t used = 0;
  for (;;) {
    const size_t left = n - used;
    const uint8_t* p = left > 0 ? data + used : nullptr;  // never offset a null pointer
    switch (state_) {
      case State::kClosed:
        return used;
      case State::kClientFlags:
        if (left == 0) return used;
        used += Collect(p, left, 4);
        if (hdr_have_ == 4) {
          hdr_have_ = 0;
          OnClientFlags();
        }
        break;
      case State::kOptionHeader:
        if (left == 0 || (hdr_have_ == 0 && output_bytes_ > kMaxHandshakeOutput)) return used;
        used += Collect(p, left, kOptionHeaderLen);
        if (hdr_have_ == kOptionHeaderLen) {
          hdr_have_ = 0;
          OnOptionHeader();
        }
        break;
      case State::kOptionData: {
        const size_t take = std::min(left, opt_len_ - opt_data_.size());
        if (take > 0) opt_data_.insert(opt_data_.end(), p, p + take);
        used += take;
        if (opt_data_.size() == opt_len_) {
          state_ = State::kOptionHeader;
          OnOption();
        } else if (left == 0) {
          return used;
        }
        break;
      }
      case State::kOptionSkip: {
        const size_t take = std::min<uint64_t>(left, to_skip_);
        to_skip_ -= take;
        used += take;
        if (to_skip_ == 0) {
          state_ = State::kOptionHeader;
          OptionError(kRepErrTooBig,
                      "option data longer than " + std::to_string(kMaxOptionData) + " bytes");
        } else if (left == 0) {
          return used;
        }
        break;
      }
      case State::kRequestHeader:
        if (left == 0) return used;
        used += Collect(p, left, kRequestHeaderLen);
        if (hdr_have_ == kRequestHeaderLen) {
          hdr_have_ = 0;
          OnRequestHeader();
        }
        break;
      case State::kRequestWait: {
        if (!HasRoomFor(RoomNeeded())) return used;
        StartRequest();
        break;
      }
      case State::kWritePayload: {
        const size_t take = std::min<size_t>(left, write_.length - write_have_);
        if (take > 0) std::memcpy(write_.buf.get() + write_have_, p, take);
        write_have_ += take;
        used += take;
        if (write_have_ == write_.length) {
          state_ = State::kRequestHeader;
          uint8_t flags = (write_.flags & kCmdFlagFua) ? kFua : 0;
          Submit(std::move(write_), Op::kWrite, flags);
          write_ = Pending{};
        } else if (left == 0) {
          return used;
        }
        break;
      }
      case State::kWriteSkip: {
        const size_t take = std::min<uint64_t>(left, to_skip_);
        to_skip_ -= take;
        used += take;
        if (to_skip_ == 0) {
          state_ = State::kRequestHeader;
          ReplyError(req_handle_, kCmdWrite, skip_error_, skip_why_);
        } else if (left == 0) {
          return used;
        }
        break;
      }
    }
  }
}

void NbdSession::TakeSubmissions(std::vector<Submission>* out) {
  out->insert(out->end(), submissions_.begin(), submissions_.end());
  submissions_.clear();
}

void NbdSession::Enqueue(Segment s) {
  output_bytes_ += s.head_len + s.body_len;
  out_.push_back(std::move(s));
}

void NbdSession::PushBody(Segment& s, std::shared_ptr<uint8_t[]> owner, const uint8_t* body,
                          size_t len) {
  s.owner = std::move(owner);
  s.body = body;
  s.body_len = len;
}

void NbdSession::StructuredHeader(Segment& s, uint16_t flags, uint16_t type, uint64_t handle,
                                  uint32_t length) {
  Put32(s.head, kStructuredReplyMagic);
  Put16(s.head + 4, flags);
  Put16(s.head + 6, type);
  Put64(s.head + 8, handle);
  Put32(s.head + 16, length);
  s.head_len = kStructuredHeaderLen;
}

size_t NbdSession::GatherOutput(iovec* iov, size_t max_iov) const {
  size_t k = 0;
  for (const Segment& s : out_) {
    if (k == max_iov) break;
    size_t skip = s.sent;
    if (skip < s.head_len) {
      iov[k++] = iovec{const_cast<uint8_t*>(s.head + skip), s.head_len - skip};
      skip = 0;
    } else {
      skip -= s.head_len;
    }
    if (s.body_len > skip && k < max_iov) {
      iov[k++] = iovec{const_cast<uint8_t*>(s.body + skip), s.body_len - skip};
    }
  }
  return k;
}

void NbdSession::ConsumeOutput(size_t n) {
  output_bytes_ -= std::min(n, output_bytes_);
  while (n > 0 && !out_.empty()) {
    Segment& s = out_.front();
    const size_t rest = s.head_len + s.body_len - s.sent;
    if (n < rest) {
      s.sent += n;
      return;
    }
    n -= rest;
    held_bytes_ -= std::min(held_bytes_, s.release);
    out_.pop_front();
  }
}

uint32_t NbdErrorFor(const Status& status) {
  switch (status.code()) {
    case Code::kOk:
      return 0;
    case Code::kInvalidArgument:
    case Code::kMalformed:
    case Code::kNotFound:
      return kEinval;
    case Code::kCancelled:
      return kEshutdown;
    case Code::kResourceExhausted:
      return kEnospc;
    default:
      return kEio;
  }
}

}  // namespace opensrd::block::nbd
