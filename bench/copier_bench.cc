// The transport's payload copies alone (src/transport/payload_copier.h): memcpy against the DMA
// engine in its synchronous mode, with the per-copy region mapping the transport does, and the
// engine's look-ahead prefetch off / on / auto. Warm buffers (the transport copies out of a
// datagram it has just received or into one it is about to send): this measures the engine's
// fixed cost per copy, which is what the end-to-end figures in docs/PERF.md pay.
//   build/bin/bench_copier --benchmark_min_time=0.2
#include <benchmark/benchmark.h>

#include <vector>

#include "transport/payload_copier.h"

namespace opensrd {
namespace {

// mode: 0 direct, 1 engine prefetch off, 2 on, 3 auto.
PayloadCopier MakeCopier(int64_t mode) {
  if (mode == 0) return PayloadCopier(PayloadCopy::kDirect);
  const dma::PrefetchMode p = mode == 1   ? dma::PrefetchMode::kOff
                              : mode == 2 ? dma::PrefetchMode::kOn
                                          : dma::PrefetchMode::kAuto;
  return PayloadCopier(PayloadCopy::kEngine, p);
}

void BM_Place(benchmark::State& state) {
  const size_t size = static_cast<size_t>(state.range(0));
  PayloadCopier copier = MakeCopier(state.range(1));
  std::vector<uint8_t> payload(size, 1), buffer(65536);
  for (auto _ : state) {
    Status s = copier.Place(buffer.data(), buffer.size(), 4096, payload);
    benchmark::DoNotOptimize(s);
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * size));
}

// A fragment of `size` bytes gathered from `elements` SGL elements of equal length.
void BM_Gather(benchmark::State& state) {
  const uint32_t size = static_cast<uint32_t>(state.range(0));
  const uint32_t elements = static_cast<uint32_t>(state.range(2));
  PayloadCopier copier = MakeCopier(state.range(1));
  std::vector<std::vector<uint8_t>> parts(elements, std::vector<uint8_t>(size / elements, 2));
  std::vector<Sge> sgl;
  std::vector<uint32_t> ends;
  uint32_t end = 0;
  for (auto& p : parts) {
    sgl.push_back({p.data(), p.size()});
    ends.push_back(end += static_cast<uint32_t>(p.size()));
  }
  std::vector<uint8_t> datagram(size + 128);
  for (auto _ : state) {
    Status s = copier.Gather(sgl, ends, 0, end, datagram, 64);
    benchmark::DoNotOptimize(s);
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * end));
}

}  // namespace
}  // namespace opensrd

BENCHMARK(opensrd::BM_Place)
    ->ArgsProduct({{64, 1400, 8192}, {0, 1, 2, 3}})
    ->ArgNames({"size", "mode"});
BENCHMARK(opensrd::BM_Gather)
    ->ArgsProduct({{1400, 8192}, {0, 1, 2, 3}, {1, 8}})
    ->ArgNames({"size", "mode", "elements"});
