// CmAgent: the connection-manager state machine behind QP1, sans I/O. It is fed decoded CM
// messages (ib_cm.h) with the peer's IP and the time, and hands back messages to send, events
// for its owner, and its next deadline.
//
// Active side: Connect sends a REQ; a REP answers with the peer's QPN and starting PSN, the
// agent sends RTU and reports kEstablished. Passive side: a REQ for a listened service ID is
// reported as kConnectRequest; the owner Accepts (REP) or Rejects (REJ); the RTU (or, if the
// RTU was lost, the first packet on the QP: CommunicationEstablished) makes it kEstablished.
// Disconnect sends DREQ; DREP (or a DREQ from the peer, answered with DREP) reports
// kDisconnected. REQ, REP and DREQ are resent every `resend_us` until answered, `max_resends`
// times; a duplicate REQ is answered with the REP again, a duplicate REP with the RTU again, a
// DREQ for a connection already gone with a DREP (IBTA 12.9). A REQ for a service nobody
// listens on gets a REJ (invalid service ID), as Linux's CM answers.
// Not thread-safe: one thread feeds one agent.
#pragma once
#include <cstdint>
#include <map>
#include <optional>
#include <random>
#include <set>
#include <vector>

#include "common/status.h"
#include "rdma/ib_cm.h"

namespace opensrd::rdma::cm {

// What this side offers for its queue pair.
struct QpOffer {
  uint32_t qpn = 0;
  // The Starting PSN this side puts in its REQ or REP. As Linux's CM uses the field (cm.c:
  // a REQ's starting PSN becomes the passive side's sq_psn and the active side's rq_psn), it is
  // the first PSN this side expects to RECEIVE; the peer sends from it.
  uint32_t recv_psn = 0;
  uint8_t path_mtu = 3;
  uint8_t responder_resources = 16;
  uint8_t initiator_depth = 16;
  uint8_t retry_count = 7;
  uint8_t rnr_retry_count = 7;
  std::vector<uint8_t> private_data;  // after rdma_cm's header in a REQ
};

enum class EventKind : uint8_t {
  kConnectRequest,  // passive: a REQ arrived (Accept or Reject it)
  kEstablished,
  kRejected,  // the peer sent REJ (reason)
  kDisconnected,
  kTimedOut,  // no answer after every resend
};
const char* EventName(EventKind k);

struct Event {
  EventKind kind = EventKind::kEstablished;
  uint32_t id = 0;  // the connection (this side's comm ID)
  uint32_t peer_ip = 0;
  uint64_t service_id = 0;
  uint32_t remote_qpn = 0;
  uint32_t send_psn = 0;  // the peer's Starting PSN: the first PSN this side sends
  uint8_t path_mtu = 3;
  // The peer's REQ or REP: RDMA READs and atomics it serves at once, and issues at once.
  uint8_t responder_resources = 0;
  uint8_t initiator_depth = 0;
  uint16_t reason = 0;                // kRejected
  std::optional<CmaHeader> cma;       // kConnectRequest: rdma_cm's header, if the REQ had one
  std::vector<uint8_t> private_data;  // REQ (after rdma_cm's header) or REP private data
};

struct Outgoing {
  uint32_t peer_ip = 0;
  Message message;
};

class CmAgent {
 public:
  struct Config {
    uint32_t local_ip = 0;  // our GID is ::ffff:local_ip
    uint64_t ca_guid = 0;
    uint64_t resend_us = 500'000;
    int max_resends = 10;
    uint32_t seed = 1;                 // comm IDs and transaction IDs
    uint64_t timewait_us = 5'000'000;  // a closed connection is remembered this long
  };
  enum class State : uint8_t { kReqSent, kReqRcvd, kRepSent, kEstablished, kDreqSent, kClosed };

  explicit CmAgent(const Config& config);

  void Listen(uint64_t service_id) { listening_.insert(service_id); }
  // Active: sends a REQ with rdma_cm's header (when `cma` is given) in front of the private
  // data. Returns the connection id.
  uint32_t Connect(uint32_t peer_ip, uint64_t service_id, const QpOffer& offer,
                   const CmaHeader* cma, uint64_t now_us);
  // Passive, after kConnectRequest.
  Status Accept(uint32_t id, const QpOffer& offer, uint64_t now_us);
  Status Reject(uint32_t id, uint16_t reason, uint64_t now_us);
  Status Disconnect(uint32_t id, uint64_t now_us);
  // The queue pair received a packet from the peer: a REP whose RTU was lost is accepted.
  void CommunicationEstablished(uint32_t id);

  void OnMessage(uint32_t from_ip, const Message& m, uint64_t now_us);
  void OnTimer(uint64_t now_us);
  std::optional<uint64_t> NextDeadline() const;

  std::vector<Outgoing> TakeOutgoing();
  std::vector<Event> TakeEvents();
  std::optional<State> state(uint32_t id) const;

 private:
  struct Conn {
    uint32_t id = 0;
    uint32_t remote_id = 0;
    uint32_t peer_ip = 0;
    State state = State::kClosed;
    uint64_t tid = 0;
    uint64_t service_id = 0;
    uint32_t local_qpn = 0;
    uint32_t remote_qpn = 0;
    uint32_t send_psn = 0;
    uint8_t path_mtu = 3;
    std::optional<Message> last_sent;  // resent on timeout or a duplicate
    uint64_t deadline = 0;             // 0: none
    int resends_left = 0;
    uint64_t closed_at = 0;  // when it entered kClosed
  };
  uint32_t NewId();
  Conn* Find(uint32_t id, uint32_t peer_ip);
  void Send(Conn& c, Message m, uint64_t now_us, bool await_answer);
  void SendOnce(uint32_t peer_ip, Message m);
  void Emit(const Conn& c, EventKind kind, uint16_t reason = 0);
  void Close(Conn& c, uint64_t now_us);
  void OnReq(uint32_t from_ip, const Message& m, const Req& req, uint64_t now_us);

  Config cfg_;
  std::mt19937_64 rng_;
  std::set<uint64_t> listening_;
  std::map<uint32_t, Conn> conns_;
  std::vector<Outgoing> out_;
  std::vector<Event> events_;
};

}  // namespace opensrd::rdma::cm
