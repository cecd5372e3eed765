// Shared by the fabric simulator's spec parsers (topology, workload, faults): "kind:k=v,k=v".
// Numbers are checked whole (no trailing junk) and within range; sizes take K/M/G (powers of
// 10) or KiB/MiB/GiB suffixes, times ns/us/ms/s. Errors are values naming the bad part.
#pragma once
#include <cstdint>
#include <map>
#include <string>

#include "common/status.h"

namespace opensrd::fabric {

struct KindAndArgs {
  std::string kind;
  std::map<std::string, std::string> args;  // each key once
};
Result<KindAndArgs> SplitSpec(const std::string& text, const std::string& what);

Result<uint64_t> ParseCount(const std::string& v, const std::string& key, uint64_t lo, uint64_t hi);
Result<double> ParseReal(const std::string& v, const std::string& key, double lo, double hi);
// Bytes: "2MiB", "100KB", "4096".
Result<uint64_t> ParseBytes(const std::string& v, const std::string& key, uint64_t lo, uint64_t hi);
// Nanoseconds: "200us", "1.5ms", "300ns", "2s" (a unit is required).
Result<uint64_t> ParseTimeNs(const std::string& v, const std::string& key);

}  // namespace opensrd::fabric
