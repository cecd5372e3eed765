// The storage half of `opensrd demo`: a bridge serving a volume backed by a file in a temporary
// directory and an adapter's RemoteVolume, both in this process, talking SRD over 127.0.0.1.
// 4 KiB random writes at queue depth 16, a flush, then every written block read back and
// checked; prints IOPS and latency of each phase.
#include <stdlib.h>

#include <atomic>
#include <cstdio>
#include <filesystem>
#include <functional>
#include <future>
#include <mutex>
#include <random>
#include <thread>
#include <vector>

#include "block/bridge.h"
#include "block/remote_volume.h"
#include "common/pattern.h"
#include "tools/opensrd/commands.h"
#include "tools/opensrd/latency.h"

namespace opensrd::cli {
namespace {

constexpr uint32_t kIo = 4096;
constexpr uint32_t kQd = 16;

struct Phase {
  double secs = 0;
  LatencySummary lat;
  uint64_t errors = 0;
  uint64_t bad = 0;
};

// Runs ops 0..n-1 with kQd in flight; `make(i, buf)` fills the request for op i.
template <typename Make, typename Check>
Phase RunPhase(block::BlockDevice& dev, uint64_t n, Make make, Check check) {
  Phase ph;
  LatencyRecorder rec;
  std::mutex mu;
  std::atomic<uint64_t> done{0}, next{0};
  std::vector<std::vector<uint8_t>> bufs(kQd, std::vector<uint8_t>(kIo));
  const uint64_t start = NowNs();
  std::function<void(uint32_t)> issue = [&](uint32_t slot) {
    const uint64_t i = next++;
    if (i >= n) return;
    block::IoRequest r = make(i, bufs[slot].data());
    const uint64_t t0 = NowNs();
    dev.Submit(r, [&, slot, i, t0](Status s) {
      {
        std::lock_guard<std::mutex> lock(mu);
        rec.AddNs(NowNs() - t0);
        if (!s.ok()) ++ph.errors;
        if (s.ok() && !check(i, bufs[slot].data())) ++ph.bad;
      }
      issue(slot);
      ++done;  // last: once every op is done the caller returns and `issue` is gone
    });
  };
  for (uint32_t s = 0; s < kQd; ++s) issue(s);
  while (done < n) std::this_thread::sleep_for(std::chrono::microseconds(200));
  ph.secs = static_cast<double>(NowNs() - start) / 1e9;
  ph.lat = rec.Summarize();
  return ph;
}

void Print(const char* name, uint64_t n, const Phase& p) {
  std::printf(
      "  %-12s %llu x 4 KiB, QD %u: %.1fk IOPS, latency p50 %.0f us, p99 %.0f us, max %.0f us\n",
      name, static_cast<unsigned long long>(n), kQd, static_cast<double>(n) / p.secs / 1e3,
      p.lat.p50, p.lat.p99, p.lat.max);
}

}  // namespace

int RunStorageDemo(uint64_t ops, uint64_t seed, PcapWriter* capture) {
  std::string dir = "/tmp/opensrd-demo-XXXXXX";
  if (mkdtemp(dir.data()) == nullptr) {
    std::fprintf(stderr, "opensrd demo: cannot make a temporary directory\n");
    return 1;
  }
  struct Cleanup {
    std::string d;
    ~Cleanup() { std::filesystem::remove_all(d); }
  } cleanup{dir};
  constexpr uint64_t kVolume = 64u << 20;
  block::BridgeOptions bo;
  bo.bind = {NetAddr{0x7F000001, 0}};
  bo.volumes = {
      {.name = "demo", .path = dir + "/demo.img", .size = kVolume, .token = "demo-token"}};
  bo.endpoint.max_payload = 8192;
  bo.quiet = true;
  // The bridge and the adapter run their endpoints on their own threads: a source each.
  if (capture != nullptr) bo.pcap = capture->NewSource();
  auto bridge = block::Bridge::Create(bo);
  if (!bridge.ok()) {
    std::fprintf(stderr, "opensrd demo: bridge: %s\n", bridge.status().ToString().c_str());
    return 1;
  }
  std::thread serve([&] { (void)bridge.value()->Run(); });
  block::RemoteVolumeOptions ro;
  ro.bridges = {bridge.value()->local_address(0)};
  ro.volume = "demo";
  ro.token = "demo-token";
  ro.local = NetAddr{0x7F000001, 0};
  ro.endpoint.max_payload = 8192;
  if (capture != nullptr) ro.pcap = capture->NewSource();
  auto vol = block::RemoteVolume::Open(ro);
  int rc = 1;
  if (!vol.ok()) {
    std::fprintf(stderr, "opensrd demo: adapter: %s\n", vol.status().ToString().c_str());
  } else {
    block::RemoteVolume& v = *vol.value();
    const uint64_t blocks = kVolume / kIo;
    std::vector<uint64_t> where(ops);
    std::mt19937_64 rng(seed);
    std::vector<uint8_t> used(blocks, 0);
    for (uint64_t i = 0; i < ops; ++i) {  // distinct random blocks: each read has one answer
      uint64_t b;
      do {
        b = rng() % blocks;
      } while (used[b]);
      used[b] = 1;
      where[i] = b;
    }
    const Phase w = RunPhase(
        v, ops,
        [&](uint64_t i, uint8_t* buf) {
          FillPattern(seed << 32 | i, buf, kIo);
          return block::IoRequest{block::Op::kWrite, 0, where[i] * kIo, kIo, buf};
        },
        [](uint64_t, uint8_t*) { return true; });
    std::promise<Status> flushed;
    v.Submit({block::Op::kFlush}, [&](Status s) { flushed.set_value(s); });
    const bool flush_ok = flushed.get_future().get().ok();
    const Phase r = RunPhase(
        v, ops,
        [&](uint64_t i, uint8_t* buf) {
          return block::IoRequest{block::Op::kRead, 0, where[i] * kIo, kIo, buf};
        },
        [&](uint64_t i, uint8_t* buf) { return CheckPattern(seed << 32 | i, buf, kIo); });
    const bool verified = flush_ok && w.errors == 0 && r.errors == 0 && r.bad == 0;
    std::printf("opensrd demo: storage: adapter -> SRD -> bridge -> a %llu MiB file volume (%s)\n",
                static_cast<unsigned long long>(kVolume >> 20), dir.c_str());
    Print("writes", ops, w);
    Print("reads", ops, r);
    std::printf(
        "  verified     %s (flush %s; %llu blocks read back and checked, %llu bad, %llu errors)\n",
        verified ? "yes" : "NO", flush_ok ? "ok" : "FAILED", static_cast<unsigned long long>(ops),
        static_cast<unsigned long long>(r.bad),
        static_cast<unsigned long long>(w.errors + r.errors));
    rc = verified ? 0 : 1;
  }
  vol = Status(Code::kCancelled, "done");
  bridge.value()->Stop();
  serve.join();
  return rc;
}

}  // namespace opensrd::cli
