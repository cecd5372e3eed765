// `opensrd rdma rping`: librdmacm's rping over RoCEv2, in either role, connected through the
// InfiniBand connection manager on QP1 with rdma_cm's header (so rping's rdma_cm accepts it).
//
// rping's protocol (librdmacm examples/rping.c), per ping: the client SENDs a 16-byte
// {be64 address, be32 rkey, be32 size} naming its start buffer ("rdma-ping-N: " and a rolling
// run of letters, NUL-terminated); the server RDMA READs it into its own buffer and SENDs a
// 16-byte "go ahead"; the client SENDs the same description of its second buffer; the server
// RDMA WRITEs what it read there (strlen + 1 bytes) and SENDs "go ahead" again; the client
// compares its two buffers (-V). Both sides keep one 16-byte receive posted; rping rejects a
// SEND of any other length. The client disconnects (DREQ) after its count.
//
// Here the remote READ and WRITE of our buffers run through the executor (ExecutorTarget):
// our buffers are registered regions with remote read/write access. As the server, each
// READ's data is also checked against the text rping writes for that ping number.
#include <CLI/CLI.hpp>
#include <csignal>
#include <cstdio>
#include <cstring>
#include <deque>
#include <memory>
#include <nlohmann/json.hpp>
#include <random>
#include <string>

#include "rdma/executor_target.h"
#include "rdma/ib_cm.h"
#include "rdma/memory_registry.h"
#include "rdma/roce_qp.h"
#include "tools/opensrd/capture.h"
#include "tools/opensrd/rdma_commands.h"
#include "tools/opensrd/roce_cm_node.h"

namespace opensrd::cli {
namespace {

namespace roce = rdma::roce;
namespace cm = rdma::cm;

constexpr uint32_t kInfoLen = 16;  // struct rping_rdma_info
constexpr uint32_t kRecvSlots = 4;

struct Options {
  std::string bind, connect, pcap;
  uint16_t port = 7174;
  uint64_t count = 10;
  uint32_t size = 64;
  bool validate = false;
  bool verbose = false;
  bool json = false;
  int timeout_s = 120;
  double reorder = 0;  // test: RoceUdpShell::Options::reorder
  uint64_t seed = 0;
};

// rping's start buffer for ping `n`: "rdma-ping-%d: ", then letters from `start` rolling
// 'A'..'z' (65..122), the last byte NUL. `start` begins at 65 and moves on by one per ping.
std::vector<uint8_t> RpingText(uint64_t n, uint32_t size) {
  std::vector<uint8_t> b(size, 0);
  const std::string head = "rdma-ping-" + std::to_string(n) + ": ";
  const uint32_t cc = std::min<uint32_t>(static_cast<uint32_t>(head.size()), size);
  std::memcpy(b.data(), head.data(), cc);
  uint8_t c = static_cast<uint8_t>(65 + n % 58);
  for (uint32_t i = cc; i < size; ++i) {
    b[i] = c;
    if (++c > 122) c = 65;
  }
  if (size > 0) b[size - 1] = 0;
  return b;
}

class Rping {
 public:
  explicit Rping(const Options& o) : o_(o) {}

