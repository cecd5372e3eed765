// MemoryRegistry: protection domains and registered memory regions, and the checks every RDMA
// access goes through (key, protection domain, access flags, bounds). Shared by the verbs API
// (local SGEs, lkey) and the executor (remote requests, rkey), so both apply one rule set.
//
// Keys: 24 random bits from libsodium's randombytes_buf above an 8-bit registration generation;
// a drawn key that is zero or held by any live region (as lkey or rkey) is drawn again, so a
// key is never shared, and a region registered again gets new keys (the old rkey then fails).
// Not thread-safe: the thread that drives the device owns it.
#pragma once
#include <cstddef>
#include <cstdint>
#include <unordered_map>

#include "common/status.h"
#include "opensrd/rdma.h"

namespace opensrd::rdma {

// Why an access was refused (kNone: allowed).
enum class AccessViolation : uint8_t { kNone, kKey, kPd, kAccess, kBounds };
const char* AccessViolationName(AccessViolation v);

class MemoryRegistry {
 public:
  MemoryRegistry();

  PdHandle AllocPd();
  Status DeallocPd(PdHandle pd);  // kInvalidArgument while regions of the PD exist
  bool PdExists(PdHandle pd) const;
  // Reference counting by the owner of QPs (a PD with QPs cannot be freed).
  void AddPdUser(PdHandle pd);
  void RemovePdUser(PdHandle pd);

  Result<MemoryRegion> Register(PdHandle pd, void* addr, size_t length, uint32_t access);
  Status Deregister(uint32_t lkey);
  const MemoryRegion* Find(uint32_t lkey) const;
  size_t region_count() const { return by_lkey_.size(); }

  // A remote peer's access through `rkey` to [va, va + len) needing `access`, by a QP of `pd`.
  // On kNone, *out points at va's byte. len == 0 is checked like any other length.
  AccessViolation CheckRemote(uint32_t rkey, PdHandle pd, uint64_t va, uint64_t len,
                              uint32_t access, uint8_t** out) const;
  // The owner's own SGE through `lkey` (access: kAccessLocalWrite when data lands there, 0 to
  // read).
  AccessViolation CheckLocal(const LocalSge& sge, PdHandle pd, uint32_t access,
                             uint8_t** out) const;

 private:
  struct Region {
    MemoryRegion mr;
  };
  uint32_t DrawKey();
  bool KeyLive(uint32_t key) const;
  static AccessViolation Check(const Region* r, PdHandle pd, uint64_t va, uint64_t len,
                               uint32_t access, uint8_t** out);

  std::unordered_map<uint32_t, Region> by_lkey_;
  std::unordered_map<uint32_t, uint32_t> rkey_to_lkey_;
  std::unordered_map<PdHandle, uint32_t> pds_;  // pd -> users (regions + QPs)
  PdHandle next_pd_ = 1;
  uint8_t generation_ = 0;
};

}  // namespace opensrd::rdma
