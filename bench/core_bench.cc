// CPU cost of the sans-I/O SRD core alone: two endpoints wired back to back in memory (no
// sockets, no simulator), so the figures are what the protocol work costs per packet and per
// round trip, the floor under any I/O shell.
#include <benchmark/benchmark.h>

#include <vector>

#include "opensrd/transport.h"
#include "transport/wire.h"

namespace {
using namespace opensrd;

const NetAddr kA{0x7F000001, 5000};
const NetAddr kB{0x7F000001, 6000};

struct Pair {
  Endpoint a;
  Endpoint b;
  CqId cqa, cqb;
  SqId sqa, sqb;
  PeerId to_b;
  Nanos now = 1;
  std::vector<uint8_t> buf = std::vector<uint8_t>(wire::kMaxDatagram);
  uint64_t packets = 0;

  explicit Pair(uint16_t max_payload, uint16_t paths)
      : a(EndpointConfig{.node_id = 1, .seed = 1, .max_payload = max_payload}),
        b(EndpointConfig{.node_id = 2, .seed = 2, .max_payload = max_payload}) {
    cqa = a.CreateCompletionQueue();
    cqb = b.CreateCompletionQueue();
    sqa = a.CreateSendQueue({.cq = cqa}).value();
    sqb = b.CreateSendQueue({.cq = cqb}).value();
    std::vector<PathSpec> ps;
    for (uint16_t i = 0; i < paths; ++i) ps.push_back({i, kB});
    to_b = a.AddPeer(ps, now).value();
    Pump();
  }
  // Moves every datagram both ways until neither side has anything to send; time advances 1 us
  // per exchange so timers stay quiet.
  void Pump() {
    Transmit t;
    bool moved = true;
    while (moved) {
      moved = false;
      now += 1'000;
      while (a.PollTransmit(now, buf, t)) {
        b.HandleDatagram(now, 0, kA, {buf.data(), t.len});
        ++packets;
        moved = true;
      }
      while (b.PollTransmit(now, buf, t)) {
        a.HandleDatagram(now, t.local_socket, kB, {buf.data(), t.len});
        ++packets;
        moved = true;
      }
    }
  }
};

// One 64 B ping and its pong: the core's work per round trip (both ends).
void BM_CorePingPong(benchmark::State& state) {
  Pair p(1400, 4);
  uint8_t ra[64], rb[64], msg[64] = {};
  Sge sge{msg, sizeof msg};
  Completion c[4];
  for (auto _ : state) {
    (void)p.b.PostRecv(p.cqb, rb, sizeof rb, 0);
    (void)p.a.PostRecv(p.cqa, ra, sizeof ra, 0);
    (void)p.a.PostSend(p.sqa, p.to_b, {&sge, 1}, 0, p.now);
    p.Pump();
    size_t n = p.b.PollCompletions(p.cqb, c);
    for (size_t i = 0; i < n; ++i) {
      if (c[i].kind == CompletionKind::kRecv)
        (void)p.b.PostSend(p.sqb, c[i].peer, {&sge, 1}, 0, p.now);
    }
    p.Pump();
    while (p.a.PollCompletions(p.cqa, c) > 0) {
    }
    while (p.b.PollCompletions(p.cqb, c) > 0) {
    }
  }
  state.counters["datagrams_per_rt"] =
      benchmark::Counter(static_cast<double>(p.packets) / static_cast<double>(state.iterations()));
}
BENCHMARK(BM_CorePingPong);

// Bulk: messages of 64 KiB, 16 in flight; reports payload bytes and packets per second of CPU.
void BM_CoreBulk(benchmark::State& state) {
  const auto mtu = static_cast<uint16_t>(state.range(0));
  Pair p(mtu, 4);
  std::vector<uint8_t> msg(64 * 1024, 7), rbuf(16 * 64 * 1024);
  Sge sge{msg.data(), msg.size()};
  Completion c[64];
  uint64_t bytes = 0;
  for (auto _ : state) {
    for (int i = 0; i < 16; ++i) {
      (void)p.b.PostRecv(p.cqb, rbuf.data() + i * 65536, 65536, i);
      (void)p.a.PostSend(p.sqa, p.to_b, {&sge, 1}, i, p.now);
    }
    p.Pump();
    while (p.a.PollCompletions(p.cqa, c) > 0) {
    }
    size_t n;
    while ((n = p.b.PollCompletions(p.cqb, c)) > 0) {
      for (size_t i = 0; i < n; ++i) bytes += c[i].length;
    }
  }
  state.SetBytesProcessed(static_cast<int64_t>(bytes));
  state.counters["packets_per_s"] =
      benchmark::Counter(static_cast<double>(p.packets), benchmark::Counter::kIsRate);
}
BENCHMARK(BM_CoreBulk)->Arg(1400)->Arg(8192);

}  // namespace
