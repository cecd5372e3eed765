// Per-packet costs on the hot path: CRC32C and encode/parse of a data packet.
#include <benchmark/benchmark.h>

#include <vector>

#include "common/crc32c.h"
#include "transport/wire.h"

namespace {
using namespace opensrd;

void BM_Crc32c(benchmark::State& state) {
  std::vector<uint8_t> buf(state.range(0), 0xA5);
  for (auto _ : state) benchmark::DoNotOptimize(Crc32c(buf.data(), buf.size()));
  state.SetBytesProcessed(state.iterations() * state.range(0));
}
BENCHMARK(BM_Crc32c)->Arg(64)->Arg(256)->Arg(1400)->Arg(8192)->Arg(65536);

void BM_EncodeParseData(benchmark::State& state) {
  std::vector<uint8_t> payload(state.range(0), 1), buf(wire::kMaxDatagram);
  wire::DataExt d{.msg_len = static_cast<uint32_t>(payload.size())};
  wire::Packet p;
  for (auto _ : state) {
    size_t n = wire::EncodeData(wire::Common{}, d, payload, buf);
    benchmark::DoNotOptimize(wire::Parse({buf.data(), n}, p));
  }
  state.SetBytesProcessed(state.iterations() * state.range(0));
}
BENCHMARK(BM_EncodeParseData)->Arg(1400)->Arg(8192);
}  // namespace
