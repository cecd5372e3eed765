// `opensrd rdma server|client --protocol roce`.
//
// Connection setup is in band on the RoCEv2 port, as rdma_cm peers do it: the client's
// connection manager (CmAgent on QP1) sends a REQ to the rdma_cm service ID of --cm-port
// (default 7174, rping's) carrying rdma_cm's IP header and our request (magic "OSRQ", the op,
// the size); the server answers with a REP naming its QP, first PSN and, in the private data
// (magic "OSRP"), the registered region's address, rkey and length; the client's RTU completes
// it, DREQ/DREP end it. Each side's QP is an RcQueuePair on the RoceUdpShell; the server's
// remote operations run through ExecutorTarget (the protocol-independent executor: rkey,
// bounds, access, protection domain).
//
// The server's region starts with a 64-byte status area (little-endian u64s: SENDs of the
// latest connection that matched the expected pattern, and those that did not); data lives
// after it. Verification by the client: WRITE reads back every slot it wrote at the end; READ
// compares every response with what setup wrote; SEND reads the server's status counters
// back; FETCH_ADD (add 1) checks the originals are exactly first..first+N-1 and the word ends
// at first+N.
#include "tools/opensrd/rdma_roce_cli.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>
#include <CLI/CLI.hpp>

#include <algorithm>
#include <csignal>
#include <cstdio>
#include <cstring>
#include <deque>
#include <fstream>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <random>

#include "rdma/executor_target.h"
#include "rdma/ib_cm.h"
#include "rdma/ib_cm_agent.h"
#include "rdma/memory_registry.h"
#include "rdma/rc_target.h"
#include "rdma/roce_qp.h"
#include "rdma/roce_udp.h"
#include "tools/opensrd/capture.h"
#include "tools/opensrd/latency.h"
#include "tools/opensrd/roce_cm_node.h"

namespace opensrd::cli {
namespace {

namespace roce = rdma::roce;
namespace cm = rdma::cm;
using rdma::ExecutorTarget;
using rdma::MemoryRegistry;

constexpr uint64_t kStatusBytes = 64;  // the server region's status area
constexpr uint8_t kMagicReq[4] = {'O', 'S', 'R', 'Q'};
constexpr uint8_t kMagicRep[4] = {'O', 'S', 'R', 'P'};

volatile sig_atomic_t g_stop = 0;
void OnSignal(int) {
  g_stop = 1;
}

uint64_t GetLe64(const uint8_t* p) {
  uint64_t v = 0;
  for (int i = 7; i >= 0; --i) v = v << 8 | p[i];
  return v;
}
void PutLe64(uint8_t* p, uint64_t v) {
  for (int i = 0; i < 8; ++i) p[i] = static_cast<uint8_t>(v >> (8 * i));
}

std::vector<uint8_t> Pattern(uint64_t seed, uint32_t size) {
  std::vector<uint8_t> v(size);
  for (uint32_t j = 0; j < size; ++j) {
    v[j] = static_cast<uint8_t>(seed * 131 + j * 7 + (j >> 10) + (seed >> 8));
  }
  return v;
}

// ---------------------------------------------------------------------------------------------
// Server

struct Session {
  uint32_t cm_id = 0;
  uint32_t peer_ip = 0;
  uint32_t send_size = 0;
  bool established = false;
  std::unique_ptr<ExecutorTarget> target;
  std::unique_ptr<roce::RcQueuePair> qp;
  std::vector<uint8_t> recv_buf;
  uint32_t recv_lkey = 0;
  uint32_t slots = 0;
  uint64_t sends_seen = 0;
};

class Server {
 public:
  explicit Server(const RoceCliOptions& o) : o_(o) {}

