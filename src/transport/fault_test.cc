#include "transport/fault.h"

#include <gtest/gtest.h>

#include <bit>
#include <cstdint>
#include <string>
#include <vector>

namespace opensrd {
namespace {

// Parses a spec that must be accepted.
FaultSpec Good(const std::string& spec) {
  Result<FaultSpec> r = ParseFaultSpec(spec);
  EXPECT_TRUE(r.ok()) << spec << ": " << r.status().ToString();
  return r.ok() ? r.value() : FaultSpec{};
}

// Parses a spec that must be rejected and returns the error message.
std::string Bad(const std::string& spec) {
  Result<FaultSpec> r = ParseFaultSpec(spec);
  EXPECT_FALSE(r.ok()) << spec << " was accepted";
  if (r.ok()) return "";
  EXPECT_EQ(r.status().code(), Code::kInvalidArgument) << spec;
  EXPECT_NE(r.status().message().find("--fault"), std::string::npos) << r.status().message();
  return r.status().message();
}

#define EXPECT_MENTIONS(msg, part)               \
  EXPECT_NE((msg).find(part), std::string::npos) \
      << "message '" << (msg) << "' lacks '" << (part) << "'"

// ------------------------------------------------------------------------------ parsing

TEST(ParseFaultSpec, EmptySpecHasNoPaths) {
  FaultSpec s = Good("");
  EXPECT_TRUE(s.paths.empty());
  EXPECT_EQ(s.Find(0), nullptr);
}

TEST(ParseFaultSpec, EveryKey) {
  FaultSpec s = Good(
      "path=2:loss=0.125,dup=0.25,corrupt=0.5,reorder=0.75,delay_us=11,jitter_us=22,"
      "reorder_us=33,blackhole_after_ms=44,blackhole_for_ms=55");
  ASSERT_EQ(s.paths.size(), 1u);
  const PathFault* f = s.Find(2);
  ASSERT_NE(f, nullptr);
  EXPECT_DOUBLE_EQ(f->loss, 0.125);
  EXPECT_DOUBLE_EQ(f->dup, 0.25);
  EXPECT_DOUBLE_EQ(f->corrupt, 0.5);
  EXPECT_DOUBLE_EQ(f->reorder, 0.75);
  EXPECT_EQ(f->delay_us, 11u);
  EXPECT_EQ(f->jitter_us, 22u);
  EXPECT_EQ(f->reorder_us, 33u);
  EXPECT_EQ(f->blackhole_after_us, 44'000u);  // milliseconds on the command line
  EXPECT_EQ(f->blackhole_for_us, 55'000u);
  EXPECT_TRUE(f->any());
}

TEST(ParseFaultSpec, UnsetKeysKeepDefaults) {
  FaultSpec s = Good("path=0:loss=0.5");
  const PathFault* f = s.Find(0);
  ASSERT_NE(f, nullptr);
  EXPECT_DOUBLE_EQ(f->loss, 0.5);
  EXPECT_EQ(f->dup, 0);
  EXPECT_EQ(f->corrupt, 0);
  EXPECT_EQ(f->reorder, 0);
  EXPECT_EQ(f->reorder_us, 200u);
  EXPECT_EQ(f->delay_us, 0u);
  EXPECT_EQ(f->jitter_us, 0u);
  EXPECT_EQ(f->blackhole_after_us, kNever);
  EXPECT_EQ(f->blackhole_for_us, kNever);
}

TEST(ParseFaultSpec, BlackholeWithoutForIsForever) {
  const FaultSpec spec = Good("path=3:blackhole_after_ms=1000");  // keep it alive: f points into it
  const PathFault* f = spec.Find(3);
  ASSERT_NE(f, nullptr);
  EXPECT_EQ(f->blackhole_after_us, 1'000'000u);
  EXPECT_EQ(f->blackhole_for_us, kNever);
  EXPECT_TRUE(f->any());
}

TEST(ParseFaultSpec, MultiplePathsAndTrailingSemicolon) {
  FaultSpec s = Good("path=1:loss=0.1,dup=0.02;path=3:blackhole_after_ms=1000;path=0:delay_us=7;");
  ASSERT_EQ(s.paths.size(), 3u);
  ASSERT_NE(s.Find(1), nullptr);
  EXPECT_DOUBLE_EQ(s.Find(1)->loss, 0.1);
  EXPECT_DOUBLE_EQ(s.Find(1)->dup, 0.02);
  ASSERT_NE(s.Find(3), nullptr);
  EXPECT_EQ(s.Find(3)->blackhole_after_us, 1'000'000u);
  ASSERT_NE(s.Find(0), nullptr);
  EXPECT_EQ(s.Find(0)->delay_us, 7u);
  EXPECT_EQ(s.Find(2), nullptr);
}

TEST(ParseFaultSpec, BoundaryValuesAccepted) {
  const FaultSpec spec =
      Good("path=255:loss=0,dup=1,corrupt=1e-3,delay_us=0");  // keep it alive: f points into it
  const PathFault* f = spec.Find(255);
  ASSERT_NE(f, nullptr);
  EXPECT_EQ(f->loss, 0);
  EXPECT_EQ(f->dup, 1);
  EXPECT_DOUBLE_EQ(f->corrupt, 0.001);
  EXPECT_EQ(f->delay_us, 0u);
  // The largest duration accepted: an hour of microseconds / 1000 hours of milliseconds.
  EXPECT_EQ(Good("path=0:delay_us=3600000000").Find(0)->delay_us, 3'600'000'000u);
  Bad("path=0:delay_us=3600000001");
}

TEST(ParseFaultSpec, RejectsPartWithoutPathPrefix) {
  std::string m = Bad("loss=0.1");
  EXPECT_MENTIONS(m, "'loss=0.1'");
  EXPECT_MENTIONS(m, "path=N:key=value");
  m = Bad("path=1:loss=0.1;dup=0.2");  // second part lacks its path=
  EXPECT_MENTIONS(m, "'dup=0.2'");
  EXPECT_MENTIONS(Bad("Path=1:loss=0.1"), "'Path=1:loss=0.1'");
}

TEST(ParseFaultSpec, RejectsPathWithoutColon) {
  EXPECT_MENTIONS(Bad("path=1"), "'path=1'");
  EXPECT_MENTIONS(Bad("path=1,loss=0.1"), "'path=1,loss=0.1'");
}

TEST(ParseFaultSpec, RejectsBadPathIndex) {
  for (const char* spec : {"path=x:loss=0.1", "path=:loss=0.1", "path=-1:loss=0.1",
                           "path=+1:loss=0.1", "path=1.5:loss=0.1", "path=1x:loss=0.1"}) {
    std::string m = Bad(spec);
    EXPECT_MENTIONS(m, "path index");
    EXPECT_MENTIONS(m, std::string("'") + spec + "'");
  }
}

TEST(ParseFaultSpec, RejectsOversizedPathIndex) {
  EXPECT_MENTIONS(Bad("path=256:loss=0.1"), "0..255");
  EXPECT_MENTIONS(Bad("path=4294967296:loss=0.1"), "0..255");
  EXPECT_MENTIONS(Bad("path=99999999999999999999999:loss=0.1"), "0..255");
}

TEST(ParseFaultSpec, RejectsDuplicatePath) {
  EXPECT_MENTIONS(Bad("path=1:loss=0.1;path=1:dup=0.1"), "path 1 given twice");
  // The same index spelled differently is still the same path.
  EXPECT_MENTIONS(Bad("path=2:loss=0.1;path=02:dup=0.1"), "path 2 given twice");
}

TEST(ParseFaultSpec, RejectsKeyWithoutEquals) {
  EXPECT_MENTIONS(Bad("path=1:loss"), "'loss' is not key=value");
  EXPECT_MENTIONS(Bad("path=1:loss=0.1,dup"), "'dup' is not key=value");
  // Empty key-value lists and empty items are rejected too.
  EXPECT_MENTIONS(Bad("path=1:"), "not key=value");
  EXPECT_MENTIONS(Bad("path=1:loss=0.1,,dup=0.1"), "not key=value");
}

TEST(ParseFaultSpec, RejectsUnknownKey) {
  std::string m = Bad("path=1:drop=0.1");
  EXPECT_MENTIONS(m, "unknown key 'drop'");
  EXPECT_MENTIONS(m, "blackhole_for_ms");  // lists the keys it does know
  EXPECT_MENTIONS(Bad("path=1:loss=0.1, dup=0.1"), "unknown key ' dup'");
  EXPECT_MENTIONS(Bad("path=1:LOSS=0.1"), "unknown key 'LOSS'");
  EXPECT_MENTIONS(Bad("path=1:=0.1"), "unknown key ''");
}

TEST(ParseFaultSpec, RejectsProbabilityOutOfRange) {
  EXPECT_MENTIONS(Bad("path=1:loss=1.5"), "loss=1.5: a probability 0..1");
  EXPECT_MENTIONS(Bad("path=1:dup=-0.1"), "dup=-0.1: a probability 0..1");
  EXPECT_MENTIONS(Bad("path=1:corrupt=1.0000001"), "corrupt=1.0000001");
  EXPECT_MENTIONS(Bad("path=1:reorder=2"), "reorder=2");
}

TEST(ParseFaultSpec, RejectsNonNumericProbability) {
  EXPECT_MENTIONS(Bad("path=1:loss=abc"), "loss=abc");
  EXPECT_MENTIONS(Bad("path=1:loss="), "loss=: a probability");
  EXPECT_MENTIONS(Bad("path=1:loss=0.1x"), "loss=0.1x");
  EXPECT_MENTIONS(Bad("path=1:dup=10%"), "dup=10%");
}

TEST(ParseFaultSpec, RejectsNanAndInfinityProbability) {
  EXPECT_MENTIONS(Bad("path=1:loss=nan"), "loss=nan");
  EXPECT_MENTIONS(Bad("path=1:loss=NaN"), "loss=NaN");
  EXPECT_MENTIONS(Bad("path=1:dup=inf"), "dup=inf");
  EXPECT_MENTIONS(Bad("path=1:dup=-inf"), "dup=-inf");
  EXPECT_MENTIONS(Bad("path=1:corrupt=1e999"), "corrupt=1e999");
}

TEST(ParseFaultSpec, RejectsNegativeDuration) {
  for (const char* key :
       {"delay_us", "jitter_us", "reorder_us", "blackhole_after_ms", "blackhole_for_ms"}) {
    std::string kv = std::string(key) + "=-5";
    const std::string prefix =
        std::string(key) == "blackhole_after_ms" ? "" : "blackhole_after_ms=1,";
    std::string m = Bad("path=1:" + prefix + kv);
    EXPECT_MENTIONS(m, kv + ": a non-negative integer");
  }
}

TEST(ParseFaultSpec, RejectsNonIntegerDuration) {
  EXPECT_MENTIONS(Bad("path=1:delay_us=1.5"), "delay_us=1.5: a non-negative integer");
  EXPECT_MENTIONS(Bad("path=1:jitter_us=abc"), "jitter_us=abc");
  EXPECT_MENTIONS(Bad("path=1:reorder_us="), "reorder_us=:");
  EXPECT_MENTIONS(Bad("path=1:delay_us=+5"), "delay_us=+5");
  EXPECT_MENTIONS(Bad("path=1:blackhole_after_ms=1e3"), "blackhole_after_ms=1e3");
  EXPECT_MENTIONS(Bad("path=1:delay_us=99999999999999999999999"), "delay_us=");
}

TEST(ParseFaultSpec, RejectsBlackholeForWithoutAfter) {
  EXPECT_MENTIONS(Bad("path=1:blackhole_for_ms=100"), "blackhole_for_ms needs blackhole_after_ms");
  // The error is reported even when the path is valid otherwise and other paths are fine.
  EXPECT_MENTIONS(Bad("path=0:loss=0.1;path=1:loss=0.1,blackhole_for_ms=5"), "blackhole_for_ms");
}

// Values are plain decimals (probabilities may use an exponent): white space, signs and hex
// forms are refused, not guessed at.
TEST(ParseFaultSpec, RejectsNonPlainNumbers) {
  EXPECT_MENTIONS(Bad("path=1:loss= 0.5"), "loss= 0.5");
  EXPECT_MENTIONS(Bad("path=1:delay_us= 7"), "delay_us= 7");
  EXPECT_MENTIONS(Bad("path=1:loss=0x1p-1"), "loss=0x1p-1");
  EXPECT_MENTIONS(Bad("path= 1:loss=0.1"), "path index");
}

TEST(ParseFaultSpec, RejectsRepeatedKey) {
  EXPECT_MENTIONS(Bad("path=1:loss=0.1,loss=0.2"), "key 'loss' given twice for path 1");
}

// ------------------------------------------------------------------------------ injector

FaultSpec One(const std::string& kvs) {
  return Good("path=0:" + kvs);
}

TEST(FaultInjector, PathWithoutFaultPassesUntouched) {
  FaultInjector inj(One("loss=1"), 1);
  for (int i = 0; i < 100; ++i) {
    FaultInjector::Verdict v = inj.Decide(1, static_cast<Micros>(i));
    EXPECT_FALSE(v.drop);
    EXPECT_EQ(v.copies, 1u);
    EXPECT_FALSE(v.corrupt);
    EXPECT_EQ(v.delay_us, 0u);
  }
}

TEST(FaultInjector, SameSeedSameDecisions) {
  const FaultSpec spec =
      One("loss=0.2,dup=0.2,corrupt=0.2,reorder=0.2,jitter_us=100,reorder_us=50");
  FaultInjector a(spec, 42), b(spec, 42), c(spec, 43);
  bool differs_from_other_seed = false;
  for (int i = 0; i < 2000; ++i) {
    FaultInjector::Verdict va = a.Decide(0, i), vb = b.Decide(0, i), vc = c.Decide(0, i);
    ASSERT_EQ(va.drop, vb.drop) << i;
    ASSERT_EQ(va.copies, vb.copies) << i;
    ASSERT_EQ(va.corrupt, vb.corrupt) << i;
    ASSERT_EQ(va.delay_us, vb.delay_us) << i;
    differs_from_other_seed |= va.drop != vc.drop || va.delay_us != vc.delay_us;
  }
  EXPECT_TRUE(differs_from_other_seed);
}

TEST(FaultInjector, LossRateMatches) {
  FaultInjector inj(One("loss=0.1"), 7);
  int drops = 0;
  for (int i = 0; i < 100'000; ++i) drops += inj.Decide(0, 0).drop;
  // Binomial(100k, 0.1): sd ~ 95, so +-1000 is > 10 sd.
  EXPECT_GT(drops, 9'000);
  EXPECT_LT(drops, 11'000);
}

TEST(FaultInjector, LossZeroAndOne) {
  FaultInjector none(One("loss=0"), 7), all(One("loss=1"), 7);
  for (int i = 0; i < 10'000; ++i) {
    EXPECT_FALSE(none.Decide(0, 0).drop);
    FaultInjector::Verdict v = all.Decide(0, 0);
    EXPECT_TRUE(v.drop);
    EXPECT_EQ(v.copies, 1u);  // a dropped packet is not also duplicated or corrupted
    EXPECT_FALSE(v.corrupt);
  }
}

TEST(FaultInjector, BlackholeWindowByTime) {
  FaultInjector inj(One("blackhole_after_ms=10,blackhole_for_ms=5"), 1);
  EXPECT_FALSE(inj.Decide(0, 0).drop);
  EXPECT_FALSE(inj.Decide(0, 9'999).drop);
  EXPECT_TRUE(inj.Decide(0, 10'000).drop);
  EXPECT_TRUE(inj.Decide(0, 12'345).drop);
  EXPECT_TRUE(inj.Decide(0, 14'999).drop);
  EXPECT_FALSE(inj.Decide(0, 15'000).drop);
  EXPECT_FALSE(inj.Decide(0, 1'000'000).drop);
  // Time need not be monotonic: the window is a pure function of `since_start`.
  EXPECT_TRUE(inj.Decide(0, 11'000).drop);
}

TEST(FaultInjector, BlackholeForever) {
  FaultInjector inj(One("blackhole_after_ms=1"), 1);
  EXPECT_FALSE(inj.Decide(0, 999).drop);
  EXPECT_TRUE(inj.Decide(0, 1'000).drop);
  EXPECT_TRUE(inj.Decide(0, 1'000'000'000'000ull).drop);
}

TEST(FaultInjector, BlackholeFromStart) {
  FaultInjector inj(One("blackhole_after_ms=0,blackhole_for_ms=2"), 1);
  EXPECT_TRUE(inj.Decide(0, 0).drop);
  EXPECT_TRUE(inj.Decide(0, 1'999).drop);
  EXPECT_FALSE(inj.Decide(0, 2'000).drop);
}

TEST(FaultInjector, DuplicationRate) {
  FaultInjector always(One("dup=1"), 3);
  for (int i = 0; i < 100; ++i) EXPECT_EQ(always.Decide(0, 0).copies, 2u);
  FaultInjector some(One("dup=0.25"), 3);
  int dups = 0;
  for (int i = 0; i < 100'000; ++i) {
    const uint32_t copies = some.Decide(0, 0).copies;
    ASSERT_TRUE(copies == 1 || copies == 2);
    dups += copies == 2;
  }
  EXPECT_GT(dups, 24'000);
  EXPECT_LT(dups, 26'000);
}

TEST(FaultInjector, CorruptionRate) {
  FaultInjector always(One("corrupt=1"), 3);
  for (int i = 0; i < 100; ++i) {
    FaultInjector::Verdict v = always.Decide(0, 0);
    EXPECT_TRUE(v.corrupt);
    EXPECT_FALSE(v.drop);
  }
  FaultInjector some(One("corrupt=0.05"), 3);
  int n = 0;
  for (int i = 0; i < 100'000; ++i) n += some.Decide(0, 0).corrupt;
  EXPECT_GT(n, 4'500);
  EXPECT_LT(n, 5'500);
}

TEST(FaultInjector, FixedDelay) {
  FaultInjector inj(One("delay_us=250"), 3);
  for (int i = 0; i < 100; ++i) EXPECT_EQ(inj.Decide(0, 0).delay_us, 250u);
}

TEST(FaultInjector, JitterIsUniformAboveDelay) {
  FaultInjector inj(One("delay_us=100,jitter_us=10"), 3);
  std::vector<int> seen(11, 0);
  double sum = 0;
  const int kDraws = 20'000;
  for (int i = 0; i < kDraws; ++i) {
    const Micros d = inj.Decide(0, 0).delay_us;
    ASSERT_GE(d, 100u);
    ASSERT_LE(d, 110u);  // jitter is 0..jitter_us inclusive
    ++seen[d - 100];
    sum += static_cast<double>(d);
  }
  for (int k = 0; k <= 10; ++k) {
    EXPECT_GT(seen[k], kDraws / 11 / 2) << "extra delay " << k << " is rare";
  }
  EXPECT_NEAR(sum / kDraws, 105.0, 0.5);
}

TEST(FaultInjector, ReorderHoldsBackByReorderUs) {
  FaultInjector always(One("reorder=1,reorder_us=300,delay_us=5"), 3);
  for (int i = 0; i < 100; ++i) EXPECT_EQ(always.Decide(0, 0).delay_us, 305u);
  FaultInjector some(One("reorder=0.5,reorder_us=300"), 3);
  int held = 0;
  for (int i = 0; i < 100'000; ++i) {
    const Micros d = some.Decide(0, 0).delay_us;
    ASSERT_TRUE(d == 0 || d == 300) << d;
    held += d == 300;
  }
  EXPECT_GT(held, 49'000);
  EXPECT_LT(held, 51'000);
}

TEST(FaultInjector, DefaultReorderDelay) {
  FaultInjector inj(One("reorder=1"), 3);
  EXPECT_EQ(inj.Decide(0, 0).delay_us, 200u);
}

TEST(FaultInjector, PathsAreIndependent) {
  FaultInjector inj(Good("path=0:loss=1;path=1:delay_us=9"), 3);
  for (int i = 0; i < 100; ++i) {
    EXPECT_TRUE(inj.Decide(0, 0).drop);
    FaultInjector::Verdict v = inj.Decide(1, 0);
    EXPECT_FALSE(v.drop);
    EXPECT_EQ(v.delay_us, 9u);
  }
}

TEST(FaultInjector, CorruptInPlaceFlipsExactlyOneBit) {
  FaultInjector inj(FaultSpec{}, 11);
  const std::vector<uint8_t> original = {0x00, 0xFF, 0x5A, 0xA5};
  std::vector<int> hits(original.size() * 8, 0);
  for (int i = 0; i < 4'000; ++i) {
    std::vector<uint8_t> b = original;
    inj.CorruptInPlace(b);
    int flipped = 0, where = -1;
    for (size_t k = 0; k < b.size(); ++k) {
      const uint8_t x = b[k] ^ original[k];
      flipped += std::popcount(x);
      if (x) where = static_cast<int>(k * 8 + std::countr_zero(x));
    }
    ASSERT_EQ(flipped, 1) << "draw " << i;
    ++hits[where];
  }
  for (size_t bit = 0; bit < hits.size(); ++bit) EXPECT_GT(hits[bit], 0) << "bit " << bit;
}

TEST(FaultInjector, CorruptInPlaceSingleByteAndEmpty) {
  FaultInjector inj(FaultSpec{}, 5);
  for (int i = 0; i < 100; ++i) {
    uint8_t b = 0x3C;
    inj.CorruptInPlace(std::span<uint8_t>(&b, 1));
    EXPECT_EQ(std::popcount(static_cast<uint8_t>(b ^ 0x3C)), 1);
  }
  inj.CorruptInPlace(std::span<uint8_t>());  // no bytes: nothing to flip, no crash
}

}  // namespace
}  // namespace opensrd
