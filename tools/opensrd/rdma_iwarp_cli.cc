// `opensrd rdma server|client --protocol iwarp`, on the verbs API for connected QPs
// (rdma::RcDevice, include/opensrd/rdma.h).
//
// The client's MPA request carries opensrd's 12 bytes (magic, version, the largest SEND it will
// post); the server answers each request with a reply whose private data names its registered
// region (opensrd's own 32 bytes, below), and serves WRITE and READ against it; each SEND it
// receives is checked (its first 8 bytes name the payload pattern) and answered with a 16-byte
// SEND of its running {ok, wrong} counts, so the client's SEND latency is a round trip and the
// client never has more SENDs in flight than the server has receives posted (iWARP has no RNR:
// a SEND without a receive terminates the connection).
//
// The server bounds what clients can make it hold: at most --max-connections connections
// (pending or open; the device closes the TCP connection of one more before reading it), and
// at most --recv-budget-mib of receive buffers over all connections: each connection gets
// kCredits receives of the size its client asked for (a client of an older version, which
// asks nothing, gets --max-size), and a request that would exceed the budget, or asks for more
// than --max-size, is rejected (MPA reject) with a log line before any buffer is allocated.
//
// iWARP WRITEs complete at the requester when handed to TCP; the client makes each measured
// WRITE a round trip by following it with a zero-length READ (which the responder answers only
// after placing everything before it on the ordered stream), and its latency ends there.
#include "tools/opensrd/rdma_iwarp_cli.h"

#include <signal.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <vector>

#include "common/pattern.h"
#include "opensrd/rdma.h"
#include "tools/opensrd/latency.h"

