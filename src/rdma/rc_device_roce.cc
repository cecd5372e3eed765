// The RoCEv2 backend of RcDevice: RcQueuePairs on one RoceUdpShell, connected through the
// InfiniBand CM (CmAgent) on QP1 with rdma_cm's REQ header, so the same calls reach Linux's
// rxe through rdma_cm. Every remote operation runs through ExecutorTarget (the
// protocol-independent executor), every local SGE is checked against the device's
// MemoryRegistry before anything is queued.
//
// Verbs to queue pair: a SEND or WRITE's bytes are copied out of the registered buffer when it
// is posted (the queue pair owns its packets' payload for retransmission); READ data and an
// atomic's original value are copied into the checked local buffer when the response
// completes the work request. Work requests posted before the connection is up wait in the QP
// and go out in order once it is. Both sides of a connection use the same UDP port (4791 for
// real peers): the CM's messages carry only IP addresses.
#include <algorithm>
#include <cstring>
#include <map>

#include <nlohmann/json.hpp>

#include <sodium.h>
#include "common/pcap_writer.h"
#include "rdma/executor_target.h"
#include "rdma/ib_cm.h"
#include "rdma/ib_cm_agent.h"
#include "rdma/rc_backend.h"
#include "rdma/roce_qp.h"
#include "rdma/roce_udp.h"
#include "rdma/wc_opcode.h"

namespace opensrd::rdma {
namespace {

constexpr size_t kMaxReqPrivateData = 56;   // a REQ's 92 bytes less rdma_cm's header
constexpr size_t kMaxRepPrivateData = 196;  // IBTA 12.6.6
uint32_t Random32() {
  return randombytes_random();
}

uint8_t MtuCode(uint32_t bytes) {
  uint8_t code = 1;
  while (code < 5 && (256u << code) <= bytes) ++code;
  return code;  // 1: 256 ... 5: 4096, the largest not above `bytes`
}
uint32_t MtuBytes(uint8_t code) {
  return code >= 1 && code <= 5 ? 128u << code : 1024u;
}

WcStatus StatusOf(roce::WcStatus s) {
  switch (s) {
    case roce::WcStatus::kSuccess:
      return WcStatus::kSuccess;
    case roce::WcStatus::kRemoteInvalidRequest:
      return WcStatus::kRemoteInvalidRequest;
    case roce::WcStatus::kRemoteAccessError:
      return WcStatus::kRemoteAccessError;
    case roce::WcStatus::kRemoteOperationalError:
      return WcStatus::kRemoteOperationalError;
    case roce::WcStatus::kRnrRetryExceeded:
      return WcStatus::kRnrRetryExceeded;
    case roce::WcStatus::kRetryExceeded:
      return WcStatus::kTransportRetryExceeded;
    case roce::WcStatus::kFlushed:
      return WcStatus::kFlushed;
  }
  return WcStatus::kRemoteOperationalError;
}

NetAddr Addr(uint32_t ip, uint16_t port) {
  NetAddr a;
  a.ip = ip;
  a.port = port;
  return a;
}

class RoceBackend final : public RcBackend {
 public:
  RoceBackend(const RcDeviceConfig& config, MemoryRegistry& registry, Sink& sink)
      : cfg_(config), registry_(registry), sink_(sink) {}

