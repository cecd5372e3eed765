// RoCEv2 queue pairs whose responder is the protocol-independent executor (ExecutorTarget):
// two RcQueuePairs over an in-memory pipe. Each rejection (wrong rkey, out of bounds, missing
// permission, another protection domain, a deregistered region, a misaligned atomic, a SEND
// longer than its receive) is checked three ways: the AETH NAK code on the wire, the
// requester's completion status, and the responder's memory byte for byte.
#include "rdma/executor_target.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cstring>
#include <vector>

#include "rdma/roce.h"
#include "rdma/roce_qp.h"

namespace opensrd::rdma {
namespace {

using Bytes = std::vector<uint8_t>;
using roce::RcConfig;
using roce::RcQueuePair;
using roce::WorkRequest;
using roce::WrOpcode;
namespace wc = roce;  // the queue pair's completion statuses

constexpr size_t kRegion = 4096;
constexpr uint32_t kAll =
    kAccessLocalWrite | kAccessRemoteWrite | kAccessRemoteRead | kAccessRemoteAtomic;

RcConfig Config(uint32_t local, uint32_t remote, uint32_t spsn, uint32_t epsn) {
  RcConfig c;
  c.local_qpn = local;
  c.remote_qpn = remote;
  c.send_psn = spsn;
  c.expected_psn = epsn;
  c.mtu = 1024;
  c.ack_timeout_us = 1000;
  c.retry_cnt = 1;
  return c;
}

// A (requester, MemoryTarget behind it) and B (responder: the executor over a registry with one
// region `mem` in B's protection domain, plus memory for receives).
struct Pair {
  MemoryRegistry reg;
  PdHandle pd = reg.AllocPd();
  PdHandle other_pd = reg.AllocPd();
  alignas(8) uint8_t mem[kRegion];
  MemoryRegion mr;
  MemoryTarget ta{0x10000, 0xA0A0, 1 << 16};
  ExecutorTarget tb{reg, pd};
  RcQueuePair a{Config(0x11, 0x22, 0x000100, 0x000200), &ta};
  RcQueuePair b{Config(0x22, 0x11, 0x000200, 0x000100), &tb};
  std::vector<RdmaCommand> from_b;  // what B answered, decoded (payload not kept)
  Bytes snapshot;

  explicit Pair(uint32_t access = kAll, PdHandle region_pd = 0) {
    for (size_t i = 0; i < kRegion; ++i) mem[i] = static_cast<uint8_t>(i * 13 + 5);
    mr = *reg.Register(region_pd == 0 ? pd : region_pd, mem, kRegion, access);
    snapshot.assign(mem, mem + kRegion);
  }
  uint64_t base() const { return reinterpret_cast<uintptr_t>(mem); }
  bool Untouched() const { return Bytes(mem, mem + kRegion) == snapshot; }

