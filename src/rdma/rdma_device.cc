// RdmaDevice: datagram QPs over the SRD transport with the native RDMA header (native.h).
//
// Requester: a work request becomes one transport message [native header | data]; the header
// buffer lives in the request's Pending entry until both the transport's send completion and
// the responder's answer arrived (the transport may still read the SGL until its completion;
// the answer says what the peer did). Only then does the work request complete, so the caller
// may reuse its buffer as soon as it polls the completion.
// Responder: a received message goes through the receive pipeline (ClassifyPacket -> DecodeUnit
// with the native tables -> Executor) and the executor's verdict is encoded as the answer.
// Exactly-once: the transport delivers each message once (it drops duplicates), and the device
// executes each delivered request once, so an atomic is applied once however often its packets
// were retransmitted or duplicated on the way.
#include <algorithm>
#include <array>
#include <cstring>
#include <deque>
#include <unordered_map>
#include <vector>

#include "opensrd/rdma.h"
#include "rdma/executor.h"
#include "rdma/memory_registry.h"
#include "rdma/native.h"
#include "rdma/pipeline.h"
#include "rdma/protocol_index.h"
#include "rdma/wc_opcode.h"

namespace opensrd::rdma {

const char* WcStatusName(WcStatus s) {
  switch (s) {
    case WcStatus::kSuccess:
      return "success";
    case WcStatus::kLocalLengthError:
      return "local length error";
    case WcStatus::kLocalProtectionError:
      return "local protection error";
    case WcStatus::kRemoteAccessError:
      return "remote access error";
    case WcStatus::kRemoteInvalidRequest:
      return "remote invalid request";
    case WcStatus::kRemoteOperationalError:
      return "remote operational error";
    case WcStatus::kRnrRetryExceeded:
      return "RNR retry exceeded";
    case WcStatus::kTransportRetryExceeded:
      return "transport retry exceeded";
    case WcStatus::kFlushed:
      return "flushed";
  }
  return "?";
}

namespace {

constexpr uint64_t kResponseTag = 1ull << 63;  // transport tags: requests are their ReqID
constexpr uint8_t kRnrTimerCode = 14;          // AETH RNR timer field (informational here)

struct Hdr {
  std::array<uint8_t, native::kMaxHeaderLen> bytes;
  size_t len = 0;
};

RdmaOpcode CommandOpcodeFor(WrOpcode op) {
  switch (op) {
    case WrOpcode::kSend:
      return RdmaOpcode::kSendOnly;
    case WrOpcode::kSendWithImm:
      return RdmaOpcode::kSendOnlyImm;
    case WrOpcode::kRdmaWrite:
      return RdmaOpcode::kWriteOnly;
    case WrOpcode::kRdmaWriteWithImm:
      return RdmaOpcode::kWriteOnlyImm;
    case WrOpcode::kRdmaRead:
      return RdmaOpcode::kReadRequest;
    case WrOpcode::kAtomicFetchAdd:
      return RdmaOpcode::kFetchAdd;
    case WrOpcode::kAtomicCmpSwap:
      return RdmaOpcode::kCompareSwap;
  }
  return RdmaOpcode::kSendOnly;
}

bool DataLandsLocally(WrOpcode op) {
  return op == WrOpcode::kRdmaRead || op == WrOpcode::kAtomicFetchAdd ||
         op == WrOpcode::kAtomicCmpSwap;
}

}  // namespace

class RdmaDevice::Impl {
 public:
  Impl(Endpoint& ep, const DeviceConfig& c)
      : ep_(ep),
        config_(c),
        exec_(registry_),
        copier_(ep.config().payload_copy, ep.config().dma_prefetch) {
    exec_.set_copier(&copier_);  // data moves copy the way the endpoint's transport does
    tcq_ = ep_.CreateCompletionQueue();
    SqOptions so;
    so.cq = tcq_;
    so.depth = 1u << 16;
    tsq_ = ep_.CreateSendQueue(so).value();
    pool_.resize(config_.recv_pool);
    for (size_t i = 0; i < pool_.size(); ++i) {
      pool_[i].resize(config_.max_message + native::kMaxHeaderLen);
      (void)ep_.PostRecv(tcq_, pool_[i].data(), pool_[i].size(), i);
    }
    if (config_.direct_placement) {
      ep_.SetPlacementHook([this](PeerId peer, std::span<const uint8_t> first, uint32_t len) {
        return Place(peer, first, len);
      });
    }
  }
  ~Impl() { ep_.SetPlacementHook({}); }

