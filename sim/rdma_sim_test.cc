// Native RDMA (datagram QPs over SRD, RdmaDevice) in the deterministic simulator: WRITE, READ,
// SEND and atomics under the transport's injected faults (loss, duplication, reordering), with
// every byte of target and local memory verified; atomics applied exactly once under
// retransmission; remote errors reaching the requester's completion.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstring>
#include <random>
#include <set>
#include <vector>

#include "common/pattern.h"
#include "opensrd/rdma.h"
#include "sim/network.h"

namespace opensrd::sim {
namespace {

using namespace opensrd::rdma;

constexpr uint32_t kIpA = 0x0A000001, kIpB = 0x0A000002;
constexpr size_t kRegion = 4u << 20;
constexpr uint32_t kAll =
    kAccessLocalWrite | kAccessRemoteWrite | kAccessRemoteRead | kAccessRemoteAtomic;

struct Side {
  std::unique_ptr<RdmaDevice> dev;
  PdHandle pd = 0;
  CqHandle cq = 0;
  QpNum qp = 0;
  std::vector<uint8_t> mem;
  MemoryRegion mr;
  std::vector<WorkCompletion> wcs;
  uint64_t Addr(size_t off) const { return reinterpret_cast<uintptr_t>(mem.data()) + off; }
};

class RdmaSim {
 public:
  explicit RdmaSim(const PathFault& fault, uint64_t seed = 7, uint32_t access = kAll,
                   uint32_t a_rnr_retry = 7, bool direct_placement = true,
                   PayloadCopy copy = PayloadCopy::kDirect)
      : net_(seed) {
    net_.default_link.fault = fault;
    EndpointConfig c;
    c.payload_copy = copy;  // the devices' executors copy the way their endpoints do
    c.peer_timeout_us = 2'000'000;
    c.node_id = 1;
    c.seed = seed;
    a_host_ = net_.AddHost(kIpA, 4000, 2, c);
    c.node_id = 2;
    b_host_ = net_.AddHost(kIpB, 5000, 1, c);
    peer_ =
        net_.endpoint(a_host_)
            .AddPeer({{0, net_.address(b_host_, 0)}, {1, net_.address(b_host_, 0)}}, net_.now_ns())
            .value();
    DeviceConfig dc;
    dc.max_message = 64 * 1024;
    dc.recv_pool = 32;
    dc.direct_placement = direct_placement;
    DeviceConfig da = dc;
    da.rnr_retry = a_rnr_retry;
    Init(a_, a_host_, da, kAll);
    Init(b_, b_host_, dc, access);
  }

  void Init(Side& s, HostId h, const DeviceConfig& dc, uint32_t access) {
    s.dev = std::make_unique<RdmaDevice>(net_.endpoint(h), dc);
    s.pd = s.dev->AllocPd();
    s.cq = s.dev->CreateCq();
    s.qp = s.dev->CreateQp(s.pd, s.cq, s.cq).value();
    s.mem.assign(kRegion, 0);
    s.mr = s.dev->RegMr(s.pd, s.mem.data(), s.mem.size(), access).value();
  }

  // A work request from A's QP to B's QP 1.
  SendWr Wr(WrOpcode op, size_t local_off, uint32_t len, size_t remote_off) {
    SendWr w;
    w.wr_id = next_id_++;
    w.opcode = op;
    w.sge = {a_.Addr(local_off), len, a_.mr.lkey};
    w.peer = peer_;
    w.dest_qp = b_.qp;
    w.remote_addr = b_.Addr(remote_off);
    w.rkey = b_.mr.rkey;
    return w;
  }
  void Post(const SendWr& w) {
    ASSERT_TRUE(a_.dev->PostSend(a_.qp, w, net_.now_ns()).ok());
    net_.Kick(a_host_);
  }
  void Pump() {
    for (auto [s, h] : {std::pair{&a_, a_host_}, std::pair{&b_, b_host_}}) {
      if (s->dev->Progress(net_.now_ns()) > 0) net_.Kick(h);
      WorkCompletion wc[16];
      size_t n;
      while ((n = s->dev->PollCq(s->cq, wc)) > 0) s->wcs.insert(s->wcs.end(), wc, wc + n);
    }
  }
  // Runs until `done` or `limit_us` of simulated time; device timers (RNR retries) included.
  bool Run(const std::function<bool()>& done, Micros limit_us = 20'000'000) {
    const Micros end = net_.now() + limit_us;
    while (net_.now() < end) {
      Pump();
      if (done()) return true;
      Micros dl = end;
      for (Side* s : {&a_, &b_}) {
        const Nanos t = s->dev->NextTimeout();
        if (t != kNever) dl = std::min<Micros>(dl, std::max<Micros>(t / 1000 + 1, net_.now() + 1));
      }
      bool worked = net_.RunUntil(
          [&] {
            Pump();
            return done();
          },
          dl);
      if (worked) return true;
      if (net_.now() < dl) net_.RunUntil([] { return false; }, dl);  // idle until the timer
    }
    Pump();
    return done();
  }
  size_t Completed(const Side& s, WcOpcode op) const {
    return std::count_if(s.wcs.begin(), s.wcs.end(),
                         [&](const WorkCompletion& w) { return w.opcode == op; });
  }

