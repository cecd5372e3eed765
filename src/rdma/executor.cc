#include "rdma/executor.h"

#include <atomic>
#include <cstring>

namespace opensrd::rdma {
namespace {

ExecResult Nak(NakCode code, AccessViolation v = AccessViolation::kNone) {
  ExecResult r;
  r.reply = Reply::kNak;
  r.nak = code;
  r.requester_status = StatusForNak(code);
  r.violation = v;
  return r;
}

ExecResult Ack() {
  ExecResult r;
  r.reply = Reply::kAck;
  return r;
}

}  // namespace

WcStatus StatusForNak(NakCode code) {
  switch (code) {
    case NakCode::kRemoteAccessError:
      return WcStatus::kRemoteAccessError;
    case NakCode::kRemoteOperationalError:
      return WcStatus::kRemoteOperationalError;
    case NakCode::kPsnSequenceError:  // the protocol retries; surfacing one is a retry failure
      return WcStatus::kTransportRetryExceeded;
    case NakCode::kInvalidRequest:
    case NakCode::kInvalidRdRequest:
      break;
  }
  return WcStatus::kRemoteInvalidRequest;
}

Status Executor::Place(uint8_t* whole, size_t whole_len, size_t offset,
                       std::span<const uint8_t> src) {
  if (copier_ != nullptr) return copier_->Place(whole, whole_len, offset, src);
  std::memcpy(whole + offset, src.data(), src.size());
  return Status::Ok();
}

ExecResult Executor::Execute(const RdmaCommand& cmd, ExecTarget& t) {
  switch (Family(cmd.opcode)) {
    case OpcodeFamily::kWrite:
      return Write(cmd, t);
    case OpcodeFamily::kSend:
      return Send(cmd, t);
    case OpcodeFamily::kReadResponse:
      return Nak(NakCode::kInvalidRequest);
    case OpcodeFamily::kSingle:
      break;
  }
  switch (cmd.opcode) {
    case RdmaOpcode::kReadRequest:
      return Read(cmd, t);
    case RdmaOpcode::kFetchAdd:
    case RdmaOpcode::kCompareSwap:
      return Atomic(cmd, t);
    default:
      return Nak(NakCode::kInvalidRequest);
  }
}

ExecResult Executor::Write(const RdmaCommand& cmd, ExecTarget& t) {
  ResponderState& s = *t.state;
  if (IsFirst(cmd.opcode)) {
    // A new WRITE abandons a SEND or WRITE the requester never finished (its retry restarts).
    s.in = ResponderState::In::kNone;
    // The RETH's range is checked once, whole; later segments must stay inside it.
    if (cmd.payload.size() > cmd.dma_length) return Nak(NakCode::kInvalidRequest);
    uint8_t* at = nullptr;
    if (cmd.dma_length != 0) {
      // IBTA: a zero-length WRITE carries no address and is not checked against any key.
      const AccessViolation v =
          registry_.CheckRemote(cmd.rkey, t.pd, cmd.va, cmd.dma_length, kAccessRemoteWrite, &at);
      if (v != AccessViolation::kNone) return Nak(NakCode::kRemoteAccessError, v);
    }
    if (IsLast(cmd.opcode) && cmd.payload.size() != cmd.dma_length) {
      return Nak(NakCode::kInvalidRequest);
    }
    s.in = ResponderState::In::kWrite;
    s.write_at = at;
    s.write_left = cmd.dma_length;
  } else if (s.in != ResponderState::In::kWrite) {
    return Nak(NakCode::kInvalidRequest);
  }
  if (cmd.payload.size() > s.write_left ||
      (IsLast(cmd.opcode) && cmd.payload.size() != s.write_left)) {
    s.in = ResponderState::In::kNone;
    return Nak(NakCode::kInvalidRequest);
  }
  // With an immediate, the receive must exist before any byte lands (else RNR, memory intact).
  if (HasImmediate(cmd.opcode) && (t.rq == nullptr || t.rq->posted.empty())) {
    ExecResult r;
    r.reply = Reply::kRnrNak;
    r.requester_status = WcStatus::kRnrRetryExceeded;
    return r;
  }
  // Direct placement (rdma_device.cc) already put the data where it belongs.
  if (!cmd.payload.empty() && cmd.payload.data() != s.write_at &&
      !Place(s.write_at, s.write_left, 0, cmd.payload).ok()) {
    s.in = ResponderState::In::kNone;  // the engine refused the copy: a local DMA fault
    return Nak(NakCode::kRemoteOperationalError);
  }
  s.write_at += cmd.payload.size();
  s.write_left -= cmd.payload.size();
  if (!IsLast(cmd.opcode)) {
    ExecResult r;
    r.reply = (cmd.flags & kFlagAckRequest) ? Reply::kAck : Reply::kNone;
    return r;
  }
  s.in = ResponderState::In::kNone;
  if (HasImmediate(cmd.opcode)) return ConsumeRecvForImm(cmd, t);
  return Ack();
}

ExecResult Executor::ConsumeRecvForImm(const RdmaCommand& cmd, ExecTarget& t) {
  ExecResult r = Ack();
  r.recv_completed = true;
  r.recv_wc.wr_id = t.rq->posted.front().wr_id;
  t.rq->posted.pop_front();
  r.recv_wc.opcode = WcOpcode::kRecvRdmaWithImm;
  r.recv_wc.with_imm = true;
  r.recv_wc.imm = cmd.imm;
  r.recv_wc.byte_len = cmd.dma_length;
  return r;
}

ExecResult Executor::Read(const RdmaCommand& cmd, ExecTarget& t) {
  t.state->in = ResponderState::In::kNone;
  ExecResult r;
  r.reply = Reply::kReadResponse;
  if (cmd.dma_length == 0) return r;  // no address to check, nothing to return
  uint8_t* at = nullptr;
  const AccessViolation v =
      registry_.CheckRemote(cmd.rkey, t.pd, cmd.va, cmd.dma_length, kAccessRemoteRead, &at);
  if (v != AccessViolation::kNone) return Nak(NakCode::kRemoteAccessError, v);
  r.read_data = {at, cmd.dma_length};
  return r;
}

ExecResult Executor::Atomic(const RdmaCommand& cmd, ExecTarget& t) {
  t.state->in = ResponderState::In::kNone;
  uint8_t* at = nullptr;
  const AccessViolation v =
      registry_.CheckRemote(cmd.rkey, t.pd, cmd.va, 8, kAccessRemoteAtomic, &at);
  if (v != AccessViolation::kNone) return Nak(NakCode::kRemoteAccessError, v);
  // IBTA (and rxe): a misaligned atomic is an invalid request, not an access error.
  if ((cmd.va & 7) != 0 || (reinterpret_cast<uintptr_t>(at) & 7) != 0) {
    return Nak(NakCode::kInvalidRequest);
  }
  // Host byte order, as ibverbs atomics operate on the responder's native 64-bit words;
  // atomic_ref keeps the update whole against the owner's own threads.
  std::atomic_ref<uint64_t> word(*reinterpret_cast<uint64_t*>(at));
  ExecResult r;
  r.reply = Reply::kAtomicAck;
  if (cmd.opcode == RdmaOpcode::kFetchAdd) {
    r.atomic_orig = word.fetch_add(cmd.swap_add);
  } else {
    uint64_t expected = cmd.compare;
    word.compare_exchange_strong(expected, cmd.swap_add);
    r.atomic_orig = expected;  // the old value either way
  }
  return r;
}

ExecResult Executor::Send(const RdmaCommand& cmd, ExecTarget& t) {
  ResponderState& s = *t.state;
  if (IsFirst(cmd.opcode)) {
    s.in = ResponderState::In::kNone;
    if (t.rq == nullptr || t.rq->posted.empty()) {
      ExecResult r;
      r.reply = Reply::kRnrNak;
      r.requester_status = WcStatus::kRnrRetryExceeded;
      return r;
    }
    s.recv = t.rq->posted.front();
    t.rq->posted.pop_front();
    s.in = ResponderState::In::kSend;
    s.recv_filled = 0;
    s.recv_failed = false;
    // The receive's SGE was checked (lkey, local write) when it was posted; checking again
    // catches a region deregistered since. As in InfiniBand, the responder's receive completes
    // with a local protection error and the requester gets a remote operational error.
    s.recv_at = nullptr;
    if (s.recv.sge.length != 0 && registry_.CheckLocal(s.recv.sge, t.pd, kAccessLocalWrite,
                                                       &s.recv_at) != AccessViolation::kNone) {
      s.in = ResponderState::In::kNone;
      ExecResult r = Nak(NakCode::kRemoteOperationalError);
      r.recv_completed = true;
      r.recv_wc.wr_id = s.recv.wr_id;
      r.recv_wc.opcode = WcOpcode::kRecv;
      r.recv_wc.status = WcStatus::kLocalProtectionError;
      return r;
    }
  } else if (s.in != ResponderState::In::kSend) {
    return Nak(NakCode::kInvalidRequest);
  }
  const bool fits = !s.recv_failed && cmd.payload.size() <= s.recv.sge.length - s.recv_filled;
  if (fits && !cmd.payload.empty()) {
    if (!Place(s.recv_at, s.recv.sge.length, s.recv_filled, cmd.payload).ok()) {
      // The engine refused the copy: the receive completes with an error, as for a region
      // deregistered under it.
      s.in = ResponderState::In::kNone;
      ExecResult r = Nak(NakCode::kRemoteOperationalError);
      r.recv_completed = true;
      r.recv_wc.wr_id = s.recv.wr_id;
      r.recv_wc.opcode = WcOpcode::kRecv;
      r.recv_wc.status = WcStatus::kLocalProtectionError;
      return r;
    }
    s.recv_filled += static_cast<uint32_t>(cmd.payload.size());
  }
  if (!fits && !s.recv_failed) s.recv_failed = true;
  const bool overflow = !fits;
  if (!IsLast(cmd.opcode) && !overflow) {
    ExecResult r;
    r.reply = (cmd.flags & kFlagAckRequest) ? Reply::kAck : Reply::kNone;
    return r;
  }
  // Last segment, or the receive overflowed: the receive completes now (with an error if it
  // overflowed: the responder sees a local length error, the requester an invalid request).
  s.in = ResponderState::In::kNone;
  ExecResult r = overflow ? Nak(NakCode::kInvalidRequest) : Ack();
  r.recv_completed = true;
  r.recv_wc.wr_id = s.recv.wr_id;
  r.recv_wc.opcode = WcOpcode::kRecv;
  r.recv_wc.status = overflow ? WcStatus::kLocalLengthError : WcStatus::kSuccess;
  r.recv_wc.byte_len = s.recv_filled;
  if (HasImmediate(cmd.opcode)) {
    r.recv_wc.with_imm = true;
    r.recv_wc.imm = cmd.imm;
  }
  return r;
}

}  // namespace opensrd::rdma
