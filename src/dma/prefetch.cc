#include "dma/prefetch.h"

#include <algorithm>
#include <chrono>
#include <cstring>

#if defined(__x86_64__)
#include <immintrin.h>
#endif

namespace opensrd::dma {
namespace {

constexpr uintptr_t kLine = 64;

void PrefetchLines(const uint8_t* p, uint32_t n) {
  const uintptr_t first = reinterpret_cast<uintptr_t>(p) & ~(kLine - 1);
  const uintptr_t end = reinterpret_cast<uintptr_t>(p) + n;
  for (uintptr_t a = first; a < end; a += kLine) {
    __builtin_prefetch(reinterpret_cast<const void*>(a), 0, 3);
  }
}

void CpuRelax() {
#if defined(__x86_64__)
  _mm_pause();
#endif
}

}  // namespace

LookaheadPrefetcher::LookaheadPrefetcher(const PrefetchOptions& o)
    : lookahead_(std::clamp<uint32_t>(o.lookahead, 1, kMaxLookahead)),
      per_desc_(o.max_bytes_per_desc),
      max_ahead_(o.max_bytes_ahead) {}

void LookaheadPrefetcher::Reset(uint64_t index) {
  next_ = retired_ = index;
  ahead_ = 0;
}

uint64_t LookaheadPrefetcher::Advance(const Descriptor* ring, uint32_t mask, uint64_t current,
                                      uint64_t head, const RegionTable& regions) {
  // The descriptor being parsed no longer counts as ahead: its lines are being used.
  // Called again at the same index: nothing retires. Moved backwards or past what was looked
  // at (a reset ring, or prefetch switched off for a while): start afresh.
  if (current + 1 < retired_ || current > next_) Reset(current);
  for (; retired_ <= current && retired_ < next_; ++retired_) {
    ahead_ -= bytes_[retired_ % (kMaxLookahead + 1)];
  }
  if (retired_ <= current) retired_ = current + 1;
  if (next_ <= current) next_ = current + 1;
  uint64_t issued = 0;
  while (next_ < head && next_ - current <= lookahead_ && ahead_ < max_ahead_) {
    const uint32_t budget =
        static_cast<uint32_t>(std::min<uint64_t>(per_desc_, max_ahead_ - ahead_));
    const uint32_t n = ForEachSource(ring[next_ & mask], regions, budget, PrefetchLines);
    bytes_[next_ % (kMaxLookahead + 1)] = n;
    ahead_ += n;
    issued += n;
    ++next_;
  }
  return issued;
}

BatchPrefetch DecideBatchPrefetch(PrefetchMode mode, bool prefetch_possible, uint64_t batch) {
  if (!prefetch_possible) return BatchPrefetch::kOff;  // a device backend, or the helper thread
  switch (mode) {
    case PrefetchMode::kOff:
      return BatchPrefetch::kOff;
    case PrefetchMode::kOn:
      return BatchPrefetch::kOn;
    case PrefetchMode::kAuto:
      return batch < kAutoMinBatch ? BatchPrefetch::kOff : BatchPrefetch::kGovernor;
  }
  return BatchPrefetch::kOff;
}

PrefetchGovernor::PrefetchGovernor(const PrefetchOptions& o)
    : window_(std::max<uint32_t>(o.auto_window, 1)),
      hold_windows_(std::max<uint32_t>(o.auto_hold_windows, 1)),
      min_gain_(o.auto_min_gain) {
  costs_.reserve(window_);  // at most one batch per descriptor: no allocation after this
  Begin(Phase::kFirst);
}

void PrefetchGovernor::Begin(Phase p) {
  phase_ = p;
  descs_ = 0;
  costs_.clear();
  if (p == Phase::kFirst) enabled_ = first_on_;
  if (p == Phase::kSecond) enabled_ = !first_on_;
}

void PrefetchGovernor::Record(uint64_t descs, uint64_t bytes, uint64_t ns) {
  descs_ += descs;
  if (phase_ == Phase::kHold) {
    if (descs_ >= uint64_t{window_} * hold_windows_ * hold_scale_) Begin(Phase::kFirst);
    return;
  }
  // Nanoseconds per KiB; every descriptor counts at least one line, so tiny ones still weigh.
  costs_.push_back(static_cast<double>(ns) * 1024.0 /
                   static_cast<double>(std::max<uint64_t>(bytes, descs * kLine)));
  if (descs_ < window_) return;
  auto mid = costs_.begin() + static_cast<ptrdiff_t>(costs_.size() / 2);
  std::nth_element(costs_.begin(), mid, costs_.end());
  (enabled_ ? cost_on_ : cost_off_) = *mid;
  if (phase_ == Phase::kFirst) {
    Begin(Phase::kSecond);
    return;
  }
  ++trials_;
  last_on_ = cost_on_;
  last_off_ = cost_off_;
  const bool on = cost_on_ < cost_off_ * (1.0 - min_gain_);
  hold_scale_ = (have_verdict_ && on == last_verdict_) ? std::min<uint32_t>(hold_scale_ * 2, 8) : 1;
  have_verdict_ = true;
  last_verdict_ = on;
  first_on_ = !first_on_;
  Begin(Phase::kHold);
  enabled_ = on;
}

SourceToucher::SourceToucher(const PrefetchOptions& o, const RegionTable* regions,
                             std::vector<Channel> channels)
    : options_(o), regions_(regions), channels_(std::move(channels)) {
  thread_ = std::thread([this] { Run(); });
}

SourceToucher::~SourceToucher() {
  stop_.store(true, std::memory_order_relaxed);
  thread_.join();
}

namespace {

// The helper's reads race, by design, with a producer that rewrites a slot or a buffer the
// executor has finished with; the values are discarded, so they are relaxed atomic loads and
// TSan is told not to report them.
__attribute__((no_sanitize("thread"))) Descriptor SnapshotRelaxed(const Descriptor& d) {
  Descriptor s;
  uint64_t w[8];
  const auto* src = reinterpret_cast<const uint64_t*>(&d);
  for (int i = 0; i < 8; ++i) w[i] = __atomic_load_n(&src[i], __ATOMIC_RELAXED);
  std::memcpy(&s, w, sizeof s);
  return s;
}

__attribute__((no_sanitize("thread"))) uint64_t TouchLines(const uint8_t* p, uint32_t n) {
  uint64_t sum = 0;
  const uintptr_t first = reinterpret_cast<uintptr_t>(p) & ~(kLine - 1);
  const uintptr_t end = reinterpret_cast<uintptr_t>(p) + n;
  // The first line may start before p (alignment); it is touched at p itself so that the load
  // stays inside the registered range.
  sum += __atomic_load_n(p, __ATOMIC_RELAXED);
  for (uintptr_t a = first + kLine; a < end; a += kLine) {
    sum += __atomic_load_n(reinterpret_cast<const uint8_t*>(a), __ATOMIC_RELAXED);
  }
  return sum;
}

}  // namespace

__attribute__((no_sanitize("thread"))) void SourceToucher::Run() {
  std::vector<uint64_t> next(channels_.size(), 0);
  uint64_t sink = 0;
  auto last_work = std::chrono::steady_clock::now();
  uint32_t polls = 0;
  const uint32_t lookahead = std::clamp<uint32_t>(options_.lookahead, 1, kMaxLookahead);
  while (!stop_.load(std::memory_order_relaxed)) {
    uint64_t touched = 0;
    for (size_t c = 0; c < channels_.size(); ++c) {
      const Channel& ch = channels_[c];
      const uint64_t cur = ch.executing->load(std::memory_order_acquire);
      const uint64_t head = ch.ring->header()->head.load(std::memory_order_acquire);
      if (head - cur > ch.ring->capacity()) continue;  // overflowed or not started
      if (next[c] <= cur || next[c] > cur + lookahead + 1) next[c] = cur + 1;
      uint64_t ahead = 0;
      for (; next[c] < head && next[c] <= cur + lookahead && ahead < options_.max_bytes_ahead;
           ++next[c]) {
        const Descriptor d =
            SnapshotRelaxed(ch.ring->descriptors()[next[c] & (ch.ring->capacity() - 1)]);
        const uint32_t budget = static_cast<uint32_t>(
            std::min<uint64_t>(options_.max_bytes_per_desc, options_.max_bytes_ahead - ahead));
        ahead += ForEachSource(d, *regions_, budget,
                               [&](const uint8_t* p, uint32_t n) { sink += TouchLines(p, n); });
      }
      touched += ahead;
    }
    if (touched > 0) {
      touched_.fetch_add(touched, std::memory_order_relaxed);
      last_work = std::chrono::steady_clock::now();
    } else if ((++polls & 63) != 0 || std::chrono::steady_clock::now() - last_work <
                                          std::chrono::microseconds(options_.helper_spin_us)) {
      CpuRelax();
    } else {
      // Nothing queued for a while: stop competing for the core.
      std::this_thread::sleep_for(std::chrono::microseconds(50));
    }
  }
  std::atomic_signal_fence(std::memory_order_seq_cst);
  if (sink == 1) touched_.fetch_add(0, std::memory_order_relaxed);  // keeps the loads
}

}  // namespace opensrd::dma
