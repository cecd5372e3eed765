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

// Bit-at-a-time CRC32C, the definition: the fast paths (one crc32 stream below 256 bytes, ISA-L
// above) must agree with it at every length and alignment around the switch.
uint32_t ReferenceCrc32c(const uint8_t* p, size_t len) {
  uint32_t c = ~0u;
  for (size_t i = 0; i < len; ++i) {
    c ^= p[i];
    for (int k = 0; k < 8; ++k) c = (c & 1) ? (c >> 1) ^ 0x82F63B78u : c >> 1;
  }
  return ~c;
}

TEST(Crc32c, MatchesReferenceAtEveryLengthAndAlignment) {
  Rng rng(11);
  std::vector<uint8_t> buf(1100);
  for (auto& b : buf) b = static_cast<uint8_t>(rng.Next());
  for (size_t off = 0; off < 8; ++off) {
    for (size_t len = 0; len + off <= 600; ++len) {
      ASSERT_EQ(Crc32c(buf.data() + off, len), ReferenceCrc32c(buf.data() + off, len))
          << off << " " << len;
    }
  }
  EXPECT_EQ(Crc32c(buf.data() + 3, 1097), ReferenceCrc32c(buf.data() + 3, 1097));
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