  int Run() {
    uint32_t ip = 0;
    uint16_t port = 4791;
    if (!ParseHostPort(o_.bind, &ip, &port)) {
      std::fprintf(stderr, "rdma server: bad --bind '%s' (want IPv4:PORT)\n", o_.bind.c_str());
      return 2;
    }
    std::random_device rd;
    rng_.seed(uint64_t{rd()} << 32 | rd());
    n_.reorder = o_.reorder;
    n_.reorder_seed = o_.seed;
    Status st = n_.Open(ip, port, o_.pcap, rng_());
    if (!st.ok()) {
      std::fprintf(stderr, "rdma server: %s\n", st.ToString().c_str());
      return st.code() == Code::kInvalidArgument ? 2 : 1;
    }
    region_.assign((o_.region_bytes + 7) / 8, 0);
    pd_ = reg_.AllocPd();
    Result<rdma::MemoryRegion> mr =
        reg_.Register(pd_, region_.data(), o_.region_bytes,
                      rdma::kAccessLocalWrite | rdma::kAccessRemoteWrite | rdma::kAccessRemoteRead |
                          rdma::kAccessRemoteAtomic);
    if (!mr.ok()) {
      std::fprintf(stderr, "rdma server: %s\n", mr.status().ToString().c_str());
      return 1;
    }
    mr_ = *mr;
    n_.agent->Listen(cm::ServiceIdForTcpPort(o_.cm_port));
    std::signal(SIGINT, OnSignal);
    std::signal(SIGTERM, OnSignal);
    std::fprintf(stderr,
                 "rdma server (roce): %s UDP %u, rdma_cm port %u, region %llu bytes at 0x%llx "
                 "rkey 0x%08x; ICRC receive check: %s\n",
                 IpText(ip).c_str(), port, o_.cm_port, (unsigned long long)o_.region_bytes,
                 (unsigned long long)mr_.addr, mr_.rkey, n_.shell->raw_receive() ? "on" : "OFF");
    while (!g_stop) {
      st = n_.Step(10);
      if (!st.ok()) {
        std::fprintf(stderr, "rdma server: %s\n", st.ToString().c_str());
        return 1;
      }
      for (cm::Event& e : n_.agent->TakeEvents()) OnEvent(e);
      for (auto& [id, s] : sessions_) Serve(*s);
      Reap();
    }
    for (auto& [id, s] : sessions_) Retire(*s);
    return Print();
  }

