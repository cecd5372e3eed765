// Attacks on the transport's connection state (issue 12, docs/SECURITY.md), in the simulator:
// an attacker who captured real packets (Network::tap) and sends forged or replayed ones from
// addresses of its own, or spoofs many sources. Each test failed on the code before address
// validation and reset tokens; the commit that added them says how.
#include <gtest/gtest.h>

#include <vector>

#include "sim/network.h"
#include "sim/test_app.h"
#include "transport/wire.h"

namespace opensrd::sim {
namespace {

using namespace simtest;

constexpr uint32_t kIpAttacker = 0x0A0000AA;

// A sends 64 KiB messages to B over two paths; the test captures everything A and B send.
struct Victims {
  Network net{41};
  HostId a = 0, b = 0;
  App A, B;
  PeerId to_b = 0;
  std::vector<std::vector<uint8_t>> from_a, from_b;

  Victims() {
    a = net.AddHost(kIpA, 1000, 2, Config(0xA, 1));
    b = net.AddHost(kIpB, 2000, 1, Config(0xB, 2));
    A.Init(net, a);
    B.Init(net, b);
    net.tap = [this](const NetAddr& from, const NetAddr&, std::span<const uint8_t> bytes) {
      (from.ip == kIpA ? from_a : from_b).emplace_back(bytes.begin(), bytes.end());
    };
    to_b = A.ep().AddPeer({{0, net.address(b, 0)}, {1, net.address(b, 0)}}, 0).value();
  }
  // The last captured packet of `type` sent by A (or B).
  std::vector<uint8_t> Last(bool by_a, wire::Type type) const {
    const auto& v = by_a ? from_a : from_b;
    for (auto it = v.rbegin(); it != v.rend(); ++it) {
      wire::Packet p;
      if (wire::Parse(*it, p) == wire::ParseError::kNone && p.common.type == type) return *it;
    }
    return {};
  }
  void SendAndFinish(int n, uint64_t first_key) {
    const size_t done = A.sends.size() + static_cast<size_t>(n);
    for (int i = 0; i < n; ++i) A.Send(to_b, first_key + i, 64 * 1024);
    ASSERT_TRUE(RunNet(
        net, {&A, &B}, [&] { return A.sends.size() == done; }, 2'000'000));
  }
};

// A RESET with the right context ids and incarnations (read off the wire) but without the reset
// token must not tear the session down.
TEST(Attack, ForgedResetIsIgnored) {
  Victims v;
  v.SendAndFinish(4, 0);
  std::vector<uint8_t> data = v.Last(true, wire::Type::kData);
  ASSERT_FALSE(data.empty());
  wire::Packet d;
  ASSERT_EQ(wire::Parse(data, d), wire::ParseError::kNone);
  // Forge "B lost this context" toward A, as B would send it (token unknown: zeros).
  wire::Common c;
  c.type = wire::Type::kReset;
  c.dst_ctx = d.common.src_ctx;
  c.src_ctx = d.common.dst_ctx;
  c.src_incarnation = d.common.dst_incarnation;
  c.dst_incarnation = d.common.src_incarnation;
  std::vector<uint8_t> reset(128);
  reset.resize(wire::EncodeReset(c, {.addressed_incarnation = d.common.dst_incarnation}, reset));
  for (int i = 0; i < 8; ++i) v.A.Send(v.to_b, 100 + i, 64 * 1024);
  v.net.Inject(v.net.address(v.b, 0), v.net.address(v.a, 0), reset);
  ASSERT_TRUE(RunNet(
      v.net, {&v.A, &v.B}, [&] { return v.A.sends.size() == 12; }, 2'000'000));
  EXPECT_EQ(v.A.Count(v.A.sends, Code::kOk), 12u) << "a forged RESET failed messages";
}

// A captured HELLO (with the cookie it echoed) replayed later from the attacker's address creates
// nothing and disturbs nothing.
TEST(Attack, ReplayedHelloFromAnotherAddressCreatesNothing) {
  Victims v;
  v.SendAndFinish(2, 0);
  const std::vector<uint8_t> hello = v.Last(true, wire::Type::kHello);
  ASSERT_FALSE(hello.empty());
  const EndpointStats before = v.B.ep().stats();
  const size_t peers = v.B.ep().peers().size();
  const NetAddr attacker{kIpAttacker, 6666};
  for (int i = 0; i < 3; ++i) v.net.Inject(attacker, v.net.address(v.b, 0), hello);
  v.SendAndFinish(4, 10);
  EXPECT_EQ(v.A.Count(v.A.sends, Code::kOk), 6u);
  EXPECT_EQ(v.B.ep().stats().contexts_live, before.contexts_live);
  EXPECT_EQ(v.B.ep().peers().size(), peers);
  EXPECT_EQ(v.B.ep().stats().peer_restarts, 0u);
  // Nothing went to the attacker (before: HELLO_ACKs and acks followed the replay there).
  EXPECT_EQ(v.net.link_stats(v.net.address(v.b, 0), attacker).packets, 0u);
}

// 5,000 HELLOs with fresh identities from 5,000 spoofed sources that never answer: no peer, no
// context; what is queued for them (RETRY answers) is bounded and no larger than what came in.
TEST(Attack, HelloFloodFromSpoofedSourcesAllocatesNothing) {
  Victims v;
  v.SendAndFinish(1, 0);
  std::vector<uint8_t> hello = v.Last(true, wire::Type::kHello);
  ASSERT_FALSE(hello.empty());
  wire::Packet h;
  ASSERT_EQ(wire::Parse(hello, h), wire::ParseError::kNone);
  const size_t peers = v.B.ep().peers().size();
  const uint64_t contexts = v.B.ep().stats().contexts_live;
  uint64_t bytes_in = 0;
  for (uint32_t i = 0; i < 5000; ++i) {
    h.common.src_ctx = 1 + i;
    h.common.src_incarnation = 0x1000 + i;
    h.hello.node_id = 0xF00D0000ull + i;
    std::fill(std::begin(h.hello.cookie), std::end(h.hello.cookie), uint8_t{0x5A});  // a guess
    std::vector<uint8_t> b(256);
    b.resize(wire::EncodeHello(h.common, h.hello, b));
    bytes_in += b.size();
    v.net.Inject({0x0B000000 + i, static_cast<uint16_t>(1000 + i % 50000)}, v.net.address(v.b, 0),
                 b);
  }
  RunNet(
      v.net, {&v.A, &v.B}, [] { return false; }, 10'000);
  EXPECT_EQ(v.B.ep().peers().size(), peers) << "spoofed HELLOs created peers";
  EXPECT_EQ(v.B.ep().stats().contexts_live, contexts) << "spoofed HELLOs created contexts";
  // The victim still works.
  v.SendAndFinish(2, 20);
  EXPECT_EQ(v.A.Count(v.A.sends, Code::kOk), 3u);
  std::printf("flood: %lu bytes of HELLO in, B sent %lu RETRYs\n", (unsigned long)bytes_in,
              (unsigned long)v.B.ep().stats().retries_sent);
}

// A captured data packet replayed from the attacker's address while A is quiet must not move
// B's path there: what B sends next still goes to A.
TEST(Attack, PathHijackByReplayFromANewAddressFails) {
  Victims v;
  v.SendAndFinish(2, 0);
  const std::vector<uint8_t> data = v.Last(true, wire::Type::kData);
  ASSERT_FALSE(data.empty());
  const NetAddr attacker{kIpAttacker, 7777};
  v.net.Inject(attacker, v.net.address(v.b, 0), data);
  RunNet(
      v.net, {&v.A, &v.B}, [] { return false; }, 1'000);
  const PeerId to_a = v.B.recvs[0].peer;
  for (const PathStats& p : v.B.ep().path_stats(to_a)) {
    EXPECT_NE(p.spec.remote.ip, kIpAttacker) << "path " << p.id << " was hijacked";
  }
  for (int i = 0; i < 5; ++i) v.B.Send(to_a, 100 + i, 64 * 1024);
  ASSERT_TRUE(RunNet(
      v.net, {&v.A, &v.B}, [&] { return v.B.sends.size() == 5; }, 2'000'000));
  EXPECT_EQ(v.B.Count(v.B.sends, Code::kOk), 5u);
  // At most the one challenge went to the attacker: no data, no acks.
  EXPECT_LE(v.net.link_stats(v.net.address(v.b, 0), attacker).packets, 1u);
}

}  // namespace
}  // namespace opensrd::sim

namespace opensrd::sim {
namespace {

using namespace simtest;

// A forged ACK (right ids, cumulative point covering everything sent) while nothing reaches B.
// Without a cluster key it completes sends that were never delivered (the threat model says
// so: tokens stop blind attackers, not one who reads the ids off the wire); with the key it is
// dropped before the parser and the sends fail as they should.
struct ForgedAckRun {
  uint64_t ok = 0, failed = 0, auth_failed = 0, delivered = 0;
};

ForgedAckRun ForgedAck(KeyMode mode) {
  Network net(43);
  EndpointConfig ca = Config(0xA, 1), cb = Config(0xB, 2);
  ca.key_mode = cb.key_mode = mode;
  ca.cluster_key.fill(0x42);
  cb.cluster_key.fill(0x42);
  HostId a = net.AddHost(kIpA, 1000, 1, ca);
  HostId b = net.AddHost(kIpB, 2000, 1, cb);
  App A, B;
  A.Init(net, a);
  B.Init(net, b);
  std::vector<std::vector<uint8_t>> from_a;
  net.tap = [&](const NetAddr& from, const NetAddr&, std::span<const uint8_t> bytes) {
    if (from.ip == kIpA) from_a.emplace_back(bytes.begin(), bytes.end());
  };
  PeerId to_b = A.ep().AddPeer({{0, net.address(b, 0)}}, 0).value();
  A.Send(to_b, 0, 1000);
  EXPECT_TRUE(RunNet(
      net, {&A, &B}, [&] { return A.sends.size() == 1; }, 1'000'000));
  // From now on nothing reaches B.
  LinkConfig dead;
  dead.fault.blackhole_after_us = net.now();
  net.SetLink(net.address(a, 0), net.address(b, 0), dead);
  from_a.clear();
  for (int i = 1; i <= 4; ++i) A.Send(to_b, i, 1000);
  RunNet(
      net, {&A, &B}, [] { return false; }, 50);
  // The attacker read A's data packets (their ids, incarnations and PSNs) and acks them all.
  wire::Packet d;
  uint32_t max_psn = 0;
  bool have = false;
  auto be32 = [](const uint8_t* b) {
    return (uint32_t{b[0]} << 24) | (uint32_t{b[1]} << 16) | (uint32_t{b[2]} << 8) | b[3];
  };
  for (const auto& bytes : from_a) {
    if (bytes.size() < wire::kCommonLen || bytes[3] != static_cast<uint8_t>(wire::Type::kData)) {
      continue;
    }
    // The common header is in clear in every mode; the PSN too unless the payload is encrypted
    // (then the attacker covers the first 64 PSNs).
    wire::Packet p;
    const size_t inner = bytes.size() - (mode == KeyMode::kNone ? 0 : 32);
    const bool parsed = wire::Parse({bytes.data(), inner}, p) == wire::ParseError::kNone;
    d.common.dst_ctx = be32(&bytes[8]);
    d.common.src_ctx = be32(&bytes[12]);
    d.common.src_incarnation = be32(&bytes[16]);
    d.common.dst_incarnation = be32(&bytes[20]);
    max_psn = std::max(max_psn, parsed ? p.data.psn : 63u);
    have = true;
  }
  EXPECT_TRUE(have);
  wire::Common c;
  c.type = wire::Type::kAck;
  c.dst_ctx = d.common.src_ctx;
  c.src_ctx = d.common.dst_ctx;
  c.src_incarnation = d.common.dst_incarnation;
  c.dst_incarnation = d.common.src_incarnation;
  wire::AckExt ack;
  ack.cum_psn = max_psn + 1;
  std::vector<uint8_t> forged(256);
  forged.resize(wire::EncodeAck(c, ack, forged));
  if (mode != KeyMode::kNone) forged.resize(forged.size() + 32, 0);  // a tag it cannot make
  net.Inject(net.address(b, 0), net.address(a, 0), forged);
  RunNet(
      net, {&A, &B}, [&] { return A.sends.size() == 5; }, 1'000'000);
  ForgedAckRun r;
  for (size_t i = 1; i < A.sends.size(); ++i) (A.sends[i].status == Code::kOk ? r.ok : r.failed)++;
  r.auth_failed = A.ep().stats().auth_failed;
  r.delivered = B.recvs.size() - 1;
  return r;
}

TEST(Attack, ForgedAckCompletesUndeliveredSendsWithoutAKey) {
  const ForgedAckRun r = ForgedAck(KeyMode::kNone);
  EXPECT_EQ(r.delivered, 0u);
  EXPECT_GT(r.ok, 0u) << "documented weakness without a key (docs/SECURITY.md)";
}

TEST(Attack, ForgedAckIsRejectedWithTheClusterKey) {
  for (KeyMode mode : {KeyMode::kMac, KeyMode::kAead}) {
    const ForgedAckRun r = ForgedAck(mode);
    EXPECT_EQ(r.delivered, 0u) << KeyModeName(mode);
    EXPECT_EQ(r.ok, 0u) << KeyModeName(mode) << ": a forged ACK completed sends";
    EXPECT_EQ(r.failed, 4u) << KeyModeName(mode);
    EXPECT_GE(r.auth_failed, 1u) << KeyModeName(mode);
  }
}

// With a key, traffic between endpoints flows as before; an endpoint with another key (or none)
// cannot talk to them.
TEST(ClusterKey, TransfersWorkAndOtherKeysAreShutOut) {
  for (KeyMode mode : {KeyMode::kMac, KeyMode::kAead}) {
    Network net(44);
    EndpointConfig ca = Config(0xA, 1), cb = Config(0xB, 2), cc = Config(0xC, 3);
    ca.key_mode = cb.key_mode = cc.key_mode = mode;
    ca.cluster_key.fill(7);
    cb.cluster_key.fill(7);
    cc.cluster_key.fill(8);  // the wrong key
    HostId a = net.AddHost(kIpA, 1000, 2, ca);
    HostId b = net.AddHost(kIpB, 2000, 1, cb);
    HostId c = net.AddHost(kIpC, 3000, 1, cc);
    App A, B, C;
    A.Init(net, a);
    B.Init(net, b);
    C.Init(net, c);
    PeerId to_b = A.ep().AddPeer({{0, net.address(b, 0)}, {1, net.address(b, 0)}}, 0).value();
    PeerId c_to_b = C.ep().AddPeer({{0, net.address(b, 0)}}, 0).value();
    for (int i = 0; i < 20; ++i) A.Send(to_b, i, 50'000);
    C.Send(c_to_b, 99, 100);
    ASSERT_TRUE(RunNet(
        net, {&A, &B, &C}, [&] { return A.sends.size() == 20 && C.sends.size() == 1; }, 2'000'000))
        << KeyModeName(mode);
    EXPECT_EQ(A.Count(A.sends, Code::kOk), 20u) << KeyModeName(mode);
    EXPECT_EQ(C.sends[0].status, Code::kTimedOut) << KeyModeName(mode);
    EXPECT_GT(B.ep().stats().auth_failed, 0u) << KeyModeName(mode);
    for (size_t i = 0; i < B.recvs.size(); ++i) {
      EXPECT_GE(B.keys[i], 0) << KeyModeName(mode) << ": payload corrupted";
    }
  }
}

}  // namespace
}  // namespace opensrd::sim

namespace opensrd::sim {
namespace {

using namespace simtest;

// A RESET is answerable for contexts the sender no longer has, so its token derives from the
// context id and the incarnation alone. Context ids were reused within an incarnation: a RESET
// captured once (here provoked by replaying an old packet after the server reclaimed the
// context) carried the token of every later session that got the same id, and replaying it tore
// down the client's new session.
TEST(Attack, ReplayedResetOfAReclaimedContextSparesTheNextSession) {
  EndpointConfig ca = Config(0xA, 1), cb = Config(0xB, 2);
  ca.idle_timeout_us = cb.idle_timeout_us = 100'000;
  Network net(44);
  HostId a = net.AddHost(kIpA, 1000, 1, ca);
  HostId b = net.AddHost(kIpB, 2000, 1, cb);
  App A, B;
  A.Init(net, a);
  B.Init(net, b);
  std::vector<std::vector<uint8_t>> from_a, from_b;
  net.tap = [&](const NetAddr& from, const NetAddr&, std::span<const uint8_t> bytes) {
    (from.ip == kIpA ? from_a : from_b).emplace_back(bytes.begin(), bytes.end());
  };
  const PeerId to_b = A.ep().AddPeer({{0, net.address(b, 0)}}, 0).value();
  auto last = [](const std::vector<std::vector<uint8_t>>& v, wire::Type type) {
    for (auto it = v.rbegin(); it != v.rend(); ++it) {
      wire::Packet p;
      if (wire::Parse(*it, p) == wire::ParseError::kNone && p.common.type == type) return *it;
    }
    return std::vector<uint8_t>{};
  };
  A.Send(to_b, 0, 1000);
  ASSERT_TRUE(RunNet(
      net, {&A, &B}, [&] { return A.sends.size() == 1; }, 1'000'000));
  const std::vector<uint8_t> old_data = last(from_a, wire::Type::kData);
  ASSERT_FALSE(old_data.empty());
  // Quiet: B reclaims its context. The attacker replays A's old packet; B answers with a RESET.
  RunNet(
      net, {&A, &B}, [] { return false; }, 300'000);
  ASSERT_EQ(B.ep().stats().contexts_reclaimed, 1u);
  net.Inject(net.address(a, 0), net.address(b, 0), old_data);
  RunNet(
      net, {&A, &B}, [] { return false; }, 1'000);
  const std::vector<uint8_t> reset = last(from_b, wire::Type::kReset);
  ASSERT_FALSE(reset.empty()) << "B did not answer the stale packet";
  // A comes back: a new session, and B's new context.
  A.Send(to_b, 1, 1000);
  ASSERT_TRUE(RunNet(
      net, {&A, &B}, [&] { return A.sends.size() == 2; }, 1'000'000));
  // The captured RESET, replayed into the new session while messages are in flight.
  const uint64_t forged_before = A.ep().stats().forged_dropped;
  for (int i = 0; i < 8; ++i) A.Send(to_b, 10 + i, 64 * 1024);
  net.Inject(net.address(b, 0), net.address(a, 0), reset);
  ASSERT_TRUE(RunNet(
      net, {&A, &B}, [&] { return A.sends.size() == 10; }, 2'000'000));
  EXPECT_EQ(A.Count(A.sends, Code::kOk), 10u) << "the replayed RESET failed messages";
  EXPECT_GT(A.ep().stats().forged_dropped, forged_before);
}

}  // namespace
}  // namespace opensrd::sim
