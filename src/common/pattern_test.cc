#include "common/pattern.h"

#include <gtest/gtest.h>

#include <cstring>
#include <vector>

namespace opensrd {
namespace {

TEST(Pattern, FillThenCheckAtEveryLengthAndAlignment) {
  std::vector<uint8_t> buf(400);
  for (size_t off = 0; off < 8; ++off) {
    for (size_t len = 0; len + off <= buf.size(); ++len) {
      FillPattern(len, buf.data() + off, len);
      ASSERT_TRUE(CheckPattern(len, buf.data() + off, len)) << off << " " << len;
    }
  }
}

TEST(Pattern, FillAgreesWithPatternWord) {
  std::vector<uint8_t> buf(1000);
  FillPattern(42, buf.data(), buf.size());
  for (size_t w = 0; w < buf.size() / 8; ++w) {
    uint64_t got;
    std::memcpy(&got, buf.data() + 8 * w, 8);
    ASSERT_EQ(got, PatternWord(42, w)) << w;
  }
}

TEST(Pattern, EveryCorruptedByteIsSeen) {
  constexpr size_t kLen = 300;  // the vector loop (64-byte rounds) and the tail
  std::vector<uint8_t> buf(kLen);
  FillPattern(9, buf.data(), kLen);
  for (size_t i = 0; i < kLen; ++i) {
    for (uint8_t bit : {0x01, 0x80}) {
      buf[i] ^= bit;
      ASSERT_FALSE(CheckPattern(9, buf.data(), kLen)) << i;
      buf[i] ^= bit;
    }
  }
  EXPECT_TRUE(CheckPattern(9, buf.data(), kLen));
}

TEST(Pattern, OtherKeysAndOtherOffsetsDifferInEveryWord) {
  constexpr size_t kWords = 4096;
  std::vector<uint8_t> a(8 * kWords), b(8 * kWords);
  FillPattern(1, a.data(), a.size());
  FillPattern(2, b.data(), b.size());
  EXPECT_FALSE(CheckPattern(2, a.data(), a.size()));
  for (size_t w = 0; w < kWords; ++w) {
    ASSERT_NE(std::memcmp(a.data() + 8 * w, b.data() + 8 * w, 8), 0) << w;
  }
  // A fragment placed at the wrong offset of its own message (the shift of a whole packet).
  for (size_t shift : {8ul, 1400ul, 8192ul}) {
    EXPECT_FALSE(CheckPattern(1, a.data() + shift, a.size() - shift)) << shift;
  }
}

}  // namespace
}  // namespace opensrd
