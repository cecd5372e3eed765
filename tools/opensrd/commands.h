// Subcommand entry points of the opensrd CLI. Each returns the process exit code: 0 success,
// 1 a run that failed (not verified, errors, timeout, socket failure), 2 bad arguments. Option
// structs are filled by main.cc.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "opensrd/transport.h"
#include "tools/opensrd/dma_options.h"
#include "tools/opensrd/log_options.h"

namespace opensrd {
class PcapWriter;  // common/pcap_writer.h
}  // namespace opensrd

namespace opensrd::cli {

// Default packet payload: 1400 bytes fits 1500-byte Ethernet with IP, UDP and SRD headers
// (IPv6's 20 more bytes too: 1400 + 56 + 48 = 1504 > 1500, so 1380 there); on loopback
// (127.0.0.0/8 or ::1, MTU 64 KiB) 8192 bytes cuts the per-datagram cost six-fold.
inline int AutoMaxPayload(const NetAddr& a) {
  if (IsLoopback(a)) return 8192;
  return a.v6 ? 1380 : 1400;
}

struct DemoOptions {
  int paths = 4;
  double loss = 0.05;  // injected on path 1
  uint64_t messages = 2000;
  uint64_t seed = 1;
  uint64_t storage_ops = 4000;  // 4 KiB writes (then reads) of the storage part; 0: skip it
  std::string pcap;             // capture both endpoints' datagrams here; empty: none
};
int RunDemo(const DemoOptions& o);
// The storage part of the demo: bridge and adapter in-process on a temporary file volume.
// `capture` (the demo's --pcap; may be null) gets a source per endpoint.
int RunStorageDemo(uint64_t ops, uint64_t seed, PcapWriter* capture = nullptr);

struct PerfServerOptions {
  std::vector<std::string> bind;  // HOST:PORT, one socket each (several: a multi-homed server)
  int paths = 64;                 // paths accepted per client (wire path ids 0..paths-1)
  uint32_t max_size = 1u << 20;   // largest message a client may send
  int buffers = 128;              // receive buffers posted
  int max_payload = 0;  // payload bytes per packet this end sends; 0: AutoMaxPayload(bind)
  bool quiet = false;
  std::string key_file;  // cluster key (docs/SECURITY.md); empty: none
  std::string key_mode;  // mac (default with a key) | aead
  std::string pcap;      // capture every datagram here (docs/OBSERVABILITY.md); empty: none
  std::string metrics;   // HOST:PORT serving Prometheus text at /metrics; empty: none
  DmaCliOptions dma;     // --dma, --dma-prefetch
};
int RunPerfServer(const PerfServerOptions& o);

struct PerfClientOptions {
  std::string connect;  // HOST:PORT (or the paths' remotes, with `path`)
  // Explicit multi-homed paths, LOCAL=REMOTE each (LOCAL as HOST or HOST:PORT): path i sends
  // from LOCAL to REMOTE. Replaces --connect/--paths/--source-port-base.
  std::vector<std::string> path;
  int paths = 4;
  int source_port_base = 0;  // 0: ephemeral ports
  uint32_t size = 0;         // 0: 65536 in bw mode, 64 in lat mode
  double duration_s = 0;     // 0 and count 0: 3 seconds
  uint64_t count = 0;
  int inflight = 16;
  std::string mode = "bw";  // bw | lat
  bool in_order = false;
  std::string fault;
  bool json = false;
  uint64_t peer_timeout_ms = 3000;
  int max_payload = 0;  // payload bytes per packet; 0: AutoMaxPayload(server address)
  int spray_burst = 1;
  int gso_cork_us = 0;   // UdpEndpointOptions::gso_cork_us (experimental, see docs/PERF.md)
  uint64_t seed = 0;     // 0: from the clock (new incarnation per run)
  std::string key_file;  // cluster key (docs/SECURITY.md); empty: none
  std::string key_mode;  // mac (default with a key) | aead
  std::string pcap;      // capture every datagram here (docs/OBSERVABILITY.md); empty: none
  std::string metrics;   // HOST:PORT serving Prometheus text at /metrics; empty: none
  DmaCliOptions dma;     // --dma, --dma-prefetch
  std::string timeline;  // per-path CSV over time (tools/opensrd/timeline.h); empty: none
  int timeline_interval_ms = 100;
};
int RunPerfClient(const PerfClientOptions& o);

struct BridgeCliOptions {
  std::vector<std::string> bind;     // HOST:PORT
  std::vector<std::string> volumes;  // NAME=PATH[,size=BYTES][,token=..|,token-file=..][,ro]
  int paths = 64;
  int buffers = 128;
  bool no_direct = false;
  bool json = false;
  bool quiet = false;
  std::string key_file;
  std::string key_mode;
  std::string pcap;     // capture every datagram here (docs/OBSERVABILITY.md); empty: none
  std::string metrics;  // HOST:PORT serving Prometheus text at /metrics; empty: none
};
int RunBridge(const BridgeCliOptions& o);

struct VolumeResizeOptions {
  std::string bridge;
  std::string volume;
  std::string size;
  std::string token;
  std::string token_file;
  std::string key_file;
  std::string key_mode;
  uint64_t timeout_ms = 5000;
};
int RunVolumeResize(const VolumeResizeOptions& o);

struct AdapterOptions {
  std::vector<std::string> bridges;  // HOST:PORT, failover order
  std::string volume;
  std::string token;
  std::string token_file;
  std::string nvme;  // unix:PATH
  std::string nbd;   // unix:PATH or HOST:PORT
  int queues = 1;    // NVMe-style queue pairs
  int paths = 4;
  uint64_t peer_timeout_ms = 1000;
  uint64_t reconnect_timeout_ms = 30000;
  bool json = false;
  bool quiet = false;
  std::string key_file;
  std::string key_mode;
  std::string pcap;     // capture every datagram here (docs/OBSERVABILITY.md); empty: none
  std::string metrics;  // HOST:PORT serving Prometheus text at /metrics; empty: none
};
int RunAdapter(const AdapterOptions& o);

}  // namespace opensrd::cli
