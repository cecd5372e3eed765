// RcDevice over RoCEv2 on real sockets: two devices in one process on 127.0.15.1 and
// 127.0.15.2, each test on its own UDP port of 7821-7824 (ctest runs tests in parallel; both
// sides of a RoCEv2 connection use one port), connected
// through the IB CM on QP1. What only RoCEv2 has: atomics, immediate data, the CM's REJ, and
// the connection cap answered with a REJ. The behaviour every protocol shares is in
// rc_device_test.cc.
#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <cstring>
#include <functional>
#include <vector>

#include "opensrd/rdma.h"

namespace opensrd::rdma {
namespace {

uint16_t g_port = 0;  // the running test's (each sets its own)

NetAddr At(uint32_t last_octet) {
  NetAddr a;
  a.ip = (127u << 24) | (15u << 8) | last_octet;
  a.port = g_port;
  return a;
}

std::unique_ptr<RcDevice> Open(uint32_t octet, uint32_t max_connections = 64) {
  RcDeviceConfig c;
  c.protocol = RcProtocol::kRoce;
  c.local = At(octet);
  c.max_connections = max_connections;
  Result<std::unique_ptr<RcDevice>> d = RcDevice::Open(c);
  EXPECT_TRUE(d.ok()) << ToString(c.local) << ": " << d.status().ToString();
  return d.ok() ? std::move(d.value()) : nullptr;
}

// Polls every device until `done` or 10 s.
bool PollUntil(std::vector<RcDevice*> devs, const std::function<bool()>& done) {
  const auto end = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (std::chrono::steady_clock::now() < end) {
    if (done()) return true;
    for (RcDevice* d : devs) {
      if (!d->Poll(1).ok()) return false;
    }
  }
  return done();
}

struct Side {
  std::unique_ptr<RcDevice> dev;
  PdHandle pd = 0;
  CqHandle cq = 0;
  QpNum qp = 0;
  std::vector<uint64_t> mem = std::vector<uint64_t>(8192);  // 64 KiB, 8-byte aligned
  MemoryRegion mr;
  std::vector<WorkCompletion> done;
  std::vector<CmEvent> events;

