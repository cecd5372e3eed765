// Per-peer receive quotas: a storage bridge holds a WRITE's receive buffer until the disk is
// done with it, so one busy adapter could hold every posted buffer and every other adapter
// would meet "receiver not ready" until it let go. With recv_quota_per_peer, a peer's messages
// hold at most that many buffers (from placement until the application posts the buffer
// again), and the others always find one.
#include <gtest/gtest.h>

#include <vector>

#include "sim/network.h"
#include "sim/test_app.h"

namespace opensrd::sim {
namespace {

using simtest::Config;
using simtest::kIpA;
using simtest::kIpB;
using simtest::kIpC;

struct Server {
  static constexpr size_t kBuffers = 12;
  Network* net;
  HostId host;
  CqId cq;
  std::vector<std::vector<uint8_t>> bufs;
  std::vector<Completion> held;  // delivered, not yet given back (the "disk" is slow)
  size_t from_b = 0;
  PeerId peer_b = 0;
  void Init(Network& n, HostId h) {
    net = &n;
    host = h;
    cq = n.endpoint(h).CreateCompletionQueue();
    bufs.assign(kBuffers, std::vector<uint8_t>(4096));
    for (size_t i = 0; i < kBuffers; ++i) {
      ASSERT_TRUE(n.endpoint(h).PostRecv(cq, bufs[i].data(), 4096, i).ok());
    }
  }
  void Poll(bool release_a) {
    Completion c[16];
    size_t k;
    while ((k = net->endpoint(host).PollCompletions(cq, c)) > 0) {
      for (size_t i = 0; i < k; ++i) {
        if (c[i].peer == peer_b) {
          ++from_b;  // B's requests are served at once
          (void)net->endpoint(host).PostRecv(cq, c[i].buffer, 4096, c[i].tag);
        } else {
          held.push_back(c[i]);
        }
      }
    }
    if (release_a) {
      for (const Completion& h : held)
        (void)net->endpoint(host).PostRecv(cq, h.buffer, 4096, h.tag);
      held.clear();
    }
  }
};

// Returns how many of B's 5 messages the server had after 20 ms of A flooding it.
size_t RunFlood(uint32_t quota) {
  Network net(21);
  EndpointConfig sc = Config(0x5, 5);
  sc.recv_quota_per_peer = quota;
  HostId s = net.AddHost(kIpA, 1000, 1, sc);
  HostId a = net.AddHost(kIpB, 2000, 1, Config(0xA, 1));
  HostId b = net.AddHost(kIpC, 3000, 1, Config(0xB, 2));
  Server srv;
  srv.Init(net, s);
  simtest::App app_a, app_b;
  app_a.Init(net, a);
  app_b.Init(net, b);
  PeerId a_to_s = app_a.ep().AddPeer({{0, net.address(s, 0)}}, net.now_ns()).value();
  PeerId b_to_s = app_b.ep().AddPeer({{0, net.address(s, 0)}}, net.now_ns()).value();
  // B connects first (so the server knows B's peer id), then A floods.
  app_b.Send(b_to_s, 0, 100);
  net.RunUntil(
      [&] {
        srv.Poll(false);
        app_b.Poll();
        return app_b.sends.size() == 1;
      },
      net.now() + 100'000);
  srv.peer_b = net.endpoint(s).peers().back();
  srv.from_b = 0;
  for (int i = 0; i < 40; ++i) app_a.Send(a_to_s, 1 + i, 2000);
  net.RunUntil(
      [&] {
        srv.Poll(false);
        return false;
      },
      net.now() + 2'000);
  for (int i = 0; i < 5; ++i) app_b.Send(b_to_s, 100 + i, 100);
  net.RunUntil(
      [&] {
        srv.Poll(false);
        app_a.Poll();
        app_b.Poll();
        return srv.from_b == 5;
      },
      net.now() + 20'000);
  const size_t got = srv.from_b;
  // A's messages all land once the server gives its buffers back.
  net.RunUntil(
      [&] {
        srv.Poll(true);
        app_a.Poll();
        app_b.Poll();
        return app_a.sends.size() == 40;
      },
      net.now() + 2'000'000);
  EXPECT_EQ(app_a.sends.size(), 40u);
  for (const Completion& c : app_a.sends) EXPECT_EQ(c.status, Code::kOk);
  if (quota > 0) EXPECT_GT(net.endpoint(s).stats().recv_quota_refusals, 0u);
  return got;
}

TEST(ReceiveQuota, OneFloodingPeerCannotTakeEveryBuffer) {
  EXPECT_EQ(RunFlood(4), 5u) << "B is served while A's buffers are held";
}

TEST(ReceiveQuota, WithoutAQuotaTheFloodStarvesOthers) {
  // The behaviour the quota exists for: A holds all 12 buffers and B waits.
  EXPECT_LT(RunFlood(0), 5u);
}

}  // namespace
}  // namespace opensrd::sim
