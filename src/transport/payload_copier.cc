#include "transport/payload_copier.h"

#include <algorithm>
#include <cstring>
#include <string>
#include <vector>

namespace opensrd {
namespace {

// Copies of a fragment spread over more SGL elements than this go to the ring in chunks (each
// chunk maps at most this many elements plus the datagram; the region table holds 256).
constexpr uint32_t kChunk = 32;
constexpr uint32_t kRingCapacity = 64;
// IOVA windows start here and only move up (2^64 bytes outlast any run); each window is
// followed by an unmapped guard gap, so a range running off one window cannot land in the next.
constexpr uint64_t kFirstIova = uint64_t{1} << 40;
constexpr uint64_t kGuard = 4096;

}  // namespace

struct PayloadCopier::Engine {
  explicit Engine(dma::PrefetchMode prefetch) : engine(MakeOptions(prefetch)) {}

  static dma::EngineOptions MakeOptions(dma::PrefetchMode prefetch) {
    dma::EngineOptions o;
    o.prefetch.mode = prefetch;
    o.budget = kRingCapacity;
    return o;
  }

  Status Init() {
    auto r = dma::SharedRing::Create(kRingCapacity);
    if (!r.ok()) return r.status();
    ring = std::move(r.value());
    auto ch = engine.AddChannel(ring.get());
    if (!ch.ok()) return ch.status();
    producer = std::make_unique<dma::RingProducer>(ring.get());
    maps.reserve(kChunk + 1);
    return Status::Ok();
  }

  // Registers [p, p + len) at a fresh window; returns its IOVA (0 on failure).
  uint64_t Map(const void* p, size_t len, uint32_t access) {
    const uint64_t iova = next_iova;
    auto id = engine.RegisterRegion(const_cast<void*>(p), len, iova, access);
    if (!id.ok()) return 0;
    maps.push_back(id.value());
    next_iova += len + kGuard;
    return iova;
  }

  void UnmapAll() {
    for (uint32_t id : maps) engine.UnregisterRegion(id);
    maps.clear();
  }

  // Posts what was enqueued, runs the engine and reaps `n` completions. The first error wins.
  Status Run(uint32_t n) {
    producer->Submit();
    Status result = Status::Ok();
    uint32_t reaped = 0;
    dma::Completion done[kRingCapacity];
    while (reaped < n) {
      const size_t ran = engine.Poll();
      const size_t got = producer->Reap(done, n - reaped);
      if (ran == 0 && got == 0) {
        // Cannot happen with a ring only this copier writes: the engine refused the ring.
        return Status(Code::kIoError, "dma: the engine stopped serving the copier's ring");
      }
      for (size_t i = 0; i < got; ++i) {
        const auto st = static_cast<dma::CompletionStatus>(done[i].status);
        if (st != dma::CompletionStatus::kSuccess && result.ok()) {
          result = Status(Code::kIoError, std::string("dma copy failed: ") + dma::StatusName(st));
        }
      }
      reaped += static_cast<uint32_t>(got);
    }
    return result;
  }

  Status Copy(uint64_t src, uint64_t dst, uint32_t len) {
    dma::Descriptor d{};
    d.opcode = static_cast<uint8_t>(dma::Opcode::kCopy);
    d.src = src;
    d.dst = dst;
    d.length = len;
    return producer->Enqueue(d);
  }