  Status Open() {
    roce::RoceUdpShell::Options so;
    so.local_ip = cfg_.local.ip;
    so.port = cfg_.local.port == 0 ? 4791 : cfg_.local.port;
    so.raw_receive = cfg_.raw_receive;
    so.reorder = cfg_.reorder;
    if (cfg_.reorder_seed == 0) cfg_.reorder_seed = (uint64_t{Random32()} << 32 | Random32()) | 1;
    so.reorder_seed = cfg_.reorder_seed;
    Result<std::unique_ptr<roce::RoceUdpShell>> s = roce::RoceUdpShell::Open(so);
    if (!s.ok()) return s.status();
    shell_ = std::move(s.value());
    port_ = so.port;
    if (!cfg_.pcap.empty()) {
      Result<std::unique_ptr<PcapWriter>> w = PcapWriter::Open({.path = cfg_.pcap});
      if (!w.ok()) return Status(Code::kInvalidArgument, "pcap: " + w.status().message());
      capture_ = std::move(w.value());
      shell_->set_capture(capture_->NewSource());
    }
    cm::CmAgent::Config cc;
    cc.local_ip = cfg_.local.ip;
    cc.ca_guid = 0x02000000'00000000ull | (uint64_t{Random32()} << 16) | (Random32() & 0xFFFF);
    cc.resend_us = uint64_t{cfg_.cm_resend_ms} * 1000;
    cc.max_resends = 15;
    cc.seed = Random32();
    agent_ = std::make_unique<cm::CmAgent>(cc);
    gsi_psn_ = Random32() & roce::kPsnMask;
    shell_->set_gsi_handler([this](uint32_t src, std::span<const uint8_t> bytes) {
      Result<cm::Message> m = cm::DecodeGsiPacket(bytes);
      if (!m.ok()) {
        ++cm_malformed_;
        return;
      }
      agent_->OnMessage(src, *m, roce::RoceUdpShell::NowMicros());
    });
    return Status::Ok();
  }

  ~RoceBackend() override {
    for (auto& [n, q] : qps_) {
      if (q.rc) shell_->Detach(q.rc.get());
    }
    if (capture_) capture_->Close();
  }

  Status Listen() override {
    agent_->Listen(cm::ServiceIdForTcpPort(cfg_.cm_port));
    listening_ = true;
    return Status::Ok();
  }

  uint16_t local_port() const override { return port_; }

  Result<QpNum> CreateQp(PdHandle pd) override {
    QpNum n = 0;
    do {
      n = 0x100 + Random32() % 0xFFFE00;  // 24 bits, above the special QPs
    } while (qps_.contains(n));
    Qp& q = qps_[n];
    q.num = n;
    q.pd = pd;
    q.expected_psn = Random32() & roce::kPsnMask;
    q.target = std::make_unique<ExecutorTarget>(registry_, pd);
    return n;
  }

  void DestroyQp(QpNum n) override {
    auto it = qps_.find(n);
    if (it == qps_.end()) return;
    Qp& q = it->second;
    if (q.cm_id != 0 && q.state != State::kClosed) {
      (void)agent_->Disconnect(q.cm_id, Now());
      // The DREQ goes out now: a device destroyed right after (a process exiting) must still
      // tell the peer, whose QP would otherwise wait for traffic that never comes.
      (void)SendCm();
    }
    FlushQp(q);
    Collect(q);
    if (q.rc) {
      Retire(q);
      shell_->Detach(q.rc.get());
    }
    if (q.cm_id != 0) by_cm_.erase(q.cm_id);
    qps_.erase(it);
  }

  Status Connect(QpNum n, const NetAddr& peer, std::span<const uint8_t> pdata) override {
    Qp& q = qps_.at(n);
    if (q.state != State::kIdle) {
      return Status(Code::kInvalidArgument, "rdma: the QP is already connecting or connected");
    }
    if (pdata.size() > kMaxReqPrivateData) {
      return Status(Code::kInvalidArgument,
                    "rdma: RoCEv2 connect private data is at most 56 bytes");
    }
    if (peer.port != 0 && peer.port != port_) {
      return Status(
          Code::kInvalidArgument,
          "rdma: a RoCEv2 peer must use this device's UDP port (" + std::to_string(port_) + ")");
    }
    cm::QpOffer offer = Offer(q, pdata);
    cm::CmaHeader cma;
    cma.src_port = static_cast<uint16_t>(32768 + Random32() % 28000);
    cma.src_ip = cfg_.local.ip;
    cma.dst_ip = peer.ip;
    q.cm_id = agent_->Connect(peer.ip, cm::ServiceIdForTcpPort(cfg_.cm_port), offer, &cma, Now());
    q.peer_ip = peer.ip;
    q.state = State::kConnecting;
    by_cm_[q.cm_id] = n;
    return Status::Ok();
  }

