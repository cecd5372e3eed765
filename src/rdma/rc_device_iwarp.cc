// The iWARP RcBackend: one IwarpQp per connection, each on its own kernel TCP socket
// (IwarpTcpConnection), all driven by one epoll set with the listening socket.
//
// Passive side: an accepted socket is held as a pending request (no queue pair, no receive
// memory) until its MPA request frame is complete; only then does the application see a
// kConnectRequest. The request must arrive within connect_request_timeout_ms and carry at most
// 512 bytes of private data (RFC 5044), and a connection beyond max_connections (pending plus
// accepted and still open) is closed before anything is read from it, so a peer cannot make
// the device hold unbounded state. Accept makes the queue pair the MPA responder and feeds it
// the held bytes; Reject answers with a reply frame carrying the R flag and closes.
//
// Active side: Connect starts a non-blocking TCP connect (the device thread never blocks);
// once the socket is writable the queue pair sends its MPA request. The TCP connect and the MPA
// reply together must finish within connect_timeout_ms, or the QP gets kUnreachable: a server
// that accepts TCP and never answers (hung, or hostile) cannot hold a connecting QP forever,
// and a blackholed address does not wait out the kernel's two minutes of SYN retries.
//
// Work requests posted before a queue pair has its connection are kept here and handed to it
// when it is created (receives first, so a SEND arriving at once finds them).
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <map>
#include <optional>
#include <string>

#include <nlohmann/json.hpp>

#include "common/pcap_writer.h"
#include "rdma/iwarp_tcp.h"
#include "rdma/mpa.h"
#include "rdma/rc_backend.h"
#include "rdma/wc_opcode.h"

namespace opensrd::rdma {
namespace {

using iwarp::IwarpQp;
using iwarp::IwarpTcpConnection;

// epoll_event.data.u64: what the descriptor is (high 32 bits) and its id (low 32 bits).
enum class FdKind : uint32_t { kListener, kPending, kConnecting, kConnection };

uint64_t Tag(FdKind k, uint32_t id) {
  return uint64_t{static_cast<uint32_t>(k)} << 32 | id;
}

uint64_t NowMs() {
  return static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::milliseconds>(
                                   std::chrono::steady_clock::now().time_since_epoch())
                                   .count());
}

sockaddr_in ToSockaddr(const NetAddr& a) {
  sockaddr_in sa{};
  sa.sin_family = AF_INET;
  sa.sin_port = htons(a.port);
  sa.sin_addr.s_addr = htonl(a.ip);
  return sa;
}

NetAddr FromSockaddr(const sockaddr_in& sa) {
  NetAddr a;
  a.ip = ntohl(sa.sin_addr.s_addr);
  a.port = ntohs(sa.sin_port);
  return a;
}

Status Errno(const std::string& what) {
  return Status(Code::kIoError, what + ": " + std::strerror(errno));
}

// The enhanced IRD/ORD word takes 4 of MPA's 512 bytes of private data.
constexpr size_t kMaxUserPrivateData = mpa::kMaxPrivateData - mpa::kEnhancedLen;

class IwarpBackend final : public RcBackend {
 public:
  IwarpBackend(const RcDeviceConfig& config, MemoryRegistry& registry, Sink& sink, int epfd,
               std::unique_ptr<PcapWriter> pcap)
      : cfg_(config),
        registry_(registry),
        sink_(sink),
        ep_(epfd),
        pcap_(std::move(pcap)),
        capture_(pcap_ ? pcap_->NewSource() : nullptr) {}

  ~IwarpBackend() override {
    for (auto& [id, p] : pending_) close(p.fd);
    for (auto& [n, q] : qps_) {
      if (q.connect_fd >= 0) close(q.connect_fd);
    }
    qps_.clear();  // closes the connections' sockets
    if (listen_fd_ >= 0) close(listen_fd_);
    close(ep_);
    if (pcap_) pcap_->Close();
  }

