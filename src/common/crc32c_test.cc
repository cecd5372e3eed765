#include "common/crc32c.h"

#include <gtest/gtest.h>

#include <cstring>
#include <vector>

#include "common/rng.h"

namespace opensrd {
namespace {

TEST(Crc32c, KnownVectors) {
  EXPECT_EQ(Crc32c("123456789", 9), 0xE3069283u);
  EXPECT_EQ(Crc32c("", 0), 0u);
  std::vector<uint8_t> zeros(32, 0);
  EXPECT_EQ(Crc32c(zeros.data(), zeros.size()), 0x8A9136AAu);  // RFC 3720 B.4
}

TEST(Crc32c, IncrementalEqualsOneShot) {
  Rng rng(7);
  std::vector<uint8_t> buf(4099);
  for (auto& b : buf) b = static_cast<uint8_t>(rng.Next());
  uint32_t whole = Crc32c(buf.data(), buf.size());
  for (size_t cut : {0ul, 1ul, 7ul, 8ul, 1000ul, 4098ul}) {
    uint32_t part = Crc32c(buf.data(), cut);
    EXPECT_EQ(Crc32c(buf.data() + cut, buf.size() - cut, part), whole) << cut;
  }
}

TEST(Rng, SameSeedSameSequenceAndBelowInRange) {
  Rng a(42), b(42), c(43), d(5);
  bool differs = false;
  for (int i = 0; i < 1000; ++i) {
    uint64_t x = a.Next();
    EXPECT_EQ(x, b.Next());
    differs |= x != c.Next();
    EXPECT_LT(d.Below(10), 10u);
  }
  EXPECT_TRUE(differs);
}

}  // namespace
}  // namespace opensrd
