// ExecutorTarget: the RcTarget (rc_target.h) a RoCEv2 queue pair uses when it serves real
// registered memory. Every remote operation becomes an RdmaCommand handed to the
// protocol-independent Executor, so RoCEv2 gets the same checks as every other protocol (rkey,
// bounds, access flags, protection domain, deregistered region, misaligned atomic) and the
// executor's NAK codes; target memory is untouched by every rejected operation.
//
// The queue pair already sequences packets (PSN order, duplicates) and tracks the WRITE cursor,
// so each call here is one self-contained command: CheckWrite checks the RETH's whole range,
// and each WRITE segment is checked again for its own bytes (a region deregistered between two
// segments stops the WRITE there). Receive completions (SEND, WRITE_WITH_IMM) are kept for the
// owner to poll. Not thread-safe: one queue pair calls it from one thread.
#pragma once
#include <cstdint>
#include <deque>
#include <span>
#include <utility>

#include "rdma/executor.h"
#include "rdma/rc_target.h"

namespace opensrd::rdma {

class ExecutorTarget final : public RcTarget {
 public:
  // `registry` must outlive this target; `pd` is the queue pair's protection domain.
  ExecutorTarget(MemoryRegistry& registry, PdHandle pd);

  // A receive for incoming SENDs: its SGE is checked (lkey, local write) when a SEND claims it.
  void PostReceive(const RecvWr& wr) { rq_.posted.push_back(wr); }
  size_t posted_receives() const { return rq_.posted.size(); }
  // Hands back every receive not yet claimed (the owner flushes them).
  std::deque<RecvWr> TakePostedReceives() { return std::exchange(rq_.posted, {}); }
  // Receive completions in arrival order (success or a local error).
  std::deque<WorkCompletion>& receive_completions() { return recv_done_; }
  // Why the last remote access error was raised (kNone if none yet): for logs and tests.
  AccessViolation last_violation() const { return last_violation_; }

  TargetVerdict DeliverSend(std::span<const uint8_t> data, bool first, bool last,
                            const uint32_t* imm) override;
  TargetVerdict CheckWrite(uint64_t va, uint32_t rkey, uint32_t length) override;
  TargetVerdict Write(uint64_t va, uint32_t rkey, std::span<const uint8_t> data) override;
  TargetVerdict CompleteWriteImm(uint32_t imm, uint32_t total_length) override;
  TargetVerdict Read(uint64_t va, uint32_t rkey, std::span<uint8_t> out) override;
  TargetVerdict Atomic(RdmaOpcode op, uint64_t va, uint32_t rkey, uint64_t swap_add,
                       uint64_t compare, uint64_t* original) override;

 private:
  // Runs `cmd` and turns the executor's reply into the queue pair's verdict.
  TargetVerdict Run(const RdmaCommand& cmd, ExecResult* out = nullptr);

  Executor executor_;
  PdHandle pd_;
  ReceiveQueue rq_;
  ResponderState state_;
  std::deque<WorkCompletion> recv_done_;
  AccessViolation last_violation_ = AccessViolation::kNone;
};

}  // namespace opensrd::rdma
