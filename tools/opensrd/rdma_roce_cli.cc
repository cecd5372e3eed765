// `opensrd rdma server|client --protocol roce`.
//
// Connection setup is in band on the RoCEv2 port, as rdma_cm peers do it: the client's
// connection manager (CmAgent on QP1) sends a REQ to the rdma_cm service ID of --cm-port
// (default 7174, rping's) carrying rdma_cm's IP header and our request (magic "OSRQ", the op,
// the size); the server answers with a REP naming its QP, first PSN and, in the private data
// (magic "OSRP"), the registered region's address, rkey and length; the client's RTU completes
// it, DREQ/DREP end it. Both sides are written against the public verbs API (RcDevice,
// include/opensrd/rdma.h), whose remote operations run through the protocol-independent
// executor (rkey, bounds, access, protection domain).
//
// The server's region starts with a 64-byte status area: four pairs of little-endian u64s,
// one pair per SEND connection at once (SENDs that matched the expected pattern, and those that
// did not); the REP names the client's pair ("STA" and its index after the region); data lives
// after the status area. Verification by the client: WRITE reads back every slot it wrote at the
// end; READ compares every response with what setup wrote; SEND reads the server's status counters
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

#include "opensrd/rdma.h"
#include "tools/opensrd/latency.h"
#include "tools/opensrd/roce_cm_node.h"

namespace opensrd::cli {
namespace {

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

// What both roles give their RcDevice.
rdma::RcDeviceConfig DeviceConfig(const RoceCliOptions& o, uint32_t ip, uint16_t port) {
  rdma::RcDeviceConfig dc;
  dc.protocol = rdma::RcProtocol::kRoce;
  dc.local.ip = ip;
  dc.local.port = port;
  dc.cm_port = o.cm_port;
  dc.cm_resend_ms = 200;  // loopback and namespaces answer at once
  dc.reorder = o.reorder;
  dc.reorder_seed = o.seed;
  dc.mtu = o.mtu;
  dc.pcap = o.pcap;
  return dc;
}

// ---------------------------------------------------------------------------------------------
// Server

struct Session {
  rdma::QpNum qp = 0;
  uint32_t peer_ip = 0;
  uint32_t send_size = 0;
  std::vector<uint8_t> recv_buf;  // the receives for its SENDs (counted in the budget)
  uint32_t recv_lkey = 0;
  uint32_t slots = 0;
  uint64_t sends_seen = 0;
  int status_pair = -1;  // SEND sessions: its counters in the status area
};

constexpr int kStatusPairs = 4;  // kStatusBytes / 16

// The server drives the public verbs API (RcDevice): it listens, accepts each request with a
// QP of its own, serves WRITE/READ/atomics from one registered region and checks SENDs.
// Hostile clients: at most --max-connections pending or open (the device answers more with a
// REJ), and the receives SEND connections ask for share one --recv-budget-mib; a request
// that would exceed it is rejected, so no client can make the server set aside unbounded
// memory.
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
    rdma::RcDeviceConfig dc = DeviceConfig(o_, ip, port);
    dc.max_connections = o_.max_connections;
    Result<std::unique_ptr<rdma::RcDevice>> d = rdma::RcDevice::Open(dc);
    if (!d.ok()) {
      std::fprintf(stderr, "rdma server: %s\n", d.status().ToString().c_str());
      return d.status().code() == Code::kInvalidArgument ? 2 : 1;
    }
    dev_ = std::move(d.value());
    region_.assign((o_.region_bytes + 7) / 8, 0);
    pd_ = dev_->AllocPd();
    cq_ = dev_->CreateCq();
    Result<rdma::MemoryRegion> mr =
        dev_->RegMr(pd_, region_.data(), o_.region_bytes,
                    rdma::kAccessLocalWrite | rdma::kAccessRemoteWrite | rdma::kAccessRemoteRead |
                        rdma::kAccessRemoteAtomic);
    if (!mr.ok()) {
      std::fprintf(stderr, "rdma server: %s\n", mr.status().ToString().c_str());
      return 1;
    }
    mr_ = *mr;
    Status st = dev_->Listen();
    if (!st.ok()) {
      std::fprintf(stderr, "rdma server: %s\n", st.ToString().c_str());
      return 1;
    }
    std::signal(SIGINT, OnSignal);
    std::signal(SIGTERM, OnSignal);
    const nlohmann::json c = nlohmann::json::parse(dev_->CountersJson());
    std::fprintf(stderr,
                 "rdma server (roce): %s UDP %u, rdma_cm port %u, region %llu bytes at 0x%llx "
                 "rkey 0x%08x; at most %u connections, %llu MiB of receives; ICRC receive "
                 "check: %s\n",
                 IpText(ip).c_str(), port, o_.cm_port, (unsigned long long)o_.region_bytes,
                 (unsigned long long)mr_.addr, mr_.rkey, o_.max_connections,
                 (unsigned long long)o_.recv_budget_mib,
                 c.value("raw_receive", false) ? "on" : "OFF");
    while (!g_stop) {
      st = dev_->Poll(10);
      if (!st.ok()) {
        std::fprintf(stderr, "rdma server: %s\n", st.ToString().c_str());
        return 1;
      }
      for (rdma::CmEvent e; dev_->PollCmEvent(&e);) OnEvent(e);
      Serve();
    }
    while (!sessions_.empty()) Retire(sessions_.begin()->first);
    return Print();
  }

