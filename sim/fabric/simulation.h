// One fabric simulation from start to end, shared by `opensrd sim` and the tests: build the
// fabric, open the workload's sessions, apply the faults, run the flows, summarize.
// Not thread-safe.
#pragma once
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "sim/fabric/fabric.h"
#include "sim/fabric/faults.h"
#include "sim/fabric/report.h"
#include "sim/fabric/workload.h"

namespace opensrd::fabric {

struct SimulationOptions {
  FabricConfig fabric;
  WorkloadSpec workload;
  std::string workload_text;
  std::vector<std::string> fail, degrade, loss;  // option values (faults.h)
  uint64_t time_limit_ns = 1'000'000'000;        // simulated, from the workload's start
  std::function<void(const Fabric&, const Workload&)> progress;
};

class Simulation {
 public:
  // Errors (bad fault specs) are kInvalidArgument.
  static Result<std::unique_ptr<Simulation>> Create(const SimulationOptions& o);
  RunSummary Run();
  Fabric& fabric() { return *fabric_; }
  Workload& workload() { return *workload_; }

 private:
  SimulationOptions o_;
  std::unique_ptr<Fabric> fabric_;
  std::unique_ptr<Workload> workload_;
  std::vector<LinkFault> faults_;
};

}  // namespace opensrd::fabric
