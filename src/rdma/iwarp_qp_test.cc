// Two iWARP queue pairs joined by an in-memory byte pipe: the MPA v2 enhanced start-up with
// private data both ways, SEND, WRITE and READ at several sizes with the stream split into
// small chunks or coalesced, and every rejection path with the TERMINATE layer, type and code
// it must carry (RFC 5040 7, RFC 5041 7, RFC 5044 8), target memory untouched.
#include "rdma/iwarp_qp.h"

#include <gtest/gtest.h>

#include <cstring>
#include <memory>
#include <vector>

namespace opensrd::rdma::iwarp {
namespace {

constexpr size_t kRegion = 256 * 1024;
constexpr uint32_t kAll = kAccessLocalWrite | kAccessRemoteWrite | kAccessRemoteRead;

struct Side {
  MemoryRegistry reg;
  PdHandle pd = reg.AllocPd();
  std::vector<uint8_t> mem = std::vector<uint8_t>(kRegion);
  MemoryRegion mr;
  std::unique_ptr<IwarpQp> qp;

  Side(bool initiator, std::vector<uint8_t> pd_bytes, uint32_t access = kAll,
       uint32_t max_segment = 1000) {
    for (size_t i = 0; i < mem.size(); ++i) mem[i] = static_cast<uint8_t>(i * 13 + initiator);
    mr = *reg.Register(pd, mem.data(), mem.size(), access);
    QpConfig c;
    c.initiator = initiator;
    c.pd = pd;
    c.private_data = std::move(pd_bytes);
    c.max_segment = max_segment;
    qp = std::make_unique<IwarpQp>(c, reg);
  }
  uint64_t va(size_t off = 0) const { return reinterpret_cast<uintptr_t>(mem.data()) + off; }
  LocalSge sge(size_t off, uint32_t len) const { return {va(off), len, mr.lkey}; }
};

// Moves bytes both ways until neither side has anything to say, `chunk` bytes per OnBytes
// (0: everything pending at once, so several FPDUs arrive coalesced).
void Shuttle(Side& a, Side& b, size_t chunk = 0) {
  for (bool moved = true; moved;) {
    moved = false;
    for (auto [from, to] : {std::pair{&a, &b}, std::pair{&b, &a}}) {
      while (!from->qp->PendingOutput().empty()) {
        std::span<const uint8_t> out = from->qp->PendingOutput();
        size_t n = chunk == 0 ? out.size() : std::min(chunk, out.size());
        std::vector<uint8_t> copy(out.begin(), out.begin() + static_cast<std::ptrdiff_t>(n));
        from->qp->ConsumeOutput(n);
        to->qp->OnBytes(copy);
        moved = true;
      }
    }
  }
}

struct Pair {
  Side client{true, {'h', 'e', 'l', 'l', 'o'}};
  Side server{false, {'w', 'o', 'r', 'l', 'd', '!'}};
  explicit Pair(size_t chunk = 0) {
    client.qp->Connect();
    Shuttle(client, server, chunk);
  }
};

std::vector<WorkCompletion> Completions(Side& s) {
  return s.qp->TakeCompletions();
}

TEST(IwarpQp, StartUpExchangesPrivateDataAndReachesRts) {
  Pair p(3);
  EXPECT_EQ(p.client.qp->state(), IwarpQp::State::kRts) << p.client.qp->error();
  EXPECT_EQ(p.server.qp->state(), IwarpQp::State::kRts) << p.server.qp->error();
  EXPECT_EQ(p.server.qp->peer_private_data(), (std::vector<uint8_t>{'h', 'e', 'l', 'l', 'o'}));
  EXPECT_EQ(p.client.qp->peer_private_data(), (std::vector<uint8_t>{'w', 'o', 'r', 'l', 'd', '!'}));
  EXPECT_TRUE(p.client.qp->crc());
  // The RTR (a zero-length WRITE) was the client's only FPDU.
  EXPECT_EQ(p.client.qp->stats().fpdus_sent, 1u);
  EXPECT_EQ(p.server.qp->stats().fpdus_received, 1u);
}

TEST(IwarpQp, RequestFrameIsMpaV2EnhancedWithCrc) {
  Side c(true, {1, 2});
  c.qp->Connect();
  std::span<const uint8_t> out = c.qp->PendingOutput();
  ASSERT_EQ(out.size(), 20u + 4 + 2);
  EXPECT_EQ(0, std::memcmp(out.data(), "MPA ID Req Frame", 16));
  EXPECT_EQ(out[16], mpa::kFlagCrc | mpa::kFlagEnhanced);
  EXPECT_EQ(out[17], 2);
  EXPECT_EQ(out[19], 6);  // private data: the 4-byte IRD/ORD word and ours
  // IRD 16 with the peer-to-peer bit; ORD 16 offering both WRITE and READ RTRs.
  EXPECT_EQ(out[20], 0x80);
  EXPECT_EQ(out[21], 16);
  EXPECT_EQ(out[22], 0xC0);
  EXPECT_EQ(out[23], 16);
}

class IwarpQpSizes : public ::testing::TestWithParam<std::tuple<uint32_t, size_t>> {};

TEST_P(IwarpQpSizes, WriteReadAndSendArriveIntact) {
  auto [size, chunk] = GetParam();
  Pair p(chunk);
  ASSERT_EQ(p.client.qp->state(), IwarpQp::State::kRts);
  // WRITE client[0..size) -> server[100..), READ it back into client[kRegion/2..), then a SEND.
  SendWr w;
  w.wr_id = 1;
  w.opcode = WrOpcode::kRdmaWrite;
  w.sge = p.client.sge(0, size);
  w.remote_addr = p.server.va(100);
  w.rkey = p.server.mr.rkey;
  ASSERT_TRUE(p.client.qp->PostSend(w).ok());
  SendWr r = w;
  r.wr_id = 2;
  r.opcode = WrOpcode::kRdmaRead;
  r.sge = p.client.sge(kRegion / 2, size);
  ASSERT_TRUE(p.client.qp->PostSend(r).ok());
  ASSERT_TRUE(p.server.qp->PostRecv({7, p.server.sge(kRegion / 2, size + 10)}).ok());
  SendWr s;
  s.wr_id = 3;
  s.opcode = WrOpcode::kSend;
  s.sge = p.client.sge(1, size);
  ASSERT_TRUE(p.client.qp->PostSend(s).ok());
  Shuttle(p.client, p.server, chunk);

  EXPECT_EQ(0, std::memcmp(p.server.mem.data() + 100, p.client.mem.data(), size));
  EXPECT_EQ(0, std::memcmp(p.client.mem.data() + kRegion / 2, p.client.mem.data(), size));
  EXPECT_EQ(0, std::memcmp(p.server.mem.data() + kRegion / 2, p.client.mem.data() + 1, size));
  std::vector<WorkCompletion> cc = Completions(p.client);
  ASSERT_EQ(cc.size(), 3u);
  for (size_t i = 0; i < 3; ++i) {
    EXPECT_EQ(cc[i].wr_id, i + 1);
    EXPECT_EQ(cc[i].status, WcStatus::kSuccess);
  }
  EXPECT_EQ(cc[1].opcode, WcOpcode::kRdmaRead);
  std::vector<WorkCompletion> sc = Completions(p.server);
  ASSERT_EQ(sc.size(), 1u);
  EXPECT_EQ(sc[0].wr_id, 7u);
  EXPECT_EQ(sc[0].opcode, WcOpcode::kRecv);
  EXPECT_EQ(sc[0].status, WcStatus::kSuccess);
  EXPECT_EQ(sc[0].byte_len, size);
  EXPECT_FALSE(p.client.qp->terminate_received());
  EXPECT_FALSE(p.server.qp->terminate_sent());
}

INSTANTIATE_TEST_SUITE_P(SizesAndChunks, IwarpQpSizes,
                         ::testing::Combine(::testing::Values(0u, 1u, 999u, 1000u, 1001u, 65536u),
                                            ::testing::Values(size_t{0}, size_t{1}, size_t{7},
                                                              size_t{4096})));

TEST(IwarpQp, ManyOperationsCoalescedInOneDelivery) {
  Pair p;
  for (uint32_t i = 0; i < 50; ++i) {
    SendWr w;
    w.wr_id = i;
    w.opcode = i % 2 ? WrOpcode::kRdmaRead : WrOpcode::kRdmaWrite;
    w.sge = p.client.sge(i * 100, 100);
    w.remote_addr = p.server.va(i * 100);
    w.rkey = p.server.mr.rkey;
    ASSERT_TRUE(p.client.qp->PostSend(w).ok());
  }
  // READs beyond the server's IRD (16) wait until responses return; all complete in order.
  Shuttle(p.client, p.server);
  std::vector<WorkCompletion> cc = Completions(p.client);
  ASSERT_EQ(cc.size(), 50u);
  for (uint32_t i = 0; i < 50; ++i) {
    EXPECT_EQ(cc[i].wr_id, i);
    EXPECT_EQ(cc[i].status, WcStatus::kSuccess);
  }
}

// ---- rejections ----

struct Rejection {
  Pair p;
  std::vector<uint8_t> before = p.server.mem;
  void Post(WrOpcode op, uint64_t remote, uint32_t rkey, uint32_t len = 64) {
    SendWr w;
    w.wr_id = 9;
    w.opcode = op;
    w.sge = p.client.sge(0, len);
    w.remote_addr = remote;
    w.rkey = rkey;
    ASSERT_TRUE(p.client.qp->PostSend(w).ok());
    Shuttle(p.client, p.server, 5);
  }
  void ExpectTerminate(TermInfo t) {
    EXPECT_TRUE(p.server.qp->terminate_sent()) << p.server.qp->error();
    EXPECT_EQ(p.server.qp->sent_terminate(), t);
    EXPECT_TRUE(p.client.qp->terminate_received()) << p.client.qp->error();
    EXPECT_EQ(p.client.qp->received_terminate(), t);
    EXPECT_EQ(p.server.qp->state(), IwarpQp::State::kTerminated);
    EXPECT_EQ(p.client.qp->state(), IwarpQp::State::kTerminated);
    EXPECT_EQ(p.server.mem, before);
  }
};

TEST(IwarpQpReject, WriteWithWrongStag) {
  Rejection r;
  r.Post(WrOpcode::kRdmaWrite, r.p.server.va(), r.p.server.mr.rkey ^ 0x100);
  r.ExpectTerminate({1, 1, 0});  // DDP, tagged buffer, invalid STag
}

TEST(IwarpQpReject, WriteOutOfBounds) {
  Rejection r;
  r.Post(WrOpcode::kRdmaWrite, r.p.server.va(kRegion - 10), r.p.server.mr.rkey);
  r.ExpectTerminate({1, 1, 1});  // DDP, tagged buffer, base or bounds
}

TEST(IwarpQpReject, WriteWithoutRemoteWriteAccess) {
  Rejection r;
  MemoryRegion ro = *r.p.server.reg.Register(r.p.server.pd, r.p.server.mem.data() + 4096, 4096,
                                             kAccessRemoteRead);
  r.Post(WrOpcode::kRdmaWrite, r.p.server.va(4096), ro.rkey);
  r.ExpectTerminate({0, 1, 2});  // RDMAP, remote protection, access rights
}

TEST(IwarpQpReject, WriteToAnotherProtectionDomain) {
  Rejection r;
  PdHandle other = r.p.server.reg.AllocPd();
  MemoryRegion mr = *r.p.server.reg.Register(other, r.p.server.mem.data() + 8192, 4096, kAll);
  r.Post(WrOpcode::kRdmaWrite, r.p.server.va(8192), mr.rkey);
  r.ExpectTerminate({1, 1, 2});  // DDP, tagged buffer, STag not associated with the stream
}

TEST(IwarpQpReject, WriteToDeregisteredRegion) {
  Rejection r;
  MemoryRegion mr =
      *r.p.server.reg.Register(r.p.server.pd, r.p.server.mem.data() + 8192, 4096, kAll);
  ASSERT_TRUE(r.p.server.reg.Deregister(mr.lkey).ok());
  r.Post(WrOpcode::kRdmaWrite, r.p.server.va(8192), mr.rkey);
  r.ExpectTerminate({1, 1, 0});
}

TEST(IwarpQpReject, ReadWithWrongStagFailsTheRead) {
  Rejection r;
  std::vector<uint8_t> client_before = r.p.client.mem;
  r.Post(WrOpcode::kRdmaRead, r.p.server.va(), r.p.server.mr.rkey + 1);
  r.ExpectTerminate({0, 1, 0});  // RDMAP, remote protection, invalid STag
  std::vector<WorkCompletion> cc = Completions(r.p.client);
  ASSERT_EQ(cc.size(), 1u);
  EXPECT_EQ(cc[0].status, WcStatus::kRemoteAccessError);
  EXPECT_EQ(r.p.client.mem, client_before);
}

TEST(IwarpQpReject, ReadOutOfBoundsAndWithoutPermission) {
  {
    Rejection r;
    r.Post(WrOpcode::kRdmaRead, r.p.server.va(kRegion - 63), r.p.server.mr.rkey);
    r.ExpectTerminate({0, 1, 1});
  }
  {
    Rejection r;
    MemoryRegion wo = *r.p.server.reg.Register(r.p.server.pd, r.p.server.mem.data(), 4096,
                                               kAccessLocalWrite | kAccessRemoteWrite);
    r.Post(WrOpcode::kRdmaRead, r.p.server.va(), wo.rkey);
    r.ExpectTerminate({0, 1, 2});
  }
}

TEST(IwarpQpReject, SendWithoutReceiveAndTooLong) {
  {
    Rejection r;
    r.Post(WrOpcode::kSend, 0, 0);
    r.ExpectTerminate({1, 2, 2});  // DDP, untagged buffer, no buffer for the MSN
  }
  {
    Rejection r;
    ASSERT_TRUE(r.p.server.qp->PostRecv({5, r.p.server.sge(0, 10)}).ok());
    r.Post(WrOpcode::kSend, 0, 0, 64);
    r.ExpectTerminate({1, 2, 5});  // DDP, untagged buffer, message too long
    std::vector<WorkCompletion> sc = Completions(r.p.server);
    ASSERT_EQ(sc.size(), 1u);
    EXPECT_EQ(sc[0].status, WcStatus::kLocalLengthError);
  }
}

TEST(IwarpQpReject, BadCrcTerminatesWithMpaCrcError) {
  Rejection r;
  SendWr w;
  w.opcode = WrOpcode::kRdmaWrite;
  w.sge = r.p.client.sge(0, 64);
  w.remote_addr = r.p.server.va();
  w.rkey = r.p.server.mr.rkey;
  ASSERT_TRUE(r.p.client.qp->PostSend(w).ok());
  std::vector<uint8_t> bytes(r.p.client.qp->PendingOutput().begin(),
                             r.p.client.qp->PendingOutput().end());
  r.p.client.qp->ConsumeOutput(bytes.size());
  bytes[30] ^= 1;  // inside the payload
  r.p.server.qp->OnBytes(bytes);
  Shuttle(r.p.client, r.p.server);
  r.ExpectTerminate({2, 0, 2});  // LLP, MPA, CRC error
}

TEST(IwarpQpReject, ReservedOpcodeAndWrongQueue) {
  {
    Rejection r;
    std::vector<uint8_t> u(kUntaggedHeaderLen, 0);
    u[0] = 0x41;
    u[1] = 0x48;  // RDMAP opcode 8: reserved
    r.p.server.qp->OnBytes(*mpa::EncodeFpdu(u));
    Shuttle(r.p.client, r.p.server);
    r.ExpectTerminate({0, 2, 6});  // RDMAP, remote operation, unexpected opcode
  }
  {
    Rejection r;
    std::vector<uint8_t> u(kUntaggedHeaderLen, 0);
    u[0] = 0x41;
    u[1] = 0x43;  // SEND on queue 5
    u[9] = 5;
    u[13] = 1;
    r.p.server.qp->OnBytes(*mpa::EncodeFpdu(u));
    Shuttle(r.p.client, r.p.server);
    r.ExpectTerminate({1, 2, 1});  // DDP, untagged buffer, invalid QN
  }
}

TEST(IwarpQpReject, BadMpaKeyAndRevisionCloseWithoutTerminate) {
  {
    Side s(false, {});
    const char junk[] = "GET / HTTP/1.1\r\nHost: x\r\n\r\n";
    s.qp->OnBytes({reinterpret_cast<const uint8_t*>(junk), sizeof junk - 1});
    EXPECT_EQ(s.qp->state(), IwarpQp::State::kTerminated);
    EXPECT_EQ(s.qp->error().rfind("bad_key", 0), 0u) << s.qp->error();
    EXPECT_TRUE(s.qp->PendingOutput().empty());
  }
  {
    Side s(false, {});
    mpa::StartFrame f;
    f.revision = 2;
    std::vector<uint8_t> req = *mpa::EncodeStartFrame(f);
    req[17] = 3;
    s.qp->OnBytes(req);
    EXPECT_EQ(s.qp->state(), IwarpQp::State::kTerminated);
    EXPECT_EQ(s.qp->error().rfind("bad_revision", 0), 0u) << s.qp->error();
  }
}

TEST(IwarpQpReject, MarkersAreRefusedWithTheRejectFlag) {
  Side s(false, {});
  mpa::StartFrame f;
  f.flags = mpa::kFlagCrc | mpa::kFlagMarkers;
  s.qp->OnBytes(*mpa::EncodeStartFrame(f));
  EXPECT_EQ(s.qp->state(), IwarpQp::State::kTerminated);
  std::span<const uint8_t> out = s.qp->PendingOutput();
  ASSERT_GE(out.size(), 20u);
  EXPECT_EQ(0, std::memcmp(out.data(), "MPA ID Rep Frame", 16));
  EXPECT_TRUE(out[16] & mpa::kFlagReject);
}

TEST(IwarpQpReject, FirstFpduMustBeTheRtr) {
  Side c(true, {});
  Side s(false, {});
  c.qp->Connect();
  std::vector<uint8_t> req(c.qp->PendingOutput().begin(), c.qp->PendingOutput().end());
  s.qp->OnBytes(req);
  ASSERT_EQ(s.qp->state(), IwarpQp::State::kRts);
  // A SEND where the zero-length WRITE RTR was due.
  std::vector<uint8_t> u(kUntaggedHeaderLen + 4, 0);
  u[0] = 0x41;
  u[1] = 0x43;
  u[13] = 1;
  s.qp->OnBytes(*mpa::EncodeFpdu(u));
  EXPECT_TRUE(s.qp->terminate_sent());
  EXPECT_EQ(s.qp->sent_terminate(), (TermInfo{2, 0, 7}));  // LLP, MPA, no matching RTR
}

TEST(IwarpQp, TerminateReceivedFlushesEverything) {
  Rejection r;
  ASSERT_TRUE(r.p.client.qp->PostRecv({11, r.p.client.sge(0, 16)}).ok());
  SendWr bad;
  bad.wr_id = 1;
  bad.opcode = WrOpcode::kRdmaRead;
  bad.sge = r.p.client.sge(0, 8);
  bad.rkey = 0;
  SendWr more = bad;
  more.wr_id = 2;
  ASSERT_TRUE(r.p.client.qp->PostSend(bad).ok());
  ASSERT_TRUE(r.p.client.qp->PostSend(more).ok());
  Shuttle(r.p.client, r.p.server);
  std::vector<WorkCompletion> cc = Completions(r.p.client);
  ASSERT_EQ(cc.size(), 3u);
  EXPECT_EQ(cc[0].wr_id, 1u);
  EXPECT_EQ(cc[0].status, WcStatus::kRemoteAccessError);
  EXPECT_EQ(cc[1].status, WcStatus::kFlushed);
  EXPECT_EQ(cc[2].wr_id, 11u);
  EXPECT_EQ(cc[2].status, WcStatus::kFlushed);
  EXPECT_FALSE(r.p.client.qp->PostSend(bad).ok());
}

}  // namespace
}  // namespace opensrd::rdma::iwarp