  struct Qp {
    PdHandle pd = 0;
    CqHandle send_cq = 0, recv_cq = 0;
    ReceiveQueue rq;
    ResponderState state;
  };

  // A request waiting for its transport completion and its answer.
  struct Pending {
    QpNum qp = 0;
    SendWr wr;
    Hdr hdr;
    uint32_t data_len = 0;  // bytes of wr.sge carried in the request (SEND, WRITE)
    bool in_transport = false;
    bool answered = false;
    bool orphaned = false;  // its QP was destroyed: already completed kFlushed
    bool placing = false;   // a READ response is being placed into wr.sge directly
    WorkCompletion wc;      // filled by the answer
    uint32_t rnr_left = 0;
    Nanos retry_at = kNever;
  };

  Endpoint& ep_;
  DeviceConfig config_;
  MemoryRegistry registry_;
  Executor exec_;
  PayloadCopier copier_;  // the executor's data moves: memcpy or the DMA engine
  CqId tcq_ = 0;
  SqId tsq_ = 0;
  std::vector<std::vector<uint8_t>> pool_;
  std::unordered_map<QpNum, Qp> qps_;
  QpNum next_qp_ = 1;
  std::vector<std::deque<WorkCompletion>> cqs_;
  // unordered_map nodes are stable: the transport holds pointers into Pending::hdr.
  std::unordered_map<uint32_t, Pending> pending_;
  uint32_t next_req_ = 1;
  std::unordered_map<uint64_t, Hdr> answers_;  // answer headers the transport still holds
  uint64_t next_answer_ = 1;
  DeviceStats stats_;
  size_t rnr_waiting_ = 0;  // pending requests with a retry_at
  // Direct placements in progress (target address -> ReqID of a READ, or 0 for a WRITE): a
  // region with one cannot be deregistered, a READ cannot complete before its data landed.
  std::unordered_multimap<const uint8_t*, uint32_t> placing_;

  // The transport's placement hook: WRITE_ONLY into a registered region, READ_RESPONSE_ONLY
  // into the waiting request's buffer, after the same checks the executor makes.
  Placement Place(PeerId peer, std::span<const uint8_t> first, uint32_t msg_len) {
    Result<RdmaCommand> c = DecodeHeaders(native::Tables(), first);
    if (!c.ok()) return {};
    const size_t hlen = first.size() - c->payload.size();
    if (msg_len <= hlen) return {};
    const uint32_t data_len = static_cast<uint32_t>(msg_len - hlen);
    uint8_t* at = nullptr;
    uint32_t req = 0;
    if (c->opcode == RdmaOpcode::kWriteOnly) {
      auto q = qps_.find(c->dest_qp);
      if (q == qps_.end() || c->dma_length != data_len ||
          registry_.CheckRemote(c->rkey, q->second.pd, c->va, data_len, kAccessRemoteWrite, &at) !=
              AccessViolation::kNone) {
        return {};
      }
    } else if (c->opcode == RdmaOpcode::kReadResponseOnly) {
      auto it = pending_.find(c->msn);
      if (it == pending_.end()) return {};
      Pending& p = it->second;
      auto q = qps_.find(p.qp);
      if (p.answered || p.placing || p.orphaned || p.wr.peer != peer || p.wr.dest_qp != c->src_qp ||
          p.qp != c->dest_qp || p.wr.opcode != WrOpcode::kRdmaRead || p.wr.sge.length != data_len ||
          q == qps_.end() ||
          registry_.CheckLocal(p.wr.sge, q->second.pd, kAccessLocalWrite, &at) !=
              AccessViolation::kNone) {
        return {};
      }
      p.placing = true;
      req = c->msn;
    } else {
      return {};
    }
    placing_.emplace(at, req);
    ++stats_.placed_direct;
    return {at, static_cast<uint32_t>(hlen)};
  }

