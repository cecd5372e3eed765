// The transport's payload copies: the DMA engine gives the same bytes as memcpy, and a copy
// whose descriptor the engine refuses is an error that touches nothing (and, in reassembly,
// fails the message with kIoError instead of delivering it).
#include "transport/payload_copier.h"

#include <gtest/gtest.h>

#include <cstring>
#include <random>
#include <vector>

#include "transport/endpoint_state.h"
#include "transport/message_assembly.h"

namespace opensrd {
namespace {

std::vector<uint8_t> Random(size_t n, uint32_t seed) {
  std::mt19937 rng(seed);
  std::vector<uint8_t> v(n);
  for (auto& b : v) b = static_cast<uint8_t>(rng());
  return v;
}

struct Message {
  std::vector<std::vector<uint8_t>> parts;
  std::vector<Sge> sgl;
  std::vector<uint32_t> sge_end;
  std::vector<uint8_t> whole;
};

// Elements of the given lengths (0 allowed), filled with random bytes.
Message MakeMessage(const std::vector<uint32_t>& lens, uint32_t seed) {
  Message m;
  uint32_t end = 0;
  for (uint32_t len : lens) {
    m.parts.push_back(Random(len, seed++));
    m.whole.insert(m.whole.end(), m.parts.back().begin(), m.parts.back().end());
  }
  for (size_t i = 0; i < lens.size(); ++i) {
    m.sgl.push_back({m.parts[i].data(), lens[i]});
    m.sge_end.push_back(end += lens[i]);
  }
  return m;
}

class CopierModes : public ::testing::TestWithParam<PayloadCopy> {};

TEST_P(CopierModes, GatherCopiesEveryFragmentOfEverySgl) {
  PayloadCopier copier(GetParam());
  std::mt19937 rng(7);
  // Elements small and large, empty ones among them, and more than one engine chunk (32).
  std::vector<uint32_t> lens;
  for (int i = 0; i < 80; ++i) lens.push_back(i % 9 == 4 ? 0 : 1 + rng() % 300);
  const Message m = MakeMessage(lens, 1);
  const uint32_t total = m.sge_end.back();
  for (uint32_t frag : {1u, 17u, 1400u, 9000u, total}) {
    for (uint32_t off = 0; off < total; off += frag) {
      const uint32_t len = std::min(frag, total - off);
      std::vector<uint8_t> datagram(len + 100, 0xaa);
      ASSERT_TRUE(copier.Gather(m.sgl, m.sge_end, off, len, datagram, 60).ok());
      ASSERT_EQ(std::memcmp(datagram.data() + 60, m.whole.data() + off, len), 0) << off;
      EXPECT_EQ(datagram[59], 0xaa);
      EXPECT_EQ(datagram[60 + len], 0xaa);
    }
  }
  EXPECT_EQ(copier.stats().errors, 0u);
  if (GetParam() == PayloadCopy::kEngine) {
    EXPECT_GT(copier.stats().descriptors, copier.stats().copies);  // fragments over elements
  } else {
    EXPECT_EQ(copier.stats().descriptors, 0u);
  }
}

TEST_P(CopierModes, PlaceCopiesIntoTheBuffer) {
  PayloadCopier copier(GetParam());
  const auto payload = Random(1400, 3);
  std::vector<uint8_t> buffer(5000, 0);
  ASSERT_TRUE(copier.Place(buffer.data(), buffer.size(), 3600, payload).ok());
  EXPECT_EQ(std::memcmp(buffer.data() + 3600, payload.data(), payload.size()), 0);
  EXPECT_EQ(buffer[3599], 0);
  EXPECT_EQ(copier.stats().copies, 1u);
}

INSTANTIATE_TEST_SUITE_P(DirectAndEngine, CopierModes,
                         ::testing::Values(PayloadCopy::kDirect, PayloadCopy::kEngine),
                         [](const auto& info) {
                           return info.param == PayloadCopy::kDirect ? "Direct" : "Engine";
                         });

TEST(EngineCopier, PlacementPastTheBufferEndIsAnErrorThatTouchesNothing) {
  // The buffer is the first 100 bytes of a larger allocation: with memcpy, a wrong offset would
  // write into the rest; through the engine the descriptor leaves the buffer's mapping.
  PayloadCopier copier(PayloadCopy::kEngine);
  std::vector<uint8_t> memory(200, 0x11);
  const auto payload = Random(20, 4);
  const Status st = copier.Place(memory.data(), 100, 90, payload);
  EXPECT_EQ(st.code(), Code::kIoError);
  EXPECT_NE(st.message().find("not_registered"), std::string::npos) << st.ToString();
  for (uint8_t b : memory) ASSERT_EQ(b, 0x11);
  EXPECT_EQ(copier.stats().errors, 1u);
  // The copier goes on working after an error.
  ASSERT_TRUE(copier.Place(memory.data(), 100, 80, payload).ok());
  EXPECT_EQ(std::memcmp(memory.data() + 80, payload.data(), 20), 0);
  EXPECT_EQ(memory[100], 0x11);
}

TEST(EngineCopier, GatherPastTheDatagramEndIsAnErrorThatTouchesNothing) {
  PayloadCopier copier(PayloadCopy::kEngine);
  const Message m = MakeMessage({500, 500}, 9);
  std::vector<uint8_t> memory(1200, 0x22);
  // The datagram is the first 600 bytes; 900 bytes at 0 do not fit.
  const Status st =
      copier.Gather(m.sgl, m.sge_end, 0, 900, std::span<uint8_t>(memory.data(), 600), 0);
  EXPECT_EQ(st.code(), Code::kIoError);
  for (size_t i = 600; i < memory.size(); ++i) ASSERT_EQ(memory[i], 0x22) << i;
}

TEST(EngineCopier, ElementWithoutMemoryIsAnError) {
  PayloadCopier copier(PayloadCopy::kEngine);
  std::vector<Sge> sgl = {{nullptr, 64}};
  std::vector<uint32_t> end = {64};
  std::vector<uint8_t> datagram(64, 0x33);
  EXPECT_EQ(copier.Gather(sgl, end, 0, 64, datagram, 0).code(), Code::kIoError);
  for (uint8_t b : datagram) ASSERT_EQ(b, 0x33);
}

// Reassembly: a fragment whose placement the engine refuses fails its message with kIoError;
// the bytes beyond the posted buffer stay as they were.
TEST(EngineCopier, RefusedPlacementFailsTheMessageInsteadOfDeliveringIt) {
  EndpointConfig cfg;
  cfg.payload_copy = PayloadCopy::kEngine;
  EndpointShared sh(cfg);
  sh.cqs.resize(1);
  std::vector<uint8_t> memory(200, 0x44);
  sh.recvs.push_back({0, memory.data(), 100, 77});
  const PeerId peer = 1;
  MessageAssembly assembly(sh, peer);
  // A fragment a buggy caller let through: it claims to complete a 100-byte message, but its
  // 20 bytes start at offset 90.
  const auto payload = Random(20, 5);
  wire::DataExt d{.psn = 0, .msg_id = 1, .msg_len = 100, .offset = 90, .payload_len = 100};
  bool truncated = false;
  EXPECT_EQ(assembly.Place(d, false, payload, truncated), MessageAssembly::Placed::kPlaced);
  ASSERT_EQ(sh.cqs[0].size(), 1u);
  EXPECT_EQ(sh.cqs[0].front().status, Code::kIoError);
  EXPECT_EQ(sh.cqs[0].front().tag, 77u);
  EXPECT_EQ(sh.stats.messages_received, 0u);
  for (size_t i = 0; i < memory.size(); ++i) ASSERT_EQ(memory[i], 0x44) << i;
  EXPECT_EQ(sh.copier.stats().errors, 1u);
}

TEST(EngineCopier, GoodPlacementThroughTheAssemblyDeliversTheBytes) {
  EndpointConfig cfg;
  cfg.payload_copy = PayloadCopy::kEngine;
  EndpointShared sh(cfg);
  sh.cqs.resize(1);
  std::vector<uint8_t> buffer(100, 0);
  sh.recvs.push_back({0, buffer.data(), buffer.size(), 5});
  const PeerId peer = 1;
  MessageAssembly assembly(sh, peer);
  const auto payload = Random(100, 6);
  bool truncated = false;
  for (uint32_t off : {60u, 0u}) {  // out of order
    const uint32_t n = off == 0 ? 60 : 40;
    wire::DataExt d{.msg_id = 1, .msg_len = 100, .offset = off, .payload_len = uint16_t(n)};
    ASSERT_EQ(assembly.Place(d, false, std::span(payload).subspan(off, n), truncated),
              MessageAssembly::Placed::kPlaced);
  }
  ASSERT_EQ(sh.cqs[0].size(), 1u);
  EXPECT_EQ(sh.cqs[0].front().status, Code::kOk);
  EXPECT_EQ(buffer, payload);
  EXPECT_EQ(sh.copier.stats().descriptors, 2u);
}

}  // namespace
}  // namespace opensrd
