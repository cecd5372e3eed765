// `opensrd rdma server|client --protocol iwarp`.
//
// The server listens on TCP, answers each MPA request with a reply whose private data names
// its registered region (opensrd's own 32 bytes, below), and serves WRITE and READ against it;
// each SEND it receives is checked (its first 8 bytes name the payload pattern) and answered
// with a 16-byte SEND of its running {ok, wrong} counts, so the client's SEND latency is a
// round trip and the client never has more SENDs in flight than the server has receives
// posted (iWARP has no RNR: a SEND without a receive terminates the connection).
//
// iWARP WRITEs complete at the requester when handed to TCP; the client makes each measured
// WRITE a round trip by following it with a zero-length READ (which the responder answers only
// after placing everything before it on the ordered stream), and its latency ends there.
#include "tools/opensrd/rdma_iwarp_cli.h"
#include "tools/opensrd/capture.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <vector>

#include "common/pattern.h"
#include "rdma/iwarp_tcp.h"
#include "tools/opensrd/latency.h"

namespace opensrd::cli {
namespace {

using rdma::LocalSge;
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

constexpr uint8_t kMagic[4] = {'O', 'S', 'R', 'D'};
constexpr size_t kRegionInfoLen = 32;  // magic, version, VA, length, STag, receive credits
constexpr uint32_t kCredits = 16;      // receives the server keeps posted per connection
constexpr size_t kAckLen = 16;         // the server's answer to a SEND: {ok, wrong}, LE

volatile sig_atomic_t g_stop = 0;
void OnSignal(int) {
  g_stop = 1;
}

void PutBe(uint8_t* p, uint64_t v, int n) {
  for (int i = n - 1; i >= 0; --i, v >>= 8) p[i] = static_cast<uint8_t>(v);
}
uint64_t GetBe(const uint8_t* p, int n) {
  uint64_t v = 0;
  for (int i = 0; i < n; ++i) v = v << 8 | p[i];
  return v;
}
void Put64(uint8_t* p, uint64_t v) {
  std::memcpy(p, &v, 8);
}
uint64_t Get64(const uint8_t* p) {
  uint64_t v;
  std::memcpy(&v, p, 8);
  return v;
}

int Listen(const NetAddr& a) {
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  if (fd < 0) return -1;
  int one = 1;
  setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  sockaddr_in sa{};
  sa.sin_family = AF_INET;
  sa.sin_port = htons(a.port);
  sa.sin_addr.s_addr = htonl(a.ip);
  if (bind(fd, reinterpret_cast<sockaddr*>(&sa), sizeof sa) != 0 || listen(fd, 16) != 0) {
    close(fd);
    return -1;
  }
  return fd;
}

void Arm(int ep, IwarpTcpConnection& c, bool add) {
  epoll_event ev{};
  ev.events = EPOLLIN | (c.wants_write() ? uint32_t{EPOLLOUT} : 0u);
  ev.data.fd = c.fd();
  epoll_ctl(ep, add ? EPOLL_CTL_ADD : EPOLL_CTL_MOD, c.fd(), &ev);
}

// ---- server ----

struct ServerConn {
  std::unique_ptr<IwarpTcpConnection> conn;
  std::vector<uint8_t> inbox;  // kCredits receive slots of max_size, then the ack buffer
  MemoryRegion inbox_mr;
  uint8_t* ack = nullptr;
  uint64_t ok = 0, wrong = 0;
};

}  // namespace

int RunIwarpServer(const IwarpCliOptions& o) {
  Result<std::unique_ptr<PcapWriter>> pcap = OpenCapture(o.pcap);
  if (!pcap.ok()) {
    std::fprintf(stderr, "opensrd rdma server: %s\n", pcap.status().ToString().c_str());
    return 2;
  }
  PcapWriter::Source* capture = *pcap ? (*pcap)->NewSource() : nullptr;
  Result<NetAddr> bind_addr = ParseNetAddr(o.bind);
  if (!bind_addr.ok() || bind_addr->v6) {
    std::fprintf(stderr, "opensrd rdma server: --bind: an IPv4 HOST:PORT is needed\n");
    return 2;
  }
  int lfd = Listen(*bind_addr);
  if (lfd < 0) {
    std::fprintf(stderr, "opensrd rdma server: listen %s: %s\n", o.bind.c_str(),
                 std::strerror(errno));
    return 1;
  }
  signal(SIGINT, OnSignal);
  signal(SIGTERM, OnSignal);
  MemoryRegistry reg;
  PdHandle pd = reg.AllocPd();
  std::vector<uint8_t> region(o.region_bytes, 0);
  MemoryRegion mr =
      *reg.Register(pd, region.data(), region.size(),
                    rdma::kAccessLocalWrite | rdma::kAccessRemoteWrite | rdma::kAccessRemoteRead);
  QpConfig cfg;
  cfg.initiator = false;
  cfg.pd = pd;
  cfg.private_data.assign(kRegionInfoLen, 0);
  std::memcpy(cfg.private_data.data(), kMagic, 4);
  PutBe(cfg.private_data.data() + 4, 1, 4);
  PutBe(cfg.private_data.data() + 8, reinterpret_cast<uintptr_t>(region.data()), 8);
  PutBe(cfg.private_data.data() + 16, region.size(), 8);
  PutBe(cfg.private_data.data() + 24, mr.rkey, 4);
  PutBe(cfg.private_data.data() + 28, kCredits, 4);

  int ep = epoll_create1(EPOLL_CLOEXEC);
  epoll_event lev{};
  lev.events = EPOLLIN;
  lev.data.fd = lfd;
  epoll_ctl(ep, EPOLL_CTL_ADD, lfd, &lev);
  std::map<int, std::unique_ptr<ServerConn>> conns;
  uint64_t clients = 0, terminates = 0, sends_ok = 0, sends_wrong = 0, bytes_placed = 0;
  std::fprintf(stderr, "opensrd rdma server (iwarp) on %s: region %zu bytes\n", o.bind.c_str(),
               region.size());
  while (!g_stop) {
    epoll_event evs[16];
    int n = epoll_wait(ep, evs, 16, 200);
    for (int i = 0; i < n; ++i) {
      const int fd = evs[i].data.fd;
      if (fd == lfd) {
        for (int cfd; (cfd = accept4(lfd, nullptr, nullptr, SOCK_CLOEXEC)) >= 0;) {
          auto sc = std::make_unique<ServerConn>();
          sc->conn = IwarpTcpConnection::Adopt(cfd, cfg, reg);
          if (capture != nullptr) sc->conn->set_capture(capture);
          sc->inbox.assign(size_t{kCredits} * o.max_size + kAckLen, 0);
          sc->ack = sc->inbox.data() + size_t{kCredits} * o.max_size;
          sc->inbox_mr =
              *reg.Register(pd, sc->inbox.data(), sc->inbox.size(), rdma::kAccessLocalWrite);
          for (uint32_t s = 0; s < kCredits; ++s) {
            LocalSge sge{reinterpret_cast<uintptr_t>(sc->inbox.data()) + s * o.max_size, o.max_size,
                         sc->inbox_mr.lkey};
            (void)sc->conn->qp().PostRecv({s, sge});
          }
          Arm(ep, *sc->conn, true);
          conns[cfd] = std::move(sc);
          ++clients;
        }
        continue;
      }
      auto it = conns.find(fd);
      if (it == conns.end()) continue;
      ServerConn& sc = *it->second;
      IwarpTcpConnection& c = *sc.conn;
      Status st = c.OnReadable();
      for (const WorkCompletion& wc : c.qp().TakeCompletions()) {
        if (wc.opcode != WcOpcode::kRecv || wc.status != WcStatus::kSuccess) continue;
        uint8_t* msg = sc.inbox.data() + wc.wr_id * o.max_size;
        const bool good = wc.byte_len >= 8 && CheckPattern(Get64(msg), msg + 8, wc.byte_len - 8);
        ++(good ? sc.ok : sc.wrong);
        ++(good ? sends_ok : sends_wrong);
        LocalSge sge{reinterpret_cast<uintptr_t>(msg), o.max_size, sc.inbox_mr.lkey};
        (void)c.qp().PostRecv({wc.wr_id, sge});
        Put64(sc.ack, sc.ok);
        Put64(sc.ack + 8, sc.wrong);
        SendWr ack;
        ack.opcode = WrOpcode::kSend;
        ack.sge = {reinterpret_cast<uintptr_t>(sc.ack), kAckLen, sc.inbox_mr.lkey};
        // The queue pair copies the ack into its output at once, so the buffer is reusable.
        (void)c.qp().PostSend(ack);
      }
      if (st.ok()) st = c.Flush();
      if (!st.ok() || c.closed() || c.qp().state() == IwarpQp::State::kTerminated) {
        if (c.wants_write()) (void)c.Flush();  // a TERMINATE may still be pending
        if (c.qp().terminate_sent()) ++terminates;
        if (c.qp().state() == IwarpQp::State::kTerminated && !c.closed()) {
          std::fprintf(stderr, "opensrd rdma server: connection ended: %s\n",
                       c.qp().error().c_str());
        }
        bytes_placed += c.qp().stats().bytes_placed;
        (void)reg.Deregister(sc.inbox_mr.lkey);
        epoll_ctl(ep, EPOLL_CTL_DEL, fd, nullptr);
        conns.erase(it);
        continue;
      }
      Arm(ep, c, false);
    }
  }
  for (auto& [fd, sc] : conns) bytes_placed += sc->conn->qp().stats().bytes_placed;
  close(ep);
  close(lfd);
  const nlohmann::json cap = FinishCapture(pcap->get());
  if (o.json) {
    nlohmann::json j = {{"protocol", "iwarp"},           {"clients", clients},
                        {"sends_ok", sends_ok},          {"sends_wrong", sends_wrong},
                        {"terminates_sent", terminates}, {"bytes_placed", bytes_placed}};
    if (!cap.is_null()) j["pcap"] = cap;
    std::printf("%s\n", j.dump().c_str());
  }
  return 0;
}

namespace {

class IwarpClient {
 public:
  explicit IwarpClient(const IwarpCliOptions& o) : o_(o) {}

