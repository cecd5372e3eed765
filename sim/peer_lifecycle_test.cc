// Peer lifecycle in the simulator: restarts on either side are detected, a dead peer's work
// fails with a clear error after the configured timeout, and a peer that never answers does too.
#include <gtest/gtest.h>

#include <map>
#include <vector>

#include "common/pattern.h"
#include "sim/network.h"
#include "sim/test_app.h"

namespace opensrd::sim {
namespace {

using simtest::Config;
using simtest::kIpA;
using simtest::kIpB;

// Host A sends fixed-size messages to host B over 2 paths; B verifies and reposts buffers.
struct Pair {
  static constexpr uint32_t kSize = 64 * 1024;
  Network net{99};
  HostId a = 0, b = 0;
  PeerId peer = 0;
  SqId sq = 0;
  CqId cq_a = 0, cq_b = 0;
  std::vector<std::vector<uint8_t>> send_bufs, recv_bufs;
  std::vector<Completion> a_done, b_done;
  uint64_t next = 0;
  uint64_t bad_payloads = 0;

  Pair() {
    a = net.AddHost(kIpA, 1000, 2, Config(0xA, 1));
    b = net.AddHost(kIpB, 2000, 1, Config(0xB, 2));
    cq_a = net.endpoint(a).CreateCompletionQueue();
    sq = net.endpoint(a).CreateSendQueue({.cq = cq_a}).value();
    peer = net.endpoint(a)
               .AddPeer({{0, net.address(b, 0)}, {1, net.address(b, 0)}}, net.now_ns())
               .value();
    SetUpReceiver();
  }
  void SetUpReceiver() {
    Endpoint& eb = net.endpoint(b);
    cq_b = eb.CreateCompletionQueue();
    recv_bufs.assign(16, std::vector<uint8_t>(kSize));
    for (size_t i = 0; i < recv_bufs.size(); ++i) {
      ASSERT_TRUE(eb.PostRecv(cq_b, recv_bufs[i].data(), kSize, i).ok());
    }
  }
  void Post(int n) {
    for (int i = 0; i < n; ++i) {
      send_bufs.emplace_back(kSize);
      FillPattern(next, send_bufs.back().data(), kSize);
      Sge sge{send_bufs.back().data(), kSize};
      ASSERT_TRUE(net.endpoint(a).PostSend(sq, peer, {&sge, 1}, next, net.now_ns()).ok());
      ++next;
    }
    net.Kick(a);
  }
  void Poll() {
    Completion c[16];
    size_t n;
    while ((n = net.endpoint(a).PollCompletions(cq_a, c)) > 0)
      a_done.insert(a_done.end(), c, c + n);
    Endpoint& eb = net.endpoint(b);
    while ((n = eb.PollCompletions(cq_b, c)) > 0) {
      for (size_t k = 0; k < n; ++k) {
        b_done.push_back(c[k]);
        // Verify before the buffer is reposted (and overwritten by a later message).
        // sq_seq counts per session (it starts over after a restart), so the payload must
        // match one of the messages posted, not a particular one.
        if (c[k].status == Code::kOk) {
          bool matches = false;
          for (uint64_t key = 0; key < next && !matches; ++key) {
            matches = CheckPattern(key, static_cast<const uint8_t*>(c[k].buffer), kSize);
          }
          bad_payloads += c[k].length != kSize || !matches;
        }
        (void)eb.PostRecv(cq_b, recv_bufs[c[k].tag].data(), kSize, c[k].tag);
      }
    }
  }
  bool RunUntil(const std::function<bool()>& done, Micros limit) {
    return net.RunUntil(
        [&] {
          Poll();
          return done();
        },
        net.now() + limit);
  }
  size_t Count(const std::vector<Completion>& v, Code code) const {
    size_t n = 0;
    for (const auto& c : v) n += c.status == code;
    return n;
  }
};

TEST(PeerLifecycle, ReceiverRestartIsDetectedAndTrafficResumes) {
  Pair p;
  p.Post(40);
  ASSERT_TRUE(p.RunUntil([&] { return p.b_done.size() >= 10; }, 1'000'000));
  // B's process dies and comes back: same node and addresses, new incarnation, no state.
  const uint32_t old_inc = p.net.endpoint(p.b).incarnation();
  p.net.RestartHost(p.b, Config(0xB, 777));
  ASSERT_NE(p.net.endpoint(p.b).incarnation(), old_inc);
  p.b_done.clear();
  p.SetUpReceiver();
  ASSERT_TRUE(p.RunUntil([&] { return p.a_done.size() == 40; }, 1'000'000));
  EXPECT_GE(p.net.endpoint(p.a).stats().peer_restarts, 1u);
  const size_t failed = p.Count(p.a_done, Code::kPeerRestarted);
  EXPECT_GT(failed, 0u) << "in-flight messages must fail with PEER_RESTARTED";
  EXPECT_EQ(p.Count(p.a_done, Code::kOk) + failed, 40u);
  // New work reaches the new incarnation.
  p.a_done.clear();
  p.Post(20);
  ASSERT_TRUE(
      p.RunUntil([&] { return p.a_done.size() == 20 && p.b_done.size() >= 20; }, 1'000'000));
  EXPECT_EQ(p.Count(p.a_done, Code::kOk), 20u);
  for (const auto& c : p.b_done) {
    EXPECT_EQ(c.status, Code::kOk);
  }
  EXPECT_EQ(p.bad_payloads, 0u);
}

TEST(PeerLifecycle, SenderRestartIsDetectedByReceiver) {
  Pair p;
  p.Post(40);
  ASSERT_TRUE(p.RunUntil([&] { return p.b_done.size() >= 5; }, 1'000'000));
  // A restarts mid-transfer: B holds partly received messages from the old incarnation.
  p.net.RestartHost(p.a, Config(0xA, 555));
  p.cq_a = p.net.endpoint(p.a).CreateCompletionQueue();
  p.sq = p.net.endpoint(p.a).CreateSendQueue({.cq = p.cq_a}).value();
  p.peer = p.net.endpoint(p.a)
               .AddPeer({{0, p.net.address(p.b, 0)}, {1, p.net.address(p.b, 0)}}, p.net.now_ns())
               .value();
  p.a_done.clear();
  p.next = 0;
  p.send_bufs.clear();
  p.b_done.clear();
  p.Post(10);
  ASSERT_TRUE(p.RunUntil([&] { return p.a_done.size() == 10; }, 1'000'000));
  EXPECT_EQ(p.Count(p.a_done, Code::kOk), 10u);
  EXPECT_GE(p.net.endpoint(p.b).stats().peer_restarts, 1u);
  // Every buffer B had in use for the old incarnation came back (with an error) or finished.
  EXPECT_EQ(p.Count(p.b_done, Code::kOk), 10u);
  for (const auto& c : p.b_done) {
    if (c.status != Code::kOk) {
      EXPECT_EQ(c.status, Code::kPeerRestarted);
    }
  }
  EXPECT_EQ(p.bad_payloads, 0u);
}

TEST(PeerLifecycle, DeadPeerFailsWorkAfterTimeout) {
  Pair p;
  LinkConfig dead;
  dead.fault.blackhole_after_us = 300;  // both paths, both directions, from t = 0.3 ms
  p.net.SetPath(p.net.address(p.a, 0), p.net.address(p.b, 0), dead);
  p.net.SetPath(p.net.address(p.a, 1), p.net.address(p.b, 0), dead);
  p.Post(30);
  ASSERT_TRUE(p.RunUntil([&] { return p.a_done.size() == 30; }, 2'000'000));
  const size_t timed_out = p.Count(p.a_done, Code::kTimedOut);
  EXPECT_GT(timed_out, 0u);
  EXPECT_EQ(p.Count(p.a_done, Code::kOk) + timed_out, 30u);
  EXPECT_GE(p.net.endpoint(p.a).stats().peer_timeouts, 1u);
  // Bounded: the last packet heard was before 0.3 ms; timeout 50 ms (+ one timer tick).
  EXPECT_LE(p.net.now(), 300u + 50'000u + 1'000u);
}

TEST(PeerLifecycle, NobodyListeningFailsWithTimeout) {
  Network net(3);
  HostId a = net.AddHost(kIpA, 1000, 1, Config(0xA, 1));
  Endpoint& ea = net.endpoint(a);
  CqId cq = ea.CreateCompletionQueue();
  SqId sq = ea.CreateSendQueue({.cq = cq}).value();
  PeerId peer = ea.AddPeer({{0, NetAddr{0x0A0000FF, 9}}}, 0).value();
  uint8_t byte = 1;
  Sge sge{&byte, 1};
  ASSERT_TRUE(ea.PostSend(sq, peer, {&sge, 1}, 7, 0).ok());
  net.Kick(a);
  Completion c;
  ASSERT_TRUE(net.RunUntil([&] { return ea.PollCompletions(cq, {&c, 1}) == 1; }, 1'000'000));
  EXPECT_EQ(c.status, Code::kTimedOut);
  EXPECT_EQ(c.tag, 7u);
  EXPECT_LE(net.now(), 50'000u + 6'000u);
}

}  // namespace
}  // namespace opensrd::sim

