// Every descriptor type, batching, several channels, eventfd completion, the worker thread,
// and identical results in every prefetch mode.
#include <poll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <chrono>
#include <random>
#include <thread>

#include "common/crc32c.h"
#include "dma/dma_test_util.h"

namespace opensrd::dma {
namespace {
using namespace testing;

void Randomize(uint8_t* p, size_t n, uint32_t seed) {
  std::mt19937 rng(seed);
  for (size_t i = 0; i < n; ++i) p[i] = static_cast<uint8_t>(rng());
}

class EngineTest : public DmaFixture {};

TEST_F(EngineTest, CopyMovesTheBytesAndReturnsUserData) {
  Randomize(at(0), 5000, 1);
  const Completion c = Run(Copy(at(0), at(8192), 5000, 0xfeed));
  EXPECT_EQ(StatusOf(c), CompletionStatus::kSuccess);
  EXPECT_EQ(c.bytes_completed, 5000u);
  EXPECT_EQ(c.user_data, 0xfeedu);
  EXPECT_EQ(std::memcmp(at(0), at(8192), 5000), 0);
  EXPECT_EQ(at(8192 + 5000)[0], 0);  // not one byte more
}

TEST_F(EngineTest, FillRepeatsThePatternForAnyLength) {
  for (uint32_t len : {1u, 7u, 8u, 63u, 64u, 65u, 1000u}) {
    std::memset(at(0), 0xee, 2048);
    const uint64_t pattern = 0x0807060504030201ull;
    const Completion c = Run(Fill(at(16), len, pattern));
    ASSERT_EQ(StatusOf(c), CompletionStatus::kSuccess) << len;
    for (uint32_t i = 0; i < len; ++i) ASSERT_EQ(at(16)[i], (i % 8) + 1) << len << " " << i;
    EXPECT_EQ(at(16)[len], 0xee);
    EXPECT_EQ(at(15)[0], 0xee);
  }
}

TEST_F(EngineTest, CopyCrcMatchesCrc32cAndHonoursTheSeed) {
  Randomize(at(0), 70000, 2);  // longer than one internal CRC chunk
  Completion c = Run(CopyCrc(at(0), at(100000), 70000));
  ASSERT_EQ(StatusOf(c), CompletionStatus::kSuccess);
  EXPECT_EQ(c.crc, Crc32c(at(0), 70000));
  EXPECT_EQ(std::memcmp(at(0), at(100000), 70000), 0);
  // Seeded with the CRC of a prefix, the result is the CRC of prefix + buffer.
  const uint32_t prefix = Crc32c(at(200000), 33);
  c = Run(CopyCrc(at(0), at(100000), 1000, prefix));
  std::memcpy(at(300000), at(200000), 33);
  std::memcpy(at(300033), at(0), 1000);
  EXPECT_EQ(c.crc, Crc32c(at(300000), 1033));
}

TEST_F(EngineTest, CompareReportsTheFirstDifference) {
  Randomize(at(0), 10000, 3);
  std::memcpy(at(20000), at(0), 10000);
  Completion c = Run(Compare(at(0), at(20000), 10000));
  ASSERT_EQ(StatusOf(c), CompletionStatus::kSuccess);
  EXPECT_EQ(c.result, 0);
  for (uint32_t diff : {0u, 4095u, 4096u, 9999u}) {
    at(20000)[diff] ^= 0x40;
    c = Run(Compare(at(0), at(20000), 10000));
    ASSERT_EQ(StatusOf(c), CompletionStatus::kSuccess);
    EXPECT_EQ(c.result, 1);
    EXPECT_EQ(c.offset, diff);
    at(20000)[diff] ^= 0x40;
  }
}

TEST_F(EngineTest, ScatterGatherCopiesAcrossUnevenLists) {
  Randomize(at(0), 4096, 4);
  // Sources: 3 pieces of the first 4 KiB; destinations: 4 pieces elsewhere.
  auto* src = reinterpret_cast<SgEntry*>(at(500000));
  auto* dst = reinterpret_cast<SgEntry*>(at(500512));
  src[0] = {Iova(at(0)), 100, 0};
  src[1] = {Iova(at(1000)), 2000, 0};
  src[2] = {Iova(at(3500)), 400, 0};
  dst[0] = {Iova(at(10000)), 1, 0};
  dst[1] = {Iova(at(20000)), 1499, 0};
  dst[2] = {Iova(at(30000)), 600, 0};
  dst[3] = {Iova(at(40000)), 400, 0};
  const Completion c = Run(CopySg(src, 3, dst, 4, 2500));
  ASSERT_EQ(StatusOf(c), CompletionStatus::kSuccess) << StatusName(StatusOf(c));
  EXPECT_EQ(c.bytes_completed, 2500u);
  std::vector<uint8_t> want, got;
  want.insert(want.end(), at(0), at(100));
  want.insert(want.end(), at(1000), at(3000));
  want.insert(want.end(), at(3500), at(3900));
  got.insert(got.end(), at(10000), at(10001));
  got.insert(got.end(), at(20000), at(21499));
  got.insert(got.end(), at(30000), at(30600));
  got.insert(got.end(), at(40000), at(40400));
  EXPECT_EQ(got, want);
}

TEST_F(EngineTest, BatchIsInvisibleUntilOneDoorbellThenRunsWhole) {
  Randomize(at(0), 64 * 32, 5);
  for (int i = 0; i < 32; ++i) {
    ASSERT_TRUE(producer->Enqueue(Copy(at(64 * i), at(100000 + 64 * i), 64, i)).ok());
  }
  EXPECT_EQ(engine->Poll(), 0u);  // enqueued, not submitted
  producer->Submit();
  EXPECT_EQ(producer->doorbells(), 1u);
  EXPECT_EQ(engine->Poll(), 32u);
  Completion c[32];
  ASSERT_EQ(producer->Reap(c, 32), 32u);
  for (int i = 0; i < 32; ++i) {
    EXPECT_EQ(StatusOf(c[i]), CompletionStatus::kSuccess);
    EXPECT_EQ(c[i].user_data, static_cast<uint64_t>(i));  // ring order
  }
  EXPECT_EQ(std::memcmp(at(0), at(100000), 64 * 32), 0);
}

TEST_F(EngineTest, BudgetBoundsOneRound) {
  EngineOptions o;
  o.budget = 4;
  Build(o, 64);
  for (int i = 0; i < 10; ++i) ASSERT_TRUE(producer->Enqueue(Fill(at(64 * i), 64, i + 1)).ok());
  producer->Submit();
  EXPECT_EQ(engine->Poll(), 4u);
  EXPECT_EQ(engine->Poll(), 4u);
  EXPECT_EQ(engine->Poll(), 2u);
  EXPECT_EQ(engine->Poll(), 0u);
}

TEST_F(EngineTest, SeveralChannelsAreServedIndependently) {
  auto r2 = SharedRing::Create(8);
  ASSERT_TRUE(r2.ok());
  auto ring2 = std::move(r2.value());
  auto ch2 = engine->AddChannel(ring2.get());
  ASSERT_TRUE(ch2.ok());
  RingProducer p2(ring2.get());
  Randomize(at(0), 2048, 6);
  ASSERT_TRUE(producer->Enqueue(Copy(at(0), at(10000), 1024)).ok());
  ASSERT_TRUE(p2.Enqueue(Copy(at(1024), at(20000), 1024)).ok());
  ASSERT_TRUE(p2.Enqueue(Fill(at(30000), 16, 0)).ok());
  producer->Submit();
  p2.Submit();
  EXPECT_EQ(engine->Poll(), 3u);
  Completion c[2];
  EXPECT_EQ(producer->Reap(c, 2), 1u);
  EXPECT_EQ(p2.Reap(c, 2), 2u);
  EXPECT_EQ(engine->stats(channel).bytes, 1024u);
  EXPECT_EQ(engine->stats(ch2.value()).bytes, 1040u);
  EXPECT_EQ(std::memcmp(at(0), at(10000), 1024), 0);
  EXPECT_EQ(std::memcmp(at(1024), at(20000), 1024), 0);
  EXPECT_TRUE(engine->RemoveChannel(ch2.value()).ok());
  EXPECT_FALSE(engine->RemoveChannel(ch2.value()).ok());
}

TEST_F(EngineTest, CompletionEventfdSignalsOncePerRoundWithNotifyFlag) {
  const int efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  ASSERT_GE(efd, 0);
  engine = std::make_unique<DmaEngine>();
  ASSERT_TRUE(engine->RegisterRegion(arena.data(), arena.size()).ok());
  auto ch = engine->AddChannel(ring.get(), {.completion_fd = efd});
  ASSERT_TRUE(ch.ok());
  // Without the flag: no signal.
  ASSERT_TRUE(producer->Enqueue(Fill(at(0), 64, 1)).ok());
  producer->Submit();
  engine->Poll();
  eventfd_t v = 0;
  EXPECT_NE(eventfd_read(efd, &v), 0);  // EAGAIN
  // A batch whose last descriptor asks for it: one signal for the round.
  for (int i = 0; i < 4; ++i) {
    Descriptor d = Fill(at(64 * i), 64, 2);
    if (i == 3) d.flags = kFlagNotify;
    ASSERT_TRUE(producer->Enqueue(d).ok());
  }
  producer->Submit();
  pollfd p{efd, POLLIN, 0};
  EXPECT_EQ(poll(&p, 1, 0), 0);
  engine->Poll();
  EXPECT_EQ(poll(&p, 1, 1000), 1);
  ASSERT_EQ(eventfd_read(efd, &v), 0);
  EXPECT_EQ(v, 1u);
  Completion c[5];
  EXPECT_EQ(producer->Reap(c, 5), 5u);
  EXPECT_EQ(engine->stats(ch.value()).notifications, 1u);
  close(efd);
}

TEST_F(EngineTest, WorkerThreadWakesOnDoorbell) {
  const int bell = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  const int done = eventfd(0, EFD_CLOEXEC);
  ASSERT_GE(bell, 0);
  ASSERT_GE(done, 0);
  engine = std::make_unique<DmaEngine>();
  ASSERT_TRUE(engine->RegisterRegion(arena.data(), arena.size()).ok());
  ASSERT_TRUE(engine->AddChannel(ring.get(), {.doorbell_fd = bell, .completion_fd = done}).ok());
  RingProducer p(ring.get(), bell);
  ASSERT_TRUE(engine->Start().ok());
  EXPECT_FALSE(engine->Start().ok());
  EXPECT_FALSE(engine->RegisterRegion(at(0), 1, 0x1000, kRead).ok());  // not while running
  Randomize(at(0), 4096, 7);
  for (int round = 0; round < 20; ++round) {
    std::this_thread::sleep_for(std::chrono::microseconds(round * 200));  // let it go idle
    Descriptor d = Copy(at(0), at(8192 + 4096 * round), 4096);
    d.flags = kFlagNotify;
    ASSERT_TRUE(p.Enqueue(d).ok());
    p.Submit();
    eventfd_t v;
    ASSERT_EQ(eventfd_read(done, &v), 0);  // blocks until the worker completes it
    Completion c;
    ASSERT_EQ(p.Reap(&c, 1), 1u);
    EXPECT_EQ(StatusOf(c), CompletionStatus::kSuccess);
    EXPECT_EQ(std::memcmp(at(0), at(8192 + 4096 * round), 4096), 0);
  }
  engine->Stop();
  engine->Stop();  // idempotent
  close(bell);
  close(done);
}

TEST_F(EngineTest, ProducerThreadAgainstWorkerThread) {
  // The ring's memory ordering under real concurrency (and TSan): a producer thread posts in
  // batches while the worker runs; every completion arrives once, in order, with its data.
  EngineOptions o;
  o.prefetch.mode = PrefetchMode::kOn;
  Build(o, 32);
  ASSERT_TRUE(engine->Start().ok());
  constexpr uint64_t kTotal = 20000;
  uint64_t posted = 0, reaped = 0, bad = 0;
  while (reaped < kTotal) {
    while (posted < kTotal && producer->free_slots() > 0) {
      Descriptor d = Fill(at(64 * (posted % 4096)), 64, posted);
      d.user_data = posted++;
      ASSERT_TRUE(producer->Enqueue(d).ok());
      if (posted % 7 == 0) break;  // uneven batches
    }
    producer->Submit();
    Completion c[32];
    const size_t n = producer->Reap(c, 32);
    for (size_t i = 0; i < n; ++i, ++reaped) {
      uint64_t got;
      std::memcpy(&got, at(64 * (reaped % 4096)), 8);
      bad += StatusOf(c[i]) != CompletionStatus::kSuccess || c[i].user_data != reaped ||
             (got != reaped && reaped + 4096 >= posted);
    }
    if (n == 0) std::this_thread::yield();
  }
  engine->Stop();
  EXPECT_EQ(bad, 0u);
  EXPECT_EQ(engine->stats(channel).completed, kTotal);
}

// Prefetch (any mode, or the helper thread) must never change what the engine does.
class PrefetchModeTest : public DmaFixture,
                         public ::testing::WithParamInterface<std::tuple<PrefetchMode, bool>> {};

TEST_P(PrefetchModeTest, ResultsAreIdenticalInEveryMode) {
  EngineOptions o;
  o.prefetch.mode = std::get<0>(GetParam());
  o.prefetch.helper_thread = std::get<1>(GetParam());
  o.prefetch.auto_window = 8;
  o.prefetch.auto_hold_windows = 2;
  o.prefetch.lookahead = 4;
  o.prefetch.max_bytes_ahead = 4096;
  Build(o, 16, 4 << 20);
  Randomize(at(0), 1 << 20, 8);
  std::mt19937 rng(9);
  uint64_t expect_crc = 0, got_crc = 0;
  size_t posted = 0, reaped = 0;
  constexpr size_t kOps = 600;
  while (reaped < kOps) {
    while (posted < kOps && producer->free_slots() > 0) {
      const uint32_t len = 1 + rng() % 20000;
      const size_t src = rng() % ((1 << 20) - len);
      const size_t dst = (2 << 20) + rng() % ((1 << 20) - len);
      Descriptor d = rng() % 3 == 0 ? CopyCrc(at(src), at(dst), len) : Copy(at(src), at(dst), len);
      if (d.opcode == static_cast<uint8_t>(Opcode::kCopyCrc)) expect_crc ^= Crc32c(at(src), len);
      d.user_data = (uint64_t{len} << 32) | dst;
      ASSERT_TRUE(producer->Enqueue(d).ok());
      ++posted;
      if (rng() % 4 == 0) producer->Submit();
    }
    producer->Submit();
    engine->Poll();
    Completion c[16];
    const size_t n = producer->Reap(c, 16);
    for (size_t i = 0; i < n; ++i) {
      ASSERT_EQ(StatusOf(c[i]), CompletionStatus::kSuccess);
      ASSERT_EQ(c[i].bytes_completed, c[i].user_data >> 32);
      got_crc ^= c[i].crc;
    }
    reaped += n;
  }
  EXPECT_EQ(got_crc, expect_crc);
  const ChannelStats s = engine->stats(channel);
  EXPECT_EQ(s.completed, kOps);
  EXPECT_EQ(s.errors, 0u);
  if (o.prefetch.mode == PrefetchMode::kOn && !o.prefetch.helper_thread) {
    EXPECT_GT(s.prefetched_bytes, 0u);
  }
  if (o.prefetch.mode == PrefetchMode::kOff || o.prefetch.helper_thread) {
    EXPECT_EQ(s.prefetched_bytes, 0u);
  }
}

INSTANTIATE_TEST_SUITE_P(Modes, PrefetchModeTest,
                         ::testing::Combine(::testing::Values(PrefetchMode::kOff, PrefetchMode::kOn,
                                                              PrefetchMode::kAuto),
                                            ::testing::Bool()));

TEST_F(EngineTest, AutoModeKeepsRunningTrials) {
  // The governor must see every batch of two or more, including those of its hold periods, or
  // it would hold its first verdict forever.
  EngineOptions o;
  o.prefetch.mode = PrefetchMode::kAuto;
  o.prefetch.auto_window = 8;
  o.prefetch.auto_hold_windows = 2;
  Build(o, 16);
  for (int i = 0; i < 500; ++i) {
    for (int k = 0; k < 4; ++k) {
      ASSERT_TRUE(producer->Enqueue(Copy(at(4096 * ((4 * i + k) % 64)), at(512 * 1024), 256)).ok());
    }
    producer->Submit();
    Completion c[4];
    size_t got = 0;
    for (int spin = 0; spin < 100 && got < 4; ++spin) {
      engine->Poll();
      got += producer->Reap(c + got, 4 - got);
    }
    ASSERT_EQ(got, 4u);
    for (const Completion& x : c) ASSERT_EQ(StatusOf(x), CompletionStatus::kSuccess);
  }
  // 2000 descriptors in batches of 4, trials of 16 and holds of at most 8 x 16: at least
  // 2000 / 144 trials.
  EXPECT_EQ(engine->batches_governed(), 500u);
  EXPECT_GE(engine->prefetch_trials(), 13u);
}

TEST_F(EngineTest, AutoModeLeavesSingleDescriptorBatchesOutOfTrials) {
  // One descriptor per doorbell (the transport's synchronous copies): nothing is ahead of the
  // parser, so auto neither prefetches nor spends clock reads on trials.
  EngineOptions o;
  o.prefetch.mode = PrefetchMode::kAuto;
  o.prefetch.auto_window = 8;
  Build(o, 16);
  for (int i = 0; i < 200; ++i) {
    ASSERT_EQ(StatusOf(Run(Copy(at(4096 * (i % 64)), at(512 * 1024), 256))),
              CompletionStatus::kSuccess);
  }
  EXPECT_EQ(engine->batches_governed(), 0u);
  EXPECT_EQ(engine->prefetch_trials(), 0u);
  EXPECT_EQ(engine->stats(channel).prefetched_bytes, 0u);
}

TEST(PrefetchModeNames, ParseRoundTrips) {
  for (PrefetchMode m : {PrefetchMode::kOff, PrefetchMode::kOn, PrefetchMode::kAuto}) {
    auto p = ParsePrefetchMode(PrefetchModeName(m));
    ASSERT_TRUE(p.ok());
    EXPECT_EQ(p.value(), m);
  }
  EXPECT_FALSE(ParsePrefetchMode("yes").ok());
  EXPECT_FALSE(ParsePrefetchMode("").ok());
}

}  // namespace
}  // namespace opensrd::dma