  Status Accept(uint32_t request, QpNum n, std::span<const uint8_t> pdata) override {
    auto p = pending_.find(request);
    if (p == pending_.end()) return Status(Code::kNotFound, "rdma: no such connection request");
    Qp& q = qps_.at(n);
    if (q.state != State::kIdle) {
      return Status(Code::kInvalidArgument, "rdma: the QP is already connecting or connected");
    }
    if (pdata.size() > kMaxRepPrivateData) {
      return Status(Code::kInvalidArgument,
                    "rdma: RoCEv2 accept private data is at most 196 bytes");
    }
    const cm::Event e = std::move(p->second.event);
    pending_.erase(p);
    // The REQ's path MTU, whatever this side would offer: the REP has no MTU field, so the
    // active side runs at the one it asked for (as Linux's rdma_cm passive side does).
    const uint8_t mtu_code = e.path_mtu;
    Status st = StartQp(q, e.peer_ip, e.remote_qpn, e.send_psn, mtu_code);
    if (!st.ok()) {
      (void)agent_->Reject(request, cm::kRejConsumer, Now());
      return st;
    }
    cm::QpOffer offer = Offer(q, pdata);
    offer.path_mtu = mtu_code;
    // A REP may not promise more than the REQ asked for (rping asks for 1 and 1).
    offer.responder_resources = std::min(offer.responder_resources, e.initiator_depth);
    offer.initiator_depth = std::min(offer.initiator_depth, e.responder_resources);
    st = agent_->Accept(request, offer, Now());
    if (!st.ok()) return st;
    q.cm_id = request;
    q.state = State::kAccepting;
    by_cm_[request] = n;
    ++accepted_;
    return Status::Ok();
  }

  Status Reject(uint32_t request) override {
    auto p = pending_.find(request);
    if (p == pending_.end()) return Status(Code::kNotFound, "rdma: no such connection request");
    pending_.erase(p);
    return agent_->Reject(request, cm::kRejConsumer, Now());
  }

  Status Disconnect(QpNum n) override {
    Qp& q = qps_.at(n);
    if (q.state != State::kConnected && q.state != State::kAccepting &&
        q.state != State::kConnecting) {
      return Status(Code::kInvalidArgument, "rdma: the QP is not connected");
    }
    Status st = agent_->Disconnect(q.cm_id, Now());
    // As rdma_disconnect moves the QP to the error state: everything outstanding is flushed
    // now; kDisconnected follows the peer's DREP (or the DREQ's last resend).
    FlushQp(q);
    Collect(q);
    q.state = State::kDisconnecting;
    if (!st.ok()) Closed(q, "disconnect: " + st.message());
    return Status::Ok();
  }

  Status PostSend(QpNum n, const SendWr& wr) override {
    Qp& q = qps_.at(n);
    const bool atomic =
        wr.opcode == WrOpcode::kAtomicFetchAdd || wr.opcode == WrOpcode::kAtomicCmpSwap;
    if (atomic && wr.sge.length != 8) {
      return Status(Code::kInvalidArgument, "rdma: an atomic's local buffer is 8 bytes");
    }
    if (wr.opcode == WrOpcode::kRdmaRead && wr.sge.length > cfg_.max_read_bytes) {
      return Status(Code::kInvalidArgument, "rdma: READ longer than max_read_bytes");
    }
    const bool lands = wr.opcode == WrOpcode::kRdmaRead || atomic;
    uint8_t* local = nullptr;
    if (registry_.CheckLocal(wr.sge, q.pd, lands ? uint32_t{kAccessLocalWrite} : 0u, &local) !=
        AccessViolation::kNone) {
      Done(q, wr.wr_id, wr.opcode, WcStatus::kLocalProtectionError, 0);
      return Status::Ok();
    }
    if (q.state == State::kClosed || q.state == State::kDisconnecting ||
        (q.rc && q.rc->in_error())) {
      Done(q, wr.wr_id, wr.opcode, WcStatus::kFlushed, 0);
      return Status::Ok();
    }
    roce::WorkRequest w;
    w.wr_id = next_wr_++;
    w.rkey = wr.rkey;
    w.remote_va = wr.remote_addr;
    w.imm = wr.imm;
    switch (wr.opcode) {
      case WrOpcode::kSend:
      case WrOpcode::kSendWithImm:
      case WrOpcode::kRdmaWrite:
      case WrOpcode::kRdmaWriteWithImm:
        w.opcode = wr.opcode == WrOpcode::kSend          ? roce::WrOpcode::kSend
                   : wr.opcode == WrOpcode::kSendWithImm ? roce::WrOpcode::kSendImm
                   : wr.opcode == WrOpcode::kRdmaWrite   ? roce::WrOpcode::kWrite
                                                         : roce::WrOpcode::kWriteImm;
        w.data.assign(local, local + wr.sge.length);
        break;
      case WrOpcode::kRdmaRead:
        w.opcode = roce::WrOpcode::kRead;
        w.read_length = wr.sge.length;
        break;
      case WrOpcode::kAtomicFetchAdd:
        w.opcode = roce::WrOpcode::kFetchAdd;
        w.swap_add = wr.compare_add;
        break;
      case WrOpcode::kAtomicCmpSwap:
        w.opcode = roce::WrOpcode::kCmpSwap;
        w.compare = wr.compare_add;
        w.swap_add = wr.swap;
        break;
    }
    q.outstanding[w.wr_id] = Outstanding{wr.wr_id, wr.opcode, local, wr.sge.length};
    if (q.rc) {
      q.rc->PostSend(std::move(w), Now());
      Collect(q);
    } else {
      q.queued.push_back(std::move(w));
    }
    return Status::Ok();
  }

