// What a fabric simulation measured: flow completion times against the fabric's ideal, goodput,
// queues, the transport's retransmissions and the simulator's own speed; as text, JSON and CSV.
// Not thread-safe.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "sim/fabric/fabric.h"
#include "sim/fabric/workload.h"

namespace opensrd::fabric {

struct Quantiles {
  double min = 0, p50 = 0, p99 = 0, max = 0;
};

struct RunSummary {
  std::string topology, workload;
  uint32_t hosts = 0;
  uint32_t paths = 0;
  uint64_t seed = 0;
  bool congestion_control = true;
  uint64_t flows = 0;
  uint64_t completed = 0;
  uint64_t lost_messages = 0;  // flows that failed or did not finish by the deadline
  Quantiles fct_us;            // completed flows only
  Quantiles slowdown;          // fct / the flow's own ideal
  double ideal_fct_us = 0;     // unloaded FCT of the workload's flow size between the
                               // farthest hosts (ring: one step)
  double makespan_us = 0;      // first start to last completion
  double ideal_makespan_us = 0;
  double goodput_frac = 0;  // ideal makespan / makespan
  uint64_t retransmits = 0;
  uint64_t rto_events = 0;
  uint64_t tail_probes = 0;
  uint64_t spurious_retransmits = 0;
  uint64_t suspect_events = 0;  // paths the senders marked suspect (PathStats::suspect_events)
  uint64_t path_stalls = 0;     // EndpointStats::path_stalls, summed
  FabricCounters fabric;
  uint64_t endpoint_memory_bytes = 0;  // the endpoints' own accounting, summed, at the end
  uint64_t packet_pool_peak = 0;       // packets in flight at most
  double packet_pool_peak_mb = 0;      // their slots' bytes at most
  // Simulator speed.
  double wall_s = 0;
  double sim_us = 0;
  double peak_rss_mb = 0;
  std::vector<double> fct_list_us;  // per flow in flow order (incomplete: -1)
  // After the first link failure (--fail), with a goodput series: see GoodputRecovery.
  bool recovery_measured = false;
  double goodput_before_gbps = 0, goodput_worst_gbps = 0;
  double recovery_us = -1;  // -1: not back above 90% before the flows ended
};

// How goodput (data bytes arriving at hosts, per `bucket_ns` from time 0) weathered a failure
// `fail_ns` after `t0_ns`: its level (the mean of a `smooth_ns` moving average over the 50 us
// before), the worst of that average after, and the time from the failure until the average
// was back at or above 90% of the level to stay there for `hold_ns` (0: it never fell below;
// -1: not back in time). Only the time before `end_ns` (after t0: the first flow completion)
// counts: goodput falls as flows end, which is no failure. The same rule as
// scripts/plot_sim.py.
struct Recovery {
  double before_gbps = 0, worst_gbps = 0, recovery_us = -1;
};
Recovery GoodputRecovery(const std::vector<uint64_t>& series, uint64_t bucket_ns, uint64_t t0_ns,
                         uint64_t fail_ns, uint64_t end_ns, uint64_t smooth_ns = 5'000,
                         uint64_t hold_ns = 50'000);

RunSummary Summarize(Fabric& fabric, const Workload& workload, double wall_s);
std::string SummaryText(const RunSummary& s);
std::string SummaryJson(const RunSummary& s);
// One row per flow; and the data bytes arriving at hosts per time bucket (if the fabric kept
// them). False if a file cannot be written.
bool WriteFlowsCsv(const std::string& path, const Fabric& fabric, const Workload& workload);
bool WriteGoodputCsv(const std::string& path, const Fabric& fabric, uint64_t t0_ns);
// The process's peak resident set (VmHWM), in MiB.
double PeakRssMb();

}  // namespace opensrd::fabric
