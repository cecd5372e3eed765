// Per-event CPU cost of one server endpoint as the number of peers grows (issue 12, "state that
// scales"): 10, 1,000 and 10,000 clients, each with an established context, all in memory (no
// sockets, no simulator). A scan over every context per event would make the cost grow with
// the peer count; the timer set and ready list keep it flat.
//   BM_ServerDatagram: the server handles one client's data packet and sends what it owes.
//   BM_ServerTimer: one context's delayed-ack timer fires among N; the server sends that ack.
#include <benchmark/benchmark.h>

#include <memory>
#include <vector>

#include "opensrd/transport.h"
#include "transport/wire.h"

namespace {
using namespace opensrd;

const NetAddr kServer{0x0A000001, 7000};
NetAddr ClientAddr(size_t i) {
  return {0x0B000000u + static_cast<uint32_t>(i), 5000};
}

struct Fleet {
  std::unique_ptr<Endpoint> server;
  std::vector<std::unique_ptr<Endpoint>> clients;
  std::vector<PeerId> peers;
  std::vector<SqId> sqs;
  CqId scq = 0;
  Nanos now = 1;
  std::vector<uint8_t> buf = std::vector<uint8_t>(wire::kMaxDatagram);
  std::vector<std::vector<uint8_t>> rbufs;
  uint8_t payload[64] = {};

  explicit Fleet(size_t n) {
    server = std::make_unique<Endpoint>(
        EndpointConfig{.node_id = 1, .identity_seed = 1, .static_key_seed = 1});
    scq = server->CreateCompletionQueue();
    rbufs.assign(256, std::vector<uint8_t>(128));
    for (size_t i = 0; i < rbufs.size(); ++i) (void)server->PostRecv(scq, rbufs[i].data(), 128, i);
    for (size_t i = 0; i < n; ++i) {
      clients.push_back(std::make_unique<Endpoint>(
          EndpointConfig{.node_id = 100 + i, .identity_seed = 100 + i, .static_key_seed = 7}));
      Endpoint& c = *clients.back();
      const CqId cq = c.CreateCompletionQueue();
      sqs.push_back(c.CreateSendQueue({.cq = cq}).value());
      peers.push_back(c.AddPeer({{0, kServer}}, now).value());
      Exchange(i);
    }
  }
  // Client i and the server trade datagrams until both are quiet.
  void Exchange(size_t i) {
    Endpoint& c = *clients[i];
    for (int round = 0; round < 8; ++round) {
      Transmit t;
      bool any = false;
      while (c.PollTransmit(now, buf, t)) {
        server->HandleDatagram(now, 0, ClientAddr(i), {buf.data(), t.len});
        any = true;
      }
      while (server->PollTransmit(now, buf, t)) {
        c.HandleDatagram(now, 0, kServer, {buf.data(), t.len});
        any = true;
      }
      if (!any) break;
    }
    Drain();
  }
  void Drain() {
    Completion done[64];
    size_t k;
    while ((k = server->PollCompletions(scq, done)) > 0) {
      for (size_t j = 0; j < k; ++j) (void)server->PostRecv(scq, done[j].buffer, 128, done[j].tag);
    }
  }
  // Client i's next data packet (it posts a 64-byte message), not yet delivered.
  size_t DataFrom(size_t i, std::vector<uint8_t>& out) {
    Endpoint& c = *clients[i];
    Sge sge{payload, sizeof payload};
    (void)c.PostSend(sqs[i], peers[i], {&sge, 1}, 0, now);
    Transmit t;
    if (!c.PollTransmit(now, buf, t)) return 0;
    out.assign(buf.begin(), buf.begin() + static_cast<long>(t.len));
    return t.len;
  }
};

void BM_ServerDatagram(benchmark::State& state) {
  Fleet f(static_cast<size_t>(state.range(0)));
  std::vector<std::vector<uint8_t>> batch(f.clients.size());
  size_t next = 0;
  uint64_t handled = 0;
  Transmit t;
  for (auto _ : state) {
    state.PauseTiming();
    const size_t i = next++ % f.clients.size();
    f.DataFrom(i, batch[i]);
    state.ResumeTiming();
    f.server->HandleDatagram(f.now, 0, ClientAddr(i), batch[i]);
    while (f.server->PollTransmit(f.now, f.buf, t)) {
    }
    ++handled;
    state.PauseTiming();
    f.Drain();
    f.now += 20'000;  // the delayed ack falls due; run it outside the timing
    if (f.server->NextTimeout() <= f.now) f.server->HandleTimeout(f.now);
    while (f.server->PollTransmit(f.now, f.buf, t))
      f.clients[i]->HandleDatagram(f.now, 0, kServer, {f.buf.data(), t.len});
    state.ResumeTiming();
  }
  state.SetItemsProcessed(static_cast<int64_t>(handled));
  state.counters["peers"] = static_cast<double>(f.clients.size());
}

void BM_ServerTimer(benchmark::State& state) {
  Fleet f(static_cast<size_t>(state.range(0)));
  std::vector<uint8_t> d;
  size_t next = 0;
  Transmit t;
  for (auto _ : state) {
    state.PauseTiming();
    const size_t i = next++ % f.clients.size();
    f.DataFrom(i, d);
    f.server->HandleDatagram(f.now, 0, ClientAddr(i), d);
    while (f.server->PollTransmit(f.now, f.buf, t)) {
    }
    f.now += 20'000;  // past the ack delay
    state.ResumeTiming();
    // The timed part: find the due context among N, run its timer, send its ack.
    const Nanos due = f.server->NextTimeout();
    if (due <= f.now) f.server->HandleTimeout(f.now);
    while (f.server->PollTransmit(f.now, f.buf, t)) {
    }
    state.PauseTiming();
    f.clients[i]->HandleDatagram(f.now, 0, kServer, {f.buf.data(), t.len});
    f.Drain();
    state.ResumeTiming();
  }
  state.SetItemsProcessed(state.iterations());
  state.counters["peers"] = static_cast<double>(f.clients.size());
}

BENCHMARK(BM_ServerDatagram)->Arg(10)->Arg(1000)->Arg(10000)->Unit(benchmark::kNanosecond);
BENCHMARK(BM_ServerTimer)->Arg(10)->Arg(1000)->Arg(10000)->Unit(benchmark::kNanosecond);

}  // namespace
