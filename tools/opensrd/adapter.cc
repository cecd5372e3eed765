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
#include "tools/opensrd/capture.h"
#include "tools/opensrd/commands.h"
#include "tools/opensrd/key_file.h"

namespace opensrd::cli {
namespace {

std::atomic<bool> g_stop{false};
void OnSignal(int) {
  g_stop.store(true);
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
  Result<std::unique_ptr<block::RemoteVolume>> vol = block::RemoteVolume::Open(ro);
  if (!vol.ok()) {
    std::fprintf(stderr, "adapter: cannot attach volume '%s': %s\n", o.volume.c_str(),
                 vol.status().ToString().c_str());
    const Code c = vol.status().code();
    return c == Code::kPermissionDenied || c == Code::kNotFound || c == Code::kInvalidArgument ? 2
                                                                                               : 1;
  }
  block::RemoteVolume& v = *vol.value();
  const block::VolumeInfo info = v.Info();
  if (!o.quiet) {
    std::fprintf(stderr, "adapter: attached '%s': %llu bytes, %u-byte blocks\n", o.volume.c_str(),
                 static_cast<unsigned long long>(info.size_bytes), info.block_size);
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
    if (!o.quiet) std::fprintf(stderr, "adapter: NVMe queues at %s\n", co.socket_path.c_str());
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
      std::fprintf(stderr, "adapter: NBD export '%s' at %s\n", o.volume.c_str(),
                   nbd->address().c_str());
    }
  }
  nvme::NvmeController* c = controller.get();
  v.SetInfoListener([c, quiet = o.quiet](const block::VolumeInfo& i) {
    if (c) c->UpdateGeometry(i);
    if (!quiet) {
      std::fprintf(stderr, "adapter: volume resized to %llu bytes\n",
                   static_cast<unsigned long long>(i.size_bytes));
    }
  });
  signal(SIGINT, OnSignal);
  signal(SIGTERM, OnSignal);
  block::VolumeState last = v.state();
  while (!g_stop.load()) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
    const block::VolumeState now = v.state();
    if (now != last && !o.quiet) {
      std::fprintf(stderr, "adapter: volume state %s\n", block::VolumeStateName(now));
    }
    last = now;
  }
  if (nbd) nbd->Stop();  // waits for requests at the volume
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
  vol.value().reset();  // the endpoint stops before its capture is closed
  if (*capture) {
    std::fprintf(stderr, "adapter: %s\n", CaptureSummary(FinishCapture(capture->get())).c_str());
  }
  return 0;
}

}  // namespace opensrd::cli