 private:
  void Refuse(const rdma::CmEvent& e, const std::string& why) {
    std::fprintf(stderr, "rdma server: request from %s rejected: %s\n", IpText(e.peer.ip).c_str(),
                 why.c_str());
    ++refused_;
    (void)dev_->Reject(e.request);
  }

  void OnEvent(const rdma::CmEvent& e) {
    if (e.kind == rdma::CmEventKind::kConnectRequest) {
      const auto& pd = e.private_data;
      if (pd.size() < 12 || std::memcmp(pd.data(), kMagicReq, 4) != 0) {
        return Refuse(e, "no opensrd request in its private data");
      }
      auto s = std::make_unique<Session>();
      s->peer_ip = e.peer.ip;
      s->send_size = static_cast<uint32_t>(GetBe(pd.data() + 8, 4));
      if (pd[4] == 's') {
        if (s->send_size == 0 || s->send_size > (16u << 20)) {
          return Refuse(e, "SEND size " + std::to_string(s->send_size) + " out of range");
        }
        // Receives for SENDs: as many as fit 16 MiB, 2 to 32, from the shared budget.
        s->slots = static_cast<uint32_t>(std::clamp<uint64_t>((16u << 20) / s->send_size, 2, 32));
        const uint64_t need = uint64_t{s->slots} * s->send_size;
        if (recv_in_use_ + need > (o_.recv_budget_mib << 20)) {
          ++budget_refused_;
          return Refuse(e, "its " + std::to_string(need) + " bytes of receives exceed what is " +
                               "left of --recv-budget-mib (" +
                               std::to_string((o_.recv_budget_mib << 20) - recv_in_use_) +
                               " bytes)");
        }
        for (int i = 0; i < kStatusPairs && s->status_pair < 0; ++i) {
          if (!status_busy_[i]) s->status_pair = i;
        }
        if (s->status_pair < 0) {
          return Refuse(e, "four SEND clients are running already (one status pair each)");
        }
        status_busy_[s->status_pair] = true;
        s->recv_buf.assign(need, 0);
        recv_in_use_ += need;
        recv_peak_ = std::max(recv_peak_, recv_in_use_);
      }
      Result<rdma::QpNum> qp = dev_->CreateQp(pd_, cq_, cq_);
      if (!qp.ok()) {
        recv_in_use_ -= s->recv_buf.size();
        if (s->status_pair >= 0) status_busy_[s->status_pair] = false;
        return Refuse(e, qp.status().ToString());
      }
      s->qp = *qp;
      if (!s->recv_buf.empty()) {
        Result<rdma::MemoryRegion> r =
            dev_->RegMr(pd_, s->recv_buf.data(), s->recv_buf.size(), rdma::kAccessLocalWrite);
        if (!r.ok()) {
          sessions_[s->qp] = std::move(s);
          Retire(*qp);
          return Refuse(e, r.status().ToString());
        }
        s->recv_lkey = r->lkey;
        for (uint32_t i = 0; i < s->slots; ++i) Post(*s, i);
      }
      std::vector<uint8_t> rep(28, 0);
      std::memcpy(rep.data(), kMagicRep, 4);
      PutBe(rep.data() + 4, reinterpret_cast<uintptr_t>(mr_.addr), 8);
      PutBe(rep.data() + 12, mr_.rkey, 4);
      PutBe(rep.data() + 16, mr_.length, 8);
      if (s->status_pair >= 0) {
        PutLe64(StatusArea() + 16 * s->status_pair, 0);
        PutLe64(StatusArea() + 16 * s->status_pair + 8, 0);
        std::memcpy(rep.data() + 24, "STA", 3);
        rep[27] = static_cast<uint8_t>(s->status_pair);
      }
      Status st = dev_->Accept(e.request, s->qp, rep);
      const rdma::QpNum n = s->qp;
      sessions_[n] = std::move(s);
      if (!st.ok()) {
        std::fprintf(stderr, "rdma server: accept: %s\n", st.ToString().c_str());
        Retire(n);
        return;
      }
      std::fprintf(stderr, "rdma server: connection from %s, QPN 0x%06x\n",
                   IpText(e.peer.ip).c_str(), n);
      ++connections_;
    } else if (e.kind == rdma::CmEventKind::kDisconnected) {
      auto it = sessions_.find(e.qp);
      if (it == sessions_.end()) return;
      std::fprintf(stderr, "rdma server: connection from %s closed (%s)\n",
                   IpText(it->second->peer_ip).c_str(), e.reason.c_str());
      Retire(e.qp);
    }
  }

