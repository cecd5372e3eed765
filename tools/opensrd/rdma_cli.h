// The `opensrd rdma` subcommand (server and client of native RDMA over SRD).
#pragma once
#include <functional>

namespace CLI {
class App;
}  // namespace CLI

namespace opensrd::cli {

// Adds `rdma server` and `rdma client` to `app`. After parsing, the returned function runs
// whichever was chosen and returns its exit code, or -1 when `rdma` was not on the command line.
std::function<int()> AddRdmaCommand(CLI::App& app);

}  // namespace opensrd::cli
