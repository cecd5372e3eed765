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
// Written against the public verbs API (RcDevice, include/opensrd/rdma.h), as an rdma_cm
// application is: the peer's READ and WRITE of our buffers run through the executor, our
// buffers being registered regions with remote read/write access. As the server, each READ's
// data is also checked against the text rping writes for that ping number.
#include <CLI/CLI.hpp>
#include <array>
#include <csignal>
#include <cstdio>
#include <cstring>
#include <deque>
#include <memory>
#include <nlohmann/json.hpp>
#include <random>
#include <string>

#include "opensrd/rdma.h"
#include "tools/opensrd/rdma_commands.h"
#include "tools/opensrd/roce_cm_node.h"

namespace opensrd::cli {
namespace {

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
  double reorder = 0;  // test: RcDeviceConfig::reorder
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
    rdma::RcDeviceConfig dc;
    dc.protocol = rdma::RcProtocol::kRoce;
    dc.local.ip = ip;
    dc.local.port = udp_port;
    dc.cm_port = o_.port;
    dc.cm_resend_ms = 1000;  // the guest's CM answers slowly under TCG
    dc.max_connections = 1;
    dc.ird = 1;  // rping's conn_param: responder_resources and initiator_depth 1
    dc.ord = 1;
    dc.reorder = o_.reorder;
    dc.reorder_seed = o_.seed;
    dc.pcap = o_.pcap;
    Result<std::unique_ptr<rdma::RcDevice>> d = rdma::RcDevice::Open(dc);
    if (!d.ok()) {
      std::fprintf(stderr, "rping: %s\n", d.status().ToString().c_str());
      return d.status().code() == Code::kInvalidArgument ? 2 : 1;
    }
    dev_ = std::move(d.value());
    pd_ = dev_->AllocPd();
    send_cq_ = dev_->CreateCq();
    recv_cq_ = dev_->CreateCq();
    start_buf_.assign(o_.size, 0);
    rdma_buf_.assign(o_.size, 0);
    recv_buf_.assign(kRecvSlots * kInfoLen, 0);
    info_buf_.assign(kInfoLen, 0);
    const uint32_t remote =
        rdma::kAccessLocalWrite | rdma::kAccessRemoteRead | rdma::kAccessRemoteWrite;
    start_mr_ = *dev_->RegMr(pd_, start_buf_.data(), o_.size, remote);
    rdma_mr_ = *dev_->RegMr(pd_, rdma_buf_.data(), o_.size, remote);
    recv_mr_ = *dev_->RegMr(pd_, recv_buf_.data(), recv_buf_.size(), rdma::kAccessLocalWrite);
    info_mr_ = *dev_->RegMr(pd_, info_buf_.data(), kInfoLen, 0);
    deadline_ = NowUs() + uint64_t(o_.timeout_s) * 1'000'000;
    bool ok = server_ ? Serve(ip, udp_port) : Connect(peer_ip, udp_port) && ClientLoop();
    if (ok) Disconnect();
    return Print(ok);
  }

 private:
  bool Fail(const std::string& why) {
    if (error_.empty()) error_ = why;
    std::fprintf(stderr, "rping: %s\n", why.c_str());
    return false;
  }

  bool NewQp() {
    Result<rdma::QpNum> q = dev_->CreateQp(pd_, send_cq_, recv_cq_);
    if (!q.ok()) return Fail(q.status().ToString());
    qp_ = *q;
    for (uint32_t i = 0; i < kRecvSlots; ++i) PostRecv(i);
    return true;
  }

  void PostRecv(uint32_t slot) {
    rdma::RecvWr w;
    w.wr_id = slot;
    w.sge.addr = reinterpret_cast<uintptr_t>(recv_buf_.data()) + slot * kInfoLen;
    w.sge.length = kInfoLen;
    w.sge.lkey = recv_mr_.lkey;
    (void)dev_->PostRecv(qp_, w);
  }

  bool Step() {
    if (NowUs() > deadline_) return Fail("timed out");
    Status st = dev_->Poll(5);
    if (!st.ok()) return Fail(st.ToString());
    for (rdma::CmEvent e; dev_->PollCmEvent(&e);) events_.push_back(std::move(e));
    return true;
  }

  // Waits for the connection event of our QP.
  bool AwaitEstablished() {
    for (;;) {
      if (!Step()) return false;
      while (!events_.empty()) {
        rdma::CmEvent e = std::move(events_.front());
        events_.pop_front();
        if (e.qp != qp_) continue;
        if (e.kind != rdma::CmEventKind::kEstablished) {
          return Fail(std::string("connection ") + rdma::CmEventName(e.kind) + " (" + e.reason +
                      ")");
        }
        std::fprintf(stderr, "rping: connected to %s, QPN 0x%06x\n", IpText(e.peer.ip).c_str(),
                     qp_);
        return true;
      }
    }
  }

