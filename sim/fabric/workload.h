// Workloads for the fabric simulator, run on the real API: every flow is one message, or a
// sequence of messages posted together, from PostSend to its send completion (acknowledged).
//   permutation:size=2MiB[,msgs=1]   every host sends to another, a random derangement
//   incast:n=15,size=2MiB[,msgs=1]   n senders to host 0 (spread over the fabric from its far
//                                    end: incast:n=1 is one flow across the fabric)
//   alltoall:size=64KiB              every host to every other host, all at once
//   ring:size=8MiB                   ring allreduce: 2(n-1) steps of size/n; a host sends step
//                                    s+1 once step s from its predecessor has arrived
//   dist:load=0.5,flows=1000[,cdf=websearch]  Poisson arrivals of flows between random hosts,
//                                    sizes from the web-search distribution, at `load` of the
//                                    host link rate
// Payload bytes are not checked here (the transport tests do that): receivers share one sink
// buffer so 8192 hosts fit in memory. Not thread-safe.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "common/rng.h"
#include "common/status.h"
#include "sim/fabric/fabric.h"

namespace opensrd::fabric {

struct WorkloadSpec {
  enum class Kind : uint8_t { kPermutation, kIncast, kAllToAll, kRing, kDist };
  Kind kind = Kind::kPermutation;
  uint64_t size = 2u << 20;  // bytes per flow (ring: per host buffer)
  uint32_t msgs = 1;         // messages per flow
  uint32_t n = 15;           // incast senders
  double load = 0.5;         // dist: offered load per host link
  uint32_t flows = 1000;     // dist: flows drawn
  std::string ToString() const;
};
// Errors name the bad part (kInvalidArgument); `hosts` bounds incast's n.
Result<WorkloadSpec> ParseWorkload(const std::string& text, uint32_t hosts);

struct FlowRecord {
  HostId src = 0;
  HostId dst = 0;
  uint64_t size = 0;
  uint64_t start_ns = 0;
  uint64_t end_ns = 0;  // last send completion; 0 while incomplete
  uint64_t ideal_ns = 0;
  uint32_t msgs_left = 0;
  Code status = Code::kOk;  // first error among its messages
};

class Workload {
 public:
  Workload(const WorkloadSpec& spec, Fabric& fabric, uint32_t paths, uint64_t seed);

  // Opens the sessions the workload needs (handshakes before time zero of the measurement,
  // as long-lived connections would be) and runs the fabric until they are up.
  void Connect(uint64_t deadline_ns);
  // Schedules the flows from `t0_ns` and runs until all complete or `deadline_ns`.
  void Run(uint64_t t0_ns, uint64_t deadline_ns);

  const std::vector<FlowRecord>& flows() const { return flows_; }
  uint64_t t0_ns() const { return t0_; }
  uint64_t completed() const { return completed_; }
  // Flows the workload is made of (ring: all its steps, including those never started).
  uint64_t expected_flows() const { return expected_flows_; }
  // The fabric's ideal time (ns) for the whole workload: its most loaded host link's bytes at
  // line rate plus an unloaded FCT (ring: its steps back to back at their unloaded FCT).
  uint64_t IdealMakespanNs() const;

 private:
  void AddFlow(HostId src, HostId dst, uint64_t size, uint64_t start_ns);
  void StartFlow(uint32_t f);
  void OnCompletion(HostId h, const Completion& c);

  WorkloadSpec spec_;
  Fabric& fab_;
  uint32_t paths_;
  Rng rng_;
  std::vector<FlowRecord> flows_;
  std::vector<uint64_t> ring_recvs_;  // ring: messages host h has received
  std::vector<uint8_t> source_;       // every sender's bytes (read only)
  std::vector<uint8_t> sink_;         // every receive buffer (contents not checked)
  uint64_t t0_ = 0;
  uint64_t completed_ = 0;
  uint64_t expected_flows_ = 0;
};

}  // namespace opensrd::fabric
