// RcDevice (include/opensrd/rdma.h), protocol by protocol: two devices in one process on
// 127.0.15.1 (passive) and 127.0.15.2 (active), driven by one loop that polls both until a
// condition holds or a deadline passes. The parameterized suite is written against the public
// API only, so every connected-QP protocol runs the same cases; where the protocols differ by
// design (iWARP has no immediate data and completes WRITEs when TCP takes them) the expectation
// comes from a function of the protocol. iWARP-only cases (atomics refused, the MPA reject
// frame, a silent or oversized MPA request, pcap) are in the IwarpRcDevice suite at the end.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include <algorithm>

#include <chrono>
#include <cstdio>
#include <cstring>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "opensrd/rdma.h"
#include "rdma/mpa.h"

namespace opensrd::rdma {
namespace {

// The protocols the parameterized suite runs for. Add RcProtocol::kRoce here once its backend
// lands.
const std::vector<RcProtocol> kRcProtocolsUnderTest = {RcProtocol::kIwarp, RcProtocol::kRoce};

constexpr size_t kRegion = 4u << 20;
constexpr uint32_t kAll = kAccessLocalWrite | kAccessRemoteWrite | kAccessRemoteRead;
constexpr uint32_t kSizes[] = {1, 4096, 1u << 20};

// Each test gets its own port (the helper's range 7830-7849) and, past 20 tests, the next pair
// of addresses, so tests run in parallel by ctest never share a socket address.
NetAddr Ip(int last_octet, uint16_t port) {
  NetAddr a;
  a.ip = (127u << 24) | (15u << 8) | static_cast<uint32_t>(last_octet);
  a.port = port;
  return a;
}
NetAddr ServerAddr(int slot) {
  return Ip(1 + 2 * (slot / 20), static_cast<uint16_t>(7830 + slot % 20));
}
NetAddr ClientAddr(int slot) {
  return Ip(2 + 2 * (slot / 20), static_cast<uint16_t>(7830 + slot % 20));
}

bool SupportsImmediate(RcProtocol p) {
  return p == RcProtocol::kRoce;
}
// What the requester's WRITE completes with when the responder refuses it: RoCEv2 NAKs it;
// iWARP completed it when TCP took it (the TERMINATE then ends the connection).
WcStatus RefusedWriteStatus(RcProtocol p) {
  return p == RcProtocol::kRoce ? WcStatus::kRemoteAccessError : WcStatus::kSuccess;
}
// What the sender of a SEND too long for the receive sees: RoCEv2's NAK (invalid request);
// iWARP's SEND completed when TCP took it.
WcStatus TooLongSendStatus(RcProtocol p) {
  return p == RcProtocol::kRoce ? WcStatus::kRemoteInvalidRequest : WcStatus::kSuccess;
}
// Whether the requester's connection ends after a remote error (iWARP: TERMINATE, then TCP
// closes; RoCEv2: the QP goes to error, the CM connection may stay).
bool RemoteErrorDisconnects(RcProtocol p) {
  return p == RcProtocol::kIwarp;
}

struct Node {
  std::unique_ptr<RcDevice> dev;
  PdHandle pd = 0;
  CqHandle scq = 0, rcq = 0;
  std::vector<uint8_t> mem;
  MemoryRegion mr;
  std::vector<WorkCompletion> wcs;
  std::vector<CmEvent> events;

