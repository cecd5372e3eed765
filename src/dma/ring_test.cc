// Ring memory: creation and attachment checks, wrap-around, a full ring, an overflowing
// producer, and a ring shared with a forked process through its memfd.
#include <fcntl.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include "dma/dma_test_util.h"

namespace opensrd::dma {
namespace {
using namespace testing;

TEST(SharedRingTest, CapacityMustBeAPowerOfTwo) {
  EXPECT_FALSE(SharedRing::Create(0).ok());
  EXPECT_FALSE(SharedRing::Create(12).ok());
  EXPECT_FALSE(SharedRing::Create(SharedRing::kMaxCapacity * 2).ok());
  auto r = SharedRing::Create(1);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r.value()->capacity(), 1u);
}

TEST(SharedRingTest, AttachSeesTheSameMemory) {
  auto r = SharedRing::Create(16);
  ASSERT_TRUE(r.ok());
  auto a = SharedRing::Attach(r.value()->fd());
  ASSERT_TRUE(a.ok()) << a.status().ToString();
  EXPECT_EQ(a.value()->capacity(), 16u);
  EXPECT_NE(a.value()->header(), r.value()->header());  // a second mapping
  r.value()->descriptors()[5].user_data = 42;
  EXPECT_EQ(a.value()->descriptors()[5].user_data, 42u);
}

TEST(SharedRingTest, AttachRejectsForeignOrDamagedMemory) {
  auto r = SharedRing::Create(16);
  ASSERT_TRUE(r.ok());
  RingHeader* h = r.value()->header();
  h->magic ^= 1;
  EXPECT_EQ(SharedRing::Attach(r.value()->fd()).status().code(), Code::kMalformed);
  h->magic ^= 1;
  h->capacity = 32;  // larger than the memfd holds
  EXPECT_EQ(SharedRing::Attach(r.value()->fd()).status().code(), Code::kMalformed);
  h->capacity = 12;
  EXPECT_EQ(SharedRing::Attach(r.value()->fd()).status().code(), Code::kMalformed);
  h->capacity = 16;
  h->descriptor_size = 32;
  EXPECT_EQ(SharedRing::Attach(r.value()->fd()).status().code(), Code::kMalformed);
  h->descriptor_size = sizeof(Descriptor);
  h->completion_offset += 64;
  EXPECT_EQ(SharedRing::Attach(r.value()->fd()).status().code(), Code::kMalformed);
  h->completion_offset -= 64;
  EXPECT_TRUE(SharedRing::Attach(r.value()->fd()).ok());
  // A memfd nobody sealed could be shrunk under the engine: refused.
  const int fd = memfd_create("unsealed", MFD_CLOEXEC);
  ASSERT_GE(fd, 0);
  ASSERT_EQ(ftruncate(fd, 1 << 16), 0);
  EXPECT_FALSE(SharedRing::Attach(fd).ok());
  close(fd);
  EXPECT_FALSE(SharedRing::Attach(-1).ok());
}

class RingTest : public DmaFixture {
 protected:
  void SetUp() override { Build(EngineOptions{}, 8); }
};

TEST_F(RingTest, WrapsAroundManyTimes) {
  // 8 slots, batches of 1..8 descriptors, 500 descriptors: the indices wrap ~60 times.
  uint64_t next_user = 0, expect_user = 0;
  for (int round = 0; expect_user < 500; ++round) {
    const uint32_t batch = 1 + round % 8;
    for (uint32_t i = 0; i < batch && producer->free_slots() > 0; ++i) {
      const uint64_t u = next_user++;
      Descriptor d = Fill(at(64 * (u % 1024)), 64, u);
      d.user_data = u;
      ASSERT_TRUE(producer->Enqueue(d).ok());
    }
    producer->Submit();
    engine->Poll();
    Completion c[8];
    const size_t n = producer->Reap(c, round % 3 == 0 ? 2 : 8);  // sometimes reap late
    for (size_t i = 0; i < n; ++i) {
      ASSERT_EQ(StatusOf(c[i]), CompletionStatus::kSuccess);
      ASSERT_EQ(c[i].user_data, expect_user);
      uint64_t got;
      std::memcpy(&got, at(64 * (expect_user % 1024)), 8);
      ASSERT_EQ(got, expect_user);
      ++expect_user;
    }
  }
  EXPECT_GT(ring->header()->head.load(), 8u * 50);
  EXPECT_EQ(ring->header()->tail.load(), ring->header()->head.load());
}

TEST_F(RingTest, FullRingRefusesMoreUntilReaped) {
  for (int i = 0; i < 8; ++i) ASSERT_TRUE(producer->Enqueue(Fill(at(64 * i), 64, i)).ok());
  EXPECT_EQ(producer->free_slots(), 0u);
  EXPECT_EQ(producer->Enqueue(Fill(at(0), 64, 9)).code(), Code::kResourceExhausted);
  producer->Submit();
  engine->Poll();
  // Completed but not reaped: the slots are still taken.
  EXPECT_EQ(producer->Enqueue(Fill(at(0), 64, 9)).code(), Code::kResourceExhausted);
  Completion c[3];
  ASSERT_EQ(producer->Reap(c, 3), 3u);
  EXPECT_EQ(producer->free_slots(), 3u);
  EXPECT_TRUE(producer->Enqueue(Fill(at(0), 64, 9)).ok());
}

TEST_F(RingTest, OverflowingProducerHaltsTheChannelWithoutExecuting) {
  // A producer that ignores the protocol publishes more than the ring holds.
  std::memset(at(0), 0, 4096);
  for (int i = 0; i < 8; ++i) ring->descriptors()[i] = Fill(at(64 * i), 64, 0xff);
  RingHeader* h = ring->header();
  h->head.store(9);
  EXPECT_EQ(engine->Poll(), 0u);
  EXPECT_EQ(h->error.load(), static_cast<uint32_t>(RingError::kOverflow));
  for (int i = 0; i < 4096; ++i) ASSERT_EQ(at(0)[i], 0);  // nothing ran
  EXPECT_EQ(engine->stats(channel).completed, 0u);
  // A head that went backwards is the same fault.
  ASSERT_TRUE(engine->ResetChannel(channel).ok());
  EXPECT_EQ(h->error.load(), 0u);
  h->head.store(3);
  EXPECT_EQ(engine->Poll(), 0u);
  EXPECT_EQ(h->error.load(), static_cast<uint32_t>(RingError::kOverflow));
  // After a reset the channel serves a well-behaved producer again.
  h->head.store(9);
  h->consumed.store(9);
  ASSERT_TRUE(engine->ResetChannel(channel).ok());
  RingProducer fresh(ring.get());
  ASSERT_TRUE(fresh.Enqueue(Fill(at(0), 64, 7)).ok());
  fresh.Submit();
  EXPECT_EQ(engine->Poll(), 1u);
  Completion c;
  ASSERT_EQ(fresh.Reap(&c, 1), 1u);
  EXPECT_EQ(StatusOf(c), CompletionStatus::kSuccess);
  EXPECT_EQ(at(0)[0], 7);
}

// The engine (parent) and a producer (child process) share a ring and a data arena through
// two memfds mapped at different addresses in each; descriptors carry IOVAs, not pointers.
TEST(SharedRingTest, ForkedProducerDrivesTheEngineThroughMemfd) {
  constexpr uint64_t kIova = 0x5000000000;  // the arena's agreed IOVA
  constexpr size_t kBytes = 1 << 20;
  auto r = SharedRing::Create(16);
  ASSERT_TRUE(r.ok());
  auto ring = std::move(r.value());
  const int data_fd = memfd_create("dma-test-arena", MFD_CLOEXEC);
  ASSERT_GE(data_fd, 0);
  ASSERT_EQ(ftruncate(data_fd, kBytes), 0);
  auto* mine =
      static_cast<uint8_t*>(mmap(nullptr, kBytes, PROT_READ | PROT_WRITE, MAP_SHARED, data_fd, 0));
  ASSERT_NE(mine, MAP_FAILED);
  const int bell = eventfd(0, EFD_CLOEXEC);
  const int done = eventfd(0, EFD_CLOEXEC);
  ASSERT_GE(bell, 0);
  ASSERT_GE(done, 0);

  const pid_t pid = fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    // Child: map both memfds afresh (other addresses), post 200 copies and check them.
    auto attached = SharedRing::Attach(ring->fd());
    if (!attached.ok()) _exit(10);
    auto* data = static_cast<uint8_t*>(
        mmap(nullptr, kBytes, PROT_READ | PROT_WRITE, MAP_SHARED, data_fd, 0));
    if (data == MAP_FAILED || data == mine) _exit(11);
    RingProducer p(attached.value().get(), bell);
    for (int i = 0; i < 200; ++i) {
      const size_t src = 1024 * (i % 64), dst = 512 * 1024 + 1024 * (i % 64);
      for (int k = 0; k < 1024; ++k) data[src + k] = static_cast<uint8_t>(i * 7 + k);
      Descriptor d{};
      d.opcode = static_cast<uint8_t>(Opcode::kCopy);
      d.flags = kFlagNotify;
      d.src = kIova + src;
      d.dst = kIova + dst;
      d.length = 1024;
      d.user_data = i;
      if (!p.Enqueue(d).ok()) _exit(12);
      p.Submit();
      eventfd_t v;
      Completion c{};
      while (p.Reap(&c, 1) == 0) eventfd_read(done, &v);
      if (c.status != static_cast<uint8_t>(CompletionStatus::kSuccess) ||
          c.user_data != static_cast<uint64_t>(i)) {
        _exit(13);
      }
      if (std::memcmp(data + src, data + dst, 1024) != 0) _exit(14);
    }
    // One descriptor outside the arena's IOVA range must be refused across processes too.
    Descriptor bad{};
    bad.opcode = static_cast<uint8_t>(Opcode::kFill);
    bad.dst = kIova + kBytes;
    bad.length = 8;
    if (!p.Enqueue(bad).ok()) _exit(15);
    p.Submit();
    eventfd_t v;
    Completion c{};
    while (p.Reap(&c, 1) == 0) eventfd_read(done, &v);
    _exit(c.status == static_cast<uint8_t>(CompletionStatus::kNotRegistered) ? 0 : 16);
  }

  // Parent: the engine, serving until the child exits.
  DmaEngine engine;
  ASSERT_TRUE(engine.RegisterRegion(mine, kBytes, kIova, kReadWrite).ok());
  auto ch = engine.AddChannel(ring.get(), {.doorbell_fd = bell, .completion_fd = done});
  ASSERT_TRUE(ch.ok());
  int status = 0;
  pid_t waited = 0;
  while ((waited = waitpid(pid, &status, WNOHANG)) == 0) {
    // The bad descriptor carries no kFlagNotify: wake the child after every busy round too.
    if (engine.Poll() > 0) eventfd_write(done, 1);
    usleep(20);
  }
  ASSERT_EQ(waited, pid);
  ASSERT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 0);
  EXPECT_EQ(engine.stats(ch.value()).completed, 201u);
  EXPECT_EQ(engine.stats(ch.value()).errors, 1u);
  munmap(mine, kBytes);
  close(data_fd);
  close(bell);
  close(done);
}

}  // namespace
}  // namespace opensrd::dma
