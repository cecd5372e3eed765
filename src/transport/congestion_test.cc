#include "transport/congestion.h"

#include <gtest/gtest.h>

namespace opensrd {
namespace {

constexpr double kMss = 1400;
// The controller runs on the core's clock (nanoseconds); these tests think in microseconds.
constexpr Nanos U(Nanos us) {
  return us * 1000;
}

EndpointConfig Config() {
  EndpointConfig c;
  c.max_payload = 1400;
  c.initial_cwnd_packets = 64;
  c.window_packets = 8192;
  c.target_delay_us = 100;
  c.cc_ai_packets = 1.0;
  c.cc_beta = 0.8;
  c.cc_max_mdf = 0.5;
  c.pacing_burst_packets = 32;
  return c;
}

TEST(DelayCongestion, InitialWindow) {
  DelayCongestion cc(Config());
  EXPECT_DOUBLE_EQ(cc.cwnd(), 64 * kMss);
}

TEST(DelayCongestion, GrowsOneMssPerWindowBelowTarget) {
  DelayCongestion cc(Config());
  const double w0 = cc.cwnd();
  // RTT at base + target is still "below target".
  cc.OnAck(U(1000), /*rtt=*/U(200), /*base=*/U(100), /*srtt=*/U(200), static_cast<uint64_t>(w0));
  EXPECT_DOUBLE_EQ(cc.cwnd(), w0 + kMss);
  // Half a window acked: half an MSS.
  const double w1 = cc.cwnd();
  cc.OnAck(U(1010), U(150), U(100), U(200), static_cast<uint64_t>(w1 / 2));
  EXPECT_DOUBLE_EQ(cc.cwnd(), w1 + kMss / 2);
}

TEST(DelayCongestion, AckWithoutRttSampleChangesNothing) {
  DelayCongestion cc(Config());
  const double w0 = cc.cwnd();
  cc.OnAck(U(1000), U(0), U(100), U(200), 100'000);
  EXPECT_DOUBLE_EQ(cc.cwnd(), w0);
}

TEST(DelayCongestion, ShrinksInProportionAboveTarget) {
  DelayCongestion cc(Config());
  const double w0 = cc.cwnd();
  // target = 100 + 100; rtt 400: overshoot 200/400 = 0.5; factor 1 - 0.8 * 0.5 = 0.6.
  cc.OnAck(U(1000), U(400), U(100), U(400), 1400);
  EXPECT_DOUBLE_EQ(cc.cwnd(), w0 * 0.6);
}

TEST(DelayCongestion, DecreaseCappedByMaxMdf) {
  DelayCongestion cc(Config());
  const double w0 = cc.cwnd();
  cc.OnAck(U(1000), U(100'000), U(100), U(400), 1400);  // overshoot ~1: factor would be ~0.2
  EXPECT_DOUBLE_EQ(cc.cwnd(), w0 * 0.5);
}

TEST(DelayCongestion, AtMostOneDecreasePerRtt) {
  DelayCongestion cc(Config());
  const double w0 = cc.cwnd();
  cc.OnAck(U(1000), U(400), U(100), /*srtt=*/U(400), 1400);
  const double w1 = cc.cwnd();
  EXPECT_DOUBLE_EQ(w1, w0 * 0.6);
  cc.OnAck(U(1200), U(400), U(100), U(400), 1400);
  cc.OnAck(U(1399), U(400), U(100), U(400), 1400);
  EXPECT_DOUBLE_EQ(cc.cwnd(), w1);  // within one srtt of the last decrease
  cc.OnAck(U(1400), U(400), U(100), U(400), 1400);
  EXPECT_DOUBLE_EQ(cc.cwnd(), w1 * 0.6);
}

TEST(DelayCongestion, IncreaseStillAllowedRightAfterDecrease) {
  DelayCongestion cc(Config());
  cc.OnAck(U(1000), U(400), U(100), U(400), 1400);
  const double w1 = cc.cwnd();
  cc.OnAck(U(1001), U(150), U(100), U(400), static_cast<uint64_t>(w1));
  EXPECT_DOUBLE_EQ(cc.cwnd(), w1 + kMss);
}

TEST(DelayCongestion, ClampedToMinimum) {
  DelayCongestion cc(Config());
  Micros now = 1000;
  for (int i = 0; i < 100; ++i, now += 1000) cc.OnAck(U(now), U(100'000), U(100), U(400), 1400);
  EXPECT_DOUBLE_EQ(cc.cwnd(), 2 * kMss);
}

TEST(DelayCongestion, ClampedToMaximum) {
  EndpointConfig c = Config();
  c.window_packets = 64;
  c.initial_cwnd_packets = 60;
  DelayCongestion cc(c);
  Micros now = 1000;
  for (int i = 0; i < 100; ++i, now += 10) cc.OnAck(U(now), U(100), U(100), U(100), 1'000'000);
  EXPECT_DOUBLE_EQ(cc.cwnd(), 64 * kMss);
}

TEST(DelayCongestion, TimeoutHalvesOncePerRtt) {
  DelayCongestion cc(Config());
  const double w0 = cc.cwnd();
  cc.OnTimeout(U(5000), U(1000));
  EXPECT_DOUBLE_EQ(cc.cwnd(), w0 * 0.5);
  cc.OnTimeout(U(5999), U(1000));
  EXPECT_DOUBLE_EQ(cc.cwnd(), w0 * 0.5);
  cc.OnTimeout(U(6000), U(1000));
  EXPECT_DOUBLE_EQ(cc.cwnd(), w0 * 0.25);
  // A delay decrease within the same RTT is also suppressed: one cut per RTT, whatever the cause.
  cc.OnAck(U(6500), U(100'000), U(100), U(1000), 1400);
  EXPECT_DOUBLE_EQ(cc.cwnd(), w0 * 0.25);
}

TEST(DelayCongestion, UndoRestoresTheWindowBeforeTheFirstUnconfirmedTimeout) {
  DelayCongestion cc(Config());
  const double w0 = cc.cwnd();
  EXPECT_EQ(cc.UndoTimeout(U(8000), U(10'000)), 0);  // nothing to take back
  cc.OnTimeout(U(5000), U(1000));
  cc.OnTimeout(U(6000), U(1000));
  EXPECT_DOUBLE_EQ(cc.cwnd(), w0 * 0.25);
  EXPECT_EQ(cc.UndoTimeout(U(8000), U(10'000)), U(5000));  // both cuts go, back to before the first
  EXPECT_DOUBLE_EQ(cc.cwnd(), w0);
  EXPECT_EQ(cc.UndoTimeout(U(8000), U(10'000)), 0);  // once
}

TEST(DelayCongestion, ConfirmedTimeoutIsNotUndone) {
  DelayCongestion cc(Config());
  const double w0 = cc.cwnd();
  cc.OnTimeout(U(5000), U(1000));
  cc.ConfirmTimeout();
  EXPECT_EQ(cc.UndoTimeout(U(8000), U(10'000)), 0);
  EXPECT_DOUBLE_EQ(cc.cwnd(), w0 * 0.5);
  // A later timeout starts a new episode that can be undone back to the confirmed window.
  cc.OnTimeout(U(7000), U(1000));
  EXPECT_EQ(cc.UndoTimeout(U(8000), U(10'000)), U(7000));
  EXPECT_DOUBLE_EQ(cc.cwnd(), w0 * 0.5);
}

TEST(DelayCongestion, OldTimeoutIsNotUndone) {
  DelayCongestion cc(Config());
  const double w0 = cc.cwnd();
  cc.OnTimeout(U(5000), U(1000));
  EXPECT_EQ(cc.UndoTimeout(U(20'000), U(10'000)), 0);
  EXPECT_DOUBLE_EQ(cc.cwnd(), w0 * 0.5);
}

TEST(DelayCongestion, TimeoutFloorsAtMinimum) {
  DelayCongestion cc(Config());
  Micros now = 0;
  for (int i = 0; i < 50; ++i, now += 1000) cc.OnTimeout(U(now), U(10));
  EXPECT_DOUBLE_EQ(cc.cwnd(), 2 * kMss);
}

TEST(DelayCongestion, WindowAllows) {
  DelayCongestion cc(Config());
  const uint64_t w = static_cast<uint64_t>(cc.cwnd());
  EXPECT_TRUE(cc.WindowAllows(0, 1400));
  EXPECT_TRUE(cc.WindowAllows(w - 1400, 1400));
  EXPECT_FALSE(cc.WindowAllows(w - 1399, 1400));
  EXPECT_FALSE(cc.WindowAllows(w, 1));
  // Nothing in flight: always one packet, however small the window.
  EXPECT_TRUE(cc.WindowAllows(0, 10 * w));
}

TEST(DelayCongestion, DisabledAllowsEverythingAndNeverChanges) {
  EndpointConfig c = Config();
  c.congestion_control = false;
  DelayCongestion cc(c);
  const double w0 = cc.cwnd();
  EXPECT_TRUE(cc.WindowAllows(1ull << 40, 1ull << 40));
  cc.OnAck(U(1000), U(100'000), U(100), U(400), 1400);
  cc.OnTimeout(U(2000), U(400));
  cc.OnAck(U(3000), U(100), U(100), U(400), 1'000'000);
  EXPECT_DOUBLE_EQ(cc.cwnd(), w0);
  for (Micros now = 0; now < 100; ++now) {
    EXPECT_EQ(cc.NextSendTime(now, 64'000, 10), now);
    cc.OnSent(now, 64'000, 10);
  }
  EXPECT_EQ(cc.PacedAt(1'000'000, 10), 0u);
}

TEST(DelayCongestion, PacerReleasesBurstThenPaces) {
  DelayCongestion cc(Config());
  // Burst: 32 packets at once.
  for (int i = 0; i < 32; ++i) {
    ASSERT_EQ(cc.NextSendTime(1000, 1400, 100), 1000u) << i;
    cc.OnSent(1000, 1400, 100);
  }
  // Rate = 2 * cwnd / srtt = 2 * 89600 / 100 = 1792 bytes/us: 1400 bytes need 0.78 us.
  const Micros t = cc.NextSendTime(1000, 1400, 100);
  EXPECT_EQ(t, 1001u);
  EXPECT_EQ(cc.PacedAt(1400, 100), t);
  EXPECT_EQ(cc.NextSendTime(t, 1400, 100), t);  // allowed when the pacer said so
}

TEST(DelayCongestion, PacerLongRunRateIsTwiceWindowPerRtt) {
  DelayCongestion cc(Config());
  const Micros srtt = 1000;
  const double rate = 2.0 * cc.cwnd() / srtt;  // bytes per microsecond
  Micros now = 10'000;
  cc.NextSendTime(now, 1400, srtt);  // fills the bucket after the idle start
  uint64_t sent = 0;
  const Micros end = now + 100'000;
  while (now < end) {
    const Micros t = cc.NextSendTime(now, 1400, srtt);
    ASSERT_GE(t, now);
    if (t > now) {
      // PacedAt agrees with NextSendTime, and the answer is final: at t the packet may go.
      ASSERT_EQ(cc.PacedAt(1400, srtt), t);
      now = t;
      ASSERT_EQ(cc.NextSendTime(now, 1400, srtt), now);
    }
    cc.OnSent(now, 1400, srtt);
    sent += 1400;
  }
  const double expected = rate * 100'000 + 32 * kMss;  // steady rate plus the first burst
  EXPECT_NEAR(static_cast<double>(sent), expected, expected * 0.02);
}

TEST(DelayCongestion, PacerRefillsAfterIdleUpToBurst) {
  DelayCongestion cc(Config());
  for (int i = 0; i < 32; ++i) cc.OnSent(1000, 1400, 100);
  EXPECT_GT(cc.NextSendTime(1000, 1400, 100), 1000u);
  // After a long idle period only a burst's worth is available, not the whole idle time's.
  int allowed = 0;
  for (int i = 0; i < 100; ++i) {
    if (cc.NextSendTime(1'000'000, 1400, 100) != 1'000'000u) break;
    cc.OnSent(1'000'000, 1400, 100);
    ++allowed;
  }
  EXPECT_EQ(allowed, 32);
}

TEST(DelayCongestion, PacerAllowsPacketLargerThanBurstWhenBucketFull) {
  DelayCongestion cc(Config());
  // 64 KiB (a GSO batch) exceeds the 44800-byte burst: a full bucket must not block it forever.
  EXPECT_EQ(cc.NextSendTime(1000, 65'536, 100), 1000u);
  cc.OnSent(1000, 65'536, 100);
  const Micros t = cc.NextSendTime(1000, 65'536, 100);
  EXPECT_GT(t, 1000u);
  EXPECT_EQ(cc.NextSendTime(t, 65'536, 100), t);
}

}  // namespace
}  // namespace opensrd