namespace opensrd::cli {
namespace {

using rdma::CmEvent;
using rdma::CmEventKind;
using rdma::CqHandle;
using rdma::LocalSge;
using rdma::MemoryRegion;
using rdma::PdHandle;
using rdma::QpNum;
using rdma::RcDevice;
using rdma::RcDeviceConfig;
using rdma::SendWr;
using rdma::WcOpcode;
using rdma::WcStatus;
using rdma::WorkCompletion;
using rdma::WrOpcode;

constexpr uint8_t kMagic[4] = {'O', 'S', 'R', 'D'};
constexpr size_t kRegionInfoLen = 32;  // magic, version, VA, length, STag, receive credits
constexpr size_t kRequestLen = 12;     // magic, version, largest SEND the client will post
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
uintptr_t Addr(const uint8_t* p) {
  return reinterpret_cast<uintptr_t>(p);
}

// Opens the device; a --pcap file that cannot be created is bad usage (2), anything else 1.
int OpenDevice(const char* who, const RcDeviceConfig& cfg, std::unique_ptr<RcDevice>* out) {
  Result<std::unique_ptr<RcDevice>> d = RcDevice::Open(cfg);
  if (!d.ok()) {
    std::fprintf(stderr, "opensrd rdma %s: %s\n", who, d.status().ToString().c_str());
    return !cfg.pcap.empty() && d.status().message().rfind("pcap", 0) == 0 ? 2 : 1;
  }
  *out = std::move(d.value());
  return 0;
}

// ---- server ----

struct ServerConn {
  NetAddr peer;
  uint32_t slot = 0;           // bytes per receive
  std::vector<uint8_t> inbox;  // kCredits receive slots, then the ack buffer
  MemoryRegion inbox_mr;
  uint8_t* ack = nullptr;
  uint64_t ok = 0, wrong = 0;
};

}  // namespace

int RunIwarpServer(const IwarpCliOptions& o) {
  Result<NetAddr> bind_addr = ParseNetAddr(o.bind);
  if (!bind_addr.ok() || bind_addr->v6) {
    std::fprintf(stderr, "opensrd rdma server: --bind: an IPv4 HOST:PORT is needed\n");
    return 2;
  }
  RcDeviceConfig dc;
  dc.protocol = rdma::RcProtocol::kIwarp;
  dc.local = *bind_addr;
  dc.max_connections = o.max_connections;
  // READs are ops too: no client may read more than --max-size at once, so with the IRD of 16
  // the READ responses a connection can make the server queue stay under 16 x --max-size.
  dc.max_read_bytes = o.max_size;
  dc.pcap = o.pcap;
  std::unique_ptr<RcDevice> dev;
  if (int rc = OpenDevice("server", dc, &dev); rc != 0) return rc;
  if (Status st = dev->Listen(); !st.ok()) {
    std::fprintf(stderr, "opensrd rdma server: listen %s: %s\n", o.bind.c_str(),
                 st.ToString().c_str());
    return 1;
  }
  signal(SIGINT, OnSignal);
  signal(SIGTERM, OnSignal);
  const PdHandle pd = dev->AllocPd();
  const CqHandle scq = dev->CreateCq(), rcq = dev->CreateCq();
  std::vector<uint8_t> region(o.region_bytes, 0);
  MemoryRegion mr =
      *dev->RegMr(pd, region.data(), region.size(),
                  rdma::kAccessLocalWrite | rdma::kAccessRemoteWrite | rdma::kAccessRemoteRead);
  std::vector<uint8_t> reply(kRegionInfoLen, 0);
  std::memcpy(reply.data(), kMagic, 4);
  PutBe(reply.data() + 4, 1, 4);
  PutBe(reply.data() + 8, Addr(region.data()), 8);
  PutBe(reply.data() + 16, region.size(), 8);
  PutBe(reply.data() + 24, mr.rkey, 4);
  PutBe(reply.data() + 28, kCredits, 4);

  std::map<QpNum, std::unique_ptr<ServerConn>> conns;
  uint64_t clients = 0, sends_ok = 0, sends_wrong = 0, rejected_budget = 0, rejected_size = 0;
  uint64_t recv_bytes = 0, recv_bytes_peak = 0;
  auto end_conn = [&](QpNum qp) {
    auto it = conns.find(qp);
    if (it == conns.end()) return;
    (void)dev->DestroyQp(qp);  // flushes the posted receives (ignored below: unknown QP)
    (void)dev->DeregMr(it->second->inbox_mr.lkey);
    recv_bytes -= it->second->inbox.size();
    conns.erase(it);
  };
  auto on_request = [&](const CmEvent& e) {
    // What the client asks for: the largest SEND it will post (older clients: --max-size).
    uint64_t want = o.max_size;
    const std::vector<uint8_t>& p = e.private_data;
    if (p.size() >= kRequestLen && std::memcmp(p.data(), kMagic, 4) == 0) {
      want = GetBe(p.data() + 8, 4);
    }
    const uint64_t need = kCredits * want + kAckLen;
    const std::string from = ToString(e.peer);
    if (want > o.max_size) {
      std::fprintf(stderr,
                   "opensrd rdma server: refusing %s: it asks for %llu-byte receives, over "
                   "--max-size %u\n",
                   from.c_str(), static_cast<unsigned long long>(want), o.max_size);
      ++rejected_size;
      (void)dev->Reject(e.request);
      return;
    }
    if (recv_bytes + need > o.recv_budget_bytes) {
      std::fprintf(stderr,
                   "opensrd rdma server: refusing %s: %u receives of %llu bytes would exceed "
                   "--recv-budget-mib (%llu of %llu bytes in use)\n",
                   from.c_str(), kCredits, static_cast<unsigned long long>(want),
                   static_cast<unsigned long long>(recv_bytes),
                   static_cast<unsigned long long>(o.recv_budget_bytes));
      ++rejected_budget;
      (void)dev->Reject(e.request);
      return;
    }
    Result<QpNum> qp = dev->CreateQp(pd, scq, rcq);
    if (!qp.ok()) {
      (void)dev->Reject(e.request);
      return;
    }
    auto sc = std::make_unique<ServerConn>();
    sc->peer = e.peer;
    sc->slot = static_cast<uint32_t>(want);
    sc->inbox.assign(need, 0);
    sc->ack = sc->inbox.data() + kCredits * want;
    sc->inbox_mr = *dev->RegMr(pd, sc->inbox.data(), sc->inbox.size(), rdma::kAccessLocalWrite);
    for (uint32_t s = 0; s < kCredits; ++s) {
      LocalSge sge{Addr(sc->inbox.data()) + s * want, sc->slot, sc->inbox_mr.lkey};
      (void)dev->PostRecv(*qp, {s, sge});
    }
    recv_bytes += need;
    recv_bytes_peak = std::max(recv_bytes_peak, recv_bytes);
    conns[*qp] = std::move(sc);
    if (Status st = dev->Accept(e.request, *qp, reply); !st.ok()) {
      std::fprintf(stderr, "opensrd rdma server: accept: %s\n", st.ToString().c_str());
      end_conn(*qp);
      return;
    }
    ++clients;
  };

  std::fprintf(stderr,
               "opensrd rdma server (iwarp) on %s: region %zu bytes, at most %u connections, "
               "receive budget %llu bytes\n",
               o.bind.c_str(), region.size(), o.max_connections,
               static_cast<unsigned long long>(o.recv_budget_bytes));
  int rc = 0;
  while (!g_stop) {
    if (Status st = dev->Poll(200); !st.ok()) {
      std::fprintf(stderr, "opensrd rdma server: %s\n", st.ToString().c_str());
      rc = 1;
      break;
    }
    for (CmEvent e; dev->PollCmEvent(&e);) {
      if (e.kind == CmEventKind::kConnectRequest) {
        on_request(e);
      } else if (e.kind == CmEventKind::kDisconnected) {
        // A peer that simply closed is the normal end; anything else is worth a line.
        if (e.reason.rfind("stream_closed", 0) != 0) {
          std::fprintf(stderr, "opensrd rdma server: connection ended: %s\n", e.reason.c_str());
        }
        end_conn(e.qp);
      }
    }
    WorkCompletion wcs[64];
    while (dev->PollCq(scq, wcs) > 0) {
    }  // the acks' completions: nothing to do
    for (size_t n; (n = dev->PollCq(rcq, wcs)) > 0;) {
      for (size_t i = 0; i < n; ++i) {
        const WorkCompletion& wc = wcs[i];
        auto it = conns.find(wc.qp);
        if (it == conns.end() || wc.status != WcStatus::kSuccess) continue;
        ServerConn& sc = *it->second;
        uint8_t* msg = sc.inbox.data() + wc.wr_id * sc.slot;
        const bool good = wc.byte_len >= 8 && CheckPattern(Get64(msg), msg + 8, wc.byte_len - 8);
        ++(good ? sc.ok : sc.wrong);
        ++(good ? sends_ok : sends_wrong);
        (void)dev->PostRecv(wc.qp, {wc.wr_id, {Addr(msg), sc.slot, sc.inbox_mr.lkey}});
        Put64(sc.ack, sc.ok);
        Put64(sc.ack + 8, sc.wrong);
        SendWr ack;
        ack.opcode = WrOpcode::kSend;
        ack.sge = {Addr(sc.ack), kAckLen, sc.inbox_mr.lkey};
        // The queue pair copies the ack into its output at once, so the buffer is reusable.
        (void)dev->PostSend(wc.qp, ack);
      }
    }
  }
  const rdma::RcDeviceStats st = dev->stats();
  nlohmann::json counters = nlohmann::json::parse(dev->CountersJson(), nullptr, false);
  if (o.json) {
    nlohmann::json j = {{"protocol", "iwarp"},
                        {"clients", clients},
                        {"sends_ok", sends_ok},
                        {"sends_wrong", sends_wrong},
                        {"terminates_sent", st.terminates_sent},
                        {"bytes_placed", counters.value("bytes_placed", uint64_t{0})},
                        {"connections_refused", st.connections_refused},
                        {"rejected_recv_budget", rejected_budget},
                        {"rejected_max_size", rejected_size},
                        {"recv_bytes_peak", recv_bytes_peak},
                        {"device", counters}};
    if (const auto pcap = nlohmann::json::parse(dev->CloseCapture()); !pcap.is_null()) {
      j["pcap"] = pcap;  // final: every record on disk
    }
    std::printf("%s\n", j.dump().c_str());
  }
  return rc;
}

namespace {

class IwarpClient {
 public:
  explicit IwarpClient(const IwarpCliOptions& o) : o_(o) {}

