// Request validation shared by every BlockDevice (see include/opensrd/block.h).
#include <string>

#include "opensrd/block.h"

namespace opensrd::block {

const char* OpName(Op op) {
  switch (op) {
    case Op::kRead:
      return "read";
    case Op::kWrite:
      return "write";
    case Op::kFlush:
      return "flush";
    case Op::kDiscard:
      return "discard";
    case Op::kWriteZeroes:
      return "write_zeroes";
  }
  return "unknown";
}

Status ValidateRequest(const VolumeInfo& info, const IoRequest& r) {
  auto bad = [&](const std::string& why) {
    return Status(Code::kInvalidArgument, std::string(OpName(r.op)) + ": " + why);
  };
  switch (r.op) {
    case Op::kFlush:
      if (!info.can_flush) return bad("flush not supported");
      return Status::Ok();
    case Op::kRead:
    case Op::kWrite:
      if (r.length > info.max_transfer) {
        return bad("length " + std::to_string(r.length) + " exceeds max transfer " +
                   std::to_string(info.max_transfer));
      }
      if (r.data == nullptr && r.length > 0) return bad("no data buffer");
      break;
    case Op::kDiscard:
      if (!info.can_discard) return bad("discard not supported");
      break;
    case Op::kWriteZeroes:
      if (!info.can_write_zeroes) return bad("write zeroes not supported");
      break;
    default:
      return Status(Code::kInvalidArgument, "unknown block operation");
  }
  if (r.op != Op::kRead && info.read_only) return bad("volume is read-only");
  if ((r.flags & kFua) && !info.can_fua) return bad("FUA not supported");
  const uint64_t bs = info.block_size ? info.block_size : 1;
  if (r.offset % bs != 0 || r.length % bs != 0) {
    return bad("offset " + std::to_string(r.offset) + " length " + std::to_string(r.length) +
               " not aligned to the " + std::to_string(bs) + "-byte block");
  }
  if (r.offset > info.size_bytes || r.length > info.size_bytes - r.offset) {
    return bad("range [" + std::to_string(r.offset) + ", +" + std::to_string(r.length) +
               ") beyond the volume's " + std::to_string(info.size_bytes) + " bytes");
  }
  return Status::Ok();
}

}  // namespace opensrd::block