  explicit Node(RcDeviceConfig cfg) {
    Result<std::unique_ptr<RcDevice>> d = RcDevice::Open(cfg);
    if (!d.ok()) {
      ADD_FAILURE() << d.status().ToString();
      return;
    }
    dev = std::move(d.value());
    pd = dev->AllocPd();
    scq = dev->CreateCq();
    rcq = dev->CreateCq();
    mem.assign(kRegion, 0);
    mr = *dev->RegMr(pd, mem.data(), mem.size(), kAll);
  }
  QpNum NewQp() {
    Result<QpNum> q = dev->CreateQp(pd, scq, rcq);
    EXPECT_TRUE(q.ok()) << q.status().ToString();
    return q.ok() ? *q : 0;
  }
  void Collect() {
    if (!dev) return;
    WorkCompletion out[64];
    for (CqHandle cq : {scq, rcq}) {
      for (size_t n; (n = dev->PollCq(cq, out)) > 0;) wcs.insert(wcs.end(), out, out + n);
    }
    for (CmEvent e; dev->PollCmEvent(&e);) events.push_back(std::move(e));
  }
  uint64_t va(size_t off = 0) const { return reinterpret_cast<uintptr_t>(mem.data()) + off; }
  LocalSge sge(size_t off, uint32_t len) const { return {va(off), len, mr.lkey}; }
  const CmEvent* Event(CmEventKind k, QpNum qp = 0) const {
    for (const CmEvent& e : events) {
      if (e.kind == k && (qp == 0 || e.qp == qp)) return &e;
    }
    return nullptr;
  }
  const WorkCompletion* Wc(uint64_t wr_id) const {
    for (const WorkCompletion& wc : wcs) {
      if (wc.wr_id == wr_id) return &wc;
    }
    return nullptr;
  }
};

void Fill(std::vector<uint8_t>& m, size_t off, size_t len, uint8_t seed) {
  for (size_t i = 0; i < len; ++i) m[off + i] = static_cast<uint8_t>(seed + i * 7 + (i >> 8));
}

// Polls every node until `done` holds or 10 s pass.
bool DriveUntil(std::vector<Node*> nodes, const std::function<bool()>& done, int ms = 10000) {
  const auto end = std::chrono::steady_clock::now() + std::chrono::milliseconds(ms);
  for (;;) {
    for (Node* n : nodes) n->Collect();
    if (done()) return true;
    if (std::chrono::steady_clock::now() > end) return false;
    for (Node* n : nodes) {
      if (n->dev) {
        EXPECT_TRUE(n->dev->Poll(1).ok());
      }
    }
  }
}

class RcDeviceTest : public ::testing::TestWithParam<RcProtocol> {
 protected:
  RcDeviceConfig Config(NetAddr local) const {
    RcDeviceConfig c;
    c.protocol = GetParam();
    c.local = local;
    c.cm_resend_ms = 100;  // RoCEv2: an unanswered REQ gives up after 1.5 s
    return c;
  }
  // A passive node at ServerAddr(slot), listening, and an active one at ClientAddr(slot).
  void Start(int slot, uint32_t max_connections = 64) {
    RcDeviceConfig sc = Config(ServerAddr(slot));
    sc.max_connections = max_connections;
    server_ = std::make_unique<Node>(sc);
    client_ = std::make_unique<Node>(Config(ClientAddr(slot)));
    ASSERT_TRUE(server_->dev && client_->dev);
    ASSERT_TRUE(server_->dev->Listen().ok());
  }
  NetAddr ServerListen() const {
    NetAddr a = ServerAddr(slot_);
    a.port = server_->dev->local_port();
    return a;
  }
  // iWARP's MPA frames carry exactly the bytes given; RoCEv2's CM messages have a fixed size:
  // the bytes given, then zeros.
  void ExpectPrivateData(const std::vector<uint8_t>& got, const std::vector<uint8_t>& want) const {
    if (GetParam() == RcProtocol::kIwarp) {
      EXPECT_EQ(got, want);
      return;
    }
    ASSERT_GE(got.size(), want.size());
    EXPECT_TRUE(std::equal(want.begin(), want.end(), got.begin()));
    EXPECT_TRUE(
        std::all_of(got.begin() + want.size(), got.end(), [](uint8_t b) { return b == 0; }));
  }
  bool Drive(const std::function<bool()>& done, int ms = 10000) {
    return DriveUntil({server_.get(), client_.get()}, done, ms);
  }
  // Connects a new client QP to a new server QP with private data both ways. Returns
  // {client qp, server qp}.
  std::pair<QpNum, QpNum> Connect(std::vector<uint8_t> cpd = {1, 2, 3},
                                  std::vector<uint8_t> spd = {9, 8, 7, 6}) {
    const QpNum cq = client_->NewQp();
    const QpNum sq = server_->NewQp();
    const size_t seen = server_->events.size();
    EXPECT_TRUE(client_->dev->Connect(cq, ServerListen(), cpd).ok());
    const CmEvent* req = nullptr;
    EXPECT_TRUE(Drive([&] {
      for (size_t i = seen; i < server_->events.size(); ++i) {
        if (server_->events[i].kind == CmEventKind::kConnectRequest) req = &server_->events[i];
      }
      return req != nullptr;
    }));
    if (req == nullptr) return {cq, sq};
    ExpectPrivateData(req->private_data, cpd);
    EXPECT_EQ(req->peer.ip, ClientAddr(slot_).ip);
    EXPECT_TRUE(server_->dev->Accept(req->request, sq, spd).ok());
    EXPECT_TRUE(Drive([&] {
      return client_->Event(CmEventKind::kEstablished, cq) &&
             server_->Event(CmEventKind::kEstablished, sq);
    }));
    const CmEvent* est = client_->Event(CmEventKind::kEstablished, cq);
    if (est != nullptr) {
      ExpectPrivateData(est->private_data, spd);
    }
    return {cq, sq};
  }
  void SetUpPair(int slot) {
    slot_ = slot;
    Start(slot);
    std::tie(cqp_, sqp_) = Connect();
  }

