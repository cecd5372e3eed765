// Regression tests for the lifecycle defects of issue 12 (numbered as there). Each was written
// against the code before its fix and failed there; the commit that fixed it says how.
#include <gtest/gtest.h>

#include <algorithm>
#include <map>
#include <vector>

#include "common/pattern.h"
#include "sim/network.h"
#include "sim/test_app.h"
#include "transport/wire.h"

namespace opensrd::sim {
namespace {

using namespace simtest;

// ---- Defect 1: in-order SQs after a reconnect, and one in-order SQ toward two peers.

TEST(Defect1, InOrderSqSurvivesIdleReconnect) {
  Network net(11);
  EndpointConfig ca = Config(0xA, 1), cb = Config(0xB, 2);
  ca.idle_timeout_us = cb.idle_timeout_us = 100'000;
  HostId a = net.AddHost(kIpA, 1000, 2, ca);
  HostId b = net.AddHost(kIpB, 2000, 1, cb);
  App A, B;
  A.Init(net, a, {.in_order = true});
  B.Init(net, b);
  PeerId peer =
      A.ep().AddPeer({{0, net.address(b, 0)}, {1, net.address(b, 0)}}, net.now_ns()).value();
  for (int i = 0; i < 5; ++i) A.Send(peer, i, 3000);
  ASSERT_TRUE(RunNet(
      net, {&A, &B}, [&] { return B.recvs.size() == 5; }, 1'000'000));
  // Quiet for longer than half the idle timeout: A reconnects before its next message (and B
  // reclaims its context after the full timeout).
  RunNet(
      net, {&A, &B}, [] { return false; }, 300'000);
  for (int i = 5; i < 10; ++i) A.Send(peer, i, 3000);
  ASSERT_TRUE(RunNet(
      net, {&A, &B}, [&] { return B.recvs.size() == 10; }, 2'000'000))
      << "in-order messages after a reconnect were not delivered: " << B.recvs.size();
  for (size_t i = 0; i < B.recvs.size(); ++i) {
    EXPECT_EQ(B.recvs[i].status, Code::kOk);
    EXPECT_EQ(B.keys[i], static_cast<int64_t>(i)) << "message " << i << " out of order";
  }
}

TEST(Defect1, OneInOrderSqTowardTwoPeers) {
  Network net(12);
  HostId a = net.AddHost(kIpA, 1000, 1, Config(0xA, 1));
  HostId b = net.AddHost(kIpB, 2000, 1, Config(0xB, 2));
  HostId c = net.AddHost(kIpC, 3000, 1, Config(0xC, 3));
  App A, B, C;
  A.Init(net, a, {.in_order = true});
  B.Init(net, b);
  C.Init(net, c);
  PeerId to_b = A.ep().AddPeer({{0, net.address(b, 0)}}, net.now_ns()).value();
  PeerId to_c = A.ep().AddPeer({{0, net.address(c, 0)}}, net.now_ns()).value();
  for (int i = 0; i < 10; ++i) A.Send(i % 2 ? to_c : to_b, i, 2000);
  ASSERT_TRUE(RunNet(
      net, {&A, &B, &C}, [&] { return B.recvs.size() == 5 && C.recvs.size() == 5; }, 1'000'000))
      << "B got " << B.recvs.size() << ", C got " << C.recvs.size();
  for (size_t i = 0; i < 5; ++i) {
    EXPECT_EQ(B.keys[i], static_cast<int64_t>(2 * i));
    EXPECT_EQ(C.keys[i], static_cast<int64_t>(2 * i + 1));
  }
}

// ---- Defect 2: after the dead-peer timeout, late packets of the old session must not be
// delivered again.

TEST(Defect2, LatePacketsAfterDeadPeerTimeoutAreNotDeliveredTwice) {
  Network net(13);
  EndpointConfig ca = Config(0xA, 1);
  EndpointConfig cb = Config(0xB, 2);
  cb.peer_timeout_us = 2'000'000;  // B keeps retrying long after A gave up
  HostId a = net.AddHost(kIpA, 1000, 1, ca);
  HostId b = net.AddHost(kIpB, 2000, 1, cb);
  App A, B;
  A.Init(net, a);
  B.Init(net, b);
  PeerId to_b = A.ep().AddPeer({{0, net.address(b, 0)}}, net.now_ns()).value();
  // Handshake, then A -> B dies at 1 ms (A's acks are lost) and B -> A at 3 ms, both for 200 ms.
  A.Send(to_b, 100, 100);
  ASSERT_TRUE(RunNet(
      net, {&A, &B}, [&] { return A.sends.size() == 1; }, 100'000));
  const Micros t0 = net.now();
  LinkConfig ab, ba;
  ab.fault.blackhole_after_us = t0 + 1'000;
  ab.fault.blackhole_for_us = 200'000;
  ba.fault.blackhole_after_us = t0 + 3'000;
  ba.fault.blackhole_for_us = 200'000;
  net.SetLink(net.address(a, 0), net.address(b, 0), ab);
  net.SetLink(net.address(b, 0), net.address(a, 0), ba);
  RunNet(
      net, {&A, &B}, [] { return false; }, t0 + 1'500 - net.now());
  ASSERT_EQ(B.recvs.size(), 1u);
  const PeerId to_a = B.recvs[0].peer;
  B.Send(to_a, 7, 100);  // reaches A; A's ack is lost
  A.Send(to_b, 8, 100);  // never reaches B: A times out after 50 ms of silence
  ASSERT_TRUE(RunNet(
      net, {&A, &B}, [&] { return A.recvs.size() == 1; }, 10'000));
  ASSERT_TRUE(RunNet(
      net, {&A, &B}, [&] { return A.sends.size() == 2; }, 200'000));
  EXPECT_EQ(A.sends[1].status, Code::kTimedOut);
  // Links heal at ~201 ms; B's retransmission of message 7 reaches A's reset context.
  RunNet(
      net, {&A, &B}, [] { return false; }, 400'000);
  EXPECT_EQ(A.recvs.size(), 1u) << "message 7 was delivered " << A.recvs.size() << " times";
  ASSERT_EQ(B.sends.size(), 1u) << "B's message must complete (ok or failed), not hang";
  // A no longer talks to B's old session: B's message fails rather than looping on NACKs.
  EXPECT_EQ(B.sends[0].status, Code::kPeerRestarted);
}

// ---- Defect 3: a sender that dies mid-message must not pin the receiver's buffers forever.

TEST(Defect3, HalfReceivedMessagesOfADeadSenderReturnTheirBuffers) {
  Network net(14);
  HostId a = net.AddHost(kIpA, 1000, 1, Config(0xA, 1));
  HostId b = net.AddHost(kIpB, 2000, 1, Config(0xB, 2));
  App A, B;
  A.Init(net, a);
  B.Init(net, b, {}, 8);
  PeerId to_b = A.ep().AddPeer({{0, net.address(b, 0)}}, net.now_ns()).value();
  LinkConfig dead;
  dead.fault.blackhole_after_us = 200;  // A's host falls silent mid-transfer, for good
  net.SetLink(net.address(a, 0), net.address(b, 0), dead);
  for (int i = 0; i < 8; ++i) A.Send(to_b, i, 64 * 1024);
  RunNet(
      net, {&A, &B}, [] { return false; }, 200'000);
  EXPECT_GT(B.Count(B.recvs, Code::kTimedOut), 0u)
      << "no partly received message gave its buffer back";
  EXPECT_EQ(B.Count(B.recvs, Code::kTimedOut) + B.Count(B.recvs, Code::kOk), B.recvs.size());
}

// ---- Defect 4: data on a path id the receiver cannot answer on must not make it spin.

TEST(Defect4, PathCountsThatDifferDoNotSpin) {
  Network net(15);
  HostId a = net.AddHost(kIpA, 1000, 4, Config(0xA, 1));
  HostId b = net.AddHost(kIpB, 2000, 2, Config(0xB, 2));
  App A, B;
  A.Init(net, a);
  B.Init(net, b);
  std::vector<PathSpec> a_paths, b_paths;
  for (uint16_t i = 0; i < 4; ++i) a_paths.push_back({i, net.address(b, 0)});
  for (uint16_t i = 0; i < 2; ++i) b_paths.push_back({i, net.address(a, i)});
  PeerId to_b = A.ep().AddPeer(a_paths, net.now_ns()).value();
  PeerId to_a = B.ep().AddPeer(b_paths, net.now_ns()).value();
  for (int i = 0; i < 20; ++i) A.Send(to_b, i, 20'000);
  for (int i = 0; i < 20; ++i) B.Send(to_a, 100 + i, 20'000);
  ASSERT_TRUE(RunNet(
      net, {&A, &B},
      [&] { return A.sends.size() == 20 && B.sends.size() == 20 && A.recvs.size() == 20; },
      2'000'000));
  EXPECT_EQ(A.Count(A.sends, Code::kOk), 20u);
  EXPECT_EQ(B.Count(B.sends, Code::kOk), 20u);
  ASSERT_TRUE(RunNet(
      net, {&A, &B}, [&] { return B.recvs.size() == 20; }, 1'000'000));
  // Nothing left to do: neither side may keep a deadline in the past (an ack it cannot send).
  EXPECT_TRUE(RunNet(
                  net, {&A, &B}, [] { return false; }, 100'000) ||
              true);
}

// ---- Defect 5: see EndpointAcks.ManyRangesFitTheSmallestBuffer in src/transport/endpoint_test.cc
// (it needs exact control over which packets arrive).

// ---- Defect 6: a replayed or delayed HELLO of an older generation must not reset anything.

TEST(Defect6, OldGenerationHelloDoesNotResetTheContext) {
  Network net(17);
  HostId a = net.AddHost(kIpA, 1000, 1, Config(0xA, 1));
  HostId b = net.AddHost(kIpB, 2000, 1, Config(0xB, 2));
  App A, B;
  A.Init(net, a);
  B.Init(net, b);
  // Capture A's first HELLO as it leaves (an attacker on the path, or a delayed copy).
  PeerId to_b = A.ep().AddPeer({{0, net.address(b, 0)}}, net.now_ns()).value();
  std::vector<uint8_t> buf(2048), hello;
  Transmit t;
  ASSERT_TRUE(A.ep().PollTransmit(net.now_ns(), buf, t));
  hello.assign(buf.begin(), buf.begin() + static_cast<long>(t.len));
  net.endpoint(b).HandleDatagram(net.now_ns(), 0, net.address(a, 0), hello);
  net.Kick(b);
  // Let the handshake finish and A's context die and reconnect (new generation).
  LinkConfig dead;
  dead.fault.blackhole_after_us = 1'000;
  dead.fault.blackhole_for_us = 60'000;
  net.SetPath(net.address(a, 0), net.address(b, 0), dead);
  RunNet(
      net, {&A, &B}, [] { return false; }, 2'000);
  A.Send(to_b, 1, 100);
  ASSERT_TRUE(RunNet(
      net, {&A, &B}, [&] { return A.sends.size() == 1; }, 200'000));
  EXPECT_EQ(A.sends[0].status, Code::kTimedOut);
  RunNet(
      net, {&A, &B}, [] { return false; }, 60'000);
  A.Send(to_b, 2, 100);  // reconnects with generation 2
  ASSERT_TRUE(RunNet(
      net, {&A, &B}, [&] { return A.sends.size() == 2; }, 200'000));
  EXPECT_EQ(A.sends[1].status, Code::kOk);
  // Now the old HELLO arrives again, with messages in flight.
  for (int i = 0; i < 20; ++i) A.Send(to_b, 10 + i, 30'000);
  RunNet(
      net, {&A, &B}, [] { return false; }, 30);
  const uint64_t restarts = B.ep().stats().peer_restarts;
  net.endpoint(b).HandleDatagram(net.now_ns(), 0, net.address(a, 0), hello);
  net.Kick(b);
  ASSERT_TRUE(RunNet(
      net, {&A, &B}, [&] { return A.sends.size() == 22; }, 1'000'000));
  EXPECT_EQ(A.Count(A.sends, Code::kOk), 21u) << "the replayed HELLO failed messages";
  // What A saw acknowledged, B delivered: message 2 and the 20 sent around the replay.
  EXPECT_TRUE(RunNet(
      net, {&A, &B}, [&] { return B.recvs.size() == 21; }, 1'000'000))
      << "B delivered " << B.recvs.size() << " of 21 messages that A saw acknowledged";
  EXPECT_EQ(B.Count(B.recvs, Code::kOk), B.recvs.size());
  EXPECT_EQ(B.ep().stats().peer_restarts, restarts);
}

// ---- Defect 7: an SQ keeps its context while the peer's context list changes. A opens three
// contexts toward B; B answers from SQ 2, which must stay on one context even when B reclaims
// another, idle one mid-stream (before: the SQ moved and its messages overtook each other).

TEST(Defect7, SqKeepsItsContextWhenAnotherIsReclaimed) {
  Network net(18);
  LinkConfig slow;
  slow.gbps = 0.05;  // a 64 KiB message takes ~10 ms: messages overlap the reclaim
  net.default_link = slow;
  EndpointConfig ca = Config(0xA, 1), cb = Config(0xB, 2);
  ca.contexts_per_peer = 3;
  ca.idle_timeout_us = cb.idle_timeout_us = 100'000;
  ca.peer_timeout_us = cb.peer_timeout_us = 1'000'000;
  HostId a = net.AddHost(kIpA, 1000, 1, ca);
  HostId b = net.AddHost(kIpB, 2000, 1, cb);
  App A, B;
  A.Init(net, a);
  B.Init(net, b);
  (void)B.ep().CreateSendQueue({.cq = B.cq, .in_order = true});
  const SqId sq2 = B.ep().CreateSendQueue({.cq = B.cq, .in_order = true}).value();
  B.sq = sq2;
  (void)A.ep().AddPeer({{0, net.address(b, 0)}}, net.now_ns()).value();
  net.Kick(a);
  RunNet(
      net, {&A, &B}, [] { return false; }, 50'000);
  ASSERT_EQ(B.ep().peers().size(), 1u);
  ASSERT_EQ(B.ep().stats().contexts_live, 3u);
  const PeerId to_a = B.ep().peers()[0];
  // Keep SQ 2's context busy across the moment B reclaims an idle one.
  for (int i = 0; i < 4; ++i) B.Send(to_a, i, 64 * 1024);
  ASSERT_TRUE(RunNet(
      net, {&A, &B}, [&] { return B.ep().stats().contexts_reclaimed > 0; }, 200'000));
  for (int i = 4; i < 8; ++i) B.Send(to_a, i, 64 * 1024);
  ASSERT_TRUE(RunNet(
      net, {&A, &B}, [&] { return A.recvs.size() == 8; }, 2'000'000))
      << "A got " << A.recvs.size();
  for (size_t i = 0; i < 8; ++i) {
    EXPECT_EQ(A.recvs[i].status, Code::kOk);
    EXPECT_EQ(A.keys[i], static_cast<int64_t>(i))
        << "message " << i << " of the in-order SQ was overtaken";
  }
}

// ---- Defect 8: default configurations draw distinct identities.

TEST(Defect8, DefaultEndpointsHaveDistinctIdentities) {
  Endpoint x(EndpointConfig{}), y(EndpointConfig{});
  EXPECT_NE(x.config().node_id, y.config().node_id);
  EXPECT_NE(x.incarnation(), y.incarnation());
}

// ---- Defect 9: the peer timeout measures progress; window, payload and paths are negotiated.

TEST(Defect9, EndlessReceiverNotReadyFailsAfterThePeerTimeout) {
  Network net(19);
  HostId a = net.AddHost(kIpA, 1000, 1, Config(0xA, 1));
  HostId b = net.AddHost(kIpB, 2000, 1, Config(0xB, 2));
  App A, B;
  A.Init(net, a);
  B.Init(net, b, {}, 0);  // B never posts a receive buffer
  PeerId to_b = A.ep().AddPeer({{0, net.address(b, 0)}}, net.now_ns()).value();
  A.Send(to_b, 1, 100);
  ASSERT_TRUE(RunNet(
      net, {&A, &B}, [&] { return A.sends.size() == 1; }, 1'000'000))
      << "a message refused forever (RNR) never failed";
  EXPECT_NE(A.sends[0].status, Code::kOk);
  EXPECT_LE(net.now(), 50'000u + 5'000u);
}

TEST(Defect9, SmallerReceiveWindowIsNegotiated) {
  Network net(20);
  EndpointConfig ca = Config(0xA, 1), cb = Config(0xB, 2);
  ca.window_packets = 8192;
  cb.window_packets = 64;
  ca.initial_cwnd_packets = 1024;
  net.default_link.latency_us = 500;   // a long pipe: A would fill far more than 64 packets
  net.default_link.fault.loss = 0.01;  // and holes keep B's cumulative point behind
  HostId a = net.AddHost(kIpA, 1000, 2, ca);
  HostId b = net.AddHost(kIpB, 2000, 1, cb);
  App A, B;
  A.Init(net, a);
  B.Init(net, b, {}, 64, 256 * 1024);
  PeerId to_b =
      A.ep().AddPeer({{0, net.address(b, 0)}, {1, net.address(b, 0)}}, net.now_ns()).value();
  for (int i = 0; i < 16; ++i) A.Send(to_b, i, 256 * 1024);
  ASSERT_TRUE(RunNet(
      net, {&A, &B}, [&] { return A.sends.size() == 16; }, 5'000'000));
  EXPECT_EQ(A.Count(A.sends, Code::kOk), 16u);
  EXPECT_EQ(B.ep().stats().out_of_window_dropped, 0u);
}

TEST(Defect9, SmallerMaxPayloadIsNegotiated) {
  Network net(21);
  EndpointConfig ca = Config(0xA, 1), cb = Config(0xB, 2);
  ca.max_payload = 8192;
  cb.max_payload = 1400;
  HostId a = net.AddHost(kIpA, 1000, 1, ca);
  HostId b = net.AddHost(kIpB, 2000, 1, cb);
  App A, B;
  A.Init(net, a);
  B.Init(net, b);
  PeerId to_b = A.ep().AddPeer({{0, net.address(b, 0)}}, net.now_ns()).value();
  A.Send(to_b, 1, 64 * 1024);
  ASSERT_TRUE(RunNet(
      net, {&A, &B}, [&] { return B.recvs.size() == 1; }, 1'000'000));
  EXPECT_EQ(B.recvs[0].status, Code::kOk);
  // 64 KiB in packets of at most 1400 bytes: at least 47 data packets.
  EXPECT_GE(A.ep().stats().data_packets_sent, (64u * 1024 + 1399) / 1400);
}

}  // namespace
}  // namespace opensrd::sim

namespace opensrd::sim {
namespace {

// A ping-pong of `size`-byte messages from A (4 paths) to B and back, as `perf client --mode lat`
// runs it. Returns round-trip times; `on_round` sees the network after each round.
struct PingPongResult {
  std::vector<Micros> rtts;
  EndpointStats a, b;
  std::vector<PathStats> paths;
  Micros first_loss_at = kNever;  // on path 3
  Micros suspect_at = kNever;     // path 3 marked suspect
  Micros srtt_at_first_loss = 0;  // path 0's srtt then (the fabric's RTT estimate)
};

PingPongResult PingPong(uint64_t seed, uint32_t size, int rounds, const LinkConfig& path3,
                        const LinkConfig& others = LinkConfig{.latency_us = 5}) {
  Network net(seed);
  net.default_link = others;
  HostId a = net.AddHost(kIpA, 1000, 4, Config(0xA, 1));
  HostId b = net.AddHost(kIpB, 2000, 1, Config(0xB, 2));
  net.SetPath(net.address(a, 3), net.address(b, 0), path3);
  App A, B;
  A.Init(net, a, {}, 4, size);
  B.Init(net, b, {}, 4, size);
  std::vector<PathSpec> paths;
  for (uint16_t i = 0; i < 4; ++i) paths.push_back({i, net.address(b, 0)});
  PeerId to_b = A.ep().AddPeer(paths, net.now_ns()).value();
  PingPongResult r;
  size_t answered = 0;
  for (int i = 0; i < rounds; ++i) {
    const Micros start = net.now();
    A.Send(to_b, i % 200, size);
    EXPECT_TRUE(RunNet(
        net, {&A, &B}, [&] { return B.recvs.size() > static_cast<size_t>(i); }, 1'000'000));
    B.Send(B.recvs.back().peer, i % 200, size);
    EXPECT_TRUE(RunNet(
        net, {&A, &B}, [&] { return A.recvs.size() > answered; }, 1'000'000));
    ++answered;
    r.rtts.push_back(net.now() - start);
    const std::vector<PathStats> ps = A.ep().path_stats(to_b);
    if (r.first_loss_at == kNever && ps[3].lost > 0) {
      r.first_loss_at = net.now();
      r.srtt_at_first_loss = ps[0].srtt_us;
    }
    if (r.suspect_at == kNever && ps[3].state == PathState::kSuspect) r.suspect_at = net.now();
  }
  r.a = A.ep().stats();
  r.b = B.ep().stats();
  r.paths = A.ep().path_stats(to_b);
  return r;
}

Micros P99(std::vector<Micros> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() * 99 / 100];
}

// ---- Defect 10: a path that never delivers anything (blackholed from the start) is found out
// as fast as one that dies mid-run, in request/response traffic where tail-loss probes rescue
// every lost packet (so no RTO ever fires on it).

TEST(Defect10, PathDeadFromTheStartIsMarkedSuspectQuickly) {
  const PingPongResult clean = PingPong(30, 4096, 2000, LinkConfig{.latency_us = 5});
  LinkConfig dead{.latency_us = 5};
  dead.fault.blackhole_after_us = 0;
  const PingPongResult r = PingPong(30, 4096, 2000, dead);
  std::printf(
      "blackholed path 3: p99 %lu us (lossless %lu us), path 3 %s, sent %lu lost %lu; "
      "first loss at %lu us, suspect at %lu us, srtt %lu us\n",
      (unsigned long)P99(r.rtts), (unsigned long)P99(clean.rtts), PathStateName(r.paths[3].state),
      (unsigned long)r.paths[3].sent, (unsigned long)r.paths[3].lost,
      (unsigned long)r.first_loss_at, (unsigned long)r.suspect_at,
      (unsigned long)r.srtt_at_first_loss);
  EXPECT_EQ(r.paths[3].state, PathState::kSuspect);
  ASSERT_NE(r.suspect_at, kNever);
  // Within 10 RTT estimates of the first loss (rounds are observed one round trip apart).
  EXPECT_LE(r.suspect_at - r.first_loss_at, 10 * r.srtt_at_first_loss + P99(clean.rtts));
  EXPECT_LE(P99(r.rtts), 3 * P99(clean.rtts));
}

// ---- Defect 11: spurious retransmissions. The receiver counts exactly the copies that arrive
// twice (no duplication is injected here), so spurious = its duplicates_dropped.

// A real host's scheduling noise: most packets on time, 2% held up 100 us (a descheduled
// receiver on a busy 2-core machine).
LinkConfig Noisy() {
  LinkConfig l{.latency_us = 5};
  l.fault.jitter_us = 2;
  l.fault.reorder = 0.02;
  l.fault.reorder_us = 100;
  return l;
}

TEST(Defect11, LosslessPingPongRetransmitsAlmostNothing) {
  const PingPongResult r = PingPong(31, 64, 5000, Noisy(), Noisy());
  const uint64_t sent = r.a.data_packets_sent + r.b.data_packets_sent;
  const uint64_t spurious = r.a.duplicates_dropped + r.b.duplicates_dropped;
  std::printf("lossless ping-pong: %lu data packets, %lu retransmits, %lu spurious (%.3f%%)\n",
              (unsigned long)sent, (unsigned long)(r.a.retransmits + r.b.retransmits),
              (unsigned long)spurious, 100.0 * static_cast<double>(spurious) / sent);
  EXPECT_LT(static_cast<double>(spurious), 0.01 * static_cast<double>(sent));
}

TEST(Defect11, CleanPathsDoNotLoseWhenOnePathDies) {
  LinkConfig dies = Noisy();
  dies.fault.blackhole_after_us = 20'000;
  const PingPongResult r = PingPong(32, 4096, 4000, dies, Noisy());
  uint64_t clean_lost = 0;
  for (int i = 0; i < 3; ++i) clean_lost += r.paths[i].lost;
  const uint64_t sent = r.a.data_packets_sent + r.b.data_packets_sent;
  const uint64_t spurious = r.a.duplicates_dropped + r.b.duplicates_dropped;
  std::printf("path 3 dies: clean paths 'lost' %lu, spurious %lu of %lu data packets (%.3f%%)\n",
              (unsigned long)clean_lost, (unsigned long)spurious, (unsigned long)sent,
              100.0 * static_cast<double>(spurious) / sent);
  EXPECT_LT(static_cast<double>(spurious), 0.01 * static_cast<double>(sent));
  EXPECT_LT(static_cast<double>(clean_lost), 0.01 * static_cast<double>(sent));
}

// ---- Path flapping: every path of a peer going quiet at once (the peer stalled: a busy
// storage bridge acking late made every path's packets time out together on loopback) is not a
// path failure. Before the fix the paths were marked suspect in such a stall (and under storage
// load they flapped hundreds of times a second); now none is, while a path that dies alone is
// still found (Defect10 above, and the second half here).

uint64_t SuspectEventsInBatches(uint64_t seed, const LinkConfig& all, const LinkConfig& path3) {
  Network net(seed);
  net.default_link = all;
  HostId a = net.AddHost(kIpA, 1000, 4, Config(0xA, 1));
  HostId b = net.AddHost(kIpB, 2000, 1, Config(0xB, 2));
  net.SetPath(net.address(a, 3), net.address(b, 0), path3);
  App A, B;
  A.Init(net, a, {}, 64, 4096);
  B.Init(net, b, {}, 64, 4096);
  std::vector<PathSpec> paths;
  for (uint16_t i = 0; i < 4; ++i) paths.push_back({i, net.address(b, 0)});
  PeerId to_b = A.ep().AddPeer(paths, net.now_ns()).value();
  // Batches of 32 messages in flight (a storage queue depth), 60 ms in all.
  for (size_t n = 0; net.now() < 60'000;) {
    for (int i = 0; i < 32; ++i) A.Send(to_b, n++ % 200, 4096);
    EXPECT_TRUE(RunNet(
        net, {&A, &B}, [&] { return B.recvs.size() == n; }, 1'000'000));
  }
  uint64_t suspect = 0;
  for (const PathStats& p : A.ep().path_stats(to_b)) suspect += p.suspect_events;
  return suspect;
}

TEST(PathFlapping, AStallOnEveryPathMarksNoPathSuspect) {
  LinkConfig stall{.latency_us = 5};
  stall.fault.blackhole_after_us = 20'000;  // every path, both directions, for 3 ms
  stall.fault.blackhole_for_us = 3'000;
  EXPECT_EQ(SuspectEventsInBatches(35, stall, stall), 0u);
  // The same traffic with path 3 dying alone: it is still marked suspect.
  LinkConfig clean{.latency_us = 5};
  LinkConfig dies{.latency_us = 5};
  dies.fault.blackhole_after_us = 20'000;
  EXPECT_GE(SuspectEventsInBatches(35, clean, dies), 1u);
}

TEST(Defect11, SpuriousRetransmitsStayUnderTwiceTheInjectedLoss) {
  LinkConfig lossy = Noisy();
  lossy.fault.loss = 0.05;
  const PingPongResult r = PingPong(33, 4096, 4000, lossy, Noisy());
  const uint64_t sent = r.a.data_packets_sent + r.b.data_packets_sent;
  const uint64_t spurious = r.a.duplicates_dropped + r.b.duplicates_dropped;
  std::printf("5%% loss on path 3: spurious %lu of %lu data packets (%.3f%%)\n",
              (unsigned long)spurious, (unsigned long)sent,
              100.0 * static_cast<double>(spurious) / sent);
  // Path 3 carries at most a quarter of the packets: the injected loss rate overall is <= 1.25%.
  EXPECT_LT(static_cast<double>(spurious), 2 * 0.05 * 0.25 * static_cast<double>(sent));
}

}  // namespace
}  // namespace opensrd::sim

namespace opensrd::sim {
namespace {

using namespace simtest;

// Limits (issue 12): the queueing delay the congestion control allows scales with the path's
// base RTT. On a 14 us fabric a fixed 100 us target let a single flow keep ~7 RTTs of queue in
// the bottleneck (median srtt 111 us against a 15 us base, before); the scaled target keeps it
// to about the base RTT.
TEST(Limits, QueueingDelayTargetScalesWithBaseRtt) {
  Network net(50);
  LinkConfig fabric;
  fabric.latency_us = 7;
  fabric.gbps = 10;
  fabric.queue_limit_us = 1000;
  net.default_link = fabric;
  EndpointConfig ca = Config(0xA, 1);
  ca.min_target_delay_us = 5;  // a fabric: no host scheduling delay in the RTT samples
  HostId a = net.AddHost(kIpA, 1000, 1, ca);
  HostId b = net.AddHost(kIpB, 2000, 1, Config(0xB, 2));
  App A, B;
  A.Init(net, a);
  B.Init(net, b, {}, 64, 256 * 1024);
  PeerId to_b = A.ep().AddPeer({{0, net.address(b, 0)}}, 0).value();
  for (int i = 0; i < 64; ++i) A.Send(to_b, i % 200, 256 * 1024);
  // Sample the path's smoothed RTT while the transfer runs (after the first few ms).
  std::vector<Micros> srtt;
  const bool done = RunNet(
      net, {&A, &B},
      [&] {
        if (net.now() > 2'000 && net.now() % 50 == 0) {
          srtt.push_back(A.ep().path_stats(to_b)[0].srtt_us);
        }
        return A.sends.size() == 64;
      },
      5'000'000);
  ASSERT_TRUE(done);
  ASSERT_FALSE(srtt.empty());
  std::sort(srtt.begin(), srtt.end());
  const Micros median = srtt[srtt.size() / 2];
  const Micros base = A.ep().path_stats(to_b)[0].min_rtt_us;
  const EndpointStats s = A.ep().stats();
  std::printf("14 us fabric: base RTT %lu us, median srtt %lu us under load; %.2f Gbit/s\n",
              (unsigned long)base, (unsigned long)median,
              64.0 * 256 * 1024 * 8 / static_cast<double>(net.now()) / 1000);
  EXPECT_LE(median, 3 * base) << "the queue holds more than twice the base RTT";
  EXPECT_EQ(s.retransmits, 0u);
}

}  // namespace
}  // namespace opensrd::sim

namespace opensrd::sim {
namespace {

using namespace simtest;

// Defect 3, second half: one peer must not be able to take the whole shared receive pool. A
// hostile (or broken) peer starts 16 large messages with one fragment each and sends nothing
// more: before, they took every posted buffer until the peer's timeout (2 s here) and every
// other peer was refused (receiver not ready) meanwhile.
TEST(Defect3, OnePeerCannotTakeTheWholeReceivePool) {
  Network net(52);
  EndpointConfig cs = Config(0x5, 1);
  cs.peer_timeout_us = 2'000'000;
  HostId server = net.AddHost(kIpB, 2000, 1, cs);
  HostId a = net.AddHost(kIpA, 1000, 1, Config(0xA, 2));
  HostId c = net.AddHost(kIpC, 3000, 1, Config(0xC, 3));
  App S, A, C;
  S.Init(net, server, {}, 16, 256 * 1024);
  A.Init(net, a);
  C.Init(net, c);
  std::vector<uint8_t> last_data;
  net.tap = [&](const NetAddr& from, const NetAddr&, std::span<const uint8_t> bytes) {
    if (from.ip == kIpA && bytes.size() > 3 && bytes[3] == 1)
      last_data.assign(bytes.begin(), bytes.end());
  };
  PeerId a_to_s = A.ep().AddPeer({{0, net.address(server, 0)}}, 0).value();
  PeerId c_to_s = C.ep().AddPeer({{0, net.address(server, 0)}}, 0).value();
  A.Send(a_to_s, 0, 1000);
  ASSERT_TRUE(RunNet(
      net, {&S, &A, &C}, [&] { return A.sends.size() == 1; }, 100'000));
  wire::Packet d;
  ASSERT_EQ(wire::Parse(last_data, d), wire::ParseError::kNone);
  // A's session, hostile from now on: 16 first fragments of 256 KiB messages, nothing after.
  for (uint32_t i = 0; i < 16; ++i) {
    wire::DataExt x = d.data;
    x.psn = d.data.psn + 1 + i;
    x.msg_id = 1000 + i;
    x.msg_len = 256 * 1024;
    x.offset = 0;
    x.payload_len = 64;
    x.sq_seq = 1000 + i;
    std::vector<uint8_t> payload(64, 1), buf(256);
    wire::Common cc = d.common;
    cc.flags = 0;
    buf.resize(wire::EncodeData(cc, x, payload, buf));
    net.Inject(net.address(a, 0), net.address(server, 0), buf);
  }
  // C now sends small messages: they must get buffers long before A's timeout.
  for (int i = 0; i < 20; ++i) C.Send(c_to_s, 100 + i, 1000);
  const bool served = RunNet(
      net, {&S, &A, &C}, [&] { return C.sends.size() == 20; }, 100'000);
  EXPECT_TRUE(served) << "C completed " << C.sends.size() << " of 20 while A's half messages "
                      << "held the receive buffers";
  EXPECT_EQ(C.Count(C.sends, Code::kOk), C.sends.size());
}

}  // namespace
}  // namespace opensrd::sim

namespace opensrd::sim {
namespace {

using namespace simtest;

// ---- Busy() must follow what is in flight. It became a counter of contexts with messages and
// was never decremented, so after the first send it stayed true for good and every UdpEndpoint
// spun forever instead of sleeping in epoll (found while wiring the DMA engine: a bridge idle
// under no load burned a core in sched_yield and recvmmsg).

TEST(BusyFollowsInFlight, FalseOnceEverySendCompleted) {
  Network net(50);
  HostId a = net.AddHost(kIpA, 1000, 1, Config(0xA, 1));
  HostId b = net.AddHost(kIpB, 2000, 1, Config(0xB, 2));
  HostId c = net.AddHost(kIpC, 3000, 1, Config(0xC, 3));
  App A, B, C;
  A.Init(net, a);
  B.Init(net, b);
  C.Init(net, c);
  EXPECT_FALSE(A.ep().Busy());
  PeerId to_b = A.ep().AddPeer({{0, net.address(b, 0)}}, net.now_ns()).value();
  PeerId to_c = A.ep().AddPeer({{0, net.address(c, 0)}}, net.now_ns()).value();
  for (int i = 0; i < 4; ++i) A.Send(i % 2 ? to_c : to_b, i, 3000);
  EXPECT_TRUE(A.ep().Busy());
  ASSERT_TRUE(RunNet(
      net, {&A, &B, &C}, [&] { return A.sends.size() == 4; }, 1'000'000));
  EXPECT_FALSE(A.ep().Busy()) << "all sends completed";
  // Again, and this time one peer dies with the message in flight: the failed send counts too.
  A.Send(to_b, 5, 3000);
  net.SetPath(net.address(a, 0), net.address(c, 0), LinkConfig{.fault = {.loss = 1.0}});
  A.Send(to_c, 6, 3000);
  ASSERT_TRUE(RunNet(
      net, {&A, &B, &C}, [&] { return A.sends.size() == 6; }, 5'000'000));
  EXPECT_NE(A.sends.back().status, Code::kOk);
  EXPECT_FALSE(A.ep().Busy()) << "the failed send is complete too";
}

}  // namespace
}  // namespace opensrd::sim