 private:
  void OnEvent(cm::Event& e) {
    const uint64_t now = NowUs();
    if (e.kind == cm::EventKind::kConnectRequest) {
      const auto& pd = e.private_data;
      if (pd.size() < 12 || std::memcmp(pd.data(), kMagicReq, 4) != 0) {
        std::fprintf(stderr, "rdma server: REQ from %s without opensrd's request: rejected\n",
                     IpText(e.peer_ip).c_str());
        (void)n_.agent->Reject(e.id, cm::kRejConsumer, now);
        return;
      }
      auto s = std::make_unique<Session>();
      s->cm_id = e.id;
      s->peer_ip = e.peer_ip;
      s->send_size = static_cast<uint32_t>(GetBe(pd.data() + 8, 4));
      s->target = std::make_unique<ExecutorTarget>(reg_, pd_);
      if (pd[4] == 's' && s->send_size > 0 && s->send_size <= (16u << 20)) {
        // Receives for SENDs: as many as fit 64 MiB, 2 to 32.
        s->slots = static_cast<uint32_t>(std::clamp<uint64_t>((64u << 20) / s->send_size, 2, 32));
        s->recv_buf.assign(uint64_t{s->slots} * s->send_size, 0);
        Result<rdma::MemoryRegion> r =
            reg_.Register(pd_, s->recv_buf.data(), s->recv_buf.size(), rdma::kAccessLocalWrite);
        if (!r.ok()) {
          (void)n_.agent->Reject(e.id, cm::kRejConsumer, now);
          return;
        }
        s->recv_lkey = r->lkey;
        for (uint32_t i = 0; i < s->slots; ++i) Post(*s, i);
      }
      PutLe64(StatusArea(), 0);
      PutLe64(StatusArea() + 8, 0);
      roce::RcConfig c;
      c.local_qpn = 0x100 + static_cast<uint32_t>(rng_() % 0xFFFE00);
      c.remote_qpn = e.remote_qpn;
      c.send_psn = e.send_psn;  // the Starting PSN of the REQ names what the client expects
      c.expected_psn = static_cast<uint32_t>(rng_()) & roce::kPsnMask;
      c.mtu = MtuBytes(e.path_mtu);
      s->qp = std::make_unique<roce::RcQueuePair>(c, s->target.get());
      Result<uint16_t> sport = n_.shell->Attach(s->qp.get(), c.local_qpn, e.peer_ip, n_.port);
      if (!sport.ok()) {
        std::fprintf(stderr, "rdma server: %s\n", sport.status().ToString().c_str());
        (void)n_.agent->Reject(e.id, cm::kRejConsumer, now);
        return;
      }
      cm::QpOffer offer;
      offer.qpn = c.local_qpn;
      offer.recv_psn = c.expected_psn;
      offer.path_mtu = e.path_mtu;
      offer.private_data.assign(24, 0);
      std::memcpy(offer.private_data.data(), kMagicRep, 4);
      PutBe(offer.private_data.data() + 4, reinterpret_cast<uintptr_t>(mr_.addr), 8);
      PutBe(offer.private_data.data() + 12, mr_.rkey, 4);
      PutBe(offer.private_data.data() + 16, mr_.length, 8);
      (void)n_.agent->Accept(e.id, offer, now);
      std::fprintf(stderr, "rdma server: connection from %s, QPN 0x%06x -> 0x%06x\n",
                   IpText(e.peer_ip).c_str(), c.remote_qpn, c.local_qpn);
      ++connections_;
      sessions_[e.id] = std::move(s);
    } else if (e.kind == cm::EventKind::kEstablished) {
      auto it = sessions_.find(e.id);
      if (it != sessions_.end()) it->second->established = true;
    } else {
      auto it = sessions_.find(e.id);
      if (it != sessions_.end()) done_.push_back(e.id);
    }
  }

  uint8_t* StatusArea() { return reinterpret_cast<uint8_t*>(region_.data()); }

  void Post(Session& s, uint32_t slot) {
    rdma::RecvWr w;
    w.wr_id = slot;
    w.sge.addr = reinterpret_cast<uintptr_t>(s.recv_buf.data()) + uint64_t{slot} * s.send_size;
    w.sge.length = s.send_size;
    w.sge.lkey = s.recv_lkey;
    s.target->PostReceive(w);
  }

  void Serve(Session& s) {
    // The RTU may be lost; the first request executed proves the client has the REP.
    if (!s.established && s.qp->stats().messages_executed > 0) {
      n_.agent->CommunicationEstablished(s.cm_id);
    }
    auto& done = s.target->receive_completions();
    while (!done.empty()) {
      const rdma::WorkCompletion wc = done.front();
      done.pop_front();
      // SENDs arrive in order: the k-th carries Pattern(k + 1).
      ++s.sends_seen;
      const uint8_t* at = s.recv_buf.data() + wc.wr_id * s.send_size;
      const std::vector<uint8_t> want = Pattern(s.sends_seen, s.send_size);
      const bool good = wc.status == rdma::WcStatus::kSuccess && wc.byte_len == s.send_size &&
                        std::memcmp(at, want.data(), s.send_size) == 0;
      uint8_t* counter = StatusArea() + (good ? 0 : 8);
      PutLe64(counter, GetLe64(counter) + 1);
      if (good) {
        ++sends_ok_;
      } else {
        ++sends_bad_;
      }
      Post(s, static_cast<uint32_t>(wc.wr_id));
    }
  }

