// Latency samples and their percentiles, for the perf and demo reports. Not thread-safe.
#pragma once
#include <time.h>

#include <algorithm>
#include <cstdint>
#include <vector>

namespace opensrd::cli {

struct LatencySummary {
  double p50 = 0, p99 = 0, p999 = 0, max = 0;  // microseconds
};

// CLOCK_MONOTONIC in nanoseconds: round trips on loopback are a few microseconds, so the
// endpoint's microsecond clock is too coarse to compare them with sockperf.
inline uint64_t NowNs() {
  timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return static_cast<uint64_t>(t.tv_sec) * 1'000'000'000u + static_cast<uint64_t>(t.tv_nsec);
}

class LatencyRecorder {
 public:
  LatencyRecorder() { samples_.reserve(1 << 20); }
  void AddNs(uint64_t ns) { samples_.push_back(ns); }
  void AddUs(uint64_t us) { samples_.push_back(us * 1000); }
  size_t count() const { return samples_.size(); }
  // Nearest-rank percentiles; sorts the samples.
  LatencySummary Summarize() {
    LatencySummary s;
    if (samples_.empty()) return s;
    std::sort(samples_.begin(), samples_.end());
    // Reported in microseconds with 0.1 us resolution.
    auto us = [](uint64_t ns) { return static_cast<double>(ns / 100) / 10.0; };
    auto at = [&](double q) {
      size_t i = static_cast<size_t>(q * static_cast<double>(samples_.size()));
      return us(samples_[std::min(i, samples_.size() - 1)]);
    };
    s.p50 = at(0.50);
    s.p99 = at(0.99);
    s.p999 = at(0.999);
    s.max = us(samples_.back());
    return s;
  }

 private:
  std::vector<uint64_t> samples_;  // nanoseconds
};

}  // namespace opensrd::cli