  int Run() {
    Result<std::unique_ptr<PcapWriter>> pcap = OpenCapture(o_.pcap);
    if (!pcap.ok()) {
      std::fprintf(stderr, "opensrd rdma client: %s\n", pcap.status().ToString().c_str());
      return 2;
    }
    pcap_ = std::move(pcap.value());
    Result<NetAddr> remote = ParseNetAddr(o_.connect);
    if (!remote.ok() || remote->v6) {
      std::fprintf(stderr, "opensrd rdma client: --connect: an IPv4 HOST:PORT is needed\n");
      return 2;
    }
    if (o_.size > o_.max_size || (o_.op == "send" && o_.size < 8)) {
      std::fprintf(stderr, "opensrd rdma client: --size must be %s\n",
                   o_.op == "send" ? "at least 8 for send" : "at most --max-size");
      return 2;
    }
    if (o_.op == "atomic") {
      std::fprintf(stderr, "opensrd rdma client: iWARP (RFC 5040) has no atomics\n");
      return 2;
    }
    signal(SIGINT, OnSignal);
    signal(SIGTERM, OnSignal);
    pd_ = reg_.AllocPd();
    slots_ = static_cast<size_t>(o_.inflight);
    if (o_.op == "send") slots_ = std::min<size_t>(slots_, kCredits);
    local_.assign(slots_ * o_.size * 2 + slots_ * kAckLen, 0);
    lmr_ = *reg_.Register(pd_, local_.data(), local_.size(), rdma::kAccessLocalWrite);
    QpConfig cfg;
    cfg.initiator = true;
    cfg.pd = pd_;
    cfg.private_data.assign(kMagic, kMagic + 4);
    Result<std::unique_ptr<IwarpTcpConnection>> c = IwarpTcpConnection::Connect(*remote, cfg, reg_);
    if (!c.ok()) {
      std::fprintf(stderr, "opensrd rdma client: %s\n", c.status().ToString().c_str());
      return 1;
    }
    conn_ = std::move(c.value());
    if (pcap_) conn_->set_capture(pcap_->NewSource());
    ep_ = epoll_create1(EPOLL_CLOEXEC);
    Arm(ep_, *conn_, true);
    int rc = Main();
    close(ep_);
    return Print(rc);
  }

