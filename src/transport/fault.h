// Fault injection at a path's packet I/O: loss, duplication, corruption, delay, jitter,
// reordering and blackholing. The same injector runs in the UDP shell (`perf --fault`) and in
// the deterministic simulator, so a fault means the same thing in both. Decisions come from the
// project's seeded RNG. Not thread-safe.
//
// Spec grammar (the CLI's --fault): PATHSPEC (';' PATHSPEC)*, PATHSPEC = 'path=' N ':' KV (',' KV)*
// Keys: loss, dup, corrupt, reorder (probabilities 0..1); delay_us, jitter_us, reorder_us
// (microseconds); blackhole_after_ms, blackhole_for_ms (milliseconds from the start of the run;
// blackhole_for_ms omitted = forever). Example:
// "path=1:loss=0.1,dup=0.02;path=3:blackhole_after_ms=1000"
#pragma once
#include <cstdint>
#include <map>
#include <span>
#include <string>

#include "common/rng.h"
#include "common/status.h"
#include "opensrd/transport.h"

namespace opensrd {

struct PathFault {
  double loss = 0;
  double dup = 0;
  double corrupt = 0;
  double reorder = 0;  // probability that a packet is held back by reorder_us
  Micros reorder_us = 200;
  Micros delay_us = 0;   // added to every packet
  Micros jitter_us = 0;  // uniform extra delay 0..jitter_us
  Micros blackhole_after_us = kNever;
  Micros blackhole_for_us = kNever;
  bool any() const {
    return loss > 0 || dup > 0 || corrupt > 0 || reorder > 0 || delay_us > 0 || jitter_us > 0 ||
           blackhole_after_us != kNever;
  }
};

struct FaultSpec {
  std::map<uint32_t, PathFault> paths;  // by path index
  const PathFault* Find(uint32_t path) const {
    auto it = paths.find(path);
    return it == paths.end() ? nullptr : &it->second;
  }
};

Result<FaultSpec> ParseFaultSpec(const std::string& spec);

class FaultInjector {
 public:
  struct Verdict {
    bool drop = false;
    uint32_t copies = 1;   // 2 when duplicated
    bool corrupt = false;  // flip one bit (use CorruptInPlace)
    Micros delay_us = 0;
  };
  FaultInjector(FaultSpec spec, uint64_t seed) : spec_(std::move(spec)), rng_(seed) {}
  // `since_start` is time since the run began (for blackhole_after_ms).
  Verdict Decide(uint32_t path, Micros since_start);
  void CorruptInPlace(std::span<uint8_t> bytes);
  const FaultSpec& spec() const { return spec_; }

 private:
  FaultSpec spec_;
  Rng rng_;
};

}  // namespace opensrd
