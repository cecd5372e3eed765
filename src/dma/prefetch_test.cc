// The look-ahead parser's bounds and the kAuto governor, driven with fixed inputs.
#include "dma/prefetch.h"

#include <chrono>
#include <thread>
#include <vector>

#include "dma/dma_test_util.h"

namespace opensrd::dma {
namespace {
using namespace testing;

PrefetchOptions Options(uint32_t lookahead, uint32_t per_desc, uint32_t ahead) {
  PrefetchOptions o;
  o.lookahead = lookahead;
  o.max_bytes_per_desc = per_desc;
  o.max_bytes_ahead = ahead;
  return o;
}

class LookaheadTest : public ::testing::Test {
 protected:
  void SetUp() override {
    mem.assign(1 << 20, 0);
    ASSERT_TRUE(regions.Add(mem.data(), 512 << 10, Iova(mem.data()), kReadWrite).ok());
    for (uint32_t i = 0; i < 16; ++i) ring[i] = Copy(&mem[8192 * i], &mem[300000], 1000);
  }
  std::vector<uint8_t> mem;
  RegionTable regions;
  Descriptor ring[16] = {};
};

TEST_F(LookaheadTest, PrefetchesOnlyAheadAndOnlyOnce) {
  LookaheadPrefetcher la(Options(4, 4096, 1 << 20));
  // At descriptor 0 with 16 published: descriptors 1..4 are prefetched, 1000 bytes each.
  EXPECT_EQ(la.Advance(ring, 15, 0, 16, regions), 4000u);
  // At 1: only descriptor 5 is new.
  EXPECT_EQ(la.Advance(ring, 15, 1, 16, regions), 1000u);
  // Nothing beyond head.
  EXPECT_EQ(la.Advance(ring, 15, 2, 6, regions), 0u);
  EXPECT_EQ(la.Advance(ring, 15, 5, 6, regions), 0u);
}

TEST_F(LookaheadTest, RespectsPerDescriptorAndTotalByteBudgets) {
  LookaheadPrefetcher per(Options(8, 256, 1 << 20));
  EXPECT_EQ(per.Advance(ring, 15, 0, 16, regions), 8u * 256);
  LookaheadPrefetcher total(Options(8, 4096, 2500));
  // 1000 + 1000 + 500 (the budget cuts the third), then nothing until one retires.
  EXPECT_EQ(total.Advance(ring, 15, 0, 16, regions), 2500u);
  EXPECT_EQ(total.Advance(ring, 15, 0, 16, regions), 0u);
  // Descriptor 1 (1000 bytes) is now executing: room for 1000 more.
  EXPECT_EQ(total.Advance(ring, 15, 1, 16, regions), 1000u);
}

TEST_F(LookaheadTest, NeverPrefetchesOutsideRegisteredMemory) {
  ring[1].src = Iova(&mem[600000]);  // mapped, not registered
  ring[2].src = 0;
  ring[3].opcode = 0x7f;
  ring[4].src = Iova(&mem[(512 << 10) - 10]);  // runs off the region's end
  LookaheadPrefetcher la(Options(4, 4096, 1 << 20));
  EXPECT_EQ(la.Advance(ring, 15, 0, 16, regions), 0u);
  uint32_t seen = 0;
  ForEachSource(ring[4], regions, 4096, [&](const uint8_t*, uint32_t n) { seen += n; });
  EXPECT_EQ(seen, 0u);
  ForEachSource(ring[5], regions, 4096, [&](const uint8_t* p, uint32_t n) {
    EXPECT_EQ(p, &mem[8192 * 5]);
    seen += n;
  });
  EXPECT_EQ(seen, 1000u);
}

TEST_F(LookaheadTest, ScatterGatherAndCompareSourcesAreFollowed) {
  auto* list = reinterpret_cast<SgEntry*>(&mem[400000]);
  list[0] = {Iova(&mem[0]), 100, 0};
  list[1] = {Iova(&mem[9000]), 300, 0};
  SgEntry dst = {Iova(&mem[200000]), 400, 0};
  std::vector<std::pair<const uint8_t*, uint32_t>> seen;
  auto record = [&](const uint8_t* p, uint32_t n) { seen.push_back({p, n}); };
  ForEachSource(CopySg(list, 2, &dst, 1, 400), regions, 4096, record);
  ASSERT_EQ(seen.size(), 2u);
  EXPECT_EQ(seen[0].first, &mem[0]);
  EXPECT_EQ(seen[1].second, 300u);
  seen.clear();
  ForEachSource(Compare(&mem[0], &mem[50000], 3000), regions, 4096, record);
  ASSERT_EQ(seen.size(), 2u);  // both buffers, the budget shared
  EXPECT_EQ(seen[0].second, 2048u);
  EXPECT_EQ(seen[1].second, 2048u);
  seen.clear();
  ForEachSource(Fill(&mem[0], 100, 1), regions, 4096, record);
  EXPECT_TRUE(seen.empty());
}

TEST(SourceToucherTest, TouchesRegisteredSourcesAheadOfTheExecutorOnly) {
  std::vector<uint8_t> mem(1 << 20, 1);
  RegionTable regions;
  ASSERT_TRUE(regions.Add(mem.data(), 512 << 10, Iova(mem.data()), kReadWrite).ok());
  auto r = SharedRing::Create(16);
  ASSERT_TRUE(r.ok());
  SharedRing* ring = r.value().get();
  // Slots 1..4: sources of 1000 bytes; slot 5 names unregistered memory; 0 is "executing".
  for (int i = 0; i < 6; ++i) ring->descriptors()[i] = Copy(&mem[8192 * i], &mem[400000], 1000);
  ring->descriptors()[5].src = Iova(&mem[600000]);
  std::atomic<uint64_t> executing{0};
  PrefetchOptions o = Options(8, 4096, 1 << 20);
  SourceToucher toucher(o, &regions, {{ring, &executing}});
  ring->header()->head.store(6, std::memory_order_release);
  for (int i = 0; i < 2000 && toucher.touched_bytes() < 4000; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(5));
  EXPECT_EQ(toucher.touched_bytes(), 4000u);  // 1..4, not 0 (executing) nor 5 (unregistered)
}

// Drives the governor with costs per byte given by the test: `on_ns`/`off_ns` per descriptor
// of 1 KiB, one descriptor per Record. Returns the share of descriptors run with prefetch on.
double Drive(PrefetchGovernor& g, uint64_t descs, uint64_t on_ns, uint64_t off_ns) {
  uint64_t on = 0;
  for (uint64_t i = 0; i < descs; ++i) {
    on += g.enabled();
    g.Record(1, 1024, g.enabled() ? on_ns : off_ns);
  }
  return static_cast<double>(on) / static_cast<double>(descs);
}

PrefetchOptions AutoOptions() {
  PrefetchOptions o;
  o.auto_window = 16;
  o.auto_hold_windows = 4;
  o.auto_min_gain = 0.05;
  return o;
}

TEST(BatchRuleTest, AutoSendsOnlyBatchesWithSomethingAheadToTheGovernor) {
  EXPECT_EQ(DecideBatchPrefetch(PrefetchMode::kAuto, true, 0), BatchPrefetch::kOff);
  EXPECT_EQ(DecideBatchPrefetch(PrefetchMode::kAuto, true, 1), BatchPrefetch::kOff);
  EXPECT_EQ(DecideBatchPrefetch(PrefetchMode::kAuto, true, 2), BatchPrefetch::kGovernor);
  EXPECT_EQ(DecideBatchPrefetch(PrefetchMode::kAuto, true, 64), BatchPrefetch::kGovernor);
}

TEST(BatchRuleTest, FixedModesAreObeyedAndNothingPrefetchesWhereItCannot) {
  for (uint64_t batch : {1u, 2u, 64u}) {
    EXPECT_EQ(DecideBatchPrefetch(PrefetchMode::kOn, true, batch), BatchPrefetch::kOn);
    EXPECT_EQ(DecideBatchPrefetch(PrefetchMode::kOff, true, batch), BatchPrefetch::kOff);
    // A device backend (or the helper thread, which replaces the instructions): never.
    for (PrefetchMode m : {PrefetchMode::kOn, PrefetchMode::kOff, PrefetchMode::kAuto}) {
      EXPECT_EQ(DecideBatchPrefetch(m, false, batch), BatchPrefetch::kOff);
    }
  }
}

TEST(GovernorTest, KeepsPrefetchWhereItPays) {
  PrefetchGovernor g(AutoOptions());
  EXPECT_TRUE(g.measuring());
  const double share = Drive(g, 10000, 500, 1000);
  EXPECT_GT(share, 0.9);
  EXPECT_TRUE(g.enabled() || g.measuring());
  EXPECT_GT(g.trials(), 3u);
  EXPECT_DOUBLE_EQ(g.last_on_cost(), 500.0);
  EXPECT_DOUBLE_EQ(g.last_off_cost(), 1000.0);
}

TEST(GovernorTest, TurnsItselfOffWhereItDoesNotPay) {
  PrefetchGovernor g(AutoOptions());
  EXPECT_LT(Drive(g, 10000, 1100, 1000), 0.1);  // prefetch costs 10%
  PrefetchGovernor tie(AutoOptions());
  EXPECT_LT(Drive(tie, 10000, 980, 1000), 0.1);  // 2% is inside the 5% margin: not worth it
}

TEST(GovernorTest, FollowsAWorkloadThatChanges) {
  PrefetchGovernor g(AutoOptions());
  EXPECT_LT(Drive(g, 5000, 1200, 1000), 0.1);
  // The hold is at most 8 x 4 windows of 16: within ~600 descriptors a new trial sees the change.
  Drive(g, 1000, 400, 1000);
  EXPECT_GT(Drive(g, 5000, 400, 1000), 0.9);
  Drive(g, 1000, 1500, 1000);
  EXPECT_LT(Drive(g, 5000, 1500, 1000), 0.1);
}

TEST(GovernorTest, TrialsBackOffWhileTheVerdictHolds) {
  PrefetchGovernor g(AutoOptions());
  Drive(g, 2000, 500, 1000);
  const uint64_t early = g.trials();
  Drive(g, 20000, 500, 1000);
  const uint64_t late = g.trials() - early;
  // Without backoff 20000 descriptors would hold (2 + 4) windows each: ~208 trials.
  EXPECT_LT(late, 80u);
  EXPECT_GT(late, 10u);
}

TEST(GovernorTest, OutlierBatchesDoNotDecide) {
  // Prefetch pays 20%, but one batch in ten of the "on" windows is stretched 50x (preempted):
  // a mean would turn prefetch off, the median keeps it.
  PrefetchGovernor g(AutoOptions());
  uint64_t on = 0, n = 0;
  for (int i = 0; i < 10000; ++i) {
    const bool e = g.enabled();
    on += e;
    g.Record(1, 1024, e ? (++n % 10 == 0 ? 40000 : 800) : 1000);
  }
  EXPECT_GT(on, 9000u);
  EXPECT_DOUBLE_EQ(g.last_on_cost(), 800.0);
}

TEST(GovernorTest, WeighsTinyDescriptorsAsWholeLines) {
  PrefetchGovernor g(AutoOptions());
  // 8-byte descriptors: cost is per line (64 B), so the comparison still works.
  uint64_t on = 0;
  for (int i = 0; i < 5000; ++i) {
    on += g.enabled();
    g.Record(1, 8, g.enabled() ? 50 : 100);
  }
  EXPECT_GT(on, 4000u);
  EXPECT_DOUBLE_EQ(g.last_on_cost(), 50.0 * 1024 / 64);
}

}  // namespace
}  // namespace opensrd::dma
