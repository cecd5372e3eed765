// MemoryDevice: contents, allocation (holes, discard, write zeroes with and without kNoUnmap),
// validation, resize, injected errors, concurrent use.
#include "block/memory_device.h"

#include <gtest/gtest.h>

#include <thread>
#include <vector>

namespace opensrd::block {
namespace {

VolumeInfo Volume(uint64_t size = 1 << 20) {
  VolumeInfo v;
  v.size_bytes = size;
  v.block_size = 512;
  return v;
}

Status Do(BlockDevice& d, Op op, uint64_t off, uint32_t len, void* data = nullptr,
          uint8_t flags = 0) {
  IoRequest r;
  r.op = op;
  r.flags = flags;
  r.offset = off;
  r.length = len;
  r.data = data;
  Status out(Code::kTimedOut, "no completion");
  d.Submit(r, [&](Status s) { out = std::move(s); });  // completes inline
  return out;
}

std::vector<Extent> ExtentsOf(MemoryDevice& d, uint64_t off, uint64_t len) {
  auto r = d.BlockStatus(off, len);
  EXPECT_TRUE(r.ok());
  return r.ok() ? r.value() : std::vector<Extent>{};
}

TEST(MemoryDevice, ReadsBackWhatWasWrittenAndZeroesElsewhere) {
  MemoryDevice d(Volume());
  std::vector<uint8_t> w(6144);
  for (size_t i = 0; i < w.size(); ++i) w[i] = static_cast<uint8_t>(i * 13 + 1);
  ASSERT_TRUE(Do(d, Op::kWrite, 3072, w.size(), w.data()).ok());  // spans 3 pages
  std::vector<uint8_t> r(16384, 0xff);
  ASSERT_TRUE(Do(d, Op::kRead, 0, r.size(), r.data()).ok());
  for (size_t i = 0; i < r.size(); ++i) {
    const uint8_t want = (i >= 3072 && i < 3072 + w.size()) ? w[i - 3072] : 0;
    ASSERT_EQ(r[i], want) << i;
  }
  EXPECT_EQ(d.allocated_pages(), 3u);
}

TEST(MemoryDevice, BlockStatusReportsHolesAndData) {
  MemoryDevice d(Volume());
  std::vector<uint8_t> w(4096, 1);
  ASSERT_TRUE(Do(d, Op::kWrite, 8192, 4096, w.data()).ok());
  ASSERT_TRUE(Do(d, Op::kWrite, 12288, 4096, w.data()).ok());
  auto e = ExtentsOf(d, 0, 32768);
  ASSERT_EQ(e.size(), 3u);
  EXPECT_EQ(e[0].length, 8192u);
  EXPECT_TRUE(e[0].hole && e[0].zero);
  EXPECT_EQ(e[1].length, 8192u);
  EXPECT_FALSE(e[1].hole || e[1].zero);
  EXPECT_EQ(e[2].length, 16384u);
  EXPECT_TRUE(e[2].hole);
  // An unaligned query inside a data page.
  e = ExtentsOf(d, 9000 - 9000 % 512, 512);
  ASSERT_EQ(e.size(), 1u);
  EXPECT_FALSE(e[0].hole);
  EXPECT_FALSE(d.BlockStatus(1 << 20, 1).ok());
}

TEST(MemoryDevice, DiscardAndWriteZeroesMakeHolesUnlessNoUnmap) {
  MemoryDevice d(Volume());
  std::vector<uint8_t> w(16384, 7);
  ASSERT_TRUE(Do(d, Op::kWrite, 0, w.size(), w.data()).ok());
  ASSERT_EQ(d.allocated_pages(), 4u);
  ASSERT_TRUE(Do(d, Op::kDiscard, 0, 4096).ok());
  ASSERT_TRUE(Do(d, Op::kWriteZeroes, 4096, 4096).ok());
  ASSERT_TRUE(Do(d, Op::kWriteZeroes, 8192, 4096, nullptr, kNoUnmap).ok());
  EXPECT_EQ(d.allocated_pages(), 2u);
  // A partial page is zeroed in place and stays allocated.
  ASSERT_TRUE(Do(d, Op::kWriteZeroes, 12288, 512).ok());
  EXPECT_EQ(d.allocated_pages(), 2u);
  std::vector<uint8_t> r(16384);
  ASSERT_TRUE(Do(d, Op::kRead, 0, r.size(), r.data()).ok());
  for (size_t i = 0; i < 12288 + 512; ++i) ASSERT_EQ(r[i], 0) << i;
  for (size_t i = 12288 + 512; i < r.size(); ++i) ASSERT_EQ(r[i], 7) << i;
  auto e = ExtentsOf(d, 0, 16384);
  ASSERT_EQ(e.size(), 2u);
  EXPECT_TRUE(e[0].hole);
  EXPECT_EQ(e[0].length, 8192u);
  EXPECT_FALSE(e[1].hole);  // the kNoUnmap page and the partly zeroed page
  // kNoUnmap also allocates pages that were holes.
  ASSERT_TRUE(Do(d, Op::kWriteZeroes, 65536, 8192, nullptr, kNoUnmap).ok());
  EXPECT_EQ(d.allocated_pages(), 4u);
}

TEST(MemoryDevice, LargeDiscardSkipsAbsentPages) {
  MemoryDevice d(Volume(1ull << 40));  // 1 TiB: walking it page by page would never finish
  std::vector<uint8_t> w(4096, 3);
  ASSERT_TRUE(Do(d, Op::kWrite, 1ull << 39, 4096, w.data()).ok());
  ASSERT_TRUE(Do(d, Op::kDiscard, 0, 0xfffff000u).ok());
  EXPECT_EQ(d.allocated_pages(), 1u);
  auto e = ExtentsOf(d, 0, 1ull << 40);
  ASSERT_EQ(e.size(), 3u);
}

TEST(MemoryDevice, ValidatesRequests) {
  VolumeInfo v = Volume();
  v.read_only = true;
  MemoryDevice ro(v);
  std::vector<uint8_t> b(512);
  EXPECT_EQ(Do(ro, Op::kWrite, 0, 512, b.data()).code(), Code::kInvalidArgument);
  EXPECT_TRUE(Do(ro, Op::kRead, 0, 512, b.data()).ok());
  MemoryDevice d(Volume());
  EXPECT_EQ(Do(d, Op::kRead, 1 << 20, 512, b.data()).code(), Code::kInvalidArgument);
  EXPECT_EQ(Do(d, Op::kRead, 1, 512, b.data()).code(), Code::kInvalidArgument);
  EXPECT_EQ(d.counters().reads, 0u);
}

TEST(MemoryDevice, ResizeDropsAndGrows) {
  MemoryDevice d(Volume(16384));
  std::vector<uint8_t> w(16384, 9);
  ASSERT_TRUE(Do(d, Op::kWrite, 0, w.size(), w.data()).ok());
  d.Resize(6144);
  EXPECT_EQ(d.Info().size_bytes, 6144u);
  d.Resize(16384);
  std::vector<uint8_t> r(16384);
  ASSERT_TRUE(Do(d, Op::kRead, 0, r.size(), r.data()).ok());
  for (size_t i = 0; i < r.size(); ++i) ASSERT_EQ(r[i], i < 6144 ? 9 : 0) << i;
}

TEST(MemoryDevice, InjectedErrorsAndCounters) {
  MemoryDevice d(Volume());
  d.InjectError(Op::kFlush, Code::kIoError);
  EXPECT_EQ(Do(d, Op::kFlush, 0, 0).code(), Code::kIoError);
  d.InjectError(Op::kFlush, std::nullopt);
  EXPECT_TRUE(Do(d, Op::kFlush, 0, 0).ok());
  std::vector<uint8_t> b(512);
  EXPECT_TRUE(Do(d, Op::kWrite, 0, 512, b.data(), kFua).ok());
  const auto c = d.counters();
  EXPECT_EQ(c.flushes, 1u);
  EXPECT_EQ(c.writes, 1u);
  EXPECT_EQ(c.fua, 1u);
}

TEST(MemoryDevice, VolatileCacheKeepsOnlyFlushedAndFuaWritesAtPowerCut) {
  MemoryDevice d(Volume(), 4096, /*volatile_cache=*/true);
  std::vector<uint8_t> a(4096, 0xaa), b(4096, 0xbb), c(4096, 0xcc), r(4096);
  ASSERT_TRUE(Do(d, Op::kWrite, 0, 4096, a.data()).ok());
  ASSERT_TRUE(Do(d, Op::kWrite, 8192, 4096, a.data()).ok());
  ASSERT_TRUE(Do(d, Op::kFlush, 0, 0).ok());                         // both durable
  ASSERT_TRUE(Do(d, Op::kWrite, 0, 4096, b.data()).ok());            // lost: never flushed
  ASSERT_TRUE(Do(d, Op::kDiscard, 8192, 4096).ok());                 // lost: the data comes back
  ASSERT_TRUE(Do(d, Op::kWrite, 16384, 4096, c.data(), kFua).ok());  // durable by itself
  ASSERT_TRUE(Do(d, Op::kWrite, 32768, 4096, b.data()).ok());        // lost
  ASSERT_TRUE(Do(d, Op::kRead, 0, 4096, r.data()).ok());
  EXPECT_EQ(r, b);  // visible before the cut
  EXPECT_EQ(d.dirty_pages(), 3u);
  d.PowerCut();
  ASSERT_TRUE(Do(d, Op::kRead, 0, 4096, r.data()).ok());
  EXPECT_EQ(r, a);
  ASSERT_TRUE(Do(d, Op::kRead, 8192, 4096, r.data()).ok());
  EXPECT_EQ(r, a);
  ASSERT_TRUE(Do(d, Op::kRead, 16384, 4096, r.data()).ok());
  EXPECT_EQ(r, c);
  ASSERT_TRUE(Do(d, Op::kRead, 32768, 4096, r.data()).ok());
  EXPECT_EQ(r, std::vector<uint8_t>(4096, 0));
  EXPECT_EQ(d.dirty_pages(), 0u);
  // A flushed discard stays discarded.
  ASSERT_TRUE(Do(d, Op::kDiscard, 0, 4096).ok());
  ASSERT_TRUE(Do(d, Op::kFlush, 0, 0).ok());
  d.PowerCut();
  auto e = ExtentsOf(d, 0, 4096);
  ASSERT_EQ(e.size(), 1u);
  EXPECT_TRUE(e[0].hole);
}

TEST(MemoryDevice, WithoutVolatileCachePowerCutLosesNothing) {
  MemoryDevice d(Volume());
  std::vector<uint8_t> a(4096, 0xaa), r(4096);
  ASSERT_TRUE(Do(d, Op::kWrite, 0, 4096, a.data()).ok());
  EXPECT_EQ(d.dirty_pages(), 0u);
  d.PowerCut();
  ASSERT_TRUE(Do(d, Op::kRead, 0, 4096, r.data()).ok());
  EXPECT_EQ(r, a);
}

TEST(MemoryDevice, ConcurrentWritersAndReaders) {
  MemoryDevice d(Volume(4 << 20));
  constexpr int kThreads = 4;
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      std::vector<uint8_t> w(4096, static_cast<uint8_t>(t + 1)), r(4096);
      for (int i = 0; i < 200; ++i) {
        const uint64_t off = (static_cast<uint64_t>(i) * kThreads + t) * 4096 % (4 << 20);
        EXPECT_TRUE(Do(d, Op::kWrite, off, 4096, w.data()).ok());
        EXPECT_TRUE(Do(d, Op::kRead, off, 4096, r.data()).ok());
        EXPECT_EQ(r, w);
        if (i % 3 == 0) {
          EXPECT_TRUE(Do(d, Op::kDiscard, off, 4096).ok());
        }
        EXPECT_TRUE(d.BlockStatus(0, 1 << 20).ok());
      }
    });
  }
  for (auto& th : threads) th.join();
}

}  // namespace
}  // namespace opensrd::block