namespace opensrd::sim {
namespace {

// Ping-pong of single-packet messages: each answer carries the ack of the request it answers
// (and each request the ack of the previous answer), so a round trip costs two datagrams and,
// with nothing lost, nothing is retransmitted.
TEST(PingPong, AcksRideOnAnswersAndNothingIsResent) {
  Network net(5);
  LinkConfig l;
  l.latency_us = 5;
  net.default_link = l;
  HostId a = net.AddHost(kIpA, 1000, 4, Config(0xA, 1));
  HostId b = net.AddHost(kIpB, 2000, 1, Config(0xB, 2));
  Endpoint& ea = net.endpoint(a);
  Endpoint& eb = net.endpoint(b);
  CqId cqa = ea.CreateCompletionQueue(), cqb = eb.CreateCompletionQueue();
  SqId sqa = ea.CreateSendQueue({.cq = cqa}).value();
  SqId sqb = eb.CreateSendQueue({.cq = cqb}).value();
  std::vector<PathSpec> paths;
  for (uint16_t i = 0; i < 4; ++i) paths.push_back({i, net.address(b, 0)});
  PeerId to_b = ea.AddPeer(paths, 0).value();
  uint8_t ra[64], rb[64], msg[64] = {1};
  ASSERT_TRUE(ea.PostRecv(cqa, ra, sizeof ra, 0).ok());
  ASSERT_TRUE(eb.PostRecv(cqb, rb, sizeof rb, 0).ok());
  Sge sge{msg, sizeof msg};
  constexpr int kRounds = 2000;
  int pongs = 0;
  ASSERT_TRUE(ea.PostSend(sqa, to_b, {&sge, 1}, 0, net.now_ns()).ok());
  net.Kick(a);
  const bool done = net.RunUntil(
      [&] {
        Completion c;
        while (eb.PollCompletions(cqb, {&c, 1}) == 1) {
          if (c.kind != CompletionKind::kRecv) continue;
          EXPECT_EQ(c.status, Code::kOk);
          (void)eb.PostRecv(cqb, rb, sizeof rb, 0);
          EXPECT_TRUE(eb.PostSend(sqb, c.peer, {&sge, 1}, 0, net.now_ns()).ok());  // pong
          net.Kick(b);
        }
        while (ea.PollCompletions(cqa, {&c, 1}) == 1) {
          if (c.kind != CompletionKind::kRecv) continue;
          (void)ea.PostRecv(cqa, ra, sizeof ra, 0);
          if (++pongs < kRounds) {
            EXPECT_TRUE(ea.PostSend(sqa, to_b, {&sge, 1}, 0, net.now_ns()).ok());  // next ping
            net.Kick(a);
          }
        }
        return pongs == kRounds;
      },
      10'000'000);
  ASSERT_TRUE(done);
  const EndpointStats sa = ea.stats(), sb = eb.stats();
  std::printf(
      "ping-pong: %d rounds in %lu us; A sent %lu datagrams (%lu piggybacked acks), "
      "B sent %lu; retransmits %lu/%lu, tail probes %lu/%lu\n",
      kRounds, (unsigned long)net.now(), (unsigned long)sa.datagrams_out,
      (unsigned long)sa.acks_piggybacked, (unsigned long)sb.datagrams_out,
      (unsigned long)sa.retransmits, (unsigned long)sb.retransmits, (unsigned long)sa.tail_probes,
      (unsigned long)sb.tail_probes);
  EXPECT_EQ(sa.retransmits + sb.retransmits, 0u);
  EXPECT_GT(sb.acks_piggybacked, kRounds * 9u / 10);
  EXPECT_LT(sa.datagrams_out + sb.datagrams_out, 2u * kRounds * 11 / 10);
}

}  // namespace
}  // namespace opensrd::sim