  void Init(uint32_t octet, uint32_t max_connections = 64) {
    dev = Open(octet, max_connections);
    ASSERT_NE(dev, nullptr);
    pd = dev->AllocPd();
    cq = dev->CreateCq();
    Result<QpNum> q = dev->CreateQp(pd, cq, cq);
    ASSERT_TRUE(q.ok());
    qp = *q;
    Result<MemoryRegion> m = dev->RegMr(
        pd, mem.data(), mem.size() * 8,
        kAccessLocalWrite | kAccessRemoteRead | kAccessRemoteWrite | kAccessRemoteAtomic);
    ASSERT_TRUE(m.ok());
    mr = *m;
  }
  uint8_t* bytes() { return reinterpret_cast<uint8_t*>(mem.data()); }
  void Drain() {
    WorkCompletion wc[16];
    for (size_t n; (n = dev->PollCq(cq, wc)) > 0;) done.insert(done.end(), wc, wc + n);
    for (CmEvent e; dev->PollCmEvent(&e);) events.push_back(std::move(e));
  }
};

// a connects to b (b accepts with private data); both see kEstablished.
void Connect(Side& a, Side& b) {
  ASSERT_TRUE(b.dev->Listen().ok());
  const std::vector<uint8_t> hello = {'h', 'i'};
  ASSERT_TRUE(a.dev->Connect(a.qp, At(2), hello).ok());
  ASSERT_TRUE(PollUntil({a.dev.get(), b.dev.get()}, [&] {
    b.Drain();
    return !b.events.empty();
  }));
  ASSERT_EQ(b.events[0].kind, CmEventKind::kConnectRequest);
  // IB CM private data has a fixed size: what was given, then zeros (as rdma_cm delivers it).
  ASSERT_GE(b.events[0].private_data.size(), hello.size());
  EXPECT_TRUE(std::equal(hello.begin(), hello.end(), b.events[0].private_data.begin()));
  const std::vector<uint8_t> welcome = {'o', 'k', '!'};
  ASSERT_TRUE(b.dev->Accept(b.events[0].request, b.qp, welcome).ok());
  ASSERT_TRUE(PollUntil({a.dev.get(), b.dev.get()}, [&] {
    a.Drain();
    b.Drain();
    return !a.events.empty() && b.events.size() >= 2;
  }));
  ASSERT_EQ(a.events[0].kind, CmEventKind::kEstablished);
  ASSERT_GE(a.events[0].private_data.size(), welcome.size());
  EXPECT_TRUE(std::equal(welcome.begin(), welcome.end(), a.events[0].private_data.begin()));
  EXPECT_EQ(b.events[1].kind, CmEventKind::kEstablished);
  a.events.clear();
  b.events.clear();
}

WorkCompletion RunOp(Side& a, Side& b, const SendWr& wr) {
  const size_t before = a.done.size();
  EXPECT_TRUE(a.dev->PostSend(a.qp, wr).ok());
  EXPECT_TRUE(PollUntil({a.dev.get(), b.dev.get()}, [&] {
    a.Drain();
    b.Drain();
    return a.done.size() > before;
  }));
  return a.done.size() > before ? a.done[before] : WorkCompletion{};
}

TEST(RcDeviceRoce, AtomicsAndImmediateDataReachTheRegisteredMemory) {
  g_port = 7821;
  Side a, b;
  a.Init(1);
  b.Init(2);
  ASSERT_FALSE(HasFatalFailure());
  Connect(a, b);
  b.mem[1] = 40;
  SendWr fa;
  fa.wr_id = 7;
  fa.opcode = WrOpcode::kAtomicFetchAdd;
  fa.sge = {reinterpret_cast<uint64_t>(&a.mem[0]), 8, a.mr.lkey};
  fa.remote_addr = reinterpret_cast<uint64_t>(&b.mem[1]);
  fa.rkey = b.mr.rkey;
  fa.compare_add = 2;
  WorkCompletion wc = RunOp(a, b, fa);
  EXPECT_EQ(wc.status, WcStatus::kSuccess) << WcStatusName(wc.status);
  EXPECT_EQ(wc.opcode, WcOpcode::kFetchAdd);
  EXPECT_EQ(a.mem[0], 40u);
  EXPECT_EQ(b.mem[1], 42u);

  SendWr cs = fa;
  cs.opcode = WrOpcode::kAtomicCmpSwap;
  cs.compare_add = 42;
  cs.swap = 99;
  wc = RunOp(a, b, cs);
  EXPECT_EQ(wc.status, WcStatus::kSuccess);
  EXPECT_EQ(a.mem[0], 42u);
  EXPECT_EQ(b.mem[1], 99u);

  // A misaligned atomic is refused by the executor: memory untouched.
  cs.remote_addr += 4;
  wc = RunOp(a, b, cs);
  EXPECT_EQ(wc.status, WcStatus::kRemoteInvalidRequest) << WcStatusName(wc.status);
  EXPECT_EQ(b.mem[1], 99u);
}

TEST(RcDeviceRoce, WriteWithImmediateConsumesAReceive) {
  g_port = 7822;
  Side a, b;
  a.Init(1);
  b.Init(2);
  ASSERT_FALSE(HasFatalFailure());
  Connect(a, b);
  RecvWr r;
  r.wr_id = 55;
  r.sge = {reinterpret_cast<uint64_t>(b.bytes() + 4096), 64, b.mr.lkey};
  ASSERT_TRUE(b.dev->PostRecv(b.qp, r).ok());
  std::memset(a.bytes(), 0xAB, 3000);
  SendWr w;
  w.wr_id = 1;
  w.opcode = WrOpcode::kRdmaWriteWithImm;
  w.sge = {reinterpret_cast<uint64_t>(a.bytes()), 3000, a.mr.lkey};
  w.remote_addr = reinterpret_cast<uint64_t>(b.bytes() + 8192);
  w.rkey = b.mr.rkey;
  w.imm = 0xC0FFEE;
  EXPECT_EQ(RunOp(a, b, w).status, WcStatus::kSuccess);
  ASSERT_TRUE(PollUntil({a.dev.get(), b.dev.get()}, [&] {
    b.Drain();
    return !b.done.empty();
  }));
  EXPECT_EQ(b.done[0].wr_id, 55u);
  EXPECT_EQ(b.done[0].opcode, WcOpcode::kRecvRdmaWithImm);
  EXPECT_TRUE(b.done[0].with_imm);
  EXPECT_EQ(b.done[0].imm, 0xC0FFEEu);
  EXPECT_EQ(b.done[0].byte_len, 3000u);
  EXPECT_EQ(b.bytes()[8192], 0xAB);
  EXPECT_EQ(b.bytes()[8192 + 2999], 0xAB);
}

TEST(RcDeviceRoce, ARejectedRequestReportsRejectedAndFlushesWhatWasQueued) {
  g_port = 7823;
  Side a, b;
  a.Init(1);
  b.Init(2);
  ASSERT_FALSE(HasFatalFailure());
  ASSERT_TRUE(b.dev->Listen().ok());
  ASSERT_TRUE(a.dev->Connect(a.qp, At(2), {}).ok());
  SendWr w;  // queued until the connection is up, which it never is
  w.wr_id = 3;
  w.opcode = WrOpcode::kRdmaWrite;
  w.sge = {reinterpret_cast<uint64_t>(a.bytes()), 16, a.mr.lkey};
  ASSERT_TRUE(a.dev->PostSend(a.qp, w).ok());
  ASSERT_TRUE(PollUntil({a.dev.get(), b.dev.get()}, [&] {
    b.Drain();
    return !b.events.empty();
  }));
  ASSERT_TRUE(b.dev->Reject(b.events[0].request).ok());
  ASSERT_TRUE(PollUntil({a.dev.get(), b.dev.get()}, [&] {
    a.Drain();
    return !a.events.empty();
  }));
  EXPECT_EQ(a.events[0].kind, CmEventKind::kRejected) << CmEventName(a.events[0].kind);
  ASSERT_EQ(a.done.size(), 1u);
  EXPECT_EQ(a.done[0].status, WcStatus::kFlushed);
}

TEST(RcDeviceRoce, ConnectionsBeyondTheCapAreRefusedAndTheOthersStillWork) {
  g_port = 7824;
  Side b;
  b.Init(2, /*max_connections=*/1);
  ASSERT_FALSE(HasFatalFailure());
  ASSERT_TRUE(b.dev->Listen().ok());
  Side a1, a2;
  a1.Init(1);
  a2.Init(3);
  ASSERT_FALSE(HasFatalFailure());
  ASSERT_TRUE(a1.dev->Connect(a1.qp, At(2), {}).ok());
  ASSERT_TRUE(PollUntil({a1.dev.get(), b.dev.get()}, [&] {
    b.Drain();
    return !b.events.empty();
  }));
  // The first request is pending (not yet accepted): it holds the one slot.
  ASSERT_TRUE(a2.dev->Connect(a2.qp, At(2), {}).ok());
  ASSERT_TRUE(PollUntil({a2.dev.get(), b.dev.get()}, [&] {
    a2.Drain();
    return !a2.events.empty();
  }));
  EXPECT_EQ(a2.events[0].kind, CmEventKind::kRejected);
  EXPECT_EQ(b.dev->stats().connections_refused, 1u);
  ASSERT_EQ(b.events.size(), 1u);
  ASSERT_TRUE(b.dev->Accept(b.events[0].request, b.qp, {}).ok());
  ASSERT_TRUE(PollUntil({a1.dev.get(), b.dev.get()}, [&] {
    a1.Drain();
    return !a1.events.empty();
  }));
  ASSERT_EQ(a1.events[0].kind, CmEventKind::kEstablished);
  b.mem[0] = 0x1122334455667788ull;
  SendWr rd;
  rd.opcode = WrOpcode::kRdmaRead;
  rd.sge = {reinterpret_cast<uint64_t>(&a1.mem[0]), 8, a1.mr.lkey};
  rd.remote_addr = reinterpret_cast<uint64_t>(&b.mem[0]);
  rd.rkey = b.mr.rkey;
  EXPECT_EQ(RunOp(a1, b, rd).status, WcStatus::kSuccess);
  EXPECT_EQ(a1.mem[0], 0x1122334455667788ull);
}

}  // namespace
}  // namespace opensrd::rdma
