#include "transport/receive_window.h"

namespace opensrd {

uint8_t ReceiveWindow::BuildSack(wire::SackRange* out, size_t max) const {
  if (max == 0) return 0;
  // Collect every run once; windows are small enough (<= 64K PSNs) that a linear scan with
  // word skipping is cheap next to the packet work that triggered the ack.
  wire::SackRange runs_lo[wire::kMaxSackRanges];
  wire::SackRange runs_hi[wire::kMaxSackRanges];  // ring of the newest runs
  size_t n_lo = 0, n_hi = 0, total = 0;
  const size_t keep_lo = (max + 1) / 2;
  const size_t keep_hi = max - keep_lo;
  uint32_t psn = cum_ + 1;  // cum_ itself is never received
  bool in_run = false;
  wire::SackRange cur{};
  while (psn != high_) {
    const uint64_t word = bits_[(psn & mask_) >> 6] >> (psn & 63);
    if (!in_run && word == 0) {
      // Skip to the next word boundary (or high_).
      const uint32_t step = 64 - (psn & 63);
      if (static_cast<int32_t>(high_ - psn) <= static_cast<int32_t>(step)) break;
      psn += step;
      continue;
    }
    const bool set = word & 1;
    if (set && !in_run) {
      in_run = true;
      cur.begin = psn;
    } else if (!set && in_run) {
      in_run = false;
      cur.end = psn;
      if (n_lo < keep_lo) {
        runs_lo[n_lo++] = cur;
      } else if (keep_hi > 0) {
        runs_hi[n_hi++ % keep_hi] = cur;
      }
      ++total;
    }
    ++psn;
  }
  if (in_run) {
    cur.end = high_;
    if (n_lo < keep_lo) {
      runs_lo[n_lo++] = cur;
    } else if (keep_hi > 0) {
      runs_hi[n_hi++ % keep_hi] = cur;
    }
  }
  uint8_t n = 0;
  for (size_t i = 0; i < n_lo; ++i) out[n++] = runs_lo[i];
  const size_t hi_count = n_hi < keep_hi ? n_hi : keep_hi;
  const size_t hi_start = n_hi < keep_hi ? 0 : n_hi % keep_hi;
  for (size_t i = 0; i < hi_count; ++i) out[n++] = runs_hi[(hi_start + i) % keep_hi];
  (void)total;
  return n;
}

}  // namespace opensrd