  void Retire(Session& s) {
    const roce::RcStats& q = s.qp->stats();
    executed_ += q.messages_executed;
    naks_sent_ += q.naks_sent;
    rnr_naks_sent_ += q.rnr_naks_sent;
    retransmits_ += q.retransmitted_packets;
    n_.shell->Detach(s.qp.get());
    if (s.recv_lkey != 0) (void)reg_.Deregister(s.recv_lkey);
  }

  void Reap() {
    for (uint32_t id : done_) {
      auto it = sessions_.find(id);
      if (it == sessions_.end()) continue;
      Retire(*it->second);
      std::fprintf(stderr, "rdma server: connection from %s closed (%llu requests)\n",
                   IpText(it->second->peer_ip).c_str(),
                   (unsigned long long)it->second->qp->stats().messages_executed);
      sessions_.erase(it);
    }
    done_.clear();
  }

  int Print() {
    nlohmann::json j = {{"protocol", "roce"},          {"role", "server"},
                        {"connections", connections_}, {"requests_executed", executed_},
                        {"sends_ok", sends_ok_},       {"sends_bad", sends_bad_},
                        {"naks_sent", naks_sent_},     {"rnr_naks_sent", rnr_naks_sent_},
                        {"retransmits", retransmits_}, {"counters", n_.Counters()}};
    if (n_.capture) j["pcap"] = FinishCapture(n_.capture.get());
    if (o_.json) {
      std::printf("%s\n", j.dump().c_str());
    } else {
      std::printf("rdma server (roce): %llu connections, %llu requests executed, %llu NAKs sent\n",
                  (unsigned long long)connections_, (unsigned long long)executed_,
                  (unsigned long long)naks_sent_);
    }
    return 0;
  }

  const RoceCliOptions& o_;
  Node n_;
  std::mt19937_64 rng_;
  MemoryRegistry reg_;
  rdma::PdHandle pd_ = 0;
  std::vector<uint64_t> region_;  // 8-byte aligned for atomics
  rdma::MemoryRegion mr_;
  std::map<uint32_t, std::unique_ptr<Session>> sessions_;
  std::vector<uint32_t> done_;
  uint64_t connections_ = 0, executed_ = 0, naks_sent_ = 0, rnr_naks_sent_ = 0;
  uint64_t retransmits_ = 0, sends_ok_ = 0, sends_bad_ = 0;
};

// ---------------------------------------------------------------------------------------------
// Client

class Client {
 public:
  explicit Client(const RoceCliOptions& o) : o_(o) {}

  int Run() {
    uint32_t server_ip = 0, local_ip = 0;
    uint16_t port = 4791, unused = 0;
    if (!ParseHostPort(o_.connect, &server_ip, &port)) {
      std::fprintf(stderr, "rdma client: bad --connect '%s' (want IPv4:PORT)\n",
                   o_.connect.c_str());
      return 2;
    }
    if (!o_.bind.empty() && !ParseHostPort(o_.bind, &local_ip, &unused)) {
      std::fprintf(stderr, "rdma client: bad --bind '%s' (want IPv4)\n", o_.bind.c_str());
      return 2;
    }
    if (local_ip == 0) local_ip = RouteSource(server_ip);
    std::random_device rd;
    rng_.seed(uint64_t{rd()} << 32 | rd());
    n_.reorder = o_.reorder;
    n_.reorder_seed = o_.seed;
    Status st = n_.Open(local_ip, port, o_.pcap, rng_());
    if (!st.ok()) {
      std::fprintf(stderr, "rdma client: %s\n", st.ToString().c_str());
      return st.code() == Code::kInvalidArgument ? 2 : 1;
    }
    std::signal(SIGINT, OnSignal);
    std::signal(SIGTERM, OnSignal);
    if (!Connect(server_ip, local_ip)) return Print(1);
    start_ns_ = NowNs();
    bool ok = Setup() && Loop();
    end_ns_ = NowNs();
    if (ok) ok = Verify();
    verified_ = ok && errors_ == 0;
    Disconnect();
    return Print(verified_ ? 0 : 1);
  }

