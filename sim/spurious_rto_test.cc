// Spurious retransmission timeouts: a receiver that is descheduled for a few milliseconds (a
// busy two-core machine does this to a transport thread) makes every path go quiet at once.
// The sender's RTOs fire, but nothing was lost: the packets were waiting in the receiver's
// socket. When the acks come back carrying timestamps from before the timeout, the sender must
// see that the timeout was spurious and take back what it did to its window (Eifel, RFC 3522):
// on loopback under storage load thousands of such timeouts each halved the window.
#include <cstdio>

#include "sim/test_app.h"

namespace opensrd::sim {
namespace {

using namespace simtest;

struct StallRun {
  uint64_t cwnd_before = 0;  // just before the stall
  uint64_t cwnd_after = 0;   // once the stalled backlog has been acked
  EndpointStats a;
  size_t received = 0, sent = 0;
};

// A keeps 32 messages of 16 KiB in flight to B over 4 paths (a storage queue depth); B stalls
// for `stall_us` at 20 ms.
StallRun RunWithStall(uint64_t seed, Micros stall_us) {
  Network net(seed);
  net.default_link = LinkConfig{.latency_us = 5};
  HostId a = net.AddHost(kIpA, 1000, 4, Config(0xA, 1));
  HostId b = net.AddHost(kIpB, 2000, 1, Config(0xB, 2));
  App A, B;
  A.Init(net, a, {}, 64, 16 * 1024);
  B.Init(net, b, {}, 256, 16 * 1024);
  std::vector<PathSpec> paths;
  for (uint16_t i = 0; i < 4; ++i) paths.push_back({i, net.address(b, 0)});
  const PeerId to_b = A.ep().AddPeer(paths, net.now_ns()).value();
  constexpr Micros kStallAt = 20'000;
  net.StallHost(b, kStallAt, kStallAt + stall_us);
  StallRun r;
  size_t posted = 0;
  const Micros end = kStallAt + stall_us + 3'000;
  EXPECT_TRUE(RunNet(
      net, {&A, &B},
      [&] {
        while (posted < A.sends.size() + 32) A.Send(to_b, posted++ % 200, 16 * 1024);
        if (r.cwnd_before == 0 && net.now() >= kStallAt - 10) {
          r.cwnd_before = A.ep().stats().cwnd_bytes;
        }
        return net.now() >= end;
      },
      end + 1'000));
  r.cwnd_after = A.ep().stats().cwnd_bytes;
  r.a = A.ep().stats();
  r.received = B.recvs.size();
  r.sent = A.sends.size();
  return r;
}

TEST(SpuriousRto, AReceiverStallDoesNotCutTheWindow) {
  const StallRun r = RunWithStall(71, 2'000);
  std::printf("cwnd before %lu after %lu; rto events %lu, spurious rtos %lu, received %zu\n",
              (unsigned long)r.cwnd_before, (unsigned long)r.cwnd_after,
              (unsigned long)r.a.rto_events, (unsigned long)r.a.spurious_rto_events, r.received);
  EXPECT_GE(r.a.rto_events, 1u);  // the stall is longer than the RTO: timeouts did fire
  EXPECT_GE(r.a.spurious_rto_events, 1u);
  EXPECT_GE(r.cwnd_after, r.cwnd_before * 9 / 10);
  EXPECT_GE(r.received, r.sent);  // every completed send arrived
}

}  // namespace
}  // namespace opensrd::sim
