// What --pcap costs the I/O thread per datagram: PcapWriter::Source::Append, one clock read and
// a copy into the ring. BM_PcapAppend is the accepted path (a ring large enough for the whole
// timed loop, already touched, the writer thread draining to /dev/null); BM_PcapAppendFull is
// a full ring, where a datagram is counted as dropped instead of waited for.
#include <benchmark/benchmark.h>

#include <chrono>
#include <thread>
#include <vector>

#include "common/pcap_writer.h"

namespace {
using namespace opensrd;

constexpr size_t kRing = 512u << 20;
constexpr int kTimed = 30000;  // 30000 x 8248 B fits the ring

void WaitDrained(PcapWriter& w) {
  for (int i = 0; i < 10000; ++i) {
    const PcapStats s = w.stats();
    if (s.written == s.captured) return;
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
}

void BM_PcapAppend(benchmark::State& state) {
  auto w = PcapWriter::Open({.path = "/dev/null", .ring_bytes = kRing});
  if (!w.ok()) {
    state.SkipWithError(w.status().ToString().c_str());
    return;
  }
  PcapWriter::Source* src = (*w)->NewSource();
  std::vector<uint8_t> dgram(state.range(0), 0x5A);
  const NetAddr a{.ip = 0x7F000001, .port = 7000}, b{.ip = 0x7F000001, .port = 7001};
  // Touch the whole ring once (page faults are not the steady state), let the writer drain.
  for (size_t done = 0; done < kRing; done += dgram.size() + 80) {
    src->Append(a, b, dgram);
    if ((done / (dgram.size() + 80)) % 4096 == 0) WaitDrained(**w);
  }
  WaitDrained(**w);
  const uint64_t dropped_before = (*w)->stats().dropped;
  for (auto _ : state) src->Append(a, b, dgram);
  state.SetBytesProcessed(state.iterations() * state.range(0));
  state.counters["dropped"] = static_cast<double>((*w)->stats().dropped - dropped_before);
  (*w)->Close();
}
BENCHMARK(BM_PcapAppend)->Arg(64)->Arg(1456)->Arg(8248)->Iterations(kTimed);

void BM_PcapAppendFull(benchmark::State& state) {
  auto w = PcapWriter::Open({.path = "/dev/null", .ring_bytes = 4096, .drain_period_ms = 60000});
  PcapWriter::Source* src = (*w)->NewSource();
  std::vector<uint8_t> dgram(state.range(0), 0x5A);
  const NetAddr a{.ip = 0x7F000001, .port = 7000}, b{.ip = 0x7F000001, .port = 7001};
  for (int i = 0; i < 10; ++i) src->Append(a, b, dgram);  // fill it
  for (auto _ : state) src->Append(a, b, dgram);
  (*w)->Close();
}
BENCHMARK(BM_PcapAppendFull)->Arg(1456);

}  // namespace
