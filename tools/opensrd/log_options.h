// --log-level on every command, and the events every endpoint-driving command logs (path state
// changes). The logs are spdlog's (src/common/log.h); a command's results stay on stdout and its
// usage errors on stderr as plain lines.
#pragma once
#include <map>
#include <utility>

#include "opensrd/transport.h"

namespace CLI {
class App;
}

namespace opensrd::cli {

// Adds `--log-level trace|debug|info|warn|error` (default info) to every command of `app` that
// has no subcommands of its own; a bad level is a parse error (exit 2). Call after every
// subcommand was added.
void AddLogLevelOption(CLI::App& app);

// Logs each path's state change (active <-> suspect) at info, with the path's loss counters, by
// comparing path_stats at most every 100 ms. Call from the thread that drives the endpoint.
class PathStateLog {
 public:
  explicit PathStateLog(const char* component) : component_(component) {}
  void Check(const Endpoint& ep, Micros now_us);

 private:
  const char* component_;
  Micros last_ = 0;
  bool started_ = false;
  std::map<std::pair<PeerId, uint32_t>, PathState> known_;
};

}  // namespace opensrd::cli
