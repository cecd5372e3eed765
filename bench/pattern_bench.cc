// What `opensrd perf` pays per payload byte: FillPattern on the sender, CheckPattern on the
// receiver (common/pattern.h), against memcpy of the same size as the floor.
#include <benchmark/benchmark.h>

#include <cstring>
#include <vector>

#include "common/pattern.h"

namespace {
using namespace opensrd;

void BM_FillPattern(benchmark::State& state) {
  std::vector<uint8_t> buf(state.range(0));
  uint64_t key = 1;
  for (auto _ : state) {
    FillPattern(key++, buf.data(), buf.size());
    benchmark::ClobberMemory();
  }
  state.SetBytesProcessed(state.iterations() * state.range(0));
}
BENCHMARK(BM_FillPattern)->Arg(64)->Arg(1400)->Arg(65536);

void BM_CheckPattern(benchmark::State& state) {
  std::vector<uint8_t> buf(state.range(0));
  FillPattern(7, buf.data(), buf.size());
  for (auto _ : state) benchmark::DoNotOptimize(CheckPattern(7, buf.data(), buf.size()));
  state.SetBytesProcessed(state.iterations() * state.range(0));
}
BENCHMARK(BM_CheckPattern)->Arg(64)->Arg(1400)->Arg(65536);

void BM_Memcpy(benchmark::State& state) {
  std::vector<uint8_t> src(state.range(0), 1), dst(state.range(0));
  for (auto _ : state) {
    std::memcpy(dst.data(), src.data(), dst.size());
    benchmark::ClobberMemory();
  }
  state.SetBytesProcessed(state.iterations() * state.range(0));
}
BENCHMARK(BM_Memcpy)->Arg(64)->Arg(1400)->Arg(65536);
}  // namespace
