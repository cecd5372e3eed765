// The DMA engine against cold source buffers: every iteration first flushes the sources out of
// every cache level (clflush), then posts `depth` copies of `size` bytes with one doorbell and
// runs the engine until all have completed. Only the post-to-last-completion time is counted
// (manual timing). Compared: prefetch off, on, auto, the helper thread, and plain memcpy of the
// same buffers (the limit). BM_DmaWarm is the counter-case: sources already in cache.
//
// BM_Paired runs memcpy, off, on, auto and the helper in turn within each iteration (see
// there): the figures docs/DMA.md quotes. BM_PairedWarm is the same without the flush.
// Arguments: size (bytes), depth (descriptors per doorbell), mode (BM_Dma* only).
// Counters: ns_per_desc (batch time / depth), bytes_per_second, items_per_second (descriptors).
// Run: build/bin/bench_dma --benchmark_counters_tabular=true   (figures in docs/DMA.md)
#include <benchmark/benchmark.h>
#include <sys/mman.h>

#include <algorithm>
#include <chrono>
#include <cstring>
#include <memory>
#include <vector>

#include "opensrd/dma.h"

#if defined(__x86_64__)
#include <immintrin.h>
#endif

namespace {
using namespace opensrd;
using namespace opensrd::dma;
using Clock = std::chrono::steady_clock;

enum Mode { kOff = 0, kOn = 1, kAuto = 2, kHelper = 3 };
const char* kModeNames[] = {"off", "on", "auto", "helper"};

// Sources sit one per page run with a page gap between them (no adjacent-line or stream
// prefetch can bring the next buffer in for free); destinations likewise. Each buffer starts at
// a different line of its page (a 7-line step), so small buffers do not all fall into the same
// few cache sets, as they would at one offset per page (that aliasing, not prefetch, then
// decides the result).
struct Buffers {
  Buffers(size_t size, size_t depth) : size(size), depth(depth) {
    stride = (size + 4095) / 4096 * 4096 + 8192;
    bytes = stride * depth * 2;
    void* p = mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) std::abort();
    base = static_cast<uint8_t*>(p);
    std::memset(base, 0x5a, bytes);  // fault every page in before timing
  }
  ~Buffers() { munmap(base, bytes); }
  uint8_t* src(size_t i) const { return base + stride * i + Color(i); }
  uint8_t* dst(size_t i) const { return base + stride * (depth + i) + Color(i + 3); }
  static size_t Color(size_t i) { return (i * 7 % 64) * 64; }
  void FlushSources() const {
#if defined(__x86_64__)
    for (size_t i = 0; i < depth; ++i) {
      for (size_t off = 0; off < size; off += 64) _mm_clflush(src(i) + off);
    }
    _mm_mfence();
#endif
  }
  size_t size, depth, stride, bytes;
  uint8_t* base;
};

void Report(benchmark::State& state, double total_ns, size_t size, size_t depth) {
  const double descs = static_cast<double>(state.iterations()) * static_cast<double>(depth);
  state.SetBytesProcessed(static_cast<int64_t>(descs) * static_cast<int64_t>(size));
  state.SetItemsProcessed(static_cast<int64_t>(descs));
  state.counters["ns_per_desc"] = total_ns / descs;
}

void BM_Memcpy(benchmark::State& state) {
  const size_t size = state.range(0), depth = state.range(1);
  Buffers b(size, depth);
  double total = 0;
  for (auto _ : state) {
    b.FlushSources();
    const auto t0 = Clock::now();
    for (size_t i = 0; i < depth; ++i) std::memcpy(b.dst(i), b.src(i), size);
    benchmark::ClobberMemory();
    const double ns = std::chrono::duration<double, std::nano>(Clock::now() - t0).count();
    total += ns;
    state.SetIterationTime(ns * 1e-9);
  }
  Report(state, total, size, depth);
}

