#include "rdma/executor_target.h"

#include <cstring>

namespace opensrd::rdma {

ExecutorTarget::ExecutorTarget(MemoryRegistry& registry, PdHandle pd)
    : executor_(registry), pd_(pd) {}

TargetVerdict ExecutorTarget::Run(const RdmaCommand& cmd, ExecResult* out) {
  ExecTarget t{pd_, &rq_, &state_};
  ExecResult r = executor_.Execute(cmd, t);
  if (r.recv_completed) recv_done_.push_back(r.recv_wc);
  if (out != nullptr) *out = r;
  switch (r.reply) {
    case Reply::kNone:
    case Reply::kAck:
    case Reply::kReadResponse:
    case Reply::kAtomicAck:
      return TargetVerdict::kOk;
    case Reply::kRnrNak:
      return TargetVerdict::kNotReady;
    case Reply::kNak:
      break;
  }
  switch (r.nak) {
    case NakCode::kRemoteAccessError:
      last_violation_ = r.violation;
      return TargetVerdict::kRemoteAccessError;
    case NakCode::kRemoteOperationalError:
      return TargetVerdict::kRemoteOperationalError;
    default:
      return TargetVerdict::kInvalidRequest;
  }
}

TargetVerdict ExecutorTarget::DeliverSend(std::span<const uint8_t> data, bool first, bool last,
                                          const uint32_t* imm) {
  RdmaCommand c;
  c.opcode = Compose(OpcodeFamily::kSend, first, last);
  if (last && imm != nullptr) {
    c.opcode = first ? RdmaOpcode::kSendOnlyImm : RdmaOpcode::kSendLastImm;
    c.imm = *imm;
  }
  c.payload = data;
  return Run(c);
}

TargetVerdict ExecutorTarget::CheckWrite(uint64_t va, uint32_t rkey, uint32_t length) {
  // A WRITE FIRST without payload: the executor checks the RETH's whole range and moves
  // nothing. The segments that follow arrive as self-contained WRITE ONLY commands.
  RdmaCommand c;
  c.opcode = RdmaOpcode::kWriteFirst;
  c.va = va;
  c.rkey = rkey;
  c.dma_length = length;
  return Run(c);
}

TargetVerdict ExecutorTarget::Write(uint64_t va, uint32_t rkey, std::span<const uint8_t> data) {
  if (data.empty()) return TargetVerdict::kOk;  // a zero-length WRITE names no memory
  RdmaCommand c;
  c.opcode = RdmaOpcode::kWriteOnly;
  c.va = va;
  c.rkey = rkey;
  c.dma_length = static_cast<uint32_t>(data.size());
  c.payload = data;
  return Run(c);
}

TargetVerdict ExecutorTarget::CompleteWriteImm(uint32_t imm, uint32_t total_length) {
  // The bytes are in place; a zero-length WRITE ONLY with immediate consumes the receive (or
  // asks for RNR when none is posted) without touching memory.
  RdmaCommand c;
  c.opcode = RdmaOpcode::kWriteOnlyImm;
  c.imm = imm;
  const size_t before = recv_done_.size();
  TargetVerdict v = Run(c);
  if (recv_done_.size() > before) recv_done_.back().byte_len = total_length;
  return v;
}

TargetVerdict ExecutorTarget::Read(uint64_t va, uint32_t rkey, std::span<uint8_t> out) {
  RdmaCommand c;
  c.opcode = RdmaOpcode::kReadRequest;
  c.va = va;
  c.rkey = rkey;
  c.dma_length = static_cast<uint32_t>(out.size());
  ExecResult r;
  TargetVerdict v = Run(c, &r);
  if (v == TargetVerdict::kOk && !out.empty()) {
    std::memcpy(out.data(), r.read_data.data(), out.size());
  }
  return v;
}

TargetVerdict ExecutorTarget::Atomic(RdmaOpcode op, uint64_t va, uint32_t rkey, uint64_t swap_add,
                                     uint64_t compare, uint64_t* original) {
  RdmaCommand c;
  c.opcode = op;
  c.va = va;
  c.rkey = rkey;
  c.swap_add = swap_add;
  c.compare = compare;
  ExecResult r;
  TargetVerdict v = Run(c, &r);
  if (v == TargetVerdict::kOk) *original = r.atomic_orig;
  return v;
}

}  // namespace opensrd::rdma