  Status Listen() override {
    if (listen_fd_ >= 0) return Status(Code::kInvalidArgument, "iwarp: already listening");
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd < 0) return Errno("iwarp: socket");
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    sockaddr_in sa = ToSockaddr(cfg_.local);
    if (bind(fd, reinterpret_cast<sockaddr*>(&sa), sizeof sa) != 0) {
      Status s = Errno("iwarp: bind " + ToString(cfg_.local));
      close(fd);
      return s;
    }
    if (listen(fd, 128) != 0) {
      Status s = Errno("iwarp: listen");
      close(fd);
      return s;
    }
    socklen_t len = sizeof sa;
    getsockname(fd, reinterpret_cast<sockaddr*>(&sa), &len);
    port_ = ntohs(sa.sin_port);
    listen_fd_ = fd;
    Watch(fd, Tag(FdKind::kListener, 0), EPOLLIN, true);
    return Status::Ok();
  }

  uint16_t local_port() const override { return listen_fd_ >= 0 ? port_ : cfg_.local.port; }

  Result<QpNum> CreateQp(PdHandle pd) override {
    const QpNum n = next_qp_++;
    qps_[n].pd = pd;
    return n;
  }

  void DestroyQp(QpNum n) override {
    auto it = qps_.find(n);
    if (it == qps_.end()) return;
    Qp& q = it->second;
    if (q.conn) {
      (void)q.conn->Flush();  // a TERMINATE may still be queued
      q.conn->qp().OnStreamClosed();
    }
    FlushQp(n, q);
    Release(q);
    qps_.erase(it);
  }

