// Every rejection path of the parser: each bad descriptor completes with its own error status
// and the engine writes nothing (memory around and inside the registered region is checked).
#include "dma/dma_test_util.h"

namespace opensrd::dma {
namespace {
using namespace testing;

// The arena is 64 KiB; only [16 KiB, 48 KiB) is registered read-write and [48 KiB, 52 KiB)
// read-only, so a descriptor can name real, mapped memory that the engine must not touch.
class BadDescriptorTest : public DmaFixture {
 protected:
  void SetUp() override {
    arena.assign(kArena, 0x5a);
    auto r = SharedRing::Create(8);
    ASSERT_TRUE(r.ok());
    ring = std::move(r.value());
    engine = std::make_unique<DmaEngine>();
    ASSERT_TRUE(engine->RegisterRegion(at(kLo), kHi - kLo).ok());
    ASSERT_TRUE(engine->RegisterRegion(at(kHi), kRo, Iova(at(kHi)), kRead).ok());
    auto ch = engine->AddChannel(ring.get());
    ASSERT_TRUE(ch.ok());
    channel = ch.value();
    producer = std::make_unique<RingProducer>(ring.get());
  }

  // Runs d, expects `want`, and checks that not one byte of the arena changed.
  void ExpectRejected(const Descriptor& d, CompletionStatus want) {
    const std::vector<uint8_t> before = arena;
    const Completion c = Run(d);
    EXPECT_EQ(StatusOf(c), want) << "got " << StatusName(StatusOf(c));
    EXPECT_EQ(c.bytes_completed, 0u);
    EXPECT_TRUE(arena == before) << "the engine wrote memory for a rejected descriptor";
  }