  Status PostRecv(QpNum n, const RecvWr& wr) override {
    Qp& q = qps_.at(n);
    uint8_t* local = nullptr;
    if (registry_.CheckLocal(wr.sge, q.pd, kAccessLocalWrite, &local) != AccessViolation::kNone) {
      // As hardware reports a bad receive SGE: a completion, not a refused call.
      RecvDone(q, wr.wr_id, WcStatus::kLocalProtectionError);
      return Status::Ok();
    }
    if (q.state == State::kClosed || q.state == State::kDisconnecting ||
        (q.rc && q.rc->in_error())) {
      RecvDone(q, wr.wr_id, WcStatus::kFlushed);
      return Status::Ok();
    }
    q.target->PostReceive(wr);
    return Status::Ok();
  }

  uint64_t AnswerLimitUs() const { return uint64_t{cfg_.answer_timeout_ms} * 1000; }

  Status Poll(int timeout_ms) override {
    uint64_t now = Now();
    auto wake_by = [&](uint64_t deadline_us) {
      const uint64_t wait_ms = deadline_us > now ? (deadline_us - now + 999) / 1000 : 0;
      if (timeout_ms < 0 || wait_ms < static_cast<uint64_t>(timeout_ms)) {
        timeout_ms = static_cast<int>(wait_ms);
      }
    };
    if (std::optional<uint64_t> d = agent_->NextDeadline()) wake_by(*d);
    for (const auto& [id, p] : pending_) wake_by(p.since_us + AnswerLimitUs() + 1);
    Status st = shell_->Poll(timeout_ms);
    if (!st.ok()) return st;
    now = Now();
    agent_->OnTimer(now);
    for (cm::Event& e : agent_->TakeEvents()) OnEvent(std::move(e));
    // A request the application sat on too long is refused (RcDeviceConfig::answer_timeout_ms),
    // so an unanswered peer cannot hold a max_connections slot.
    for (auto it = pending_.begin(); it != pending_.end();) {
      if (now > it->second.since_us + AnswerLimitUs()) {
        (void)agent_->Reject(it->first, cm::kRejTimeout, now);
        ++refused_;
        it = pending_.erase(it);
      } else {
        ++it;
      }
    }
    for (auto& [n, q] : qps_) {
      // The RTU may be lost; the first request served proves the peer has the REP.
      if (q.state == State::kAccepting && q.rc && q.rc->stats().messages_executed > 0) {
        agent_->CommunicationEstablished(q.cm_id);
      }
      Collect(q);
    }
    return SendCm();
  }

  // Sends the CM's queued messages on QP1.
  Status SendCm() {
    for (cm::Outgoing& o : agent_->TakeOutgoing()) {
      Status st = shell_->SendGsi(o.peer_ip, cm::EncodeGsiPacket(o.message, gsi_psn_), port_);
      gsi_psn_ = (gsi_psn_ + 1) & roce::kPsnMask;
      if (!st.ok()) return st;
    }
    return Status::Ok();
  }