 private:
  uint8_t* Slot(size_t s) { return local_.data() + s * o_.size; }
  uint8_t* Check(size_t s) { return local_.data() + (slots_ + s) * o_.size; }
  uint8_t* AckBuf(size_t s) { return local_.data() + 2 * slots_ * o_.size + s * kAckLen; }
  uint64_t Remote(size_t s) const { return remote_va_ + s * o_.size; }
  static uint64_t SlotKey(size_t s) { return 0x1000 + s; }
  uintptr_t Addr(uint8_t* p) const { return reinterpret_cast<uintptr_t>(p); }

  // One event-loop turn: flush, wait up to `ms`, read, collect completions.
  bool Step(int ms) {
    if (!conn_->Flush().ok()) return Fail("send failed");
    Arm(ep_, *conn_, false);
    epoll_event ev;
    if (epoll_wait(ep_, &ev, 1, conn_->wants_write() ? 0 : ms) > 0) {
      if (!conn_->OnReadable().ok()) return Fail("recv failed");
      if (!conn_->Flush().ok()) return Fail("send failed");
    }
    for (const WorkCompletion& wc : conn_->qp().TakeCompletions()) OnCompletion(wc);
    if (conn_->qp().state() == IwarpQp::State::kTerminated) {
      (void)conn_->Flush();
      return Fail(conn_->qp().error());
    }
    return true;
  }
  bool Fail(const std::string& why) {
    if (first_error_.empty()) first_error_ = why;
    ++errors_;
    return false;
  }
  template <typename F>
  bool DriveUntil(F done, uint64_t timeout_ms) {
    const uint64_t end = NowNs() + timeout_ms * 1'000'000;
    while (!done()) {
      if (!Step(50)) return false;
      if (NowNs() > end) return Fail("timed out");
    }
    return true;
  }