  dma::DmaEngine engine;
  std::unique_ptr<dma::SharedRing> ring;
  std::unique_ptr<dma::RingProducer> producer;
  std::vector<uint32_t> maps;  // region ids of the copy in progress
  uint64_t next_iova = kFirstIova;
  Status init_status;
};

PayloadCopier::PayloadCopier(PayloadCopy mode, dma::PrefetchMode prefetch) : mode_(mode) {
  if (mode_ != PayloadCopy::kEngine) return;
  engine_ = std::make_unique<Engine>(prefetch);
  // A ring that cannot be made (memfd refused) shows up as an error on every copy.
  engine_->init_status = engine_->Init();
}

PayloadCopier::~PayloadCopier() = default;

Status PayloadCopier::Gather(std::span<const Sge> sgl, std::span<const uint32_t> sge_end,
                             uint32_t offset, uint32_t len, std::span<uint8_t> datagram,
                             size_t at) {
  if (len == 0) return Status::Ok();
  ++stats_.copies;
  // The element holding `offset`: the first whose running total is beyond it.
  size_t i = std::upper_bound(sge_end.begin(), sge_end.end(), offset) - sge_end.begin();
  if (mode_ == PayloadCopy::kDirect) {
    uint8_t* dst = datagram.data() + at;
    for (uint32_t left = len; left > 0 && i < sgl.size(); ++i) {
      const uint32_t start = sge_end[i] - static_cast<uint32_t>(sgl[i].len);
      const uint32_t n = std::min<uint32_t>(left, sge_end[i] - offset);
      if (n == 0) continue;  // an empty element
      std::memcpy(dst, static_cast<const uint8_t*>(sgl[i].addr) + (offset - start), n);
      dst += n;
      offset += n;
      left -= n;
    }
    return Status::Ok();
  }

  Engine& e = *engine_;
  if (!e.init_status.ok()) {
    ++stats_.errors;
    return e.init_status;
  }
  Status result = Status::Ok();
  uint32_t left = len;
  size_t out = at;
  while (left > 0 && result.ok()) {
    const uint64_t dg = e.Map(datagram.data(), datagram.size(), dma::kWrite);
    uint32_t posted = 0;
    for (; left > 0 && i < sgl.size() && posted < kChunk; ++i) {
      const uint32_t start = sge_end[i] - static_cast<uint32_t>(sgl[i].len);
      const uint32_t n = std::min<uint32_t>(left, sge_end[i] - offset);
      if (n == 0) continue;  // an empty element
      const uint64_t src = e.Map(sgl[i].addr, sgl[i].len, dma::kRead);
      // An element that could not be mapped (or a datagram) is named as IOVA 0: the engine
      // completes the descriptor with its error and touches nothing.
      const uint64_t s = src == 0 ? 0 : src + (offset - start);
      const uint64_t d = dg == 0 ? 0 : dg + out;
      if (Status st = e.Copy(s, d, n); !st.ok()) {
        result = st;
        break;
      }
      ++posted;
      out += n;
      offset += n;
      left -= n;
    }
    if (posted == 0 && result.ok()) {
      result = Status(Code::kIoError, "dma: fragment beyond the message's elements");
    }
    if (posted > 0) {
      stats_.descriptors += posted;
      Status st = e.Run(posted);
      if (result.ok()) result = st;
    }
    e.UnmapAll();
  }
  if (!result.ok()) ++stats_.errors;
  return result;
}

Status PayloadCopier::Place(void* buffer, size_t buffer_len, size_t offset,
                            std::span<const uint8_t> payload) {
  if (payload.empty()) return Status::Ok();
  ++stats_.copies;
  if (mode_ == PayloadCopy::kDirect) {
    std::memcpy(static_cast<uint8_t*>(buffer) + offset, payload.data(), payload.size());
    return Status::Ok();
  }
  Engine& e = *engine_;
  if (!e.init_status.ok()) {
    ++stats_.errors;
    return e.init_status;
  }
  const uint64_t dst = e.Map(buffer, buffer_len, dma::kWrite);
  const uint64_t src = e.Map(payload.data(), payload.size(), dma::kRead);
  Status result = e.Copy(src, dst == 0 ? 0 : dst + offset, static_cast<uint32_t>(payload.size()));
  if (result.ok()) {
    ++stats_.descriptors;
    result = e.Run(1);
  }
  e.UnmapAll();
  if (!result.ok()) ++stats_.errors;
  return result;
}

}  // namespace opensrd
