#include "common/log.h"

#include <gtest/gtest.h>

namespace opensrd::log {
namespace {

TEST(LogLevel, ParsesTheFiveNamesAndRefusesOthers) {
  EXPECT_EQ(ParseLevel("trace").value(), spdlog::level::trace);
  EXPECT_EQ(ParseLevel("debug").value(), spdlog::level::debug);
  EXPECT_EQ(ParseLevel("info").value(), spdlog::level::info);
  EXPECT_EQ(ParseLevel("warn").value(), spdlog::level::warn);
  EXPECT_EQ(ParseLevel("error").value(), spdlog::level::err);
  for (const char* bad : {"", "INFO", "warning", "err", "critical", "off", "info "}) {
    const auto r = ParseLevel(bad);
    ASSERT_FALSE(r.ok()) << bad;
    EXPECT_EQ(r.status().code(), Code::kInvalidArgument);
  }
}

TEST(LogRateLimit, BurstThenRateAndCountsWhatItRefused) {
  RateLimit rl(/*per_second=*/10, /*burst=*/3);
  uint64_t suppressed = 99;
  for (int i = 0; i < 3; ++i) {
    ASSERT_TRUE(rl.Allow(1'000'000, suppressed)) << i;
    EXPECT_EQ(suppressed, 0u);
  }
  // The burst is spent: everything else at this instant is refused and counted.
  for (int i = 0; i < 5; ++i) EXPECT_FALSE(rl.Allow(1'000'000, suppressed));
  // 10 per second: one token after 100 ms, not before.
  EXPECT_FALSE(rl.Allow(1'099'000, suppressed));
  ASSERT_TRUE(rl.Allow(1'100'000, suppressed));
  EXPECT_EQ(suppressed, 6u);  // the five at 1 s and the one at 1.099 s
  // Long idle refills to the burst, no further.
  for (int i = 0; i < 3; ++i) {
    ASSERT_TRUE(rl.Allow(60'000'000, suppressed)) << i;
    EXPECT_EQ(suppressed, 0u);
  }
  EXPECT_FALSE(rl.Allow(60'000'000, suppressed));
}

TEST(LogRateLimit, ClockGoingBackwardsGrantsNothing) {
  RateLimit rl(1000, 1);
  uint64_t suppressed = 0;
  ASSERT_TRUE(rl.Allow(5'000'000, suppressed));
  EXPECT_FALSE(rl.Allow(1'000'000, suppressed));
  EXPECT_FALSE(rl.Allow(5'000'000, suppressed));
  EXPECT_TRUE(rl.Allow(5'001'000, suppressed));
  EXPECT_EQ(suppressed, 2u);
}

}  // namespace
}  // namespace opensrd::log