 private:
  bool Fail(const std::string& why) {
    if (first_error_.empty()) first_error_ = why;
    std::fprintf(stderr, "rdma client: %s\n", why.c_str());
    return false;
  }

  bool Connect(uint32_t server_ip, uint32_t local_ip) {
    cfg_.local_qpn = 0x100 + static_cast<uint32_t>(rng_() % 0xFFFE00);
    cfg_.expected_psn = static_cast<uint32_t>(rng_()) & roce::kPsnMask;
    cm::QpOffer offer;
    offer.qpn = cfg_.local_qpn;
    offer.recv_psn = cfg_.expected_psn;
    offer.path_mtu = 3;  // 1024, what rxe picks on a 1500-byte link
    offer.private_data.assign(12, 0);
    std::memcpy(offer.private_data.data(), kMagicReq, 4);
    offer.private_data[4] = static_cast<uint8_t>(o_.op[0]);
    PutBe(offer.private_data.data() + 8, o_.size, 4);
    cm::CmaHeader cma;
    cma.src_port = static_cast<uint16_t>(32768 + rng_() % 28000);
    cma.src_ip = local_ip;
    cma.dst_ip = server_ip;
    cm_id_ =
        n_.agent->Connect(server_ip, cm::ServiceIdForTcpPort(o_.cm_port), offer, &cma, NowUs());
    const uint64_t deadline = NowUs() + 10'000'000;
    while (NowUs() < deadline && !g_stop) {
      Status st = n_.Step(10);
      if (!st.ok()) return Fail(st.ToString());
      for (cm::Event& e : n_.agent->TakeEvents()) {
        if (e.id != cm_id_) continue;
        if (e.kind != cm::EventKind::kEstablished) {
          return Fail(std::string("connection ") + cm::EventName(e.kind) +
                      (e.kind == cm::EventKind::kRejected
                           ? " (reason " + std::to_string(e.reason) + ")"
                           : ""));
        }
        const auto& pd = e.private_data;
        if (pd.size() < 24 || std::memcmp(pd.data(), kMagicRep, 4) != 0) {
          return Fail("the peer's REP carries no opensrd region (not an opensrd server?)");
        }
        remote_va_ = GetBe(pd.data() + 4, 8);
        rkey_ = static_cast<uint32_t>(GetBe(pd.data() + 12, 4));
        remote_len_ = GetBe(pd.data() + 16, 8);
        cfg_.remote_qpn = e.remote_qpn;
        cfg_.send_psn = e.send_psn;
        cfg_.mtu = MtuBytes(e.path_mtu);
        qp_ = std::make_unique<roce::RcQueuePair>(cfg_, &local_target_);
        Result<uint16_t> sport = n_.shell->Attach(qp_.get(), cfg_.local_qpn, server_ip, n_.port);
        if (!sport.ok()) return Fail(sport.status().ToString());
        server_ip_ = server_ip;
        std::fprintf(stderr,
                     "rdma client (roce): connected %s -> %s, QPN 0x%06x -> 0x%06x, region %llu "
                     "bytes rkey 0x%08x; ICRC receive check: %s\n",
                     IpText(local_ip).c_str(), IpText(server_ip).c_str(), cfg_.local_qpn,
                     cfg_.remote_qpn, (unsigned long long)remote_len_, rkey_,
                     n_.shell->raw_receive() ? "on" : "OFF");
        return true;
      }
    }
    return Fail("no answer from the server's connection manager");
  }

  // Posts one WR and waits for its completion (setup and verification, not timed).
  bool Once(roce::WorkRequest w, roce::Completion* out) {
    qp_->PostSend(std::move(w), NowUs());
    const uint64_t deadline = NowUs() + 30'000'000;
    while (NowUs() < deadline) {
      Status st = n_.Step(10);
      if (!st.ok()) return Fail(st.ToString());
      std::vector<roce::Completion> c = qp_->TakeCompletions();
      if (!c.empty()) {
        *out = std::move(c[0]);
        if (out->status != roce::WcStatus::kSuccess) {
          ++errors_;
          return Fail(std::string("setup/verify op failed: ") + roce::WcStatusName(out->status));
        }
        return true;
      }
    }
    return Fail("setup/verify op timed out");
  }

