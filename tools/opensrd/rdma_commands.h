// The `opensrd rdma` subcommands that live in their own files (CLI11 types only by pointer).
#pragma once

namespace CLI {
class App;
}  // namespace CLI

// `rdma pingpong`: ibv_rc_pingpong's RoCEv2 peer (tools/opensrd/rdma_roce_pingpong.cc).
void AddRocePingpongCommand(CLI::App* rdma_cmd);
// The exit code of the rdma subcommand that ran (0 success, 1 failed or not verified).
int RdmaCommandExitCode();