  // A placed message completed (or failed): forget its placement.
  void EndPlacement(const uint8_t* at) {
    auto it = placing_.find(at);
    if (it == placing_.end()) return;
    const uint32_t req = it->second;
    placing_.erase(it);
    if (req == 0) return;
    auto p = pending_.find(req);
    if (p != pending_.end()) {
      p->second.placing = false;
      MaybeFinish(req);
    }
  }

  bool PlacingInto(const MemoryRegion& mr) const {
    const uint8_t* lo = static_cast<const uint8_t*>(mr.addr);
    for (const auto& [at, req] : placing_) {
      if (at >= lo && at < lo + mr.length) return true;
    }
    return false;
  }

  void PushWc(CqHandle cq, const WorkCompletion& wc) {
    if (cq < cqs_.size()) cqs_[cq].push_back(wc);
  }

  Status TransmitRequest(uint32_t id, Pending& p, Nanos now) {
    Sge sgl[2] = {{p.hdr.bytes.data(), p.hdr.len},
                  {reinterpret_cast<const void*>(p.wr.sge.addr), p.data_len}};
    Status st = ep_.PostSend(tsq_, p.wr.peer, {sgl, p.data_len ? 2u : 1u}, id, now);
    if (st.ok()) {
      p.in_transport = true;
      ++stats_.requests_sent;
    }
    return st;
  }

  Status PostSend(QpNum qpn, const SendWr& wr, Nanos now) {
    auto q = qps_.find(qpn);
    if (q == qps_.end()) return Status(Code::kNotFound, "no such queue pair");
    const bool atomic =
        wr.opcode == WrOpcode::kAtomicFetchAdd || wr.opcode == WrOpcode::kAtomicCmpSwap;
    if (atomic && wr.sge.length != 8) {
      return Status(Code::kInvalidArgument, "an atomic's local buffer is 8 bytes");
    }
    if (wr.sge.length > config_.max_message) {
      return Status(Code::kInvalidArgument, "work request larger than the device's max_message");
    }
    WorkCompletion wc;
    wc.wr_id = wr.wr_id;
    wc.opcode = WcOpcodeFor(wr.opcode);
    wc.qp = qpn;
    uint8_t* local = nullptr;
    if (wr.sge.length != 0 &&
        registry_.CheckLocal(wr.sge, q->second.pd,
                             DataLandsLocally(wr.opcode) ? uint32_t{kAccessLocalWrite} : 0u,
                             &local) != AccessViolation::kNone) {
      wc.status = WcStatus::kLocalProtectionError;
      PushWc(q->second.send_cq, wc);
      return Status::Ok();
    }
    RdmaCommand cmd;
    cmd.opcode = CommandOpcodeFor(wr.opcode);
    cmd.dest_qp = wr.dest_qp;
    cmd.src_qp = qpn;
    if (next_req_ == 0) next_req_ = 1;  // 0 marks a WRITE in placing_
    const uint32_t id = next_req_++;
    cmd.msn = id;
    cmd.va = wr.remote_addr;
    cmd.rkey = wr.rkey;
    cmd.dma_length = wr.sge.length;
    cmd.imm = wr.imm;
    if (wr.opcode == WrOpcode::kAtomicFetchAdd) cmd.swap_add = wr.compare_add;
    if (wr.opcode == WrOpcode::kAtomicCmpSwap) {
      cmd.compare = wr.compare_add;
      cmd.swap_add = wr.swap;
    }
    if (wr.opcode == WrOpcode::kSend || wr.opcode == WrOpcode::kSendWithImm) {
      cmd.va = 0;
      cmd.rkey = 0;
    }
    Pending& p = pending_[id];
    p.qp = qpn;
    p.wr = wr;
    p.wc = wc;
    p.rnr_left = config_.rnr_retry;
    p.data_len = DataLandsLocally(wr.opcode) ? 0 : wr.sge.length;
    Result<size_t> n = EncodeHeaders(native::Tables(), cmd, p.hdr.bytes);
    if (!n.ok()) {
      pending_.erase(id);
      return n.status();
    }
    p.hdr.len = *n;
    Status st = TransmitRequest(id, p, now);
    if (!st.ok()) pending_.erase(id);
    return st;
  }

