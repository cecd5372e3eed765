// `opensrd bridge`: serves named volumes to storage adapters over SRD until SIGINT/SIGTERM, then
// prints what it served. `opensrd volume resize`: grows a volume on a running bridge.
#include <signal.h>

#include <cstdio>
#include <nlohmann/json.hpp>

#include "block/bridge.h"
#include "block/remote_volume.h"
#include "common/log.h"
#include "tools/opensrd/capture.h"
#include "tools/opensrd/commands.h"
#include "tools/opensrd/key_file.h"
#include "tools/opensrd/metrics.h"

namespace opensrd::cli {
namespace {

block::Bridge* g_bridge = nullptr;
void OnSignal(int) {
  if (g_bridge) g_bridge->Stop();  // an atomic store: safe in a signal handler
}

// The bridge's own families for --metrics (read on its Run thread, which owns its stats).
void AddBridgeMetrics(const block::BridgeStats& st, std::vector<ExtraMetric>& out) {
  const std::string ops = "opensrd_block_ops_total";
  const char* ops_help = "Block requests served, by operation.";
  const std::pair<const char*, uint64_t> by_op[] = {{"read", st.reads},
                                                    {"write", st.writes},
                                                    {"flush", st.flushes},
                                                    {"discard", st.discards},
                                                    {"write_zeroes", st.write_zeroes}};
  for (const auto& [op, v] : by_op) {
    out.push_back({ops, "counter", ops_help, MetricLabel("op", op), static_cast<double>(v)});
  }
  const std::string bytes = "opensrd_block_bytes_total";
  const char* bytes_help = "Bytes read from and written to the volumes.";
  out.push_back({bytes, "counter", bytes_help, MetricLabel("dir", "read"),
                 static_cast<double>(st.bytes_read)});
  out.push_back({bytes, "counter", bytes_help, MetricLabel("dir", "write"),
                 static_cast<double>(st.bytes_written)});
  const struct {
    const char* name;
    uint64_t v;
    const char* help;
  } plain[] = {
      {"opensrd_block_errors_total", st.errors, "Requests answered with an error status."},
      {"opensrd_block_malformed_total", st.malformed, "Block messages that did not parse."},
      {"opensrd_block_attaches_total", st.attaches, "Volume attaches granted."},
      {"opensrd_block_attach_denied_total", st.attach_denied,
       "Attaches refused (wrong token or unknown volume)."},
      {"opensrd_block_replays_absorbed_total", st.replays_absorbed,
       "WRITEs replayed by an adapter and acknowledged without applying them again."},
      {"opensrd_block_resizes_total", st.resizes, "Live volume resizes."},
      {"opensrd_block_peers_dropped_total", st.peers_dropped,
       "Attachments dropped because their adapter restarted or went away."},
  };
  for (const auto& p : plain)
    out.push_back({p.name, "counter", p.help, "", static_cast<double>(p.v)});
}

}  // namespace

int RunBridge(const BridgeCliOptions& o) {
  block::BridgeOptions bo;
  for (const std::string& b : o.bind) {
    Result<NetAddr> a = ParseNetAddr(b);
    if (!a.ok()) {
      std::fprintf(stderr, "bridge: bad --bind %s: %s\n", b.c_str(), a.status().message().c_str());
      return 2;
    }
    bo.bind.push_back(*a);
  }
  for (const std::string& v : o.volumes) {
    Result<block::VolumeSpec> spec = block::ParseVolumeSpec(v);
    if (!spec.ok()) {
      std::fprintf(stderr, "bridge: bad --volume: %s\n", spec.status().message().c_str());
      return 2;
    }
    bo.volumes.push_back(*spec);
  }
  if (Status s = ApplyKeyOptions(o.key_file, o.key_mode, bo.endpoint); !s.ok()) {
    std::fprintf(stderr, "bridge: %s\n", s.message().c_str());
    return 2;
  }
  bo.endpoint.max_payload = static_cast<uint16_t>(AutoMaxPayload(bo.bind[0]));
  bo.paths = static_cast<uint32_t>(o.paths);
  bo.recv_buffers = static_cast<uint32_t>(o.buffers);
  bo.direct = !o.no_direct;
  bo.quiet = o.quiet;
  // Declared before the bridge: its endpoint's capture source must outlive it.
  Result<std::unique_ptr<PcapWriter>> capture = OpenCapture(o.pcap);
  if (!capture.ok()) {
    std::fprintf(stderr, "bridge: %s\n", capture.status().message().c_str());
    return 2;
  }
  if (*capture) bo.pcap = (*capture)->NewSource();
  // Declared before the bridge too: its Run loop publishes into it and logs path changes.
  std::unique_ptr<MetricsServer> metrics;
  PathStateLog path_log("bridge");
  if (!o.metrics.empty()) {
    Result<std::unique_ptr<MetricsServer>> m = MetricsServer::Start(o.metrics, "bridge");
    if (!m.ok()) {
      std::fprintf(stderr, "bridge: %s\n", m.status().message().c_str());
      return m.status().code() == Code::kInvalidArgument ? 2 : 1;
    }
    metrics = std::move(m.value());
    // g_bridge is set before Run, the only caller of this hook, starts.
  }
  bo.on_poll = [m = metrics.get(), &path_log](const UdpEndpoint& udp) {
    path_log.Check(udp.endpoint(), udp.Now());
    if (!m) return;
    m->MaybePublish(udp, false, [](std::vector<ExtraMetric>& out) {
      if (g_bridge) AddBridgeMetrics(g_bridge->stats(), out);
    });
  };
  Result<std::unique_ptr<block::Bridge>> bridge = block::Bridge::Create(bo);
  if (!bridge.ok()) {
    std::fprintf(stderr, "bridge: %s\n", bridge.status().ToString().c_str());
    return bridge.status().code() == Code::kIoError ? 1 : 2;
  }
  g_bridge = bridge.value().get();
  signal(SIGINT, OnSignal);
  signal(SIGTERM, OnSignal);
  if (!o.quiet) {
    log::Get("bridge").info("serving on {}", ToString(g_bridge->local_address(0)));
  }
  Status s = g_bridge->Run();
  const block::BridgeStats st = g_bridge->stats();
  g_bridge = nullptr;
  bridge.value().reset();  // the endpoint stops before its capture is closed
  if (*capture) {
    log::Get("bridge").info("{}", CaptureSummary(FinishCapture(capture->get())));
  }
  if (o.json) {
    nlohmann::json j = {{"attaches", st.attaches},
                        {"attach_denied", st.attach_denied},
                        {"reads", st.reads},
                        {"writes", st.writes},
                        {"flushes", st.flushes},
                        {"discards", st.discards},
                        {"write_zeroes", st.write_zeroes},
                        {"bytes_read", st.bytes_read},
                        {"bytes_written", st.bytes_written},
                        {"errors", st.errors},
                        {"malformed", st.malformed},
                        {"replays_absorbed", st.replays_absorbed},
                        {"resizes", st.resizes}};
    std::printf("%s\n", j.dump().c_str());
  }
  if (!s.ok()) {
    std::fprintf(stderr, "bridge: %s\n", s.ToString().c_str());
    return 1;
  }
  return 0;
}

int RunVolumeResize(const VolumeResizeOptions& o) {
  Result<NetAddr> bridge = ParseNetAddr(o.bridge);
  if (!bridge.ok()) {
    std::fprintf(stderr, "volume resize: bad --bridge: %s\n", bridge.status().message().c_str());
    return 2;
  }
  Result<uint64_t> size = block::ParseByteSize(o.size);
  if (!size.ok()) {
    std::fprintf(stderr, "volume resize: %s\n", size.status().message().c_str());
    return 2;
  }
  Result<std::string> token = LoadToken(o.token, o.token_file);
  if (!token.ok()) {
    std::fprintf(stderr, "volume resize: %s\n", token.status().message().c_str());
    return 2;
  }
  EndpointConfig ec;
  if (Status s = ApplyKeyOptions(o.key_file, o.key_mode, ec); !s.ok()) {
    std::fprintf(stderr, "volume resize: %s\n", s.message().c_str());
    return 2;
  }
  ec.max_payload = static_cast<uint16_t>(AutoMaxPayload(*bridge));
  Result<uint64_t> r =
      block::ResizeRemoteVolume(*bridge, o.volume, *token, *size, ec, o.timeout_ms * 1000);
  if (!r.ok()) {
    std::fprintf(stderr, "volume resize: %s\n", r.status().ToString().c_str());
    return r.status().code() == Code::kInvalidArgument ||
                   r.status().code() == Code::kPermissionDenied ||
                   r.status().code() == Code::kNotFound
               ? 2
               : 1;
  }
  std::printf("%s: %llu bytes\n", o.volume.c_str(), static_cast<unsigned long long>(*r));
  return 0;
}

}  // namespace opensrd::cli
