#include "tools/opensrd/sim_command.h"

#include <CLI/CLI.hpp>

#include <cstdio>
#include <memory>
#include <string>
#include <vector>

#include "sim/fabric/simulation.h"
#include "sim/fabric/spec_parse.h"

namespace opensrd::cli {

namespace {

struct SimCliOptions {
  std::string topology = "fattree:k=8";
  std::string workload = "permutation:size=2MiB";
  int paths = 128;
  uint64_t seed = 1;
  std::vector<std::string> fail, degrade, loss;
  bool no_cc = false;
  int mtu = 4096;
  std::string time_limit = "1s";
  bool json = false;
  std::string csv;
  double bucket_us = 1;
  bool quiet = false;
};

std::string GoodputPath(const std::string& csv) {
  const size_t dot = csv.rfind('.');
  const size_t slash = csv.rfind('/');
  const bool ext = dot != std::string::npos && (slash == std::string::npos || dot > slash);
  return (ext ? csv.substr(0, dot) : csv) + "_goodput.csv";
}

int RunSim(const SimCliOptions& o) {
  using namespace opensrd::fabric;
  auto topo = ParseTopology(o.topology);
  if (!topo.ok()) {
    std::fprintf(stderr, "opensrd sim: %s\n", topo.status().message().c_str());
    return 2;
  }
  auto work = ParseWorkload(o.workload, topo.value().hosts());
  if (!work.ok()) {
    std::fprintf(stderr, "opensrd sim: %s\n", work.status().message().c_str());
    return 2;
  }
  auto limit = ParseTimeNs(o.time_limit, "--time-limit");
  if (!limit.ok() || limit.value() == 0) {
    std::fprintf(stderr, "opensrd sim: %s\n",
                 limit.ok() ? "--time-limit must be positive" : limit.status().message().c_str());
    return 2;
  }
  SimulationOptions so;
  so.fabric.topology = topo.value();
  so.fabric.paths = static_cast<uint32_t>(o.paths);
  so.fabric.seed = o.seed;
  so.fabric.mtu = static_cast<uint32_t>(o.mtu);
  so.fabric.endpoint.congestion_control = !o.no_cc;
  if (!o.csv.empty()) so.fabric.goodput_bucket_ns = static_cast<uint64_t>(o.bucket_us * 1000);
  so.workload = work.value();
  so.fail = o.fail;
  so.degrade = o.degrade;
  so.loss = o.loss;
  so.time_limit_ns = limit.value();
  if (!o.quiet) {
    so.progress = [](const Fabric& f, const Workload& w) {
      std::fprintf(stderr,
                   "sim: t=%.1f us, %llu/%zu flows done, %.1fM events, %zu packets in "
                   "flight\n",
                   static_cast<double>(f.now_ns()) / 1000, (unsigned long long)w.completed(),
                   w.flows().size(), static_cast<double>(f.counters().events) / 1e6,
                   f.pool().live());
    };
  }
  if (!o.quiet) {
    std::fprintf(stderr, "sim: %s; building %u hosts...\n", so.fabric.topology.ToString().c_str(),
                 so.fabric.topology.hosts());
  }
  auto sim = Simulation::Create(so);
  if (!sim.ok()) {
    std::fprintf(stderr, "opensrd sim: %s\n", sim.status().message().c_str());
    return 2;
  }
  const RunSummary s = sim.value()->Run();
  if (o.json) {
    std::printf("%s\n", SummaryJson(s).c_str());
  } else {
    std::printf("%s", SummaryText(s).c_str());
  }
  if (!o.csv.empty()) {
    Simulation& run = *sim.value();
    if (!WriteFlowsCsv(o.csv, run.fabric(), run.workload()) ||
        !WriteGoodputCsv(GoodputPath(o.csv), run.fabric(), run.workload().t0_ns())) {
      std::fprintf(stderr, "opensrd sim: cannot write %s\n", o.csv.c_str());
      return 1;
    }
  }
  return s.lost_messages == 0 ? 0 : 1;
}

}  // namespace

std::function<int()> AddSimCommand(CLI::App& app) {
  auto o = std::make_shared<SimCliOptions>();
  auto* cmd = app.add_subcommand(
      "sim",
      "Run the real SRD core on a simulated datacenter fabric (Clos, ECMP, faults) and report "
      "flow completion times; exit 1 if any message was lost");
  cmd->add_option("--topology", o->topology,
                  "fattree:k=K[,os=N] | leafspine:leaves=L,spines=S,hosts=H; both take "
                  "gbps, core_gbps, delay_ns, host_delay_ns, core_delay_ns, queue_kb, ecn_kb")
      ->capture_default_str();
  cmd->add_option("--workload", o->workload,
                  "permutation:size=2MiB[,msgs=M] | incast:n=N,size=S | alltoall:size=S | "
                  "ring:size=S | dist:load=0.5,flows=F")
      ->capture_default_str();
  cmd->add_option("--paths", o->paths, "source ports (paths) per peer; 1 = what ECMP gives a flow")
      ->check(CLI::Range(1, 256))
      ->capture_default_str();
  cmd->add_option("--seed", o->seed, "seed of every random choice (runs replay bit for bit)")
      ->capture_default_str();
  cmd->add_option("--fail", o->fail, "NODE-NODE@TIME[..TIME]: link dies (and returns); repeat");
  cmd->add_option("--degrade", o->degrade,
                  "NODE-NODE=FRAC or top:N=FRAC: link(s) at FRAC of their rate; repeat");
  cmd->add_option("--loss", o->loss, "NODE-NODE=P or top:N=P: random loss; repeat");
  cmd->add_flag("--no-cc", o->no_cc, "congestion control off (a baseline)");
  cmd->add_option("--mtu", o->mtu, "IP MTU (the SRD payload is MTU - 84)")
      ->check(CLI::Range(256, 9000))
      ->capture_default_str();
  cmd->add_option("--time-limit", o->time_limit,
                  "simulated time limit (flows unfinished by "
                  "then count as lost)")
      ->capture_default_str();
  cmd->add_flag("--json", o->json, "print one JSON object instead of the text report");
  cmd->add_option("--csv", o->csv,
                  "write one row per flow here, and goodput over time to <stem>_goodput.csv");
  cmd->add_option("--bucket-us", o->bucket_us, "time bucket of the goodput CSV")
      ->check(CLI::Range(0.01, 1e6))
      ->capture_default_str();
  cmd->add_flag("--quiet", o->quiet, "no progress lines on stderr");
  return [cmd, o]() { return cmd->parsed() ? RunSim(*o) : -1; };
}

}  // namespace opensrd::cli
