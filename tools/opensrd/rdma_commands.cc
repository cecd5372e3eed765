#include "tools/opensrd/rdma_commands.h"

namespace {
int g_rdma_exit_code = 0;
}  // namespace

void SetRdmaCommandExitCode(int code) {
  g_rdma_exit_code = code;
}

int RdmaCommandExitCode() {
  return g_rdma_exit_code;
}