  int Run() {
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
    RcDeviceConfig dc;
    dc.protocol = rdma::RcProtocol::kIwarp;
    dc.pcap = o_.pcap;
    if (int rc = OpenDevice("client", dc, &dev_); rc != 0) return rc;
    signal(SIGINT, OnSignal);
    signal(SIGTERM, OnSignal);
    pd_ = dev_->AllocPd();
    scq_ = dev_->CreateCq();
    rcq_ = dev_->CreateCq();
    slots_ = static_cast<size_t>(o_.inflight);
    if (o_.op == "send") slots_ = std::min<size_t>(slots_, kCredits);
    local_.assign(slots_ * o_.size * 2 + slots_ * kAckLen, 0);
    lmr_ = *dev_->RegMr(pd_, local_.data(), local_.size(), rdma::kAccessLocalWrite);
    qp_ = *dev_->CreateQp(pd_, scq_, rcq_);
    // The request: the largest SEND this client posts, so the server sizes its receives.
    std::vector<uint8_t> pdata(kRequestLen, 0);
    std::memcpy(pdata.data(), kMagic, 4);
    PutBe(pdata.data() + 4, 1, 4);
    PutBe(pdata.data() + 8, o_.op == "send" ? o_.size : 0, 4);
    if (Status st = dev_->Connect(qp_, *remote, pdata); !st.ok()) {
      std::fprintf(stderr, "opensrd rdma client: %s\n", st.ToString().c_str());
      return 1;
    }
    return Print(Main());
  }

