// The transport's copies through the DMA engine, end to end in the simulator: a message whose
// scatter-gather list names memory the engine refuses to map fails with kIoError (with memcpy
// the same post reads a wild pointer), and the endpoint goes on working afterwards.
#include <gtest/gtest.h>

#include <cstdint>

#include "sim/network.h"
#include "sim/test_app.h"

namespace opensrd::sim {
namespace {

using simtest::App;
using simtest::Config;
using simtest::kIpA;
using simtest::kIpB;

TEST(DmaCopy, UnmappableSglFailsTheSendAndTheEndpointRecovers) {
  Network net(31);
  EndpointConfig ca = Config(0xA, 1), cb = Config(0xB, 2);
  ca.payload_copy = cb.payload_copy = PayloadCopy::kEngine;
  HostId a = net.AddHost(kIpA, 1000, 1, ca);
  HostId b = net.AddHost(kIpB, 2000, 1, cb);
  App app_a, app_b;
  app_a.Init(net, a);
  app_b.Init(net, b);
  PeerId a_to_b = app_a.ep().AddPeer({{0, net.address(b, 0)}}, net.now_ns()).value();

  app_a.Send(a_to_b, 1, 3000);
  ASSERT_TRUE(simtest::RunNet(
      net, {&app_a, &app_b}, [&] { return app_a.sends.size() == 1; }, 100'000));
  EXPECT_EQ(app_a.sends[0].status, Code::kOk);

  // Not null (PostSend refuses null) but running off the top of the address space: the engine
  // cannot map it, so its first packet cannot be gathered.
  Sge bad{reinterpret_cast<const void*>(~uintptr_t{0} - 4095), 8192};
  ASSERT_TRUE(app_a.ep().PostSend(app_a.sq, a_to_b, {&bad, 1}, 2, net.now_ns()).ok());
  net.Kick(a);
  ASSERT_TRUE(simtest::RunNet(
      net, {&app_a, &app_b}, [&] { return app_a.sends.size() == 2; }, 100'000));
  EXPECT_EQ(app_a.sends[1].status, Code::kIoError);
  EXPECT_EQ(app_a.sends[1].tag, 2u);
  EXPECT_GE(app_a.ep().copy_stats().errors, 1u);

  // A new session carries the next message whole.
  app_a.Send(a_to_b, 3, 5000);
  ASSERT_TRUE(simtest::RunNet(
      net, {&app_a, &app_b}, [&] { return app_a.sends.size() == 3 && app_b.recvs.size() == 2; },
      1'000'000));
  EXPECT_EQ(app_a.sends[2].status, Code::kOk);
  ASSERT_EQ(app_b.recvs.size(), 2u);  // the refused message never reached B
  EXPECT_EQ(app_b.Count(app_b.recvs, Code::kOk), 2u);
  EXPECT_EQ(app_b.keys[0], 1);
  EXPECT_EQ(app_b.keys[1], 3);
  EXPECT_EQ(app_b.ep().copy_stats().errors, 0u);
}

}  // namespace
}  // namespace opensrd::sim