namespace opensrd::sim {
namespace {

// One server endpoint serving many simulated hosts at once: every host's messages arrive exactly
// once and intact, and the server keeps one peer (with its learned paths) per host. (Links are
// independent per socket pair: the simulator has no shared switch yet, so this is about state
// and correctness at scale, not about congestion.)
TEST(ManyHosts, ServerTakesMessagesFromManyPeersAtOnce) {
  constexpr int kHosts = 48;
  constexpr int kPerHost = 60;
  constexpr uint32_t kSize = 16 * 1024;
  Network net(8);
  HostId server = net.AddHost(0x0A00FFFE, 2000, 1, Config(0xFFFE, 99));
  Endpoint& se = net.endpoint(server);
  CqId scq = se.CreateCompletionQueue();
  std::vector<std::vector<uint8_t>> rbufs(64, std::vector<uint8_t>(kSize));
  for (size_t i = 0; i < rbufs.size(); ++i)
    ASSERT_TRUE(se.PostRecv(scq, rbufs[i].data(), kSize, i).ok());
  struct Client {
    HostId host;
    CqId cq;
    SqId sq;
    PeerId peer;
    int done = 0;
  };
  std::vector<Client> clients(kHosts);
  std::vector<std::vector<uint8_t>> payload(kHosts, std::vector<uint8_t>(kSize));
  for (int h = 0; h < kHosts; ++h) {
    Client& c = clients[h];
    c.host = net.AddHost(0x0A000100 + h, 1000, 2, Config(0x100 + h, 1000 + h));
    Endpoint& e = net.endpoint(c.host);
    c.cq = e.CreateCompletionQueue();
    c.sq = e.CreateSendQueue({.cq = c.cq}).value();
    c.peer = e.AddPeer({{0, net.address(server, 0)}, {1, net.address(server, 0)}}, 0).value();
    FillPattern(h, payload[h].data(), kSize);  // one pattern per host: a mix-up shows
    Sge sge{payload[h].data(), kSize};
    for (int m = 0; m < kPerHost; ++m) ASSERT_TRUE(e.PostSend(c.sq, c.peer, {&sge, 1}, m, 0).ok());
    net.Kick(c.host);
  }
  std::map<PeerId, int> per_peer;
  int received = 0, bad = 0, sent = 0;
  const bool ok = net.RunUntil(
      [&] {
        Completion d[32];
        size_t n;
        while ((n = se.PollCompletions(scq, d)) > 0) {
          for (size_t k = 0; k < n; ++k) {
            ++received;
            ++per_peer[d[k].peer];
            const uint8_t* b = static_cast<const uint8_t*>(d[k].buffer);
            // Which host sent it is not in the completion; its pattern says, and must match one.
            bool matches = false;
            for (int h = 0; h < kHosts && !matches; ++h) matches = CheckPattern(h, b, kSize);
            bad += d[k].status != Code::kOk || !matches;
            (void)se.PostRecv(scq, d[k].buffer, kSize, d[k].tag);
          }
        }
        for (Client& c : clients) {
          while ((n = net.endpoint(c.host).PollCompletions(c.cq, d)) > 0) {
            for (size_t k = 0; k < n; ++k) sent += d[k].status == Code::kOk;
          }
        }
        return received == kHosts * kPerHost && sent == kHosts * kPerHost;
      },
      5'000'000);
  ASSERT_TRUE(ok) << "received " << received << " sent " << sent;
  EXPECT_EQ(bad, 0);
  EXPECT_EQ(se.peers().size(), static_cast<size_t>(kHosts));
  ASSERT_EQ(per_peer.size(), static_cast<size_t>(kHosts));
  for (const auto& [peer, count] : per_peer) EXPECT_EQ(count, kPerHost) << "peer " << peer;
  std::printf("many hosts: %d hosts x %d messages in %lu us of simulated time, %lu events\n",
              kHosts, kPerHost, (unsigned long)net.now(), (unsigned long)net.events());
}

}  // namespace
}  // namespace opensrd::sim