  RcDeviceStats stats() const override {
    RcDeviceStats s = retired_;
    for (const auto& [n, q] : qps_) {
      if (q.rc) Add(q.rc->stats(), &s);
    }
    const roce::RoceUdpShell::Stats& sh = shell_->stats();
    s.connections_requested = requested_;
    s.connections_accepted = accepted_;
    s.connections_refused = refused_;
    s.packets_sent = sh.tx_packets;  // every RoCEv2 packet, the CM's on QP1 too
    s.packets_received = sh.rx_packets;
    s.icrc_checked = sh.icrc_checked;
    s.icrc_bad = sh.icrc_bad;
    s.icrc_unchecked = sh.icrc_unchecked;
    s.malformed_dropped = sh.malformed + cm_malformed_;
    return s;
  }

  std::string CountersJson() const override {
    const roce::RoceUdpShell::Stats& s = shell_->stats();
    nlohmann::json j = {{"rx_packets", s.rx_packets},
                        {"tx_packets", s.tx_packets},
                        {"icrc_checked", s.icrc_checked},
                        {"icrc_bad", s.icrc_bad},
                        {"icrc_unchecked", s.icrc_unchecked},
                        {"malformed", s.malformed},
                        {"unknown_qp", s.unknown_qp},
                        {"cm_mads_received", s.gsi_rx},
                        {"cm_mads_sent", s.gsi_tx},
                        {"cm_malformed", cm_malformed_},
                        {"connections_requested", requested_},
                        {"connections_accepted", accepted_},
                        {"connections_refused", refused_},
                        {"raw_receive", shell_->raw_receive()},
                        {"reordered", s.reordered},
                        {"reorder_expired", s.reorder_expired}};
    if (cfg_.reorder > 0) j["reorder_seed"] = cfg_.reorder_seed;
    return j.dump();
  }

  std::string CloseCapture() override {
    if (!capture_) return "null";
    capture_->Close();
    const PcapStats s = capture_->stats();
    return nlohmann::json{{"file", capture_->path()},
                          {"captured", s.captured},
                          {"written", s.written},
                          {"dropped", s.dropped},
                          {"write_errors", s.write_errors}}
        .dump();
  }

 private:
  enum class State : uint8_t {
    kIdle,           // created, never connected
    kConnecting,     // active: REQ sent
    kAccepting,      // passive: REP sent, waiting for the RTU
    kConnected,      // established
    kDisconnecting,  // DREQ sent
    kClosed,         // disconnected, rejected, unreachable: flushed
  };
  struct Outstanding {
    uint64_t wr_id;
    WrOpcode opcode;
    uint8_t* local;  // the checked local buffer
    uint32_t length;
  };
  struct Qp {
    QpNum num = 0;
    PdHandle pd = 0;
    State state = State::kIdle;
    uint32_t cm_id = 0;
    uint32_t peer_ip = 0;
    uint32_t expected_psn = 0;  // the first PSN the peer sends (offered in the REQ/REP)
    std::unique_ptr<ExecutorTarget> target;
    std::unique_ptr<roce::RcQueuePair> rc;  // once the peer's QPN and PSN are known
    std::deque<roce::WorkRequest> queued;   // posted before `rc` existed
    std::map<uint64_t, Outstanding> outstanding;
  };
  struct Pending {
    cm::Event event;
    uint64_t since_us = 0;
  };

  static uint64_t Now() { return roce::RoceUdpShell::NowMicros(); }

  cm::QpOffer Offer(const Qp& q, std::span<const uint8_t> pdata) const {
    cm::QpOffer offer;
    offer.qpn = q.num;
    offer.recv_psn = q.expected_psn;
    offer.path_mtu = MtuCode(cfg_.mtu);
    offer.retry_count = cfg_.retry_cnt;
    offer.responder_resources = static_cast<uint8_t>(std::min<uint16_t>(cfg_.ird, 255));
    offer.initiator_depth = static_cast<uint8_t>(std::min<uint16_t>(cfg_.ord, 255));
    offer.rnr_retry_count = cfg_.rnr_retry;
    offer.private_data.assign(pdata.begin(), pdata.end());
    return offer;
  }

