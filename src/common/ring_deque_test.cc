#include "common/ring_deque.h"

#include <gtest/gtest.h>

#include <deque>

#include "common/rng.h"

namespace opensrd {
namespace {

TEST(RingDeque, EmptyHoldsNoMemory) {
  RingDeque<int> q;
  EXPECT_EQ(q.memory_bytes(), 0u);
  q.push_back(1);
  EXPECT_GT(q.memory_bytes(), 0u);
  q.Release();
  EXPECT_TRUE(q.empty());
  EXPECT_EQ(q.memory_bytes(), 0u);
}

TEST(RingDeque, BehavesLikeStdDequeAcrossWrapAndGrowth) {
  RingDeque<uint64_t> q;
  std::deque<uint64_t> ref;
  Rng rng(3);
  for (int i = 0; i < 100'000; ++i) {
    if (rng.Chance(0.55)) {
      const uint64_t v = rng.Next();
      q.push_back(v);
      ref.push_back(v);
    } else if (!ref.empty()) {
      ASSERT_EQ(q.front(), ref.front());
      q.pop_front();
      ref.pop_front();
    }
    ASSERT_EQ(q.size(), ref.size());
    if (!ref.empty()) ASSERT_EQ(q.back(), ref.back());
    if (i % 10'000 == 0) {
      q.clear();
      ref.clear();
    }
  }
}

}  // namespace
}  // namespace opensrd