  roce::WorkRequest Wr(uint64_t id, uint64_t slot) {
    roce::WorkRequest w;
    w.wr_id = id;
    w.rkey = o_.bad_rkey ? rkey_ ^ 0x5A5A5A00u : rkey_;
    w.remote_va = remote_va_ + kStatusBytes + slot * o_.size;
    if (o_.op == "write") {
      w.opcode = roce::WrOpcode::kWrite;
      w.data = Pattern(id + 1, o_.size);
    } else if (o_.op == "read") {
      w.opcode = roce::WrOpcode::kRead;
      w.read_length = o_.size;
    } else if (o_.op == "send") {
      w.opcode = roce::WrOpcode::kSend;
      w.data = Pattern(id + 1, o_.size);
    } else {
      w.opcode = roce::WrOpcode::kFetchAdd;
      w.remote_va = remote_va_ + kStatusBytes;
      w.swap_add = 1;
    }
    return w;
  }

  bool Setup() {
    if (o_.op == "atomic") {
      slots_ = 1;
    } else if (o_.op == "send") {
      slots_ = static_cast<uint64_t>(o_.inflight);
    } else {
      if (remote_len_ < kStatusBytes + o_.size) return Fail("the server's region is too small");
      slots_ = std::min<uint64_t>(o_.inflight, (remote_len_ - kStatusBytes) / o_.size);
    }
    // WRITE and READ give each operation in flight its own slot; SENDs and atomics (all on
    // one word) need none.
    window_ = o_.op == "write" || o_.op == "read" ? std::min<uint64_t>(slots_, o_.inflight)
                                                  : static_cast<uint64_t>(o_.inflight);
    if (o_.bad_rkey) return true;
    roce::Completion c;
    if (o_.op == "read") {
      for (uint64_t s = 0; s < slots_; ++s) {
        roce::WorkRequest w = Wr(0, s);
        w.opcode = roce::WrOpcode::kWrite;
        w.data = Pattern(1'000'000 + s, o_.size);
        if (!Once(std::move(w), &c)) return false;
      }
    } else if (o_.op == "atomic") {
      roce::WorkRequest w = Wr(0, 0);
      w.opcode = roce::WrOpcode::kRead;
      w.read_length = 8;
      if (!Once(std::move(w), &c)) return false;
      std::memcpy(&first_, c.read_data.data(), 8);  // host order, as the atomic sees it
    }
    return true;
  }

  bool Loop() {
    const bool by_count = o_.count != 0;
    const double secs = by_count ? 0 : (o_.duration_s > 0 ? o_.duration_s : 3.0);
    const uint64_t stop_ns = start_ns_ + static_cast<uint64_t>(secs * 1e9);
    std::deque<uint64_t> posted_ns;
    uint64_t next = 0;
    last_seed_.assign(slots_, 0);
    for (;;) {
      const bool more =
          !g_stop && !qp_->in_error() && (by_count ? next < o_.count : NowNs() < stop_ns);
      while (more && posted_ns.size() < window_ && (!by_count || next < o_.count)) {
        const uint64_t slot = next % slots_;
        if (o_.op == "write") last_seed_[slot] = next + 1;
        posted_ns.push_back(NowNs());
        qp_->PostSend(Wr(next, slot), NowUs());
        ++next;
      }
      if (!more && posted_ns.empty()) break;
      Status st = n_.Step(posted_ns.empty() ? 10 : 1);
      if (!st.ok()) return Fail(st.ToString());
      for (roce::Completion& c : qp_->TakeCompletions()) {
        const uint64_t t = posted_ns.empty() ? NowNs() : posted_ns.front();
        if (!posted_ns.empty()) posted_ns.pop_front();
        if (c.status != roce::WcStatus::kSuccess) {
          ++errors_;
          if (first_error_.empty()) first_error_ = roce::WcStatusName(c.status);
          continue;
        }
        lat_.AddNs(NowNs() - t);
        ++ops_;
        bytes_ += o_.op == "atomic" ? 8 : o_.size;
        if (o_.op == "read") {
          if (c.read_data != Pattern(1'000'000 + c.wr_id % slots_, o_.size)) ++bad_;
        } else if (o_.op == "atomic") {
          originals_.push_back(c.atomic_original);
        }
      }
    }
    if (errors_ != 0) {
      std::fprintf(stderr, "rdma client: %llu ops failed, first: %s\n", (unsigned long long)errors_,
                   first_error_.c_str());
    }
    return errors_ == 0;
  }

