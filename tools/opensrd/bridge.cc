// `opensrd bridge`: serves named volumes to storage adapters over SRD until SIGINT/SIGTERM, then
// prints what it served. `opensrd volume resize`: grows a volume on a running bridge.
#include <signal.h>

#include <cstdio>
#include <nlohmann/json.hpp>

#include "block/bridge.h"
#include "block/remote_volume.h"
#include "tools/opensrd/capture.h"
#include "tools/opensrd/commands.h"
#include "tools/opensrd/key_file.h"

namespace opensrd::cli {
namespace {

block::Bridge* g_bridge = nullptr;
void OnSignal(int) {
  if (g_bridge) g_bridge->Stop();  // an atomic store: safe in a signal handler
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
  Result<std::unique_ptr<block::Bridge>> bridge = block::Bridge::Create(bo);
  if (!bridge.ok()) {
    std::fprintf(stderr, "bridge: %s\n", bridge.status().ToString().c_str());
    return bridge.status().code() == Code::kIoError ? 1 : 2;
  }
  g_bridge = bridge.value().get();
  signal(SIGINT, OnSignal);
  signal(SIGTERM, OnSignal);
  if (!o.quiet) {
    std::fprintf(stderr, "bridge: serving on %s\n", ToString(g_bridge->local_address(0)).c_str());
  }
  Status s = g_bridge->Run();
  const block::BridgeStats st = g_bridge->stats();
  g_bridge = nullptr;
  bridge.value().reset();  // the endpoint stops before its capture is closed
  if (*capture) {
    std::fprintf(stderr, "bridge: %s\n", CaptureSummary(FinishCapture(capture->get())).c_str());
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
