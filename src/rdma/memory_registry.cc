#include "rdma/memory_registry.h"

#include <sodium.h>

namespace opensrd::rdma {

const char* AccessViolationName(AccessViolation v) {
  switch (v) {
    case AccessViolation::kNone:
      return "none";
    case AccessViolation::kKey:
      return "key";
    case AccessViolation::kPd:
      return "pd";
    case AccessViolation::kAccess:
      return "access";
    case AccessViolation::kBounds:
      return "bounds";
  }
  return "?";
}

MemoryRegistry::MemoryRegistry() {
  // Idempotent; randombytes_buf needs it once per process.
  if (sodium_init() < 0) abort();
}

PdHandle MemoryRegistry::AllocPd() {
  PdHandle pd = next_pd_++;
  pds_[pd] = 0;
  return pd;
}

Status MemoryRegistry::DeallocPd(PdHandle pd) {
  auto it = pds_.find(pd);
  if (it == pds_.end()) return Status(Code::kNotFound, "unknown protection domain");
  if (it->second != 0) {
    return Status(Code::kInvalidArgument, "protection domain still has regions or queue pairs");
  }
  pds_.erase(it);
  return Status::Ok();
}

bool MemoryRegistry::PdExists(PdHandle pd) const {
  return pds_.count(pd) != 0;
}

void MemoryRegistry::AddPdUser(PdHandle pd) {
  ++pds_[pd];
}

void MemoryRegistry::RemovePdUser(PdHandle pd) {
  auto it = pds_.find(pd);
  if (it != pds_.end() && it->second > 0) --it->second;
}

bool MemoryRegistry::KeyLive(uint32_t key) const {
  return by_lkey_.count(key) != 0 || rkey_to_lkey_.count(key) != 0;
}

uint32_t MemoryRegistry::DrawKey() {
  for (;;) {
    uint32_t r = 0;
    randombytes_buf(&r, sizeof r);
    const uint32_t key = (r & 0xFFFFFF00u) | generation_;
    if (key != 0 && !KeyLive(key)) return key;
  }
}

Result<MemoryRegion> MemoryRegistry::Register(PdHandle pd, void* addr, size_t length,
                                              uint32_t access) {
  if (!PdExists(pd)) return Status(Code::kNotFound, "unknown protection domain");
  if (addr == nullptr || length == 0) {
    return Status(Code::kInvalidArgument, "memory region needs an address and a length");
  }
  const uint32_t known =
      kAccessLocalWrite | kAccessRemoteWrite | kAccessRemoteRead | kAccessRemoteAtomic;
  if ((access & ~known) != 0) return Status(Code::kInvalidArgument, "unknown access flag");
  // As in ibverbs: remote write or atomic access requires local write.
  if ((access & (kAccessRemoteWrite | kAccessRemoteAtomic)) && !(access & kAccessLocalWrite)) {
    return Status(Code::kInvalidArgument, "remote write/atomic access needs local write");
  }
  const uintptr_t a = reinterpret_cast<uintptr_t>(addr);
  if (a + length < a) return Status(Code::kInvalidArgument, "region wraps the address space");
  ++generation_;
  MemoryRegion mr{addr, length, access, pd, 0, 0};
  mr.lkey = DrawKey();
  by_lkey_[mr.lkey] = Region{mr};  // reserve it before drawing the rkey
  mr.rkey = DrawKey();
  by_lkey_[mr.lkey].mr.rkey = mr.rkey;
  rkey_to_lkey_[mr.rkey] = mr.lkey;
  ++pds_[pd];
  return mr;
}

Status MemoryRegistry::Deregister(uint32_t lkey) {
  auto it = by_lkey_.find(lkey);
  if (it == by_lkey_.end()) return Status(Code::kNotFound, "unknown lkey");
  rkey_to_lkey_.erase(it->second.mr.rkey);
  RemovePdUser(it->second.mr.pd);
  by_lkey_.erase(it);
  return Status::Ok();
}

const MemoryRegion* MemoryRegistry::Find(uint32_t lkey) const {
  auto it = by_lkey_.find(lkey);
  return it == by_lkey_.end() ? nullptr : &it->second.mr;
}

AccessViolation MemoryRegistry::Check(const Region* r, PdHandle pd, uint64_t va, uint64_t len,
                                      uint32_t access, uint8_t** out) {
  if (r == nullptr) return AccessViolation::kKey;
  if (r->mr.pd != pd) return AccessViolation::kPd;
  if ((r->mr.access & access) != access) return AccessViolation::kAccess;
  // Overflow-safe: va must lie in the region and len must fit in what follows va.
  const uint64_t start = reinterpret_cast<uintptr_t>(r->mr.addr);
  if (va < start) return AccessViolation::kBounds;
  const uint64_t off = va - start;
  if (off > r->mr.length || len > r->mr.length - off) return AccessViolation::kBounds;
  *out = static_cast<uint8_t*>(r->mr.addr) + off;
  return AccessViolation::kNone;
}

AccessViolation MemoryRegistry::CheckRemote(uint32_t rkey, PdHandle pd, uint64_t va, uint64_t len,
                                            uint32_t access, uint8_t** out) const {
  auto k = rkey_to_lkey_.find(rkey);
  const Region* r = nullptr;
  if (k != rkey_to_lkey_.end()) r = &by_lkey_.at(k->second);
  return Check(r, pd, va, len, access, out);
}

AccessViolation MemoryRegistry::CheckLocal(const LocalSge& sge, PdHandle pd, uint32_t access,
                                           uint8_t** out) const {
  auto it = by_lkey_.find(sge.lkey);
  return Check(it == by_lkey_.end() ? nullptr : &it->second, pd, sge.addr, sge.length, access, out);
}

}  // namespace opensrd::rdma