  void Post(WrOpcode op, size_t s, uint8_t* local, uint32_t len, bool measured) {
    SendWr w;
    w.opcode = op;
    w.sge = {Addr(local), len, lmr_.lkey};
    w.remote_addr = Remote(s);
    w.rkey = rkey_;
    // wr_id: slot, and whether this WR ends the op (a WRITE is followed by its flush READ).
    w.wr_id = s << 1 | (op == WrOpcode::kRdmaWrite ? 0 : 1);
    if (Status st = conn_->qp().PostSend(w); !st.ok()) Fail(st.ToString());
    if (op == WrOpcode::kRdmaWrite) {
      SendWr flush = w;
      flush.opcode = WrOpcode::kRdmaRead;
      flush.sge = {Addr(Check(s)), 0, lmr_.lkey};
      flush.wr_id = s << 1 | 1;
      if (Status st = conn_->qp().PostSend(flush); !st.ok()) Fail(st.ToString());
    }
    busy_[s] = true;
    measured_[s] = measured;
    posted_ns_[s] = NowNs();
    ++outstanding_;
  }

  void OnCompletion(const WorkCompletion& wc) {
    if (wc.status != WcStatus::kSuccess) {
      Fail(std::string("completion: ") + rdma::WcStatusName(wc.status));
      if (wc.opcode != WcOpcode::kRecv && (wc.wr_id & 1)) Finish(wc.wr_id >> 1, false);
      return;
    }
    if (wc.opcode == WcOpcode::kRecv) {  // a SEND's ack: the op is done
      const size_t s = wc.wr_id;
      acked_ok_ = std::max(acked_ok_, Get64(AckBuf(s)));
      acked_wrong_ = std::max(acked_wrong_, Get64(AckBuf(s) + 8));
      (void)conn_->qp().PostRecv({s, {Addr(AckBuf(s)), kAckLen, lmr_.lkey}});
      Finish(pending_sends_.front(), true);
      pending_sends_.erase(pending_sends_.begin());
      return;
    }
    if (!(wc.wr_id & 1)) return;  // a WRITE handed to TCP; its flush READ ends the op
    if (wc.opcode == WcOpcode::kSend) {
      pending_sends_.push_back(wc.wr_id >> 1);  // completes when the server's ack arrives
      return;
    }
    const size_t s = wc.wr_id >> 1;
    if (op_ == WrOpcode::kRdmaRead && measured_[s] &&
        !CheckPattern(SlotKey(s), Check(s), o_.size)) {
      ++bad_;
    }
    Finish(s, true);
  }

