// `opensrd demo`: two UdpEndpoints on 127.0.0.1 in one process, driven by one thread: a sender
// with one socket per path and a receiver with one socket. Loss is injected on the sender's
// path 1 (both directions). Every received byte is checked against its pattern; the report
// shows goodput, latency, retransmissions and how the packets spread over the paths.
#include <cmath>
#include <cstdio>
#include <memory>
#include <vector>

#include "common/rng.h"
#include "tools/opensrd/capture.h"
#include "tools/opensrd/commands.h"
#include "tools/opensrd/latency.h"
#include "tools/opensrd/perf_protocol.h"
#include "transport/udp_endpoint.h"

namespace opensrd::cli {

namespace {

constexpr uint32_t kMinSize = 64;
constexpr uint32_t kMaxSize = 64 << 10;
constexpr int kInflight = 32;
constexpr int kRecvBuffers = 64;
constexpr Micros kDeadlineUs = 30'000'000;

int Fail(const std::string& what) {
  std::fprintf(stderr, "opensrd demo: %s\n", what.c_str());
  return 1;
}

Result<std::unique_ptr<UdpEndpoint>> MakeEndpoint(int sockets, uint64_t seed, FaultSpec fault,
                                                  PcapWriter::Source* pcap) {
  UdpEndpointOptions uo;
  uo.pcap = pcap;
  uo.endpoint.seed = seed;
  uo.endpoint.max_payload = 8192;  // loopback's MTU is 64 KiB
  uo.spin_us = 0;
  for (int i = 0; i < sockets; ++i) uo.local.push_back({0x7F000001, 0});
  uo.inject_faults = !fault.paths.empty();
  uo.fault = std::move(fault);
  uo.fault_seed = seed;
  return UdpEndpoint::Create(uo);
}

}  // namespace

int RunDemo(const DemoOptions& o) {
  // Both endpoints are driven by this thread, so they share one capture source.
  Result<std::unique_ptr<PcapWriter>> capture = OpenCapture(o.pcap);
  if (!capture.ok()) {
    std::fprintf(stderr, "opensrd demo: %s\n", capture.status().message().c_str());
    return 2;
  }
  PcapWriter::Source* pcap = *capture ? (*capture)->NewSource() : nullptr;
  FaultSpec fault;
  if (o.paths > 1 && o.loss > 0) fault.paths[1].loss = o.loss;
  auto tx_or = MakeEndpoint(o.paths, o.seed * 2 + 1, fault, pcap);
  if (!tx_or.ok()) return Fail(tx_or.status().ToString());
  auto rx_or = MakeEndpoint(1, o.seed * 2 + 2, {}, pcap);
  if (!rx_or.ok()) return Fail(rx_or.status().ToString());
  UdpEndpoint& tx = *tx_or.value();
  UdpEndpoint& rx = *rx_or.value();

  // Receiver: a pool of buffers, each checked and reposted as its message lands.
  const CqId rcq = rx.endpoint().CreateCompletionQueue();
  std::vector<std::unique_ptr<uint8_t[]>> rbufs;
  for (int i = 0; i < kRecvBuffers; ++i) {
    rbufs.emplace_back(new uint8_t[kMaxSize]);
    Status s = rx.endpoint().PostRecv(rcq, rbufs.back().get(), kMaxSize, i);
    if (!s.ok()) return Fail(s.ToString());
  }

  // Sender: one peer over every path, kInflight messages in flight.
  std::vector<PathSpec> paths;
  for (int i = 0; i < o.paths; ++i)
    paths.push_back({static_cast<uint16_t>(i), rx.local_address(0)});
  Result<PeerId> peer = tx.endpoint().AddPeer(paths, tx.NowNs());
  if (!peer.ok()) return Fail(peer.status().ToString());
  const CqId scq = tx.endpoint().CreateCompletionQueue();
  Result<SqId> sq = tx.endpoint().CreateSendQueue({.cq = scq});
  if (!sq.ok()) return Fail(sq.status().ToString());

  Rng rng(o.seed);
  std::vector<std::unique_ptr<uint8_t[]>> sbufs;
  std::vector<Micros> posted_at(kInflight);
  std::vector<uint32_t> free_slots;
  for (int i = 0; i < kInflight; ++i) {
    sbufs.emplace_back(new uint8_t[kMaxSize]);
    free_slots.push_back(i);
  }
  LatencyRecorder lat;
  uint64_t posted = 0, sent_ok = 0, failed = 0, recv_ok = 0, recv_bad = 0, bytes = 0;
  std::vector<Completion> comps(64);
  const Micros start = tx.Now();
  Micros last = start;
  while (sent_ok + failed < o.messages || recv_ok + recv_bad < sent_ok) {
    while (posted < o.messages && !free_slots.empty()) {
      const uint32_t slot = free_slots.back();
      // Log-uniform sizes: as many small messages as large ones.
      const double l = std::log(kMinSize) + rng.Unit() * (std::log(kMaxSize) - std::log(kMinSize));
      const uint32_t len = static_cast<uint32_t>(std::exp(l));
      FillMessage(sbufs[slot].get(), len, AppKind::kData, o.seed << 32 | posted, posted);
      const Sge sge{sbufs[slot].get(), len};
      posted_at[slot] = tx.Now();
      Status s = tx.endpoint().PostSend(*sq, *peer, {&sge, 1}, slot, tx.NowNs());
      if (!s.ok()) return Fail("PostSend: " + s.ToString());
      free_slots.pop_back();
      ++posted;
    }
    for (UdpEndpoint* u : {&tx, &rx}) {
      Result<size_t> r = u->Poll(0);
      if (!r.ok()) return Fail(r.status().ToString());
    }
    size_t n;
    while ((n = tx.endpoint().PollCompletions(scq, comps)) > 0) {
      for (size_t i = 0; i < n; ++i) {
        free_slots.push_back(static_cast<uint32_t>(comps[i].tag));
        if (comps[i].status != Code::kOk) {
          ++failed;
          continue;
        }
        ++sent_ok;
        bytes += comps[i].length;
        last = tx.Now();
        lat.AddUs(last - posted_at[comps[i].tag]);
      }
    }
    while ((n = rx.endpoint().PollCompletions(rcq, comps)) > 0) {
      for (size_t i = 0; i < n; ++i) {
        AppHeader h;
        const bool ok = comps[i].status == Code::kOk &&
                        CheckMessage(rbufs[comps[i].tag].get(), comps[i].length, h);
        ++(ok ? recv_ok : recv_bad);
        Status s = rx.endpoint().PostRecv(rcq, rbufs[comps[i].tag].get(), kMaxSize, comps[i].tag);
        if (!s.ok()) return Fail(s.ToString());
      }
    }
    if (tx.Now() - start > kDeadlineUs) return Fail("did not finish within 30 s");
  }

  const double secs = std::max(1e-6, static_cast<double>(last - start) / 1e6);
  const LatencySummary l = lat.Summarize();
  const EndpointStats st = tx.endpoint().stats();
  const bool verified = failed == 0 && recv_bad == 0 && recv_ok == o.messages;
  std::printf("opensrd demo: %llu messages (%u B..%u KiB, %.1f MB) over %d paths on 127.0.0.1",
              static_cast<unsigned long long>(o.messages), kMinSize, kMaxSize >> 10,
              static_cast<double>(bytes) / 1e6, o.paths);
  if (!fault.paths.empty()) std::printf(", %.1f%% loss injected on path 1", o.loss * 100);
  std::printf("\n  goodput      %.2f Gbit/s in %.3f s\n",
              static_cast<double>(bytes) * 8 / secs / 1e9, secs);
  std::printf(
      "  latency      post to completion: p50 %.0f us, p99 %.0f us, p99.9 %.0f us, max "
      "%.0f us\n",
      l.p50, l.p99, l.p999, l.max);
  std::printf("  retransmits  %llu (injector dropped %llu datagrams)\n",
              static_cast<unsigned long long>(st.retransmits),
              static_cast<unsigned long long>(tx.stats().fault_dropped));
  uint64_t total = 0;
  const std::vector<PathStats> ps = tx.endpoint().path_stats(*peer);
  for (const PathStats& p : ps) total += p.sent + p.retransmitted;
  for (const PathStats& p : ps) {
    std::printf(
        "  path %u       %5.1f%% of packets (sent %llu, retransmitted %llu, lost %llu), "
        "srtt %llu us, %s\n",
        p.id, total ? 100.0 * static_cast<double>(p.sent + p.retransmitted) / total : 0.0,
        static_cast<unsigned long long>(p.sent), static_cast<unsigned long long>(p.retransmitted),
        static_cast<unsigned long long>(p.lost), static_cast<unsigned long long>(p.srtt_us),
        PathStateName(p.state));
  }
  std::printf("  verified     %s (%llu of %llu messages, every byte checked at the receiver)\n",
              verified ? "yes" : "NO", static_cast<unsigned long long>(recv_ok),
              static_cast<unsigned long long>(o.messages));
  if (!verified) return 1;
  const int storage = o.storage_ops > 0 ? RunStorageDemo(o.storage_ops, o.seed, capture->get()) : 0;
  if (*capture) std::printf("  %s\n", CaptureSummary(FinishCapture(capture->get())).c_str());
  return storage;
}

}  // namespace opensrd::cli
