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

// The cluster key's cost per datagram (seal at the sender + open at the receiver), by mode and
// datagram size: what --key-file adds to each packet.
#include <array>

#include "common/rng.h"
#include "transport/protection.h"

namespace {
void BM_ProtectSealOpen(benchmark::State& state) {
  const auto mode = static_cast<opensrd::KeyMode>(state.range(0));
  const size_t len = static_cast<size_t>(state.range(1));
  std::array<uint8_t, 32> key;
  key.fill(9);
  opensrd::Rng seeded(1);
  opensrd::PacketProtection p(mode, key, &seeded);
  std::vector<uint8_t> buf(len + opensrd::PacketProtection::kTrailerLen, 0x5A), out(buf.size());
  for (auto _ : state) {
    const size_t n = p.Seal(buf, len);
    benchmark::DoNotOptimize(p.Open({buf.data(), n}, out));
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * len));
}
BENCHMARK(BM_ProtectSealOpen)
    ->ArgsProduct({{static_cast<int64_t>(opensrd::KeyMode::kMac),
                    static_cast<int64_t>(opensrd::KeyMode::kAead)},
                   {64, 1456, 8248}});
}  // namespace
