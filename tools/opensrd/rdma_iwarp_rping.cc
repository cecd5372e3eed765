// `opensrd rdma server|client --protocol iwarp --rping`: librdmacm's rping exchange over
// iWARP, so Linux siw's `rping -s` / `rping -c -V` are the peers. Written against the public
// verbs API (RcDevice, include/opensrd/rdma.h) as an rdma_cm application is.
//
// rping over iWARP (rdma_cm adds no header of its own to MPA private data on iWARP; rping sets
// none): after the MPA exchange the client SENDs a 16-byte advertisement {buf (BE64), rkey
// (BE32), size (BE32)} naming its start buffer; the server RDMA READs it, SENDs 16 bytes ("go
// on"), the client SENDs a second advertisement naming its empty buffer, the server RDMA
// WRITEs the data there (strlen + 1 bytes) and SENDs 16 bytes again; with -V the client
// compares the two buffers. One loop per ping; each side keeps one 16-byte receive posted.
// The client's start buffer holds rping's text ("rdma-ping-%d: " then the letters A..z
// rotating per ping), so either side's output can be compared with rping's own.
#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <deque>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "opensrd/rdma.h"
#include "tools/opensrd/latency.h"
#include "tools/opensrd/rdma_iwarp_cli.h"

namespace opensrd::cli {
namespace {

using rdma::CmEvent;
using rdma::CmEventKind;
using rdma::SendWr;
using rdma::WcOpcode;
using rdma::WcStatus;
using rdma::WorkCompletion;
using rdma::WrOpcode;

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

// One device, one QP and its registered buffers, driven step by step.
class RpingPeer {
 public:
  explicit RpingPeer(const IwarpCliOptions& o) : o_(o) {}

  // Opens the device on `local` (port 0 for a client) and registers the buffers.
  bool Open(const NetAddr& local) {
    rdma::RcDeviceConfig dc;
    dc.protocol = rdma::RcProtocol::kIwarp;
    dc.local = local;
    dc.max_connections = 1;
    dc.ird = 1;  // what rping asks for (responder_resources, initiator_depth)
    dc.ord = 1;
    dc.pcap = o_.pcap;
    Result<std::unique_ptr<rdma::RcDevice>> d = rdma::RcDevice::Open(dc);
    if (!d.ok()) return Fail(d.status().ToString());
    dev_ = std::move(d.value());
    pd_ = dev_->AllocPd();
    cq_ = dev_->CreateCq();
    // [recv 16][send 16][start: size][rdma: size]
    mem_.assign(2 * kAdvLen + 2 * size_t{o_.size}, 0);
    Result<rdma::MemoryRegion> mr =
        dev_->RegMr(pd_, mem_.data(), mem_.size(),
                    rdma::kAccessLocalWrite | rdma::kAccessRemoteRead | rdma::kAccessRemoteWrite);
    if (!mr.ok()) return Fail(mr.status().ToString());
    mr_ = *mr;
    Result<rdma::QpNum> q = dev_->CreateQp(pd_, cq_, cq_);
    if (!q.ok()) return Fail(q.status().ToString());
    qp_ = *q;
    return true;
  }
  rdma::RcDevice& dev() { return *dev_; }
  rdma::QpNum qp() const { return qp_; }
  uint8_t* recv_buf() { return mem_.data(); }
  uint8_t* send_buf() { return mem_.data() + kAdvLen; }
  uint8_t* start_buf() { return mem_.data() + 2 * kAdvLen; }
  uint8_t* rdma_buf() { return start_buf() + o_.size; }
  uint64_t Addr(uint8_t* p) const { return reinterpret_cast<uintptr_t>(p); }

  void PostRecv() { (void)dev_->PostRecv(qp_, {1, {Addr(recv_buf()), kAdvLen, mr_.lkey}}); }
  void Send() {
    SendWr w;
    w.wr_id = 2;
    w.opcode = WrOpcode::kSend;
    w.sge = {Addr(send_buf()), kAdvLen, mr_.lkey};
    (void)dev_->PostSend(qp_, w);
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
    (void)dev_->PostSend(qp_, w);
  }

  // Drives the device until a connection event for our QP (or, with `request`, a connection
  // request) arrives; false on timeout.
  bool WaitEvent(CmEvent* out, bool request, int timeout_ms = 30'000) {
    const uint64_t end = NowNs() + uint64_t(timeout_ms) * 1'000'000;
    for (;;) {
      while (!events_.empty()) {
        CmEvent e = std::move(events_.front());
        events_.pop_front();
        if (request ? e.kind == CmEventKind::kConnectRequest : e.qp == qp_) {
          *out = std::move(e);
          return true;
        }
      }
      if (NowNs() > end) return Fail("timed out waiting for the connection");
      if (!Step(20)) return false;
    }
  }

