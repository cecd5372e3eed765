#include "common/log.h"

#include <spdlog/sinks/stdout_sinks.h>

#include <algorithm>
#include <mutex>

namespace opensrd::log {

namespace {
// UTC time with microseconds, level, logger name (the component), message.
constexpr const char* kPattern = "%Y-%m-%dT%H:%M:%S.%fZ %l %n %v";
std::mutex g_mu;
spdlog::level::level_enum g_level = spdlog::level::info;
}  // namespace

Result<spdlog::level::level_enum> ParseLevel(const std::string& name) {
  static constexpr std::pair<const char*, spdlog::level::level_enum> kLevels[] = {
      {"trace", spdlog::level::trace},
      {"debug", spdlog::level::debug},
      {"info", spdlog::level::info},
      {"warn", spdlog::level::warn},
      {"error", spdlog::level::err}};
  for (const auto& [n, l] : kLevels) {
    if (name == n) return l;
  }
  return Status(Code::kInvalidArgument,
                "log level '" + name + "': want trace, debug, info, warn or error");
}

void Configure(spdlog::level::level_enum level) {
  std::lock_guard<std::mutex> l(g_mu);
  g_level = level;
  spdlog::set_level(level);
  spdlog::set_pattern(kPattern, spdlog::pattern_time_type::utc);
}

spdlog::logger& Get(const std::string& component) {
  std::lock_guard<std::mutex> l(g_mu);
  std::shared_ptr<spdlog::logger> logger = spdlog::get(component);
  if (!logger) {
    // stderr, unbuffered per line: logs interleave with the command's own stderr in order.
    logger = spdlog::stderr_logger_mt(component);
    logger->set_level(g_level);
    logger->set_pattern(kPattern, spdlog::pattern_time_type::utc);
  }
  return *logger;
}

bool RateLimit::Allow(uint64_t now_us, uint64_t& suppressed) {
  if (!started_) {
    started_ = true;
    last_us_ = now_us;
  } else if (now_us > last_us_) {
    tokens_ = std::min(burst_, tokens_ + rate_ * static_cast<double>(now_us - last_us_) / 1e6);
    last_us_ = now_us;
  }
  if (tokens_ < 1.0) {
    ++refused_;
    return false;
  }
  tokens_ -= 1.0;
  suppressed = refused_;
  refused_ = 0;
  return true;
}

}  // namespace opensrd::log
