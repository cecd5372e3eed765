// `opensrd rdma server|client --protocol iwarp --rping`: librdmacm's rping exchange over
// opensrd's iWARP queue pair, so Linux siw's `rping -s` / `rping -c -V` are the peers.
//
// rping over iWARP (rdma_cm adds no header of its own to MPA private data on iWARP; rping sets
// none): after the MPA exchange the client SENDs a 16-byte advertisement {buf (BE64), rkey
// (BE32), size (BE32)} naming its start buffer; the server RDMA READs it, SENDs 16 bytes ("go
// on"), the client SENDs a second advertisement naming its empty buffer, the server RDMA
// WRITEs the data there (strlen + 1 bytes) and SENDs 16 bytes again; with -V the client
// compares the two buffers. One loop per ping; each side keeps one 16-byte receive posted.
// The client's start buffer holds rping's text ("rdma-ping-%d: " then the letters A..z
// rotating per ping), so either side's output can be compared with rping's own.
#include <cstdio>
#include <cstring>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "rdma/iwarp_tcp.h"
#include "tools/opensrd/latency.h"
#include "tools/opensrd/rdma_iwarp_cli.h"

namespace opensrd::cli {
namespace {

using rdma::MemoryRegion;
using rdma::MemoryRegistry;
using rdma::PdHandle;
using rdma::SendWr;
using rdma::WcOpcode;
using rdma::WcStatus;
using rdma::WorkCompletion;
using rdma::WrOpcode;
using rdma::iwarp::IwarpQp;
using rdma::iwarp::IwarpTcpConnection;
using rdma::iwarp::QpConfig;

constexpr size_t kAdvLen = 16;

void PutBe(uint8_t* p, uint64_t v, int n) {
  for (int i = n - 1; i >= 0; --i, v >>= 8) p[i] = static_cast<uint8_t>(v);
}
uint64_t GetBe(const uint8_t* p, int n) {
  uint64_t v = 0;
  for (int i = 0; i < n; ++i) v = v << 8 | p[i];
  return v;
}

// rping's start buffer for ping `n` (its RPING_MSG_FMT and letter rotation).
void FillPing(uint8_t* buf, size_t size, uint64_t n) {
  int cc = std::snprintf(reinterpret_cast<char*>(buf), size,
                         "rdma-ping-%llu: ", static_cast<unsigned long long>(n));
  if (cc < 0) cc = 0;
  uint8_t c = static_cast<uint8_t>(65 + n % 58);
  for (size_t i = static_cast<size_t>(cc); i < size; ++i) {
    buf[i] = c;
    if (++c > 122) c = 65;
  }
  buf[size - 1] = 0;
}

// One connection and its registered buffers, driven step by step.
class RpingPeer {
 public:
  RpingPeer(const IwarpCliOptions& o, bool initiator) : o_(o) {
    pd_ = reg_.AllocPd();
    // [recv 16][send 16][start: size][rdma: size]
    mem_.assign(2 * kAdvLen + 2 * size_t{o.size}, 0);
    mr_ = *reg_.Register(
        pd_, mem_.data(), mem_.size(),
        rdma::kAccessLocalWrite | rdma::kAccessRemoteRead | rdma::kAccessRemoteWrite);
    cfg_.initiator = initiator;
    cfg_.pd = pd_;
    cfg_.ird = 1;  // what rping asks for (responder_resources, initiator_depth)
    cfg_.ord = 1;
  }
  uint8_t* recv_buf() { return mem_.data(); }
  uint8_t* send_buf() { return mem_.data() + kAdvLen; }
  uint8_t* start_buf() { return mem_.data() + 2 * kAdvLen; }
  uint8_t* rdma_buf() { return start_buf() + o_.size; }
  uint64_t Addr(uint8_t* p) const { return reinterpret_cast<uintptr_t>(p); }

