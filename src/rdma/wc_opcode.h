// The completion opcode a work request's opcode completes with (ibv_wc_opcode after
// ibv_wr_opcode), shared by every device that turns work requests into completions.
#pragma once
#include "opensrd/rdma.h"

namespace opensrd::rdma {

inline WcOpcode WcOpcodeFor(WrOpcode op) {
  switch (op) {
    case WrOpcode::kSend:
    case WrOpcode::kSendWithImm:
      return WcOpcode::kSend;
    case WrOpcode::kRdmaWrite:
    case WrOpcode::kRdmaWriteWithImm:
      return WcOpcode::kRdmaWrite;
    case WrOpcode::kRdmaRead:
      return WcOpcode::kRdmaRead;
    case WrOpcode::kAtomicFetchAdd:
      return WcOpcode::kFetchAdd;
    case WrOpcode::kAtomicCmpSwap:
      return WcOpcode::kCompareSwap;
  }
  return WcOpcode::kSend;
}

}  // namespace opensrd::rdma
