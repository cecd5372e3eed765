// The protocol-independent RDMA executor: the last step of the receive pipeline (packet ->
// protocol index -> header tables -> RdmaCommand -> executor). It takes one command as a
// protocol's tables decoded it, checks key, bounds, access and protection domain against the
// MemoryRegistry, moves the data (WRITE into registered memory, READ out of it, atomics, SEND
// into the QP's posted receives, immediates) and says what the protocol's codec must answer:
// an ACK, a NAK with its code, a read response (the bytes to send) or an atomic ACK (the old
// value). It never learns which protocol carried the command: RoCEv2, iWARP and the native
// SRD protocol all call Execute with the same types.
//
// Multi-packet messages (RoCEv2 First/Middle/Last, iWARP segments) keep their cursor in a
// ResponderState the caller holds per QP or connection; a single-message protocol (native)
// uses the Only opcodes and an empty state. Sequencing, duplicates and retransmission (PSN,
// MSN) are the protocol's: the executor performs every command it is given exactly once, so a
// protocol must not hand it a duplicate it already executed (an atomic would apply twice).
//
// Data moves (WRITE and SEND payloads into target memory, and the requester's placement of a READ
// response through Place) go through an optional PayloadCopier, so they can run on the DMA engine
// (PayloadCopy::kEngine) or as memcpy (kDirect, or no copier). Atomics stay CPU atomics.
//
// Target memory is untouched by every rejected command. Not thread-safe.
#pragma once
#include <cstdint>
#include <deque>
#include <span>

#include "opensrd/rdma.h"
#include "rdma/command.h"
#include "rdma/memory_registry.h"
#include "transport/payload_copier.h"

namespace opensrd::rdma {

// Receives posted to one QP, consumed in posting order by SENDs and WRITE_WITH_IMM.
struct ReceiveQueue {
  std::deque<RecvWr> posted;
};

// Per QP (or connection) cursor for messages spanning several commands.
struct ResponderState {
  enum class In : uint8_t { kNone, kWrite, kSend } in = In::kNone;
  uint8_t* write_at = nullptr;  // next byte of the WRITE's checked range
  uint64_t write_left = 0;      // bytes the WRITE's RETH announced and not yet received
  RecvWr recv;                  // the receive a multi-packet SEND is filling
  uint8_t* recv_at = nullptr;
  uint32_t recv_filled = 0;
  bool recv_failed = false;  // the SEND overflowed its receive: the rest is discarded
};

// What the protocol's codec must send back.
enum class Reply : uint8_t {
  kNone,          // nothing now (a middle segment that needs no acknowledgement)
  kAck,           // positive acknowledgement
  kNak,           // negative acknowledgement with `nak`
  kRnrNak,        // receiver not ready: no receive posted; the requester retries
  kReadResponse,  // `read_data` to send back
  kAtomicAck,     // `atomic_orig` to send back
};

struct ExecResult {
  Reply reply = Reply::kNone;
  NakCode nak = NakCode::kInvalidRequest;
  // The status the requester's work completion gets from this answer (kSuccess for ACKs).
  WcStatus requester_status = WcStatus::kSuccess;
  AccessViolation violation = AccessViolation::kNone;  // why, for kRemoteAccessError
  std::span<const uint8_t> read_data;                  // points into the registered region
  uint64_t atomic_orig = 0;
  // A receive this command completed (a SEND's last segment, WRITE_WITH_IMM), for the QP's
  // receive CQ; its qp/src fields are the caller's to fill.
  bool recv_completed = false;
  WorkCompletion recv_wc;
};

// Where a command executes: the receiving QP's protection domain and receive queue.
struct ExecTarget {
  PdHandle pd = 0;
  ReceiveQueue* rq = nullptr;
  ResponderState* state = nullptr;
};

class Executor {
 public:
  explicit Executor(MemoryRegistry& registry) : registry_(registry) {}

  // Executes one request command (SEND*, WRITE*, READ request, atomics). Responses (ACK, NAK,
  // read response, atomic ACK) are the requester's business: they get kInvalidRequest.
  ExecResult Execute(const RdmaCommand& cmd, ExecTarget& target);

  // The copier data moves go through (not owned; null: memcpy). The engine maps memory per
  // copy, so every move names the whole checked object it lands in.
  void set_copier(PayloadCopier* copier) { copier_ = copier; }
  // Copies `src` to whole[offset, offset + src.size()); `whole`/`whole_len` is a range already
  // checked against the registry. Fails (kIoError) only when the engine refuses the copy.
  Status Place(uint8_t* whole, size_t whole_len, size_t offset, std::span<const uint8_t> src);

 private:
  ExecResult Write(const RdmaCommand& cmd, ExecTarget& t);
  ExecResult Read(const RdmaCommand& cmd, ExecTarget& t);
  ExecResult Atomic(const RdmaCommand& cmd, ExecTarget& t);
  ExecResult Send(const RdmaCommand& cmd, ExecTarget& t);
  ExecResult ConsumeRecvForImm(const RdmaCommand& cmd, ExecTarget& t);

  MemoryRegistry& registry_;
  PayloadCopier* copier_ = nullptr;
};

// The requester's completion status for an acknowledgement kind and NAK code.
WcStatus StatusForNak(NakCode code);

}  // namespace opensrd::rdma