  bool Attach(std::unique_ptr<IwarpTcpConnection> c) {
    conn_ = std::move(c);
    ep_ = epoll_create1(EPOLL_CLOEXEC);
    epoll_event ev{};
    ev.events = EPOLLIN;
    ev.data.fd = conn_->fd();
    epoll_ctl(ep_, EPOLL_CTL_ADD, conn_->fd(), &ev);
    return true;
  }
  ~RpingPeer() {
    if (ep_ >= 0) close(ep_);
  }
  IwarpQp& qp() { return conn_->qp(); }
  const QpConfig& cfg() const { return cfg_; }
  MemoryRegistry& reg() { return reg_; }

  void PostRecv() { (void)qp().PostRecv({1, {Addr(recv_buf()), kAdvLen, mr_.lkey}}); }
  void Send() {
    SendWr w;
    w.wr_id = 2;
    w.opcode = WrOpcode::kSend;
    w.sge = {Addr(send_buf()), kAdvLen, mr_.lkey};
    (void)qp().PostSend(w);
  }
  void Advertise(uint8_t* buf) {
    PutBe(send_buf(), Addr(buf), 8);
    PutBe(send_buf() + 8, mr_.rkey, 4);
    PutBe(send_buf() + 12, o_.size, 4);
    Send();
  }
  void Rdma(WrOpcode op, uint8_t* local, uint32_t len, uint64_t raddr, uint32_t rkey) {
    SendWr w;
    w.wr_id = 3;
    w.opcode = op;
    w.sge = {Addr(local), len, mr_.lkey};
    w.remote_addr = raddr;
    w.rkey = rkey;
    (void)qp().PostSend(w);
  }

  // Drives I/O until a completion with `want` opcode (and success) arrives; false on error,
  // close or timeout. Other successful completions are skipped.
  bool Wait(WcOpcode want, int timeout_ms = 30'000) {
    const uint64_t end = NowNs() + uint64_t(timeout_ms) * 1'000'000;
    for (;;) {
      while (!pending_.empty()) {
        WorkCompletion wc = pending_.front();
        pending_.erase(pending_.begin());
        if (wc.status == WcStatus::kFlushed && qp().state() == IwarpQp::State::kTerminated) {
          return Fail(qp().error());  // why the queue pair stopped says more than "flushed"
        }
        if (wc.status != WcStatus::kSuccess) {
          return Fail(std::string("completion ") + rdma::WcStatusName(wc.status));
        }
        if (wc.opcode == want) return true;
      }
      if (!conn_->Flush().ok()) return Fail("send failed");
      epoll_event ev{};
      ev.events = EPOLLIN | (conn_->wants_write() ? uint32_t{EPOLLOUT} : 0u);
      ev.data.fd = conn_->fd();
      epoll_ctl(ep_, EPOLL_CTL_MOD, conn_->fd(), &ev);
      if (epoll_wait(ep_, &ev, 1, 50) > 0 && !conn_->OnReadable().ok()) return Fail("recv failed");
      (void)conn_->Flush();
      for (const WorkCompletion& wc : qp().TakeCompletions()) pending_.push_back(wc);
      if (pending_.empty()) {
        if (qp().state() == IwarpQp::State::kTerminated) return Fail(qp().error());
        if (conn_->closed()) return Fail("connection closed");
        if (NowNs() > end) return Fail("timed out");
      }
    }
  }
  bool Fail(const std::string& why) {
    if (error_.empty()) error_ = why;
    return false;
  }
  const std::string& error() const { return error_; }
  void FlushOut() {
    for (int i = 0; i < 100 && conn_->wants_write(); ++i) {
      (void)conn_->Flush();
      if (conn_->wants_write()) usleep(1000);
    }
  }

  // Drives I/O until the MPA exchange is done.
  bool WaitRts(int timeout_ms = 30'000) {
    const uint64_t end = NowNs() + uint64_t(timeout_ms) * 1'000'000;
    while (qp().state() != IwarpQp::State::kRts) {
      if (qp().state() == IwarpQp::State::kTerminated) return Fail(qp().error());
      if (NowNs() > end) return Fail("timed out waiting for the MPA reply");
      (void)conn_->Flush();
      epoll_event ev;
      if (epoll_wait(ep_, &ev, 1, 20) > 0 && !conn_->OnReadable().ok()) return Fail("recv failed");
    }
    return true;
  }

