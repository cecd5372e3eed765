// Shared pieces of the DMA engine tests: an arena of registered memory, a ring with its
// producer, and helpers that build descriptors and run them to completion.
#pragma once
#include <gtest/gtest.h>

#include <cstdint>
#include <cstring>
#include <memory>
#include <vector>

#include "opensrd/dma.h"

namespace opensrd::dma::testing {

inline uint64_t Iova(const void* p) {
  return reinterpret_cast<uint64_t>(p);
}

inline Descriptor Copy(const void* src, void* dst, uint32_t len, uint64_t user = 0) {
  Descriptor d{};
  d.opcode = static_cast<uint8_t>(Opcode::kCopy);
  d.src = Iova(src);
  d.dst = Iova(dst);
  d.length = len;
  d.user_data = user;
  return d;
}

inline Descriptor Fill(void* dst, uint32_t len, uint64_t pattern) {
  Descriptor d{};
  d.opcode = static_cast<uint8_t>(Opcode::kFill);
  d.dst = Iova(dst);
  d.length = len;
  d.pattern = pattern;
  return d;
}

inline Descriptor CopyCrc(const void* src, void* dst, uint32_t len, uint32_t seed = 0) {
  Descriptor d = Copy(src, dst, len);
  d.opcode = static_cast<uint8_t>(Opcode::kCopyCrc);
  d.crc_seed = seed;
  return d;
}

inline Descriptor Compare(const void* a, const void* b, uint32_t len) {
  Descriptor d = Copy(a, const_cast<void*>(b), len);
  d.opcode = static_cast<uint8_t>(Opcode::kCompare);
  return d;
}

inline Descriptor CopySg(const SgEntry* src, uint16_t ns, const SgEntry* dst, uint16_t nd,
                         uint32_t total) {
  Descriptor d{};
  d.opcode = static_cast<uint8_t>(Opcode::kCopySg);
  d.src = Iova(src);
  d.src_count = ns;
  d.dst = Iova(dst);
  d.dst_count = nd;
  d.length = total;
  return d;
}

// One engine, one ring, and `arena_bytes` of registered read-write memory.
class DmaFixture : public ::testing::Test {
 protected:
  void SetUp() override { Build(EngineOptions{}, 64); }

  void Build(EngineOptions o, uint32_t capacity, size_t arena_bytes = 1 << 20) {
    producer.reset();
    engine.reset();
    arena.assign(arena_bytes, 0);
    auto r = SharedRing::Create(capacity);
    ASSERT_TRUE(r.ok()) << r.status().ToString();
    ring = std::move(r.value());
    engine = std::make_unique<DmaEngine>(o);
    auto reg = engine->RegisterRegion(arena.data(), arena.size());
    ASSERT_TRUE(reg.ok()) << reg.status().ToString();
    auto ch = engine->AddChannel(ring.get());
    ASSERT_TRUE(ch.ok());
    channel = ch.value();
    producer = std::make_unique<RingProducer>(ring.get());
  }

  uint8_t* at(size_t off) { return arena.data() + off; }

  // Posts d alone and polls until its completion arrives.
  Completion Run(const Descriptor& d) {
    EXPECT_TRUE(producer->Enqueue(d).ok());
    producer->Submit();
    Completion c{};
    for (int i = 0; i < 1000 && producer->Reap(&c, 1) == 0; ++i) engine->Poll();
    return c;
  }

  std::vector<uint8_t> arena;
  std::unique_ptr<SharedRing> ring;
  std::unique_ptr<DmaEngine> engine;
  std::unique_ptr<RingProducer> producer;
  uint32_t channel = 0;
};

inline CompletionStatus StatusOf(const Completion& c) {
  return static_cast<CompletionStatus>(c.status);
}

}  // namespace opensrd::dma::testing