  // Completes the request once both halves (transport completion, answer) are in.
  void MaybeFinish(uint32_t id) {
    auto it = pending_.find(id);
    if (it == pending_.end()) return;
    Pending& p = it->second;
    if (p.in_transport || !p.answered || p.retry_at != kNever || p.placing) return;
    if (!p.orphaned) {
      auto q = qps_.find(p.qp);
      if (q != qps_.end()) PushWc(q->second.send_cq, p.wc);
    }
    pending_.erase(it);
  }

  void OnAnswer(PeerId peer, const RdmaCommand& c, Nanos now) {
    auto it = pending_.find(c.msn);
    // An answer must come from the peer and QP the request went to (another peer cannot
    // complete someone else's request by guessing its ReqID).
    if (it == pending_.end() || it->second.answered || it->second.wr.peer != peer ||
        it->second.wr.dest_qp != c.src_qp || it->second.qp != c.dest_qp) {
      ++stats_.stray_responses;
      return;
    }
    Pending& p = it->second;
    WorkCompletion& wc = p.wc;
    switch (c.opcode) {
      case RdmaOpcode::kAck:
        break;
      case RdmaOpcode::kNak:
        wc.status = StatusForNak(static_cast<NakCode>(c.syndrome & 0x1F));
        break;
      case RdmaOpcode::kRnrNak:
        if (config_.rnr_retry == 7 || p.rnr_left-- > 0) {
          ++stats_.rnr_retries;
          p.retry_at = now + UsToNs(config_.rnr_delay_us);
          ++rnr_waiting_;
          return;  // not answered yet
        }
        wc.status = WcStatus::kRnrRetryExceeded;
        break;
      case RdmaOpcode::kReadResponseOnly:
      case RdmaOpcode::kAtomicAck: {
        const bool read = c.opcode == RdmaOpcode::kReadResponseOnly;
        if (read != (p.wr.opcode == WrOpcode::kRdmaRead)) {
          wc.status = WcStatus::kRemoteInvalidRequest;
          break;
        }
        const size_t n = read ? c.payload.size() : 8;
        uint8_t* local = nullptr;
        // Checked again: the region may have been deregistered while the request was out.
        if (n != p.wr.sge.length ||
            (n != 0 && registry_.CheckLocal(p.wr.sge, qps_.count(p.qp) ? qps_[p.qp].pd : 0,
                                            kAccessLocalWrite, &local) != AccessViolation::kNone)) {
          wc.status = n != p.wr.sge.length ? WcStatus::kRemoteInvalidRequest
                                           : WcStatus::kLocalProtectionError;
          break;
        }
        if (read && n != 0 && local != c.payload.data() &&
            !exec_.Place(local, n, 0, c.payload.first(n)).ok()) {
          wc.status = WcStatus::kLocalProtectionError;
          break;
        }
        if (!read) std::memcpy(local, &c.atomic_orig, 8);
        wc.byte_len = static_cast<uint32_t>(n);
        break;
      }
      default:
        ++stats_.stray_responses;
        return;
    }
    p.answered = true;
    MaybeFinish(c.msn);
  }

