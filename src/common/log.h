// Structured logging glue over spdlog: one stderr logger per process whose lines read
//   2026-11-27T10:30:00.123456Z info perf_server listening on 127.0.0.1:7000
//   2026-11-27T10:30:02.500000Z info perf_client path state peer=1 path=1 from=active to=suspect
// (UTC time stamp, level, component, then the message; events carry key=value fields), and a
// rate limit for events that can happen once per packet, so a storm of them cannot flood the
// log or slow the data path.
//
// Thread-safety: spdlog's loggers are thread-safe; a RateLimit belongs to one thread.
#pragma once
#include <cstdint>
#include <string>

#include <spdlog/spdlog.h>

#include "common/status.h"

namespace opensrd::log {

// "trace", "debug", "info", "warn" or "error"; anything else is kInvalidArgument.
Result<spdlog::level::level_enum> ParseLevel(const std::string& name);
// Sets the level and the line format of every logger (idempotent; the default level is info).
void Configure(spdlog::level::level_enum level);
// The logger of one component (created on first use, with Configure's level and format).
spdlog::logger& Get(const std::string& component);

// At most `burst` events at once and `per_second` on average; the events refused in between are
// counted and handed to the next allowed one (Allow's `suppressed`), so the log says how many
// went unlogged. Times are microseconds on any monotonic clock (tests pass their own).
class RateLimit {
 public:
  RateLimit(double per_second, double burst) : rate_(per_second), burst_(burst), tokens_(burst) {}
  // True if this event may be logged now; then `suppressed` holds the events refused since the
  // last allowed one.
  bool Allow(uint64_t now_us, uint64_t& suppressed);

 private:
  double rate_;
  double burst_;
  double tokens_;
  uint64_t last_us_ = 0;
  bool started_ = false;
  uint64_t refused_ = 0;
};

}  // namespace opensrd::log