void RunDma(benchmark::State& state, bool cold) {
  const size_t size = state.range(0), depth = state.range(1);
  const auto mode = static_cast<Mode>(state.range(2));
  state.SetLabel(kModeNames[mode]);
  Buffers b(size, depth);
  EngineOptions o;
  o.prefetch.mode = mode == kOn     ? PrefetchMode::kOn
                    : mode == kAuto ? PrefetchMode::kAuto
                                    : PrefetchMode::kOff;
  o.prefetch.helper_thread = mode == kHelper;
  o.budget = 64;
  auto ring = SharedRing::Create(64);  // before the engine: the engine's helper reads it
  DmaEngine engine(o);
  if (!ring.ok() || !engine.RegisterRegion(b.base, b.bytes).ok() ||
      !engine.AddChannel(ring.value().get()).ok()) {
    state.SkipWithError("engine setup failed");
    return;
  }
  RingProducer producer(ring.value().get());
  Completion done[64];
  double total = 0;
  uint64_t errors = 0;
  for (auto _ : state) {
    if (cold) b.FlushSources();
    const auto t0 = Clock::now();
    for (size_t i = 0; i < depth; ++i) {
      Descriptor d{};
      d.opcode = static_cast<uint8_t>(Opcode::kCopy);
      d.src = reinterpret_cast<uint64_t>(b.src(i));
      d.dst = reinterpret_cast<uint64_t>(b.dst(i));
      d.length = static_cast<uint32_t>(size);
      (void)producer.Enqueue(d);
    }
    producer.Submit();
    size_t reaped = 0;
    while (reaped < depth) {
      engine.Poll();
      const size_t n = producer.Reap(done, depth - reaped);
      for (size_t i = 0; i < n; ++i) errors += done[i].status != 1;
      reaped += n;
    }
    const double ns = std::chrono::duration<double, std::nano>(Clock::now() - t0).count();
    total += ns;
    state.SetIterationTime(ns * 1e-9);
  }
  if (errors != 0) state.SkipWithError("descriptors failed");
  Report(state, total, size, depth);
  if (mode == kAuto) state.counters["auto_on"] = engine.prefetch_active();
}

// Engine state of the paired benchmark: one engine per prefetch mode over one set of buffers.
struct Rig {
  Rig(const Buffers& b, PrefetchMode mode, bool helper = false) {
    auto r = SharedRing::Create(64);
    if (!r.ok()) std::abort();
    ring = std::move(r.value());
    EngineOptions o;
    o.prefetch.mode = mode;
    o.prefetch.helper_thread = helper;
    // The flush between batches takes longer than the default 50 us of spinning: without this
    // the helper would be asleep whenever a batch arrives and measure only its wake-up.
    o.prefetch.helper_spin_us = 20000;
    engine = std::make_unique<DmaEngine>(o);
    if (!engine->RegisterRegion(b.base, b.bytes).ok() || !engine->AddChannel(ring.get()).ok()) {
      std::abort();
    }
    producer = std::make_unique<RingProducer>(ring.get());
  }
  // Posts depth copies with one doorbell and runs them to completion; returns failures.
  uint64_t Run(const Buffers& b) {
    for (size_t i = 0; i < b.depth; ++i) {
      Descriptor d{};
      d.opcode = static_cast<uint8_t>(Opcode::kCopy);
      d.src = reinterpret_cast<uint64_t>(b.src(i));
      d.dst = reinterpret_cast<uint64_t>(b.dst(i));
      d.length = static_cast<uint32_t>(b.size);
      (void)producer->Enqueue(d);
    }
    producer->Submit();
    uint64_t failed = 0;
    for (size_t reaped = 0; reaped < b.depth;) {
      engine->Poll();
      const size_t n = producer->Reap(done, b.depth - reaped);
      for (size_t i = 0; i < n; ++i) failed += done[i].status != 1;
      reaped += n;
    }
    return failed;
  }
  std::unique_ptr<SharedRing> ring;  // declared first: destroyed after the engine
  std::unique_ptr<DmaEngine> engine;
  std::unique_ptr<RingProducer> producer;
  Completion done[64];
};

