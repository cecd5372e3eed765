// `opensrd adapter`: attaches a volume on one or more storage bridges (failover in the order
// given) and serves it to local clients: NVMe-style queues in shared memory (--nvme) for host
// programs, and/or an NBD export (--nbd) for qemu, libnbd tools, fio and nbd clients. Runs until
// SIGINT/SIGTERM; prints the volume's state changes on stderr.
#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <nlohmann/json.hpp>
#include <thread>

#include "block/nbd/nbd_server.h"
#include "block/nvme_controller.h"
#include "block/remote_volume.h"
#include "common/log.h"
#include "tools/opensrd/capture.h"
#include "tools/opensrd/commands.h"
#include "tools/opensrd/key_file.h"
#include "tools/opensrd/metrics.h"

namespace opensrd::cli {
namespace {

std::atomic<bool> g_stop{false};
void OnSignal(int) {
  g_stop.store(true);
}

// The volume once open; the volume's thread reads it in the --metrics hook, which starts
// before Open returns.
std::atomic<block::RemoteVolume*> g_volume{nullptr};

void AddVolumeMetrics(const std::string& name, std::vector<ExtraMetric>& out) {
  block::RemoteVolume* v = g_volume.load();
  if (v == nullptr) return;
  const block::RemoteVolumeStats st = v->stats();
  const std::string vol = MetricLabel("volume", name);
  const struct {
    const char* name;
    const char* label;
    uint64_t v;
    const char* help;
  } counters[] = {
      {"opensrd_block_requests_total", nullptr, st.requests, "Block requests submitted."},
      {"opensrd_block_ops_total", "read", st.reads, "Block requests completed OK, by operation."},
      {"opensrd_block_ops_total", "write", st.writes, ""},
      {"opensrd_block_completed_total", nullptr, st.completed_ok,
       "Block requests completed OK (every operation)."},
      {"opensrd_block_bytes_total", "read", st.bytes_read,
       "Bytes read and written by requests completed OK."},
      {"opensrd_block_bytes_total", "write", st.bytes_written, ""},
      {"opensrd_block_errors_total", nullptr, st.errors, "Block requests that failed."},
      {"opensrd_block_attaches_total", nullptr, st.attaches,
       "Attaches (the first and re-attaches)."},
      {"opensrd_block_replayed_total", nullptr, st.replayed,
       "Requests sent again after a re-attach."},
      {"opensrd_block_failovers_total", nullptr, st.failovers, "Moves to another bridge."},
      {"opensrd_block_resizes_total", nullptr, st.resizes_seen, "Live resizes seen."},
  };
  for (const auto& c : counters) {
    std::string labels = vol;
    if (c.label) {
      labels += ',';
      labels +=
          MetricLabel(std::string(c.name) == "opensrd_block_ops_total" ? "op" : "dir", c.label);
    }
    out.push_back({c.name, "counter", c.help, labels, static_cast<double>(c.v)});
  }
  const block::VolumeState now = v->state();
  for (block::VolumeState s :
       {block::VolumeState::kOk, block::VolumeState::kImpaired, block::VolumeState::kIoDisabled}) {
    out.push_back(
        {"opensrd_volume_state", "gauge",
         "1 for the volume's current state (ok, impaired, io-disabled), 0 for the others.",
         vol + "," + MetricLabel("state", block::VolumeStateName(s)), now == s ? 1.0 : 0.0});
  }
}

}  // namespace

int RunAdapter(const AdapterOptions& o) {
  block::RemoteVolumeOptions ro;
  for (const std::string& b : o.bridges) {
    Result<NetAddr> a = ParseNetAddr(b);
    if (!a.ok()) {
      std::fprintf(stderr, "adapter: bad --bridge %s: %s\n", b.c_str(),
                   a.status().message().c_str());
      return 2;
    }
    ro.bridges.push_back(*a);
  }
  Result<std::string> token = LoadToken(o.token, o.token_file);
  if (!token.ok()) {
    std::fprintf(stderr, "adapter: %s\n", token.status().message().c_str());
    return 2;
  }
  if (o.nvme.empty() && o.nbd.empty()) {
    std::fprintf(stderr,
                 "adapter: give a front: --nvme unix:PATH and/or --nbd unix:PATH|HOST:PORT\n");
    return 2;
  }
  if (!o.nvme.empty() && o.nvme.rfind("unix:", 0) != 0) {
    std::fprintf(stderr, "adapter: --nvme takes unix:PATH\n");
    return 2;
  }
  if (Status s = ApplyKeyOptions(o.key_file, o.key_mode, ro.endpoint); !s.ok()) {
    std::fprintf(stderr, "adapter: %s\n", s.message().c_str());
    return 2;
  }
  ro.volume = o.volume;
  ro.token = *token;
  ro.paths = static_cast<uint32_t>(o.paths);
  ro.endpoint.max_payload = static_cast<uint16_t>(AutoMaxPayload(ro.bridges[0]));
  ro.endpoint.peer_timeout_us = o.peer_timeout_ms * 1000;
  ro.reconnect_timeout_us = o.reconnect_timeout_ms * 1000;
  ro.local.v6 = ro.bridges[0].v6;
  // Declared before the volume: its endpoint's capture source must outlive it.
  Result<std::unique_ptr<PcapWriter>> capture = OpenCapture(o.pcap);
  if (!capture.ok()) {
    std::fprintf(stderr, "adapter: %s\n", capture.status().message().c_str());
    return 2;
  }
  if (*capture) ro.pcap = (*capture)->NewSource();
  // Declared before the volume too: its thread publishes into it and logs path changes.
  std::unique_ptr<MetricsServer> metrics;
  PathStateLog path_log("adapter");
  if (!o.metrics.empty()) {
    Result<std::unique_ptr<MetricsServer>> m = MetricsServer::Start(o.metrics, "adapter");
    if (!m.ok()) {
      std::fprintf(stderr, "adapter: %s\n", m.status().message().c_str());
      return m.status().code() == Code::kInvalidArgument ? 2 : 1;
    }
    metrics = std::move(m.value());
  }
  ro.on_poll = [m = metrics.get(), &path_log, name = o.volume](const UdpEndpoint& udp) {
    path_log.Check(udp.endpoint(), udp.Now());
    if (!m) return;
    m->MaybePublish(udp, false,
                    [&name](std::vector<ExtraMetric>& out) { AddVolumeMetrics(name, out); });
  };
  Result<std::unique_ptr<block::RemoteVolume>> vol = block::RemoteVolume::Open(ro);
  if (!vol.ok()) {
    std::fprintf(stderr, "adapter: cannot attach volume '%s': %s\n", o.volume.c_str(),
                 vol.status().ToString().c_str());
    const Code c = vol.status().code();
    return c == Code::kPermissionDenied || c == Code::kNotFound || c == Code::kInvalidArgument ? 2
                                                                                               : 1;
  }
  block::RemoteVolume& v = *vol.value();
  g_volume.store(&v);
  const block::VolumeInfo info = v.Info();
  if (!o.quiet) {
    log::Get("adapter").info("attached '{}': {} bytes, {}-byte blocks", o.volume, info.size_bytes,
                             info.block_size);
  }
  std::unique_ptr<nvme::NvmeController> controller;
  if (!o.nvme.empty()) {
    nvme::ControllerOptions co;
    co.socket_path = o.nvme.substr(5);
    co.layout.num_queues = static_cast<uint16_t>(o.queues);
    Result<std::unique_ptr<nvme::NvmeController>> ctrl = nvme::NvmeController::Create(co, &v);
    if (!ctrl.ok()) {
      std::fprintf(stderr, "adapter: --nvme: %s\n", ctrl.status().ToString().c_str());
      return 1;
    }
    controller = std::move(ctrl.value());
    if (!o.quiet) log::Get("adapter").info("NVMe queues at {}", co.socket_path);
  }
  // NBD clients learn the size when they connect (NBD cannot announce a resize); requests are
  // checked against the volume's current size.
  std::unique_ptr<block::nbd::NbdServer> nbd;
  if (!o.nbd.empty()) {
    block::nbd::NbdExportConfig nc;
    nc.name = o.volume;
    nc.description = "opensrd volume " + o.volume;
    auto server = block::nbd::NbdServer::Start(v, o.nbd, nc);
    if (!server.ok()) {
      std::fprintf(stderr, "adapter: --nbd: %s\n", server.status().ToString().c_str());
      return server.status().code() == Code::kInvalidArgument ? 2 : 1;
    }
    nbd = std::move(server.value());
    if (!o.quiet) {
      log::Get("adapter").info("NBD export '{}' at {}", o.volume, nbd->address());
    }
  }
  nvme::NvmeController* c = controller.get();
  v.SetInfoListener([c, quiet = o.quiet](const block::VolumeInfo& i) {
    if (c) c->UpdateGeometry(i);
    if (!quiet) {
      log::Get("adapter").info("volume resized to {} bytes", i.size_bytes);
    }
  });
  signal(SIGINT, OnSignal);
  signal(SIGTERM, OnSignal);
  block::VolumeState last = v.state();
  while (!g_stop.load()) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
    const block::VolumeState now = v.state();
    if (now != last && !o.quiet) {
      log::Get("adapter").warn("volume state {} (was {})", block::VolumeStateName(now),
                               block::VolumeStateName(last));
    }
    last = now;
  }
  if (nbd) nbd->Stop();        // waits for requests at the volume
  v.SetInfoListener(nullptr);  // the listener points at the controller: no call may outlive it
  controller.reset();
  const block::RemoteVolumeStats st = v.stats();
  if (o.json) {
    nlohmann::json j = {{"requests", st.requests},
                        {"ok", st.completed_ok},
                        {"errors", st.errors},
                        {"attaches", st.attaches},
                        {"replayed", st.replayed},
                        {"failovers", st.failovers},
                        {"state", block::VolumeStateName(v.state())}};
    std::printf("%s\n", j.dump().c_str());
  }
  g_volume.store(nullptr);
  vol.value().reset();  // the endpoint stops before its capture is closed
  if (*capture) {
    log::Get("adapter").info("{}", CaptureSummary(FinishCapture(capture->get())));
  }
  return 0;
}

}  // namespace opensrd::cli
