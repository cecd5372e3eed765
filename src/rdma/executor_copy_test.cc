// The executor's data moves through its copier seam (issue 17): WRITE and SEND payloads land the
// same with memcpy (no copier, or PayloadCopy::kDirect) and with the DMA engine (kEngine), the
// engine really carries them (descriptors counted), and a move the engine refuses leaves memory
// untouched and fails the command.
#include <gtest/gtest.h>

#include <cstring>
#include <optional>
#include <vector>

#include "common/pattern.h"
#include "rdma/executor.h"

namespace opensrd::rdma {
namespace {

constexpr size_t kRegion = 4096;
constexpr uint32_t kAll = kAccessLocalWrite | kAccessRemoteWrite | kAccessRemoteRead;

struct Target {
  MemoryRegistry reg;
  Executor exec{reg};
  std::optional<PayloadCopier> copier;
  PdHandle pd = reg.AllocPd();
  std::vector<uint8_t> mem = std::vector<uint8_t>(kRegion + 64, 0xEE);  // region + guard tail
  MemoryRegion mr;
  ReceiveQueue rq;
  ResponderState state;
  ExecTarget t{pd, &rq, &state};

  // `copy`: nullopt for no copier at all (memcpy inside the executor).
  explicit Target(std::optional<PayloadCopy> copy) {
    mr = *reg.Register(pd, mem.data(), kRegion, kAll);
    if (copy) {
      copier.emplace(*copy, dma::PrefetchMode::kOff);
      exec.set_copier(&*copier);
    }
  }
  uint64_t va(size_t off) const { return reinterpret_cast<uintptr_t>(mem.data()) + off; }
  uint64_t descriptors() const { return copier ? copier->stats().descriptors : 0; }
};

std::vector<uint8_t> Pattern(uint64_t key, size_t n) {
  std::vector<uint8_t> v(n);
  FillPattern(key, v.data(), n);
  return v;
}

class ExecutorCopy : public ::testing::TestWithParam<std::optional<PayloadCopy>> {};

TEST_P(ExecutorCopy, MultiSegmentWriteLandsWhole) {
  Target x(GetParam());
  const std::vector<uint8_t> data = Pattern(11, 3000);
  RdmaCommand c;
  c.opcode = RdmaOpcode::kWriteFirst;
  c.va = x.va(100);
  c.rkey = x.mr.rkey;
  c.dma_length = 3000;
  c.payload = {data.data(), 1000};
  EXPECT_EQ(x.exec.Execute(c, x.t).reply, Reply::kNone);
  c.opcode = RdmaOpcode::kWriteMiddle;
  c.payload = {data.data() + 1000, 1000};
  EXPECT_EQ(x.exec.Execute(c, x.t).reply, Reply::kNone);
  c.opcode = RdmaOpcode::kWriteLast;
  c.payload = {data.data() + 2000, 1000};
  EXPECT_EQ(x.exec.Execute(c, x.t).reply, Reply::kAck);
  EXPECT_EQ(std::memcmp(x.mem.data() + 100, data.data(), 3000), 0);
  for (size_t i = 0; i < 100; ++i) ASSERT_EQ(x.mem[i], 0xEE) << i;
  for (size_t i = 3100; i < x.mem.size(); ++i) ASSERT_EQ(x.mem[i], 0xEE) << i;
  if (GetParam() == PayloadCopy::kEngine) {
    EXPECT_GE(x.descriptors(), 3u);  // one move per segment, at least
  } else {
    EXPECT_EQ(x.descriptors(), 0u);
  }
}

TEST_P(ExecutorCopy, MultiSegmentSendFillsItsReceive) {
  Target x(GetParam());
  x.rq.posted.push_back({77, {x.va(512), 2048, x.mr.lkey}});
  const std::vector<uint8_t> data = Pattern(12, 1500);
  RdmaCommand c;
  c.opcode = RdmaOpcode::kSendFirst;
  c.payload = {data.data(), 700};
  EXPECT_EQ(x.exec.Execute(c, x.t).reply, Reply::kNone);
  c.opcode = RdmaOpcode::kSendLast;
  c.payload = {data.data() + 700, 800};
  const ExecResult r = x.exec.Execute(c, x.t);
  EXPECT_EQ(r.reply, Reply::kAck);
  ASSERT_TRUE(r.recv_completed);
  EXPECT_EQ(r.recv_wc.status, WcStatus::kSuccess);
  EXPECT_EQ(r.recv_wc.byte_len, 1500u);
  EXPECT_EQ(std::memcmp(x.mem.data() + 512, data.data(), 1500), 0);
  for (size_t i = 512 + 1500; i < x.mem.size(); ++i) ASSERT_EQ(x.mem[i], 0xEE) << i;
  EXPECT_EQ(x.descriptors() > 0, GetParam() == PayloadCopy::kEngine);
}

// The requester places READ responses through the same seam (rdma_device.cc).
TEST_P(ExecutorCopy, PlaceCopiesIntoTheNamedObject) {
  Target x(GetParam());
  const std::vector<uint8_t> data = Pattern(13, 256);
  ASSERT_TRUE(x.exec.Place(x.mem.data() + 64, 512, 128, data).ok());
  EXPECT_EQ(std::memcmp(x.mem.data() + 192, data.data(), 256), 0);
  EXPECT_EQ(x.mem[191], 0xEE);
  EXPECT_EQ(x.mem[448], 0xEE);
}

INSTANTIATE_TEST_SUITE_P(
    Copy, ExecutorCopy, ::testing::Values(std::nullopt, PayloadCopy::kDirect, PayloadCopy::kEngine),
    [](const ::testing::TestParamInfo<std::optional<PayloadCopy>>& i) {
      if (!i.param) return std::string("NoCopier");
      return std::string(*i.param == PayloadCopy::kEngine ? "Engine" : "Direct");
    });

// A move past the end of the object it names is refused by the engine (the object is mapped
// whole, its end is a guard gap): nothing is written, the caller gets kIoError.
TEST(ExecutorCopyEngine, MovePastTheObjectIsRefusedAndWritesNothing) {
  Target x(PayloadCopy::kEngine);
  const std::vector<uint8_t> data = Pattern(14, 64);
  const std::vector<uint8_t> before = x.mem;
  const Status s = x.exec.Place(x.mem.data(), 100, 80, data);  // 80 + 64 > 100
  EXPECT_EQ(s.code(), Code::kIoError);
  EXPECT_EQ(x.mem, before);
  EXPECT_EQ(x.copier->stats().errors, 1u);
}

}  // namespace
}  // namespace opensrd::rdma