  void Run() {
    for (int i = 0; i < 1000; ++i) {
      auto oa = a.TakeOutgoing();
      auto ob = b.TakeOutgoing();
      if (oa.empty() && ob.empty()) return;
      for (const Bytes& p : oa) b.OnPacket(*roce::DecodeTransport(p), 0);
      for (const Bytes& p : ob) {
        RdmaCommand c = *roce::DecodeTransport(p);
        a.OnPacket(c, 0);
        c.payload = {};
        from_b.push_back(c);
      }
    }
    FAIL() << "no quiescence";
  }
  // The one completion of a single posted WR.
  roce::Completion RunOne(WorkRequest w) {
    EXPECT_TRUE(a.PostSend(std::move(w), 0));
    Run();
    auto done = a.TakeCompletions();
    EXPECT_EQ(done.size(), 1u);
    return done.empty() ? roce::Completion{} : done[0];
  }
  // The NAK code B sent (-1: no NAK).
  int NakCode() const {
    for (const RdmaCommand& c : from_b) {
      if (c.opcode == RdmaOpcode::kNak) return c.syndrome & 0x1F;
    }
    return -1;
  }
};

WorkRequest Write(uint64_t va, uint32_t rkey, size_t len, uint8_t fill = 0xEE) {
  WorkRequest w;
  w.wr_id = 1;
  w.opcode = WrOpcode::kWrite;
  w.remote_va = va;
  w.rkey = rkey;
  w.data = Bytes(len, fill);
  return w;
}
WorkRequest Read(uint64_t va, uint32_t rkey, uint32_t len) {
  WorkRequest w;
  w.wr_id = 2;
  w.opcode = WrOpcode::kRead;
  w.remote_va = va;
  w.rkey = rkey;
  w.read_length = len;
  return w;
}
WorkRequest Atomic(uint64_t va, uint32_t rkey, WrOpcode op = WrOpcode::kFetchAdd) {
  WorkRequest w;
  w.wr_id = 3;
  w.opcode = op;
  w.remote_va = va;
  w.rkey = rkey;
  w.swap_add = 7;
  return w;
}

constexpr int kAccessNak = static_cast<int>(NakCode::kRemoteAccessError);
constexpr int kInvalidNak = static_cast<int>(NakCode::kInvalidRequest);

TEST(RoceExecutor, WriteReadAndAtomicsSucceedThroughTheExecutor) {
  Pair p;
  // 3000 bytes: three packets (FIRST, MIDDLE, LAST), each placed by the executor.
  auto c = p.RunOne(Write(p.base() + 100, p.mr.rkey, 3000, 0x5A));
  EXPECT_EQ(c.status, wc::WcStatus::kSuccess);
  for (size_t i = 0; i < kRegion; ++i) {
    const bool written = i >= 100 && i < 3100;
    ASSERT_EQ(p.mem[i], written ? 0x5A : p.snapshot[i]) << i;
  }
  c = p.RunOne(Read(p.base() + 96, p.mr.rkey, 2000));
  EXPECT_EQ(c.status, wc::WcStatus::kSuccess);
  ASSERT_EQ(c.read_data.size(), 2000u);
  EXPECT_TRUE(std::equal(c.read_data.begin(), c.read_data.end(), p.mem + 96));
  uint64_t before;
  std::memcpy(&before, p.mem + 4000, 8);
  c = p.RunOne(Atomic(p.base() + 4000, p.mr.rkey));
  EXPECT_EQ(c.status, wc::WcStatus::kSuccess);
  EXPECT_EQ(c.atomic_original, before);
  uint64_t after;
  std::memcpy(&after, p.mem + 4000, 8);
  EXPECT_EQ(after, before + 7);
  WorkRequest cas = Atomic(p.base() + 4000, p.mr.rkey, WrOpcode::kCmpSwap);
  cas.compare = after;
  cas.swap_add = 0x1122334455667788ull;
  c = p.RunOne(cas);
  EXPECT_EQ(c.atomic_original, after);
  std::memcpy(&after, p.mem + 4000, 8);
  EXPECT_EQ(after, 0x1122334455667788ull);
  EXPECT_EQ(p.NakCode(), -1);
}

TEST(RoceExecutor, SendLandsInAPostedReceiveAndCompletesIt) {
  Pair p;
  alignas(8) uint8_t rbuf[4000] = {};
  MemoryRegion rmr = *p.reg.Register(p.pd, rbuf, sizeof rbuf, kAccessLocalWrite);
  p.tb.PostReceive(RecvWr{9, LocalSge{reinterpret_cast<uintptr_t>(rbuf), 4000, rmr.lkey}});
  WorkRequest w;
  w.opcode = WrOpcode::kSendImm;
  w.imm = 0xCAFE;
  w.data = Bytes(2500, 0x33);
  EXPECT_EQ(p.RunOne(w).status, wc::WcStatus::kSuccess);
  ASSERT_EQ(p.tb.receive_completions().size(), 1u);
  const WorkCompletion& r = p.tb.receive_completions()[0];
  EXPECT_EQ(r.wr_id, 9u);
  EXPECT_EQ(r.status, WcStatus::kSuccess);
  EXPECT_EQ(r.byte_len, 2500u);
  EXPECT_TRUE(r.with_imm);
  EXPECT_EQ(r.imm, 0xCAFEu);
  EXPECT_EQ(rbuf[2499], 0x33);
  EXPECT_EQ(rbuf[2500], 0);
}

TEST(RoceExecutor, WrongRkeyIsRemoteAccessError) {
  Pair p;
  auto c = p.RunOne(Write(p.base(), p.mr.rkey ^ 0x100, 64));
  EXPECT_EQ(c.status, wc::WcStatus::kRemoteAccessError);
  EXPECT_EQ(p.NakCode(), kAccessNak);
  EXPECT_EQ(p.tb.last_violation(), AccessViolation::kKey);
  EXPECT_TRUE(p.Untouched());
}

TEST(RoceExecutor, WriteOutOfBoundsIsRemoteAccessErrorAndNothingLands) {
  Pair p;
  // The first 1024 bytes would fit; the RETH's whole range is checked before any byte moves.
  auto c = p.RunOne(Write(p.base() + kRegion - 1024, p.mr.rkey, 2048));
  EXPECT_EQ(c.status, wc::WcStatus::kRemoteAccessError);
  EXPECT_EQ(p.NakCode(), kAccessNak);
  EXPECT_EQ(p.tb.last_violation(), AccessViolation::kBounds);
  EXPECT_TRUE(p.Untouched());
}

TEST(RoceExecutor, ReadOutOfBoundsIsRemoteAccessError) {
  Pair p;
  auto c = p.RunOne(Read(p.base() - 8, p.mr.rkey, 16));
  EXPECT_EQ(c.status, wc::WcStatus::kRemoteAccessError);
  EXPECT_EQ(p.NakCode(), kAccessNak);
  EXPECT_TRUE(c.read_data.empty() || c.read_data == Bytes(c.read_data.size(), 0));
}

TEST(RoceExecutor, MissingPermissionIsRemoteAccessErrorForEachOperation) {
  // Registered for remote read only: WRITE and atomics are refused; READ works.
  Pair p(kAccessLocalWrite | kAccessRemoteRead);
  EXPECT_EQ(p.RunOne(Write(p.base(), p.mr.rkey, 64)).status, wc::WcStatus::kRemoteAccessError);
  EXPECT_EQ(p.tb.last_violation(), AccessViolation::kAccess);
  EXPECT_TRUE(p.Untouched());

  Pair q(kAccessLocalWrite | kAccessRemoteRead);
  EXPECT_EQ(q.RunOne(Atomic(q.base(), q.mr.rkey)).status, wc::WcStatus::kRemoteAccessError);
  EXPECT_EQ(q.NakCode(), kAccessNak);
  EXPECT_TRUE(q.Untouched());

  // Registered for remote write only: READ is refused.
  Pair r(kAccessLocalWrite | kAccessRemoteWrite);
  EXPECT_EQ(r.RunOne(Read(r.base(), r.mr.rkey, 64)).status, wc::WcStatus::kRemoteAccessError);
  EXPECT_EQ(r.NakCode(), kAccessNak);
  EXPECT_EQ(r.tb.last_violation(), AccessViolation::kAccess);
}

TEST(RoceExecutor, RegionOfAnotherProtectionDomainIsRemoteAccessError) {
  Pair p(kAll, /*region_pd=*/2);
  ASSERT_NE(p.mr.pd, p.pd);
  EXPECT_EQ(p.RunOne(Write(p.base(), p.mr.rkey, 64)).status, wc::WcStatus::kRemoteAccessError);
  EXPECT_EQ(p.NakCode(), kAccessNak);
  EXPECT_EQ(p.tb.last_violation(), AccessViolation::kPd);
  EXPECT_TRUE(p.Untouched());
}

TEST(RoceExecutor, DeregisteredRegionIsRemoteAccessError) {
  Pair p;
  const uint32_t rkey = p.mr.rkey;
  ASSERT_TRUE(p.reg.Deregister(p.mr.lkey).ok());
  EXPECT_EQ(p.RunOne(Write(p.base(), rkey, 64)).status, wc::WcStatus::kRemoteAccessError);
  EXPECT_EQ(p.NakCode(), kAccessNak);
  EXPECT_TRUE(p.Untouched());
  Pair q;
  ASSERT_TRUE(q.reg.Deregister(q.mr.lkey).ok());
  EXPECT_EQ(q.RunOne(Atomic(q.base(), q.mr.rkey)).status, wc::WcStatus::kRemoteAccessError);
  EXPECT_TRUE(q.Untouched());
}

TEST(RoceExecutor, MisalignedAtomicIsInvalidRequest) {
  Pair p;
  auto c = p.RunOne(Atomic(p.base() + 4, p.mr.rkey));
  EXPECT_EQ(c.status, wc::WcStatus::kRemoteInvalidRequest);
  EXPECT_EQ(p.NakCode(), kInvalidNak);
  EXPECT_TRUE(p.Untouched());
  Pair q;
  c = q.RunOne(Atomic(q.base() + 12, q.mr.rkey, WrOpcode::kCmpSwap));
  EXPECT_EQ(c.status, wc::WcStatus::kRemoteInvalidRequest);
  EXPECT_TRUE(q.Untouched());
}

TEST(RoceExecutor, SendLongerThanItsReceiveIsInvalidRequestAndALocalLengthError) {
  Pair p;
  alignas(8) uint8_t rbuf[1500] = {};
  MemoryRegion rmr = *p.reg.Register(p.pd, rbuf, sizeof rbuf, kAccessLocalWrite);
  p.tb.PostReceive(RecvWr{4, LocalSge{reinterpret_cast<uintptr_t>(rbuf), 1000, rmr.lkey}});
  WorkRequest w;
  w.opcode = WrOpcode::kSend;
  w.data = Bytes(2500, 0x44);
  EXPECT_EQ(p.RunOne(w).status, wc::WcStatus::kRemoteInvalidRequest);
  EXPECT_EQ(p.NakCode(), kInvalidNak);
  ASSERT_EQ(p.tb.receive_completions().size(), 1u);
  EXPECT_EQ(p.tb.receive_completions()[0].status, WcStatus::kLocalLengthError);
  EXPECT_EQ(rbuf[1000], 0);  // nothing past the receive's SGE
}

TEST(RoceExecutor, SendIntoADeregisteredReceiveIsRemoteOperationalError) {
  Pair p;
  alignas(8) uint8_t rbuf[256] = {};
  MemoryRegion rmr = *p.reg.Register(p.pd, rbuf, sizeof rbuf, kAccessLocalWrite);
  p.tb.PostReceive(RecvWr{5, LocalSge{reinterpret_cast<uintptr_t>(rbuf), 256, rmr.lkey}});
  ASSERT_TRUE(p.reg.Deregister(rmr.lkey).ok());
  WorkRequest w;
  w.opcode = WrOpcode::kSend;
  w.data = Bytes(100, 0x44);
  EXPECT_EQ(p.RunOne(w).status, wc::WcStatus::kRemoteOperationalError);
  EXPECT_EQ(p.NakCode(), static_cast<int>(NakCode::kRemoteOperationalError));
  ASSERT_EQ(p.tb.receive_completions().size(), 1u);
  EXPECT_EQ(p.tb.receive_completions()[0].status, WcStatus::kLocalProtectionError);
  EXPECT_EQ(rbuf[0], 0);
}

TEST(RoceExecutor, SendWithoutReceiveIsRnrNotAnError) {
  Pair p;
  WorkRequest w;
  w.opcode = WrOpcode::kSend;
  w.data = Bytes(10, 1);
  ASSERT_TRUE(p.a.PostSend(w, 0));
  p.Run();
  EXPECT_TRUE(p.a.TakeCompletions().empty());  // waiting out the RNR timer
  EXPECT_EQ(p.b.stats().rnr_naks_sent, 1u);
}

}  // namespace
}  // namespace opensrd::rdma