namespace opensrd::sim {
namespace {

// A server forgets the contexts of clients that went quiet (their memory is freed), and a client
// that comes back after a long pause reconnects by itself: no message fails. (With the client's
// reconnect disabled, idle_timeout_us = 0 on A, the message after the pause fails instead.)
TEST(IdleContexts, ServerReclaimsAndQuietClientReconnectsCleanly) {
  EndpointConfig cfg = Config(0xA, 1);
  cfg.idle_timeout_us = 100'000;
  Network net(4);
  HostId a = net.AddHost(kIpA, 1000, 2, cfg);
  EndpointConfig scfg = Config(0xB, 2);
  scfg.idle_timeout_us = 100'000;
  HostId b = net.AddHost(kIpB, 2000, 1, scfg);
  Endpoint& ea = net.endpoint(a);
  Endpoint& eb = net.endpoint(b);
  CqId cqa = ea.CreateCompletionQueue(), cqb = eb.CreateCompletionQueue();
  SqId sq = ea.CreateSendQueue({.cq = cqa}).value();
  PeerId peer = ea.AddPeer({{0, net.address(b, 0)}, {1, net.address(b, 0)}}, 0).value();
  std::vector<uint8_t> rb(4096), msg(3000, 9);
  Sge sge{msg.data(), msg.size()};
  int ok = 0, failed = 0;
  auto send_one = [&] {
    ASSERT_TRUE(eb.PostRecv(cqb, rb.data(), rb.size(), 0).ok());
    ASSERT_TRUE(ea.PostSend(sq, peer, {&sge, 1}, 0, net.now_ns()).ok());
    net.Kick(a);
    Completion c;
    ASSERT_TRUE(net.RunUntil(
        [&] {
          return ea.PollCompletions(cqa, {&c, 1}) == 1;
        },
        net.now() + 1'000'000));
    (c.status == Code::kOk ? ok : failed)++;
    ASSERT_TRUE(net.RunUntil(
        [&] {
          return eb.PollCompletions(cqb, {&c, 1}) == 1;
        },
        net.now() + 1'000'000));
  };
  send_one();
  EXPECT_EQ(eb.stats().contexts_live, 1u);
  // Quiet for longer than the idle timeout: the server frees its context.
  net.RunUntil([] { return false; }, net.now() + 300'000);
  EXPECT_EQ(eb.stats().contexts_reclaimed, 1u);
  EXPECT_EQ(eb.stats().contexts_live, 0u);
  // The client comes back: it reconnects before sending, so nothing fails.
  send_one();
  send_one();
  EXPECT_EQ(ok, 3);
  EXPECT_EQ(failed, 0);
  EXPECT_EQ(ea.stats().peer_restarts, 0u);
  EXPECT_EQ(eb.stats().contexts_live, 1u);
  EXPECT_EQ(ea.stats().contexts_reclaimed, 0u);  // contexts we opened are never reclaimed
}

}  // namespace
}  // namespace opensrd::sim

namespace opensrd::sim {
namespace {

std::vector<PeerEvent> Events(Endpoint& ep) {
  std::vector<PeerEvent> out(64);
  out.resize(ep.PollPeerEvents(out));
  return out;
}

// Peer events tell an application (the storage bridge: drop a dead adapter's attachments) when
// a peer's session comes up, restarts and goes away, once per peer however many contexts.
TEST(PeerEvents, ConnectedRestartedGoneOncePerPeer) {
  Network net(11);
  EndpointConfig ca = Config(0xA, 1);
  ca.contexts_per_peer = 2;
  HostId a = net.AddHost(kIpA, 1000, 1, ca);
  HostId b = net.AddHost(kIpB, 2000, 1, Config(0xB, 2));
  simtest::App app_a, app_b;
  app_a.Init(net, a);
  app_b.Init(net, b);
  SqId sq2 = app_a.ep().CreateSendQueue({.cq = app_a.cq}).value();
  PeerId to_b = app_a.ep().AddPeer({{0, net.address(b, 0)}}, net.now_ns()).value();
  app_a.Send(to_b, 1, 1000);
  uint8_t byte = 1;
  Sge sge{&byte, 1};
  ASSERT_TRUE(app_a.ep().PostSend(sq2, to_b, {&sge, 1}, 2, net.now_ns()).ok());
  ASSERT_TRUE(net.RunUntil(
      [&] {
        app_a.Poll();
        app_b.Poll();
        return app_a.sends.size() == 2;
      },
      net.now() + 100'000));
  std::vector<PeerEvent> ev = Events(app_a.ep());
  ASSERT_EQ(ev.size(), 1u) << "two contexts, one peer: one event";
  EXPECT_EQ(ev[0].kind, PeerEventKind::kConnected);
  EXPECT_EQ(ev[0].peer, to_b);
  ev = Events(app_b.ep());
  ASSERT_EQ(ev.size(), 1u);
  EXPECT_EQ(ev[0].kind, PeerEventKind::kConnected);
  const PeerId b_sees_a = ev[0].peer;

  // A restarts: B learns it from the new incarnation's handshake.
  net.RestartHost(a, Config(0xA, 9));
  simtest::App app_a2;
  app_a2.Init(net, a);
  PeerId to_b2 = app_a2.ep().AddPeer({{0, net.address(b, 0)}}, net.now_ns()).value();
  app_a2.Send(to_b2, 3, 100);
  ASSERT_TRUE(net.RunUntil(
      [&] {
        app_a2.Poll();
        app_b.Poll();
        return app_a2.sends.size() == 1;
      },
      net.now() + 100'000));
  ev = Events(app_b.ep());
  ASSERT_EQ(ev.size(), 2u);
  EXPECT_EQ(ev[0].kind, PeerEventKind::kRestarted);
  EXPECT_EQ(ev[0].peer, b_sees_a);
  EXPECT_EQ(ev[0].reason, Code::kPeerRestarted);
  EXPECT_EQ(ev[1].kind, PeerEventKind::kConnected);
  EXPECT_EQ(ev[1].peer, b_sees_a);

  // B dies for good: A's next message times out and A hears that B is gone.
  LinkConfig dead;
  dead.fault.blackhole_after_us = 0;
  net.SetPath(net.address(a, 0), net.address(b, 0), dead);
  app_a2.Send(to_b2, 4, 100);
  ASSERT_TRUE(net.RunUntil(
      [&] {
        app_a2.Poll();
        return app_a2.sends.size() == 2;
      },
      net.now() + 1'000'000));
  EXPECT_EQ(app_a2.sends[1].status, Code::kTimedOut);
  ev = Events(app_a2.ep());
  ASSERT_EQ(ev.size(), 2u);
  EXPECT_EQ(ev[0].kind, PeerEventKind::kConnected);
  EXPECT_EQ(ev[1].kind, PeerEventKind::kGone);
  EXPECT_EQ(ev[1].peer, to_b2);
  EXPECT_EQ(ev[1].reason, Code::kTimedOut);
}

TEST(PeerEvents, APeerThatNeverAnswersIsGone) {
  Network net(12);
  HostId a = net.AddHost(kIpA, 1000, 1, Config(0xA, 1));
  simtest::App app;
  app.Init(net, a);
  PeerId nobody = app.ep().AddPeer({{0, NetAddr{0x0A0000FF, 9}}}, 0).value();
  app.Send(nobody, 1, 10);
  ASSERT_TRUE(net.RunUntil(
      [&] {
        app.Poll();
        return app.sends.size() == 1;
      },
      1'000'000));
  std::vector<PeerEvent> ev = Events(app.ep());
  ASSERT_EQ(ev.size(), 1u);
  EXPECT_EQ(ev[0].kind, PeerEventKind::kGone);
  EXPECT_EQ(ev[0].peer, nobody);
  EXPECT_EQ(ev[0].reason, Code::kTimedOut);
}

}  // namespace
}  // namespace opensrd::sim