  int Run() {
    server_ = !o_.bind.empty();
    uint32_t ip = 0, peer_ip = 0;
    uint16_t udp_port = 4791;
    if (!ParseHostPort(server_ ? o_.bind : o_.connect, server_ ? &ip : &peer_ip, &udp_port)) {
      std::fprintf(stderr, "rping: bad address (want IPv4[:4791])\n");
      return 2;
    }
    if (!server_) ip = RouteSource(peer_ip);
    std::random_device rd;
    rng_.seed(uint64_t{rd()} << 32 | rd());
    n_.reorder = o_.reorder;
    n_.reorder_seed = o_.seed;
    // The guest's CM answers slowly under TCG: resend after 1 s, as Linux's own timeouts allow.
    Status st = n_.Open(ip, udp_port, o_.pcap, rng_(), 1'000'000);
    if (!st.ok()) {
      std::fprintf(stderr, "rping: %s\n", st.ToString().c_str());
      return 1;
    }
    pd_ = reg_.AllocPd();
    target_ = std::make_unique<rdma::ExecutorTarget>(reg_, pd_);
    start_buf_.assign(o_.size, 0);
    rdma_buf_.assign(o_.size, 0);
    recv_buf_.assign(kRecvSlots * kInfoLen, 0);
    const uint32_t remote =
        rdma::kAccessLocalWrite | rdma::kAccessRemoteRead | rdma::kAccessRemoteWrite;
    start_mr_ = *reg_.Register(pd_, start_buf_.data(), o_.size, remote);
    rdma_mr_ = *reg_.Register(pd_, rdma_buf_.data(), o_.size, remote);
    recv_mr_ = *reg_.Register(pd_, recv_buf_.data(), recv_buf_.size(), rdma::kAccessLocalWrite);
    for (uint32_t i = 0; i < kRecvSlots; ++i) PostRecv(i);
    deadline_ = NowUs() + uint64_t(o_.timeout_s) * 1'000'000;
    bool ok = server_ ? Serve(ip) : Connect(ip, peer_ip) && ClientLoop();
    if (ok) Disconnect();
    return Print(ok);
  }

 private:
  bool Fail(const std::string& why) {
    if (error_.empty()) error_ = why;
    std::fprintf(stderr, "rping: %s\n", why.c_str());
    return false;
  }

  void PostRecv(uint32_t slot) {
    rdma::RecvWr w;
    w.wr_id = slot;
    w.sge.addr = reinterpret_cast<uintptr_t>(recv_buf_.data()) + slot * kInfoLen;
    w.sge.length = kInfoLen;
    w.sge.lkey = recv_mr_.lkey;
    target_->PostReceive(w);
  }

  bool Step() {
    if (NowUs() > deadline_) return Fail("timed out");
    Status st = n_.Step(5);
    if (!st.ok()) return Fail(st.ToString());
    for (cm::Event& e : n_.agent->TakeEvents()) events_.push_back(std::move(e));
    if (qp_ && !established_ && qp_->stats().messages_executed > 0) {
      n_.agent->CommunicationEstablished(cm_id_);
    }
    return true;
  }

  // Creates and attaches the queue pair once the peer's QPN and PSN are known.
  bool MakeQp(const cm::Event& e, uint32_t local_qpn, uint32_t recv_psn) {
    roce::RcConfig c;
    c.local_qpn = local_qpn;
    c.remote_qpn = e.remote_qpn;
    c.send_psn = e.send_psn;
    c.expected_psn = recv_psn;
    c.mtu = MtuBytes(e.path_mtu);
    qp_ = std::make_unique<roce::RcQueuePair>(c, target_.get());
    Result<uint16_t> sport = n_.shell->Attach(qp_.get(), local_qpn, e.peer_ip, n_.port);
    if (!sport.ok()) return Fail(sport.status().ToString());
    peer_ip_ = e.peer_ip;
    std::fprintf(stderr, "rping: connected to %s, QPN 0x%06x -> 0x%06x, MTU %u\n",
                 IpText(e.peer_ip).c_str(), local_qpn, e.remote_qpn, c.mtu);
    return true;
  }

  bool Connect(uint32_t ip, uint32_t peer_ip) {
    const uint32_t qpn = 0x100 + static_cast<uint32_t>(rng_() % 0xFFFE00);
    const uint32_t psn = static_cast<uint32_t>(rng_()) & roce::kPsnMask;
    cm::QpOffer offer;
    offer.qpn = qpn;
    offer.recv_psn = psn;
    offer.responder_resources = 1;  // as rping's conn_param
    offer.initiator_depth = 1;
    cm::CmaHeader cma{static_cast<uint16_t>(32768 + rng_() % 28000), ip, peer_ip};
    cm_id_ = n_.agent->Connect(peer_ip, cm::ServiceIdForTcpPort(o_.port), offer, &cma, NowUs());
    for (;;) {
      if (!Step()) return false;
      while (!events_.empty()) {
        cm::Event e = std::move(events_.front());
        events_.pop_front();
        if (e.id != cm_id_) continue;
        if (e.kind != cm::EventKind::kEstablished) {
          return Fail(std::string("connection ") + cm::EventName(e.kind) +
                      (e.kind == cm::EventKind::kRejected
                           ? " (reason " + std::to_string(e.reason) + ")"
                           : ""));
        }
        established_ = true;
        return MakeQp(e, qpn, psn);
      }
    }
  }

