// The executor's security checks: every rejection gives the NAK code the protocol must send and
// the completion status the requester will see, and leaves the target memory as it was.
#include "rdma/executor.h"

#include <gtest/gtest.h>

#include <cstring>
#include <functional>
#include <set>
#include <vector>

namespace opensrd::rdma {
namespace {

constexpr size_t kRegion = 256;

struct Fixture {
  MemoryRegistry reg;
  Executor exec{reg};
  PdHandle pd = reg.AllocPd();
  PdHandle other_pd = reg.AllocPd();
  alignas(8) uint8_t mem[kRegion + 64];  // the region plus a guard tail
  MemoryRegion mr;
  ReceiveQueue rq;
  ResponderState state;
  ExecTarget target{pd, &rq, &state};
  std::vector<uint8_t> data = std::vector<uint8_t>(64, 0xAB);

  explicit Fixture(uint32_t access = kAccessLocalWrite | kAccessRemoteWrite | kAccessRemoteRead |
                                     kAccessRemoteAtomic) {
    for (size_t i = 0; i < sizeof mem; ++i) mem[i] = static_cast<uint8_t>(i * 7 + 1);
    mr = *reg.Register(pd, mem, kRegion, access);
  }
  uint64_t base() const { return reinterpret_cast<uintptr_t>(mem); }
  RdmaCommand WriteCmd(uint64_t va, uint32_t len) {
    RdmaCommand c;
    c.opcode = RdmaOpcode::kWriteOnly;
    c.va = va;
    c.rkey = mr.rkey;
    c.dma_length = len;
    c.payload = {data.data(), len};
    return c;
  }
  RdmaCommand ReadCmd(uint64_t va, uint32_t len) {
    RdmaCommand c;
    c.opcode = RdmaOpcode::kReadRequest;
    c.va = va;
    c.rkey = mr.rkey;
    c.dma_length = len;
    return c;
  }
  RdmaCommand AtomicCmd(uint64_t va, RdmaOpcode op = RdmaOpcode::kFetchAdd) {
    RdmaCommand c;
    c.opcode = op;
    c.va = va;
    c.rkey = mr.rkey;
    c.dma_length = 8;
    c.swap_add = 5;
    return c;
  }
  std::vector<uint8_t> Snapshot() const { return {mem, mem + sizeof mem}; }
};

void ExpectNak(const ExecResult& r, NakCode code, WcStatus status) {
  EXPECT_EQ(r.reply, Reply::kNak);
  EXPECT_EQ(r.nak, code);
  EXPECT_EQ(r.requester_status, status);
}

TEST(Executor, WriteReadAtomicSucceed) {
  Fixture f;
  ExecResult w = f.exec.Execute(f.WriteCmd(f.base() + 16, 32), f.target);
  EXPECT_EQ(w.reply, Reply::kAck);
  EXPECT_EQ(std::memcmp(f.mem + 16, f.data.data(), 32), 0);
  ExecResult r = f.exec.Execute(f.ReadCmd(f.base() + 16, 32), f.target);
  ASSERT_EQ(r.reply, Reply::kReadResponse);
  EXPECT_EQ(r.read_data.data(), f.mem + 16);
  EXPECT_EQ(r.read_data.size(), 32u);
  uint64_t v = 100;
  std::memcpy(f.mem + 64, &v, 8);
  ExecResult a = f.exec.Execute(f.AtomicCmd(f.base() + 64), f.target);
  ASSERT_EQ(a.reply, Reply::kAtomicAck);
  EXPECT_EQ(a.atomic_orig, 100u);
  std::memcpy(&v, f.mem + 64, 8);
  EXPECT_EQ(v, 105u);
  RdmaCommand cas = f.AtomicCmd(f.base() + 64, RdmaOpcode::kCompareSwap);
  cas.compare = 105;
  cas.swap_add = 7;
  EXPECT_EQ(f.exec.Execute(cas, f.target).atomic_orig, 105u);
  std::memcpy(&v, f.mem + 64, 8);
  EXPECT_EQ(v, 7u);
  cas.compare = 999;  // mismatch: memory unchanged, the old value returned
  cas.swap_add = 1;
  EXPECT_EQ(f.exec.Execute(cas, f.target).atomic_orig, 7u);
  std::memcpy(&v, f.mem + 64, 8);
  EXPECT_EQ(v, 7u);
}

// Each rejected request: the NAK, the requester's status, and target memory untouched.
struct Rejection {
  const char* name;
  std::function<RdmaCommand(Fixture&)> make;
  NakCode nak;
  WcStatus status;
  AccessViolation violation;
  uint32_t access =
      kAccessLocalWrite | kAccessRemoteWrite | kAccessRemoteRead | kAccessRemoteAtomic;
  bool other_pd = false;
  bool deregister = false;
};

TEST(Executor, EverySecurityRejectionLeavesMemoryUntouched) {
  const NakCode kAcc = NakCode::kRemoteAccessError;
  const WcStatus kRae = WcStatus::kRemoteAccessError;
  std::vector<Rejection> cases = {
      {"write wrong rkey",
       [](Fixture& f) {
         RdmaCommand c = f.WriteCmd(f.base(), 16);
         c.rkey ^= 0x100;
         return c;
       },
       kAcc, kRae, AccessViolation::kKey},
      {"write lkey as rkey",
       [](Fixture& f) {
         RdmaCommand c = f.WriteCmd(f.base(), 16);
         c.rkey = f.mr.lkey;
         return c;
       },
       kAcc, kRae, AccessViolation::kKey},
      {"write past the end", [](Fixture& f) { return f.WriteCmd(f.base() + kRegion - 8, 16); },
       kAcc, kRae, AccessViolation::kBounds},
      {"write before the start", [](Fixture& f) { return f.WriteCmd(f.base() - 8, 16); }, kAcc,
       kRae, AccessViolation::kBounds},
      {"write va+len overflows",
       [](Fixture& f) {
         RdmaCommand c = f.WriteCmd(f.base() + 8, 16);
         c.va = ~0ull - 4;  // va + 16 wraps to a small number
         return c;
       },
       kAcc, kRae, AccessViolation::kBounds},
      {"write len wraps past va",
       [](Fixture& f) {
         RdmaCommand c = f.WriteCmd(f.base() + 8, 16);
         c.dma_length = 0xFFFFFFF8u;  // announced length far beyond the region
         return c;
       },
       kAcc, kRae, AccessViolation::kBounds},
      {"write without remote write", [](Fixture& f) { return f.WriteCmd(f.base(), 16); }, kAcc,
       kRae, AccessViolation::kAccess, kAccessLocalWrite | kAccessRemoteRead},
      {"write from another PD", [](Fixture& f) { return f.WriteCmd(f.base(), 16); }, kAcc, kRae,
       AccessViolation::kPd, kAccessLocalWrite | kAccessRemoteWrite, true},
      {"write to a deregistered region", [](Fixture& f) { return f.WriteCmd(f.base(), 16); }, kAcc,
       kRae, AccessViolation::kKey, kAccessLocalWrite | kAccessRemoteWrite, false, true},
      {"read wrong rkey",
       [](Fixture& f) {
         RdmaCommand c = f.ReadCmd(f.base(), 16);
         c.rkey += 1;
         return c;
       },
       kAcc, kRae, AccessViolation::kKey},
      {"read past the end", [](Fixture& f) { return f.ReadCmd(f.base() + 1, kRegion); }, kAcc, kRae,
       AccessViolation::kBounds},
      {"read without remote read", [](Fixture& f) { return f.ReadCmd(f.base(), 16); }, kAcc, kRae,
       AccessViolation::kAccess, kAccessLocalWrite | kAccessRemoteWrite},
      {"read from another PD", [](Fixture& f) { return f.ReadCmd(f.base(), 16); }, kAcc, kRae,
       AccessViolation::kPd, kAccessLocalWrite | kAccessRemoteRead, true},
      {"read a deregistered region", [](Fixture& f) { return f.ReadCmd(f.base(), 16); }, kAcc, kRae,
       AccessViolation::kKey, kAccessRemoteRead, false, true},
      {"atomic wrong rkey",
       [](Fixture& f) {
         RdmaCommand c = f.AtomicCmd(f.base());
         c.rkey = 0;
         return c;
       },
       kAcc, kRae, AccessViolation::kKey},
      {"atomic without atomic access", [](Fixture& f) { return f.AtomicCmd(f.base()); }, kAcc, kRae,
       AccessViolation::kAccess, kAccessLocalWrite | kAccessRemoteWrite | kAccessRemoteRead},
      {"atomic past the end", [](Fixture& f) { return f.AtomicCmd(f.base() + kRegion - 4); }, kAcc,
       kRae, AccessViolation::kBounds},
      {"atomic from another PD", [](Fixture& f) { return f.AtomicCmd(f.base()); }, kAcc, kRae,
       AccessViolation::kPd, kAccessLocalWrite | kAccessRemoteAtomic, true},
      {"atomic misaligned", [](Fixture& f) { return f.AtomicCmd(f.base() + 4); },
       NakCode::kInvalidRequest, WcStatus::kRemoteInvalidRequest, AccessViolation::kNone},
      {"cmp_swap misaligned",
       [](Fixture& f) { return f.AtomicCmd(f.base() + 9, RdmaOpcode::kCompareSwap); },
       NakCode::kInvalidRequest, WcStatus::kRemoteInvalidRequest, AccessViolation::kNone},
      {"write payload longer than its RETH",
       [](Fixture& f) {
         RdmaCommand c = f.WriteCmd(f.base(), 32);
         c.dma_length = 16;
         return c;
       },
       NakCode::kInvalidRequest, WcStatus::kRemoteInvalidRequest, AccessViolation::kNone},
      {"write middle without a first",
       [](Fixture& f) {
         RdmaCommand c = f.WriteCmd(f.base(), 16);
         c.opcode = RdmaOpcode::kWriteMiddle;
         return c;
       },
       NakCode::kInvalidRequest, WcStatus::kRemoteInvalidRequest, AccessViolation::kNone},
      {"read response sent to a responder",
       [](Fixture& f) {
         RdmaCommand c = f.WriteCmd(f.base(), 16);
         c.opcode = RdmaOpcode::kReadResponseOnly;
         return c;
       },
       NakCode::kInvalidRequest, WcStatus::kRemoteInvalidRequest, AccessViolation::kNone},
  };
  for (const Rejection& k : cases) {
    SCOPED_TRACE(k.name);
    Fixture f(k.access);
    if (k.other_pd) f.target.pd = f.other_pd;
    RdmaCommand cmd = k.make(f);
    if (k.deregister) {
      ASSERT_TRUE(f.reg.Deregister(f.mr.lkey).ok());
    }
    const std::vector<uint8_t> before = f.Snapshot();
    ExecResult r = f.exec.Execute(cmd, f.target);
    ExpectNak(r, k.nak, k.status);
    EXPECT_EQ(r.violation, k.violation);
    EXPECT_TRUE(r.read_data.empty());
    EXPECT_FALSE(r.recv_completed);
    EXPECT_EQ(f.Snapshot(), before);
  }
}

TEST(Executor, ReregisteredRegionGetsNewKeysAndOldRkeyFails) {
  Fixture f;
  const uint32_t old_rkey = f.mr.rkey, old_lkey = f.mr.lkey;
  ASSERT_TRUE(f.reg.Deregister(f.mr.lkey).ok());
  f.mr = *f.reg.Register(f.pd, f.mem, kRegion, kAccessLocalWrite | kAccessRemoteWrite);
  EXPECT_NE(f.mr.rkey, old_rkey);
  EXPECT_NE(f.mr.lkey, old_lkey);
  EXPECT_NE(f.mr.rkey & 0xFF, old_rkey & 0xFF);  // the generation moved on
  RdmaCommand c = f.WriteCmd(f.base(), 16);
  c.rkey = old_rkey;
  const std::vector<uint8_t> before = f.Snapshot();
  ExpectNak(f.exec.Execute(c, f.target), NakCode::kRemoteAccessError, WcStatus::kRemoteAccessError);
  EXPECT_EQ(f.Snapshot(), before);
}

TEST(Executor, KeysAreDistinctAcrossManyRegistrations) {
  MemoryRegistry reg;
  PdHandle pd = reg.AllocPd();
  static uint8_t mem[4096];
  std::set<uint32_t> keys;
  for (int i = 0; i < 1000; ++i) {
    MemoryRegion mr = *reg.Register(pd, mem + i % 4000, 16, kAccessLocalWrite);
    EXPECT_NE(mr.lkey, 0u);
    EXPECT_NE(mr.lkey, mr.rkey);
    EXPECT_TRUE(keys.insert(mr.lkey).second);
    EXPECT_TRUE(keys.insert(mr.rkey).second);
  }
  // Keys are random above the generation byte: not sequential.
  EXPECT_GT(keys.size(), 1999u);
}

TEST(Executor, SendIntoPostedReceiveWithImmediate) {
  Fixture f;
  uint8_t buf[64] = {};
  MemoryRegion rmr = *f.reg.Register(f.pd, buf, sizeof buf, kAccessLocalWrite);
  f.rq.posted.push_back({42, {reinterpret_cast<uintptr_t>(buf), 64, rmr.lkey}});
  RdmaCommand c;
  c.opcode = RdmaOpcode::kSendOnlyImm;
  c.imm = 0x1234;
  c.payload = {f.data.data(), 20};
  ExecResult r = f.exec.Execute(c, f.target);
  EXPECT_EQ(r.reply, Reply::kAck);
  ASSERT_TRUE(r.recv_completed);
  EXPECT_EQ(r.recv_wc.wr_id, 42u);
  EXPECT_EQ(r.recv_wc.byte_len, 20u);
  EXPECT_TRUE(r.recv_wc.with_imm);
  EXPECT_EQ(r.recv_wc.imm, 0x1234u);
  EXPECT_EQ(std::memcmp(buf, f.data.data(), 20), 0);
}

TEST(Executor, SendWithoutReceiveIsRnrAndTooLongIsLengthError) {
  Fixture f;
  RdmaCommand c;
  c.opcode = RdmaOpcode::kSendOnly;
  c.payload = {f.data.data(), 20};
  ExecResult r = f.exec.Execute(c, f.target);
  EXPECT_EQ(r.reply, Reply::kRnrNak);
  EXPECT_EQ(r.requester_status, WcStatus::kRnrRetryExceeded);
  uint8_t buf[32];
  std::memset(buf, 0xEE, sizeof buf);
  MemoryRegion rmr = *f.reg.Register(f.pd, buf, sizeof buf, kAccessLocalWrite);
  f.rq.posted.push_back({7, {reinterpret_cast<uintptr_t>(buf), 16, rmr.lkey}});
  r = f.exec.Execute(c, f.target);
  ExpectNak(r, NakCode::kInvalidRequest, WcStatus::kRemoteInvalidRequest);
  ASSERT_TRUE(r.recv_completed);
  EXPECT_EQ(r.recv_wc.status, WcStatus::kLocalLengthError);
  for (uint8_t b : buf) EXPECT_EQ(b, 0xEE);
}

TEST(Executor, SendIntoADeregisteredReceiveIsAProtectionError) {
  Fixture f;
  uint8_t buf[32];
  std::memset(buf, 0xEE, sizeof buf);
  MemoryRegion rmr = *f.reg.Register(f.pd, buf, sizeof buf, kAccessLocalWrite);
  f.rq.posted.push_back({3, {reinterpret_cast<uintptr_t>(buf), 32, rmr.lkey}});
  ASSERT_TRUE(f.reg.Deregister(rmr.lkey).ok());
  RdmaCommand c;
  c.opcode = RdmaOpcode::kSendOnly;
  c.payload = {f.data.data(), 8};
  ExecResult r = f.exec.Execute(c, f.target);
  ExpectNak(r, NakCode::kRemoteOperationalError, WcStatus::kRemoteOperationalError);
  ASSERT_TRUE(r.recv_completed);
  EXPECT_EQ(r.recv_wc.wr_id, 3u);
  EXPECT_EQ(r.recv_wc.status, WcStatus::kLocalProtectionError);
  for (uint8_t b : buf) EXPECT_EQ(b, 0xEE);
}

TEST(Executor, WriteWithImmConsumesReceiveOrRnrWithMemoryIntact) {
  Fixture f;
  RdmaCommand c = f.WriteCmd(f.base(), 16);
  c.opcode = RdmaOpcode::kWriteOnlyImm;
  c.imm = 9;
  const std::vector<uint8_t> before = f.Snapshot();
  EXPECT_EQ(f.exec.Execute(c, f.target).reply, Reply::kRnrNak);
  EXPECT_EQ(f.Snapshot(), before);
  f.rq.posted.push_back({5, {}});
  ExecResult r = f.exec.Execute(c, f.target);
  EXPECT_EQ(r.reply, Reply::kAck);
  ASSERT_TRUE(r.recv_completed);
  EXPECT_EQ(r.recv_wc.opcode, WcOpcode::kRecvRdmaWithImm);
  EXPECT_EQ(r.recv_wc.imm, 9u);
  EXPECT_EQ(std::memcmp(f.mem, f.data.data(), 16), 0);
}

TEST(Executor, MultiSegmentWriteStaysInsideItsRange) {
  Fixture f;
  RdmaCommand first = f.WriteCmd(f.base() + 8, 8);
  first.opcode = RdmaOpcode::kWriteFirst;
  first.dma_length = 24;
  EXPECT_EQ(f.exec.Execute(first, f.target).reply, Reply::kNone);
  RdmaCommand mid;
  mid.opcode = RdmaOpcode::kWriteMiddle;
  mid.payload = {f.data.data(), 8};
  EXPECT_EQ(f.exec.Execute(mid, f.target).reply, Reply::kNone);
  RdmaCommand last;
  last.opcode = RdmaOpcode::kWriteLast;
  last.payload = {f.data.data(), 16};  // 8 more than announced
  const std::vector<uint8_t> before = f.Snapshot();
  ExpectNak(f.exec.Execute(last, f.target), NakCode::kInvalidRequest,
            WcStatus::kRemoteInvalidRequest);
  EXPECT_EQ(f.Snapshot(), before);
}

}  // namespace
}  // namespace opensrd::rdma
