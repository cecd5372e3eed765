#include "transport/receive_window.h"

#include <gtest/gtest.h>

#include <utility>
#include <vector>

namespace opensrd {
namespace {

using Mark = ReceiveWindow::Mark;
using Ranges = std::vector<std::pair<uint32_t, uint32_t>>;

// The runs of received PSNs above the cumulative point, read back through the public queries.
Ranges Sack(const ReceiveWindow& w) {
  Ranges out;
  for (uint32_t psn = w.cum(); psn != w.high(); ++psn) {
    if (!w.Received(psn)) continue;
    if (!out.empty() && out.back().second == psn) {
      ++out.back().second;
    } else {
      out.emplace_back(psn, psn + 1);
    }
  }
  return out;
}

TEST(ReceiveWindow, Fresh) {
  ReceiveWindow w(64);
  EXPECT_EQ(w.cum(), 0u);
  EXPECT_FALSE(w.HasGap());
  EXPECT_EQ(w.Check(0), Mark::kNew);
  EXPECT_EQ(w.Check(63), Mark::kNew);
  EXPECT_EQ(w.Check(64), Mark::kOutOfWindow);
  EXPECT_TRUE(Sack(w).empty());
}

TEST(ReceiveWindow, InOrderAdvancesCum) {
  ReceiveWindow w(64);
  for (uint32_t psn = 0; psn < 1000; ++psn) {
    ASSERT_EQ(w.Insert(psn), Mark::kNew) << psn;
    ASSERT_EQ(w.cum(), psn + 1);
    ASSERT_FALSE(w.HasGap());
  }
  EXPECT_TRUE(Sack(w).empty());
}

TEST(ReceiveWindow, CheckDoesNotRecord) {
  ReceiveWindow w(64);
  EXPECT_EQ(w.Check(0), Mark::kNew);
  EXPECT_EQ(w.Check(0), Mark::kNew);
  EXPECT_EQ(w.cum(), 0u);
  EXPECT_EQ(w.Insert(0), Mark::kNew);
  EXPECT_EQ(w.Check(0), Mark::kDuplicate);
}

TEST(ReceiveWindow, DuplicateBelowCum) {
  ReceiveWindow w(64);
  for (uint32_t psn = 0; psn < 10; ++psn) w.Insert(psn);
  for (uint32_t psn = 0; psn < 10; ++psn) {
    EXPECT_EQ(w.Check(psn), Mark::kDuplicate) << psn;
    EXPECT_EQ(w.Insert(psn), Mark::kDuplicate) << psn;
  }
  EXPECT_EQ(w.cum(), 10u);
  EXPECT_EQ(w.Check(10), Mark::kNew);
}

TEST(ReceiveWindow, DuplicateInBitmap) {
  ReceiveWindow w(64);
  EXPECT_EQ(w.Insert(10), Mark::kNew);
  EXPECT_EQ(w.cum(), 0u);
  EXPECT_TRUE(w.HasGap());
  EXPECT_EQ(w.Insert(10), Mark::kDuplicate);
  EXPECT_EQ(w.Check(10), Mark::kDuplicate);
  EXPECT_EQ(w.Check(9), Mark::kNew);
  EXPECT_EQ(w.Check(11), Mark::kNew);
  EXPECT_EQ(Sack(w), (Ranges{{10, 11}}));
}

TEST(ReceiveWindow, GapFillAdvancesCumOverBitmap) {
  ReceiveWindow w(64);
  for (uint32_t psn = 1; psn < 50; ++psn) EXPECT_EQ(w.Insert(psn), Mark::kNew);
  EXPECT_EQ(w.cum(), 0u);
  EXPECT_TRUE(w.HasGap());
  EXPECT_EQ(Sack(w), (Ranges{{1, 50}}));
  EXPECT_EQ(w.Insert(0), Mark::kNew);
  EXPECT_EQ(w.cum(), 50u);
  EXPECT_FALSE(w.HasGap());
  EXPECT_TRUE(Sack(w).empty());
  // The slots of 1..49 were cleared as cum passed them, so their next laps are new.
  for (uint32_t psn = 64; psn < 64 + 50; ++psn) EXPECT_EQ(w.Check(psn), Mark::kNew) << psn;
}

TEST(ReceiveWindow, OutOfWindow) {
  ReceiveWindow w(64);
  EXPECT_EQ(w.Insert(63), Mark::kNew);  // last slot of the window [0, 64)
  EXPECT_EQ(w.Insert(64), Mark::kOutOfWindow);
  EXPECT_EQ(w.Insert(1000), Mark::kOutOfWindow);
  EXPECT_EQ(w.cum(), 0u);
  // An out-of-window insert records nothing.
  EXPECT_EQ(Sack(w), (Ranges{{63, 64}}));
  // The window slides with cum.
  for (uint32_t psn = 0; psn < 10; ++psn) w.Insert(psn);
  EXPECT_EQ(w.cum(), 10u);
  EXPECT_EQ(w.Check(73), Mark::kNew);
  EXPECT_EQ(w.Check(74), Mark::kOutOfWindow);
}

TEST(ReceiveWindow, SerialArithmeticAroundCum) {
  ReceiveWindow w(1024);
  // With cum = 0, PSNs "behind" it in serial arithmetic (the upper half of the space) are old.
  EXPECT_EQ(w.Check(0xFFFFFFFFu), Mark::kDuplicate);
  EXPECT_EQ(w.Check(0x80000000u), Mark::kDuplicate);
  // The lower half beyond the window is ahead: out of window, not a duplicate.
  EXPECT_EQ(w.Check(0x7FFFFFFFu), Mark::kOutOfWindow);
  EXPECT_EQ(w.Check(1024), Mark::kOutOfWindow);
  EXPECT_EQ(w.Check(1023), Mark::kNew);
  for (uint32_t psn = 0; psn < 5000; ++psn) w.Insert(psn);
  EXPECT_EQ(w.Check(5000u - 0x80000000u), Mark::kDuplicate);    // half the space behind
  EXPECT_EQ(w.Check(5000u + 0x7FFFFFFFu), Mark::kOutOfWindow);  // half the space ahead
  EXPECT_EQ(w.Check(5000u + 1024u), Mark::kOutOfWindow);
  EXPECT_EQ(w.Check(5000u + 1023u), Mark::kNew);
}

// Out-of-order arrival over a run three windows long: every lap of the bitmap ring must start
// clean, and cum must follow exactly.
TEST(ReceiveWindow, LongRunCrossesWindowManyTimes) {
  constexpr uint32_t kWindow = 128;
  ReceiveWindow w(kWindow);
  uint32_t next_expected_cum = 0;
  // Blocks of 32: odd PSNs first (each a gap), then even ones, ending with the block's first.
  for (uint32_t base = 0; base < 3 * kWindow + 64; base += 32) {
    for (uint32_t psn = base + 1; psn < base + 32; psn += 2) {
      ASSERT_EQ(w.Insert(psn), Mark::kNew) << psn;
      ASSERT_EQ(w.cum(), next_expected_cum);
    }
    for (uint32_t psn = base + 30; psn > base; psn -= 2) ASSERT_EQ(w.Insert(psn), Mark::kNew);
    ASSERT_EQ(w.cum(), base);
    ASSERT_TRUE(w.HasGap());
    ASSERT_EQ(Sack(w), (Ranges{{base + 1, base + 32}}));
    ASSERT_EQ(w.Insert(base), Mark::kNew);
    next_expected_cum = base + 32;
    ASSERT_EQ(w.cum(), next_expected_cum);
    ASSERT_FALSE(w.HasGap());
    ASSERT_EQ(w.Insert(base + 7), Mark::kDuplicate);
  }
  EXPECT_EQ(w.cum(), 3 * kWindow + 64);
}

// Arrivals that keep the window full while the one missing PSN at cum holds it back: the ring
// wraps under an almost full bitmap, lap after lap.
TEST(ReceiveWindow, FullWindowSlides) {
  constexpr uint32_t kWindow = 64;
  ReceiveWindow w(kWindow);
  for (uint32_t psn = 1; psn < kWindow; ++psn) ASSERT_EQ(w.Insert(psn), Mark::kNew);
  for (uint32_t c = 0; c < 5 * kWindow; c += kWindow) {
    // cum == c: all of (c, c + kWindow) received, c missing.
    ASSERT_EQ(w.cum(), c);
    ASSERT_TRUE(w.HasGap());
    ASSERT_EQ(w.Check(c + kWindow), Mark::kOutOfWindow);
    ASSERT_EQ(Sack(w), (Ranges{{c + 1, c + kWindow}}));
    ASSERT_EQ(w.Insert(c), Mark::kNew);
    ASSERT_EQ(w.cum(), c + kWindow);
    ASSERT_FALSE(w.HasGap());
    for (uint32_t psn = c + kWindow + 1; psn < c + 2 * kWindow; ++psn) {
      ASSERT_EQ(w.Insert(psn), Mark::kNew) << psn;
    }
  }
}

TEST(ReceiveWindow, Reset) {
  ReceiveWindow w(64);
  for (uint32_t psn = 0; psn < 100; ++psn) w.Insert(psn);
  w.Insert(105);
  w.Insert(110);
  ASSERT_TRUE(w.HasGap());
  w.Reset();
  EXPECT_EQ(w.cum(), 0u);
  EXPECT_FALSE(w.HasGap());
  EXPECT_TRUE(Sack(w).empty());
  // No stale bits survive: 105 & 63 == 41 and 110 & 63 == 46 are new again.
  EXPECT_EQ(w.Check(41), Mark::kNew);
  EXPECT_EQ(w.Check(46), Mark::kNew);
  EXPECT_EQ(w.Insert(0), Mark::kNew);
  EXPECT_EQ(w.cum(), 1u);
}

TEST(ReceiveWindow, LargeWindow) {
  ReceiveWindow w(8192);
  for (uint32_t psn = 8191; psn > 0; --psn) ASSERT_EQ(w.Insert(psn), Mark::kNew);
  EXPECT_EQ(w.cum(), 0u);
  EXPECT_EQ(Sack(w), (Ranges{{1, 8192}}));
  EXPECT_EQ(w.Insert(8192), Mark::kOutOfWindow);
  EXPECT_EQ(w.Insert(0), Mark::kNew);
  EXPECT_EQ(w.cum(), 8192u);
}

}  // namespace
}  // namespace opensrd
