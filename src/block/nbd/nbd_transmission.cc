// NbdSession, transmission phase: request validation, device submissions and replies.
#include <algorithm>
#include <cstring>
#include <string>

#include "block/nbd/nbd_session.h"

namespace opensrd::block::nbd {
namespace {

constexpr size_t kMaxDescriptors = 1 << 16;  // per BLOCK_STATUS reply (the spec allows fewer)

const char* CommandName(uint16_t cmd) {
  switch (cmd) {
    case kCmdRead:
      return "READ";
    case kCmdWrite:
      return "WRITE";
    case kCmdDisc:
      return "DISC";
    case kCmdFlush:
      return "FLUSH";
    case kCmdTrim:
      return "TRIM";
    case kCmdCache:
      return "CACHE";
    case kCmdWriteZeroes:
      return "WRITE_ZEROES";
    case kCmdBlockStatus:
      return "BLOCK_STATUS";
  }
  return "unknown command";
}

bool AllZero(const uint8_t* p, size_t n) {
  return n == 0 || (p[0] == 0 && std::memcmp(p, p + 1, n - 1) == 0);
}

}  // namespace

void NbdSession::OnRequestHeader() {
  if (Get32(hdr_) != kRequestMagic) return Close("bad request magic");
  req_flags_ = Get16(hdr_ + 4);
  req_cmd_ = Get16(hdr_ + 6);
  req_handle_ = Get64(hdr_ + 8);
  req_offset_ = Get64(hdr_ + 16);
  req_length_ = Get32(hdr_ + 24);
  // DISC has no reply; requests already in flight are still answered before the close.
  if (req_cmd_ == kCmdDisc) return Close("client disconnected");
  state_ = State::kRequestWait;
}

uint32_t NbdSession::RoomNeeded() const {
  const bool has_payload = req_cmd_ == kCmdRead || req_cmd_ == kCmdWrite;
  return has_payload && req_length_ <= sizes_.maximum ? req_length_ : 0;
}

bool NbdSession::HasRoomFor(uint32_t payload) const {
  if (pending_.empty() && out_.empty()) return true;  // one request always fits
  return pending_.size() < config_.max_in_flight &&
         held_bytes_ + output_bytes_ + payload <= config_.max_buffered;
}

uint32_t NbdSession::CheckRequest(const VolumeInfo& info, std::string* why) const {
  const uint16_t tflags = tflags_;  // what the client was told it may use
  const uint16_t cmd = req_cmd_;
  auto fail = [&](uint32_t err, const std::string& text) {
    *why = std::string(CommandName(cmd)) + ": " + text;
    return err;
  };
  uint16_t allowed = (tflags & kFlagSendFua) ? kCmdFlagFua : 0;
  switch (cmd) {
    case kCmdRead:
      if (structured_) allowed |= kCmdFlagDf;
      break;
    case kCmdWrite:
    case kCmdCache:
      break;
    case kCmdFlush:
      if (!(tflags & kFlagSendFlush)) return fail(kEinval, "flush is not supported");
      if (req_offset_ != 0 || req_length_ != 0) return fail(kEinval, "offset and length must be 0");
      break;
    case kCmdTrim:
      if (info.read_only) return fail(kEperm, "the export is read-only");
      if (!(tflags & kFlagSendTrim)) return fail(kEinval, "trim is not supported");
      break;
    case kCmdWriteZeroes:
      if (info.read_only) return fail(kEperm, "the export is read-only");
      if (!(tflags & kFlagSendWriteZeroes)) return fail(kEinval, "write zeroes is not supported");
      allowed |= kCmdFlagNoHole;
      if (tflags & kFlagSendFastZero) allowed |= kCmdFlagFastZero;
      break;
    case kCmdBlockStatus:
      if (!meta_allocation_) return fail(kEinval, "no metadata context was selected");
      allowed |= kCmdFlagReqOne;
      break;
    default:
      return fail(kEinval, "command " + std::to_string(cmd) + " is not supported");
  }
  if (req_flags_ & ~allowed) {
    return fail(kEinval, "flags 0x" + std::to_string(req_flags_) + " not valid here");
  }
  if (cmd == kCmdWrite && info.read_only) return fail(kEperm, "the export is read-only");
  if (cmd == kCmdFlush) return 0;
  if ((cmd == kCmdRead || cmd == kCmdWrite) && req_length_ > sizes_.maximum) {
    return fail(kEinval, "length " + std::to_string(req_length_) + " exceeds the maximum payload " +
                             std::to_string(sizes_.maximum));
  }
  if (req_offset_ > info.size_bytes || req_length_ > info.size_bytes - req_offset_) {
    const uint32_t err = (cmd == kCmdWrite || cmd == kCmdWriteZeroes) ? kEnospc : kEinval;
    return fail(err, "range [" + std::to_string(req_offset_) + ", +" + std::to_string(req_length_) +
                         ") is beyond the export's " + std::to_string(info.size_bytes) + " bytes");
  }
  if (req_offset_ % sizes_.minimum != 0 || req_length_ % sizes_.minimum != 0) {
    return fail(kEinval, "offset " + std::to_string(req_offset_) + " length " +
                             std::to_string(req_length_) + " not aligned to the " +
                             std::to_string(sizes_.minimum) + "-byte block");
  }
  if ((req_flags_ & kCmdFlagFastZero) && !info.can_fast_zero) {
    return fail(kEnotsup, "the device cannot zero quickly");
  }
  return 0;
}

void NbdSession::StartRequest() {
  state_ = State::kRequestHeader;
  const VolumeInfo info = device_.Info();
  std::string why;
  if (const uint32_t err = CheckRequest(info, &why); err != 0) {
    if (req_cmd_ == kCmdWrite && req_length_ > 0) {
      // The payload follows whatever we think of the header: read past it, storing nothing.
      to_skip_ = req_length_;
      skip_error_ = err;
      skip_why_ = std::move(why);
      state_ = State::kWriteSkip;
      return;
    }
    return ReplyError(req_handle_, req_cmd_, err, why);
  }
  Pending p;
  p.handle = req_handle_;
  p.cmd = req_cmd_;
  p.flags = req_flags_;
  p.offset = req_offset_;
  p.length = req_length_;
  const uint8_t fua = (req_flags_ & kCmdFlagFua) ? kFua : 0;
  // Zero-length requests are legal but pointless: answer them without the device.
  if (req_length_ == 0 && req_cmd_ != kCmdFlush) {
    if (req_cmd_ == kCmdBlockStatus) return ReplyError(p.handle, p.cmd, kEinval, "zero length");
    if (req_cmd_ == kCmdRead && structured_) return ReplyRead(p);
    return ReplyOk(p.handle);
  }
  switch (req_cmd_) {
    case kCmdRead:
      p.buf.reset(new uint8_t[p.length]);
      if (structured_ && config_.sparse_reads && !(p.flags & kCmdFlagDf)) {
        auto extents = device_.BlockStatus(p.offset, p.length);
        if (extents.ok()) p.extents = std::move(extents.value());
      }
      return Submit(std::move(p), Op::kRead, 0);
    case kCmdWrite:
      p.buf.reset(new uint8_t[p.length]);
      held_bytes_ += p.length;
      write_ = std::move(p);
      write_have_ = 0;
      state_ = State::kWritePayload;
      return;
    case kCmdFlush:
      return Submit(std::move(p), Op::kFlush, 0);
    case kCmdTrim:
      return Submit(std::move(p), Op::kDiscard, fua);
    case kCmdWriteZeroes: {
      uint8_t flags = fua;
      if (p.flags & kCmdFlagNoHole) flags |= kNoUnmap;
      if (p.flags & kCmdFlagFastZero) flags |= kFastZero;
      return Submit(std::move(p), Op::kWriteZeroes, flags);
    }
    case kCmdCache:
      // Nothing here caches on the client's behalf; the range was checked, which is all CACHE
      // promises.
      return ReplyOk(p.handle);
    case kCmdBlockStatus:
      return ReplyBlockStatus(p.handle, p.offset, p.length, (p.flags & kCmdFlagReqOne) != 0);
  }
}

void NbdSession::Submit(Pending p, Op op, uint8_t flags) {
  const uint64_t id = next_id_++;
  IoRequest r;
  r.op = op;
  r.flags = flags;
  r.offset = p.offset;
  r.length = op == Op::kFlush ? 0 : p.length;
  r.data = p.buf.get();
  // A WRITE's buffer was counted when its payload began to arrive.
  if (op == Op::kRead) held_bytes_ += p.length;
  submissions_.push_back(Submission{id, r});
  pending_.emplace(id, std::move(p));
}

void NbdSession::Complete(uint64_t id, const Status& status) {
  auto it = pending_.find(id);
  if (it == pending_.end()) return;  // not ours: ignore rather than trust it
  Pending p = std::move(it->second);
  pending_.erase(it);
  const bool has_buf = p.buf != nullptr;
  if (status.ok() && p.cmd == kCmdRead) return ReplyRead(p);  // the buffer is released once sent
  if (has_buf) held_bytes_ -= std::min<uint64_t>(held_bytes_, p.length);
  if (status.ok()) return ReplyOk(p.handle);
  uint32_t err = NbdErrorFor(status);
  // The contract's "zeroing would be slow" answer to kFastZero is kInvalidArgument; NBD calls it
  // ENOTSUP. (Range and alignment were checked before submission.)
  if (p.cmd == kCmdWriteZeroes && (p.flags & kCmdFlagFastZero) &&
      status.code() == Code::kInvalidArgument) {
    err = kEnotsup;
  }
  ReplyError(p.handle, p.cmd, err, status.message());
}

void NbdSession::ReplyOk(uint64_t handle) {
  Segment s;
  Put32(s.head, kSimpleReplyMagic);
  Put32(s.head + 4, 0);
  Put64(s.head + 8, handle);
  s.head_len = kSimpleReplyLen;
  Enqueue(std::move(s));
}

void NbdSession::ReplyError(uint64_t handle, uint16_t cmd, uint32_t error,
                            const std::string& message) {
  Segment s;
  if (!structured_) {
    Put32(s.head, kSimpleReplyMagic);
    Put32(s.head + 4, error);
    Put64(s.head + 8, handle);
    s.head_len = kSimpleReplyLen;
    return Enqueue(std::move(s));
  }
  const size_t len = std::min(message.size(), kMaxString);
  StructuredHeader(s, kReplyFlagDone, kReplyError, handle, static_cast<uint32_t>(6 + len));
  Put32(s.head + kStructuredHeaderLen, error);
  Put16(s.head + kStructuredHeaderLen + 4, static_cast<uint16_t>(len));
  s.head_len += 6;
  if (len > 0) {
    std::shared_ptr<uint8_t[]> body(new uint8_t[len]);
    std::memcpy(body.get(), message.data(), len);
    const uint8_t* b = body.get();
    PushBody(s, std::move(body), b, len);
  }
  Enqueue(std::move(s));
}

void NbdSession::ReplyRead(const Pending& p) {
  const uint8_t* data = p.buf.get();
  if (!structured_) {
    Segment s;
    Put32(s.head, kSimpleReplyMagic);
    Put32(s.head + 4, 0);
    Put64(s.head + 8, p.handle);
    s.head_len = kSimpleReplyLen;
    PushBody(s, p.buf, data, p.length);
    s.release = p.length;
    return Enqueue(std::move(s));
  }
  if (p.length == 0) {
    Segment s;
    StructuredHeader(s, kReplyFlagDone, kReplyNone, p.handle, 0);
    return Enqueue(std::move(s));
  }
  // Content chunks: holes only where the device reported one AND the bytes read are zero, so a
  // write racing the allocation query can never be reported as a hole.
  struct Run {
    uint64_t start;  // relative to p.offset
    uint64_t len;
    bool hole;
  };
  std::vector<Run> runs;
  auto add = [&](uint64_t start, uint64_t len, bool hole) {
    if (len == 0) return;
    if (!runs.empty() && runs.back().hole == hole) {
      runs.back().len += len;
    } else {
      runs.push_back(Run{start, len, hole});
    }
  };
  uint64_t at = 0;
  for (const Extent& e : p.extents) {
    if (at >= p.length) break;
    const uint64_t n = std::min<uint64_t>(e.length, p.length - at);
    add(at, n, (e.hole || e.zero) && AllZero(data + at, n));
    at += n;
  }
  add(at, p.length - at, false);
  for (size_t i = 0; i < runs.size(); ++i) {
    const Run& r = runs[i];
    const uint16_t flags = i + 1 == runs.size() ? kReplyFlagDone : 0;
    Segment s;
    if (r.hole) {
      StructuredHeader(s, flags, kReplyOffsetHole, p.handle, 12);
      Put64(s.head + kStructuredHeaderLen, p.offset + r.start);
      Put32(s.head + kStructuredHeaderLen + 8, static_cast<uint32_t>(r.len));
      s.head_len += 12;
    } else {
      StructuredHeader(s, flags, kReplyOffsetData, p.handle, static_cast<uint32_t>(8 + r.len));
      Put64(s.head + kStructuredHeaderLen, p.offset + r.start);
      s.head_len += 8;
      PushBody(s, p.buf, data + r.start, r.len);
    }
    if (flags & kReplyFlagDone) s.release = p.length;
    Enqueue(std::move(s));
  }
}

void NbdSession::ReplyBlockStatus(uint64_t handle, uint64_t offset, uint32_t length, bool req_one) {
  auto extents = device_.BlockStatus(offset, length);
  if (!extents.ok()) {
    return ReplyError(handle, kCmdBlockStatus, NbdErrorFor(extents.status()),
                      extents.status().message());
  }
  std::vector<std::pair<uint32_t, uint32_t>> d;  // (length, status)
  uint64_t covered = 0;
  for (const Extent& e : extents.value()) {
    if (covered >= length || d.size() >= kMaxDescriptors) break;
    const uint32_t n = static_cast<uint32_t>(std::min<uint64_t>(e.length, length - covered));
    if (n == 0) continue;
    const uint32_t state = (e.hole ? kStateHole : 0) | (e.zero ? kStateZero : 0);
    if (!d.empty() && d.back().second == state) {
      d.back().first += n;
    } else {
      d.emplace_back(n, state);
    }
    covered += n;
  }
  if (d.empty()) d.emplace_back(length, 0);  // "unknown" is always a safe answer
  if (req_one) d.resize(1);
  const size_t body_len = d.size() * 8;
  std::shared_ptr<uint8_t[]> body(new uint8_t[body_len]);
  for (size_t i = 0; i < d.size(); ++i) {
    Put32(body.get() + 8 * i, d[i].first);
    Put32(body.get() + 8 * i + 4, d[i].second);
  }
  Segment s;
  StructuredHeader(s, kReplyFlagDone, kReplyBlockStatus, handle,
                   static_cast<uint32_t>(4 + body_len));
  Put32(s.head + kStructuredHeaderLen, kMetaContextAllocation);
  s.head_len += 4;
  const uint8_t* b = body.get();
  PushBody(s, std::move(body), b, body_len);
  Enqueue(std::move(s));
}

}  // namespace opensrd::block::nbd