  Status Connect(QpNum n, const NetAddr& peer, std::span<const uint8_t> pdata) override {
    Qp& q = qps_.at(n);
    if (q.phase != Phase::kIdle) {
      return Status(Code::kInvalidArgument, "iwarp: the QP is already connecting or connected");
    }
    if (pdata.size() > kMaxUserPrivateData) {
      return Status(Code::kInvalidArgument,
                    "iwarp: private data over 508 bytes (MPA: 512 "
                    "including the enhanced IRD/ORD word)");
    }
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd < 0) return Errno("iwarp: socket");
    if (cfg_.local.ip != 0) {  // leave from the configured address (tests give each its own)
      sockaddr_in la = ToSockaddr({.ip = cfg_.local.ip, .port = 0});
      if (bind(fd, reinterpret_cast<sockaddr*>(&la), sizeof la) != 0) {
        Status s = Errno("iwarp: bind " + ToString(cfg_.local));
        close(fd);
        return s;
      }
    }
    q.phase = Phase::kConnecting;
    q.active = true;
    q.peer = peer;
    q.pdata.assign(pdata.begin(), pdata.end());
    q.connect_deadline_ms = NowMs() + cfg_.connect_timeout_ms;
    sockaddr_in sa = ToSockaddr(peer);
    if (connect(fd, reinterpret_cast<sockaddr*>(&sa), sizeof sa) != 0 && errno != EINPROGRESS) {
      const std::string why = std::string("tcp connect: ") + std::strerror(errno);
      close(fd);
      ++connect_failures_;
      Finish(n, q, CmEventKind::kUnreachable, why);
      return Status::Ok();  // the outcome is the event, as for a connect that fails later
    }
    q.connect_fd = fd;
    Watch(fd, Tag(FdKind::kConnecting, n), EPOLLOUT, true);
    return Status::Ok();
  }

  Status Accept(uint32_t request, QpNum n, std::span<const uint8_t> pdata) override {
    auto pit = pending_.find(request);
    if (pit == pending_.end() || !pit->second.announced) {
      return Status(Code::kNotFound, "iwarp: no such connection request");
    }
    Qp& q = qps_.at(n);
    if (q.phase != Phase::kIdle) {
      return Status(Code::kInvalidArgument, "iwarp: the QP is already connecting or connected");
    }
    if (pdata.size() > kMaxUserPrivateData) {
      return Status(Code::kInvalidArgument, "iwarp: private data over 508 bytes");
    }
    Pending p = std::move(pit->second);
    pending_.erase(pit);
    q.active = false;
    q.passive_slot = true;
    q.peer = p.peer;
    q.pdata.assign(pdata.begin(), pdata.end());
    ++accepted_;
    ++open_passive_;
    StartQp(n, q, p.fd);
    q.conn->Inject(p.buf);
    Settle(n, q);
    return Status::Ok();
  }

  Status Reject(uint32_t request) override {
    auto pit = pending_.find(request);
    if (pit == pending_.end() || !pit->second.announced) {
      return Status(Code::kNotFound, "iwarp: no such connection request");
    }
    Refuse(request);
    ++rejected_;
    return Status::Ok();
  }

  // Answers an announced request with an MPA reply carrying the reject flag and closes it.
  void Refuse(uint32_t request) {
    auto pit = pending_.find(request);
    mpa::StartFrame r;
    r.reply = true;
    r.flags = mpa::kFlagReject;
    r.revision = pit->second.revision;
    Result<std::vector<uint8_t>> bytes = mpa::EncodeStartFrame(r);
    // 20 bytes on a fresh socket: the kernel takes them at once, or the peer is gone anyway.
    if (bytes.ok()) (void)send(pit->second.fd, bytes->data(), bytes->size(), MSG_NOSIGNAL);
    if (capture_ != nullptr && bytes.ok()) {
      capture_->AppendTcp(pit->second.local, pit->second.peer, 1,
                          static_cast<uint32_t>(1 + pit->second.buf.size()), *bytes);
    }
    close(pit->second.fd);
    pending_.erase(pit);
  }

  Status Disconnect(QpNum n) override {
    Qp& q = qps_.at(n);
    if (q.phase == Phase::kIdle || q.phase == Phase::kDone) {
      return Status(Code::kInvalidArgument, "iwarp: the QP is not connected");
    }
    if (q.conn) {
      (void)q.conn->Flush();
      q.conn->qp().OnStreamClosed();
    }
    Finish(n, q, CmEventKind::kDisconnected, "disconnected locally");
    return Status::Ok();
  }

  Status PostSend(QpNum n, const SendWr& wr) override {
    switch (wr.opcode) {
      case WrOpcode::kSend:
      case WrOpcode::kRdmaWrite:
      case WrOpcode::kRdmaRead:
        break;
      case WrOpcode::kSendWithImm:
      case WrOpcode::kRdmaWriteWithImm:
        return Status(Code::kInvalidArgument, "iwarp: RDMAP (RFC 5040) has no immediate data");
      case WrOpcode::kAtomicFetchAdd:
      case WrOpcode::kAtomicCmpSwap:
        return Status(Code::kInvalidArgument, "iwarp: RDMAP (RFC 5040) has no atomics");
    }
    Qp& q = qps_.at(n);
    // A QP whose connection ended is in the error state: what is posted completes as flushed
    // (as ibverbs does), on the CQ, not as a refused call.
    if (q.phase == Phase::kDone ||
        (q.conn && q.conn->qp().state() == IwarpQp::State::kTerminated)) {
      Flushed(n, wr.wr_id, WcOpcodeFor(wr.opcode));
      return Status::Ok();
    }
    if (!q.conn) {
      q.early_sends.push_back(wr);
      return Status::Ok();
    }
    Status st = q.conn->qp().PostSend(wr);
    Settle(n, q);
    return st;
  }

  Status PostRecv(QpNum n, const RecvWr& wr) override {
    Qp& q = qps_.at(n);
    if (q.phase == Phase::kDone ||
        (q.conn && q.conn->qp().state() == IwarpQp::State::kTerminated)) {
      Flushed(n, wr.wr_id, WcOpcode::kRecv);
      return Status::Ok();
    }
    if (!q.conn) {
      uint8_t* at = nullptr;
      if (wr.sge.length != 0 &&
          registry_.CheckLocal(wr.sge, q.pd, kAccessLocalWrite, &at) != AccessViolation::kNone) {
        return Status(Code::kInvalidArgument, "receive SGE fails its lkey, bounds or access check");
      }
      q.early_recvs.push_back(wr);
      return Status::Ok();
    }
    return q.conn->qp().PostRecv(wr);
  }

  Status Poll(int timeout_ms) override {
    FlushAll();
    const uint64_t now = NowMs();
    auto wake_by = [&](uint64_t deadline_ms) {
      const uint64_t left = deadline_ms > now ? deadline_ms - now : 0;
      if (timeout_ms < 0 || left < static_cast<uint64_t>(timeout_ms)) {
        timeout_ms = static_cast<int>(left);
      }
    };
    for (const auto& [id, p] : pending_) wake_by(p.deadline_ms);
    for (const auto& [n, q] : qps_) {
      if (AwaitsPeer(q)) wake_by(q.connect_deadline_ms);
    }
    epoll_event evs[64];
    int n = epoll_wait(ep_, evs, 64, timeout_ms);
    if (n < 0 && errno != EINTR) return Errno("iwarp: epoll_wait");
    for (int i = 0; i < n; ++i) {
      const FdKind kind = static_cast<FdKind>(evs[i].data.u64 >> 32);
      const uint32_t id = static_cast<uint32_t>(evs[i].data.u64);
      switch (kind) {
        case FdKind::kListener:
          AcceptAll();
          break;
        case FdKind::kPending:
          ReadRequest(id);
          break;
        case FdKind::kConnecting:
          ConnectDone(id);
          break;
        case FdKind::kConnection:
          OnConnection(id);
          break;
      }
    }
    ExpirePending();
    ExpireConnecting();
    FlushAll();
    return Status::Ok();
  }

  RcDeviceStats stats() const override {
    RcDeviceStats s;
    s.connections_requested = requested_;
    s.connections_accepted = accepted_;
    s.connections_refused = refused_;
    s.malformed_dropped = malformed_;
    const Totals t = CurrentTotals();
    s.packets_sent = t.qp.fpdus_sent;
    s.packets_received = t.qp.fpdus_received;
    s.terminates_sent = t.qp.terminates_sent;
    s.terminates_received = t.qp.terminates_received;
    s.requests_executed = t.qp.requests_executed;
    return s;
  }

  std::string CountersJson() const override {
    const Totals t = CurrentTotals();
    nlohmann::json j = {{"protocol", "iwarp"},
                        {"connections_requested", requested_},
                        {"connections_accepted", accepted_},
                        {"connections_refused", refused_},
                        {"refused_over_limit", refused_over_limit_},
                        {"requests_timed_out", timed_out_},
                        {"requests_unanswered", unanswered_},
                        {"requests_malformed", malformed_},
                        {"connections_rejected", rejected_},
                        {"connect_failures", connect_failures_},
                        {"connections_open", open_passive_},
                        {"requests_pending", pending_.size()},
                        {"fpdus_sent", t.qp.fpdus_sent},
                        {"fpdus_received", t.qp.fpdus_received},
                        {"bytes_placed", t.qp.bytes_placed},
                        {"requests_executed", t.qp.requests_executed},
                        {"terminates_sent", t.qp.terminates_sent},
                        {"terminates_received", t.qp.terminates_received},
                        {"tcp_bytes_in", t.bytes_in},
                        {"tcp_bytes_out", t.bytes_out}};
    // The most recent TERMINATE each way (RFC 5040 layer, error type and code), for reports.
    auto term = [](const iwarp::TermInfo& ti) {
      return nlohmann::json{{"layer", ti.layer}, {"etype", ti.etype}, {"code", ti.code}};
    };
    if (last_term_received_) j["last_terminate_received"] = term(*last_term_received_);
    if (last_term_sent_) j["last_terminate_sent"] = term(*last_term_sent_);
    // `written` counts records on disk so far; CloseCapture gives the final figures.
    if (pcap_) j["pcap"] = PcapJson();
    return j.dump();
  }

  std::string CloseCapture() override {
    if (!pcap_) return "null";
    pcap_->Close();
    return PcapJson().dump();
  }

 private:
  nlohmann::json PcapJson() const {
    const PcapStats ps = pcap_->stats();
    return {{"file", pcap_->path()},
            {"captured", ps.captured},
            {"written", ps.written},
            {"dropped", ps.dropped},
            {"write_errors", ps.write_errors}};
  }

  enum class Phase : uint8_t {
    kIdle,        // created, no connection yet
    kConnecting,  // active: TCP connect in progress
    kOpen,        // a connection (MPA start-up or RTS)
    kDone,        // the connection ended (event reported); only DestroyQp is left
  };
  struct Qp {
    PdHandle pd = 0;
    Phase phase = Phase::kIdle;
    bool active = false;
    bool passive_slot = false;  // counts against max_connections while open
    bool established = false;
    uint64_t connect_deadline_ms = 0;  // active, until established: when Connect gives up
    int connect_fd = -1;
    NetAddr peer;
    std::vector<uint8_t> pdata;
    std::vector<SendWr> early_sends;
    std::vector<RecvWr> early_recvs;
    std::unique_ptr<IwarpTcpConnection> conn;
    uint32_t armed = 0;  // epoll events currently armed for conn
  };
  // An accepted TCP connection whose MPA request is not complete yet, or not yet answered.
  struct Pending {
    int fd = -1;
    NetAddr peer, local;
    std::vector<uint8_t> buf;  // the request frame's bytes, read so far
    uint64_t deadline_ms = 0;
    bool announced = false;  // the frame is complete and kConnectRequest was reported
    uint8_t revision = 2;
  };
  struct Totals {
    iwarp::QpStats qp;
    uint64_t bytes_in = 0, bytes_out = 0;
  };

  void Watch(int fd, uint64_t tag, uint32_t events, bool add) {
    epoll_event ev{};
    ev.events = events;
    ev.data.u64 = tag;
    epoll_ctl(ep_, add ? EPOLL_CTL_ADD : EPOLL_CTL_MOD, fd, &ev);
  }

  static void Add(Totals& t, const IwarpTcpConnection& c) {
    IwarpTcpConnection& m = const_cast<IwarpTcpConnection&>(c);
    const iwarp::QpStats& s = m.qp().stats();
    t.qp.fpdus_sent += s.fpdus_sent;
    t.qp.fpdus_received += s.fpdus_received;
    t.qp.bytes_placed += s.bytes_placed;
    t.qp.terminates_sent += s.terminates_sent;
    t.qp.terminates_received += s.terminates_received;
    t.qp.requests_executed += s.requests_executed;
    t.bytes_in += c.bytes_in();
    t.bytes_out += c.bytes_out();
  }

  Totals CurrentTotals() const {
    Totals t = finished_;
    for (const auto& [n, q] : qps_) {
      if (q.conn) Add(t, *q.conn);
    }
    return t;
  }

  // Gives QP `n` its connection on the connected socket `fd` and hands it the early requests.
  void StartQp(QpNum n, Qp& q, int fd) {
    iwarp::QpConfig c;
    c.initiator = q.active;
    c.pd = q.pd;
    c.private_data = q.pdata;
    c.max_segment = cfg_.max_segment;
    c.max_read_bytes = cfg_.max_read_bytes;
    c.ird = cfg_.ird;
    c.ord = cfg_.ord;
    q.conn = IwarpTcpConnection::Adopt(fd, c, registry_);
    if (capture_ != nullptr) q.conn->set_capture(capture_);
    q.phase = Phase::kOpen;
    for (const RecvWr& r : q.early_recvs) (void)q.conn->qp().PostRecv(r);
    q.early_recvs.clear();
    if (q.active) q.conn->qp().Connect();
    for (const SendWr& w : q.early_sends) (void)q.conn->qp().PostSend(w);
    q.early_sends.clear();
    q.armed = EPOLLIN;
    Watch(fd, Tag(FdKind::kConnection, n), q.armed, true);
  }

  // Reports the queue pair's completions and state changes.
  void Settle(QpNum n, Qp& q) {
    if (!q.conn) return;
    IwarpQp& p = q.conn->qp();
    TakeCompletions(n, p);
    if (!q.established && p.state() == IwarpQp::State::kRts) {
      q.established = true;
      CmEvent e;
      e.kind = CmEventKind::kEstablished;
      e.qp = n;
      e.peer = q.peer;
      if (q.active) e.private_data = p.peer_private_data();
      sink_.events.push_back(std::move(e));
    }
    if (p.state() == IwarpQp::State::kTerminated || q.conn->closed()) {
      if (p.terminate_received()) last_term_received_ = p.received_terminate();
      if (p.terminate_sent()) last_term_sent_ = p.sent_terminate();
      const std::string why = p.error().empty() ? "the connection closed" : p.error();
      CmEventKind kind = CmEventKind::kDisconnected;
      if (!q.established && q.active) {
        kind = why.rfind("rejected", 0) == 0 ? CmEventKind::kRejected : CmEventKind::kUnreachable;
      }
      Finish(n, q, kind, why);
    }
  }

  void Flushed(QpNum n, uint64_t wr_id, WcOpcode op) {
    WorkCompletion wc;
    wc.wr_id = wr_id;
    wc.status = WcStatus::kFlushed;
    wc.opcode = op;
    wc.qp = n;
    sink_.completions.push_back(wc);
  }

  void TakeCompletions(QpNum n, IwarpQp& p) {
    for (WorkCompletion& wc : p.TakeCompletions()) {
      wc.qp = n;
      sink_.completions.push_back(wc);
    }
  }

  // Completes everything the QP still holds with kFlushed: the queue pair's own (it has been
  // stopped) and the requests kept while it had no connection.
  void FlushQp(QpNum n, Qp& q) {
    if (q.conn) TakeCompletions(n, q.conn->qp());
    for (const SendWr& w : q.early_sends) Flushed(n, w.wr_id, WcOpcodeFor(w.opcode));
    for (const RecvWr& r : q.early_recvs) Flushed(n, r.wr_id, WcOpcode::kRecv);
    q.early_sends.clear();
    q.early_recvs.clear();
  }

  // Closes the QP's sockets, keeping its counters.
  void Release(Qp& q) {
    if (q.connect_fd >= 0) {
      close(q.connect_fd);  // closing removes it from the epoll set
      q.connect_fd = -1;
    }
    if (q.conn) {
      Add(finished_, *q.conn);
      q.conn.reset();
    }
    if (q.passive_slot) {
      q.passive_slot = false;
      --open_passive_;
    }
  }

  // Ends the connection with an event: the queue pair (already stopped) and the early requests
  // flush, the sockets close.
  void Finish(QpNum n, Qp& q, CmEventKind kind, const std::string& why) {
    if (q.conn) {
      if (q.conn->wants_write()) (void)q.conn->Flush();  // a TERMINATE goes out first
      if (q.conn->qp().state() != IwarpQp::State::kTerminated) q.conn->qp().OnStreamClosed();
    }
    FlushQp(n, q);
    Release(q);
    q.phase = Phase::kDone;
    CmEvent e;
    e.kind = kind;
    e.qp = n;
    e.peer = q.peer;
    e.reason = why;
    sink_.events.push_back(std::move(e));
  }

  void AcceptAll() {
    for (;;) {
      sockaddr_in pa{};
      socklen_t pl = sizeof pa;
      int fd =
          accept4(listen_fd_, reinterpret_cast<sockaddr*>(&pa), &pl, SOCK_CLOEXEC | SOCK_NONBLOCK);
      if (fd < 0) return;  // EAGAIN, or a connection that died in the backlog
      if (pending_.size() + open_passive_ >= cfg_.max_connections) {
        close(fd);  // before reading anything: the peer costs no memory here
        ++refused_;
        ++refused_over_limit_;
        continue;
      }
      sockaddr_in la{};
      socklen_t ll = sizeof la;
      getsockname(fd, reinterpret_cast<sockaddr*>(&la), &ll);
      const uint32_t id = next_request_++;
      Pending& p = pending_[id];
      p.fd = fd;
      p.peer = FromSockaddr(pa);
      p.local = FromSockaddr(la);
      p.deadline_ms = NowMs() + cfg_.connect_request_timeout_ms;
      Watch(fd, Tag(FdKind::kPending, id), EPOLLIN, true);
    }
  }

  void DropPending(uint32_t id, bool malformed) {
    auto it = pending_.find(id);
    close(it->second.fd);
    pending_.erase(it);
    ++refused_;
    ++(malformed ? malformed_ : timed_out_);
  }

  // Reads no further than the request frame: its header first, then the private data it
  // announces (at most 512 bytes), so a pending request never holds more than 532 bytes.
  void ReadRequest(uint32_t id) {
    auto it = pending_.find(id);
    if (it == pending_.end() || it->second.announced) return;
    Pending& p = it->second;
    for (;;) {
      size_t want = mpa::kStartHeaderLen;
      if (p.buf.size() >= mpa::kStartHeaderLen) {
        const size_t total = mpa::StartFrameLength(p.buf);
        if (total - mpa::kStartHeaderLen > mpa::kMaxPrivateData) return DropPending(id, true);
        want = total;
      }
      if (p.buf.size() == want) break;
      const size_t have = p.buf.size();
      p.buf.resize(want);
      ssize_t r = recv(p.fd, p.buf.data() + have, want - have, 0);
      if (r <= 0) {
        p.buf.resize(have);
        if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)) return;
        return DropPending(id, true);  // closed or failed before its request was complete
      }
      p.buf.resize(have + static_cast<size_t>(r));
    }
    Result<mpa::StartFrame> f = mpa::DecodeStartFrame(p.buf, false);
    if (!f.ok()) return DropPending(id, true);
    p.announced = true;
    p.deadline_ms = NowMs() + cfg_.answer_timeout_ms;  // now the application's turn
    p.revision = f->revision;
    // Nothing more is read until Accept: the initiator sends nothing before the reply.
    epoll_ctl(ep_, EPOLL_CTL_DEL, p.fd, nullptr);
    ++requested_;
    CmEvent e;
    e.kind = CmEventKind::kConnectRequest;
    e.request = id;
    e.peer = p.peer;
    e.private_data = f->private_data;
    sink_.events.push_back(std::move(e));
  }

  // A peer too slow to send its request is dropped; a request the application did not answer
  // in time (RcDeviceConfig::answer_timeout_ms) is refused, so the peer learns it.
  void ExpirePending() {
    const uint64_t now = NowMs();
    std::vector<uint32_t> late;
    for (const auto& [id, p] : pending_) {
      if (now >= p.deadline_ms) late.push_back(id);
    }
    for (uint32_t id : late) {
      auto it = pending_.find(id);
      if (!it->second.announced) {
        DropPending(id, false);
        continue;
      }
      Refuse(id);
      ++refused_;
      ++unanswered_;
    }
  }

  // An active QP still waiting for the TCP connect or the MPA reply.
  static bool AwaitsPeer(const Qp& q) {
    return q.active && !q.established && (q.phase == Phase::kConnecting || q.phase == Phase::kOpen);
  }

  void ExpireConnecting() {
    const uint64_t now = NowMs();
    for (auto& [n, q] : qps_) {
      if (!AwaitsPeer(q) || now < q.connect_deadline_ms) continue;
      ++connect_failures_;
      const std::string waited = std::to_string(cfg_.connect_timeout_ms) + " ms";
      Finish(n, q, CmEventKind::kUnreachable,
             q.conn ? "no MPA reply within " + waited : "tcp connect: no answer within " + waited);
    }
  }

  void ConnectDone(QpNum n) {
    auto it = qps_.find(n);
    if (it == qps_.end() || it->second.phase != Phase::kConnecting) return;
    Qp& q = it->second;
    int err = 0;
    socklen_t len = sizeof err;
    if (getsockopt(q.connect_fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0) err = errno;
    if (err != 0) {
      ++connect_failures_;
      Finish(n, q, CmEventKind::kUnreachable, std::string("tcp connect: ") + std::strerror(err));
      return;
    }
    const int fd = q.connect_fd;
    q.connect_fd = -1;
    epoll_ctl(ep_, EPOLL_CTL_DEL, fd, nullptr);
    StartQp(n, q, fd);
    Settle(n, q);
  }

  void OnConnection(QpNum n) {
    auto it = qps_.find(n);
    if (it == qps_.end() || !it->second.conn) return;
    Qp& q = it->second;
    Status st = q.conn->OnReadable();
    if (st.ok()) st = q.conn->Flush();
    if (!st.ok() && q.conn->qp().state() != IwarpQp::State::kTerminated) {
      q.conn->qp().OnStreamClosed();
    }
    Settle(n, q);
  }

  // Writes what every queue pair has queued and arms EPOLLOUT where the socket is full.
  void FlushAll() {
    for (auto& [n, q] : qps_) {
      if (!q.conn) continue;
      if (q.conn->wants_write() && !q.conn->Flush().ok()) {
        q.conn->qp().OnStreamClosed();
        Settle(n, q);
        continue;
      }
      const uint32_t want = EPOLLIN | (q.conn->wants_write() ? uint32_t{EPOLLOUT} : 0u);
      if (want != q.armed) {
        q.armed = want;
        Watch(q.conn->fd(), Tag(FdKind::kConnection, n), want, false);
      }
    }
  }

  const RcDeviceConfig cfg_;
  MemoryRegistry& registry_;
  Sink& sink_;
  const int ep_;
  std::unique_ptr<PcapWriter> pcap_;
  PcapWriter::Source* capture_;
  int listen_fd_ = -1;
  uint16_t port_ = 0;
  std::map<QpNum, Qp> qps_;
  std::map<uint32_t, Pending> pending_;
  QpNum next_qp_ = 1;
  uint32_t next_request_ = 1;
  uint64_t open_passive_ = 0;
  uint64_t requested_ = 0, accepted_ = 0, refused_ = 0, refused_over_limit_ = 0, timed_out_ = 0,
           malformed_ = 0, rejected_ = 0, connect_failures_ = 0, unanswered_ = 0;
  Totals finished_;  // counters of connections already closed
  std::optional<iwarp::TermInfo> last_term_received_, last_term_sent_;
};

}  // namespace

Result<std::unique_ptr<RcBackend>> OpenIwarpBackend(const RcDeviceConfig& config,
                                                    MemoryRegistry& registry,
                                                    RcBackend::Sink& sink) {
  std::unique_ptr<PcapWriter> pcap;
  if (!config.pcap.empty()) {
    Result<std::unique_ptr<PcapWriter>> w = PcapWriter::Open({.path = config.pcap});
    if (!w.ok()) return Status(Code::kInvalidArgument, "pcap " + w.status().message());
    pcap = std::move(w.value());
  }
  int ep = epoll_create1(EPOLL_CLOEXEC);
  if (ep < 0) return Errno("iwarp: epoll_create1");
  return std::unique_ptr<RcBackend>(new IwarpBackend(config, registry, sink, ep, std::move(pcap)));
}

}  // namespace opensrd::rdma