  // Posts a 16-byte SEND describing `buf`.
  void SendInfo(uint64_t addr, uint32_t rkey, uint32_t size) {
    roce::WorkRequest w;
    w.wr_id = ++wr_ids_;
    w.opcode = roce::WrOpcode::kSend;
    w.data.assign(kInfoLen, 0);
    PutBe(w.data.data(), addr, 8);
    PutBe(w.data.data() + 8, rkey, 4);
    PutBe(w.data.data() + 12, size, 4);
    qp_->PostSend(std::move(w), NowUs());
  }

  // Waits for the next receive (a 16-byte SEND from the peer); false on error or disconnect.
  bool NextRecv(std::array<uint8_t, kInfoLen>* info) {
    for (;;) {
      auto& done = target_->receive_completions();
      if (!done.empty()) {
        const rdma::WorkCompletion wc = done.front();
        done.pop_front();
        if (wc.status != rdma::WcStatus::kSuccess || wc.byte_len != kInfoLen) {
          return Fail("received a SEND of " + std::to_string(wc.byte_len) + " bytes, status " +
                      rdma::WcStatusName(wc.status));
        }
        std::memcpy(info->data(), recv_buf_.data() + wc.wr_id * kInfoLen, kInfoLen);
        PostRecv(static_cast<uint32_t>(wc.wr_id));
        return true;
      }
      if (!CheckCompletions() || !Step()) return false;
      if (peer_gone_) return false;
      for (auto it = events_.begin(); it != events_.end(); ++it) {
        if (it->id == cm_id_ && it->kind == cm::EventKind::kDisconnected) {
          peer_gone_ = true;
          events_.erase(it);
          return false;
        }
      }
    }
  }

  // Takes our send completions; keeps READ data for the caller.
  bool CheckCompletions() {
    for (roce::Completion& c : qp_->TakeCompletions()) {
      if (c.status != roce::WcStatus::kSuccess) {
        ++errors_;
        return Fail(std::string("work request failed: ") + roce::WcStatusName(c.status));
      }
      if (c.opcode == roce::WrOpcode::kRead) {
        read_done_ = true;
        read_data_ = std::move(c.read_data);
      } else if (c.opcode == roce::WrOpcode::kWrite) {
        write_done_ = true;
      }
    }
    return true;
  }

  bool WaitFlag(bool* flag) {
    while (!*flag) {
      if (!CheckCompletions() || !Step()) return false;
    }
    *flag = false;
    return true;
  }

  bool ClientLoop() {
    std::array<uint8_t, kInfoLen> info;
    for (uint64_t ping = 0; ping < o_.count; ++ping) {
      // Into the registered storage (assigning a new vector would move the buffer).
      const std::vector<uint8_t> text = RpingText(ping, o_.size);
      std::copy(text.begin(), text.end(), start_buf_.begin());
      SendInfo(reinterpret_cast<uintptr_t>(start_buf_.data()), start_mr_.rkey, o_.size);
      if (!NextRecv(&info))
        return Fail("no go-ahead from the server (ping " + std::to_string(ping) + ")");
      SendInfo(reinterpret_cast<uintptr_t>(rdma_buf_.data()), rdma_mr_.rkey, o_.size);
      if (!NextRecv(&info)) return Fail("no write-complete from the server");
      if (o_.validate && start_buf_ != rdma_buf_) {
        ++bad_;
        return Fail("data mismatch at ping " + std::to_string(ping));
      }
      if (o_.verbose) std::printf("ping data: %s\n", rdma_buf_.data());
      ++pings_;
      std::fill(rdma_buf_.begin(), rdma_buf_.end(), 0);
    }
    return true;
  }

