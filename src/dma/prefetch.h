// The second parser of US09959227B1, in software. While the engine's parser works on
// descriptor i, LookaheadPrefetcher reads descriptors i+1..i+k from the ring and issues
// prefetches for the first lines of the sources they name (bounded per descriptor and in
// total), so the data is in cache, or on its way, when the parser gets there. The same
// look-ahead can instead run on a helper thread (SourceToucher) that loads the lines.
// PrefetchGovernor decides, for PrefetchMode::kAuto, whether prefetching pays.
// LookaheadPrefetcher and PrefetchGovernor are single-threaded; SourceToucher owns a thread.
#pragma once
#include <atomic>
#include <cstdint>
#include <thread>
#include <vector>

#include "dma/regions.h"
#include "opensrd/dma.h"

namespace opensrd::dma {

inline constexpr uint32_t kMaxLookahead = 32;

// Calls fn(ptr, bytes) for each source range (at most `budget` bytes in all, only inside
// registered readable memory) of the descriptor; returns the bytes named. Reads the shared slot
// directly: a torn read only misdirects a prefetch, never an access outside the regions.
template <typename Fn>
uint32_t ForEachSource(const Descriptor& slot, const RegionTable& regions, uint32_t budget,
                       Fn&& fn);

class LookaheadPrefetcher {
 public:
  explicit LookaheadPrefetcher(const PrefetchOptions& o);
  // The parser is at ring index `current` of a ring whose published head is `head`: prefetch
  // sources of descriptors after it, up to the look-ahead distance and byte budget, skipping
  // those already prefetched. Returns the bytes prefetched by this call.
  uint64_t Advance(const Descriptor* ring, uint32_t mask, uint64_t current, uint64_t head,
                   const RegionTable& regions);
  // Forget what was prefetched (the ring was reset).
  void Reset(uint64_t index);

 private:
  uint32_t lookahead_;
  uint32_t per_desc_;
  uint32_t max_ahead_;
  uint64_t next_ = 0;     // first index not looked at yet
  uint64_t retired_ = 0;  // first index whose bytes still count as ahead
  uint64_t ahead_ = 0;    // bytes prefetched for indices in [retired_, next_)
  uint32_t bytes_[kMaxLookahead + 1] = {};
};

// What one batch (the descriptors a channel runs in one Poll round) does about prefetching.
// kAuto's first rule comes before any measurement: a batch of fewer than kAutoMinBatch
// descriptors has nothing published behind the one the parser is on, so the look-ahead cannot
// find anything to prefetch and a trial could only measure its own clock reads (two per batch,
// about as long as a 64-byte copy). Such batches run without prefetch and are kept out of the
// governor's trials; larger batches go to the governor. (docs/DMA.md, "auto".)
enum class BatchPrefetch : uint8_t { kOff, kOn, kGovernor };
inline constexpr uint64_t kAutoMinBatch = 2;
BatchPrefetch DecideBatchPrefetch(PrefetchMode mode, bool prefetch_possible, uint64_t batch);

// kAuto's decision, fed with measurements only (no clock of its own), so tests can drive it.
// A trial runs one window of descriptors with prefetch on and one with it off (the order
// alternates between trials); prefetch stays on for the following hold period only if the
// cost per byte with it was lower by at least min_gain. A window's cost is the median of its
// batches' costs, so a batch stretched by preemption or an interrupt does not decide a trial.
// The hold doubles (up to 8x) while trials keep reaching the same verdict, so a settled
// workload pays for trials rarely.
class PrefetchGovernor {
 public:
  explicit PrefetchGovernor(const PrefetchOptions& o);
  bool enabled() const { return enabled_; }
  bool measuring() const { return phase_ != Phase::kHold; }
  // One batch of `descs` descriptors moving `bytes` in `ns`, run with enabled() as it is now.
  void Record(uint64_t descs, uint64_t bytes, uint64_t ns);
  uint64_t trials() const { return trials_; }
  // Cost per byte of the last trial (median batch), nanoseconds per KiB, with and without.
  double last_on_cost() const { return last_on_; }
  double last_off_cost() const { return last_off_; }

 private:
  enum class Phase { kFirst, kSecond, kHold };
  void Begin(Phase p);
  uint32_t window_;
  uint32_t hold_windows_;
  double min_gain_;
  Phase phase_ = Phase::kFirst;
  bool enabled_ = true;
  bool first_on_ = true;  // which setting the current trial measures first
  uint64_t descs_ = 0;
  std::vector<double> costs_;  // per batch of the current trial window, ns per KiB
  double cost_on_ = 0, cost_off_ = 0;
  double last_on_ = 0, last_off_ = 0;
  uint32_t hold_scale_ = 1;
  bool have_verdict_ = false;
  bool last_verdict_ = false;
  uint64_t trials_ = 0;
};

// The helper-thread variant: loads (not prefetch instructions) one byte per source line of the
// descriptors ahead of each channel's executor. The executor publishes the index it works on.
class SourceToucher {
 public:
  struct Channel {
    const SharedRing* ring;
    const std::atomic<uint64_t>* executing;  // ring index the executor is at
  };
  SourceToucher(const PrefetchOptions& o, const RegionTable* regions,
                std::vector<Channel> channels);
  ~SourceToucher();  // stops and joins
  uint64_t touched_bytes() const { return touched_.load(std::memory_order_relaxed); }

 private:
  void Run();
  PrefetchOptions options_;
  const RegionTable* regions_;
  std::vector<Channel> channels_;
  std::atomic<bool> stop_{false};
  std::atomic<uint64_t> touched_{0};
  std::thread thread_;
};

// ---- template definition ----

template <typename Fn>
uint32_t ForEachSource(const Descriptor& slot, const RegionTable& regions, uint32_t budget,
                       Fn&& fn) {
  CompletionStatus why;
  uint32_t done = 0;
  auto range = [&](uint64_t iova, uint64_t len) {
    const uint32_t n = static_cast<uint32_t>(len < budget - done ? len : budget - done);
    if (n == 0 || iova == 0) return;
    if (const uint8_t* p = regions.Translate(iova, n, kRead, &why)) {
      fn(p, n);
      done += n;
    }
  };
  const uint64_t src = slot.src, dst = slot.dst;
  const uint32_t length = slot.length;
  switch (static_cast<Opcode>(slot.opcode)) {
    case Opcode::kCopy:
    case Opcode::kCopyCrc:
      range(src, length);
      break;
    case Opcode::kCompare:
      range(src, length < budget / 2 ? length : budget / 2);
      range(dst, length);
      break;
    case Opcode::kCopySg: {
      const uint16_t count = slot.src_count;
      if (count == 0 || count > kMaxSgEntries) break;
      const uint8_t* list = regions.Translate(src, uint64_t{count} * sizeof(SgEntry), kRead, &why);
      if (list == nullptr) break;
      for (uint16_t i = 0; i < count && done < budget; ++i) {
        SgEntry e;
        __builtin_memcpy(&e, list + i * sizeof(SgEntry), sizeof e);
        range(e.iova, e.length);
      }
      break;
    }
    default:  // kFill reads nothing; invalid opcodes are the parser's to report
      break;
  }
  return done;
}

}  // namespace opensrd::dma