  void SendAnswer(PeerId peer, const RdmaCommand& req, const ExecResult& r, Nanos now) {
    RdmaCommand a;
    a.dest_qp = req.src_qp;
    a.src_qp = req.dest_qp;
    a.msn = req.msn;
    std::span<const uint8_t> data;
    switch (r.reply) {
      case Reply::kNone:
      case Reply::kAck:
        a.opcode = RdmaOpcode::kAck;
        break;
      case Reply::kNak:
        a.opcode = RdmaOpcode::kNak;
        a.syndrome = static_cast<uint8_t>(0x60 | static_cast<uint8_t>(r.nak));
        ++stats_.naks_sent;
        break;
      case Reply::kRnrNak:
        a.opcode = RdmaOpcode::kRnrNak;
        a.syndrome = 0x20 | kRnrTimerCode;
        ++stats_.rnr_naks_sent;
        break;
      case Reply::kReadResponse:
        a.opcode = RdmaOpcode::kReadResponseOnly;
        a.dma_length = static_cast<uint32_t>(r.read_data.size());
        data = r.read_data;
        break;
      case Reply::kAtomicAck:
        a.opcode = RdmaOpcode::kAtomicAck;
        a.atomic_orig = r.atomic_orig;
        break;
    }
    const uint64_t tag = kResponseTag | next_answer_++;
    Hdr& h = answers_[tag];
    Result<size_t> n = EncodeHeaders(native::Tables(), a, h.bytes);
    if (!n.ok()) {
      answers_.erase(tag);
      return;
    }
    h.len = *n;
    // Read data goes out of the registered region itself: no copy into a send buffer.
    Sge sgl[2] = {{h.bytes.data(), h.len}, {data.data(), data.size()}};
    if (!ep_.PostSend(tsq_, peer, {sgl, data.empty() ? 1u : 2u}, tag, now).ok()) {
      answers_.erase(tag);  // the peer is gone; its request will fail on its side
    }
  }

  void OnRequest(PeerId peer, const RdmaCommand& c, Nanos now) {
    auto q = qps_.find(c.dest_qp);
    if (q == qps_.end()) {
      ExecResult r;
      r.reply = Reply::kNak;
      r.nak = NakCode::kInvalidRequest;
      SendAnswer(peer, c, r, now);
      return;
    }
    Qp& qp = q->second;
    ExecTarget t{qp.pd, &qp.rq, &qp.state};
    ExecResult r = exec_.Execute(c, t);
    ++stats_.requests_executed;
    if (r.recv_completed) {
      r.recv_wc.qp = c.dest_qp;
      r.recv_wc.src_peer = peer;
      r.recv_wc.src_qp = c.src_qp;
      PushWc(qp.recv_cq, r.recv_wc);
    }
    SendAnswer(peer, c, r, now);
  }

  void OnMessage(const Completion& tc, Nanos now) {
    // Placed directly: the buffer holds the headers, the data is already at tc.placed.
    std::span<const uint8_t> bytes(static_cast<const uint8_t*>(tc.buffer),
                                   tc.placed ? tc.placed_from : tc.length);
    Result<ProtocolIndex> idx = ClassifyPacket({Carrier::kSrdMessage, 0, false}, bytes);
    Result<RdmaCommand> c = idx.ok() ? DecodeUnit(*idx, bytes) : Result<RdmaCommand>(idx.status());
    if (!c.ok() || *idx != ProtocolIndex::kNative) {
      ++stats_.malformed_dropped;
      return;
    }
    if (tc.placed) {
      c.value().payload = {static_cast<const uint8_t*>(tc.placed), tc.length - tc.placed_from};
    }
    switch (c->opcode) {
      case RdmaOpcode::kAck:
      case RdmaOpcode::kNak:
      case RdmaOpcode::kRnrNak:
      case RdmaOpcode::kReadResponseOnly:
      case RdmaOpcode::kAtomicAck:
        OnAnswer(tc.peer, *c, now);
        break;
      default:
        OnRequest(tc.peer, *c, now);
    }
  }