  Network net_;
  HostId a_host_ = 0, b_host_ = 0;
  PeerId peer_ = 0;
  Side a_, b_;
  uint64_t next_id_ = 1;
};

PathFault Faults() {
  PathFault f;
  f.loss = 0.05;
  f.dup = 0.05;
  f.reorder = 0.2;
  f.reorder_us = 100;
  return f;
}

// With and without the transport's direct placement, with memcpy and with the DMA engine: the
// same bytes must arrive every way.
struct PlacementCase {
  bool direct;
  PayloadCopy copy;
};
class RdmaSimPlacement : public ::testing::TestWithParam<PlacementCase> {};

TEST_P(RdmaSimPlacement, WritesThenReadsVerifiedUnderFaults) {
  const bool direct = GetParam().direct;
  const bool engine = GetParam().copy == PayloadCopy::kEngine;
  RdmaSim s(Faults(), 7, kAll, 7, direct, GetParam().copy);
  std::mt19937_64 rng(3);
  constexpr int kOps = 120;
  struct Op {
    size_t off;
    uint32_t len;
  };
  std::vector<Op> ops;
  size_t off = 0;
  for (int i = 0; i < kOps; ++i) {
    uint32_t len = 1 + static_cast<uint32_t>(rng() % 8000);
    if (i % 10 == 0) len = 64 * 1024 - static_cast<uint32_t>(rng() % 64);  // many packets
    ops.push_back({off, len});
    off += len + 3;
  }
  ASSERT_LT(off, kRegion / 2);
  for (int i = 0; i < kOps; ++i) {
    FillPattern(1000 + i, s.a_.mem.data() + ops[i].off, ops[i].len);
    s.Post(s.Wr(WrOpcode::kRdmaWrite, ops[i].off, ops[i].len, ops[i].off));
  }
  ASSERT_TRUE(s.Run([&] { return s.a_.wcs.size() == kOps; }));
  for (const WorkCompletion& w : s.a_.wcs) {
    EXPECT_EQ(w.status, WcStatus::kSuccess) << WcStatusName(w.status);
    EXPECT_EQ(w.opcode, WcOpcode::kRdmaWrite);
  }
  for (int i = 0; i < kOps; ++i) {
    EXPECT_TRUE(CheckPattern(1000 + i, s.b_.mem.data() + ops[i].off, ops[i].len)) << i;
  }
  // Read everything back into the upper half of A's region.
  const size_t back = kRegion / 2;
  for (int i = 0; i < kOps; ++i) {
    s.Post(s.Wr(WrOpcode::kRdmaRead, back + ops[i].off, ops[i].len, ops[i].off));
  }
  ASSERT_TRUE(s.Run([&] { return s.a_.wcs.size() == 2 * kOps; }));
  for (size_t k = kOps; k < s.a_.wcs.size(); ++k) {
    EXPECT_EQ(s.a_.wcs[k].status, WcStatus::kSuccess);
    EXPECT_EQ(s.a_.wcs[k].opcode, WcOpcode::kRdmaRead);
  }
  for (int i = 0; i < kOps; ++i) {
    EXPECT_TRUE(CheckPattern(1000 + i, s.a_.mem.data() + back + ops[i].off, ops[i].len)) << i;
  }
  // The faults were real: the transport retransmitted and dropped duplicates.
  EXPECT_GT(s.net_.endpoint(s.a_host_).stats().retransmits, 0u);
  EXPECT_GT(s.net_.endpoint(s.b_host_).stats().duplicates_dropped, 0u);
  // Direct placement: most WRITEs (at B) and READ responses (at A) skipped the receive pool;
  // those whose first packet was overtaken took the copy path.
  if (direct) {
    EXPECT_GT(s.b_.dev->stats().placed_direct, kOps / 2);
    EXPECT_LT(s.b_.dev->stats().placed_direct, static_cast<uint64_t>(kOps));
    EXPECT_GT(s.a_.dev->stats().placed_direct, kOps / 2);
  } else {
    EXPECT_EQ(s.b_.dev->stats().placed_direct, 0u);
    EXPECT_EQ(s.a_.dev->stats().placed_direct, 0u);
  }
  // The executor's data moves (WRITEs at B, READ responses at A that were not placed directly)
  // went through the DMA engine exactly when the endpoints copy with it.
  for (const Side* side : {&s.a_, &s.b_}) {
    if (engine) {
      EXPECT_GT(side->dev->stats().copy_descriptors, 0u);
    } else {
      EXPECT_EQ(side->dev->stats().copy_descriptors, 0u);
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Placement, RdmaSimPlacement,
                         ::testing::Values(PlacementCase{true, PayloadCopy::kDirect},
                                           PlacementCase{false, PayloadCopy::kDirect},
                                           PlacementCase{true, PayloadCopy::kEngine},
                                           PlacementCase{false, PayloadCopy::kEngine}),
                         [](const ::testing::TestParamInfo<PlacementCase>& i) {
                           return std::string(i.param.direct ? "Direct" : "Copied") +
                                  (i.param.copy == PayloadCopy::kEngine ? "Engine" : "Memcpy");
                         });

TEST(RdmaSim, FetchAddExactlyOnceUnderRetransmission) {
  PathFault f = Faults();
  f.loss = 0.1;
  f.dup = 0.1;
  RdmaSim s(f, 11);
  constexpr int kOps = 400;
  // Each FETCH_ADD's old value lands in its own 8-byte slot of A's region.
  for (int i = 0; i < kOps; ++i) {
    SendWr w = s.Wr(WrOpcode::kAtomicFetchAdd, 8 * static_cast<size_t>(i), 8, 4096);
    w.compare_add = 3;
    s.Post(w);
  }
  ASSERT_TRUE(s.Run([&] { return s.a_.wcs.size() == kOps; }));
  uint64_t total = 0;
  std::memcpy(&total, s.b_.mem.data() + 4096, 8);
  EXPECT_EQ(total, 3u * kOps);
  std::set<uint64_t> olds;
  for (int i = 0; i < kOps; ++i) {
    uint64_t v;
    std::memcpy(&v, s.a_.mem.data() + 8 * i, 8);
    olds.insert(v);
  }
  // Every intermediate value seen exactly once: no add applied twice or lost.
  ASSERT_EQ(olds.size(), static_cast<size_t>(kOps));
  EXPECT_EQ(*olds.begin(), 0u);
  EXPECT_EQ(*olds.rbegin(), 3u * (kOps - 1));
  for (const WorkCompletion& w : s.a_.wcs) EXPECT_EQ(w.status, WcStatus::kSuccess);
  EXPECT_GT(s.net_.endpoint(s.a_host_).stats().retransmits, 0u);
}

TEST(RdmaSim, CompareSwapChainUnderFaults) {
  RdmaSim s(Faults(), 5);
  // One CMP_SWAP at a time: 0 -> 1 -> 2 ...; each must see the value the previous one left.
  for (uint64_t i = 0; i < 50; ++i) {
    SendWr w = s.Wr(WrOpcode::kAtomicCmpSwap, 0, 8, 64);
    w.compare_add = i;
    w.swap = i + 1;
    s.Post(w);
    ASSERT_TRUE(s.Run([&] { return s.a_.wcs.size() == i + 1; }));
    uint64_t old;
    std::memcpy(&old, s.a_.mem.data(), 8);
    EXPECT_EQ(old, i);
  }
  uint64_t v;
  std::memcpy(&v, s.b_.mem.data() + 64, 8);
  EXPECT_EQ(v, 50u);
}

TEST(RdmaSim, SendsAndImmediatesIntoPostedReceives) {
  RdmaSim s(Faults(), 9);
  constexpr int kMsgs = 60;
  for (int i = 0; i < kMsgs + 1; ++i) {  // one extra for the WRITE_WITH_IMM
    RecvWr r{static_cast<uint64_t>(500 + i),
             {s.b_.Addr(8192 * static_cast<size_t>(i)), 8192, s.b_.mr.lkey}};
    ASSERT_TRUE(s.b_.dev->PostRecv(s.b_.qp, r).ok());
  }
  for (int i = 0; i < kMsgs; ++i) {
    const uint32_t len = 1 + static_cast<uint32_t>(i * 131 % 8192);
    FillPattern(7000 + i, s.a_.mem.data() + 8192 * i, len);
    SendWr w = s.Wr(i % 2 ? WrOpcode::kSendWithImm : WrOpcode::kSend, 8192 * i, len, 0);
    w.imm = 0xC0DE0000u + i;
    s.Post(w);
  }
  ASSERT_TRUE(s.Run([&] { return s.a_.wcs.size() == kMsgs && s.b_.wcs.size() == kMsgs; }));
  std::set<uint64_t> seen;
  for (const WorkCompletion& w : s.b_.wcs) {
    ASSERT_EQ(w.status, WcStatus::kSuccess);
    EXPECT_EQ(w.opcode, WcOpcode::kRecv);
    EXPECT_EQ(w.src_qp, s.a_.qp);
    // Messages arrive unordered: find which send this receive holds by its pattern.
    const uint8_t* p = s.b_.mem.data() + 8192 * (w.wr_id - 500);
    int which = -1;
    for (int i = 0; i < kMsgs && which < 0; ++i) {
      if (w.byte_len == 1 + static_cast<uint32_t>(i * 131 % 8192) &&
          CheckPattern(7000 + i, p, w.byte_len)) {
        which = i;
      }
    }
    ASSERT_GE(which, 0) << "receive " << w.wr_id << " holds no sent message";
    EXPECT_EQ(w.with_imm, which % 2 == 1);
    if (w.with_imm) {
      EXPECT_EQ(w.imm, 0xC0DE0000u + which);
    }
    seen.insert(which);
  }
  EXPECT_EQ(seen.size(), static_cast<size_t>(kMsgs));
  // WRITE_WITH_IMM: data lands at the address, the immediate in a receive.
  FillPattern(99, s.a_.mem.data(), 300);
  SendWr w = s.Wr(WrOpcode::kRdmaWriteWithImm, 0, 300, 900000);
  w.imm = 77;
  s.Post(w);
  ASSERT_TRUE(s.Run([&] { return s.b_.wcs.size() == kMsgs + 1; }));
  EXPECT_EQ(s.b_.wcs.back().opcode, WcOpcode::kRecvRdmaWithImm);
  EXPECT_EQ(s.b_.wcs.back().imm, 77u);
  EXPECT_TRUE(CheckPattern(99, s.b_.mem.data() + 900000, 300));
}

TEST(RdmaSim, SendWaitsForAReceiveThroughRnrRetries) {
  RdmaSim s(PathFault{}, 13);
  FillPattern(5, s.a_.mem.data(), 100);
  s.Post(s.Wr(WrOpcode::kSend, 0, 100, 0));
  // No receive posted: the responder answers RNR and the requester keeps retrying.
  s.Run([] { return false; }, 2000);
  EXPECT_TRUE(s.a_.wcs.empty());
  EXPECT_GT(s.a_.dev->stats().rnr_retries, 0u);
  ASSERT_TRUE(s.b_.dev->PostRecv(s.b_.qp, {1, {s.b_.Addr(0), 4096, s.b_.mr.lkey}}).ok());
  ASSERT_TRUE(s.Run([&] { return s.a_.wcs.size() == 1 && s.b_.wcs.size() == 1; }));
  EXPECT_EQ(s.a_.wcs[0].status, WcStatus::kSuccess);
  EXPECT_EQ(s.b_.wcs[0].byte_len, 100u);
  EXPECT_TRUE(CheckPattern(5, s.b_.mem.data(), 100));
}

TEST(RdmaSim, RnrRetryExceededWhenLimited) {
  RdmaSim s(PathFault{}, 13, kAll, /*a_rnr_retry=*/2);  // A gives up after two RNR retries
  s.Post(s.Wr(WrOpcode::kSend, 0, 10, 0));
  ASSERT_TRUE(s.Run([&] { return s.a_.wcs.size() == 1; }));
  EXPECT_EQ(s.a_.dev->stats().rnr_retries, 2u);
  EXPECT_EQ(s.a_.wcs[0].status, WcStatus::kRnrRetryExceeded);
}

// Remote errors travel back as NAKs and become the requester's completion status; the target
// memory is untouched.
TEST(RdmaSim, RemoteErrorsReachTheRequester) {
  RdmaSim s(Faults(), 17);
  std::memset(s.b_.mem.data(), 0x5A, s.b_.mem.size());
  const std::vector<uint8_t> before = s.b_.mem;
  FillPattern(1, s.a_.mem.data(), 4096);
  struct Case {
    const char* name;
    SendWr wr;
    WcStatus want;
  };
  std::vector<Case> cases;
  SendWr w = s.Wr(WrOpcode::kRdmaWrite, 0, 64, 0);
  w.rkey ^= 0x1000;
  cases.push_back({"write wrong rkey", w, WcStatus::kRemoteAccessError});
  w = s.Wr(WrOpcode::kRdmaWrite, 0, 64, kRegion - 32);
  cases.push_back({"write out of bounds", w, WcStatus::kRemoteAccessError});
  w = s.Wr(WrOpcode::kRdmaWrite, 0, 64, 0);
  w.remote_addr = ~0ull - 16;
  cases.push_back({"write va+len overflow", w, WcStatus::kRemoteAccessError});
  w = s.Wr(WrOpcode::kRdmaRead, 0, 64, 0);
  w.rkey = s.b_.mr.lkey;
  cases.push_back({"read with the lkey", w, WcStatus::kRemoteAccessError});
  w = s.Wr(WrOpcode::kAtomicFetchAdd, 0, 8, 12);
  cases.push_back({"misaligned atomic", w, WcStatus::kRemoteInvalidRequest});
  w = s.Wr(WrOpcode::kRdmaWrite, 0, 64, 0);
  w.dest_qp = 999;
  cases.push_back({"no such QP", w, WcStatus::kRemoteInvalidRequest});
  for (const Case& c : cases) s.Post(c.wr);
  ASSERT_TRUE(s.Run([&] { return s.a_.wcs.size() == cases.size(); }));
  for (const Case& c : cases) {
    auto it = std::find_if(s.a_.wcs.begin(), s.a_.wcs.end(),
                           [&](const WorkCompletion& x) { return x.wr_id == c.wr.wr_id; });
    ASSERT_NE(it, s.a_.wcs.end()) << c.name;
    EXPECT_EQ(it->status, c.want) << c.name << ": " << WcStatusName(it->status);
  }
  EXPECT_EQ(s.b_.mem, before);
  // A SEND longer than the receive: the requester sees an invalid request, the responder a
  // local length error, and the receive buffer keeps its bytes.
  ASSERT_TRUE(s.b_.dev->PostRecv(s.b_.qp, {9, {s.b_.Addr(0), 16, s.b_.mr.lkey}}).ok());
  s.a_.wcs.clear();
  s.Post(s.Wr(WrOpcode::kSend, 0, 64, 0));
  ASSERT_TRUE(s.Run([&] { return s.a_.wcs.size() == 1 && s.b_.wcs.size() == 1; }));
  EXPECT_EQ(s.a_.wcs[0].status, WcStatus::kRemoteInvalidRequest);
  EXPECT_EQ(s.b_.wcs[0].status, WcStatus::kLocalLengthError);
  EXPECT_EQ(s.b_.mem, before);
  // A local SGE outside its region never leaves the host.
  s.a_.wcs.clear();
  SendWr bad = s.Wr(WrOpcode::kRdmaWrite, kRegion - 8, 64, 0);
  s.Post(bad);
  s.Pump();
  ASSERT_EQ(s.a_.wcs.size(), 1u);
  EXPECT_EQ(s.a_.wcs[0].status, WcStatus::kLocalProtectionError);
}

TEST(RdmaSim, PermissionsAndDeregistrationAtTheTarget) {
  RdmaSim s(PathFault{}, 19, kAccessLocalWrite | kAccessRemoteRead);  // B: read-only remotely
  std::memset(s.b_.mem.data(), 0x33, 4096);
  const std::vector<uint8_t> before = s.b_.mem;
  s.Post(s.Wr(WrOpcode::kRdmaWrite, 0, 64, 0));
  s.Post(s.Wr(WrOpcode::kAtomicFetchAdd, 0, 8, 0));
  s.Post(s.Wr(WrOpcode::kRdmaRead, 1024, 64, 0));
  ASSERT_TRUE(s.Run([&] { return s.a_.wcs.size() == 3; }));
  EXPECT_EQ(s.a_.wcs[0].status, WcStatus::kRemoteAccessError);
  EXPECT_EQ(s.a_.wcs[1].status, WcStatus::kRemoteAccessError);
  EXPECT_EQ(s.a_.wcs[2].status, WcStatus::kSuccess);
  EXPECT_EQ(s.b_.mem, before);
  // Deregistered: the old rkey now fails; a new registration's rkey works.
  const uint32_t old = s.b_.mr.rkey;
  ASSERT_TRUE(s.b_.dev->DeregMr(s.b_.mr.lkey).ok());
  s.b_.mr = s.b_.dev->RegMr(s.b_.pd, s.b_.mem.data(), kRegion, kAll).value();
  EXPECT_NE(s.b_.mr.rkey, old);
  SendWr w = s.Wr(WrOpcode::kRdmaWrite, 0, 64, 0);
  w.rkey = old;
  s.Post(w);
  ASSERT_TRUE(s.Run([&] { return s.a_.wcs.size() == 4; }));
  EXPECT_EQ(s.a_.wcs[3].status, WcStatus::kRemoteAccessError);
  EXPECT_EQ(s.b_.mem, before);
  // Another PD at the target: a QP of PD 2 cannot use PD 1's region.
  PdHandle pd2 = s.b_.dev->AllocPd();
  QpNum qp2 = s.b_.dev->CreateQp(pd2, s.b_.cq, s.b_.cq).value();
  w = s.Wr(WrOpcode::kRdmaWrite, 0, 64, 0);
  w.dest_qp = qp2;
  s.Post(w);
  ASSERT_TRUE(s.Run([&] { return s.a_.wcs.size() == 5; }));
  EXPECT_EQ(s.a_.wcs[4].status, WcStatus::kRemoteAccessError);
  EXPECT_EQ(s.b_.mem, before);
}

// While the transport places a WRITE's packets into a region, the region cannot be
// deregistered (its memory could be freed under the incoming data); afterwards it can.
TEST(RdmaSim, RegionBeingPlacedIntoCannotBeDeregistered) {
  RdmaSim s(PathFault{}, 23);
  FillPattern(3, s.a_.mem.data(), 65536);
  s.Post(s.Wr(WrOpcode::kRdmaWrite, 0, 65536, 0));  // ~47 packets of 1400 bytes
  ASSERT_TRUE(s.Run([&] { return s.b_.dev->stats().placed_direct == 1; }));
  ASSERT_TRUE(s.a_.wcs.empty());
  EXPECT_EQ(s.b_.dev->DeregMr(s.b_.mr.lkey).code(), Code::kResourceExhausted);
  ASSERT_TRUE(s.Run([&] { return s.a_.wcs.size() == 1; }));
  EXPECT_EQ(s.a_.wcs[0].status, WcStatus::kSuccess);
  EXPECT_TRUE(CheckPattern(3, s.b_.mem.data(), 65536));
  EXPECT_TRUE(s.b_.dev->DeregMr(s.b_.mr.lkey).ok());
}

}  // namespace
}  // namespace opensrd::sim
