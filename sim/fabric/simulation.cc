#include "sim/fabric/simulation.h"

#include <algorithm>
#include <chrono>

namespace opensrd::fabric {

Result<std::unique_ptr<Simulation>> Simulation::Create(const SimulationOptions& o) {
  auto sim = std::unique_ptr<Simulation>(new Simulation());
  sim->o_ = o;
  sim->fabric_ = std::make_unique<Fabric>(o.fabric);
  const Topology& topo = sim->fabric_->topology();
  auto add = [&](LinkFault::Kind kind, const std::vector<std::string>& texts) -> Status {
    for (const std::string& t : texts) {
      auto r = ParseFault(kind, t, topo, o.fabric.seed);
      if (!r.ok()) return r.status();
      sim->faults_.insert(sim->faults_.end(), r.value().begin(), r.value().end());
    }
    return Status::Ok();
  };
  for (auto [kind, texts] : {std::pair{LinkFault::Kind::kFail, &o.fail},
                             std::pair{LinkFault::Kind::kDegrade, &o.degrade},
                             std::pair{LinkFault::Kind::kLoss, &o.loss}}) {
    if (Status st = add(kind, *texts); !st.ok()) return st;
  }
  sim->workload_ =
      std::make_unique<Workload>(o.workload, *sim->fabric_, o.fabric.paths, o.fabric.seed);
  return sim;
}

RunSummary Simulation::Run() {
  const auto wall0 = std::chrono::steady_clock::now();
  // Sessions first (as long-lived connections), then the measured part from a round
  // microsecond after they are up.
  workload_->Connect(10'000'000);
  const uint64_t t0 = (fabric_->now_ns() / 1000 + 1) * 1000;
  ApplyFaults(faults_, *fabric_, t0);
  if (o_.progress) fabric_->on_progress = [this] { o_.progress(*fabric_, *workload_); };
  workload_->Run(t0, t0 + o_.time_limit_ns);
  const double wall =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - wall0).count();
  RunSummary s = Summarize(*fabric_, *workload_, wall);
  s.workload = o_.workload.ToString();
  for (const LinkFault& f : faults_) {
    if (f.kind != LinkFault::Kind::kFail || fabric_->config().goodput_bucket_ns == 0) continue;
    uint64_t first_end = kNever;
    for (const FlowRecord& fr : workload_->flows()) {
      if (fr.end_ns > t0) first_end = std::min(first_end, fr.end_ns - t0);
    }
    const Recovery r = GoodputRecovery(
        fabric_->goodput_series(), fabric_->config().goodput_bucket_ns, t0, f.down_ns, first_end);
    s.recovery_measured = true;
    s.goodput_before_gbps = r.before_gbps;
    s.goodput_worst_gbps = r.worst_gbps;
    s.recovery_us = r.recovery_us;
    break;
  }
  return s;
}

}  // namespace opensrd::fabric