  void OnSendCompletion(const Completion& tc) {
    if (tc.tag & kResponseTag) {
      answers_.erase(tc.tag);
      return;
    }
    const uint32_t id = static_cast<uint32_t>(tc.tag);
    auto it = pending_.find(id);
    if (it == pending_.end()) return;
    Pending& p = it->second;
    p.in_transport = false;
    if (tc.status != Code::kOk && !p.answered) {
      p.answered = true;
      if (p.retry_at != kNever) --rnr_waiting_;
      p.retry_at = kNever;
      p.wc.status = tc.status == Code::kRnrRetryExceeded ? WcStatus::kRnrRetryExceeded
                                                         : WcStatus::kTransportRetryExceeded;
    }
    MaybeFinish(id);
  }

  size_t Progress(Nanos now) {
    size_t handled = 0;
    Completion c[32];
    size_t n;
    while ((n = ep_.PollCompletions(tcq_, c)) > 0) {
      for (size_t k = 0; k < n; ++k) {
        ++handled;
        if (c[k].kind == CompletionKind::kSend) {
          OnSendCompletion(c[k]);
          continue;
        }
        if (c[k].status == Code::kOk) OnMessage(c[k], now);
        // After OnMessage: a READ completes only once its placement has ended.
        if (c[k].placed) EndPlacement(static_cast<const uint8_t*>(c[k].placed));
        (void)ep_.PostRecv(tcq_, pool_[c[k].tag].data(), pool_[c[k].tag].size(), c[k].tag);
      }
    }
    // RNR retries whose delay passed and whose previous attempt the transport released.
    if (rnr_waiting_ == 0) return handled;
    std::vector<uint32_t> finish;
    for (auto& [id, p] : pending_) {
      if (p.retry_at == kNever || p.retry_at > now || p.in_transport) continue;
      p.retry_at = kNever;
      --rnr_waiting_;
      if (p.orphaned) {
        p.answered = true;
      } else if (!TransmitRequest(id, p, now).ok()) {
        p.answered = true;
        p.wc.status = WcStatus::kTransportRetryExceeded;
      }
      ++handled;  // the driver must let the endpoint transmit
      finish.push_back(id);
    }
    for (uint32_t id : finish) MaybeFinish(id);
    return handled;
  }

  Nanos NextTimeout() const {
    Nanos t = kNever;
    if (rnr_waiting_ == 0) return t;
    for (const auto& [id, p] : pending_) t = std::min(t, p.retry_at);
    return t;
  }