  bool Verify() {
    roce::Completion c;
    if (o_.op == "write") {
      for (uint64_t s = 0; s < slots_ && s < ops_; ++s) {
        roce::WorkRequest w = Wr(0, s);
        w.opcode = roce::WrOpcode::kRead;
        w.read_length = o_.size;
        if (!Once(std::move(w), &c)) return false;
        if (c.read_data != Pattern(last_seed_[s], o_.size)) ++bad_;
      }
    } else if (o_.op == "send") {
      // The server counts SENDs as it reposts their receives; it may be a turn behind the ACK.
      for (int i = 0; i < 100; ++i) {
        roce::WorkRequest w = Wr(0, 0);
        w.opcode = roce::WrOpcode::kRead;
        w.remote_va = remote_va_;
        w.read_length = 16;
        if (!Once(std::move(w), &c)) return false;
        server_ok_ = GetLe64(c.read_data.data());
        server_bad_ = GetLe64(c.read_data.data() + 8);
        if (server_ok_ + server_bad_ >= ops_) break;
        for (int k = 0; k < 2; ++k) (void)n_.Step(5);
      }
      if (server_ok_ != ops_ || server_bad_ != 0) ++bad_;
    } else if (o_.op == "atomic") {
      std::sort(originals_.begin(), originals_.end());
      for (size_t i = 0; i < originals_.size(); ++i) {
        if (originals_[i] != first_ + i) {
          ++bad_;
          break;
        }
      }
      roce::WorkRequest w = Wr(0, 0);
      w.opcode = roce::WrOpcode::kRead;
      w.read_length = 8;
      if (!Once(std::move(w), &c)) return false;
      std::memcpy(&last_, c.read_data.data(), 8);
      if (last_ != first_ + ops_) ++bad_;
    }
    if (bad_ != 0) Fail("verification failed (" + std::to_string(bad_) + " mismatches)");
    return bad_ == 0;
  }

  void Disconnect() {
    if (cm_id_ == 0 || n_.agent->state(cm_id_) != cm::CmAgent::State::kEstablished) return;
    // Drain what is in flight (ACKs owed to the server) before leaving.
    for (int i = 0; i < 5; ++i) (void)n_.Step(2);
    if (!n_.agent->Disconnect(cm_id_, NowUs()).ok()) return;
    const uint64_t deadline = NowUs() + 3'000'000;
    while (NowUs() < deadline) {
      if (!n_.Step(10).ok()) break;
      for (cm::Event& e : n_.agent->TakeEvents()) {
        if (e.id == cm_id_ && e.kind == cm::EventKind::kDisconnected) disconnected_ = true;
      }
      if (disconnected_) break;
    }
  }

