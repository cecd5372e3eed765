// The receiver's record of which PSNs of one context have arrived: a cumulative point plus a
// bitmap of the window above it. Detects duplicates exactly; SACK ranges are built by the
// context from the PSNs that arrived since its last ack (see TransportContext::BuildAck).
// Memory is fixed at construction (window/8 bytes). Not thread-safe.
#pragma once
#include <cstddef>
#include <cstdint>
#include <vector>

namespace opensrd {

class ReceiveWindow {
 public:
  enum class Mark { kNew, kDuplicate, kOutOfWindow };

  // The bitmap (window/8 bytes) is allocated only once packets arrive out of order, and Trim()
  // frees it when nothing is outstanding: in-order traffic and idle contexts never hold it.
  explicit ReceiveWindow(uint32_t window_pow2) : mask_(window_pow2 - 1) {}

  Mark Check(uint32_t psn) const {
    const int32_t d = static_cast<int32_t>(psn - cum_);
    if (d < 0) return Mark::kDuplicate;
    if (static_cast<uint32_t>(d) > mask_) return Mark::kOutOfWindow;
    return Test(psn) ? Mark::kDuplicate : Mark::kNew;
  }
  // Records `psn`; returns what it was before.
  Mark Insert(uint32_t psn) {
    Mark m = Check(psn);
    if (m != Mark::kNew) return m;
    if (psn == cum_ && high_ == cum_) {  // in order, no holes: no bitmap needed
      ++cum_;
      ++high_;
      return m;
    }
    if (bits_.empty()) bits_.assign((mask_ + 1) / 64, 0);
    Set(psn);
    if (static_cast<int32_t>(psn + 1 - high_) > 0) high_ = psn + 1;
    while (Test(cum_)) {
      Clear(cum_);
      ++cum_;
    }
    return m;
  }
  uint32_t cum() const { return cum_; }
  bool HasGap() const { return high_ != cum_; }
  void Reset() {
    std::vector<uint64_t>().swap(bits_);
    cum_ = high_ = 0;
  }
  // Frees the bitmap when no PSN above the cumulative point has arrived (it is all zero then).
  void Trim() {
    if (cum_ == high_) std::vector<uint64_t>().swap(bits_);
  }
  size_t MemoryBytes() const { return bits_.capacity() * sizeof(uint64_t); }

  // True if `psn` has arrived (everything below cum() has).
  bool Received(uint32_t psn) const {
    const int32_t d = static_cast<int32_t>(psn - cum_);
    if (d < 0) return true;
    return static_cast<uint32_t>(d) <= mask_ && Test(psn);
  }
  uint32_t high() const { return high_; }  // one past the highest PSN received

 private:
  bool Test(uint32_t psn) const {
    return !bits_.empty() && ((bits_[(psn & mask_) >> 6] >> (psn & 63)) & 1);
  }
  void Set(uint32_t psn) { bits_[(psn & mask_) >> 6] |= uint64_t{1} << (psn & 63); }
  void Clear(uint32_t psn) { bits_[(psn & mask_) >> 6] &= ~(uint64_t{1} << (psn & 63)); }

  uint32_t mask_;
  std::vector<uint64_t> bits_;
  uint32_t cum_ = 0;   // next PSN not yet received
  uint32_t high_ = 0;  // one past the highest PSN received
};

}  // namespace opensrd