  uint8_t* StatusArea() { return reinterpret_cast<uint8_t*>(region_.data()); }

  void Post(Session& s, uint32_t slot) {
    rdma::RecvWr w;
    w.wr_id = slot;
    w.sge.addr = reinterpret_cast<uintptr_t>(s.recv_buf.data()) + uint64_t{slot} * s.send_size;
    w.sge.length = s.send_size;
    w.sge.lkey = s.recv_lkey;
    (void)dev_->PostRecv(s.qp, w);
  }

  void Serve() {
    rdma::WorkCompletion wcs[64];
    for (size_t n; (n = dev_->PollCq(cq_, wcs)) > 0;) {
      for (size_t i = 0; i < n; ++i) {
        const rdma::WorkCompletion& wc = wcs[i];
        auto it = sessions_.find(wc.qp);
        if (it == sessions_.end() || wc.opcode != rdma::WcOpcode::kRecv ||
            wc.status == rdma::WcStatus::kFlushed) {
          continue;
        }
        Session& s = *it->second;
        // SENDs arrive in order: the k-th carries Pattern(k + 1).
        ++s.sends_seen;
        const uint8_t* at = s.recv_buf.data() + wc.wr_id * s.send_size;
        const std::vector<uint8_t> want = Pattern(s.sends_seen, s.send_size);
        const bool good = wc.status == rdma::WcStatus::kSuccess && wc.byte_len == s.send_size &&
                          std::memcmp(at, want.data(), s.send_size) == 0;
        uint8_t* counter = StatusArea() + 16 * s.status_pair + (good ? 0 : 8);
        PutLe64(counter, GetLe64(counter) + 1);
        if (good) {
          ++sends_ok_;
        } else {
          ++sends_bad_;
        }
        Post(s, static_cast<uint32_t>(wc.wr_id));
      }
    }
  }

  // Destroys the session's QP (flushing its receives), then frees its receive memory. The CQ
  // is shared: what waits there is served, not dropped. Draining it used to throw away other
  // sessions' receive completions, so their SENDs went uncounted and their receives were never
  // reposted (the peer then waited on RNR NAKs for ever; tests/roce_cli_churn_test.sh). This
  // session's own completions are consumed here too (flushed ones are skipped), so none is
  // left to be taken for a later session's.
  void Retire(rdma::QpNum n) {
    auto it = sessions_.find(n);
    if (it == sessions_.end()) return;
    (void)dev_->DestroyQp(n);
    Serve();
    if (it->second->recv_lkey != 0) (void)dev_->DeregMr(it->second->recv_lkey);
    recv_in_use_ -= it->second->recv_buf.size();
    if (it->second->status_pair >= 0) status_busy_[it->second->status_pair] = false;
    sessions_.erase(it);
  }

