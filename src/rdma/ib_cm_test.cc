// The CM codec against byte positions worked out from IBTA vol. 1 tables 106-120 and Linux's
// rdma_cm header (cma.c), one test per rejection path, and the agent's state machine: two
// agents connecting, losses of each message, rejections, timeouts and disconnection.
#include <gtest/gtest.h>

#include <cstring>
#include <functional>

#include "rdma/ib_cm.h"
#include "rdma/ib_cm_agent.h"

namespace opensrd::rdma::cm {
namespace {

using Bytes = std::vector<uint8_t>;
constexpr uint32_t kIpA = 0x7F000D01;  // 127.0.13.1
constexpr uint32_t kIpB = 0x7F000D02;

Req SampleReq() {
  Req r;
  r.local_comm_id = 0x11223344;
  r.service_id = ServiceIdForTcpPort(7174);
  r.local_ca_guid = 0x0102030405060708ull;
  r.local_qpn = 0xABCDEF;
  r.responder_resources = 4;
  r.initiator_depth = 5;
  r.remote_cm_response_timeout = 20;
  r.starting_psn = 0x123456;
  r.local_cm_response_timeout = 18;
  r.retry_count = 6;
  r.path_mtu = 3;
  r.rnr_retry_count = 7;
  r.max_cm_retries = 15;
  r.primary_local_gid[15] = 0xAA;
  r.primary_remote_gid[15] = 0xBB;
  r.primary_flow_label = 0xFFFFF;
  r.primary_packet_rate = 0x3F;
  r.primary_sl = 0xF;
  r.primary_subnet_local = true;
  r.primary_local_ack_timeout = 14;
  r.private_data[0] = 0x00;
  r.private_data[91] = 0x5A;
  return r;
}

TEST(IbCm, ReqBytesFollowTable106) {
  Message m{0x0A0B0C0D0E0F1011ull, SampleReq()};
  auto mad = EncodeMad(m);
  // MAD header: base version 1, class 0x07 (CM), class version 2, method 0x03 (Send),
  // status 0, class specific 0, TID, attribute 0x0010 (REQ), reserved, modifier 0.
  const Bytes hdr = {0x01, 0x07, 0x02, 0x03, 0,    0,    0, 0, 0x0A, 0x0B, 0x0C, 0x0D,
                     0x0E, 0x0F, 0x10, 0x11, 0x00, 0x10, 0, 0, 0,    0,    0,    0};
  EXPECT_EQ(Bytes(mad.begin(), mad.begin() + 24), hdr);
  const uint8_t* d = mad.data() + 24;
  EXPECT_EQ(Bytes(d, d + 4), (Bytes{0x11, 0x22, 0x33, 0x44}));
  EXPECT_EQ(Bytes(d + 8, d + 16), (Bytes{0, 0, 0, 0, 0x01, 0x06, 0x1C, 0x06}));  // 7174
  EXPECT_EQ(Bytes(d + 32, d + 36), (Bytes{0xAB, 0xCD, 0xEF, 4}));  // QPN, responder resources
  EXPECT_EQ(d[39], 5);                                             // initiator depth
  EXPECT_EQ(d[43], 20 << 3);  // remote CM timeout | RC (0) | no E2E
  EXPECT_EQ(Bytes(d + 44, d + 48), (Bytes{0x12, 0x34, 0x56, (18 << 3) | 6}));
  EXPECT_EQ(Bytes(d + 48, d + 52), (Bytes{0xFF, 0xFF, 0x37, 0xF0}));  // P_Key, MTU|RNR, retries
  EXPECT_EQ(Bytes(d + 52, d + 56), (Bytes{0xFF, 0xFF, 0xFF, 0xFF}));  // permissive LIDs
  EXPECT_EQ(d[71], 0xAA);
  EXPECT_EQ(d[87], 0xBB);
  EXPECT_EQ(Bytes(d + 88, d + 96), (Bytes{0xFF, 0xFF, 0xF0, 0x3F, 0, 64, 0xF8, 14 << 3}));
  EXPECT_EQ(Bytes(d + 96, d + 140), Bytes(44, 0));  // no alternate path
  EXPECT_EQ(d[140 + 91], 0x5A);                     // private data ends the MAD
  EXPECT_EQ(140 + 92 + 24, 256);
}

TEST(IbCm, EveryMessageRoundTrips) {
  Req req = SampleReq();
  Rep rep;
  rep.local_comm_id = 1;
  rep.remote_comm_id = 2;
  rep.local_qpn = 0x000123;
  rep.starting_psn = 0xFEDCBA;
  rep.responder_resources = 1;
  rep.initiator_depth = 2;
  rep.target_ack_delay = 31;
  rep.failover_accepted = 1;
  rep.end_to_end_flow_control = true;
  rep.rnr_retry_count = 5;
  rep.srq = true;
  rep.local_ca_guid = 99;
  rep.private_data[195] = 7;
  Rtu rtu{3, 4, {}};
  rtu.private_data[223] = 1;
  Dreq dreq{5, 6, 0x00ABCD, {}};
  Drep drep{7, 8, {}};
  Mra mra{9, 10, 1, 17, {}};
  Rej rej;
  rej.local_comm_id = 11;
  rej.remote_comm_id = 12;
  rej.message_rejected = 2;
  rej.reject_info_length = 72;
  rej.reason = kRejConsumer;
  rej.ari[71] = 3;
  rej.private_data[147] = 4;
  for (const Message& m : {Message{1, req}, Message{2, rep}, Message{3, rtu}, Message{4, dreq},
                           Message{5, drep}, Message{6, mra}, Message{7, rej}}) {
    auto mad = EncodeMad(m);
    Result<Message> back = DecodeMad(mad);
    ASSERT_TRUE(back.ok()) << AttrName(m.attr()) << back.status().ToString();
    EXPECT_EQ(back->transaction_id, m.transaction_id);
    EXPECT_EQ(back->attr(), m.attr());
    EXPECT_EQ(EncodeMad(*back), mad) << AttrName(m.attr());
  }
  // Spot checks of the packed fields.
  auto rep_mad = EncodeMad(Message{2, rep});
  EXPECT_EQ(rep_mad[24 + 26], (31 << 3) | (1 << 1) | 1);
  EXPECT_EQ(rep_mad[24 + 27], (5 << 5) | 0x10);
  EXPECT_EQ(std::get<Rep>(DecodeMad(rep_mad)->body).starting_psn, 0xFEDCBAu);
  auto rej_mad = EncodeMad(Message{7, rej});
  EXPECT_EQ(rej_mad[24 + 8], 2 << 6);
  EXPECT_EQ(rej_mad[24 + 9], 72 << 1);
  EXPECT_EQ(rej_mad[24 + 11], kRejConsumer);
}

TEST(IbCm, GsiPacketIsUdSendOnlyToQp1WithDeth) {
  Rtu rtu{3, 4, {}};
  Bytes p = EncodeGsiPacket(Message{1, rtu}, 0x000102);
  ASSERT_EQ(p.size(), 276u);
  // BTH: opcode 0x64, flags 0, P_Key FFFF, reserved, dest QP 1, AckReq 0, PSN 0x000102.
  // DETH: Q_Key 0x80010000, reserved, source QP 1.
  const Bytes head = {0x64, 0x00, 0xFF, 0xFF, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00,
                      0x01, 0x02, 0x80, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01};
  EXPECT_EQ(Bytes(p.begin(), p.begin() + 20), head);
  EXPECT_TRUE(LooksLikeGsi(p));
  Result<Message> back = DecodeGsiPacket(p);
  ASSERT_TRUE(back.ok());
  EXPECT_EQ(std::get<Rtu>(back->body).remote_comm_id, 4u);
}

TEST(IbCm, RejectsEachMalformedShape) {
  auto mad = EncodeMad(Message{1, SampleReq()});
  auto expect = [](Result<Message> r, const char* token) {
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.status().message(), token);
  };
  expect(DecodeMad(std::span(mad).first(255)), "bad_length");
  for (int i : {0, 1, 2, 3}) {
    auto bad = mad;
    bad[i] ^= 0x40;
    expect(DecodeMad(bad), "bad_mad_header");
  }
  auto unknown = mad;
  unknown[17] = 0x19;  // LAP: not spoken
  expect(DecodeMad(unknown), "unknown_attribute");
  auto uc = mad;
  uc[24 + 43] |= 1 << 1;  // transport service type UC
  expect(DecodeMad(uc), "bad_field");
  for (uint8_t mtu : {0, 6}) {
    auto bad = mad;
    bad[24 + 50] = static_cast<uint8_t>(mtu << 4 | 7);
    expect(DecodeMad(bad), "bad_field");
  }
  Bytes p = EncodeGsiPacket(Message{1, SampleReq()}, 0);
  expect(DecodeGsiPacket(std::span(p).first(275)), "bad_length");
  for (size_t at : {size_t{0}, size_t{7}, size_t{12}, size_t{19}}) {
    Bytes bad = p;
    bad[at] ^= 0x02;  // opcode, dest QP, Q_Key, source QP
    expect(DecodeGsiPacket(bad), "not_gsi");
  }
  Bytes pad = p;
  pad[1] = 0x10;  // a pad count on a 256-byte MAD
  expect(DecodeGsiPacket(pad), "not_gsi");
}

TEST(IbCm, CmaHeaderLayoutAndRejections) {
  uint8_t b[kCmaHeaderLen];
  EncodeCmaHeader(CmaHeader{0x1234, kIpA, kIpB}, b);
  const Bytes want = {0x00, 0x40, 0x12, 0x34, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,    0,    0x7F, 0,
                      13,   1,    0,    0,    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x7F, 0x00, 13,   2};
  EXPECT_EQ(Bytes(b, b + kCmaHeaderLen), want);
  Result<CmaHeader> h = DecodeCmaHeader(b);
  ASSERT_TRUE(h.ok());
  EXPECT_EQ(h->src_port, 0x1234);
  EXPECT_EQ(h->dst_ip, kIpB);
  b[0] = 1;
  EXPECT_EQ(DecodeCmaHeader(b).status().message(), "bad_cma_version");
  b[0] = 0;
  b[1] = 0x60;
  EXPECT_EQ(DecodeCmaHeader(b).status().message(), "bad_cma_ip_version");
  EXPECT_EQ(DecodeCmaHeader(std::span(b).first(35)).status().message(), "bad_length");
}

// Two agents; Deliver moves messages (through the wire encoding) unless `drop` says no.
struct Agents {
  CmAgent a{{kIpA, 0xA, 1000, 3, 1}};
  CmAgent b{{kIpB, 0xB, 1000, 3, 2}};
  uint64_t now = 0;
  std::vector<AttrId> seen;  // everything delivered, in order

