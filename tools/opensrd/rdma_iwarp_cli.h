// `opensrd rdma server|client --protocol iwarp`: iWARP connected QPs through the verbs API
// (rdma::RcDevice); `--rping` drives an iWARP queue pair (src/rdma/iwarp_qp.h) on kernel TCP.
// rdma_cli.cc parses the shared options and dispatches here.
#pragma once
#include <cstdint>
#include <string>

namespace opensrd::cli {

struct IwarpCliOptions {
  std::string bind, connect, op = "write", pcap;
  uint32_t size = 4096;
  uint64_t count = 0;
  double duration_s = 0;
  int inflight = 16;
  bool json = false;
  bool bad_rkey = false;
  uint64_t region_bytes = 64u << 20;
  uint32_t max_size = 1u << 20;
  bool rping = false;  // speak librdmacm's rping exchange (tools/opensrd/rdma_iwarp_rping.cc)
  // Server: connections pending or open at once (RcDeviceConfig::max_connections), and the
  // receive buffers all connections may hold together; a connection over either is refused.
  uint32_t max_connections = 16;
  uint64_t recv_budget_bytes = 64u << 20;
};

int RunIwarpServer(const IwarpCliOptions& o);
int RunIwarpClient(const IwarpCliOptions& o);
// rping's exchange against Linux siw: `rping -s` (server) or `rping -c -V` (client) as peers.
int RunIwarpRpingServer(const IwarpCliOptions& o);
int RunIwarpRpingClient(const IwarpCliOptions& o);

}  // namespace opensrd::cli