namespace opensrd::rdma::iwarp {
namespace {

// A READ REQUEST FPDU for the server's region, as a peer ignoring the IRD would send it.
std::vector<uint8_t> ReadRequestFpdu(const Side& server, uint32_t msn) {
  RdmaCommand c;
  c.opcode = RdmaOpcode::kReadRequest;
  c.msn = msn;
  c.sink_stag = 0x1234;
  c.sink_to = 0;
  c.dma_length = 4096;
  c.rkey = server.mr.rkey;
  c.va = server.va();
  return *mpa::EncodeFpdu(*EncodeUlpdu(c));
}

// Responses count against the IRD until the stream takes them: a peer that keeps sending READ
// requests without reading its socket is terminated at IRD + 1 instead of making the responder
// queue 4 KiB (up to max_read_bytes) per request without bound.
TEST(IwarpQpReject, ReadRequestsBeyondTheIrdWhileResponsesQueue) {
  Pair p;
  p.server.qp->ConsumeOutput(p.server.qp->PendingOutput().size());
  const uint32_t ird = QpConfig{}.ird;
  for (uint32_t msn = 1; msn <= ird; ++msn) p.server.qp->OnBytes(ReadRequestFpdu(p.server, msn));
  EXPECT_EQ(p.server.qp->state(), IwarpQp::State::kRts) << p.server.qp->error();
  EXPECT_GE(p.server.qp->PendingOutput().size(), size_t{ird} * 4096);
  p.server.qp->OnBytes(ReadRequestFpdu(p.server, ird + 1));
  EXPECT_TRUE(p.server.qp->terminate_sent());
  EXPECT_EQ(p.server.qp->sent_terminate(), (TermInfo{1, 2, 2}));  // DDP, untagged, no buffer
}

TEST(IwarpQp, ReadRequestsWithinTheIrdAsResponsesDrainAreServed) {
  Pair p;
  p.server.qp->ConsumeOutput(p.server.qp->PendingOutput().size());
  for (uint32_t msn = 1; msn <= 100; ++msn) {
    p.server.qp->OnBytes(ReadRequestFpdu(p.server, msn));
    p.server.qp->ConsumeOutput(p.server.qp->PendingOutput().size());  // the stream takes it
  }
  EXPECT_EQ(p.server.qp->state(), IwarpQp::State::kRts) << p.server.qp->error();
  EXPECT_FALSE(p.server.qp->terminate_sent());
}

}  // namespace
}  // namespace opensrd::rdma::iwarp
