// The `opensrd rdma` subcommands that live in their own files (CLI11 types only by pointer).
#pragma once

namespace CLI {
class App;
}  // namespace CLI

// `rdma pingpong`: ibv_rc_pingpong's RoCEv2 peer (tools/opensrd/rdma_roce_pingpong.cc).
void AddRocePingpongCommand(CLI::App* rdma_cmd);
// `rdma perftest`: WRITE/READ against ib_write_bw / ib_read_bw (rdma_roce_perftest.cc).
void AddRocePerftestCommand(CLI::App* rdma_cmd);
// `rdma rping`: librdmacm's rping through the IB connection manager (rdma_roce_rping.cc).
void AddRoceRpingCommand(CLI::App* rdma_cmd);
// The exit code of the rdma subcommand that ran (0 success, 1 failed or not verified, 2 bad
// input); the subcommands' callbacks set it, main returns it.
void SetRdmaCommandExitCode(int code);
int RdmaCommandExitCode();
