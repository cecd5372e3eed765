// `opensrd rdma server|client --protocol roce`: RoCEv2 RC over UDP 4791, connected through the
// InfiniBand connection manager on QP1 (rdma_cm's wire format), remote operations executed by
// the protocol-independent executor over a registered region (tools/opensrd/rdma_roce_cli.cc).
#pragma once
#include <cstdint>
#include <string>

namespace CLI {
class App;
}  // namespace CLI

namespace opensrd::cli {

struct RoceCliOptions {
  std::string bind;     // server: HOST:PORT (UDP, 4791 for real peers); client: optional HOST
  std::string connect;  // client: server HOST:PORT
  std::string op = "write";
  std::string pcap;
  uint32_t size = 4096;
  uint64_t count = 0;
  double duration_s = 0;
  int inflight = 16;
  bool json = false;
  bool bad_rkey = false;
  uint64_t region_bytes = 64u << 20;
  uint16_t cm_port = 7174;        // rdma_cm port (service ID 0x01060000 | port); rping's default
  uint32_t max_connections = 16;  // server: pending or open at once
  uint64_t recv_budget_mib = 64;  // server: receive memory all SEND connections share
  double reorder = 0;             // test: RcDeviceConfig::reorder
  uint64_t seed = 0;              // seed of --reorder's choices (0: random)
  uint32_t mtu = 1024;            // client: path MTU its REQ asks for (the server follows)
};

// Adds the RoCEv2-only options (--cm-port, --reorder, --seed; the server's limits; the
// client's --bind and --mtu) to `rdma server|client`.
void AddRoceOptions(CLI::App* server, CLI::App* client, RoceCliOptions* o);
int RunRoceServer(const RoceCliOptions& o);
int RunRoceClient(const RoceCliOptions& o);

}  // namespace opensrd::cli