  int Print(int rc) {
    const LatencySummary lat = lat_.Summarize();
    const double secs = std::max(1e-9, static_cast<double>(end_ns_ - start_ns_) / 1e9);
    const double gbps = static_cast<double>(bytes_) * 8 / secs / 1e9;
    nlohmann::json j = {
        {"protocol", "roce"},
        {"op", o_.op},
        {"size", o_.size},
        {"inflight", window_},
        {"ops", ops_},
        {"bytes", bytes_},
        {"seconds", secs},
        {"goodput_gbps", gbps},
        {"lat_us", {{"p50", lat.p50}, {"p99", lat.p99}, {"p999", lat.p999}, {"max", lat.max}}},
        {"errors", errors_},
        {"verified", verified_},
        {"disconnected", disconnected_},
        {"cpu", {{"model", CpuModel()}}},
        {"counters", n_.Counters()}};
    if (qp_) {
      const roce::RcStats& q = qp_->stats();
      j["retransmits"] = q.retransmitted_packets;
      j["timeouts"] = q.timeouts;
      j["naks_received"] = q.naks_received;
      j["qpn"] = cfg_.local_qpn;
      j["remote_qpn"] = cfg_.remote_qpn;
    }
    if (o_.op == "send") j["server_sends_ok"] = server_ok_;
    if (o_.op == "atomic") j["atomic"] = {{"first", first_}, {"last", last_}};
    if (!first_error_.empty()) j["error"] = first_error_;
    if (n_.capture) j["pcap"] = FinishCapture(n_.capture.get());
    if (o_.json) {
      std::printf("%s\n", j.dump().c_str());
    } else {
      std::printf(
          "opensrd rdma %s to %s (roce): %u-byte ops, %llu in flight\n  %llu ops in %.2f s: "
          "%.3f Gbit/s, lat us p50 %.1f p99 %.1f p99.9 %.1f max %.1f\n  errors %llu%s%s, "
          "verified %s\n",
          o_.op.c_str(), o_.connect.c_str(), o_.size, (unsigned long long)window_,
          (unsigned long long)ops_, secs, gbps, lat.p50, lat.p99, lat.p999, lat.max,
          (unsigned long long)errors_, first_error_.empty() ? "" : ": first ", first_error_.c_str(),
          verified_ ? "yes" : "no");
    }
    return rc;
  }

  const RoceCliOptions& o_;
  Node n_;
  std::mt19937_64 rng_;
  roce::RcConfig cfg_;
  rdma::MemoryTarget local_target_{0x1000, 0, 64};  // the client serves no remote operation
  std::unique_ptr<roce::RcQueuePair> qp_;
  uint32_t cm_id_ = 0, server_ip_ = 0, rkey_ = 0;
  uint64_t remote_va_ = 0, remote_len_ = 0;
  uint64_t slots_ = 1, window_ = 1;
  std::vector<uint64_t> last_seed_;
  std::vector<uint64_t> originals_;
  uint64_t first_ = 0, last_ = 0, server_ok_ = 0, server_bad_ = 0;
  uint64_t ops_ = 0, bytes_ = 0, errors_ = 0, bad_ = 0;
  uint64_t start_ns_ = 0, end_ns_ = 0;
  bool verified_ = false, disconnected_ = false;
  std::string first_error_;
  LatencyRecorder lat_;
};

}  // namespace

void AddRoceOptions(CLI::App* server, CLI::App* client, RoceCliOptions* o) {
  for (CLI::App* a : {server, client}) {
    a->add_option("--cm-port", o->cm_port,
                  "roce: rdma_cm port of the service (ID 0x01060000 | port; rping's 7174)");
    a->add_option("--reorder", o->reorder,
                  "roce, test: probability that a queue pair's packet is held back and sent "
                  "after its next one (or alone after 1 ms)")
        ->check(CLI::Range(0.0, 1.0));
    a->add_option("--seed", o->seed, "roce: seed of --reorder's choices (0: random)");
  }
  client->add_option("--bind", o->bind,
                     "roce: local IPv4 address of the client's RoCEv2 endpoint (default: the "
                     "route's source address)");
}

int RunRoceServer(const RoceCliOptions& o) {
  Server s(o);
  return s.Run();
}

int RunRoceClient(const RoceCliOptions& o) {
  Client c(o);
  return c.Run();
}

}  // namespace opensrd::cli