  int Print() {
    const rdma::RcDeviceStats st = dev_->stats();
    nlohmann::json j = {{"protocol", "roce"},
                        {"role", "server"},
                        {"connections", connections_},
                        {"connections_refused", refused_ + st.connections_refused},
                        {"recv_budget_refused", budget_refused_},
                        {"recv_bytes_peak", recv_peak_},
                        {"requests_executed", st.requests_executed},
                        {"sends_ok", sends_ok_},
                        {"sends_bad", sends_bad_},
                        {"naks_sent", st.naks_sent},
                        {"rnr_naks_sent", st.rnr_naks_sent},
                        {"retransmits", st.retransmitted_packets},
                        {"counters", nlohmann::json::parse(dev_->CountersJson())}};
    const nlohmann::json pcap = nlohmann::json::parse(dev_->CloseCapture());
    if (!pcap.is_null()) j["pcap"] = pcap;
    if (o_.json) {
      std::printf("%s\n", j.dump().c_str());
    } else {
      std::printf(
          "rdma server (roce): %llu connections (%llu refused), %llu requests executed, %llu "
          "NAKs sent\n",
          (unsigned long long)connections_, (unsigned long long)(refused_ + st.connections_refused),
          (unsigned long long)st.requests_executed, (unsigned long long)st.naks_sent);
    }
    return 0;
  }

  const RoceCliOptions& o_;
  std::unique_ptr<rdma::RcDevice> dev_;
  rdma::PdHandle pd_ = 0;
  rdma::CqHandle cq_ = 0;
  std::vector<uint64_t> region_;  // 8-byte aligned for atomics
  rdma::MemoryRegion mr_;
  std::map<rdma::QpNum, std::unique_ptr<Session>> sessions_;
  uint64_t recv_in_use_ = 0, recv_peak_ = 0;
  bool status_busy_[kStatusPairs] = {};
  uint64_t connections_ = 0, refused_ = 0, budget_refused_ = 0;
  uint64_t sends_ok_ = 0, sends_bad_ = 0;
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
    const rdma::RcDeviceConfig dc = DeviceConfig(o_, local_ip, port);
    Result<std::unique_ptr<rdma::RcDevice>> d = rdma::RcDevice::Open(dc);
    if (!d.ok()) {
      std::fprintf(stderr, "rdma client: %s\n", d.status().ToString().c_str());
      return d.status().code() == Code::kInvalidArgument ? 2 : 1;
    }
    dev_ = std::move(d.value());
    pd_ = dev_->AllocPd();
    cq_ = dev_->CreateCq();
    Result<rdma::QpNum> qp = dev_->CreateQp(pd_, cq_, cq_);
    if (!qp.ok()) {
      std::fprintf(stderr, "rdma client: %s\n", qp.status().ToString().c_str());
      return 1;
    }
    qp_ = *qp;
    std::signal(SIGINT, OnSignal);
    std::signal(SIGTERM, OnSignal);
    if (!Connect(server_ip, local_ip, port)) return Print(1);
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

  bool Connect(uint32_t server_ip, uint32_t local_ip, uint16_t port) {
    std::vector<uint8_t> req(12, 0);
    std::memcpy(req.data(), kMagicReq, 4);
    req[4] = static_cast<uint8_t>(o_.op[0]);
    PutBe(req.data() + 8, o_.size, 4);
    NetAddr to;
    to.ip = server_ip;
    to.port = port;
    Status st = dev_->Connect(qp_, to, req);
    if (!st.ok()) return Fail(st.ToString());
    const uint64_t deadline = NowUs() + 10'000'000;
    while (NowUs() < deadline && !g_stop) {
      st = dev_->Poll(10);
      if (!st.ok()) return Fail(st.ToString());
      for (rdma::CmEvent e; dev_->PollCmEvent(&e);) {
        if (e.qp != qp_) continue;
        if (e.kind != rdma::CmEventKind::kEstablished) {
          return Fail(std::string("connection ") + rdma::CmEventName(e.kind) + " (" + e.reason +
                      ")");
        }
        const auto& pd = e.private_data;
        if (pd.size() < 24 || std::memcmp(pd.data(), kMagicRep, 4) != 0) {
          return Fail("the peer's REP carries no opensrd region (not an opensrd server?)");
        }
        remote_va_ = GetBe(pd.data() + 4, 8);
        if (pd.size() >= 28 && std::memcmp(pd.data() + 24, "STA", 3) == 0 &&
            pd[27] < kStatusPairs) {
          status_offset_ = 16u * pd[27];
        }
        rkey_ = static_cast<uint32_t>(GetBe(pd.data() + 12, 4));
        remote_len_ = GetBe(pd.data() + 16, 8);
        connected_ = true;
        const nlohmann::json c = nlohmann::json::parse(dev_->CountersJson());
        std::fprintf(stderr,
                     "rdma client (roce): connected %s -> %s, QPN 0x%06x, region %llu bytes "
                     "rkey 0x%08x; ICRC receive check: %s\n",
                     IpText(local_ip).c_str(), IpText(server_ip).c_str(), qp_,
                     (unsigned long long)remote_len_, rkey_,
                     c.value("raw_receive", false) ? "on" : "OFF");
        return true;
      }
    }
    return Fail("no answer from the server's connection manager");
  }