  bool Connect(uint32_t peer_ip, uint16_t udp_port) {
    if (!NewQp()) return false;
    NetAddr to;
    to.ip = peer_ip;
    to.port = udp_port;
    Status st = dev_->Connect(qp_, to, {});
    if (!st.ok()) return Fail(st.ToString());
    return AwaitEstablished();
  }

  // Posts a 16-byte SEND describing `buf` (the device copies it out when it is posted).
  bool SendInfo(uint64_t addr, uint32_t rkey, uint32_t size) {
    PutBe(info_buf_.data(), addr, 8);
    PutBe(info_buf_.data() + 8, rkey, 4);
    PutBe(info_buf_.data() + 12, size, 4);
    rdma::SendWr w;
    w.wr_id = ++wr_ids_;
    w.opcode = rdma::WrOpcode::kSend;
    w.sge = {reinterpret_cast<uintptr_t>(info_buf_.data()), kInfoLen, info_mr_.lkey};
    Status st = dev_->PostSend(qp_, w);
    return st.ok() || Fail(st.ToString());
  }

  // Waits for the next receive (a 16-byte SEND from the peer); false on error or disconnect.
  bool NextRecv(std::array<uint8_t, kInfoLen>* info) {
    for (;;) {
      rdma::WorkCompletion wc;
      if (dev_->PollCq(recv_cq_, {&wc, 1}) == 1) {
        if (wc.status == rdma::WcStatus::kFlushed) {
          peer_gone_ = true;
          return false;
        }
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
        if (it->qp == qp_ && it->kind == rdma::CmEventKind::kDisconnected) {
          peer_gone_ = true;
          events_.erase(it);
          return false;
        }
      }
    }
  }

