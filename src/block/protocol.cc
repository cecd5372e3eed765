// Encoders and parsers of the network block protocol (layouts in docs/WIRE.md, "Block protocol").
#include "block/protocol.h"

#include "common/byte_io.h"

namespace opensrd::block::proto {
namespace {

constexpr uint8_t kKnownIoFlags = kFua | kNoUnmap | kFastZero;
constexpr uint8_t kInfoReadOnly = 0x01;
constexpr uint8_t kInfoFlush = 0x02;
constexpr uint8_t kInfoFua = 0x04;
constexpr uint8_t kInfoDiscard = 0x08;
constexpr uint8_t kInfoWriteZeroes = 0x10;
constexpr uint8_t kInfoFastZero = 0x20;

Status Bad(const std::string& what) {
  return Status(Code::kMalformed, "block protocol: " + what);
}

void WritePrefix(ByteWriter& w, Type t) {
  w.U16(kMagic);
  w.U8(kVersion);
  w.U8(static_cast<uint8_t>(t));
}

// Checks magic, version and type, and that the message holds at least `fixed` bytes.
Status CheckPrefix(std::span<const uint8_t> msg, Type want, size_t fixed) {
  Result<Type> t = PeekType(msg);
  if (!t.ok()) return t.status();
  if (*t != want) return Bad("unexpected message type " + std::to_string(static_cast<int>(*t)));
  if (msg.size() < fixed) {
    return Bad("message of " + std::to_string(msg.size()) + " bytes shorter than its " +
               std::to_string(fixed) + "-byte header");
  }
  return Status::Ok();
}

bool KnownOp(uint8_t op) {
  return op <= static_cast<uint8_t>(Op::kWriteZeroes);
}

uint8_t InfoFlags(const VolumeInfo& i) {
  return static_cast<uint8_t>((i.read_only ? kInfoReadOnly : 0) | (i.can_flush ? kInfoFlush : 0) |
                              (i.can_fua ? kInfoFua : 0) | (i.can_discard ? kInfoDiscard : 0) |
                              (i.can_write_zeroes ? kInfoWriteZeroes : 0) |
                              (i.can_fast_zero ? kInfoFastZero : 0));
}

// Name and token of ATTACH and RESIZE: lengths at bytes 4 and 6, bytes after the fixed part.
Result<size_t> EncodeNameToken(ByteWriter& w, const std::string& name, const std::string& token,
                               size_t fixed, size_t cap) {
  if (name.empty() || name.size() > kMaxName) return Bad("volume name must be 1-255 bytes");
  if (token.size() > kMaxToken) return Bad("token longer than 255 bytes");
  const size_t len = fixed + name.size() + token.size();
  if (cap < len) return Status(Code::kInvalidArgument, "buffer too small");
  w.U16(static_cast<uint16_t>(name.size()));
  w.U16(static_cast<uint16_t>(token.size()));
  return len;
}

Status ParseNameToken(std::span<const uint8_t> msg, size_t fixed, std::string& name,
                      std::string& token) {
  ByteReader r{msg.data() + 4};
  const size_t name_len = r.U16();
  const size_t token_len = r.U16();
  if (name_len == 0 || name_len > kMaxName) return Bad("volume name length out of range");
  if (token_len > kMaxToken) return Bad("token length out of range");
  if (msg.size() != fixed + name_len + token_len) {
    return Bad("message length " + std::to_string(msg.size()) + " disagrees with name and token");
  }
  name.assign(reinterpret_cast<const char*>(msg.data() + fixed), name_len);
  token.assign(reinterpret_cast<const char*>(msg.data() + fixed + name_len), token_len);
  return Status::Ok();
}

Result<std::string> ParseMessage(std::span<const uint8_t> msg, size_t fixed, size_t len) {
  if (len > kMaxReplyMessage) return Bad("reply message too long");
  if (msg.size() != fixed + len) return Bad("reply length disagrees with its message");
  return std::string(reinterpret_cast<const char*>(msg.data() + fixed), len);
}

}  // namespace

const char* WireStatusName(WireStatus s) {
  switch (s) {
    case WireStatus::kOk:
      return "ok";
    case WireStatus::kInvalid:
      return "invalid request";
    case WireStatus::kIoError:
      return "I/O error";
    case WireStatus::kNoSpace:
      return "no space";
    case WireStatus::kReadOnly:
      return "read-only volume";
    case WireStatus::kBadHandle:
      return "not attached";
    case WireStatus::kNotSupported:
      return "not supported";
    case WireStatus::kDenied:
      return "access denied";
    case WireStatus::kNoVolume:
      return "no such volume";
    case WireStatus::kMalformed:
      return "malformed request";
  }
  return "unknown status";
}

Status ToStatus(WireStatus s, const std::string& message) {
  const std::string text = message.empty() ? std::string(WireStatusName(s))
                                           : std::string(WireStatusName(s)) + ": " + message;
  switch (s) {
    case WireStatus::kOk:
      return Status::Ok();
    case WireStatus::kInvalid:
    case WireStatus::kReadOnly:
    case WireStatus::kNotSupported:
      return Status(Code::kInvalidArgument, text);
    case WireStatus::kNoVolume:
    case WireStatus::kBadHandle:
      return Status(Code::kNotFound, text);
    case WireStatus::kDenied:
      return Status(Code::kPermissionDenied, text);
    case WireStatus::kNoSpace:
      return Status(Code::kResourceExhausted, text);
    case WireStatus::kMalformed:
      return Status(Code::kMalformed, text);
    case WireStatus::kIoError:
      break;
  }
  return Status(Code::kIoError, text);
}

WireStatus FromCode(Code c) {
  switch (c) {
    case Code::kOk:
      return WireStatus::kOk;
    case Code::kInvalidArgument:
      return WireStatus::kInvalid;
    case Code::kNotFound:
      return WireStatus::kBadHandle;
    case Code::kPermissionDenied:
      return WireStatus::kDenied;
    case Code::kResourceExhausted:
      return WireStatus::kNoSpace;
    case Code::kMalformed:
      return WireStatus::kMalformed;
    default:
      return WireStatus::kIoError;
  }
}

Result<Type> PeekType(std::span<const uint8_t> msg) {
  if (msg.size() < 4) return Bad("message shorter than 4 bytes");
  ByteReader r{msg.data()};
  if (r.U16() != kMagic) return Bad("bad magic");
  if (r.U8() != kVersion) return Bad("unsupported version");
  const uint8_t t = r.U8();
  if (t == 0 || t > kMaxType) return Bad("unknown message type " + std::to_string(t));
  return static_cast<Type>(t);
}

void EncodeIo(const IoHeader& h, std::span<uint8_t, kIoHeaderLen> out) {
  ByteWriter w{out.data()};
  WritePrefix(w, Type::kIo);
  w.U32(h.handle);
  w.U64(h.request_id);
  w.U64(h.offset);
  w.U32(h.length);
  w.U8(static_cast<uint8_t>(h.op));
  w.U8(h.flags);
  w.U16(h.queue);
  w.U64(h.sequence);
  w.U64(0);
}

Result<IoHeader> ParseIo(std::span<const uint8_t> msg, std::span<const uint8_t>* data) {
  if (Status s = CheckPrefix(msg, Type::kIo, kIoHeaderLen); !s.ok()) return s;
  ByteReader r{msg.data() + 4};
  IoHeader h;
  h.handle = r.U32();
  h.request_id = r.U64();
  h.offset = r.U64();
  h.length = r.U32();
  const uint8_t op = r.U8();
  h.flags = r.U8();
  h.queue = r.U16();
  h.sequence = r.U64();
  if (!KnownOp(op)) return Bad("unknown operation " + std::to_string(op));
  h.op = static_cast<Op>(op);
  if (h.flags & ~kKnownIoFlags) return Bad("unknown request flags");
  if (h.op == Op::kFlush && (h.offset != 0 || h.length != 0)) {
    return Bad("flush with an offset or length");
  }
  const size_t want = kIoHeaderLen + (h.op == Op::kWrite ? h.length : 0);
  if (msg.size() != want) {
    return Bad("message of " + std::to_string(msg.size()) + " bytes for a " + OpName(h.op) +
               " of " + std::to_string(h.length) + " bytes");
  }
  if (data) *data = msg.subspan(kIoHeaderLen);
  return h;
}

void EncodeIoReply(const IoReply& rep, std::span<uint8_t, kIoReplyLen> out) {
  ByteWriter w{out.data()};
  WritePrefix(w, Type::kIoReply);
  w.U32(rep.handle);
  w.U64(rep.request_id);
  w.U8(static_cast<uint8_t>(rep.status));
  w.Zeros(3);
  w.U32(rep.length);
  w.U64(0);
}

Result<IoReply> ParseIoReply(std::span<const uint8_t> msg, std::span<const uint8_t>* data) {
  if (Status s = CheckPrefix(msg, Type::kIoReply, kIoReplyLen); !s.ok()) return s;
  ByteReader r{msg.data() + 4};
  IoReply rep;
  rep.handle = r.U32();
  rep.request_id = r.U64();
  const uint8_t st = r.U8();
  r.Skip(3);
  rep.length = r.U32();
  if (st > static_cast<uint8_t>(WireStatus::kMalformed)) return Bad("unknown status");
  rep.status = static_cast<WireStatus>(st);
  if (rep.status != WireStatus::kOk && rep.length != 0) return Bad("error reply with data");
  if (msg.size() != kIoReplyLen + rep.length) return Bad("reply length disagrees with its data");
  if (data) *data = msg.subspan(kIoReplyLen);
  return rep;
}

Result<size_t> EncodeAttach(const Attach& a, std::span<uint8_t> out) {
  ByteWriter w{out.data()};
  if (out.size() < kAttachFixedLen) return Status(Code::kInvalidArgument, "buffer too small");
  WritePrefix(w, Type::kAttach);
  Result<size_t> len = EncodeNameToken(w, a.volume, a.token, kAttachFixedLen, out.size());
  if (!len.ok()) return len;
  w.U64(a.request_id);
  w.U64(a.session);
  w.U64(0);
  w.Bytes(a.volume.data(), a.volume.size());
  w.Bytes(a.token.data(), a.token.size());
  return len;
}

Result<Attach> ParseAttach(std::span<const uint8_t> msg) {
  if (Status s = CheckPrefix(msg, Type::kAttach, kAttachFixedLen); !s.ok()) return s;
  Attach a;
  if (Status s = ParseNameToken(msg, kAttachFixedLen, a.volume, a.token); !s.ok()) return s;
  ByteReader r{msg.data() + 8};
  a.request_id = r.U64();
  a.session = r.U64();
  return a;
}

Result<size_t> EncodeAttachReply(const AttachReply& rep, std::span<uint8_t> out) {
  const std::string msg = rep.message.substr(0, kMaxReplyMessage);
  const size_t len = kAttachReplyFixedLen + msg.size();
  if (out.size() < len) return Status(Code::kInvalidArgument, "buffer too small");
  ByteWriter w{out.data()};
  WritePrefix(w, Type::kAttachReply);
  w.U32(rep.handle);
  w.U64(rep.request_id);
  w.U8(static_cast<uint8_t>(rep.status));
  w.U8(InfoFlags(rep.info));
  w.U16(static_cast<uint16_t>(msg.size()));
  w.U32(rep.info.block_size);
  w.U64(rep.info.size_bytes);
  w.U32(rep.info.atomic_write_unit);
  w.U32(rep.info.max_transfer);
  w.Bytes(msg.data(), msg.size());
  return len;
}

Result<AttachReply> ParseAttachReply(std::span<const uint8_t> msg) {
  if (Status s = CheckPrefix(msg, Type::kAttachReply, kAttachReplyFixedLen); !s.ok()) return s;
  ByteReader r{msg.data() + 4};
  AttachReply rep;
  rep.handle = r.U32();
  rep.request_id = r.U64();
  const uint8_t st = r.U8();
  const uint8_t flags = r.U8();
  const size_t msg_len = r.U16();
  rep.info.block_size = r.U32();
  rep.info.size_bytes = r.U64();
  rep.info.atomic_write_unit = r.U32();
  rep.info.max_transfer = r.U32();
  if (st > static_cast<uint8_t>(WireStatus::kMalformed)) return Bad("unknown status");
  rep.status = static_cast<WireStatus>(st);
  if (rep.status == WireStatus::kOk) {
    const uint32_t bs = rep.info.block_size;
    if (bs < 512 || bs > 65536 || (bs & (bs - 1)) != 0) return Bad("block size out of range");
    if (rep.info.size_bytes % bs != 0) return Bad("volume size not a multiple of its block");
    if (rep.info.max_transfer < bs) return Bad("max transfer below the block size");
  }
  rep.info.read_only = flags & kInfoReadOnly;
  rep.info.can_flush = flags & kInfoFlush;
  rep.info.can_fua = flags & kInfoFua;
  rep.info.can_discard = flags & kInfoDiscard;
  rep.info.can_write_zeroes = flags & kInfoWriteZeroes;
  rep.info.can_fast_zero = flags & kInfoFastZero;
  Result<std::string> m = ParseMessage(msg, kAttachReplyFixedLen, msg_len);
  if (!m.ok()) return m.status();
  rep.message = std::move(m.value());
  return rep;
}

Result<size_t> EncodeResize(const Resize& rz, std::span<uint8_t> out) {
  if (out.size() < kResizeFixedLen) return Status(Code::kInvalidArgument, "buffer too small");
  ByteWriter w{out.data()};
  WritePrefix(w, Type::kResize);
  Result<size_t> len = EncodeNameToken(w, rz.volume, rz.token, kResizeFixedLen, out.size());
  if (!len.ok()) return len;
  w.U64(rz.request_id);
  w.U64(rz.new_size);
  w.U64(0);
  w.Bytes(rz.volume.data(), rz.volume.size());
  w.Bytes(rz.token.data(), rz.token.size());
  return len;
}

Result<Resize> ParseResize(std::span<const uint8_t> msg) {
  if (Status s = CheckPrefix(msg, Type::kResize, kResizeFixedLen); !s.ok()) return s;
  Resize rz;
  if (Status s = ParseNameToken(msg, kResizeFixedLen, rz.volume, rz.token); !s.ok()) return s;
  ByteReader r{msg.data() + 8};
  rz.request_id = r.U64();
  rz.new_size = r.U64();
  return rz;
}

Result<size_t> EncodeResizeReply(const ResizeReply& rep, std::span<uint8_t> out) {
  const std::string msg = rep.message.substr(0, kMaxReplyMessage);
  const size_t len = kResizeReplyFixedLen + msg.size();
  if (out.size() < len) return Status(Code::kInvalidArgument, "buffer too small");
  ByteWriter w{out.data()};
  WritePrefix(w, Type::kResizeReply);
  w.U16(static_cast<uint16_t>(msg.size()));
  w.U16(0);
  w.U64(rep.request_id);
  w.U8(static_cast<uint8_t>(rep.status));
  w.Zeros(7);
  w.U64(rep.size);
  w.Bytes(msg.data(), msg.size());
  return len;
}

Result<ResizeReply> ParseResizeReply(std::span<const uint8_t> msg) {
  if (Status s = CheckPrefix(msg, Type::kResizeReply, kResizeReplyFixedLen); !s.ok()) return s;
  ByteReader r{msg.data() + 4};
  ResizeReply rep;
  const size_t msg_len = r.U16();
  r.Skip(2);
  rep.request_id = r.U64();
  const uint8_t st = r.U8();
  r.Skip(7);
  rep.size = r.U64();
  if (st > static_cast<uint8_t>(WireStatus::kMalformed)) return Bad("unknown status");
  rep.status = static_cast<WireStatus>(st);
  Result<std::string> m = ParseMessage(msg, kResizeReplyFixedLen, msg_len);
  if (!m.ok()) return m.status();
  rep.message = std::move(m.value());
  return rep;
}

void EncodeInfo(const Info& i, std::span<uint8_t, kInfoLen> out) {
  ByteWriter w{out.data()};
  WritePrefix(w, Type::kInfo);
  w.U32(i.handle);
  w.U64(i.size);
  w.U64(0);
}

Result<Info> ParseInfo(std::span<const uint8_t> msg) {
  if (Status s = CheckPrefix(msg, Type::kInfo, kInfoLen); !s.ok()) return s;
  if (msg.size() != kInfoLen) return Bad("INFO of the wrong length");
  ByteReader r{msg.data() + 4};
  Info i;
  i.handle = r.U32();
  i.size = r.U64();
  return i;
}

}  // namespace opensrd::block::proto