  bool Serve(uint32_t ip) {
    n_.agent->Listen(cm::ServiceIdForTcpPort(o_.port));
    std::fprintf(stderr, "rping: listening on %s UDP %u, rdma_cm port %u\n", IpText(ip).c_str(),
                 n_.port, o_.port);
    // The connection request.
    while (qp_ == nullptr) {
      if (!Step()) return false;
      while (!events_.empty()) {
        cm::Event e = std::move(events_.front());
        events_.pop_front();
        if (e.kind != cm::EventKind::kConnectRequest || qp_) continue;
        cm_id_ = e.id;
        const uint32_t qpn = 0x100 + static_cast<uint32_t>(rng_() % 0xFFFE00);
        const uint32_t psn = static_cast<uint32_t>(rng_()) & roce::kPsnMask;
        if (!MakeQp(e, qpn, psn)) return false;
        cm::QpOffer offer;
        offer.qpn = qpn;
        offer.recv_psn = psn;
        offer.path_mtu = e.path_mtu;
        offer.responder_resources = std::min<uint8_t>(e.initiator_depth, 16);
        offer.initiator_depth = std::min<uint8_t>(e.responder_resources, 16);
        (void)n_.agent->Accept(e.id, offer, NowUs());
      }
    }
    std::array<uint8_t, kInfoLen> info;
    for (uint64_t ping = 0;; ++ping) {
      if (!NextRecv(&info)) return peer_gone_ && error_.empty();
      uint64_t addr = GetBe(info.data(), 8);
      uint32_t rkey = static_cast<uint32_t>(GetBe(info.data() + 8, 4));
      uint32_t len = std::min<uint32_t>(static_cast<uint32_t>(GetBe(info.data() + 12, 4)), o_.size);
      roce::WorkRequest r;
      r.wr_id = ++wr_ids_;
      r.opcode = roce::WrOpcode::kRead;
      r.remote_va = addr;
      r.rkey = rkey;
      r.read_length = len;
      qp_->PostSend(std::move(r), NowUs());
      if (!WaitFlag(&read_done_)) return false;
      std::fill(rdma_buf_.begin(), rdma_buf_.end(), 0);
      std::memcpy(rdma_buf_.data(), read_data_.data(), read_data_.size());
      if (std::vector<uint8_t>(rdma_buf_.begin(), rdma_buf_.begin() + len) !=
          RpingText(ping, len)) {
        ++bad_;
      }
      if (o_.verbose) std::printf("server ping data: %s\n", rdma_buf_.data());
      SendInfo(reinterpret_cast<uintptr_t>(rdma_buf_.data()), rdma_mr_.rkey, o_.size);
      if (!NextRecv(&info)) return Fail("no sink buffer from the client");
      addr = GetBe(info.data(), 8);
      rkey = static_cast<uint32_t>(GetBe(info.data() + 8, 4));
      roce::WorkRequest w;
      w.wr_id = ++wr_ids_;
      w.opcode = roce::WrOpcode::kWrite;
      w.remote_va = addr;
      w.rkey = rkey;
      const size_t n = strnlen(reinterpret_cast<const char*>(rdma_buf_.data()), len);
      w.data.assign(rdma_buf_.begin(), rdma_buf_.begin() + std::min<size_t>(n + 1, len));
      qp_->PostSend(std::move(w), NowUs());
      if (!WaitFlag(&write_done_)) return false;
      SendInfo(reinterpret_cast<uintptr_t>(rdma_buf_.data()), rdma_mr_.rkey, o_.size);
      ++pings_;
    }
  }

  void Disconnect() {
    if (!server_ && n_.agent->state(cm_id_) == cm::CmAgent::State::kEstablished) {
      // Let the last ACKs go out, then DREQ and wait for the DREP.
      for (int i = 0; i < 20; ++i) (void)n_.Step(5);
      (void)n_.agent->Disconnect(cm_id_, NowUs());
    }
    const uint64_t until = NowUs() + 3'000'000;
    while (NowUs() < until) {
      if (!n_.Step(10).ok()) break;
      bool closed = n_.agent->state(cm_id_) == cm::CmAgent::State::kClosed;
      if (closed) {
        // Answer stragglers for a moment (a DREQ resent because our DREP was lost).
        for (int i = 0; i < 20; ++i) (void)n_.Step(10);
        break;
      }
    }
  }