// memcpy and the engine with prefetch off, on, auto and the helper thread, measured in turn
// inside every iteration (the order rotates) on the same cold buffers. On a machine shared with
// other work the background load then falls on all of them alike, so their ratios are far
// steadier than those of separate benchmarks. (The helper thread of the idle engines sleeps in
// 50 us naps while the others run.) Counters: median ns per descriptor of each, on/off.
void RunPaired(benchmark::State& state, bool cold) {
  const size_t size = state.range(0), depth = state.range(1);
  Buffers b(size, depth);
  Rig off(b, PrefetchMode::kOff), on(b, PrefetchMode::kOn), aut(b, PrefetchMode::kAuto),
      helper(b, PrefetchMode::kOff, true);
  Rig* rigs[] = {nullptr, &off, &on, &aut, &helper};
  constexpr uint64_t kKinds = 5;
  std::vector<double> ns[kKinds];
  uint64_t failed = 0, turn = 0;
  for (auto _ : state) {
    double sum = 0;
    for (uint64_t k = 0; k < kKinds; ++k) {
      const uint64_t which = (turn + k) % kKinds;
      if (cold) b.FlushSources();
      const auto t0 = Clock::now();
      if (which == 0) {
        for (size_t i = 0; i < depth; ++i) std::memcpy(b.dst(i), b.src(i), size);
        benchmark::ClobberMemory();
      } else {
        failed += rigs[which]->Run(b);
      }
      const double t = std::chrono::duration<double, std::nano>(Clock::now() - t0).count();
      ns[which].push_back(t / static_cast<double>(depth));
      sum += t;
    }
    ++turn;
    state.SetIterationTime(sum * 1e-9);
  }
  if (failed != 0) state.SkipWithError("descriptors failed");
  double m[kKinds];
  for (uint64_t i = 0; i < kKinds; ++i) {
    std::nth_element(ns[i].begin(), ns[i].begin() + ns[i].size() / 2, ns[i].end());
    m[i] = ns[i][ns[i].size() / 2];
  }
  state.counters["memcpy_ns"] = m[0];
  state.counters["off_ns"] = m[1];
  state.counters["on_ns"] = m[2];
  state.counters["auto_ns"] = m[3];
  state.counters["helper_ns"] = m[4];
  state.counters["on/off"] = m[2] / m[1];
  state.counters["auto/off"] = m[3] / m[1];
  state.counters["helper/off"] = m[4] / m[1];
  state.counters["auto_on"] = aut.engine->prefetch_active();
}

void BM_Paired(benchmark::State& state) {
  RunPaired(state, true);
}
void BM_PairedWarm(benchmark::State& state) {
  RunPaired(state, false);
}

void BM_Dma(benchmark::State& state) {
  RunDma(state, true);
}
void BM_DmaWarm(benchmark::State& state) {
  RunDma(state, false);
}

void SizesAndDepths(benchmark::internal::Benchmark* b) {
  for (int64_t depth : {1, 8, 64}) {
    for (int64_t size : {64, 512, 4096, 32768, 262144, 1048576}) b->Args({size, depth});
  }
}
void SizesDepthsAndModes(benchmark::internal::Benchmark* b) {
  for (int64_t depth : {1, 8, 64}) {
    for (int64_t size : {64, 512, 4096, 32768, 262144, 1048576}) {
      for (int64_t mode : {kOff, kOn, kAuto, kHelper}) b->Args({size, depth, mode});
    }
  }
}

BENCHMARK(BM_Memcpy)->Apply(SizesAndDepths)->ArgNames({"size", "depth"})->UseManualTime();
BENCHMARK(BM_Dma)->Apply(SizesDepthsAndModes)->ArgNames({"size", "depth", "mode"})->UseManualTime();
BENCHMARK(BM_Paired)->Apply(SizesAndDepths)->ArgNames({"size", "depth"})->UseManualTime();
BENCHMARK(BM_PairedWarm)
    ->ArgsProduct({{64, 512, 4096, 32768}, {8, 64}})
    ->ArgNames({"size", "depth"})
    ->UseManualTime();
BENCHMARK(BM_DmaWarm)
    ->ArgsProduct({{64, 4096}, {64}, {kOff, kOn, kAuto}})
    ->ArgNames({"size", "depth", "mode"})
    ->UseManualTime();

}  // namespace
