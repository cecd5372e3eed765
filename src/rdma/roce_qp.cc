#include "rdma/roce_qp.h"

#include <algorithm>
#include <cassert>
#include <utility>

#include "rdma/roce.h"

namespace opensrd::rdma::roce {
namespace {

// AETH syndromes (IBTA vol. 1, 9.3.5): class in bits 7..5, value in 4..0. 0x1F as the ACK's
// credit count means "no end-to-end flow control", what rxe sends.
constexpr uint8_t kAckSyndrome = 0x1F;
constexpr uint8_t kRnrClass = 0x20;
constexpr uint8_t kNakClass = 0x60;
// An AckReq bit on every 16th packet of a long message keeps ACKs (and the window) moving.
constexpr uint32_t kAckEvery = 16;
constexpr uint8_t kInfinite = 7;
constexpr size_t kAtomicCacheSize = 16;

bool IsRequest(RdmaOpcode op) {
  switch (op) {
    case RdmaOpcode::kReadResponseFirst:
    case RdmaOpcode::kReadResponseMiddle:
    case RdmaOpcode::kReadResponseLast:
    case RdmaOpcode::kReadResponseOnly:
    case RdmaOpcode::kAck:
    case RdmaOpcode::kRnrNak:
    case RdmaOpcode::kNak:
    case RdmaOpcode::kAtomicAck:
    case RdmaOpcode::kTerminate:
      return false;
    default:
      return true;
  }
}

uint32_t PacketsFor(uint32_t bytes, uint32_t mtu) {
  return bytes == 0 ? 1 : (bytes + mtu - 1) / mtu;
}

WcStatus StatusOfNak(uint8_t code) {
  switch (static_cast<NakCode>(code)) {
    case NakCode::kRemoteAccessError:
      return WcStatus::kRemoteAccessError;
    case NakCode::kRemoteOperationalError:
      return WcStatus::kRemoteOperationalError;
    default:
      return WcStatus::kRemoteInvalidRequest;
  }
}

}  // namespace

uint32_t RnrTimerMicros(uint8_t code) {
  // IBTA vol. 1, table 45, in microseconds (code 0 is the longest, 655.36 ms).
  static constexpr uint32_t kTable[32] = {
      655360, 10,    20,    30,    40,    60,     80,     120,    160,    240,   320,
      480,    640,   960,   1280,  1920,  2560,   3840,   5120,   7680,   10240, 15360,
      20480,  30720, 40960, 61440, 81920, 122880, 163840, 245760, 327680, 491520};
  return kTable[code & 0x1F];
}

const char* WcStatusName(WcStatus s) {
  switch (s) {
    case WcStatus::kSuccess:
      return "success";
    case WcStatus::kRemoteInvalidRequest:
      return "remote invalid request";
    case WcStatus::kRemoteAccessError:
      return "remote access error";
    case WcStatus::kRemoteOperationalError:
      return "remote operational error";
    case WcStatus::kRnrRetryExceeded:
      return "RNR retry exceeded";
    case WcStatus::kRetryExceeded:
      return "transport retry exceeded";
    case WcStatus::kFlushed:
      return "flushed";
  }
  return "?";
}

RcQueuePair::RcQueuePair(const RcConfig& config, RcTarget* target)
    : cfg_(config),
      target_(target),
      next_psn_(config.send_psn & kPsnMask),
      send_psn_(next_psn_),
      una_psn_(next_psn_),
      highest_sent_(next_psn_),
      retries_left_(config.retry_cnt),
      rnr_retries_left_(config.rnr_retry),
      epsn_(config.expected_psn & kPsnMask) {
  assert(cfg_.mtu >= 256 && cfg_.mtu <= 4096);
}

bool RcQueuePair::IsReadLike(const Wqe& w) const {
  return w.wr.opcode == WrOpcode::kRead || w.wr.opcode == WrOpcode::kCmpSwap ||
         w.wr.opcode == WrOpcode::kFetchAdd;
}

// ------------------------------------------------------------------------------- requester

bool RcQueuePair::PostSend(WorkRequest wr, uint64_t now_us) {
  if (error_) {
    Completion c;
    c.wr_id = wr.wr_id;
    c.opcode = wr.opcode;
    c.status = WcStatus::kFlushed;
    completions_.push_back(std::move(c));
    return false;
  }
  Wqe w;
  w.first_psn = next_psn_;
  switch (wr.opcode) {
    case WrOpcode::kRead:
      w.packets = PacketsFor(wr.read_length, cfg_.mtu);
      break;
    case WrOpcode::kCmpSwap:
    case WrOpcode::kFetchAdd:
      w.packets = 1;
      break;
    default:
      w.packets = PacketsFor(static_cast<uint32_t>(wr.data.size()), cfg_.mtu);
  }
  w.wr = std::move(wr);
  next_psn_ = (next_psn_ + w.packets) & kPsnMask;
  sq_.push_back(std::move(w));
  Pump(now_us);
  return true;
}

void RcQueuePair::Pump(uint64_t now_us) {
  if (error_ || rnr_deadline_ != 0) return;
  while (PsnDiff(send_psn_, next_psn_) < 0) {
    int32_t inflight = PsnDiff(send_psn_, una_psn_);
    if (inflight > 0 && static_cast<uint32_t>(inflight) >= cfg_.max_inflight_packets) break;
    const Wqe* w = nullptr;
    int32_t index = 0;
    for (const Wqe& q : sq_) {
      index = PsnDiff(send_psn_, q.first_psn);
      if (index >= 0 && static_cast<uint32_t>(index) < q.packets) {
        w = &q;
        break;
      }
    }
    if (w == nullptr) break;  // send_psn_ is older than every WQE: all answered
    uint32_t sent_from = send_psn_;
    // The packet that fills the window asks for an ACK, or nothing would reopen it.
    bool fills = inflight + 1 >= static_cast<int32_t>(cfg_.max_inflight_packets);
    EmitRequestPacket(*w, static_cast<uint32_t>(index), fills);
    // A READ request asks for all its remaining response PSNs at once.
    send_psn_ = IsReadLike(*w) ? (LastPsn(*w) + 1) & kPsnMask : (send_psn_ + 1) & kPsnMask;
    if (PsnDiff(sent_from, highest_sent_) < 0) {
      ++stats_.retransmitted_packets;
    }
    if (PsnDiff(send_psn_, highest_sent_) > 0) highest_sent_ = send_psn_;
    if (retry_deadline_ == 0) retry_deadline_ = now_us + cfg_.ack_timeout_us;
  }
}

void RcQueuePair::EmitRequestPacket(const Wqe& w, uint32_t index, bool ack_request) {
  RdmaCommand c;
  c.dest_qp = cfg_.remote_qpn;
  c.psn = (w.first_psn + index) & kPsnMask;
  const WorkRequest& wr = w.wr;
  switch (wr.opcode) {
    case WrOpcode::kRead: {
      // A resent READ asks only for what has not arrived: the responder answers from this PSN.
      uint32_t skip = index * cfg_.mtu;
      c.opcode = RdmaOpcode::kReadRequest;
      c.va = wr.remote_va + skip;
      c.rkey = wr.rkey;
      c.dma_length = wr.read_length - std::min(skip, wr.read_length);
      c.flags = kFlagAckRequest | kFlagFirst | kFlagLast;
      break;
    }
    case WrOpcode::kCmpSwap:
    case WrOpcode::kFetchAdd:
      c.opcode = wr.opcode == WrOpcode::kCmpSwap ? RdmaOpcode::kCompareSwap : RdmaOpcode::kFetchAdd;
      c.va = wr.remote_va;
      c.rkey = wr.rkey;
      c.swap_add = wr.swap_add;
      c.compare = wr.compare;
      c.flags = kFlagAckRequest | kFlagFirst | kFlagLast;
      break;
    default: {
      bool send = wr.opcode == WrOpcode::kSend || wr.opcode == WrOpcode::kSendImm;
      bool imm = wr.opcode == WrOpcode::kSendImm || wr.opcode == WrOpcode::kWriteImm;
      bool first = index == 0;
      bool last = index + 1 == w.packets;
      size_t off = size_t{index} * cfg_.mtu;
      size_t len = std::min<size_t>(cfg_.mtu, wr.data.size() - std::min(off, wr.data.size()));
      c.payload = std::span<const uint8_t>(wr.data).subspan(std::min(off, wr.data.size()), len);
      if (last && imm) {
        c.opcode = send ? (first ? RdmaOpcode::kSendOnlyImm : RdmaOpcode::kSendLastImm)
                        : (first ? RdmaOpcode::kWriteOnlyImm : RdmaOpcode::kWriteLastImm);
        c.imm = wr.imm;
      } else {
        c.opcode = Compose(send ? OpcodeFamily::kSend : OpcodeFamily::kWrite, first, last);
      }
      if (!send && first) {
        c.va = wr.remote_va;
        c.rkey = wr.rkey;
        c.dma_length = static_cast<uint32_t>(wr.data.size());
      }
      c.flags = static_cast<uint8_t>((first ? kFlagFirst : 0) | (last ? kFlagLast : 0));
      if (last || ack_request || index % kAckEvery == kAckEvery - 1) c.flags |= kFlagAckRequest;
    }
  }
  Emit(c);
}

void RcQueuePair::Progress(uint64_t now_us) {
  retries_left_ = cfg_.retry_cnt;
  rnr_retries_left_ = cfg_.rnr_retry;
  gone_back_at_.reset();
  retry_deadline_ = PsnDiff(highest_sent_, una_psn_) > 0 ? now_us + cfg_.ack_timeout_us : 0;
}

void RcQueuePair::GoBack(uint32_t psn) {
  if (gone_back_at_ == psn) return;  // already resending from there
  gone_back_at_ = psn;
  send_psn_ = psn;
}

void RcQueuePair::Complete(Wqe& w, WcStatus status) {
  Completion c;
  c.wr_id = w.wr.wr_id;
  c.opcode = w.wr.opcode;
  c.status = status;
  c.read_data = std::move(w.read_data);
  completions_.push_back(std::move(c));
}

void RcQueuePair::FailFront(WcStatus status) {
  bool first = true;
  for (Wqe& w : sq_) {
    Complete(w, first ? status : WcStatus::kFlushed);
    first = false;
  }
  sq_.clear();
  error_ = true;
  retry_deadline_ = 0;
  rnr_deadline_ = 0;
}

bool RcQueuePair::AckUpTo(uint32_t psn, uint64_t now_us) {
  bool progress = false;
  bool ok = true;
  while (!sq_.empty()) {
    Wqe& w = sq_.front();
    if (IsReadLike(w)) {
      uint32_t expected = (w.first_psn + w.read_received) & kPsnMask;
      // An ACK past a READ or atomic whose answer never came: that answer was lost.
      if (PsnDiff(psn, expected) >= 0) {
        GoBack(expected);
        ok = false;
      }
      break;
    }
    if (PsnDiff(psn, LastPsn(w)) >= 0) {
      una_psn_ = (LastPsn(w) + 1) & kPsnMask;
      Complete(w, WcStatus::kSuccess);
      sq_.pop_front();
      progress = true;
      continue;
    }
    if (PsnDiff(psn, una_psn_) >= 0) {
      una_psn_ = (psn + 1) & kPsnMask;
      progress = true;
    }
    break;
  }
  if (PsnDiff(send_psn_, una_psn_) < 0) send_psn_ = una_psn_;
  if (progress) Progress(now_us);
  return ok;
}

void RcQueuePair::OnResponse(const RdmaCommand& cmd, uint64_t now_us) {
  if (error_) return;
  uint32_t p = cmd.psn & kPsnMask;
  // Only answers for PSNs sent and not yet acknowledged (an ACK may repeat una - 1).
  if (PsnDiff(p, una_psn_) < -1 || PsnDiff(p, highest_sent_) >= 0) return;
  switch (cmd.opcode) {
    case RdmaOpcode::kAck:
      AckUpTo(p, now_us);
      Pump(now_us);  // the window may have opened, or an implied NAK asked for a resend
      return;
    case RdmaOpcode::kNak: {
      ++stats_.naks_received;
      if (PsnDiff(p, una_psn_) < 0) return;
      AckUpTo((p - 1) & kPsnMask, now_us);
      uint8_t code = cmd.syndrome & 0x1F;
      if (code == static_cast<uint8_t>(NakCode::kPsnSequenceError)) {
        GoBack(p);
        Pump(now_us);
      } else {
        FailFront(StatusOfNak(code));
      }
      return;
    }
    case RdmaOpcode::kRnrNak:
      ++stats_.rnr_naks_received;
      if (PsnDiff(p, una_psn_) < 0) return;
      AckUpTo((p - 1) & kPsnMask, now_us);
      if (cfg_.rnr_retry != kInfinite) {
        if (rnr_retries_left_ == 0) {
          FailFront(WcStatus::kRnrRetryExceeded);
          return;
        }
        --rnr_retries_left_;
      }
      send_psn_ = p;
      gone_back_at_ = p;
      retry_deadline_ = 0;
      rnr_deadline_ = now_us + RnrTimerMicros(cmd.syndrome & 0x1F);
      return;
    case RdmaOpcode::kReadResponseFirst:
    case RdmaOpcode::kReadResponseMiddle:
    case RdmaOpcode::kReadResponseLast:
    case RdmaOpcode::kReadResponseOnly:
    case RdmaOpcode::kAtomicAck: {
      bool atomic = cmd.opcode == RdmaOpcode::kAtomicAck;
      // A response acknowledges every request before it.
      if (PsnDiff(p, una_psn_) > 0 && !AckUpTo((p - 1) & kPsnMask, now_us)) {
        Pump(now_us);
        return;
      }
      if (sq_.empty()) return;
      Wqe& w = sq_.front();
      bool matches =
          atomic ? w.wr.opcode != WrOpcode::kRead && IsReadLike(w) : w.wr.opcode == WrOpcode::kRead;
      if (!matches) return;
      uint32_t expected = (w.first_psn + w.read_received) & kPsnMask;
      if (p != expected) {
        if (PsnDiff(p, expected) > 0) {  // a response went missing
          GoBack(expected);
          Pump(now_us);
        }
        return;
      }
      una_psn_ = (p + 1) & kPsnMask;
      if (atomic) {
        Completion c;
        c.wr_id = w.wr.wr_id;
        c.opcode = w.wr.opcode;
        c.atomic_original = cmd.atomic_orig;
        completions_.push_back(std::move(c));
        sq_.pop_front();
      } else {
        // The bytes land at this packet's offset: a resent READ may have restarted mid-way.
        size_t off = size_t{w.read_received} * cfg_.mtu;
        w.read_data.resize(off);
        w.read_data.insert(w.read_data.end(), cmd.payload.begin(), cmd.payload.end());
        ++w.read_received;
        if (w.read_received == w.packets) {
          if (w.read_data.size() != w.wr.read_length) {
            FailFront(WcStatus::kRemoteInvalidRequest);
            return;
          }
          Complete(w, WcStatus::kSuccess);
          sq_.pop_front();
        }
      }
      if (PsnDiff(send_psn_, una_psn_) < 0) send_psn_ = una_psn_;
      Progress(now_us);
      Pump(now_us);
      return;
    }
    default:
      return;
  }
}

void RcQueuePair::OnTimer(uint64_t now_us) {
  if (error_) return;
  if (rnr_deadline_ != 0 && now_us >= rnr_deadline_) {
    rnr_deadline_ = 0;
    retry_deadline_ = 0;
    Pump(now_us);
  }
  if (retry_deadline_ != 0 && now_us >= retry_deadline_) {
    ++stats_.timeouts;
    if (cfg_.retry_cnt != kInfinite) {
      if (retries_left_ == 0) {
        FailFront(WcStatus::kRetryExceeded);
        return;
      }
      --retries_left_;
    }
    send_psn_ = una_psn_;
    gone_back_at_ = una_psn_;
    retry_deadline_ = 0;
    Pump(now_us);
    if (retry_deadline_ == 0 && !sq_.empty()) retry_deadline_ = now_us + cfg_.ack_timeout_us;
  }
}

std::optional<uint64_t> RcQueuePair::NextDeadline() const {
  std::optional<uint64_t> d;
  if (rnr_deadline_ != 0) d = rnr_deadline_;
  if (retry_deadline_ != 0 && (!d || retry_deadline_ < *d)) d = retry_deadline_;
  return d;
}

// ------------------------------------------------------------------------------- responder

void RcQueuePair::OnPacket(const RdmaCommand& cmd, uint64_t now_us) {
  if (error_) return;  // a QP in the error state drops what arrives
  if (IsRequest(cmd.opcode)) {
    OnRequest(cmd);
  } else {
    OnResponse(cmd, now_us);
  }
}

void RcQueuePair::OnRequest(const RdmaCommand& cmd) {
  uint32_t p = cmd.psn & kPsnMask;
  int32_t d = PsnDiff(p, epsn_);
  if (d > 0) {  // a gap: ask once for a resend from the expected PSN
    if (!nak_sent_) {
      SendAeth(RdmaOpcode::kNak, epsn_, kNakClass | uint8_t(NakCode::kPsnSequenceError));
      ++stats_.naks_sent;
      nak_sent_ = true;
    }
    return;
  }
  if (d < 0) {
    ++stats_.duplicates;
    if (cmd.opcode == RdmaOpcode::kReadRequest) {
      RespondRead(cmd, p);  // READ is idempotent: answer again from memory
    } else if (cmd.opcode == RdmaOpcode::kCompareSwap || cmd.opcode == RdmaOpcode::kFetchAdd) {
      for (const AtomicResult& r : atomic_cache_) {
        if (r.psn != p) continue;
        RdmaCommand a;
        a.opcode = RdmaOpcode::kAtomicAck;
        a.dest_qp = cfg_.remote_qpn;
        a.psn = p;
        a.syndrome = kAckSyndrome;
        a.msn = msn_;
        a.atomic_orig = r.original;
        Emit(a);
      }
    } else {
      ack_pending_ = true;  // the ACK was lost: repeat it
    }
    return;
  }
  ExecuteRequest(cmd);
}

void RcQueuePair::ExecuteRequest(const RdmaCommand& cmd) {
  const RdmaOpcode op = cmd.opcode;
  const uint32_t p = cmd.psn & kPsnMask;
  auto refuse = [&](TargetVerdict v) {
    if (v == TargetVerdict::kNotReady) {
      SendAeth(RdmaOpcode::kRnrNak, p, kRnrClass | (cfg_.min_rnr_timer & 0x1F));
      ++stats_.rnr_naks_sent;
    } else {
      SendAeth(RdmaOpcode::kNak, p, kNakClass | uint8_t(NakCodeOf(v)));
      ++stats_.naks_sent;
      // IBA 9.9.3 (responder class C errors): the QP that refused goes to the error state,
      // as rxe's does; its own work requests flush.
      FailFront(WcStatus::kFlushed);
    }
  };
  bool last = IsLast(op);
  switch (Family(op)) {
    case OpcodeFamily::kSend: {
      bool first = IsFirst(op);
      if (first == in_send_) {  // FIRST inside a message, or MIDDLE/LAST outside one
        refuse(TargetVerdict::kInvalidRequest);
        return;
      }
      TargetVerdict v =
          target_->DeliverSend(cmd.payload, first, last, HasImmediate(op) ? &cmd.imm : nullptr);
      if (v != TargetVerdict::kOk) {
        if (v != TargetVerdict::kNotReady) in_send_ = false;
        refuse(v);
        return;
      }
      in_send_ = !last;
      break;
    }
    case OpcodeFamily::kWrite: {
      bool first = IsFirst(op);
      if (first == in_write_) {
        refuse(TargetVerdict::kInvalidRequest);
        return;
      }
      if (first) {
        TargetVerdict v = target_->CheckWrite(cmd.va, cmd.rkey, cmd.dma_length);
        if (v != TargetVerdict::kOk) {
          refuse(v);
          return;
        }
        write_va_ = cmd.va;
        write_rkey_ = cmd.rkey;
        write_length_ = cmd.dma_length;
        write_offset_ = 0;
      }
      if (cmd.payload.size() > write_length_ - write_offset_ ||
          (last && write_offset_ + cmd.payload.size() != write_length_)) {
        in_write_ = false;
        refuse(TargetVerdict::kInvalidRequest);
        return;
      }
      TargetVerdict v = target_->Write(write_va_ + write_offset_, write_rkey_, cmd.payload);
      if (v != TargetVerdict::kOk) {
        in_write_ = false;
        refuse(v);
        return;
      }
      if (last && HasImmediate(op)) {
        v = target_->CompleteWriteImm(cmd.imm, write_length_);
        if (v != TargetVerdict::kOk) {  // the bytes are in place; the resend rewrites them
          if (v != TargetVerdict::kNotReady)
            in_write_ = false;
          else
            in_write_ = !first;
          refuse(v);
          return;
        }
      }
      write_offset_ += static_cast<uint32_t>(cmd.payload.size());
      in_write_ = !last;
      break;
    }
    case OpcodeFamily::kSingle:
      if (in_send_ || in_write_) {
        refuse(TargetVerdict::kInvalidRequest);
        return;
      }
      if (op == RdmaOpcode::kReadRequest) {
        RespondRead(cmd, p);
        return;  // RespondRead advanced epsn_ and msn_ (or refused)
      }
      if (op == RdmaOpcode::kCompareSwap || op == RdmaOpcode::kFetchAdd) {
        uint64_t original = 0;
        TargetVerdict v =
            target_->Atomic(op, cmd.va, cmd.rkey, cmd.swap_add, cmd.compare, &original);
        if (v != TargetVerdict::kOk) {
          refuse(v);
          return;
        }
        epsn_ = (p + 1) & kPsnMask;
        msn_ = (msn_ + 1) & kPsnMask;
        ++stats_.messages_executed;
        nak_sent_ = false;
        atomic_cache_.push_back({p, original});
        if (atomic_cache_.size() > kAtomicCacheSize) atomic_cache_.pop_front();
        RdmaCommand a;
        a.opcode = RdmaOpcode::kAtomicAck;
        a.dest_qp = cfg_.remote_qpn;
        a.psn = p;
        a.syndrome = kAckSyndrome;
        a.msn = msn_;
        a.atomic_orig = original;
        Emit(a);
        return;
      }
      refuse(TargetVerdict::kInvalidRequest);
      return;
    default:  // read responses and ACKs never reach here
      return;
  }
  epsn_ = (p + 1) & kPsnMask;
  nak_sent_ = false;
  if (last) {
    msn_ = (msn_ + 1) & kPsnMask;
    ++stats_.messages_executed;
  }
  if (cmd.flags & kFlagAckRequest) ack_pending_ = true;
}

void RcQueuePair::RespondRead(const RdmaCommand& cmd, uint32_t psn) {
  bool fresh = psn == epsn_;
  // The length comes from the peer: refuse a huge one before allocating the response (a 4 GiB
  // READ request made the responder try to allocate 4 GiB; found by fuzz_roce_qp).
  TargetVerdict v =
      cmd.dma_length > cfg_.max_read_bytes ? TargetVerdict::kInvalidRequest : TargetVerdict::kOk;
  std::vector<uint8_t> bytes;
  if (v == TargetVerdict::kOk) {
    bytes.resize(cmd.dma_length);
    v = target_->Read(cmd.va, cmd.rkey, bytes);
  }
  if (v != TargetVerdict::kOk) {
    if (fresh) {
      SendAeth(RdmaOpcode::kNak, psn, kNakClass | uint8_t(NakCodeOf(v)));
      ++stats_.naks_sent;
      FailFront(WcStatus::kFlushed);  // as above: class C, the QP goes to the error state
    }
    return;
  }
  uint32_t n = PacketsFor(cmd.dma_length, cfg_.mtu);
  if (fresh) {
    epsn_ = (psn + n) & kPsnMask;
    msn_ = (msn_ + 1) & kPsnMask;
    ++stats_.messages_executed;
    nak_sent_ = false;
    ack_pending_ = false;  // the responses acknowledge everything before them
  }
  for (uint32_t i = 0; i < n; ++i) {
    RdmaCommand r;
    r.opcode = Compose(OpcodeFamily::kReadResponse, i == 0, i + 1 == n);
    r.dest_qp = cfg_.remote_qpn;
    r.psn = (psn + i) & kPsnMask;
    r.syndrome = kAckSyndrome;
    r.msn = msn_;
    size_t off = size_t{i} * cfg_.mtu;
    r.payload = std::span<const uint8_t>(bytes).subspan(
        off, std::min<size_t>(cfg_.mtu, bytes.size() - std::min(off, bytes.size())));
    Emit(r);
  }
}

void RcQueuePair::SendAeth(RdmaOpcode kind, uint32_t psn, uint8_t syndrome) {
  RdmaCommand a;
  a.opcode = kind;
  a.dest_qp = cfg_.remote_qpn;
  a.psn = psn & kPsnMask;
  a.syndrome = syndrome;
  a.msn = msn_;
  ack_pending_ = false;  // a NAK for PSN p acknowledges p - 1
  Emit(a);
}

void RcQueuePair::Emit(const RdmaCommand& cmd) {
  Result<std::vector<uint8_t>> bytes = EncodeTransport(cmd);
  assert(bytes.ok());
  if (!bytes.ok()) return;
  out_.push_back(std::move(bytes.value()));
  ++stats_.packets_sent;
}

std::vector<std::vector<uint8_t>> RcQueuePair::TakeOutgoing() {
  if (ack_pending_) {  // one ACK for everything received since the last drain
    RdmaCommand a;
    a.opcode = RdmaOpcode::kAck;
    a.dest_qp = cfg_.remote_qpn;
    a.psn = (epsn_ - 1) & kPsnMask;
    a.syndrome = kAckSyndrome;
    a.msn = msn_;
    Emit(a);
    ++stats_.acks_sent;
    ack_pending_ = false;
  }
  return std::exchange(out_, {});
}

std::vector<Completion> RcQueuePair::TakeCompletions() {
  return std::exchange(completions_, {});
}

}  // namespace opensrd::rdma::roce