  // Drives the device until a completion with `want` opcode (and success) arrives; false on
  // error, disconnect or timeout. Other successful completions are skipped.
  bool Wait(WcOpcode want, int timeout_ms = 30'000) {
    const uint64_t end = NowNs() + uint64_t(timeout_ms) * 1'000'000;
    for (;;) {
      WorkCompletion wc;
      while (dev_->PollCq(cq_, {&wc, 1}) == 1) {
        if (wc.status == WcStatus::kFlushed && !disconnect_reason_.empty()) {
          return Fail(disconnect_reason_);  // why the connection ended says more than "flushed"
        }
        if (wc.status != WcStatus::kSuccess) {
          return Fail(std::string("completion ") + rdma::WcStatusName(wc.status));
        }
        if (wc.opcode == want) return true;
      }
      if (!disconnect_reason_.empty()) return Fail(disconnect_reason_);
      if (NowNs() > end) return Fail("timed out");
      if (!Step(50)) return false;
    }
  }
  bool Fail(const std::string& why) {
    if (error_.empty()) error_ = why;
    return false;
  }
  const std::string& error() const { return error_; }
  bool disconnected() const { return !disconnect_reason_.empty(); }
  // Lets queued bytes reach the socket before the device closes.
  void Drain() {
    for (int i = 0; i < 20; ++i) (void)dev_->Poll(5);
  }
  nlohmann::json Counters() const { return nlohmann::json::parse(dev_->CountersJson()); }

 private:
  bool Step(int timeout_ms) {
    Status st = dev_->Poll(timeout_ms);
    if (!st.ok()) return Fail(st.ToString());
    for (CmEvent e; dev_->PollCmEvent(&e);) {
      if (e.qp == qp_ && e.kind == CmEventKind::kDisconnected) {
        disconnect_reason_ = e.reason.empty() ? "connection closed" : e.reason;
      }
      events_.push_back(std::move(e));
    }
    return true;
  }

  const IwarpCliOptions& o_;
  std::unique_ptr<rdma::RcDevice> dev_;
  rdma::PdHandle pd_ = 0;
  rdma::CqHandle cq_ = 0;
  rdma::QpNum qp_ = 0;
  std::vector<uint8_t> mem_;
  rdma::MemoryRegion mr_;
  std::deque<CmEvent> events_;
  std::string disconnect_reason_;
  std::string error_;
};

void Report(const IwarpCliOptions& o, const char* role, uint64_t pings, uint64_t bad, bool ok,
            const std::string& error, LatencyRecorder& lat, RpingPeer& p) {
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
  const nlohmann::json c = p.Counters();
  if (c.contains("last_terminate_received")) j["terminate_received"] = c["last_terminate_received"];
  if (c.contains("last_terminate_sent")) j["terminate_sent"] = c["last_terminate_sent"];
  if (const auto pcap = nlohmann::json::parse(p.dev().CloseCapture()); !pcap.is_null()) {
    j["pcap"] = pcap;
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
  RpingPeer p(o);
  if (!p.Open(NetAddr{})) {
    std::fprintf(stderr, "opensrd rdma client: %s\n", p.error().c_str());
    return 1;
  }
  const uint64_t count = o.count ? o.count : 10;
  uint64_t pings = 0, bad = 0;
  LatencyRecorder lat;
  p.PostRecv();
  bool ok = p.dev().Connect(p.qp(), *remote, {}).ok() || p.Fail("connect refused by the device");
  CmEvent e;
  ok = ok && p.WaitEvent(&e, false);
  if (ok && e.kind != CmEventKind::kEstablished) {
    ok = p.Fail(std::string("connection ") + rdma::CmEventName(e.kind) + ": " + e.reason);
  }
  // Linux siw as responder (no RTR negotiated) was seen to lose a SEND that arrived right
  // after its MPA reply: TCP acknowledged it, rping never got the receive, and nothing else
  // was coming to wake siw up again (docs/RDMA.md). Holding the first FPDU back a little,
  // which an initiator may always do, avoids that window.
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
  p.Drain();
  const bool verified = ok && bad == 0 && pings == count;
  Report(o, "client", pings, bad, verified, p.error(), lat, p);
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
  RpingPeer p(o);
  if (!p.Open(*bind_addr) || !p.dev().Listen().ok()) {
    std::fprintf(stderr, "opensrd rdma server: listen %s: %s\n", o.bind.c_str(),
                 p.error().empty() ? "cannot listen" : p.error().c_str());
    return 1;
  }
  std::fprintf(stderr, "opensrd rdma server (iwarp, rping) on %s\n", o.bind.c_str());
  uint64_t pings = 0;
  LatencyRecorder lat;
  CmEvent req;
  if (!p.WaitEvent(&req, true, 600'000)) {
    Report(o, "server", 0, 0, false, p.error(), lat, p);
    return 1;
  }
  p.PostRecv();
  bool ok = p.dev().Accept(req.request, p.qp(), {}).ok() || p.Fail("accept refused");
  for (; ok;) {
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
  p.Drain();
  // The client ends the session by closing the connection (no TERMINATE either way); anything
  // else is an error.
  const nlohmann::json c = p.Counters();
  const bool clean = p.disconnected() && !c.contains("last_terminate_received") &&
                     !c.contains("last_terminate_sent");
  Report(o, "server", pings, 0, clean && pings > 0, clean ? "" : p.error(), lat, p);
  return clean && pings > 0 ? 0 : 1;
}

}  // namespace opensrd::cli
