#include "rdma/ib_cm_agent.h"

#include <algorithm>
#include <cstring>

#include "rdma/roce_oob.h"

namespace opensrd::rdma::cm {

const char* EventName(EventKind k) {
  switch (k) {
    case EventKind::kConnectRequest:
      return "connect_request";
    case EventKind::kEstablished:
      return "established";
    case EventKind::kRejected:
      return "rejected";
    case EventKind::kDisconnected:
      return "disconnected";
    case EventKind::kTimedOut:
      return "timed_out";
  }
  return "?";
}

CmAgent::CmAgent(const Config& config) : cfg_(config), rng_(config.seed) {}

uint32_t CmAgent::NewId() {
  for (;;) {
    const uint32_t id = static_cast<uint32_t>(rng_());
    if (id != 0 && conns_.count(id) == 0) return id;
  }
}

CmAgent::Conn* CmAgent::Find(uint32_t id, uint32_t peer_ip) {
  auto it = conns_.find(id);
  if (it == conns_.end() || it->second.peer_ip != peer_ip) return nullptr;
  return &it->second;
}

std::optional<CmAgent::State> CmAgent::state(uint32_t id) const {
  auto it = conns_.find(id);
  if (it == conns_.end()) return std::nullopt;
  return it->second.state;
}

void CmAgent::SendOnce(uint32_t peer_ip, Message m) {
  out_.push_back({peer_ip, std::move(m)});
}

void CmAgent::Send(Conn& c, Message m, uint64_t now_us, bool await_answer) {
  c.last_sent = m;
  c.deadline = await_answer ? now_us + cfg_.resend_us : 0;
  c.resends_left = cfg_.max_resends;
  SendOnce(c.peer_ip, std::move(m));
}

void CmAgent::Emit(const Conn& c, EventKind kind, uint16_t reason) {
  Event e;
  e.kind = kind;
  e.id = c.id;
  e.peer_ip = c.peer_ip;
  e.service_id = c.service_id;
  e.remote_qpn = c.remote_qpn;
  e.send_psn = c.send_psn;
  e.path_mtu = c.path_mtu;
  e.reason = reason;
  events_.push_back(std::move(e));
}

uint32_t CmAgent::Connect(uint32_t peer_ip, uint64_t service_id, const QpOffer& offer,
                          const CmaHeader* cma, uint64_t now_us) {
  Conn c;
  c.id = NewId();
  c.peer_ip = peer_ip;
  c.state = State::kReqSent;
  c.tid = rng_();
  c.service_id = service_id;
  c.local_qpn = offer.qpn;
  c.path_mtu = offer.path_mtu;  // the REP carries none: Established reports the REQ's
  Req r;
  r.local_comm_id = c.id;
  r.service_id = service_id;
  r.local_ca_guid = cfg_.ca_guid;
  r.local_qpn = offer.qpn;
  r.responder_resources = offer.responder_resources;
  r.initiator_depth = offer.initiator_depth;
  r.starting_psn = offer.recv_psn;
  r.retry_count = offer.retry_count;
  r.rnr_retry_count = offer.rnr_retry_count;
  r.path_mtu = offer.path_mtu;
  r.max_cm_retries = static_cast<uint8_t>(std::min(cfg_.max_resends, 15));
  r.primary_local_gid = roce::Ipv4MappedGid(cfg_.local_ip);
  r.primary_remote_gid = roce::Ipv4MappedGid(peer_ip);
  size_t at = 0;
  if (cma != nullptr) {
    EncodeCmaHeader(*cma, r.private_data);
    at = kCmaHeaderLen;
  }
  const size_t n = std::min(offer.private_data.size(), r.private_data.size() - at);
  if (n != 0) std::memcpy(r.private_data.data() + at, offer.private_data.data(), n);
  Message m{c.tid, r};
  const uint32_t id = c.id;
  Conn& stored = conns_[id] = c;
  Send(stored, std::move(m), now_us, true);
  return id;
}

void CmAgent::OnReq(uint32_t from_ip, const Message& m, const Req& req, uint64_t now_us) {
  for (auto& [id, c] : conns_) {
    if (c.peer_ip == from_ip && c.remote_id == req.local_comm_id &&
        (c.state == State::kReqRcvd || c.state == State::kRepSent ||
         c.state == State::kEstablished)) {
      // A resent REQ: our REP was lost (or is late). Answer it again; ignore while the owner
      // has not decided.
      if (c.state == State::kRepSent && c.last_sent) SendOnce(c.peer_ip, *c.last_sent);
      return;
    }
  }
  if (listening_.count(req.service_id) == 0) {
    Rej rej;
    rej.remote_comm_id = req.local_comm_id;
    rej.message_rejected = 0;
    rej.reason = kRejInvalidServiceId;
    SendOnce(from_ip, Message{m.transaction_id, rej});
    return;
  }
  Conn c;
  c.id = NewId();
  c.remote_id = req.local_comm_id;
  c.peer_ip = from_ip;
  c.state = State::kReqRcvd;
  c.tid = m.transaction_id;
  c.service_id = req.service_id;
  c.remote_qpn = req.local_qpn;
  c.send_psn = req.starting_psn;
  c.path_mtu = req.path_mtu;
  conns_[c.id] = c;
  Event e;
  e.kind = EventKind::kConnectRequest;
  e.id = c.id;
  e.peer_ip = from_ip;
  e.service_id = req.service_id;
  e.remote_qpn = req.local_qpn;
  e.send_psn = req.starting_psn;
  e.path_mtu = req.path_mtu;
  e.responder_resources = req.responder_resources;
  e.initiator_depth = req.initiator_depth;
  // rdma_cm's services (0x0106xxxx, 0x0111xxxx...) carry its header; others are raw private data.
  size_t skip = 0;
  if ((req.service_id >> 16) != 0 && (req.service_id >> 32) == 0) {
    Result<CmaHeader> h = DecodeCmaHeader(req.private_data);
    if (h.ok()) {
      e.cma = *h;
      skip = kCmaHeaderLen;
    }
  }
  e.private_data.assign(req.private_data.begin() + skip, req.private_data.end());
  events_.push_back(std::move(e));
  (void)now_us;
}

Status CmAgent::Accept(uint32_t id, const QpOffer& offer, uint64_t now_us) {
  auto it = conns_.find(id);
  if (it == conns_.end() || it->second.state != State::kReqRcvd) {
    return Status(Code::kInvalidArgument, "no connection request to accept");
  }
  Conn& c = it->second;
  c.local_qpn = offer.qpn;
  Rep r;
  r.local_comm_id = c.id;
  r.remote_comm_id = c.remote_id;
  r.local_qpn = offer.qpn;
  r.starting_psn = offer.recv_psn;
  r.responder_resources = offer.responder_resources;
  r.initiator_depth = offer.initiator_depth;
  r.rnr_retry_count = offer.rnr_retry_count;
  r.local_ca_guid = cfg_.ca_guid;
  const size_t n = std::min(offer.private_data.size(), r.private_data.size());
  if (n != 0) std::memcpy(r.private_data.data(), offer.private_data.data(), n);
  c.state = State::kRepSent;
  Send(c, Message{c.tid, r}, now_us, true);
  return Status::Ok();
}

Status CmAgent::Reject(uint32_t id, uint16_t reason, uint64_t now_us) {
  auto it = conns_.find(id);
  if (it == conns_.end() || it->second.state != State::kReqRcvd) {
    return Status(Code::kInvalidArgument, "no connection request to reject");
  }
  Conn& c = it->second;
  Rej rej;
  rej.local_comm_id = c.id;
  rej.remote_comm_id = c.remote_id;
  rej.reason = reason;
  Send(c, Message{c.tid, rej}, now_us, false);
  Close(c, now_us);
  return Status::Ok();
}

Status CmAgent::Disconnect(uint32_t id, uint64_t now_us) {
  auto it = conns_.find(id);
  if (it == conns_.end() || it->second.state != State::kEstablished) {
    return Status(Code::kInvalidArgument, "connection not established");
  }
  Conn& c = it->second;
  Dreq d;
  d.local_comm_id = c.id;
  d.remote_comm_id = c.remote_id;
  d.remote_qpn = c.remote_qpn;
  c.state = State::kDreqSent;
  c.tid = rng_();
  Send(c, Message{c.tid, d}, now_us, true);
  return Status::Ok();
}

void CmAgent::CommunicationEstablished(uint32_t id) {
  auto it = conns_.find(id);
  if (it == conns_.end() || it->second.state != State::kRepSent) return;
  it->second.state = State::kEstablished;
  it->second.deadline = 0;
  Emit(it->second, EventKind::kEstablished);
}

void CmAgent::OnMessage(uint32_t from_ip, const Message& m, uint64_t now_us) {
  if (const Req* req = std::get_if<Req>(&m.body)) {
    OnReq(from_ip, m, *req, now_us);
  } else if (const Rep* rep = std::get_if<Rep>(&m.body)) {
    Conn* c = Find(rep->remote_comm_id, from_ip);
    if (c == nullptr) return;
    if (c->state == State::kReqSent) {
      c->remote_id = rep->local_comm_id;
      c->remote_qpn = rep->local_qpn;
      c->send_psn = rep->starting_psn;
      c->state = State::kEstablished;
      Rtu rtu;
      rtu.local_comm_id = c->id;
      rtu.remote_comm_id = c->remote_id;
      Send(*c, Message{c->tid, rtu}, now_us, false);
      Event e;
      e.kind = EventKind::kEstablished;
      e.id = c->id;
      e.peer_ip = c->peer_ip;
      e.service_id = c->service_id;
      e.remote_qpn = c->remote_qpn;
      e.send_psn = c->send_psn;
      e.path_mtu = c->path_mtu;
      e.responder_resources = rep->responder_resources;
      e.initiator_depth = rep->initiator_depth;
      e.private_data.assign(rep->private_data.begin(), rep->private_data.end());
      events_.push_back(std::move(e));
    } else if (c->state == State::kEstablished && c->remote_id == rep->local_comm_id &&
               c->last_sent) {
      SendOnce(c->peer_ip, *c->last_sent);  // our RTU was lost: the peer resent its REP
    }
  } else if (const Rtu* rtu = std::get_if<Rtu>(&m.body)) {
    Conn* c = Find(rtu->remote_comm_id, from_ip);
    if (c != nullptr && c->state == State::kRepSent && c->remote_id == rtu->local_comm_id) {
      CommunicationEstablished(c->id);
    }
  } else if (const Dreq* dreq = std::get_if<Dreq>(&m.body)) {
    Drep drep;
    drep.local_comm_id = dreq->remote_comm_id;
    drep.remote_comm_id = dreq->local_comm_id;
    SendOnce(from_ip, Message{m.transaction_id, drep});  // also for a connection already gone
    Conn* c = Find(dreq->remote_comm_id, from_ip);
    if (c != nullptr && c->remote_id == dreq->local_comm_id &&
        (c->state == State::kEstablished || c->state == State::kDreqSent ||
         c->state == State::kRepSent)) {
      Close(*c, now_us);
      Emit(*c, EventKind::kDisconnected);
    }
  } else if (const Drep* drep = std::get_if<Drep>(&m.body)) {
    Conn* c = Find(drep->remote_comm_id, from_ip);
    if (c != nullptr && c->state == State::kDreqSent && c->remote_id == drep->local_comm_id) {
      Close(*c, now_us);
      Emit(*c, EventKind::kDisconnected);
    }
  } else if (const Rej* rej = std::get_if<Rej>(&m.body)) {
    Conn* c = Find(rej->remote_comm_id, from_ip);
    if (c != nullptr && (c->state == State::kReqSent || c->state == State::kRepSent)) {
      Close(*c, now_us);
      Emit(*c, EventKind::kRejected, rej->reason);
    }
  } else if (const Mra* mra = std::get_if<Mra>(&m.body)) {
    // The peer needs longer: wait its service timeout (4.096 us * 2^t) before resending.
    Conn* c = Find(mra->remote_comm_id, from_ip);
    if (c != nullptr && c->deadline != 0) {
      const uint64_t wait = (uint64_t{4096} << std::min<uint8_t>(mra->service_timeout, 31)) / 1000;
      c->deadline = now_us + std::max(wait, cfg_.resend_us);
    }
  }
}

void CmAgent::Close(Conn& c, uint64_t now_us) {
  c.state = State::kClosed;
  c.deadline = 0;
  c.closed_at = now_us;
}

void CmAgent::OnTimer(uint64_t now_us) {
  // Closed connections are forgotten after the time-wait (a late duplicate of theirs is then
  // answered as for an unknown connection: DREP for a DREQ, a new request for a REQ).
  std::erase_if(conns_, [&](const auto& kv) {
    const Conn& c = kv.second;
    return c.state == State::kClosed && c.closed_at + cfg_.timewait_us <= now_us;
  });
  for (auto& [id, c] : conns_) {
    if (c.deadline == 0 || c.deadline > now_us) continue;
    if (c.resends_left > 0 && c.last_sent) {
      --c.resends_left;
      c.deadline = now_us + cfg_.resend_us;
      SendOnce(c.peer_ip, *c.last_sent);
      continue;
    }
    const State was = c.state;
    Close(c, now_us);
    if (was == State::kDreqSent) {
      Emit(c, EventKind::kDisconnected);  // IBTA: the DREQ side gives up into timewait
    } else {
      if (was == State::kRepSent) {
        Rej rej;
        rej.local_comm_id = c.id;
        rej.remote_comm_id = c.remote_id;
        rej.message_rejected = 1;
        rej.reason = kRejTimeout;
        SendOnce(c.peer_ip, Message{c.tid, rej});
      }
      Emit(c, EventKind::kTimedOut);
    }
  }
}

std::optional<uint64_t> CmAgent::NextDeadline() const {
  std::optional<uint64_t> d;
  for (const auto& [id, c] : conns_) {
    if (c.deadline != 0 && (!d || c.deadline < *d)) d = c.deadline;
  }
  return d;
}

std::vector<Outgoing> CmAgent::TakeOutgoing() {
  return std::exchange(out_, {});
}

std::vector<Event> CmAgent::TakeEvents() {
  return std::exchange(events_, {});
}

}  // namespace opensrd::rdma::cm