  Status StartQp(Qp& q, uint32_t peer_ip, uint32_t remote_qpn, uint32_t send_psn,
                 uint8_t mtu_code) {
    roce::RcConfig c;
    c.local_qpn = q.num;
    c.remote_qpn = remote_qpn;
    c.send_psn = send_psn;
    c.expected_psn = q.expected_psn;
    c.mtu = MtuBytes(mtu_code);
    c.retry_cnt = cfg_.retry_cnt;
    c.rnr_retry = cfg_.rnr_retry;
    c.ack_timeout_us = cfg_.ack_timeout_us;
    c.max_read_bytes = cfg_.max_read_bytes;
    q.rc = std::make_unique<roce::RcQueuePair>(c, q.target.get());
    Result<uint16_t> sport = shell_->Attach(q.rc.get(), q.num, peer_ip, port_);
    if (!sport.ok()) {
      q.rc.reset();
      return sport.status();
    }
    q.peer_ip = peer_ip;
    const uint64_t now = Now();
    while (!q.queued.empty()) {
      q.rc->PostSend(std::move(q.queued.front()), now);
      q.queued.pop_front();
    }
    return Status::Ok();
  }

  size_t OpenConnections() const {
    size_t n = pending_.size();
    for (const auto& [num, q] : qps_) {
      if (q.state == State::kConnecting || q.state == State::kAccepting ||
          q.state == State::kConnected || q.state == State::kDisconnecting) {
        ++n;
      }
    }
    return n;
  }

  void OnEvent(cm::Event e) {
    if (e.kind == cm::EventKind::kConnectRequest) {
      ++requested_;
      if (!listening_ || OpenConnections() >= cfg_.max_connections) {
        (void)agent_->Reject(e.id, cm::kRejConsumer, Now());
        ++refused_;
        return;
      }
      CmEvent out;
      out.kind = CmEventKind::kConnectRequest;
      out.request = e.id;
      out.peer = Addr(e.peer_ip, e.cma ? e.cma->src_port : 0);
      out.private_data = e.private_data;
      sink_.events.push_back(std::move(out));
      pending_[e.id] = Pending{std::move(e), Now()};
      return;
    }
    auto b = by_cm_.find(e.id);
    if (b == by_cm_.end()) {
      // A request that went away before the application answered it.
      pending_.erase(e.id);
      return;
    }
    Qp& q = qps_.at(b->second);
    switch (e.kind) {
      case cm::EventKind::kEstablished: {
        if (q.state == State::kConnecting) {
          Status st = StartQp(q, e.peer_ip, e.remote_qpn, e.send_psn, e.path_mtu);
          if (!st.ok()) {
            (void)agent_->Disconnect(q.cm_id, Now());
            Closed(q, st.message(), CmEventKind::kUnreachable);
            return;
          }
        } else if (q.state != State::kAccepting) {
          return;
        }
        q.state = State::kConnected;
        CmEvent out;
        out.kind = CmEventKind::kEstablished;
        out.qp = q.num;
        out.peer = Addr(q.peer_ip, port_);
        out.private_data = std::move(e.private_data);
        sink_.events.push_back(std::move(out));
        return;
      }
      case cm::EventKind::kRejected:
        Closed(q, "reason " + std::to_string(e.reason), CmEventKind::kRejected);
        return;
      case cm::EventKind::kTimedOut:
        Closed(q, "no answer from the peer's connection manager", CmEventKind::kUnreachable);
        return;
      case cm::EventKind::kDisconnected:
        Closed(q, "disconnected");
        return;
      case cm::EventKind::kConnectRequest:
        return;
    }
  }

  // The connection is over: flush, forget the CM id, report `kind`.
  void Closed(Qp& q, const std::string& why, CmEventKind kind = CmEventKind::kDisconnected) {
    FlushQp(q);
    Collect(q);
    q.state = State::kClosed;
    by_cm_.erase(q.cm_id);
    CmEvent out;
    out.kind = kind;
    out.qp = q.num;
    out.peer = Addr(q.peer_ip, port_);
    out.reason = why;
    sink_.events.push_back(std::move(out));
  }

  // Every outstanding work request and posted receive completes as kFlushed.
  void FlushQp(Qp& q) {
    if (q.rc) q.rc->Flush();
    for (roce::WorkRequest& w : q.queued) {
      roce::Completion c;
      c.wr_id = w.wr_id;
      c.opcode = w.opcode;
      c.status = roce::WcStatus::kFlushed;
      Complete(q, c);
    }
    q.queued.clear();
    FlushReceives(q);
  }