  Status DestroyQp(QpNum qpn) {
    auto q = qps_.find(qpn);
    if (q == qps_.end()) return Status(Code::kNotFound, "no such queue pair");
    for (auto& [id, p] : pending_) {
      if (p.qp != qpn || p.orphaned) continue;
      p.orphaned = true;
      WorkCompletion wc = p.wc;
      wc.status = WcStatus::kFlushed;
      PushWc(q->second.send_cq, wc);
      if (!p.answered) p.answered = p.retry_at == kNever;
    }
    for (const RecvWr& r : q->second.rq.posted) {
      WorkCompletion wc;
      wc.wr_id = r.wr_id;
      wc.status = WcStatus::kFlushed;
      wc.opcode = WcOpcode::kRecv;
      wc.qp = qpn;
      PushWc(q->second.recv_cq, wc);
    }
    registry_.RemovePdUser(q->second.pd);
    qps_.erase(q);
    std::vector<uint32_t> done;
    for (auto& [id, p] : pending_) {
      if (p.orphaned && !p.in_transport && p.answered && p.retry_at == kNever) done.push_back(id);
    }
    for (uint32_t id : done) pending_.erase(id);
    return Status::Ok();
  }
};

RdmaDevice::RdmaDevice(Endpoint& ep, const DeviceConfig& config)
    : impl_(std::make_unique<Impl>(ep, config)) {}
RdmaDevice::~RdmaDevice() = default;

PdHandle RdmaDevice::AllocPd() {
  return impl_->registry_.AllocPd();
}
Status RdmaDevice::DeallocPd(PdHandle pd) {
  return impl_->registry_.DeallocPd(pd);
}
Result<MemoryRegion> RdmaDevice::RegMr(PdHandle pd, void* addr, size_t length, uint32_t access) {
  return impl_->registry_.Register(pd, addr, length, access);
}
Status RdmaDevice::DeregMr(uint32_t lkey) {
  const MemoryRegion* mr = impl_->registry_.Find(lkey);
  if (mr != nullptr && impl_->PlacingInto(*mr)) {
    return Status(Code::kResourceExhausted, "busy: incoming data is being placed into the region");
  }
  return impl_->registry_.Deregister(lkey);
}
CqHandle RdmaDevice::CreateCq() {
  impl_->cqs_.emplace_back();
  return static_cast<CqHandle>(impl_->cqs_.size() - 1);
}
Result<QpNum> RdmaDevice::CreateQp(PdHandle pd, CqHandle send_cq, CqHandle recv_cq) {
  if (!impl_->registry_.PdExists(pd)) return Status(Code::kNotFound, "unknown protection domain");
  if (send_cq >= impl_->cqs_.size() || recv_cq >= impl_->cqs_.size()) {
    return Status(Code::kNotFound, "no such completion queue");
  }
  const QpNum n = impl_->next_qp_++;
  Impl::Qp& q = impl_->qps_[n];
  q.pd = pd;
  q.send_cq = send_cq;
  q.recv_cq = recv_cq;
  impl_->registry_.AddPdUser(pd);
  return n;
}
Status RdmaDevice::DestroyQp(QpNum qp) {
  return impl_->DestroyQp(qp);
}
Status RdmaDevice::PostSend(QpNum qp, const SendWr& wr, Nanos now) {
  return impl_->PostSend(qp, wr, now);
}
Status RdmaDevice::PostRecv(QpNum qpn, const RecvWr& wr) {
  auto q = impl_->qps_.find(qpn);
  if (q == impl_->qps_.end()) return Status(Code::kNotFound, "no such queue pair");
  uint8_t* at = nullptr;
  if (wr.sge.length != 0 && impl_->registry_.CheckLocal(wr.sge, q->second.pd, kAccessLocalWrite,
                                                        &at) != AccessViolation::kNone) {
    WorkCompletion wc;
    wc.wr_id = wr.wr_id;
    wc.status = WcStatus::kLocalProtectionError;
    wc.opcode = WcOpcode::kRecv;
    wc.qp = qpn;
    impl_->PushWc(q->second.recv_cq, wc);
    return Status::Ok();
  }
  q->second.rq.posted.push_back(wr);
  return Status::Ok();
}
size_t RdmaDevice::PollCq(CqHandle cq, std::span<WorkCompletion> out) {
  if (cq >= impl_->cqs_.size()) return 0;
  auto& d = impl_->cqs_[cq];
  size_t n = 0;
  while (n < out.size() && !d.empty()) {
    out[n++] = d.front();
    d.pop_front();
  }
  return n;
}
size_t RdmaDevice::Progress(Nanos now) {
  return impl_->Progress(now);
}
Nanos RdmaDevice::NextTimeout() const {
  return impl_->NextTimeout();
}
bool RdmaDevice::Busy() const {
  return !impl_->pending_.empty();
}
DeviceStats RdmaDevice::stats() const {
  DeviceStats s = impl_->stats_;
  s.copy_descriptors = impl_->copier_.stats().descriptors;
  return s;
}

}  // namespace opensrd::rdma
