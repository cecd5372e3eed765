// Link faults for the fabric simulator, named by the nodes a link joins (both directions):
//   --fail spine3-leaf7@200us          the link dies 200 us after the workload starts
//   --fail core0-agg4@200us..700us     ... and comes back at 700 us
//   --degrade spine1-leaf2=0.25        runs at 25% of its rate for the whole run
//   --degrade top:8=0.25               8 links of the top tier, drawn with the seed
//   --loss edge3-agg1=0.01             drops 1% of packets at random (also top:N=P)
// Not thread-safe.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "common/status.h"
#include "sim/fabric/fabric.h"

namespace opensrd::fabric {

struct LinkFault {
  enum class Kind : uint8_t { kFail, kDegrade, kLoss };
  Kind kind = Kind::kFail;
  LinkId link = 0;  // one direction; the fault applies to both
  uint64_t down_ns = 0;
  uint64_t up_ns = kNever;  // kFail: back up at this offset from the start, or never
  double value = 0;         // kDegrade: rate fraction; kLoss: probability
  std::string label;        // "spine3-leaf7"
};

// Parses one option value against the topology; `seed` draws the links of "top:N".
Result<std::vector<LinkFault>> ParseFault(LinkFault::Kind kind, const std::string& text,
                                          const Topology& topo, uint64_t seed);
// Applies degradations and losses now, and schedules failures relative to `t0_ns`.
void ApplyFaults(const std::vector<LinkFault>& faults, Fabric& fabric, uint64_t t0_ns);

}  // namespace opensrd::fabric