  void FlushReceives(Qp& q) {
    for (const RecvWr& r : q.target->TakePostedReceives()) RecvDone(q, r.wr_id, WcStatus::kFlushed);
  }

  void RecvDone(const Qp& q, uint64_t wr_id, WcStatus status) {
    WorkCompletion wc;
    wc.wr_id = wr_id;
    wc.status = status;
    wc.opcode = WcOpcode::kRecv;
    wc.qp = q.num;
    sink_.completions.push_back(wc);
  }

  // Moves the queue pair's and the target's completions to the sink, in order; a queue pair
  // that went to the error state also flushes its posted receives.
  void Collect(Qp& q) {
    if (q.rc) {
      for (roce::Completion& c : q.rc->TakeCompletions()) Complete(q, c);
    }
    auto& recv = q.target->receive_completions();
    while (!recv.empty()) {
      WorkCompletion wc = recv.front();
      recv.pop_front();
      wc.qp = q.num;
      sink_.completions.push_back(wc);
    }
    if (q.rc && q.rc->in_error()) FlushReceives(q);
  }

  void Complete(Qp& q, roce::Completion& c) {
    auto it = q.outstanding.find(c.wr_id);
    if (it == q.outstanding.end()) return;
    const Outstanding o = it->second;
    q.outstanding.erase(it);
    const WcStatus status = StatusOf(c.status);
    uint32_t len = 0;
    if (status == WcStatus::kSuccess) {
      if (o.opcode == WrOpcode::kRdmaRead) {
        len = static_cast<uint32_t>(std::min<size_t>(c.read_data.size(), o.length));
        std::memcpy(o.local, c.read_data.data(), len);
      } else if (o.opcode == WrOpcode::kAtomicFetchAdd || o.opcode == WrOpcode::kAtomicCmpSwap) {
        std::memcpy(o.local, &c.atomic_original, 8);
        len = 8;
      } else {
        len = o.length;
      }
    }
    Done(q, o.wr_id, o.opcode, status, len);
  }

  void Done(Qp& q, uint64_t wr_id, WrOpcode op, WcStatus status, uint32_t len) {
    WorkCompletion wc;
    wc.wr_id = wr_id;
    wc.status = status;
    wc.opcode = WcOpcodeFor(op);
    wc.byte_len = len;
    wc.qp = q.num;
    sink_.completions.push_back(wc);
  }

  static void Add(const roce::RcStats& r, RcDeviceStats* s) {
    s->retransmitted_packets += r.retransmitted_packets;
    s->timeouts += r.timeouts;
    s->duplicates += r.duplicates;
    s->naks_sent += r.naks_sent;
    s->naks_received += r.naks_received;
    s->rnr_naks_sent += r.rnr_naks_sent;
    s->requests_executed += r.messages_executed;
  }
  void Retire(const Qp& q) { Add(q.rc->stats(), &retired_); }

  RcDeviceConfig cfg_;
  MemoryRegistry& registry_;
  Sink& sink_;
  std::unique_ptr<roce::RoceUdpShell> shell_;
  std::unique_ptr<cm::CmAgent> agent_;
  std::unique_ptr<PcapWriter> capture_;
  uint16_t port_ = 4791;
  uint32_t gsi_psn_ = 0;
  bool listening_ = false;
  std::map<QpNum, Qp> qps_;
  std::map<uint32_t, QpNum> by_cm_;      // CM connection id -> QP
  std::map<uint32_t, Pending> pending_;  // connection requests not yet answered
  uint64_t next_wr_ = 1;                 // the queue pairs' own work request ids
  uint64_t requested_ = 0, accepted_ = 0, refused_ = 0, cm_malformed_ = 0;
  RcDeviceStats retired_;  // counters of queue pairs already destroyed
};

}  // namespace

Result<std::unique_ptr<RcBackend>> OpenRoceBackend(const RcDeviceConfig& config,
                                                   MemoryRegistry& registry,
                                                   RcBackend::Sink& sink) {
  auto b = std::make_unique<RoceBackend>(config, registry, sink);
  Status st = b->Open();
  if (!st.ok()) return st;
  return std::unique_ptr<RcBackend>(std::move(b));
}

}  // namespace opensrd::rdma