  static constexpr size_t kArena = 64 << 10, kLo = 16 << 10, kHi = 48 << 10, kRo = 4 << 10;
};

TEST_F(BadDescriptorTest, ValidDescriptorInsideRegionSucceeds) {
  // The control: the same shapes as below, legal, do succeed.
  EXPECT_EQ(StatusOf(Run(Copy(at(kLo), at(kLo + 4096), 4096))), CompletionStatus::kSuccess);
  EXPECT_EQ(StatusOf(Run(Copy(at(kHi), at(kLo), kRo))), CompletionStatus::kSuccess);
  EXPECT_EQ(StatusOf(Run(Copy(at(kHi - 64), at(kLo), 64))), CompletionStatus::kSuccess);
}

TEST_F(BadDescriptorTest, UnknownOpcode) {
  Descriptor d = Copy(at(kLo), at(kLo + 4096), 64);
  for (uint8_t op : {uint8_t{0}, uint8_t{6}, uint8_t{0x7f}, uint8_t{0xff}}) {
    d.opcode = op;
    ExpectRejected(d, CompletionStatus::kBadOpcode);
  }
}

TEST_F(BadDescriptorTest, UnknownFlagOrReservedField) {
  Descriptor d = Copy(at(kLo), at(kLo + 4096), 64);
  d.flags = 0x80;
  ExpectRejected(d, CompletionStatus::kBadField);
  d = Copy(at(kLo), at(kLo + 4096), 64);
  d.reserved[1] = 1;
  ExpectRejected(d, CompletionStatus::kBadField);
  d = Copy(at(kLo), at(kLo + 4096), 64);
  d.reserved0 = 1;
  ExpectRejected(d, CompletionStatus::kBadField);
  d = Copy(at(kLo), at(kLo + 4096), 64);
  d.pattern = 1;  // a fill field on a copy
  ExpectRejected(d, CompletionStatus::kBadField);
  d = Copy(at(kLo), at(kLo + 4096), 64);
  d.src_count = 1;  // a scatter-gather field on a copy
  ExpectRejected(d, CompletionStatus::kBadField);
  d = Copy(at(kLo), at(kLo + 4096), 64);
  d.crc_seed = 1;  // a CRC field on a copy
  ExpectRejected(d, CompletionStatus::kBadField);
  d = Fill(at(kLo), 64, 1);
  d.src = Iova(at(kLo));  // a fill has no source
  ExpectRejected(d, CompletionStatus::kBadField);
}

TEST_F(BadDescriptorTest, NullAddresses) {
  ExpectRejected(Copy(nullptr, at(kLo), 64), CompletionStatus::kNullAddress);
  ExpectRejected(Copy(at(kLo), nullptr, 64), CompletionStatus::kNullAddress);
  ExpectRejected(Fill(nullptr, 64, 1), CompletionStatus::kNullAddress);
  ExpectRejected(Compare(at(kLo), nullptr, 64), CompletionStatus::kNullAddress);
  ExpectRejected(CopySg(nullptr, 1, nullptr, 1, 64), CompletionStatus::kNullAddress);
}

TEST_F(BadDescriptorTest, ZeroLength) {
  ExpectRejected(Copy(at(kLo), at(kLo + 64), 0), CompletionStatus::kBadLength);
  ExpectRejected(Fill(at(kLo), 0, 1), CompletionStatus::kBadLength);
}

TEST_F(BadDescriptorTest, OverlappingSourceAndDestination) {
  ExpectRejected(Copy(at(kLo), at(kLo), 64), CompletionStatus::kOverlap);
  ExpectRejected(Copy(at(kLo), at(kLo + 63), 64), CompletionStatus::kOverlap);
  ExpectRejected(Copy(at(kLo + 63), at(kLo), 64), CompletionStatus::kOverlap);
  ExpectRejected(CopyCrc(at(kLo), at(kLo + 10), 64), CompletionStatus::kOverlap);
  // Adjacent is fine.
  EXPECT_EQ(StatusOf(Run(Copy(at(kLo), at(kLo + 64), 64))), CompletionStatus::kSuccess);
}

TEST_F(BadDescriptorTest, OutsideRegisteredMemory) {
  // Wholly outside (but mapped), straddling each edge, and far away.
  ExpectRejected(Copy(at(0), at(kLo), 64), CompletionStatus::kNotRegistered);
  ExpectRejected(Copy(at(kLo), at(0), 64), CompletionStatus::kNotRegistered);
  ExpectRejected(Copy(at(kLo - 1), at(kLo + 4096), 64), CompletionStatus::kNotRegistered);
  ExpectRejected(Copy(at(kLo), at(kHi + kRo - 63), 64), CompletionStatus::kNotRegistered);
  ExpectRejected(Fill(at(kHi + kRo), 1, 1), CompletionStatus::kNotRegistered);
  ExpectRejected(Copy(at(kLo), at(kLo + 4096), 0xffffffffu), CompletionStatus::kNotRegistered);
  Descriptor d = Copy(at(kLo), at(kLo + 4096), 64);
  d.src = ~uint64_t{0} - 10;  // wraps the address space
  ExpectRejected(d, CompletionStatus::kNotRegistered);
  // Spanning two adjacent regions is not inside one region.
  ExpectRejected(Copy(at(kHi - 32), at(kLo), 64), CompletionStatus::kNotRegistered);
}

TEST_F(BadDescriptorTest, WriteToReadOnlyRegion) {
  ExpectRejected(Copy(at(kLo), at(kHi), 64), CompletionStatus::kAccessDenied);
  ExpectRejected(Fill(at(kHi), 64, 1), CompletionStatus::kAccessDenied);
  // Compare only reads its second buffer: allowed.
  EXPECT_EQ(StatusOf(Run(Compare(at(kLo), at(kHi), 64))), CompletionStatus::kSuccess);
}

TEST_F(BadDescriptorTest, BadScatterGatherLists) {
  auto* src = reinterpret_cast<SgEntry*>(at(kLo));
  auto* dst = reinterpret_cast<SgEntry*>(at(kLo + 2048));
  auto reset = [&] {
    src[0] = {Iova(at(kLo + 4096)), 64, 0};
    src[1] = {Iova(at(kLo + 8192)), 64, 0};
    dst[0] = {Iova(at(kLo + 12288)), 128, 0};
  };
  reset();
  EXPECT_EQ(StatusOf(Run(CopySg(src, 2, dst, 1, 128))), CompletionStatus::kSuccess);
  reset();
  ExpectRejected(CopySg(src, 0, dst, 1, 128), CompletionStatus::kBadSgList);
  ExpectRejected(CopySg(src, kMaxSgEntries + 1, dst, 1, 128), CompletionStatus::kBadSgList);
  ExpectRejected(CopySg(src, 2, dst, 1, 127), CompletionStatus::kBadLength);  // totals disagree
  ExpectRejected(CopySg(src, 2, dst, 1, 0), CompletionStatus::kBadLength);
  src[1].length = 0;
  ExpectRejected(CopySg(src, 2, dst, 1, 64), CompletionStatus::kBadSgList);
  reset();
  src[1].reserved = 1;
  ExpectRejected(CopySg(src, 2, dst, 1, 128), CompletionStatus::kBadSgList);
  reset();
  src[1].iova = 0;
  ExpectRejected(CopySg(src, 2, dst, 1, 128), CompletionStatus::kNullAddress);
  reset();
  src[1].iova = Iova(at(0));  // an entry outside the regions
  ExpectRejected(CopySg(src, 2, dst, 1, 128), CompletionStatus::kNotRegistered);
  reset();
  dst[0].iova = Iova(at(kHi));  // a destination entry in read-only memory
  ExpectRejected(CopySg(src, 2, dst, 1, 128), CompletionStatus::kAccessDenied);
  reset();
  dst[0].iova = Iova(at(kLo + 8192 - 64));  // overlaps the second source
  ExpectRejected(CopySg(src, 2, dst, 1, 128), CompletionStatus::kOverlap);
  reset();
  // The list itself outside registered memory, or running off its end.
  auto* outside = reinterpret_cast<SgEntry*>(at(0));
  outside[0] = {Iova(at(kLo + 4096)), 128, 0};
  ExpectRejected(CopySg(outside, 1, dst, 1, 128), CompletionStatus::kNotRegistered);
  auto* last = reinterpret_cast<SgEntry*>(at(kHi + kRo - 16));
  ExpectRejected(CopySg(src, 2, last, 2, 128), CompletionStatus::kNotRegistered);
}

TEST_F(BadDescriptorTest, ErrorsDoNotStopTheRing) {
  // A bad descriptor between good ones: the good ones still run, in order.
  ASSERT_TRUE(producer->Enqueue(Fill(at(kLo), 8, 1)).ok());
  ASSERT_TRUE(producer->Enqueue(Fill(at(0), 8, 2)).ok());
  ASSERT_TRUE(producer->Enqueue(Fill(at(kLo + 8), 8, 3)).ok());
  producer->Submit();
  engine->Poll();
  Completion c[3];
  ASSERT_EQ(producer->Reap(c, 3), 3u);
  EXPECT_EQ(StatusOf(c[0]), CompletionStatus::kSuccess);
  EXPECT_EQ(StatusOf(c[1]), CompletionStatus::kNotRegistered);
  EXPECT_EQ(StatusOf(c[2]), CompletionStatus::kSuccess);
  EXPECT_EQ(at(kLo + 8)[0], 3);
  EXPECT_EQ(engine->stats(channel).errors, 1u);
}

TEST(RegionTest, RegistrationRejectsBadRanges) {
  std::vector<uint8_t> mem(8192);
  DmaEngine e;
  EXPECT_FALSE(e.RegisterRegion(nullptr, 10).ok());
  EXPECT_FALSE(e.RegisterRegion(mem.data(), 0).ok());
  EXPECT_FALSE(e.RegisterRegion(mem.data(), 10, 0, kReadWrite).ok());  // IOVA 0 is null
  EXPECT_FALSE(e.RegisterRegion(mem.data(), 10, ~uint64_t{0} - 4, kReadWrite).ok());  // wraps
  // Local memory that wraps the address space is no memory at all (a wild pointer from a caller).
  void* top = reinterpret_cast<void*>(~uintptr_t{0} - 4095);
  EXPECT_FALSE(e.RegisterRegion(top, 8192, 0x100000, kRead).ok());
  EXPECT_FALSE(e.RegisterRegion(mem.data(), 10, 0x1000, 0).ok());
  EXPECT_FALSE(e.RegisterRegion(mem.data(), 10, 0x1000, 8).ok());
  auto a = e.RegisterRegion(mem.data(), 4096, 0x10000, kReadWrite);
  ASSERT_TRUE(a.ok());
  EXPECT_FALSE(e.RegisterRegion(mem.data() + 4096, 4096, 0x10fff, kRead).ok());  // overlaps
  EXPECT_TRUE(e.RegisterRegion(mem.data() + 4096, 4096, 0x11000, kRead).ok());   // adjacent
  EXPECT_TRUE(e.UnregisterRegion(a.value()).ok());
  EXPECT_FALSE(e.UnregisterRegion(a.value()).ok());
}

TEST_F(BadDescriptorTest, UnregisteredRegionIsNoLongerReachable) {
  auto id = engine->RegisterRegion(at(0), 4096, 0x7000000, kReadWrite);
  ASSERT_TRUE(id.ok());
  Descriptor d = Fill(nullptr, 64, 0x1111111111111111ull);
  d.dst = 0x7000000;
  EXPECT_EQ(StatusOf(Run(d)), CompletionStatus::kSuccess);
  EXPECT_EQ(at(0)[0], 0x11);
  ASSERT_TRUE(engine->UnregisterRegion(id.value()).ok());
  d.pattern = 0x2222222222222222ull;
  ExpectRejected(d, CompletionStatus::kNotRegistered);
}

}  // namespace
}  // namespace opensrd::dma