  // Local memory, registered once: a buffer per slot (WRITE/SEND sources, READ sinks), an
  // 8-byte sink per atomic in flight, and scratch for setup and verification.
  bool RegisterLocal() {
    const uint64_t scratch = std::max<uint64_t>(o_.size, 16);
    local_.assign((slots_ * o_.size + window_ * 8 + scratch + 7) / 8 + 1, 0);
    Result<rdma::MemoryRegion> mr =
        dev_->RegMr(pd_, local_.data(), local_.size() * 8, rdma::kAccessLocalWrite);
    if (!mr.ok()) return Fail(mr.status().ToString());
    lkey_ = mr->lkey;
    return true;
  }
  uint8_t* Slot(uint64_t s) { return reinterpret_cast<uint8_t*>(local_.data()) + s * o_.size; }
  uint8_t* AtomicSink(uint64_t i) { return Slot(slots_) + i * 8; }
  uint8_t* Scratch() { return AtomicSink(window_); }
  rdma::LocalSge Sge(uint8_t* at, uint32_t len) const {
    return {reinterpret_cast<uint64_t>(at), len, lkey_};
  }

  // Posts one WR and waits for its completion (setup and verification, not timed).
  bool Once(const rdma::SendWr& w) {
    Status st = dev_->PostSend(qp_, w);
    if (!st.ok()) return Fail(st.ToString());
    // After a signal, wait one more second at most (the server may be gone; see Loop).
    uint64_t deadline = NowUs() + 30'000'000;
    bool signalled = false;
    while (NowUs() < deadline) {
      if (g_stop && !signalled) {
        signalled = true;
        deadline = std::min(deadline, NowUs() + 1'000'000);
      }
      rdma::WorkCompletion wc;
      if (dev_->PollCq(cq_, {&wc, 1}) == 1) {
        if (wc.status != rdma::WcStatus::kSuccess) {
          ++errors_;
          return Fail(std::string("setup/verify op failed: ") + rdma::WcStatusName(wc.status));
        }
        return true;
      }
      st = dev_->Poll(10);
      if (!st.ok()) return Fail(st.ToString());
    }
    return Fail(signalled ? "setup/verify op got no answer before the signal's grace second ran out"
                          : "setup/verify op timed out");
  }

  rdma::SendWr Wr(uint64_t id, uint64_t slot) {
    rdma::SendWr w;
    w.wr_id = id;
    w.rkey = o_.bad_rkey ? rkey_ ^ 0x5A5A5A00u : rkey_;
    w.remote_addr = remote_va_ + kStatusBytes + slot * o_.size;
    if (o_.op == "write" || o_.op == "send") {
      w.opcode = o_.op == "write" ? rdma::WrOpcode::kRdmaWrite : rdma::WrOpcode::kSend;
      const std::vector<uint8_t> p = Pattern(id + 1, o_.size);
      std::memcpy(Slot(slot), p.data(), o_.size);
      w.sge = Sge(Slot(slot), o_.size);
    } else if (o_.op == "read") {
      w.opcode = rdma::WrOpcode::kRdmaRead;
      w.sge = Sge(Slot(slot), o_.size);
    } else {
      w.opcode = rdma::WrOpcode::kAtomicFetchAdd;
      w.remote_addr = remote_va_ + kStatusBytes;
      w.compare_add = 1;
      w.sge = Sge(AtomicSink(id % window_), 8);
    }
    return w;
  }