 private:
  uint8_t* Slot(size_t s) { return local_.data() + s * o_.size; }
  uint8_t* Check(size_t s) { return local_.data() + (slots_ + s) * o_.size; }
  uint8_t* AckBuf(size_t s) { return local_.data() + 2 * slots_ * o_.size + s * kAckLen; }
  uint64_t Remote(size_t s) const { return remote_va_ + s * o_.size; }
  static uint64_t SlotKey(size_t s) { return 0x1000 + s; }
  static constexpr uint64_t kVerifyId = ~0ull << 1;  // not an op slot: Finish ignores it

  // One event-loop turn: the device's I/O (waiting up to `ms`), then events and completions.
  bool Step(int ms) {
    if (Status st = dev_->Poll(ms); !st.ok()) return Fail(st.ToString());
    for (CmEvent e; dev_->PollCmEvent(&e);) {
      if (e.kind == CmEventKind::kEstablished) {
        established_ = true;
        peer_pdata_ = e.private_data;
      } else {
        ended_ = true;
        const char* what = e.kind == CmEventKind::kRejected      ? "rejected by the server: "
                           : e.kind == CmEventKind::kUnreachable ? "unreachable: "
                                                                 : "";
        Fail(what + e.reason);
      }
    }
    WorkCompletion wcs[64];
    for (CqHandle cq : {scq_, rcq_}) {
      for (size_t n; (n = dev_->PollCq(cq, wcs)) > 0;) {
        for (size_t i = 0; i < n; ++i) OnCompletion(wcs[i]);
      }
    }
    return !ended_;
  }
  bool Fail(const std::string& why) {
    if (first_error_.empty()) first_error_ = why;
    ++errors_;
    return false;
  }
  template <typename F>
  bool DriveUntil(F done, uint64_t timeout_ms) {
    uint64_t end = NowNs() + timeout_ms * 1'000'000;
    bool signalled = false;
    while (!done()) {
      if (!Step(50)) return false;
      if (g_stop && !signalled) {  // the user wants out: one more second at most
        signalled = true;
        end = std::min(end, NowNs() + 1'000'000'000);
      }
      if (NowNs() > end) {
        return Fail(signalled ? "no answer before the signal's grace second ran out" : "timed out");
      }
    }
    return true;
  }

  // A server that stops answering (hung, or stopped) leaves READs and SENDs unanswered while
  // TCP keeps the connection up, so the loop would wait for ever, deaf to SIGTERM: it gives up
  // when nothing completed for kStallNs, or 1 s after a signal. True to go on waiting.
  bool StillWaiting(uint64_t& signal_ns) {
    constexpr uint64_t kStallNs = 10'000'000'000;
    if (g_stop && signal_ns == 0) signal_ns = NowNs();
    if (outstanding_ == 0) return true;
    const bool after_signal = signal_ns != 0 && NowNs() - signal_ns > 1'000'000'000;
    if (!after_signal && NowNs() - progress_ns_ <= kStallNs) return true;
    const std::string why = std::to_string(outstanding_) + " operations got no answer " +
                            (after_signal ? "before the signal's grace second ran out"
                                          : "for 10 s (is the server gone?)");
    if (first_error_.empty()) first_error_ = why;  // an earlier error stays the first
    errors_ += outstanding_;
    std::fprintf(stderr, "rdma client: %s\n", why.c_str());
    return false;
  }

  void Post(WrOpcode op, size_t s, uint8_t* local, uint32_t len, bool measured) {
    SendWr w;
    w.opcode = op;
    w.sge = {Addr(local), len, lmr_.lkey};
    w.remote_addr = Remote(s);
    w.rkey = rkey_;
    // wr_id: slot, and whether this WR ends the op (a WRITE is followed by its flush READ).
    w.wr_id = s << 1 | (op == WrOpcode::kRdmaWrite ? 0 : 1);
    if (Status st = dev_->PostSend(qp_, w); !st.ok()) Fail(st.ToString());
    if (op == WrOpcode::kRdmaWrite) {
      SendWr flush = w;
      flush.opcode = WrOpcode::kRdmaRead;
      flush.sge = {Addr(Check(s)), 0, lmr_.lkey};
      flush.wr_id = s << 1 | 1;
      if (Status st = dev_->PostSend(qp_, flush); !st.ok()) Fail(st.ToString());
    }
    busy_[s] = true;
    measured_[s] = measured;
    posted_ns_[s] = NowNs();
    ++outstanding_;
  }

  void OnCompletion(const WorkCompletion& wc) {
    progress_ns_ = NowNs();
    if (wc.wr_id == kVerifyId && wc.opcode == WcOpcode::kRdmaRead) --verify_reads_;
    if (wc.status != WcStatus::kSuccess) {
      Fail(std::string("completion: ") + rdma::WcStatusName(wc.status));
      if (wc.opcode != WcOpcode::kRecv && (wc.wr_id & 1) && wc.wr_id != kVerifyId) {
        Finish(wc.wr_id >> 1, false);
      }
      return;
    }
    if (wc.opcode == WcOpcode::kRecv) {  // a SEND's ack: the op is done
      const size_t s = wc.wr_id;
      acked_ok_ = std::max(acked_ok_, Get64(AckBuf(s)));
      acked_wrong_ = std::max(acked_wrong_, Get64(AckBuf(s) + 8));
      (void)dev_->PostRecv(qp_, {s, {Addr(AckBuf(s)), kAckLen, lmr_.lkey}});
      if (!pending_sends_.empty()) {
        Finish(pending_sends_.front(), true);
        pending_sends_.erase(pending_sends_.begin());
      }
      return;
    }
    if (!(wc.wr_id & 1) || wc.wr_id == kVerifyId) return;  // a WRITE handed to TCP
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
    if (s >= busy_.size() || !busy_[s]) return;
    busy_[s] = false;
    --outstanding_;
    if (ok && measured_[s]) {
      lat_.AddNs(NowNs() - posted_ns_[s]);
      ++ops_;
      bytes_ += o_.size;
    }
  }

  int Main() {
    op_ = o_.op == "write"  ? WrOpcode::kRdmaWrite
          : o_.op == "read" ? WrOpcode::kRdmaRead
                            : WrOpcode::kSend;
    if (op_ == WrOpcode::kSend) {  // posted before the connection: the device keeps them
      for (size_t s = 0; s < slots_; ++s) {
        (void)dev_->PostRecv(qp_, {s, {Addr(AckBuf(s)), kAckLen, lmr_.lkey}});
      }
    }
    if (!DriveUntil([&] { return established_; }, 10'000)) return 1;
    const std::vector<uint8_t>& pd = peer_pdata_;
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
    uint64_t signal_ns = 0;
    progress_ns_ = NowNs();
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
      if (!StillWaiting(signal_ns)) break;
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
        r.wr_id = kVerifyId;
        if (dev_->PostSend(qp_, r).ok()) ++verify_reads_;
      }
      if (!DriveUntil([&] { return verify_reads_ == 0; }, 10'000) || errors_) return 1;
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
    const rdma::RcDeviceStats st = dev_->stats();
    const nlohmann::json counters = nlohmann::json::parse(dev_->CountersJson(), nullptr, false);
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
          {"fpdus_sent", st.packets_sent},
          {"fpdus_received", st.packets_received}};
      if (counters.contains("last_terminate_received")) {
        j["terminate"] = counters["last_terminate_received"];
      }
      if (!first_error_.empty()) j["error"] = first_error_;
      if (const auto pcap = nlohmann::json::parse(dev_->CloseCapture()); !pcap.is_null()) {
        j["pcap"] = pcap;  // final: every record on disk
      }
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
  std::unique_ptr<RcDevice> dev_;
  PdHandle pd_ = 0;
  CqHandle scq_ = 0, rcq_ = 0;
  QpNum qp_ = 0;
  MemoryRegion lmr_;
  bool established_ = false, ended_ = false;
  std::vector<uint8_t> peer_pdata_;
  size_t slots_ = 1;
  std::vector<uint8_t> local_;
  uint64_t remote_va_ = 0, remote_len_ = 0;
  uint32_t rkey_ = 0;
  WrOpcode op_ = WrOpcode::kRdmaWrite;
  std::vector<bool> busy_, measured_;
  std::vector<uint64_t> posted_ns_;
  std::vector<size_t> pending_sends_;
  uint64_t outstanding_ = 0, ops_ = 0, bytes_ = 0, errors_ = 0, bad_ = 0, verify_reads_ = 0;
  uint64_t acked_ok_ = 0, acked_wrong_ = 0;
  uint64_t start_ns_ = 0, end_ns_ = 0;
  uint64_t progress_ns_ = 0;  // when the last completion arrived
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
