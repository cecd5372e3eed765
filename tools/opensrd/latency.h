// Latency samples and their percentiles, for the perf and demo reports. Not thread-safe.
#pragma once
#include <algorithm>
#include <cstdint>
#include <vector>

namespace opensrd::cli {

struct LatencySummary {
  double p50 = 0, p99 = 0, p999 = 0, max = 0;  // microseconds
};

class LatencyRecorder {
 public:
  LatencyRecorder() { samples_.reserve(1 << 20); }
  void Add(uint64_t us) { samples_.push_back(us); }
  size_t count() const { return samples_.size(); }
  // Nearest-rank percentiles; sorts the samples.
  LatencySummary Summarize() {
    LatencySummary s;
    if (samples_.empty()) return s;
    std::sort(samples_.begin(), samples_.end());
    auto at = [&](double q) {
      size_t i = static_cast<size_t>(q * static_cast<double>(samples_.size()));
      return static_cast<double>(samples_[std::min(i, samples_.size() - 1)]);
    };
    s.p50 = at(0.50);
    s.p99 = at(0.99);
    s.p999 = at(0.999);
    s.max = static_cast<double>(samples_.back());
    return s;
  }

 private:
  std::vector<uint64_t> samples_;
};

}  // namespace opensrd::cli