  void Finish(size_t s, bool ok) {
    if (!busy_[s]) return;
    busy_[s] = false;
    --outstanding_;
    if (ok && measured_[s]) {
      lat_.AddNs(NowNs() - posted_ns_[s]);
      ++ops_;
      bytes_ += o_.size;
    }
  }

  int Main() {
    if (!DriveUntil([&] { return conn_->qp().state() == IwarpQp::State::kRts; }, 10'000)) return 1;
    const std::vector<uint8_t>& pd = conn_->qp().peer_private_data();
    if (pd.size() < kRegionInfoLen || std::memcmp(pd.data(), kMagic, 4) != 0) {
      Fail("the server's MPA reply does not describe an opensrd region");
      return 1;
    }
    remote_va_ = GetBe(pd.data() + 8, 8);
    remote_len_ = GetBe(pd.data() + 16, 8);
    rkey_ = static_cast<uint32_t>(GetBe(pd.data() + 24, 4));
    if (uint64_t{o_.size} * slots_ > remote_len_) {
      Fail("the server's region is smaller than --size x --inflight");
      return 1;
    }
    busy_.assign(slots_, false);
    measured_.assign(slots_, false);
    posted_ns_.assign(slots_, 0);
    op_ = o_.op == "write"  ? WrOpcode::kRdmaWrite
          : o_.op == "read" ? WrOpcode::kRdmaRead
                            : WrOpcode::kSend;
    if (op_ == WrOpcode::kSend) {
      for (size_t s = 0; s < slots_; ++s) {
        (void)conn_->qp().PostRecv({s, {Addr(AckBuf(s)), kAckLen, lmr_.lkey}});
      }
    }
    if (op_ == WrOpcode::kRdmaRead) {  // the slots the READs check get their pattern first
      for (size_t s = 0; s < slots_; ++s) {
        FillPattern(SlotKey(s), Slot(s), o_.size);
        Post(WrOpcode::kRdmaWrite, s, Slot(s), o_.size, false);
      }
      if (!DriveUntil([&] { return outstanding_ == 0; }, 10'000) || errors_) return 1;
    }
    const uint32_t good_rkey = rkey_;
    if (o_.bad_rkey) rkey_ ^= 0x00010000;
    const uint64_t count = o_.count ? o_.count : ~0ull;
    const double dur = o_.count ? (o_.duration_s > 0 ? o_.duration_s : 1e9)
                                : (o_.duration_s > 0 ? o_.duration_s : 3);
    start_ns_ = NowNs();
    const uint64_t end = start_ns_ + static_cast<uint64_t>(dur * 1e9);
    uint64_t posted = 0;
    std::vector<uint64_t> gen(slots_, 0);
    while ((posted < count && NowNs() < end && !g_stop) || outstanding_ > 0) {
      for (size_t s = 0; s < slots_ && posted < count && NowNs() < end && !g_stop; ++s) {
        if (busy_[s]) continue;
        if (op_ == WrOpcode::kRdmaWrite) {
          FillPattern(SlotKey(s) + (++gen[s] << 20), Slot(s), o_.size);
          Post(op_, s, Slot(s), o_.size, true);
        } else if (op_ == WrOpcode::kSend) {
          const uint64_t key = SlotKey(s) + (++gen[s] << 20);
          Put64(Slot(s), key);
          FillPattern(key, Slot(s) + 8, o_.size - 8);
          Post(op_, s, Slot(s), o_.size, true);
        } else {
          std::memset(Check(s), 0, o_.size);
          Post(op_, s, Check(s), o_.size, true);
        }
        ++posted;
      }
      if (!Step(posted < count ? 0 : 50)) break;
    }
    end_ns_ = NowNs();
    rkey_ = good_rkey;
    if (errors_) return 1;
    // Verification.
    if (op_ == WrOpcode::kRdmaWrite) {
      for (size_t s = 0; s < slots_; ++s) {
        if (gen[s] == 0) continue;
        std::memset(Check(s), 0, o_.size);
        SendWr r;
        r.opcode = WrOpcode::kRdmaRead;
        r.sge = {Addr(Check(s)), o_.size, lmr_.lkey};
        r.remote_addr = Remote(s);
        r.rkey = rkey_;
        r.wr_id = ~0ull << 1;  // not an op slot: OnCompletion's Finish ignores it
        (void)conn_->qp().PostSend(r);
      }
      if (!DriveUntil([&] { return conn_->qp().outstanding() == 0; }, 10'000)) return 1;
      for (size_t s = 0; s < slots_; ++s) {
        if (gen[s] && !CheckPattern(SlotKey(s) + (gen[s] << 20), Check(s), o_.size)) ++bad_;
      }
    } else if (op_ == WrOpcode::kSend) {
      if (acked_wrong_ != 0 || acked_ok_ < ops_) bad_ += acked_wrong_ + 1;
    }
    verified_ = bad_ == 0;
    return verified_ ? 0 : 1;
  }

  int Print(int rc) {
    const LatencySummary lat = lat_.Summarize();
    const double secs = std::max(1e-9, static_cast<double>(end_ns_ - start_ns_) / 1e9);
    const double gbps = static_cast<double>(bytes_) * 8 / secs / 1e9;
    const rdma::iwarp::QpStats& st = conn_ ? conn_->qp().stats() : rdma::iwarp::QpStats{};
    if (o_.json) {
      nlohmann::json j = {
          {"protocol", "iwarp"},
          {"op", o_.op},
          {"size", o_.size},
          {"inflight", slots_},
          {"ops", ops_},
          {"bytes", bytes_},
          {"seconds", secs},
          {"goodput_gbps", gbps},
          {"lat_us", {{"p50", lat.p50}, {"p99", lat.p99}, {"p999", lat.p999}, {"max", lat.max}}},
          {"errors", errors_},
          {"verified", verified_},
          {"fpdus_sent", st.fpdus_sent},
          {"fpdus_received", st.fpdus_received}};
      if (conn_ && conn_->qp().terminate_received()) {
        const rdma::iwarp::TermInfo t = conn_->qp().received_terminate();
        j["terminate"] = {{"layer", t.layer}, {"etype", t.etype}, {"code", t.code}};
      }
      if (!first_error_.empty()) j["error"] = first_error_;
      const nlohmann::json cap = FinishCapture(pcap_.get());
      if (!cap.is_null()) j["pcap"] = cap;
      std::printf("%s\n", j.dump().c_str());
    } else {
      std::printf("opensrd rdma %s to %s (iwarp): %u-byte ops, %zu in flight\n", o_.op.c_str(),
                  o_.connect.c_str(), o_.size, slots_);
      std::printf(
          "  %llu ops in %.2f s: %.3f Gbit/s, lat us p50 %.1f p99 %.1f p99.9 %.1f max %.1f\n",
          static_cast<unsigned long long>(ops_), secs, gbps, lat.p50, lat.p99, lat.p999, lat.max);
      std::printf("  errors %llu%s%s, verified %s\n", static_cast<unsigned long long>(errors_),
                  first_error_.empty() ? "" : ": first ", first_error_.c_str(),
                  verified_ ? "yes" : "no");
    }
    return rc;
  }

  const IwarpCliOptions& o_;
  MemoryRegistry reg_;
  PdHandle pd_ = 0;
  MemoryRegion lmr_;
  std::unique_ptr<PcapWriter> pcap_;  // before conn_: the connection holds one of its sources
  std::unique_ptr<IwarpTcpConnection> conn_;
  int ep_ = -1;
  size_t slots_ = 1;
  std::vector<uint8_t> local_;
  uint64_t remote_va_ = 0, remote_len_ = 0;
  uint32_t rkey_ = 0;
  WrOpcode op_ = WrOpcode::kRdmaWrite;
  std::vector<bool> busy_, measured_;
  std::vector<uint64_t> posted_ns_;
  std::vector<size_t> pending_sends_;
  uint64_t outstanding_ = 0, ops_ = 0, bytes_ = 0, errors_ = 0, bad_ = 0;
  uint64_t acked_ok_ = 0, acked_wrong_ = 0;
  uint64_t start_ns_ = 0, end_ns_ = 0;
  bool verified_ = false;
  std::string first_error_;
  LatencyRecorder lat_;
};

}  // namespace

int RunIwarpClient(const IwarpCliOptions& o) {
  IwarpClient c(o);
  return c.Run();
}

}  // namespace opensrd::cli
