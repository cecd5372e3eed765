// RcTarget: what a RoCEv2 RC responder asks of the memory behind it. The queue pair's responder
// (roce_qp.h) sequences packets and builds the wire answers; it moves no data and checks no key
// itself. At merge time the protocol-independent executor (keys, bounds, permissions, protection
// domains) implements this interface; MemoryTarget below is a small stand-in for tests and the
// interop program. Not thread-safe: one queue pair calls it from one thread.
#pragma once
#include <cstdint>
#include <deque>
#include <span>
#include <vector>

#include "rdma/command.h"

namespace opensrd::rdma {

// The answer to one request segment: done, no receive buffer posted (the responder sends an
// RNR NAK and the requester retries later), or a NAK with the code the AETH carries.
enum class TargetVerdict : uint8_t {
  kOk,
  kNotReady,
  kInvalidRequest,
  kRemoteAccessError,
  kRemoteOperationalError,
};
NakCode NakCodeOf(TargetVerdict v);  // v must be one of the NAK verdicts

class RcTarget {
 public:
  virtual ~RcTarget() = default;
  // One SEND segment, in order. `first` claims the oldest posted receive (kNotReady if there is
  // none); later segments append to it; `last` completes it, with the immediate if `imm`.
  virtual TargetVerdict DeliverSend(std::span<const uint8_t> data, bool first, bool last,
                                    const uint32_t* imm) = 0;
  // Checks a whole WRITE (its RETH) before any byte moves: key, bounds, remote-write access.
  virtual TargetVerdict CheckWrite(uint64_t va, uint32_t rkey, uint32_t length) = 0;
  // One WRITE segment at `va` (the RETH address plus the segment's offset), already checked.
  virtual TargetVerdict Write(uint64_t va, uint32_t rkey, std::span<const uint8_t> data) = 0;
  // The last segment of a WRITE_WITH_IMM: consumes a posted receive for the immediate.
  virtual TargetVerdict CompleteWriteImm(uint32_t imm, uint32_t total_length) = 0;
  // READ: fills `out` from [va, va + out.size()).
  virtual TargetVerdict Read(uint64_t va, uint32_t rkey, std::span<uint8_t> out) = 0;
  // CMP_SWAP or FETCH_ADD on the aligned 8 bytes at `va`; `original` gets the value before.
  virtual TargetVerdict Atomic(RdmaOpcode op, uint64_t va, uint32_t rkey, uint64_t swap_add,
                               uint64_t compare, uint64_t* original) = 0;
};

// One region and a receive queue in plain memory. Access: every key check is exact (rkey and
// bounds); atomics need 8-byte alignment. Receive completions are kept for the test to read.
class MemoryTarget final : public RcTarget {
 public:
  struct Received {
    std::vector<uint8_t> data;
    bool has_imm = false;
    uint32_t imm = 0;
    bool write_imm = false;  // completion of a WRITE_WITH_IMM (data empty)
  };
  MemoryTarget(uint64_t base_va, uint32_t rkey, size_t size);

  void PostReceive(size_t capacity) { posted_.push_back(capacity); }
  std::vector<uint8_t>& memory() { return memory_; }
  uint64_t base_va() const { return base_va_; }
  uint32_t rkey() const { return rkey_; }
  std::deque<Received>& received() { return received_; }

  TargetVerdict DeliverSend(std::span<const uint8_t> data, bool first, bool last,
                            const uint32_t* imm) override;
  TargetVerdict CheckWrite(uint64_t va, uint32_t rkey, uint32_t length) override;
  TargetVerdict Write(uint64_t va, uint32_t rkey, std::span<const uint8_t> data) override;
  TargetVerdict CompleteWriteImm(uint32_t imm, uint32_t total_length) override;
  TargetVerdict Read(uint64_t va, uint32_t rkey, std::span<uint8_t> out) override;
  TargetVerdict Atomic(RdmaOpcode op, uint64_t va, uint32_t rkey, uint64_t swap_add,
                       uint64_t compare, uint64_t* original) override;

 private:
  bool InRange(uint64_t va, uint32_t rkey, size_t length) const;

  uint64_t base_va_;
  uint32_t rkey_;
  std::vector<uint8_t> memory_;
  std::deque<size_t> posted_;  // capacities of posted receives, oldest first
  bool receiving_ = false;     // a multi-packet SEND holds the front receive
  size_t receiving_capacity_ = 0;
  std::vector<uint8_t> partial_;
  std::deque<Received> received_;
};

}  // namespace opensrd::rdma