  // Takes our send completions; READ data is already in rdma_buf_.
  bool CheckCompletions() {
    rdma::WorkCompletion wcs[16];
    for (size_t n; (n = dev_->PollCq(send_cq_, wcs)) > 0;) {
      for (size_t i = 0; i < n; ++i) {
        const rdma::WorkCompletion& c = wcs[i];
        if (c.status != rdma::WcStatus::kSuccess) {
          ++errors_;
          return Fail(std::string("work request failed: ") + rdma::WcStatusName(c.status));
        }
        if (c.opcode == rdma::WcOpcode::kRdmaRead) {
          read_done_ = true;
        } else if (c.opcode == rdma::WcOpcode::kRdmaWrite) {
          write_done_ = true;
        }
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
      if (!SendInfo(reinterpret_cast<uintptr_t>(start_buf_.data()), start_mr_.rkey, o_.size)) {
        return false;
      }
      if (!NextRecv(&info))
        return Fail("no go-ahead from the server (ping " + std::to_string(ping) + ")");
      if (!SendInfo(reinterpret_cast<uintptr_t>(rdma_buf_.data()), rdma_mr_.rkey, o_.size)) {
        return false;
      }
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

  bool Serve(uint32_t ip, uint16_t udp_port) {
    Status st = dev_->Listen();
    if (!st.ok()) return Fail(st.ToString());
    std::fprintf(stderr, "rping: listening on %s UDP %u, rdma_cm port %u\n", IpText(ip).c_str(),
                 udp_port, o_.port);
    // The connection request.
    while (qp_ == 0) {
      if (!Step()) return false;
      while (!events_.empty()) {
        rdma::CmEvent e = std::move(events_.front());
        events_.pop_front();
        if (e.kind != rdma::CmEventKind::kConnectRequest || qp_ != 0) continue;
        if (!NewQp()) return false;
        st = dev_->Accept(e.request, qp_, {});
        if (!st.ok()) return Fail(st.ToString());
      }
    }
    if (!AwaitEstablished()) return false;
    std::array<uint8_t, kInfoLen> info;
    for (uint64_t ping = 0;; ++ping) {
      if (!NextRecv(&info)) return peer_gone_ && error_.empty();
      uint64_t addr = GetBe(info.data(), 8);
      uint32_t rkey = static_cast<uint32_t>(GetBe(info.data() + 8, 4));
      uint32_t len = std::min<uint32_t>(static_cast<uint32_t>(GetBe(info.data() + 12, 4)), o_.size);
      std::fill(rdma_buf_.begin(), rdma_buf_.end(), 0);
      rdma::SendWr r;
      r.wr_id = ++wr_ids_;
      r.opcode = rdma::WrOpcode::kRdmaRead;
      r.sge = {reinterpret_cast<uintptr_t>(rdma_buf_.data()), len, rdma_mr_.lkey};
      r.remote_addr = addr;
      r.rkey = rkey;
      st = dev_->PostSend(qp_, r);
      if (!st.ok()) return Fail(st.ToString());
      if (!WaitFlag(&read_done_)) return false;
      if (std::vector<uint8_t>(rdma_buf_.begin(), rdma_buf_.begin() + len) !=
          RpingText(ping, len)) {
        ++bad_;
      }
      if (o_.verbose) std::printf("server ping data: %s\n", rdma_buf_.data());
      if (!SendInfo(reinterpret_cast<uintptr_t>(rdma_buf_.data()), rdma_mr_.rkey, o_.size)) {
        return false;
      }
      if (!NextRecv(&info)) return Fail("no sink buffer from the client");
      addr = GetBe(info.data(), 8);
      rkey = static_cast<uint32_t>(GetBe(info.data() + 8, 4));
      const size_t n = strnlen(reinterpret_cast<const char*>(rdma_buf_.data()), len);
      rdma::SendWr w;
      w.wr_id = ++wr_ids_;
      w.opcode = rdma::WrOpcode::kRdmaWrite;
      w.sge = {reinterpret_cast<uintptr_t>(rdma_buf_.data()),
               static_cast<uint32_t>(std::min<size_t>(n + 1, len)), rdma_mr_.lkey};
      w.remote_addr = addr;
      w.rkey = rkey;
      st = dev_->PostSend(qp_, w);
      if (!st.ok()) return Fail(st.ToString());
      if (!WaitFlag(&write_done_)) return false;
      if (!SendInfo(reinterpret_cast<uintptr_t>(rdma_buf_.data()), rdma_mr_.rkey, o_.size)) {
        return false;
      }
      ++pings_;
    }
  }

  void Disconnect() {
    if (!server_ && !peer_gone_) {
      // Let the last ACKs go out, then DREQ and wait for the DREP.
      for (int i = 0; i < 20; ++i) (void)dev_->Poll(5);
      if (dev_->Disconnect(qp_).ok()) {
        const uint64_t until = NowUs() + 3'000'000;
        bool closed = false;
        while (!closed && NowUs() < until) {
          if (!dev_->Poll(10).ok()) break;
          for (rdma::CmEvent e; dev_->PollCmEvent(&e);) {
            closed |= e.qp == qp_ && e.kind == rdma::CmEventKind::kDisconnected;
          }
        }
      }
    }
    // Answer stragglers for a moment (a DREQ resent because our DREP was lost).
    for (int i = 0; i < 20; ++i) (void)dev_->Poll(10);
  }

  int Print(bool ok) {
    const bool verified = ok && bad_ == 0 && errors_ == 0 && pings_ > 0 &&
                          (server_ || pings_ == o_.count) && (server_ || o_.validate);
    const rdma::RcDeviceStats st = dev_->stats();
    nlohmann::json j = {{"role", server_ ? "server" : "client"},
                        {"pings", pings_},
                        {"size", o_.size},
                        {"errors", errors_},
                        {"mismatches", bad_},
                        {"verified", verified},
                        {"counters", nlohmann::json::parse(dev_->CountersJson())},
                        {"retransmits", st.retransmitted_packets},
                        {"timeouts", st.timeouts},
                        {"naks_sent", st.naks_sent},
                        {"naks_received", st.naks_received},
                        {"duplicates", st.duplicates}};
    if (!error_.empty()) j["error"] = error_;
    const nlohmann::json pcap = nlohmann::json::parse(dev_->CloseCapture());
    if (!pcap.is_null()) j["pcap"] = pcap;
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
  std::unique_ptr<rdma::RcDevice> dev_;
  rdma::PdHandle pd_ = 0;
  rdma::CqHandle send_cq_ = 0, recv_cq_ = 0;
  rdma::QpNum qp_ = 0;
  std::vector<uint8_t> start_buf_, rdma_buf_, recv_buf_, info_buf_;
  rdma::MemoryRegion start_mr_, rdma_mr_, recv_mr_, info_mr_;
  std::deque<rdma::CmEvent> events_;
  uint64_t wr_ids_ = 0, pings_ = 0, errors_ = 0, bad_ = 0, deadline_ = 0;
  bool peer_gone_ = false, read_done_ = false, write_done_ = false;
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
