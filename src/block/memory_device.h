// MemoryDevice: a sparse in-memory BlockDevice for tests (and the base of a later crash-test
// backend). Storage is a map of fixed-size pages; a page exists only once something non-hole was
// written to it, so BlockStatus reports holes and data exactly: DISCARD and WRITE_ZEROES free the
// pages they cover whole (partial pages are zeroed in place), WRITE_ZEROES with kNoUnmap keeps
// (and allocates) every page it covers. Requests are checked with ValidateRequest and complete
// inline, inside Submit, on the caller's thread.
//
// Durability: by default memory is this device's stable storage and Flush is a no-op. With
// `volatile_cache`, it behaves like a disk with a write-back cache: every change is visible at
// once but becomes durable only at a Flush (all of it, whichever caller made it) or, for the
// pages a kFua request touched, when that request completes; PowerCut() throws away everything
// not yet durable. Durability is tracked per page, so a FUA or flush may also make other
// not-yet-durable bytes of the same page durable (never less than promised).
//
// Thread-safety: every method may be called from any thread; one mutex guards the pages, so
// concurrent requests are serialized (each request is atomic with respect to the others).
#pragma once

#include <atomic>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <vector>

#include "opensrd/block.h"

namespace opensrd::block {

class MemoryDevice : public BlockDevice {
 public:
  // page_size: allocation granularity in bytes, a power of two and a multiple of
  // info.block_size (4096 by default).
  explicit MemoryDevice(VolumeInfo info, uint32_t page_size = 4096, bool volatile_cache = false);

  VolumeInfo Info() const override;
  void Submit(const IoRequest& request, IoCallback done) override;
  Result<std::vector<Extent>> BlockStatus(uint64_t offset, uint64_t length) override;

  // Live resize: bytes beyond a smaller size are dropped; a larger size reads as a hole.
  void Resize(uint64_t size_bytes);
  // Fails every later request of `op` with `code` (tests of error paths); nullopt clears it.
  void InjectError(Op op, std::optional<Code> code);

  struct Counters {
    uint64_t reads = 0, writes = 0, flushes = 0, discards = 0, write_zeroes = 0;
    uint64_t fua = 0;  // requests that carried kFua
  };
  Counters counters() const;
  uint64_t allocated_pages() const;

  // volatile_cache only: drop every change not yet durable (a simulated power failure).
  void PowerCut();
  uint64_t dirty_pages() const;  // pages whose contents are not yet durable

 private:
  Status Execute(const IoRequest& r);
  Status Mutate(const IoRequest& r);  // applies a validated request's effect; mu_ held
  void ZeroRange(uint64_t offset, uint64_t length, bool keep_allocated);  // mu_ held
  // volatile_cache: note the pages of [offset, +length) that exist now (before and after a
  // change), and make pages durable. mu_ held.
  void MarkDirty(uint64_t offset, uint64_t length);
  void Persist(uint64_t first_page, uint64_t end_page);

  const uint32_t page_size_;
  const bool volatile_cache_;
  mutable std::mutex mu_;
  VolumeInfo info_;                                         // guarded by mu_
  std::map<uint64_t, std::unique_ptr<uint8_t[]>> pages_;    // page index -> page_size_ bytes
  std::map<uint64_t, std::unique_ptr<uint8_t[]>> durable_;  // volatile_cache: what survives
  std::set<uint64_t> dirty_;  // volatile_cache: pages whose pages_ state is not durable
  std::optional<Code> injected_[5];
  Counters counters_;
};

}  // namespace opensrd::block