  rdma::SendWr ReadInto(uint8_t* at, uint64_t remote, uint32_t len) const {
    rdma::SendWr w;
    w.opcode = rdma::WrOpcode::kRdmaRead;
    w.sge = Sge(at, len);
    w.remote_addr = remote;
    w.rkey = rkey_;
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
    // WRITE and READ give each operation in flight its own remote slot; SENDs and atomics (all
    // on one word) need none. Every operation in flight has its own local buffer.
    window_ = o_.op == "write" || o_.op == "read" ? std::min<uint64_t>(slots_, o_.inflight)
                                                  : static_cast<uint64_t>(o_.inflight);
    if (o_.op == "send") slots_ = window_;
    if (!RegisterLocal()) return false;
    if (o_.bad_rkey) return true;
    if (o_.op == "read") {
      for (uint64_t s = 0; s < slots_; ++s) {
        rdma::SendWr w = Wr(0, s);
        w.opcode = rdma::WrOpcode::kRdmaWrite;
        const std::vector<uint8_t> p = Pattern(1'000'000 + s, o_.size);
        std::memcpy(Slot(s), p.data(), o_.size);
        w.sge = Sge(Slot(s), o_.size);
        if (!Once(w)) return false;
      }
    } else if (o_.op == "atomic") {
      if (!Once(ReadInto(Scratch(), remote_va_ + kStatusBytes, 8))) return false;
      std::memcpy(&first_, Scratch(), 8);  // host order, as the atomic sees it
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
    // RoCEv2's retry count 7 retries forever, so a server that vanished would keep this loop
    // waiting for ever (deaf to SIGTERM): give up when nothing completed for kStallNs, or 1 s
    // after a signal.
    constexpr uint64_t kStallNs = 10'000'000'000;
    uint64_t progress_ns = NowNs();
    uint64_t stop_signal_ns = 0;
    rdma::WorkCompletion wcs[64];
    for (;;) {
      if (g_stop && stop_signal_ns == 0) stop_signal_ns = NowNs();
      if (!posted_ns.empty() &&
          (NowNs() - progress_ns > kStallNs ||
           (stop_signal_ns != 0 && NowNs() - stop_signal_ns > 1'000'000'000))) {
        errors_ += posted_ns.size();
        return Fail(std::to_string(posted_ns.size()) + " operations got no answer " +
                    (stop_signal_ns != 0 ? "before the signal's grace second ran out"
                                         : "for 10 s (is the server gone?)"));
      }
      const bool more = !g_stop && errors_ == 0 && (by_count ? next < o_.count : NowNs() < stop_ns);
      while (more && posted_ns.size() < window_ && (!by_count || next < o_.count)) {
        const uint64_t slot = next % slots_;
        if (o_.op == "write") last_seed_[slot] = next + 1;
        posted_ns.push_back(NowNs());
        Status st = dev_->PostSend(qp_, Wr(next, slot));
        if (!st.ok()) return Fail(st.ToString());
        ++next;
      }
      if (!more && posted_ns.empty()) break;
      Status st = dev_->Poll(posted_ns.empty() ? 10 : 1);
      if (!st.ok()) return Fail(st.ToString());
      for (size_t n; (n = dev_->PollCq(cq_, wcs)) > 0;) {
        progress_ns = NowNs();
        for (size_t i = 0; i < n; ++i) {
          const rdma::WorkCompletion& c = wcs[i];
          const uint64_t t = posted_ns.empty() ? NowNs() : posted_ns.front();
          if (!posted_ns.empty()) posted_ns.pop_front();
          if (c.status != rdma::WcStatus::kSuccess) {
            ++errors_;
            if (first_error_.empty()) first_error_ = rdma::WcStatusName(c.status);
            continue;
          }
          lat_.AddNs(NowNs() - t);
          ++ops_;
          bytes_ += o_.op == "atomic" ? 8 : o_.size;
          if (o_.op == "read") {
            const uint64_t slot = c.wr_id % slots_;
            const std::vector<uint8_t> want = Pattern(1'000'000 + slot, o_.size);
            if (std::memcmp(Slot(slot), want.data(), o_.size) != 0) ++bad_;
          } else if (o_.op == "atomic") {
            uint64_t v = 0;
            std::memcpy(&v, AtomicSink(c.wr_id % window_), 8);
            originals_.push_back(v);
          }
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
    if (o_.op == "write") {
      for (uint64_t s = 0; s < slots_ && s < ops_; ++s) {
        if (!Once(ReadInto(Scratch(), remote_va_ + kStatusBytes + s * o_.size, o_.size))) {
          return false;
        }
        const std::vector<uint8_t> want = Pattern(last_seed_[s], o_.size);
        if (std::memcmp(Scratch(), want.data(), o_.size) != 0) ++bad_;
      }
    } else if (o_.op == "send") {
      // The server counts a SEND when its application has checked it and reposted the receive,
      // which can be well behind the ACK: an 8 MiB pattern check per SEND on a loaded machine
      // (or under TSan) took longer than the 100 quick retries this loop used to allow. Wait
      // up to 10 s for the count, by the clock.
      const uint64_t deadline = NowUs() + 10'000'000;
      for (;;) {
        if (!Once(ReadInto(Scratch(), remote_va_ + status_offset_, 16))) return false;
        server_ok_ = GetLe64(Scratch());
        server_bad_ = GetLe64(Scratch() + 8);
        if (server_ok_ + server_bad_ >= ops_ || NowUs() > deadline || g_stop) break;
        for (int k = 0; k < 2; ++k) (void)dev_->Poll(5);
      }
      if (server_ok_ != ops_ || server_bad_ != 0) {
        ++bad_;
        std::fprintf(stderr,
                     "rdma client: the server counted %llu good and %llu bad SENDs of the %llu "
                     "this client completed\n",
                     (unsigned long long)server_ok_, (unsigned long long)server_bad_,
                     (unsigned long long)ops_);
      }
    } else if (o_.op == "atomic") {
      std::sort(originals_.begin(), originals_.end());
      for (size_t i = 0; i < originals_.size(); ++i) {
        if (originals_[i] != first_ + i) {
          ++bad_;
          break;
        }
      }
      if (!Once(ReadInto(Scratch(), remote_va_ + kStatusBytes, 8))) return false;
      std::memcpy(&last_, Scratch(), 8);
      if (last_ != first_ + ops_) ++bad_;
    }
    if (bad_ != 0) Fail("verification failed (" + std::to_string(bad_) + " mismatches)");
    return bad_ == 0;
  }

  void Disconnect() {
    if (!connected_) return;
    // Drain what is in flight (ACKs owed to the server) before leaving.
    for (int i = 0; i < 5; ++i) (void)dev_->Poll(2);
    if (!dev_->Disconnect(qp_).ok()) return;
    // The peer's DREP makes the report say "disconnected"; after a signal the user wants out,
    // and a server that stopped answering would cost the whole wait.
    const uint64_t deadline = NowUs() + (g_stop ? 300'000 : 3'000'000);
    while (NowUs() < deadline && !disconnected_) {
      if (!dev_->Poll(10).ok()) break;
      for (rdma::CmEvent e; dev_->PollCmEvent(&e);) {
        if (e.qp == qp_ && e.kind == rdma::CmEventKind::kDisconnected) disconnected_ = true;
      }
    }
  }

  int Print(int rc) {
    const LatencySummary lat = lat_.Summarize();
    const double secs = std::max(1e-9, static_cast<double>(end_ns_ - start_ns_) / 1e9);
    const double gbps = static_cast<double>(bytes_) * 8 / secs / 1e9;
    const rdma::RcDeviceStats st = dev_->stats();
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
        {"counters", nlohmann::json::parse(dev_->CountersJson())},
        {"retransmits", st.retransmitted_packets},
        {"timeouts", st.timeouts},
        {"naks_received", st.naks_received},
        {"qpn", qp_}};
    if (o_.op == "send") j["server_sends_ok"] = server_ok_;
    if (o_.op == "atomic") j["atomic"] = {{"first", first_}, {"last", last_}};
    if (!first_error_.empty()) j["error"] = first_error_;
    const nlohmann::json pcap = nlohmann::json::parse(dev_->CloseCapture());
    if (!pcap.is_null()) j["pcap"] = pcap;
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
  std::unique_ptr<rdma::RcDevice> dev_;
  rdma::PdHandle pd_ = 0;
  rdma::CqHandle cq_ = 0;
  rdma::QpNum qp_ = 0;
  std::vector<uint64_t> local_;  // registered: slots, atomic sinks, scratch (8-byte aligned)
  uint32_t lkey_ = 0;
  uint32_t rkey_ = 0;
  bool connected_ = false;
  uint64_t remote_va_ = 0, remote_len_ = 0;
  uint64_t status_offset_ = 0;  // SEND: the server's counters for this connection
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
  // Packets, not bytes, cost on this path (docs/PERF.md, session 23): a larger MTU moves the
  // same data in fewer of them. The server runs at whatever the client's REQ asks for.
  client
      ->add_option("--mtu", o->mtu,
                   "roce: path MTU to ask for, payload bytes per packet (default 1024, rxe's); "
                   "the server follows it")
      ->check(CLI::IsMember({256u, 512u, 1024u, 2048u, 4096u}));
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