  void Deliver(const std::function<bool(AttrId)>& drop = nullptr) {
    for (int i = 0; i < 20; ++i) {
      auto oa = a.TakeOutgoing();
      auto ob = b.TakeOutgoing();
      if (oa.empty() && ob.empty()) return;
      auto move = [&](std::vector<Outgoing>& out, CmAgent& to, uint32_t from_ip) {
        for (Outgoing& o : out) {
          Bytes wire = EncodeGsiPacket(o.message, 0);
          Result<Message> m = DecodeGsiPacket(wire);
          ASSERT_TRUE(m.ok());
          if (drop && drop(m->attr())) continue;
          seen.push_back(m->attr());
          to.OnMessage(from_ip, *m, now);
        }
      };
      move(oa, b, kIpA);
      move(ob, a, kIpB);
    }
  }
  void Tick(uint64_t us) {
    now += us;
    a.OnTimer(now);
    b.OnTimer(now);
  }
};

QpOffer Offer(uint32_t qpn, uint32_t psn, Bytes pd = {}) {
  QpOffer o;
  o.qpn = qpn;
  o.recv_psn = psn;
  o.private_data = std::move(pd);
  return o;
}

TEST(CmAgent, ConnectAcceptRtuThenDisconnect) {
  Agents t;
  const uint64_t sid = ServiceIdForTcpPort(7174);
  t.b.Listen(sid);
  CmaHeader cma{40000, kIpA, kIpB};
  uint32_t ida = t.a.Connect(kIpB, sid, Offer(0x11, 0x100, {'h', 'i'}), &cma, 0);
  t.Deliver();
  auto ev = t.b.TakeEvents();
  ASSERT_EQ(ev.size(), 1u);
  EXPECT_EQ(ev[0].kind, EventKind::kConnectRequest);
  EXPECT_EQ(ev[0].remote_qpn, 0x11u);
  EXPECT_EQ(ev[0].send_psn, 0x100u);  // B sends from what A expects
  ASSERT_TRUE(ev[0].cma.has_value());
  EXPECT_EQ(ev[0].cma->src_port, 40000);
  EXPECT_EQ(ev[0].private_data.at(0), 'h');
  const uint32_t idb = ev[0].id;
  ASSERT_TRUE(t.b.Accept(idb, Offer(0x22, 0x200, {9, 8, 7}), 0).ok());
  t.Deliver();
  auto ea = t.a.TakeEvents();
  ASSERT_EQ(ea.size(), 1u);
  EXPECT_EQ(ea[0].kind, EventKind::kEstablished);
  EXPECT_EQ(ea[0].remote_qpn, 0x22u);
  EXPECT_EQ(ea[0].send_psn, 0x200u);
  EXPECT_EQ(ea[0].private_data.at(2), 7);
  auto eb = t.b.TakeEvents();
  ASSERT_EQ(eb.size(), 1u);
  EXPECT_EQ(eb[0].kind, EventKind::kEstablished);
  EXPECT_EQ(t.seen, (std::vector<AttrId>{AttrId::kReq, AttrId::kRep, AttrId::kRtu}));
  ASSERT_TRUE(t.a.Disconnect(ida, 0).ok());
  t.Deliver();
  EXPECT_EQ(t.a.TakeEvents().at(0).kind, EventKind::kDisconnected);
  EXPECT_EQ(t.b.TakeEvents().at(0).kind, EventKind::kDisconnected);
  EXPECT_EQ(t.a.state(ida), CmAgent::State::kClosed);
  EXPECT_EQ(t.b.state(idb), CmAgent::State::kClosed);
  EXPECT_FALSE(t.a.NextDeadline().has_value());
}

// The REP has no path MTU field: both ends must run at the MTU the REQ carried. The active
// side's Established event said 1024 (the field's default) whatever its REQ offered, so a
// client offering 4096 sent 1 KiB packets to a server expecting 4 KiB ones (a READ's responses
// were cut wrongly and every 64 KiB WRITE and READ failed verification).
TEST(CmAgent, BothSidesGetThePathMtuTheReqCarried) {
  for (uint8_t mtu : {uint8_t{1}, uint8_t{3}, uint8_t{5}}) {
    Agents t;
    const uint64_t sid = ServiceIdForTcpPort(7174);
    t.b.Listen(sid);
    QpOffer o = Offer(0x11, 0x100);
    o.path_mtu = mtu;
    t.a.Connect(kIpB, sid, o, nullptr, 0);
    t.Deliver();
    auto ev = t.b.TakeEvents();
    ASSERT_EQ(ev.size(), 1u);
    EXPECT_EQ(ev[0].path_mtu, mtu);
    ASSERT_TRUE(t.b.Accept(ev[0].id, Offer(0x22, 0x200), 0).ok());
    t.Deliver();
    auto ea = t.a.TakeEvents();
    ASSERT_EQ(ea.size(), 1u);
    EXPECT_EQ(ea[0].kind, EventKind::kEstablished);
    EXPECT_EQ(ea[0].path_mtu, mtu);
  }
}

TEST(CmAgent, ClosedConnectionsAreForgottenAfterTheTimeWait) {
  Agents t;
  t.b.Listen(5);
  uint32_t ida = t.a.Connect(kIpB, 5, Offer(1, 1), nullptr, 0);
  t.Deliver();
  const uint32_t idb = t.b.TakeEvents().at(0).id;
  ASSERT_TRUE(t.b.Accept(idb, Offer(2, 2), 0).ok());
  t.Deliver();
  ASSERT_TRUE(t.a.Disconnect(ida, 0).ok());
  t.Deliver();
  EXPECT_EQ(t.a.state(ida), CmAgent::State::kClosed);
  t.Tick(4'999'999);
  EXPECT_EQ(t.b.state(idb), CmAgent::State::kClosed);
  t.Tick(1);
  EXPECT_FALSE(t.a.state(ida).has_value());
  EXPECT_FALSE(t.b.state(idb).has_value());
}

TEST(CmAgent, LostReqIsResent) {
  Agents t;
  t.b.Listen(5);
  t.a.Connect(kIpB, 5, Offer(1, 1), nullptr, 0);
  t.Deliver([](AttrId) { return true; });
  EXPECT_TRUE(t.b.TakeEvents().empty());
  EXPECT_EQ(t.a.NextDeadline(), 1000u);
  t.Tick(1000);
  t.Deliver();
  EXPECT_EQ(t.b.TakeEvents().size(), 1u);
}

TEST(CmAgent, LostRepIsAnsweredAgainOnTheResentReq) {
  Agents t;
  t.b.Listen(5);
  t.a.Connect(kIpB, 5, Offer(1, 1), nullptr, 0);
  t.Deliver();
  ASSERT_TRUE(t.b.Accept(t.b.TakeEvents().at(0).id, Offer(2, 2), 0).ok());
  int reps = 0;
  t.Deliver([&](AttrId a) { return a == AttrId::kRep && reps++ == 0; });
  EXPECT_TRUE(t.a.TakeEvents().empty());
  // A resends the REQ at 1000; B answers the duplicate with its REP (no second request event).
  t.now = 1000;
  t.a.OnTimer(t.now);
  t.Deliver();
  EXPECT_TRUE(t.b.TakeEvents().size() == 1u);  // established by the RTU
  EXPECT_EQ(t.a.TakeEvents().at(0).kind, EventKind::kEstablished);
}

TEST(CmAgent, LostRtuTheFirstPacketEstablishes) {
  Agents t;
  t.b.Listen(5);
  t.a.Connect(kIpB, 5, Offer(1, 1), nullptr, 0);
  t.Deliver();
  const uint32_t idb = t.b.TakeEvents().at(0).id;
  ASSERT_TRUE(t.b.Accept(idb, Offer(2, 2), 0).ok());
  t.Deliver([](AttrId a) { return a == AttrId::kRtu; });
  EXPECT_EQ(t.b.state(idb), CmAgent::State::kRepSent);
  // B resends the REP; A answers with the RTU again.
  t.Tick(1000);
  t.Deliver([](AttrId a) { return a == AttrId::kRtu; });
  t.b.CommunicationEstablished(idb);
  EXPECT_EQ(t.b.state(idb), CmAgent::State::kEstablished);
  EXPECT_EQ(t.b.TakeEvents().at(0).kind, EventKind::kEstablished);
  EXPECT_FALSE(t.b.NextDeadline().has_value());
}

TEST(CmAgent, UnknownServiceIsRejectedWithReason8) {
  Agents t;
  t.a.Connect(kIpB, 77, Offer(1, 1), nullptr, 0);
  t.Deliver();
  auto e = t.a.TakeEvents();
  ASSERT_EQ(e.size(), 1u);
  EXPECT_EQ(e[0].kind, EventKind::kRejected);
  EXPECT_EQ(e[0].reason, kRejInvalidServiceId);
}

TEST(CmAgent, ConsumerRejectReachesTheActiveSide) {
  Agents t;
  t.b.Listen(5);
  t.a.Connect(kIpB, 5, Offer(1, 1), nullptr, 0);
  t.Deliver();
  ASSERT_TRUE(t.b.Reject(t.b.TakeEvents().at(0).id, kRejConsumer, 0).ok());
  t.Deliver();
  auto e = t.a.TakeEvents();
  ASSERT_EQ(e.size(), 1u);
  EXPECT_EQ(e[0].reason, kRejConsumer);
}

TEST(CmAgent, NoAnswerTimesOutAfterEveryResend) {
  Agents t;
  uint32_t id = t.a.Connect(kIpB, 5, Offer(1, 1), nullptr, 0);
  int reqs = 0;
  for (int i = 0; i < 5; ++i) {
    for (Outgoing& o : t.a.TakeOutgoing()) reqs += o.message.attr() == AttrId::kReq;
    t.Tick(1000);
  }
  EXPECT_EQ(reqs, 4);  // the first and three resends
  auto e = t.a.TakeEvents();
  ASSERT_EQ(e.size(), 1u);
  EXPECT_EQ(e[0].kind, EventKind::kTimedOut);
  EXPECT_EQ(t.a.state(id), CmAgent::State::kClosed);
}

TEST(CmAgent, DreqForAConnectionAlreadyGoneStillGetsDrep) {
  Agents t;
  Dreq d{0x55, 0x66, 1, {}};
  t.b.OnMessage(kIpA, Message{9, d}, 0);
  auto out = t.b.TakeOutgoing();
  ASSERT_EQ(out.size(), 1u);
  const Drep& r = std::get<Drep>(out[0].message.body);
  EXPECT_EQ(r.local_comm_id, 0x66u);
  EXPECT_EQ(r.remote_comm_id, 0x55u);
  EXPECT_EQ(out[0].message.transaction_id, 9u);
  EXPECT_TRUE(t.b.TakeEvents().empty());
}

TEST(CmAgent, AcceptOrDisconnectInTheWrongStateIsAnError) {
  Agents t;
  EXPECT_FALSE(t.b.Accept(1234, Offer(1, 1), 0).ok());
  uint32_t id = t.a.Connect(kIpB, 5, Offer(1, 1), nullptr, 0);
  EXPECT_FALSE(t.a.Disconnect(id, 0).ok());
  EXPECT_FALSE(t.a.Accept(id, Offer(1, 1), 0).ok());
}

}  // namespace
}  // namespace opensrd::rdma::cm
