// State that scales (issue 12): one server endpoint holding 10,000 simulated peers. Every client
// sends one message and goes quiet; the server's memory for its idle peers is measured two ways:
// its own accounting (EndpointStats::memory_bytes) and the heap growth of this process (mallinfo2).
#include <gtest/gtest.h>
#include <malloc.h>

#include <cstdio>
#include <memory>
#include <vector>

#include "sim/network.h"
#include "sim/test_app.h"

namespace opensrd::sim {
namespace {

using namespace simtest;

size_t RssKb() {
  FILE* f = std::fopen("/proc/self/status", "r");
  if (f == nullptr) return 0;
  char line[256];
  size_t kb = 0;
  while (std::fgets(line, sizeof line, f)) {
    if (std::sscanf(line, "VmRSS: %zu kB", &kb) == 1) break;
  }
  std::fclose(f);
  return kb;
}

size_t HeapInUse() {
  const struct mallinfo2 m = mallinfo2();
  return m.uordblks + m.hblkhd;
}

TEST(Scale, TenThousandIdlePeersAtOneServer) {
#ifdef OPENSRD_SANITIZED
  constexpr int kPeers = 1000;  // the sanitizers' allocator bookkeeping would dominate
#else
  constexpr int kPeers = 10'000;
#endif
  Network net(60);
  EndpointConfig scfg = Config(0xFFFF, 1);
  scfg.idle_timeout_us = 5'000'000;
  HostId server = net.AddHost(0x0AFF0001, 2000, 1, scfg);
  App S;
  S.Init(net, server, {}, 64, 2048);
  std::vector<std::unique_ptr<App>> clients;
  std::vector<uint8_t> msg(1000, 3);
  // The clients' endpoints are built first, so the heap measured below is the server's.
  for (int i = 0; i < kPeers; ++i) {
    HostId h = net.AddHost(0x0B000000 + i, 1000, 1, Config(0x10000 + i, 1 + i));
    clients.push_back(std::make_unique<App>());
    clients.back()->Init(net, h, {}, 0, 0);
  }
  const size_t heap_before = HeapInUse();
  const size_t rss_before = RssKb();
  const uint64_t mem_before = net.endpoint(server).stats().memory_bytes;
  for (int i = 0; i < kPeers; ++i) {
    App& c = *clients[i];
    PeerId p = c.ep().AddPeer({{0, net.address(server, 0)}}, net.now_ns()).value();
    Sge sge{msg.data(), msg.size()};
    ASSERT_TRUE(c.ep().PostSend(c.sq, p, {&sge, 1}, i, net.now_ns()).ok());
    net.Kick(c.host);
  }
  ASSERT_TRUE(net.RunUntil(
      [&] {
        S.Poll();
        return S.recvs.size() == static_cast<size_t>(kPeers);
      },
      net.now() + 10'000'000));
  // Quiet for a second: acks settle, idle contexts shed what they held for traffic.
  net.RunUntil([] { return false; }, net.now() + 1'000'000);
  const EndpointStats st = net.endpoint(server).stats();
  ASSERT_EQ(st.contexts_live, static_cast<uint64_t>(kPeers));
  const double own = static_cast<double>(st.memory_bytes - mem_before) / kPeers;
  // The heap also holds the clients' growth (their contexts), so measure the server alone by
  // subtracting what the clients account for.
  uint64_t clients_mem = 0;
  for (auto& c : clients) clients_mem += c->ep().stats().memory_bytes;
  const double heap =
      (static_cast<double>(HeapInUse() - heap_before) - static_cast<double>(clients_mem)) / kPeers;
  // RSS covers the whole simulated datacenter (the clients' peers and contexts, the simulator's
  // queues): an upper bound for the server's share.
  const double rss =
      (static_cast<double>(RssKb()) - static_cast<double>(rss_before)) * 1024 / kPeers;
  std::printf(
      "%d idle peers at one server: %.0f bytes each by its own accounting, %.0f by the "
      "heap (minus the clients' own accounting); process RSS grew %.0f bytes per peer (server, "
      "clients and simulator together); %lu events\n",
      kPeers, own, heap, rss, (unsigned long)net.events());
  EXPECT_LE(own, 2048.0) << "an idle peer with its context costs more than 2 KiB";
  // After the idle timeout the server forgets them: contexts and peers are freed.
  net.RunUntil([] { return false; }, net.now() + 6'000'000);
  const EndpointStats later = net.endpoint(server).stats();
  EXPECT_EQ(later.contexts_live, 0u);
  EXPECT_EQ(later.peers_live, 0u);
  EXPECT_EQ(later.peers_freed, static_cast<uint64_t>(kPeers));
  std::printf("after the idle timeout: %lu contexts, %lu peers, %lu bytes (%.1f per former peer)\n",
              (unsigned long)later.contexts_live, (unsigned long)later.peers_live,
              (unsigned long)later.memory_bytes,
              static_cast<double>(later.memory_bytes - mem_before) / kPeers);
}

}  // namespace
}  // namespace opensrd::sim
