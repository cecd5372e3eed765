#include "tools/opensrd/log_options.h"

#include <CLI/CLI.hpp>

#include "common/log.h"

namespace opensrd::cli {

namespace {

void AddTo(CLI::App& cmd) {
  const std::vector<CLI::App*> subs = cmd.get_subcommands([](CLI::App*) { return true; });
  if (!subs.empty()) {
    for (CLI::App* s : subs) AddTo(*s);
    return;
  }
  cmd.add_option_function<std::string>(
         "--log-level", [](const std::string& v) { log::Configure(log::ParseLevel(v).value()); },
         "log level: trace, debug, info (default), warn or error (logs go to stderr)")
      ->check(
          [](const std::string& v) {
            Result<spdlog::level::level_enum> l = log::ParseLevel(v);
            return l.ok() ? std::string() : l.status().message();
          },
          "LEVEL");
}

}  // namespace

void AddLogLevelOption(CLI::App& app) {
  log::Configure(spdlog::level::info);
  AddTo(app);
}

void PathStateLog::Check(const Endpoint& ep, Micros now_us) {
  if (started_ && now_us < last_ + 100'000) return;
  started_ = true;
  last_ = now_us;
  spdlog::logger& lg = log::Get(component_);
  if (!lg.should_log(spdlog::level::info)) return;
  for (PeerId peer : ep.peers()) {
    for (const PathStats& p : ep.path_stats(peer)) {
      auto [it, inserted] = known_.try_emplace({peer, p.id}, PathState::kActive);
      if (it->second == p.state) continue;
      lg.info(
          "path state peer={} path={} remote={} from={} to={} changes={} lost={} "
          "retrans_rto={} retrans_tlp={} retrans_rack={} srtt_us={}",
          peer, p.id, ToString(p.spec.remote), PathStateName(it->second), PathStateName(p.state),
          p.state_changes, p.lost, p.retrans_rto, p.retrans_tlp, p.retrans_rack, p.srtt_us);
      it->second = p.state;
    }
  }
}

}  // namespace opensrd::cli
