// Per-packet costs of the RDMA receive pipeline: the generic table-driven header decode for
// RoCEv2 and iWARP, a whole RoCEv2 packet parse (ICRC included), and MPA deframing with CRC32C.
#include <benchmark/benchmark.h>

#include <vector>

#include "rdma/iwarp.h"
#include "rdma/mpa.h"
#include "rdma/roce.h"

namespace {
using namespace opensrd;
using namespace opensrd::rdma;

RdmaCommand Write(const std::vector<uint8_t>& payload) {
  RdmaCommand c;
  c.opcode = RdmaOpcode::kWriteOnly;
  c.dest_qp = 0x11;
  c.psn = 5;
  c.va = 0x7F0000001000;
  c.rkey = 0x1234;
  c.dma_length = static_cast<uint32_t>(payload.size());
  c.payload = payload;
  return c;
}

void BM_RoceDecodeHeaders(benchmark::State& state) {
  std::vector<uint8_t> payload(64, 1);
  std::vector<uint8_t> t = *roce::EncodeTransport(Write(payload));
  for (auto _ : state) benchmark::DoNotOptimize(roce::DecodeTransport(t));
}
BENCHMARK(BM_RoceDecodeHeaders);

void BM_RoceParsePacket(benchmark::State& state) {
  std::vector<uint8_t> payload(state.range(0), 1);
  roce::Ipv4Udp ip;
  ip.src_ip = 0x0A000001;
  ip.dst_ip = 0x0A000002;
  std::vector<uint8_t> p = *roce::BuildPacket(ip, Write(payload));
  for (auto _ : state) benchmark::DoNotOptimize(roce::ParsePacket(p));
  state.SetBytesProcessed(state.iterations() * state.range(0));
}
BENCHMARK(BM_RoceParsePacket)->Arg(64)->Arg(1024)->Arg(4096);

void BM_IwarpDecodeUlpdu(benchmark::State& state) {
  std::vector<uint8_t> payload(64, 1);
  std::vector<uint8_t> u = *iwarp::EncodeUlpdu(Write(payload));
  for (auto _ : state) benchmark::DoNotOptimize(iwarp::DecodeUlpdu(u));
}
BENCHMARK(BM_IwarpDecodeUlpdu);

void BM_MpaDeframe(benchmark::State& state) {
  std::vector<uint8_t> payload(state.range(0), 1);
  std::vector<uint8_t> f = *mpa::EncodeFpdu(*iwarp::EncodeUlpdu(Write(payload)));
  mpa::MpaReceiver rx({});
  for (auto _ : state) {
    rx.Feed(f);
    benchmark::DoNotOptimize(rx.Next());
  }
  state.SetBytesProcessed(state.iterations() * state.range(0));
}
BENCHMARK(BM_MpaDeframe)->Arg(64)->Arg(1024)->Arg(4096);

}  // namespace
