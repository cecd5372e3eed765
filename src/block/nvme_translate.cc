#include "block/nvme_translate.h"

#include <cstring>

namespace opensrd::nvme {

uint16_t StatusFor(const Status& s, uint8_t opcode) {
  switch (s.code()) {
    case Code::kOk:
      return kSuccess;
    case Code::kInvalidArgument:
      return kInvalidField;
    case Code::kPermissionDenied:
      return kAccessDenied;
    case Code::kNotFound:
      return kInvalidNamespace;
    default:
      return opcode == kRead ? kUnrecoveredReadError : kWriteFault;
  }
}

Translation Translate(const Command& c, const Geometry& g, std::span<uint8_t> data) {
  Translation t;
  auto fail = [&](uint16_t st) {
    t.status = st;
    t.requests.clear();
    return t;
  };
  if (c.nsid != kNamespaceId) return fail(kInvalidNamespace);
  const uint64_t slba = uint64_t{c.cdw10} | (uint64_t{c.cdw11} << 32);
  const uint32_t blocks = (c.cdw12 & 0xFFFF) + 1;
  const uint64_t bytes = uint64_t{blocks} * g.block_size;
  auto in_range = [&](uint64_t lba, uint64_t count) {
    return lba <= g.ns_blocks && count <= g.ns_blocks - lba;
  };
  auto data_ok = [&](uint64_t len) {
    return c.data_len >= len && c.data_offset <= data.size() && len <= data.size() - c.data_offset;
  };
  const uint8_t fua = (c.cdw12 & kCdw12Fua) ? block::kFua : 0;
  switch (c.opcode) {
    case kFlush:
      t.requests.push_back({block::Op::kFlush, 0, 0, 0, nullptr});
      return t;
    case kRead:
    case kWrite:
      if (bytes > g.max_transfer) return fail(kInvalidField);
      if (!in_range(slba, blocks)) return fail(kLbaOutOfRange);
      if (!data_ok(bytes)) return fail(kDataTransferError);
      if (c.opcode == kWrite && g.read_only) return fail(kWriteToReadOnly);
      t.requests.push_back({c.opcode == kRead ? block::Op::kRead : block::Op::kWrite, fua,
                            slba * g.block_size, static_cast<uint32_t>(bytes),
                            data.data() + c.data_offset});
      return t;
    case kWriteZeroes:
      if (!in_range(slba, blocks)) return fail(kLbaOutOfRange);
      if (g.read_only) return fail(kWriteToReadOnly);
      t.requests.push_back(
          {block::Op::kWriteZeroes,
           static_cast<uint8_t>(fua | ((c.cdw12 & kCdw12Deallocate) ? 0 : block::kNoUnmap)),
           slba * g.block_size, static_cast<uint32_t>(bytes), nullptr});
      return t;
    case kDatasetManagement: {
      const uint32_t nr = (c.cdw10 & 0xFF) + 1;
      const uint64_t len = uint64_t{nr} * sizeof(DsmRange);
      if (!data_ok(len)) return fail(kDataTransferError);
      if (!(c.cdw11 & kDsmDeallocate)) return t;  // attributes only: a hint
      if (g.read_only) return fail(kWriteToReadOnly);
      for (uint32_t i = 0; i < nr; ++i) {
        DsmRange rg;
        std::memcpy(&rg, data.data() + c.data_offset + i * sizeof rg, sizeof rg);
        if (!in_range(rg.slba, rg.nlb) || uint64_t{rg.nlb} * g.block_size > UINT32_MAX) {
          return fail(kLbaOutOfRange);
        }
        if (rg.nlb == 0) continue;
        t.requests.push_back({block::Op::kDiscard, 0, rg.slba * g.block_size,
                              static_cast<uint32_t>(uint64_t{rg.nlb} * g.block_size), nullptr});
      }
      return t;
    }
    default:
      return fail(kInvalidOpcode);
  }
}

}  // namespace opensrd::nvme
