// The engine's registered memory: IOVA ranges mapped to this process's addresses with an access
// mask. Every address a descriptor names is translated here, and the translation fails for
// anything not wholly inside one region, so the engine cannot be steered outside them.
// Not thread-safe: mutated only while no engine thread runs; read concurrently afterwards.
#pragma once
#include <cstddef>
#include <cstdint>
#include <vector>

#include "opensrd/dma.h"

namespace opensrd::dma {

class RegionTable {
 public:
  static constexpr size_t kMaxRegions = 256;

  Result<uint32_t> Add(void* base, size_t len, uint64_t iova, uint32_t access);
  Status Remove(uint32_t id);

  // The local address of [iova, iova+len) if one region holds all of it with `access`;
  // otherwise nullptr and *why is kNotRegistered or kAccessDenied. len must be > 0.
  uint8_t* Translate(uint64_t iova, uint64_t len, uint32_t access, CompletionStatus* why) const;

 private:
  struct Region {
    uint64_t iova;
    uint64_t len;
    uint8_t* base;
    uint32_t access;
    uint32_t id;
  };
  std::vector<Region> regions_;  // sorted by iova, disjoint
  uint32_t next_id_ = 1;
};

}  // namespace opensrd::dma
