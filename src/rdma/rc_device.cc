// RcDevice: the verbs objects every connected-QP protocol shares (protection domains, memory
// regions, completion queues, which CQs a QP completes on) in front of one RcBackend (RoCEv2 or
// iWARP) that owns the queue pairs and the wire. See rc_backend.h for the split.
#include <deque>
#include <map>

#include "opensrd/rdma.h"
#include "rdma/memory_registry.h"
#include "rdma/rc_backend.h"

namespace opensrd::rdma {

const char* RcProtocolName(RcProtocol p) {
  return p == RcProtocol::kRoce ? "roce" : "iwarp";
}

const char* CmEventName(CmEventKind k) {
  switch (k) {
    case CmEventKind::kConnectRequest:
      return "connect request";
    case CmEventKind::kEstablished:
      return "established";
    case CmEventKind::kRejected:
      return "rejected";
    case CmEventKind::kUnreachable:
      return "unreachable";
    case CmEventKind::kDisconnected:
      return "disconnected";
  }
  return "?";
}

class RcDevice::Impl {
 public:
  struct Qp {
    PdHandle pd = 0;
    CqHandle send_cq = 0;
    CqHandle recv_cq = 0;
  };

  MemoryRegistry registry;
  RcBackend::Sink sink;
  std::unique_ptr<RcBackend> backend;
  std::map<CqHandle, std::deque<WorkCompletion>> cqs;
  std::map<QpNum, Qp> qps;
  CqHandle next_cq = 1;

  // Moves the backend's completions to the CQs of their QPs. A completion for a QP already
  // destroyed has nowhere to go (DestroyQp drains before forgetting the QP, so none should).
  void Route() {
    for (WorkCompletion& wc : sink.completions) {
      auto it = qps.find(wc.qp);
      if (it == qps.end()) continue;
      const bool recv = wc.opcode == WcOpcode::kRecv || wc.opcode == WcOpcode::kRecvRdmaWithImm;
      cqs[recv ? it->second.recv_cq : it->second.send_cq].push_back(wc);
    }
    sink.completions.clear();
  }
};

RcDevice::RcDevice(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

RcDevice::~RcDevice() {
  if (!impl_) return;
  // Flush what is left so the backend closes its connections in order.
  while (!impl_->qps.empty()) (void)DestroyQp(impl_->qps.begin()->first);
}

Result<std::unique_ptr<RcDevice>> RcDevice::Open(const RcDeviceConfig& config) {
  if (config.local.v6) {
    return Status(Code::kInvalidArgument, "rdma: connected QPs are IPv4 only");
  }
  auto impl = std::make_unique<Impl>();
  Result<std::unique_ptr<RcBackend>> b = config.protocol == RcProtocol::kRoce
                                             ? OpenRoceBackend(config, impl->registry, impl->sink)
                                             : OpenIwarpBackend(config, impl->registry, impl->sink);
  if (!b.ok()) return b.status();
  impl->backend = std::move(b.value());
  return std::unique_ptr<RcDevice>(new RcDevice(std::move(impl)));
}

PdHandle RcDevice::AllocPd() {
  return impl_->registry.AllocPd();
}

Status RcDevice::DeallocPd(PdHandle pd) {
  return impl_->registry.DeallocPd(pd);
}

Result<MemoryRegion> RcDevice::RegMr(PdHandle pd, void* addr, size_t length, uint32_t access) {
  return impl_->registry.Register(pd, addr, length, access);
}

Status RcDevice::DeregMr(uint32_t lkey) {
  return impl_->registry.Deregister(lkey);
}

CqHandle RcDevice::CreateCq() {
  const CqHandle h = impl_->next_cq++;
  impl_->cqs[h];
  return h;
}

Result<QpNum> RcDevice::CreateQp(PdHandle pd, CqHandle send_cq, CqHandle recv_cq) {
  if (!impl_->registry.PdExists(pd)) return Status(Code::kInvalidArgument, "rdma: no such PD");
  if (!impl_->cqs.contains(send_cq) || !impl_->cqs.contains(recv_cq)) {
    return Status(Code::kInvalidArgument, "rdma: no such CQ");
  }
  Result<QpNum> qp = impl_->backend->CreateQp(pd);
  if (!qp.ok()) return qp;
  impl_->registry.AddPdUser(pd);
  impl_->qps[*qp] = Impl::Qp{pd, send_cq, recv_cq};
  return qp;
}

Status RcDevice::DestroyQp(QpNum qp) {
  auto it = impl_->qps.find(qp);
  if (it == impl_->qps.end()) return Status(Code::kNotFound, "rdma: no such QP");
  impl_->backend->DestroyQp(qp);
  impl_->Route();
  impl_->registry.RemovePdUser(it->second.pd);
  impl_->qps.erase(it);
  return Status::Ok();
}

Status RcDevice::Listen() {
  return impl_->backend->Listen();
}

uint16_t RcDevice::local_port() const {
  return impl_->backend->local_port();
}

Status RcDevice::Connect(QpNum qp, const NetAddr& peer, std::span<const uint8_t> private_data) {
  if (!impl_->qps.contains(qp)) return Status(Code::kNotFound, "rdma: no such QP");
  if (peer.v6) return Status(Code::kInvalidArgument, "rdma: connected QPs are IPv4 only");
  Status st = impl_->backend->Connect(qp, peer, private_data);
  impl_->Route();
  return st;
}

Status RcDevice::Accept(uint32_t request, QpNum qp, std::span<const uint8_t> private_data) {
  if (!impl_->qps.contains(qp)) return Status(Code::kNotFound, "rdma: no such QP");
  Status st = impl_->backend->Accept(request, qp, private_data);
  impl_->Route();
  return st;
}

Status RcDevice::Reject(uint32_t request) {
  return impl_->backend->Reject(request);
}

Status RcDevice::Disconnect(QpNum qp) {
  if (!impl_->qps.contains(qp)) return Status(Code::kNotFound, "rdma: no such QP");
  Status st = impl_->backend->Disconnect(qp);
  impl_->Route();
  return st;
}

bool RcDevice::PollCmEvent(CmEvent* out) {
  if (impl_->sink.events.empty()) return false;
  *out = std::move(impl_->sink.events.front());
  impl_->sink.events.pop_front();
  return true;
}

Status RcDevice::PostSend(QpNum qp, const SendWr& wr) {
  if (!impl_->qps.contains(qp)) return Status(Code::kNotFound, "rdma: no such QP");
  Status st = impl_->backend->PostSend(qp, wr);
  impl_->Route();
  return st;
}

Status RcDevice::PostRecv(QpNum qp, const RecvWr& wr) {
  if (!impl_->qps.contains(qp)) return Status(Code::kNotFound, "rdma: no such QP");
  Status st = impl_->backend->PostRecv(qp, wr);
  impl_->Route();
  return st;
}

size_t RcDevice::PollCq(CqHandle cq, std::span<WorkCompletion> out) {
  auto it = impl_->cqs.find(cq);
  if (it == impl_->cqs.end()) return 0;
  size_t n = 0;
  while (n < out.size() && !it->second.empty()) {
    out[n++] = it->second.front();
    it->second.pop_front();
  }
  return n;
}

Status RcDevice::Poll(int timeout_ms) {
  Status st = impl_->backend->Poll(timeout_ms);
  impl_->Route();
  return st;
}

RcDeviceStats RcDevice::stats() const {
  return impl_->backend->stats();
}

std::string RcDevice::CountersJson() const {
  return impl_->backend->CountersJson();
}

std::string RcDevice::CloseCapture() {
  return impl_->backend->CloseCapture();
}

}  // namespace opensrd::rdma