 private:
  const IwarpCliOptions& o_;
  MemoryRegistry reg_;
  PdHandle pd_;
  std::vector<uint8_t> mem_;
  MemoryRegion mr_;
  QpConfig cfg_;
  std::unique_ptr<IwarpTcpConnection> conn_;
  int ep_ = -1;
  std::vector<WorkCompletion> pending_;
  std::string error_;
};

void Report(const IwarpCliOptions& o, const char* role, uint64_t pings, uint64_t bad, bool ok,
            const std::string& error, LatencyRecorder& lat, const IwarpQp* qp) {
  const LatencySummary l = lat.Summarize();
  nlohmann::json j = {
      {"protocol", "iwarp"},
      {"mode", "rping"},
      {"role", role},
      {"size", o.size},
      {"pings", pings},
      {"mismatches", bad},
      {"verified", ok},
      {"lat_us", {{"p50", l.p50}, {"p99", l.p99}, {"p999", l.p999}, {"max", l.max}}}};
  if (!error.empty()) j["error"] = error;
  if (qp && qp->terminate_received()) {
    const auto t = qp->received_terminate();
    j["terminate_received"] = {{"layer", t.layer}, {"etype", t.etype}, {"code", t.code}};
  }
  if (qp && qp->terminate_sent()) {
    const auto t = qp->sent_terminate();
    j["terminate_sent"] = {{"layer", t.layer}, {"etype", t.etype}, {"code", t.code}};
  }
  if (o.json) {
    std::printf("%s\n", j.dump().c_str());
  } else {
    std::printf("opensrd rdma rping (%s, iwarp): %llu pings of %u bytes, %s%s%s\n", role,
                static_cast<unsigned long long>(pings), o.size, ok ? "verified" : "FAILED",
                error.empty() ? "" : ": ", error.c_str());
  }
}

}  // namespace

// Like `rping -c -V -C count -S size`.
int RunIwarpRpingClient(const IwarpCliOptions& o) {
  Result<NetAddr> remote = ParseNetAddr(o.connect);
  if (!remote.ok() || remote->v6 || o.size < 16) {
    std::fprintf(stderr, "opensrd rdma client --rping: an IPv4 --connect and --size >= 16\n");
    return 2;
  }
  RpingPeer p(o, true);
  Result<std::unique_ptr<IwarpTcpConnection>> c =
      IwarpTcpConnection::Connect(*remote, p.cfg(), p.reg());
  if (!c.ok()) {
    std::fprintf(stderr, "opensrd rdma client: %s\n", c.status().ToString().c_str());
    return 1;
  }
  p.Attach(std::move(c.value()));
  const uint64_t count = o.count ? o.count : 10;
  uint64_t pings = 0, bad = 0;
  LatencyRecorder lat;
  p.PostRecv();
  // Linux siw as responder (no RTR negotiated) was seen to lose a SEND that arrived right
  // after its MPA reply: TCP acknowledged it, rping never got the receive, and nothing else
  // was coming to wake siw up again (docs/RDMA.md). Holding the first FPDU back a little,
  // which an initiator may always do, avoids that window.
  bool ok = p.WaitRts();
  if (ok) usleep(200'000);
  for (uint64_t n = 0; n < count && ok; ++n) {
    const uint64_t t0 = NowNs();
    FillPing(p.start_buf(), o.size, n);
    std::memset(p.rdma_buf(), 0, o.size);
    p.Advertise(p.start_buf());  // the server READs this
    ok = p.Wait(WcOpcode::kRecv);
    if (!ok) break;
    p.PostRecv();
    p.Advertise(p.rdma_buf());  // the server WRITEs the data back here
    ok = p.Wait(WcOpcode::kRecv);
    if (!ok) break;
    p.PostRecv();
    if (std::memcmp(p.start_buf(), p.rdma_buf(), o.size) != 0) ++bad;
    lat.AddNs(NowNs() - t0);
    ++pings;
  }
  p.FlushOut();
  const bool verified = ok && bad == 0 && pings == count;
  Report(o, "client", pings, bad, verified, p.error(), lat, &p.qp());
  return verified ? 0 : 1;
}

// Like `rping -s`: serves one client until it disconnects; its buffer holds --max-size bytes.
int RunIwarpRpingServer(const IwarpCliOptions& options) {
  IwarpCliOptions o = options;
  o.size = o.max_size;
  Result<NetAddr> bind_addr = ParseNetAddr(o.bind);
  if (!bind_addr.ok() || bind_addr->v6) {
    std::fprintf(stderr, "opensrd rdma server --rping: an IPv4 --bind is needed\n");
    return 2;
  }
  int lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  int one = 1;
  setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  sockaddr_in sa{};
  sa.sin_family = AF_INET;
  sa.sin_port = htons(bind_addr->port);
  sa.sin_addr.s_addr = htonl(bind_addr->ip);
  if (bind(lfd, reinterpret_cast<sockaddr*>(&sa), sizeof sa) != 0 || listen(lfd, 4) != 0) {
    std::fprintf(stderr, "opensrd rdma server: listen %s: %s\n", o.bind.c_str(),
                 std::strerror(errno));
    close(lfd);
    return 1;
  }
  std::fprintf(stderr, "opensrd rdma server (iwarp, rping) on %s\n", o.bind.c_str());
  int fd = accept4(lfd, nullptr, nullptr, SOCK_CLOEXEC);
  close(lfd);
  if (fd < 0) return 1;
  RpingPeer p(o, false);
  p.Attach(IwarpTcpConnection::Adopt(fd, p.cfg(), p.reg()));
  p.PostRecv();
  uint64_t pings = 0;
  LatencyRecorder lat;
  for (;;) {
    if (!p.Wait(WcOpcode::kRecv, 600'000)) break;  // the start advertisement
    const uint64_t t0 = NowNs();
    uint64_t addr = GetBe(p.recv_buf(), 8);
    uint32_t rkey = static_cast<uint32_t>(GetBe(p.recv_buf() + 8, 4));
    uint32_t len = static_cast<uint32_t>(GetBe(p.recv_buf() + 12, 4));
    p.PostRecv();
    if (len > o.size) {
      p.Fail("the client's buffer is larger than --size");
      break;
    }
    std::memset(p.rdma_buf(), 0, o.size);
    p.Rdma(WrOpcode::kRdmaRead, p.rdma_buf(), len, addr, rkey);
    if (!p.Wait(WcOpcode::kRdmaRead)) break;
    p.Send();                             // go on
    if (!p.Wait(WcOpcode::kRecv)) break;  // where to write
    addr = GetBe(p.recv_buf(), 8);
    rkey = static_cast<uint32_t>(GetBe(p.recv_buf() + 8, 4));
    p.PostRecv();
    const uint32_t n = static_cast<uint32_t>(
        strnlen(reinterpret_cast<const char*>(p.rdma_buf()), len ? len - 1 : 0) + 1);
    p.Rdma(WrOpcode::kRdmaWrite, p.rdma_buf(), std::min(n, len), addr, rkey);
    p.Send();  // done: begin again
    if (!p.Wait(WcOpcode::kSend)) break;
    lat.AddNs(NowNs() - t0);
    ++pings;
  }
  p.FlushOut();
  // The client ends the session by closing the connection; anything else is an error.
  const bool clean = p.error() == "connection closed" || p.error().rfind("stream_closed", 0) == 0;
  Report(o, "server", pings, 0, clean && pings > 0, clean ? "" : p.error(), lat, &p.qp());
  return clean && pings > 0 ? 0 : 1;
}

}  // namespace opensrd::cli
