// The transport's direct placement hook (Endpoint::SetPlacementHook): a message whose first
// packet arrives first may send its bytes after a header straight to a target; the receive
// buffer gets the header and the completion; a message whose first packet was overtaken, or
// one the hook declines, arrives whole in the buffer as before. Bytes verified both ways.
#include <gtest/gtest.h>

#include <cstring>
#include <vector>

#include "common/pattern.h"
#include "sim/network.h"
#include "sim/test_app.h"

namespace opensrd::sim {
namespace {

using simtest::App;
using simtest::Config;
using simtest::kIpA;
using simtest::kIpB;

constexpr uint32_t kHeader = 16;  // the test's "header": its first byte says place (1) or not

TEST(PlacementHook, SplitsHeaderAndDataUnderReordering) {
  Network net(21);
  net.default_link.fault.reorder = 0.3;
  net.default_link.fault.reorder_us = 60;
  net.default_link.fault.loss = 0.02;
  HostId a = net.AddHost(kIpA, 1000, 1, Config(1, 1));
  HostId b = net.AddHost(kIpB, 2000, 1, Config(2, 2));
  App sa, rb;
  sa.Init(net, a);
  rb.Init(net, b, {}, 48, 64 * 1024);  // one buffer per message: none is reused
  rb.repost = false;
  constexpr int kMsgs = 40;
  constexpr uint32_t kLen = 20000;  // ~15 packets each: the first is often overtaken
  std::vector<std::vector<uint8_t>> targets(kMsgs, std::vector<uint8_t>(kLen - kHeader, 0));
  int asked = 0;
  net.endpoint(b).SetPlacementHook(
      [&](PeerId, std::span<const uint8_t> first, uint32_t len) -> Placement {
        ++asked;
        EXPECT_EQ(len, kLen);
        EXPECT_GE(first.size(), kHeader);
        if (first[0] != 1) return {};
        return {targets[first[1]].data(), kHeader};
      });
  PeerId p = sa.ep().AddPeer({{0, net.address(b, 0)}}, net.now_ns()).value();
  std::vector<std::vector<uint8_t>> sent;
  for (int i = 0; i < kMsgs; ++i) {
    sent.emplace_back(kLen);
    FillPattern(100 + i, sent.back().data(), kLen);
    sent.back()[0] = i % 4 == 3 ? 0 : 1;  // every fourth message declines placement
    sent.back()[1] = static_cast<uint8_t>(i);
    Sge sge{sent.back().data(), kLen};
    ASSERT_TRUE(sa.ep().PostSend(sa.sq, p, {&sge, 1}, i, net.now_ns()).ok());
  }
  net.Kick(a);
  ASSERT_TRUE(simtest::RunNet(
      net, {&sa, &rb}, [&] { return rb.recvs.size() == kMsgs && sa.sends.size() == kMsgs; },
      5'000'000));
  int placed = 0, copied = 0;
  for (const Completion& c : rb.recvs) {
    ASSERT_EQ(c.status, Code::kOk);
    ASSERT_EQ(c.length, kLen);
    const uint8_t* buf = static_cast<const uint8_t*>(c.buffer);
    const int i = buf[1];
    EXPECT_EQ(std::memcmp(buf, sent[i].data(), 2), 0);
    if (c.placed != nullptr) {
      ++placed;
      EXPECT_EQ(sent[i][0], 1);
      EXPECT_EQ(c.placed, targets[i].data());
      EXPECT_EQ(c.placed_from, kHeader);
      EXPECT_EQ(std::memcmp(targets[i].data(), sent[i].data() + kHeader, kLen - kHeader), 0)
          << "message " << i;
    } else {
      ++copied;
      EXPECT_EQ(std::memcmp(buf, sent[i].data(), kLen), 0) << "message " << i;
    }
  }
  EXPECT_GT(placed, 0);
  EXPECT_GT(copied, kMsgs / 4 - 1);  // the declined ones at least
  EXPECT_LT(asked, kMsgs + 1);       // once per message at most
  EXPECT_GT(asked, placed);          // declined messages were asked too
  EXPECT_GT(copied, kMsgs / 4);      // some first packets were overtaken (reordering is real)
}

}  // namespace
}  // namespace opensrd::sim
