#include "dma/regions.h"

#include <algorithm>

namespace opensrd::dma {

Result<uint32_t> RegionTable::Add(void* base, size_t len, uint64_t iova, uint32_t access) {
  if (base == nullptr || len == 0) return Status(Code::kInvalidArgument, "empty region");
  if (iova == 0) return Status(Code::kInvalidArgument, "IOVA 0 is the null address");
  if (iova + len < iova) return Status(Code::kInvalidArgument, "region wraps the IOVA space");
  // The engine computes base + offset for every byte it touches: that must not wrap either.
  if (reinterpret_cast<uintptr_t>(base) + len < reinterpret_cast<uintptr_t>(base)) {
    return Status(Code::kInvalidArgument, "region wraps the address space");
  }
  if ((access & kReadWrite) == 0 || (access & ~uint32_t{kReadWrite}) != 0) {
    return Status(Code::kInvalidArgument, "access must be kRead, kWrite or both");
  }
  if (regions_.size() >= kMaxRegions) return Status(Code::kResourceExhausted, "too many regions");
  for (const Region& r : regions_) {
    if (iova < r.iova + r.len && r.iova < iova + len) {
      return Status(Code::kInvalidArgument, "region overlaps a registered IOVA range");
    }
  }
  const Region r{iova, len, static_cast<uint8_t*>(base), access, next_id_++};
  regions_.insert(std::upper_bound(regions_.begin(), regions_.end(), iova,
                                   [](uint64_t a, const Region& x) { return a < x.iova; }),
                  r);
  return r.id;
}

Status RegionTable::Remove(uint32_t id) {
  auto it =
      std::find_if(regions_.begin(), regions_.end(), [id](const Region& r) { return r.id == id; });
  if (it == regions_.end()) return Status(Code::kNotFound, "no such region");
  regions_.erase(it);
  return Status::Ok();
}

uint8_t* RegionTable::Translate(uint64_t iova, uint64_t len, uint32_t access,
                                CompletionStatus* why) const {
  // The last region starting at or below iova is the only one that can hold it.
  auto it = std::upper_bound(regions_.begin(), regions_.end(), iova,
                             [](uint64_t a, const Region& x) { return a < x.iova; });
  if (len == 0 || it == regions_.begin()) {
    *why = CompletionStatus::kNotRegistered;
    return nullptr;
  }
  const Region& r = *--it;
  const uint64_t off = iova - r.iova;
  // Written so that no sum can wrap: off < r.len, then len <= r.len - off.
  if (off >= r.len || len > r.len - off) {
    *why = CompletionStatus::kNotRegistered;
    return nullptr;
  }
  if ((r.access & access) != access) {
    *why = CompletionStatus::kAccessDenied;
    return nullptr;
  }
  return r.base + off;
}

}  // namespace opensrd::dma