  int slot_ = 0;
  std::unique_ptr<Node> server_, client_;
  QpNum cqp_ = 0, sqp_ = 0;
};

TEST_P(RcDeviceTest, ConnectAcceptCarriesPrivateDataBothWays) {
  slot_ = 0;
  Start(0);
  std::vector<uint8_t> cpd(200), spd(56);
  for (size_t i = 0; i < cpd.size(); ++i) cpd[i] = static_cast<uint8_t>(i);
  for (size_t i = 0; i < spd.size(); ++i) spd[i] = static_cast<uint8_t>(255 - i);
  if (GetParam() == RcProtocol::kRoce) cpd.resize(56);  // the CM's REQ holds 56 bytes
  auto [cq, sq] = Connect(cpd, spd);
  EXPECT_NE(cq, 0u);
  EXPECT_NE(sq, 0u);
  EXPECT_EQ(server_->dev->stats().connections_requested, 1u);
  EXPECT_EQ(server_->dev->stats().connections_accepted, 1u);
  EXPECT_EQ(server_->dev->stats().connections_refused, 0u);
}

TEST_P(RcDeviceTest, SendArrivesIntactAtEachSize) {
  SetUpPair(1);
  uint64_t id = 100;
  for (uint32_t size : kSizes) {
    SCOPED_TRACE(size);
    Fill(client_->mem, 0, size, static_cast<uint8_t>(size));
    std::memset(server_->mem.data() + 1024, 0, size + 16);
    ASSERT_TRUE(server_->dev->PostRecv(sqp_, {++id, server_->sge(1024, size + 16)}).ok());
    const uint64_t recv_id = id;
    SendWr w;
    w.wr_id = ++id;
    w.opcode = WrOpcode::kSend;
    w.sge = client_->sge(0, size);
    ASSERT_TRUE(client_->dev->PostSend(cqp_, w).ok());
    ASSERT_TRUE(Drive([&] { return server_->Wc(recv_id) && client_->Wc(w.wr_id); }));
    const WorkCompletion& r = *server_->Wc(recv_id);
    EXPECT_EQ(r.status, WcStatus::kSuccess);
    EXPECT_EQ(r.opcode, WcOpcode::kRecv);
    EXPECT_EQ(r.byte_len, size);
    EXPECT_EQ(r.qp, sqp_);
    EXPECT_FALSE(r.with_imm);
    EXPECT_EQ(client_->Wc(w.wr_id)->status, WcStatus::kSuccess);
    EXPECT_EQ(client_->Wc(w.wr_id)->opcode, WcOpcode::kSend);
    EXPECT_EQ(client_->Wc(w.wr_id)->qp, cqp_);
    EXPECT_EQ(0, std::memcmp(server_->mem.data() + 1024, client_->mem.data(), size));
  }
}

TEST_P(RcDeviceTest, SendWithImmediate) {
  SetUpPair(2);
  ASSERT_TRUE(server_->dev->PostRecv(sqp_, {7, server_->sge(0, 64)}).ok());
  SendWr w;
  w.wr_id = 8;
  w.opcode = WrOpcode::kSendWithImm;
  w.imm = 0xA1B2C3D4;
  w.sge = client_->sge(0, 32);
  Status st = client_->dev->PostSend(cqp_, w);
  if (!SupportsImmediate(GetParam())) {
    EXPECT_EQ(st.code(), Code::kInvalidArgument) << st.ToString();
    w.opcode = WrOpcode::kRdmaWriteWithImm;
    EXPECT_EQ(client_->dev->PostSend(cqp_, w).code(), Code::kInvalidArgument);
    // The QP is unharmed: a plain SEND still goes through.
    w.opcode = WrOpcode::kSend;
    ASSERT_TRUE(client_->dev->PostSend(cqp_, w).ok());
    ASSERT_TRUE(Drive([&] { return server_->Wc(7) != nullptr; }));
    EXPECT_EQ(server_->Wc(7)->status, WcStatus::kSuccess);
    return;
  }
  ASSERT_TRUE(st.ok()) << st.ToString();
  ASSERT_TRUE(Drive([&] { return server_->Wc(7) && client_->Wc(8); }));
  EXPECT_EQ(server_->Wc(7)->status, WcStatus::kSuccess);
  EXPECT_TRUE(server_->Wc(7)->with_imm);
  EXPECT_EQ(server_->Wc(7)->imm, 0xA1B2C3D4u);
  EXPECT_EQ(server_->Wc(7)->byte_len, 32u);
}

TEST_P(RcDeviceTest, RdmaWriteLandsAtEachSize) {
  SetUpPair(3);
  uint64_t id = 0;
  for (uint32_t size : kSizes) {
    SCOPED_TRACE(size);
    Fill(client_->mem, 0, size, static_cast<uint8_t>(size + 1));
    SendWr w;
    w.wr_id = ++id;
    w.opcode = WrOpcode::kRdmaWrite;
    w.sge = client_->sge(0, size);
    w.remote_addr = server_->va(4096);
    w.rkey = server_->mr.rkey;
    ASSERT_TRUE(client_->dev->PostSend(cqp_, w).ok());
    ASSERT_TRUE(Drive([&] {
      return client_->Wc(w.wr_id) &&
             std::memcmp(server_->mem.data() + 4096, client_->mem.data(), size) == 0;
    }));
    EXPECT_EQ(client_->Wc(w.wr_id)->status, WcStatus::kSuccess);
    EXPECT_EQ(client_->Wc(w.wr_id)->opcode, WcOpcode::kRdmaWrite);
  }
  EXPECT_TRUE(server_->wcs.empty());  // a WRITE consumes no receive and completes nothing there
  EXPECT_EQ(server_->dev->stats().requests_executed, std::size(kSizes));
}

TEST_P(RcDeviceTest, RdmaReadReturnsRemoteDataAtEachSize) {
  SetUpPair(4);
  uint64_t id = 0;
  for (uint32_t size : kSizes) {
    SCOPED_TRACE(size);
    Fill(server_->mem, 8192, size, static_cast<uint8_t>(size + 2));
    std::memset(client_->mem.data() + 100, 0, size);
    SendWr w;
    w.wr_id = ++id;
    w.opcode = WrOpcode::kRdmaRead;
    w.sge = client_->sge(100, size);
    w.remote_addr = server_->va(8192);
    w.rkey = server_->mr.rkey;
    ASSERT_TRUE(client_->dev->PostSend(cqp_, w).ok());
    ASSERT_TRUE(Drive([&] { return client_->Wc(w.wr_id) != nullptr; }));
    EXPECT_EQ(client_->Wc(w.wr_id)->status, WcStatus::kSuccess);
    EXPECT_EQ(client_->Wc(w.wr_id)->opcode, WcOpcode::kRdmaRead);
    EXPECT_EQ(client_->Wc(w.wr_id)->byte_len, size);
    EXPECT_EQ(0, std::memcmp(client_->mem.data() + 100, server_->mem.data() + 8192, size));
  }
}

TEST_P(RcDeviceTest, ReceiveTooSmallIsALocalLengthError) {
  SetUpPair(5);
  ASSERT_TRUE(server_->dev->PostRecv(sqp_, {1, server_->sge(0, 10)}).ok());
  ASSERT_TRUE(server_->dev->PostRecv(sqp_, {2, server_->sge(100, 10)}).ok());
  std::vector<uint8_t> before = server_->mem;
  SendWr w;
  w.wr_id = 3;
  w.opcode = WrOpcode::kSend;
  w.sge = client_->sge(0, 64);
  ASSERT_TRUE(client_->dev->PostSend(cqp_, w).ok());
  ASSERT_TRUE(Drive([&] { return server_->Wc(1) && server_->Wc(2) && client_->Wc(3); }));
  EXPECT_EQ(server_->Wc(1)->status, WcStatus::kLocalLengthError);
  EXPECT_EQ(server_->Wc(2)->status, WcStatus::kFlushed);  // the receiver's QP is in error
  EXPECT_EQ(client_->Wc(3)->status, TooLongSendStatus(GetParam()));
  if (RemoteErrorDisconnects(GetParam())) {
    EXPECT_TRUE(Drive([&] { return client_->Event(CmEventKind::kDisconnected, cqp_) != nullptr; }));
  }
}

// The five ways a remote key check fails, each on a fresh connection.
enum class Violation { kWrongRkey, kOutOfBounds, kNoPermission, kOtherPd, kDeregistered };
constexpr Violation kViolations[] = {Violation::kWrongRkey, Violation::kOutOfBounds,
                                     Violation::kNoPermission, Violation::kOtherPd,
                                     Violation::kDeregistered};
const char* Name(Violation v) {
  switch (v) {
    case Violation::kWrongRkey:
      return "wrong rkey";
    case Violation::kOutOfBounds:
      return "out of bounds";
    case Violation::kNoPermission:
      return "missing permission";
    case Violation::kOtherPd:
      return "another PD's region";
    case Violation::kDeregistered:
      return "deregistered region";
  }
  return "?";
}

// The remote address and rkey of a request that `v` makes the server refuse (`op` names the
// permission to leave out).
std::pair<uint64_t, uint32_t> BadTarget(Node& s, Violation v, WrOpcode op) {
  switch (v) {
    case Violation::kWrongRkey:
      return {s.va(), s.mr.rkey ^ 0x100};
    case Violation::kOutOfBounds:
      return {s.va(kRegion - 10), s.mr.rkey};
    case Violation::kNoPermission: {
      const uint32_t access =
          op == WrOpcode::kRdmaRead ? kAccessLocalWrite | kAccessRemoteWrite : kAccessRemoteRead;
      MemoryRegion r = *s.dev->RegMr(s.pd, s.mem.data() + 65536, 4096, access);
      return {s.va(65536), r.rkey};
    }
    case Violation::kOtherPd: {
      PdHandle other = s.dev->AllocPd();
      MemoryRegion r = *s.dev->RegMr(other, s.mem.data() + 65536, 4096, kAll);
      return {s.va(65536), r.rkey};
    }
    case Violation::kDeregistered: {
      MemoryRegion r = *s.dev->RegMr(s.pd, s.mem.data() + 65536, 4096, kAll);
      EXPECT_TRUE(s.dev->DeregMr(r.lkey).ok());
      return {s.va(65536), r.rkey};
    }
  }
  return {0, 0};
}

TEST_P(RcDeviceTest, RemoteRejectionsFailTheReadAndFlushTheQp) {
  slot_ = 6;
  for (Violation v : kViolations) {
    SCOPED_TRACE(Name(v));
    Start(slot_);
    auto [cq, sq] = Connect();
    Fill(server_->mem, 0, kRegion, 5);
    Fill(client_->mem, 0, 4096, 77);
    std::vector<uint8_t> server_before = server_->mem, client_before = client_->mem;
    ASSERT_TRUE(client_->dev->PostRecv(cq, {10, client_->sge(8192, 64)}).ok());
    auto [addr, rkey] = BadTarget(*server_, v, WrOpcode::kRdmaRead);
    SendWr bad;
    bad.wr_id = 1;
    bad.opcode = WrOpcode::kRdmaRead;
    bad.sge = client_->sge(0, 64);
    bad.remote_addr = addr;
    bad.rkey = rkey;
    SendWr next = bad;
    next.wr_id = 2;
    next.remote_addr = server_->va();
    next.rkey = server_->mr.rkey;
    ASSERT_TRUE(client_->dev->PostSend(cq, bad).ok());
    ASSERT_TRUE(client_->dev->PostSend(cq, next).ok());
    ASSERT_TRUE(Drive([&] { return client_->Wc(1) && client_->Wc(2) && client_->Wc(10); }));
    EXPECT_EQ(client_->Wc(1)->status, WcStatus::kRemoteAccessError);
    EXPECT_EQ(client_->Wc(2)->status, WcStatus::kFlushed);
    EXPECT_EQ(client_->Wc(10)->status, WcStatus::kFlushed);
    EXPECT_EQ(client_->mem, client_before);  // nothing landed in the READ's buffer
    EXPECT_EQ(server_->mem, server_before);
    if (RemoteErrorDisconnects(GetParam())) {
      ASSERT_TRUE(Drive([&] {
        return client_->Event(CmEventKind::kDisconnected, cq) &&
               server_->Event(CmEventKind::kDisconnected, sq);
      }));
    }
    server_.reset();
    client_.reset();
  }
}

TEST_P(RcDeviceTest, RemoteRejectionsLeaveTheWriteTargetUntouched) {
  slot_ = 7;
  for (Violation v : kViolations) {
    SCOPED_TRACE(Name(v));
    Start(slot_);
    auto [cq, sq] = Connect();
    Fill(server_->mem, 0, kRegion, 5);
    Fill(client_->mem, 0, 4096, 77);
    ASSERT_TRUE(client_->dev->PostRecv(cq, {10, client_->sge(8192, 64)}).ok());
    ASSERT_TRUE(server_->dev->PostRecv(sq, {20, server_->sge(0, 64)}).ok());
    auto [addr, rkey] = BadTarget(*server_, v, WrOpcode::kRdmaWrite);
    std::vector<uint8_t> server_before = server_->mem;
    SendWr bad;
    bad.wr_id = 1;
    bad.opcode = WrOpcode::kRdmaWrite;
    bad.sge = client_->sge(0, 64);
    bad.remote_addr = addr;
    bad.rkey = rkey;
    ASSERT_TRUE(client_->dev->PostSend(cq, bad).ok());
    ASSERT_TRUE(Drive([&] { return client_->Wc(1) && client_->Wc(10) && server_->Wc(20); }));
    EXPECT_EQ(client_->Wc(1)->status, RefusedWriteStatus(GetParam()));
    EXPECT_EQ(client_->Wc(10)->status, WcStatus::kFlushed);
    EXPECT_EQ(server_->Wc(20)->status, WcStatus::kFlushed);  // the responder's QP is in error
    EXPECT_EQ(server_->mem, server_before);
    server_.reset();
    client_.reset();
  }
}

TEST_P(RcDeviceTest, BadLocalLkeyIsALocalProtectionError) {
  SetUpPair(8);
  for (WrOpcode op : {WrOpcode::kSend, WrOpcode::kRdmaWrite, WrOpcode::kRdmaRead}) {
    SendWr w;
    w.wr_id = 1 + static_cast<uint64_t>(op);
    w.opcode = op;
    w.sge = client_->sge(0, 64);
    w.sge.lkey ^= 0x100;
    w.remote_addr = server_->va();
    w.rkey = server_->mr.rkey;
    ASSERT_TRUE(client_->dev->PostSend(cqp_, w).ok());
    ASSERT_TRUE(Drive([&] { return client_->Wc(w.wr_id) != nullptr; }));
    EXPECT_EQ(client_->Wc(w.wr_id)->status, WcStatus::kLocalProtectionError);
  }
  // A local error does not involve the peer: the connection is still up.
  EXPECT_EQ(client_->Event(CmEventKind::kDisconnected), nullptr);
}

TEST_P(RcDeviceTest, RejectGivesRejected) {
  slot_ = 9;
  Start(9);
  const QpNum cq = client_->NewQp();
  ASSERT_TRUE(client_->dev->PostRecv(cq, {5, client_->sge(0, 16)}).ok());
  ASSERT_TRUE(client_->dev->Connect(cq, ServerListen(), std::vector<uint8_t>{4, 2}).ok());
  ASSERT_TRUE(Drive([&] { return server_->Event(CmEventKind::kConnectRequest) != nullptr; }));
  ASSERT_TRUE(server_->dev->Reject(server_->Event(CmEventKind::kConnectRequest)->request).ok());
  ASSERT_TRUE(Drive([&] { return client_->Event(CmEventKind::kRejected, cq) != nullptr; }));
  EXPECT_EQ(client_->Event(CmEventKind::kEstablished), nullptr);
  ASSERT_TRUE(Drive([&] { return client_->Wc(5) != nullptr; }));
  EXPECT_EQ(client_->Wc(5)->status, WcStatus::kFlushed);
  // A request answered once cannot be answered again.
  EXPECT_FALSE(server_->dev->Reject(server_->Event(CmEventKind::kConnectRequest)->request).ok());
}

TEST_P(RcDeviceTest, ConnectingToAClosedPortIsUnreachable) {
  slot_ = 10;
  RcDeviceConfig c = Config(ClientAddr(10));
  c.retry_cnt = 1;  // RoCEv2: give up after one resend
  c.ack_timeout_us = 50'000;
  Node client(c);
  ASSERT_TRUE(client.dev);
  const QpNum cq = client.NewQp();
  ASSERT_TRUE(client.dev->Connect(cq, ServerAddr(10), {}).ok());  // nothing listens there
  ASSERT_TRUE(DriveUntil({&client}, [&] { return client.Event(CmEventKind::kUnreachable); }));
  EXPECT_FALSE(client.Event(CmEventKind::kUnreachable)->reason.empty());
}

TEST_P(RcDeviceTest, DestroyQpFlushesPostedReceivesAndOutstandingSends) {
  slot_ = 11;
  Start(11);
  // A QP never connected: what was posted on it flushes too.
  const QpNum idle = client_->NewQp();
  ASSERT_TRUE(client_->dev->PostRecv(idle, {7, client_->sge(0, 64)}).ok());
  SendWr s;
  s.wr_id = 8;
  s.opcode = WrOpcode::kSend;
  s.sge = client_->sge(0, 8);
  ASSERT_TRUE(client_->dev->PostSend(idle, s).ok());
  ASSERT_TRUE(client_->dev->DestroyQp(idle).ok());
  client_->Collect();
  ASSERT_EQ(client_->wcs.size(), 2u);
  EXPECT_EQ(client_->Wc(7)->status, WcStatus::kFlushed);
  EXPECT_EQ(client_->Wc(7)->opcode, WcOpcode::kRecv);
  EXPECT_EQ(client_->Wc(8)->status, WcStatus::kFlushed);
  client_->wcs.clear();
  // A QP whose connection request is never answered: everything posted stays outstanding.
  const QpNum waiting = client_->NewQp();
  ASSERT_TRUE(client_->dev->Connect(waiting, ServerListen(), {}).ok());
  ASSERT_TRUE(Drive([&] { return server_->Event(CmEventKind::kConnectRequest) != nullptr; }));
  ASSERT_TRUE(client_->dev->PostRecv(waiting, {1, client_->sge(0, 64)}).ok());
  SendWr w;
  w.wr_id = 2;
  w.opcode = WrOpcode::kSend;
  w.sge = client_->sge(64, 64);
  ASSERT_TRUE(client_->dev->PostSend(waiting, w).ok());
  w.wr_id = 3;
  w.opcode = WrOpcode::kRdmaRead;
  ASSERT_TRUE(client_->dev->PostSend(waiting, w).ok());
  client_->Collect();
  EXPECT_TRUE(client_->wcs.empty());
  ASSERT_TRUE(client_->dev->DestroyQp(waiting).ok());
  client_->Collect();  // synchronous: no Poll needed
  ASSERT_EQ(client_->wcs.size(), 3u);
  for (uint64_t id : {1, 2, 3}) {
    ASSERT_NE(client_->Wc(id), nullptr) << id;
    EXPECT_EQ(client_->Wc(id)->status, WcStatus::kFlushed) << id;
    EXPECT_EQ(client_->Wc(id)->qp, waiting);
  }
  EXPECT_EQ(client_->Wc(1)->opcode, WcOpcode::kRecv);
  EXPECT_FALSE(client_->dev->PostRecv(waiting, {4, client_->sge(0, 64)}).ok());

  // A connected QP: its posted receives flush, and the peer sees the connection end.
  auto [cq, sq] = Connect();
  ASSERT_TRUE(server_->dev->PostRecv(sq, {5, server_->sge(0, 64)}).ok());
  ASSERT_TRUE(server_->dev->PostRecv(sq, {6, server_->sge(64, 64)}).ok());
  ASSERT_TRUE(server_->dev->DestroyQp(sq).ok());
  server_->Collect();
  ASSERT_NE(server_->Wc(5), nullptr);
  ASSERT_NE(server_->Wc(6), nullptr);
  EXPECT_EQ(server_->Wc(5)->status, WcStatus::kFlushed);
  EXPECT_EQ(server_->Wc(6)->status, WcStatus::kFlushed);
  ASSERT_TRUE(Drive([&] { return client_->Event(CmEventKind::kDisconnected, cq) != nullptr; }));
}

TEST_P(RcDeviceTest, DisconnectEndsBothSides) {
  SetUpPair(12);
  ASSERT_TRUE(server_->dev->PostRecv(sqp_, {3, server_->sge(0, 64)}).ok());
  SendWr w;
  w.wr_id = 4;
  w.opcode = WrOpcode::kSend;
  w.sge = client_->sge(0, 16);
  ASSERT_TRUE(client_->dev->PostSend(cqp_, w).ok());
  ASSERT_TRUE(Drive([&] { return server_->Wc(3) != nullptr; }));
  ASSERT_TRUE(server_->dev->PostRecv(sqp_, {1, server_->sge(0, 64)}).ok());
  ASSERT_TRUE(client_->dev->PostRecv(cqp_, {2, client_->sge(0, 64)}).ok());
  const uint64_t sent = client_->dev->stats().packets_sent;
  const uint64_t received = server_->dev->stats().packets_received;
  EXPECT_GT(sent, 0u);
  EXPECT_GT(received, 0u);
  ASSERT_TRUE(client_->dev->Disconnect(cqp_).ok());
  ASSERT_TRUE(Drive([&] {
    return client_->Event(CmEventKind::kDisconnected, cqp_) &&
           server_->Event(CmEventKind::kDisconnected, sqp_) && server_->Wc(1) && client_->Wc(2);
  }));
  EXPECT_EQ(server_->Wc(1)->status, WcStatus::kFlushed);
  EXPECT_EQ(client_->Wc(2)->status, WcStatus::kFlushed);
  // Counters outlive the connection (and the QP).
  ASSERT_TRUE(server_->dev->DestroyQp(sqp_).ok());
  EXPECT_GE(client_->dev->stats().packets_sent, sent);
  EXPECT_GE(server_->dev->stats().packets_received, received);
}

TEST_P(RcDeviceTest, PeerGoingAwayDisconnectsAndFlushes) {
  SetUpPair(13);
  ASSERT_TRUE(client_->dev->PostRecv(cqp_, {1, client_->sge(0, 64)}).ok());
  ASSERT_TRUE(client_->dev->PostRecv(cqp_, {2, client_->sge(64, 64)}).ok());
  server_.reset();  // the peer process is gone: its device closes everything
  ASSERT_TRUE(DriveUntil({client_.get()}, [&] {
    return client_->Event(CmEventKind::kDisconnected, cqp_) && client_->Wc(1) && client_->Wc(2);
  }));
  EXPECT_EQ(client_->Wc(1)->status, WcStatus::kFlushed);
  EXPECT_EQ(client_->Wc(2)->status, WcStatus::kFlushed);
  // Posting on a QP in the error state completes as flushed, as ibverbs does.
  SendWr w;
  w.wr_id = 3;
  w.opcode = WrOpcode::kSend;
  w.sge = client_->sge(0, 8);
  EXPECT_TRUE(client_->dev->PostSend(cqp_, w).ok());
  ASSERT_TRUE(client_->dev->PostRecv(cqp_, {4, client_->sge(64, 8)}).ok());
  client_->Collect();
  ASSERT_TRUE(client_->Wc(3) && client_->Wc(4));
  EXPECT_EQ(client_->Wc(3)->status, WcStatus::kFlushed);
  EXPECT_EQ(client_->Wc(4)->status, WcStatus::kFlushed);
}

TEST_P(RcDeviceTest, MaxConnectionsRefusesTheThirdAndKeepsTheFirstTwo) {
  slot_ = 14;
  Start(14, /*max_connections=*/2);
  auto [c1, s1] = Connect();
  auto [c2, s2] = Connect();
  const QpNum c3 = client_->NewQp();
  ASSERT_TRUE(client_->dev->Connect(c3, ServerListen(), {}).ok());
  ASSERT_TRUE(Drive([&] {
    return client_->Event(CmEventKind::kRejected, c3) ||
           client_->Event(CmEventKind::kUnreachable, c3);
  }));
  EXPECT_EQ(client_->Event(CmEventKind::kEstablished, c3), nullptr);
  EXPECT_EQ(server_->dev->stats().connections_refused, 1u);
  EXPECT_EQ(server_->dev->stats().connections_accepted, 2u);
  for (auto [c, s] : {std::pair{c1, s1}, std::pair{c2, s2}}) {
    Fill(server_->mem, 0, 4096, static_cast<uint8_t>(c));
    SendWr r;
    r.wr_id = 1000 + c;
    r.opcode = WrOpcode::kRdmaRead;
    r.sge = client_->sge(0, 4096);
    r.remote_addr = server_->va();
    r.rkey = server_->mr.rkey;
    ASSERT_TRUE(client_->dev->PostSend(c, r).ok());
    ASSERT_TRUE(Drive([&] { return client_->Wc(r.wr_id) != nullptr; }));
    EXPECT_EQ(client_->Wc(r.wr_id)->status, WcStatus::kSuccess);
    EXPECT_EQ(0, std::memcmp(client_->mem.data(), server_->mem.data(), 4096));
  }
  // A slot freed by a disconnect is available again.
  ASSERT_TRUE(client_->dev->Disconnect(c1).ok());
  ASSERT_TRUE(Drive([&] { return server_->Event(CmEventKind::kDisconnected, s1) != nullptr; }));
  auto [c4, s4] = Connect();
  EXPECT_NE(client_->Event(CmEventKind::kEstablished, c4), nullptr);
}

// A request the application neither accepts nor rejects is refused once answer_timeout_ms
// passes: the peer learns it (RoCEv2: a REJ; iWARP: an MPA reply with the reject flag) and the
// request no longer holds one of the max_connections slots. Answering it afterwards fails.
TEST_P(RcDeviceTest, AnUnansweredRequestIsRefusedAfterTheAnswerTimeout) {
  slot_ = 15;
  RcDeviceConfig sc = Config(ServerAddr(15));
  sc.answer_timeout_ms = 300;
  server_ = std::make_unique<Node>(sc);
  client_ = std::make_unique<Node>(Config(ClientAddr(15)));
  ASSERT_TRUE(server_->dev && client_->dev);
  ASSERT_TRUE(server_->dev->Listen().ok());
  const QpNum cq = client_->NewQp();
  ASSERT_TRUE(client_->dev->Connect(cq, ServerListen(), std::vector<uint8_t>{5}).ok());
  ASSERT_TRUE(Drive([&] { return server_->Event(CmEventKind::kConnectRequest) != nullptr; }));
  const uint32_t request = server_->Event(CmEventKind::kConnectRequest)->request;
  // Nobody answers: within a few seconds (not the 10 s default) the client is refused.
  ASSERT_TRUE(Drive([&] { return client_->Event(CmEventKind::kRejected, cq) != nullptr; }, 4000))
      << "the unanswered request was never refused";
  EXPECT_EQ(client_->Event(CmEventKind::kEstablished, cq), nullptr);
  EXPECT_EQ(server_->dev->stats().connections_refused, 1u);
  EXPECT_EQ(server_->dev->stats().connections_accepted, 0u);
  const QpNum sq = server_->NewQp();
  EXPECT_EQ(server_->dev->Accept(request, sq, {}).code(), Code::kNotFound);
  // The device still serves: a request answered in time connects.
  auto [c2, s2] = Connect();
  EXPECT_NE(client_->Event(CmEventKind::kEstablished, c2), nullptr);
  EXPECT_NE(server_->Event(CmEventKind::kEstablished, s2), nullptr);
}

INSTANTIATE_TEST_SUITE_P(Protocols, RcDeviceTest, ::testing::ValuesIn(kRcProtocolsUnderTest),
                         [](const ::testing::TestParamInfo<RcProtocol>& i) {
                           return std::string(RcProtocolName(i.param));
                         });

// ---- iWARP only ----------------------------------------------------------------------------

RcDeviceConfig IwarpConfig(NetAddr local) {
  RcDeviceConfig c;
  c.protocol = RcProtocol::kIwarp;
  c.local = local;
  return c;
}

// A plain TCP client, as a hostile or broken peer would be.
int RawConnect(const NetAddr& to) {
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in sa{};
  sa.sin_family = AF_INET;
  sa.sin_port = htons(to.port);
  sa.sin_addr.s_addr = htonl(to.ip);
  EXPECT_EQ(connect(fd, reinterpret_cast<sockaddr*>(&sa), sizeof sa), 0);
  timeval tv{0, 100'000};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  return fd;
}

// True once the server has closed `fd` (recv sees end of stream or a reset).
bool PeerClosed(int fd) {
  uint8_t b[64];
  ssize_t n = recv(fd, b, sizeof b, MSG_DONTWAIT);
  return n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK);
}

TEST(IwarpRcDevice, AtomicsAndImmediateDataAreRefused) {
  Node server(IwarpConfig(ServerAddr(20)));
  Node client(IwarpConfig(ClientAddr(20)));
  ASSERT_TRUE(server.dev->Listen().ok());
  const QpNum q = client.NewQp();
  for (WrOpcode op : {WrOpcode::kAtomicFetchAdd, WrOpcode::kAtomicCmpSwap, WrOpcode::kSendWithImm,
                      WrOpcode::kRdmaWriteWithImm}) {
    SendWr w;
    w.opcode = op;
    w.sge = client.sge(0, 8);
    w.remote_addr = server.va();
    w.rkey = server.mr.rkey;
    Status st = client.dev->PostSend(q, w);
    EXPECT_EQ(st.code(), Code::kInvalidArgument) << static_cast<int>(op);
    EXPECT_NE(st.message().find("RFC 5040"), std::string::npos) << st.message();
  }
  client.Collect();
  EXPECT_TRUE(client.wcs.empty());  // refused at the call, not as completions
}

TEST(IwarpRcDevice, RejectSendsAnMpaReplyWithTheRejectFlag) {
  Node server(IwarpConfig(ServerAddr(21)));
  ASSERT_TRUE(server.dev->Listen().ok());
  NetAddr to = ServerAddr(21);
  to.port = server.dev->local_port();
  int fd = RawConnect(to);
  mpa::StartFrame req;
  req.flags = mpa::kFlagCrc;
  req.revision = 2;
  req.enhanced = mpa::Enhanced{.read_rtr = true, .ird = 4, .ord = 4};
  req.private_data = {'h', 'i'};
  std::vector<uint8_t> bytes = *mpa::EncodeStartFrame(req);
  ASSERT_EQ(send(fd, bytes.data(), bytes.size(), 0), static_cast<ssize_t>(bytes.size()));
  ASSERT_TRUE(DriveUntil({&server}, [&] { return server.Event(CmEventKind::kConnectRequest); }));
  const CmEvent& e = *server.Event(CmEventKind::kConnectRequest);
  EXPECT_EQ(e.private_data, req.private_data);  // the enhanced word is not the ULP's
  ASSERT_TRUE(server.dev->Reject(e.request).ok());
  std::vector<uint8_t> reply(64);
  size_t got = 0;
  ASSERT_TRUE(DriveUntil({&server}, [&] {
    ssize_t n = recv(fd, reply.data() + got, reply.size() - got, MSG_DONTWAIT);
    if (n > 0) got += static_cast<size_t>(n);
    return got >= mpa::kStartHeaderLen && (n == 0 || got == mpa::StartFrameLength(reply));
  }));
  Result<mpa::StartFrame> f = mpa::DecodeStartFrame({reply.data(), got}, true);
  ASSERT_TRUE(f.ok()) << f.status().ToString();
  EXPECT_TRUE(f->flags & mpa::kFlagReject);
  EXPECT_EQ(f->revision, 2);
  EXPECT_TRUE(DriveUntil({&server}, [&] { return PeerClosed(fd); }));
  close(fd);
}

TEST(IwarpRcDevice, SilentAndOversizedRequestsAreDroppedAndFreeTheirSlots) {
  RcDeviceConfig c = IwarpConfig(ServerAddr(22));
  c.max_connections = 1;
  c.connect_request_timeout_ms = 300;
  Node server(c);
  ASSERT_TRUE(server.dev->Listen().ok());
  NetAddr to = ServerAddr(22);
  to.port = server.dev->local_port();

  // A client that never sends its MPA request holds the only slot until the bound passes.
  int silent = RawConnect(to);
  ASSERT_TRUE(DriveUntil({&server}, [&] { return PeerClosed(silent); }));
  EXPECT_EQ(server.dev->stats().connections_refused, 1u);
  EXPECT_EQ(server.dev->stats().connections_requested, 0u);
  EXPECT_NE(server.dev->CountersJson().find("\"requests_timed_out\":1"), std::string::npos)
      << server.dev->CountersJson();
  close(silent);

  // A request announcing more private data than MPA allows is dropped as soon as its header is
  // read, before the data.
  int big = RawConnect(to);
  uint8_t hdr[mpa::kStartHeaderLen];
  std::memcpy(hdr, mpa::kRequestKey, mpa::kKeyLen);
  hdr[16] = mpa::kFlagCrc;
  hdr[17] = 2;
  hdr[18] = 0x10;  // 4096 bytes of private data announced
  hdr[19] = 0;
  ASSERT_EQ(send(big, hdr, sizeof hdr, 0), static_cast<ssize_t>(sizeof hdr));
  ASSERT_TRUE(DriveUntil(
      {&server}, [&] { return PeerClosed(big); }, 2000));
  EXPECT_EQ(server.dev->stats().connections_refused, 2u);
  EXPECT_EQ(server.dev->stats().malformed_dropped, 1u);
  close(big);

  // The slot is free again: a real client connects.
  Node client(IwarpConfig(ClientAddr(22)));
  const QpNum cq = client.NewQp();
  const QpNum sq = server.NewQp();
  ASSERT_TRUE(client.dev->Connect(cq, to, {}).ok());
  ASSERT_TRUE(
      DriveUntil({&server, &client}, [&] { return server.Event(CmEventKind::kConnectRequest); }));
  ASSERT_TRUE(server.dev->Accept(server.Event(CmEventKind::kConnectRequest)->request, sq, {}).ok());
  ASSERT_TRUE(
      DriveUntil({&server, &client}, [&] { return client.Event(CmEventKind::kEstablished, cq); }));

  // While it holds the slot, another TCP connection is closed before anything is read.
  int extra = RawConnect(to);
  ASSERT_TRUE(DriveUntil({&server, &client}, [&] { return PeerClosed(extra); }));
  EXPECT_EQ(server.dev->stats().connections_refused, 3u);
  EXPECT_NE(server.dev->CountersJson().find("\"refused_over_limit\":1"), std::string::npos);
  close(extra);
}

TEST(IwarpRcDevice, PcapRecordsBothStreamsWithTheRequest) {
  char path[] = "/tmp/opensrd_rc_iwarp_pcap.XXXXXX";
  int tmp = mkstemp(path);
  ASSERT_GE(tmp, 0);
  close(tmp);
  {
    RcDeviceConfig sc = IwarpConfig(ServerAddr(23));
    sc.pcap = path;
    Node server(sc);
    Node client(IwarpConfig(ClientAddr(23)));
    ASSERT_TRUE(server.dev->Listen().ok());
    NetAddr to = ServerAddr(23);
    to.port = server.dev->local_port();
    const QpNum cq = client.NewQp();
    const QpNum sq = server.NewQp();
    ASSERT_TRUE(client.dev->Connect(cq, to, std::vector<uint8_t>{1}).ok());
    ASSERT_TRUE(
        DriveUntil({&server, &client}, [&] { return server.Event(CmEventKind::kConnectRequest); }));
    ASSERT_TRUE(
        server.dev->Accept(server.Event(CmEventKind::kConnectRequest)->request, sq, {}).ok());
    SendWr w;
    w.wr_id = 1;
    w.opcode = WrOpcode::kRdmaWrite;
    w.sge = client.sge(0, 3000);
    w.remote_addr = server.va();
    w.rkey = server.mr.rkey;
    Fill(client.mem, 0, 3000, 1);
    ASSERT_TRUE(client.dev->PostSend(cq, w).ok());
    ASSERT_TRUE(DriveUntil({&server, &client}, [&] {
      return std::memcmp(server.mem.data(), client.mem.data(), 3000) == 0;
    }));
    const nlohmann::json j = nlohmann::json::parse(server.dev->CountersJson());
    EXPECT_EQ(j["pcap"]["file"], path) << j.dump();
    EXPECT_EQ(j["pcap"]["dropped"], 0u) << j.dump();
    // Closing gives the final figures: every record captured is on disk.
    const nlohmann::json c = nlohmann::json::parse(server.dev->CloseCapture());
    EXPECT_GT(c["written"].get<uint64_t>(), 0u);
    EXPECT_EQ(c["written"], c["captured"]) << c.dump();
  }
  // The file holds the MPA request the server read before the queue pair existed: its key
  // appears in the capture.
  FILE* f = std::fopen(path, "rb");
  ASSERT_NE(f, nullptr);
  std::vector<char> data(1 << 20);
  data.resize(std::fread(data.data(), 1, data.size(), f));
  std::fclose(f);
  std::remove(path);
  const std::string s(data.begin(), data.end());
  EXPECT_NE(s.find(mpa::kRequestKey), std::string::npos);
  EXPECT_NE(s.find(mpa::kReplyKey), std::string::npos);
}

}  // namespace

// The active side bounds its wait too: a peer whose TCP stack accepts the connection but whose
// MPA layer never replies (a hung or hostile server) must not hold a connecting QP forever. The
// QP gets kUnreachable once connect_timeout_ms passes, and what was posted on it flushes.
TEST(IwarpRcDevice, APeerThatNeverRepliesIsUnreachableAfterTheConnectTimeout) {
  // A listener nobody accepts on: the kernel completes the handshake and takes the MPA request
  // into its backlog, and nothing ever answers.
  const NetAddr to = ServerAddr(24);
  int lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  ASSERT_GE(lfd, 0);
  int one = 1;
  setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  sockaddr_in sa{};
  sa.sin_family = AF_INET;
  sa.sin_port = htons(to.port);
  sa.sin_addr.s_addr = htonl(to.ip);
  ASSERT_EQ(bind(lfd, reinterpret_cast<sockaddr*>(&sa), sizeof sa), 0) << std::strerror(errno);
  ASSERT_EQ(listen(lfd, 4), 0);

  RcDeviceConfig c = IwarpConfig(ClientAddr(24));
  c.connect_timeout_ms = 300;
  Node client(c);
  ASSERT_TRUE(client.dev);
  const QpNum cq = client.NewQp();
  ASSERT_TRUE(client.dev->PostRecv(cq, {7, client.sge(0, 64)}).ok());
  ASSERT_TRUE(client.dev->Connect(cq, to, std::vector<uint8_t>{1, 2}).ok());
  ASSERT_TRUE(DriveUntil(
      {&client}, [&] { return client.Event(CmEventKind::kUnreachable, cq) != nullptr; }, 5000))
      << "the connecting QP never gave up on a silent peer";
  EXPECT_NE(client.Event(CmEventKind::kUnreachable, cq)->reason.find("MPA reply"),
            std::string::npos)
      << client.Event(CmEventKind::kUnreachable, cq)->reason;
  EXPECT_EQ(client.Event(CmEventKind::kEstablished, cq), nullptr);
  ASSERT_TRUE(DriveUntil(
      {&client}, [&] { return client.Wc(7) != nullptr; }, 2000));
  EXPECT_EQ(client.Wc(7)->status, WcStatus::kFlushed);
  EXPECT_NE(client.dev->CountersJson().find("\"connect_failures\":1"), std::string::npos)
      << client.dev->CountersJson();
  close(lfd);
}

}  // namespace opensrd::rdma