  int Print(bool ok) {
    const bool verified = ok && bad_ == 0 && errors_ == 0 && pings_ > 0 &&
                          (server_ || pings_ == o_.count) && (server_ || o_.validate);
    nlohmann::json j = {{"role", server_ ? "server" : "client"},
                        {"pings", pings_},
                        {"size", o_.size},
                        {"errors", errors_},
                        {"mismatches", bad_},
                        {"verified", verified},
                        {"counters", n_.Counters()}};
    if (qp_) {
      const roce::RcStats& q = qp_->stats();
      j["retransmits"] = q.retransmitted_packets;
      j["timeouts"] = q.timeouts;
      j["naks_sent"] = q.naks_sent;
      j["naks_received"] = q.naks_received;
      j["duplicates"] = q.duplicates;
    }
    if (!error_.empty()) j["error"] = error_;
    if (n_.capture) j["pcap"] = FinishCapture(n_.capture.get());
    if (o_.json) {
      std::printf("%s\n", j.dump().c_str());
    } else {
      std::printf("rping %s: %llu pings of %u bytes, %s\n", server_ ? "server" : "client",
                  (unsigned long long)pings_, o_.size, verified ? "verified" : "NOT verified");
    }
    return verified ? 0 : 1;
  }

  const Options& o_;
  bool server_ = false;
  Node n_;
  std::mt19937_64 rng_;
  rdma::MemoryRegistry reg_;
  rdma::PdHandle pd_ = 0;
  std::unique_ptr<rdma::ExecutorTarget> target_;
  std::unique_ptr<roce::RcQueuePair> qp_;
  std::vector<uint8_t> start_buf_, rdma_buf_, recv_buf_, read_data_;
  rdma::MemoryRegion start_mr_, rdma_mr_, recv_mr_;
  std::deque<cm::Event> events_;
  uint32_t cm_id_ = 0, peer_ip_ = 0;
  uint64_t wr_ids_ = 0, pings_ = 0, errors_ = 0, bad_ = 0, deadline_ = 0;
  bool established_ = false, peer_gone_ = false, read_done_ = false, write_done_ = false;
  std::string error_;
};

}  // namespace
}  // namespace opensrd::cli

void AddRoceRpingCommand(CLI::App* rdma_cmd) {
  auto o = std::make_shared<opensrd::cli::Options>();
  CLI::App* cmd = rdma_cmd->add_subcommand(
      "rping",
      "librdmacm's rping over RoCEv2 through the IB connection manager (server: --bind, "
      "client: --connect; UDP 4791)");
  auto* b = cmd->add_option("--bind", o->bind, "serve on IPv4[:4791] (as rping -s -a)");
  auto* c = cmd->add_option("--connect", o->connect, "connect to rping -s at IPv4[:4791]");
  b->excludes(c);
  cmd->add_option("-p,--port", o->port, "rdma_cm port (as rping -p; default 7174)");
  cmd->add_option("-C,--count", o->count, "pings (client; as rping -C)")
      ->check(CLI::Range(uint64_t{1}, uint64_t{1} << 40));
  cmd->add_option("-S,--size", o->size, "ping buffer size (as rping -S; default 64)")
      ->check(CLI::Range(16u, 1u << 20));
  cmd->add_flag("-V,--validate", o->validate, "client: compare the buffers (as rping -V)");
  cmd->add_flag("-v,--verbose", o->verbose, "print each ping's data (as rping -v)");
  cmd->add_option("--timeout", o->timeout_s, "give up after this many seconds");
  cmd->add_flag("--json", o->json, "one JSON object on stdout at the end");
  cmd->add_option("--pcap", o->pcap, "write every RoCEv2 datagram sent and received to FILE");
  cmd->add_option("--reorder", o->reorder,
                  "test: probability that a packet of the queue pair is held back and sent after "
                  "its next one (or alone after 1 ms)")
      ->check(CLI::Range(0.0, 1.0));
  cmd->add_option("--seed", o->seed, "seed of --reorder's choices (0: random)");
  cmd->callback([o] {
    if (o->bind.empty() == o->connect.empty()) {
      throw CLI::ValidationError("rping", "give exactly one of --bind and --connect");
    }
    opensrd::cli::Rping r(*o);
    SetRdmaCommandExitCode(r.Run());
  });
}
