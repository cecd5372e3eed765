// `opensrd rdma server|client`: native RDMA (datagram QPs over SRD, RdmaDevice) on real UDP
// sockets. The server registers a region and serves it on its well-known QP 1; a client sends a
// HELLO (SEND_WITH_IMM kHello) and gets the region's address, rkey and length back, then runs
// WRITE, READ, SEND or FETCH_ADD against it and verifies the result:
//   write:  at the end every slot written is read back and checked against its last pattern;
//   read:   the slots are first written (not timed), every READ's data is checked;
//   send:   every SEND carries [key: 8 bytes][pattern of key]; the server checks each and, on
//           REPORT_REQ, answers with how many arrived and how many were wrong;
//   atomic: FETCH_ADD 1 on a counter; the old values returned must be distinct and
//           consecutive (each add applied exactly once).
// RoCEv2 and iWARP are refused with exit 2 ("not yet"). Thread: one, driving the UdpEndpoint.
#include "tools/opensrd/rdma_cli.h"

#include <signal.h>
#include <sys/resource.h>
#include <CLI/CLI.hpp>

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <memory>
#include <nlohmann/json.hpp>
#include <set>
#include <string>
#include <vector>

#include "common/pattern.h"
#include "opensrd/rdma.h"
#include "tools/opensrd/capture.h"
#include "tools/opensrd/commands.h"
#include "tools/opensrd/dma_options.h"
#include "tools/opensrd/latency.h"
#include "tools/opensrd/metrics.h"
#include "tools/opensrd/rdma_iwarp_cli.h"
#include "tools/opensrd/rdma_roce_cli.h"
#include "transport/udp_endpoint.h"

namespace opensrd::cli {
namespace {

using namespace opensrd::rdma;

// Control messages are SEND_WITH_IMM with these immediates; data SENDs carry none.
constexpr uint32_t kHello = 0x0D5A0001, kHelloReply = 0x0D5A0002;
constexpr uint32_t kReportReq = 0x0D5A0003, kReport = 0x0D5A0004;
constexpr size_t kCtlLen = 32;
constexpr int kInbox = 32;  // server receives (SENDs of data and control)
constexpr QpNum kServerQp = 1;

volatile sig_atomic_t g_stop = 0;
void OnSignal(int) {
  g_stop = 1;
}

struct Options {
  std::string bind, connect, protocol = "srd", op = "write", pcap, metrics;
  uint32_t size = 4096;
  uint64_t count = 0;
  double duration_s = 0;
  int inflight = 16;
  bool json = false;
  bool bad_rkey = false;
  uint64_t region_bytes = 64u << 20;
  uint32_t max_size = 1u << 20;
  DmaCliOptions dma;  // --dma: the transport's and the executor's copies (memcpy or the engine)
  bool rping = false;
  uint32_t max_connections = 16;  // roce and iwarp server
  uint64_t recv_budget_mib = 64;  // roce and iwarp server
};

void Put64(uint8_t* p, uint64_t v) {
  std::memcpy(p, &v, 8);
}
uint64_t Get64(const uint8_t* p) {
  uint64_t v;
  std::memcpy(&v, p, 8);
  return v;
}

nlohmann::json CpuJson() {
  std::string model = "unknown";
  std::ifstream f("/proc/cpuinfo");
  for (std::string line; std::getline(f, line);) {
    if (line.rfind("model name", 0) == 0) {
      model = line.substr(line.find(':') + 2);
      break;
    }
  }
  rusage ru{};
  getrusage(RUSAGE_SELF, &ru);
  auto s = [](timeval t) { return static_cast<double>(t.tv_sec) + t.tv_usec / 1e6; };
  return {{"model", model}, {"user_s", s(ru.ru_utime)}, {"sys_s", s(ru.ru_stime)}};
}

// The device's own counters, after the endpoint's in a --metrics scrape.
void AddDeviceMetrics(const DeviceStats& st, std::vector<ExtraMetric>& out) {
  const struct {
    const char* name;
    uint64_t v;
    const char* help;
  } plain[] = {
      {"opensrd_rdma_requests_sent_total", st.requests_sent, "RDMA requests posted to the wire."},
      {"opensrd_rdma_requests_executed_total", st.requests_executed,
       "RDMA requests executed as the target."},
      {"opensrd_rdma_naks_sent_total", st.naks_sent, "Requests answered with a NAK."},
      {"opensrd_rdma_rnr_naks_sent_total", st.rnr_naks_sent,
       "Requests refused: no receive posted (RNR)."},
      {"opensrd_rdma_rnr_retries_total", st.rnr_retries, "Requests retried after an RNR NAK."},
      {"opensrd_rdma_malformed_dropped_total", st.malformed_dropped,
       "Messages that were not a valid native RDMA header."},
      {"opensrd_rdma_placed_direct_total", st.placed_direct,
       "Messages placed straight into registered memory."},
  };
  for (const auto& m : plain)
    out.push_back({m.name, "counter", m.help, "", static_cast<double>(m.v)});
}

// One UdpEndpoint and its RdmaDevice, driven together.
struct Node {
  std::unique_ptr<PcapWriter> capture;
  std::unique_ptr<UdpEndpoint> udp;
  std::unique_ptr<RdmaDevice> dev;
  std::unique_ptr<MetricsServer> metrics;  // --metrics: published from Step, never blocks
  PdHandle pd = 0;
  CqHandle cq = 0;
  QpNum qp = 0;

  // `peer_side`: the address whose path MTU decides the packet size (AutoMaxPayload).
  Status Open(const NetAddr& local, const NetAddr& peer_side, const Options& o,
              const char* command) {
    const uint32_t max_message = o.max_size;
    const std::string& pcap = o.pcap;
    const std::string& metrics_at = o.metrics;
    if (!metrics_at.empty()) {
      Result<std::unique_ptr<MetricsServer>> m = MetricsServer::Start(metrics_at, command);
      if (!m.ok()) return m.status();
      metrics = std::move(m.value());
    }
    Result<std::unique_ptr<PcapWriter>> c = OpenCapture(pcap);
    if (!c.ok()) return c.status();
    capture = std::move(c.value());
    UdpEndpointOptions uo;
    uo.local = {local};
    uo.endpoint.max_payload = static_cast<uint16_t>(AutoMaxPayload(peer_side));
    uo.endpoint.max_message = max_message + 64;
    if (Status d = ApplyDmaOptions(o.dma, uo.endpoint); !d.ok()) return d;
    uo.pcap = capture ? capture->NewSource() : nullptr;
    Result<std::unique_ptr<UdpEndpoint>> u = UdpEndpoint::Create(uo);
    if (!u.ok()) return u.status();
    udp = std::move(u.value());
    DeviceConfig dc;
    dc.max_message = max_message;
    dc.recv_pool = 32;
    dev = std::make_unique<RdmaDevice>(udp->endpoint(), dc);
    pd = dev->AllocPd();
    cq = dev->CreateCq();
    Result<QpNum> q = dev->CreateQp(pd, cq, cq);
    if (!q.ok()) return q.status();
    qp = *q;
    return Status::Ok();
  }
  // One driving step; blocks up to `wait_us` when idle.
  Status Step(Micros wait_us) {
    const bool busy = dev->Busy();
    Result<size_t> r = udp->Poll(busy ? 0 : wait_us);
    if (!r.ok()) return r.status();
    if (dev->Progress(udp->NowNs()) > 0) {
      Result<size_t> again = udp->Poll(0);  // let the answers and retries leave now
      if (!again.ok()) return again.status();
    }
    if (metrics)
      metrics->MaybePublish(*udp, false, [this](std::vector<ExtraMetric>& out) {
        AddDeviceMetrics(dev->stats(), out);
      });
    return Status::Ok();
  }
};

// ---------------------------------------------------------------------------------------------
int RunServer(const Options& o) {
  Result<NetAddr> bind = ParseNetAddr(o.bind);
  if (!bind.ok()) {
    std::fprintf(stderr, "opensrd rdma server: --bind: %s\n", bind.status().message().c_str());
    return 2;
  }
  Node n;
  if (Status s = n.Open(*bind, *bind, o, "rdma_server"); !s.ok()) {
    std::fprintf(stderr, "opensrd rdma server: %s\n", s.ToString().c_str());
    return s.code() == Code::kInvalidArgument ? 2 : 1;
  }
  std::vector<uint8_t> region(o.region_bytes, 0);
  const uint32_t all =
      kAccessLocalWrite | kAccessRemoteWrite | kAccessRemoteRead | kAccessRemoteAtomic;
  MemoryRegion mr = n.dev->RegMr(n.pd, region.data(), region.size(), all).value();
  // Receives: kInbox slots of max_size. Control and data SENDs share the QP's receive queue,
  // which hands out receives in posting order, so every slot must hold the largest message.
  std::vector<uint8_t> inbox(size_t{kInbox} * o.max_size);
  MemoryRegion imr = n.dev->RegMr(n.pd, inbox.data(), inbox.size(), kAccessLocalWrite).value();
  auto post = [&](uint64_t slot) {
    uint8_t* at = inbox.data() + slot * o.max_size;
    (void)n.dev->PostRecv(n.qp, {slot, {reinterpret_cast<uintptr_t>(at), o.max_size, imr.lkey}});
    return at;
  };
  std::vector<uint8_t*> slot_at;
  for (uint64_t s = 0; s < kInbox; ++s) slot_at.push_back(post(s));
  // Replies (HELLO_REPLY, REPORT) go out of their own small region, one slot per reply in use.
  std::vector<uint8_t> out(64 * kCtlLen);
  MemoryRegion omr = n.dev->RegMr(n.pd, out.data(), out.size(), 0).value();
  uint64_t next_out = 0;
  uint64_t sends_ok = 0, sends_bad = 0, clients = 0;

  struct sigaction sa {};
  sa.sa_handler = OnSignal;
  sigaction(SIGINT, &sa, nullptr);
  sigaction(SIGTERM, &sa, nullptr);
  std::fprintf(stderr, "opensrd rdma server listening on %s (srd): QP %u, region %llu bytes\n",
               ToString(n.udp->local_address(0)).c_str(), n.qp,
               static_cast<unsigned long long>(region.size()));
  WorkCompletion wc[32];
  while (!g_stop) {
    if (Status s = n.Step(100000); !s.ok()) {
      std::fprintf(stderr, "opensrd rdma server: %s\n", s.ToString().c_str());
      return 1;
    }
    size_t k;
    while ((k = n.dev->PollCq(n.cq, wc)) > 0) {
      for (size_t i = 0; i < k; ++i) {
        const WorkCompletion& w = wc[i];
        if (w.opcode != WcOpcode::kRecv) continue;  // our replies' completions
        const uint8_t* buf = slot_at[w.wr_id];
        if (w.status == WcStatus::kSuccess && !w.with_imm) {  // a data SEND: check it
          const bool good = w.byte_len >= 8 && CheckPattern(Get64(buf), buf + 8, w.byte_len - 8);
          (good ? sends_ok : sends_bad)++;
        } else if (w.status == WcStatus::kSuccess && (w.imm == kHello || w.imm == kReportReq)) {
          uint8_t* r = out.data() + (next_out++ % 64) * kCtlLen;
          uint32_t imm = kReport;
          if (w.imm == kHello) {
            ++clients;
            imm = kHelloReply;
            Put64(r, reinterpret_cast<uintptr_t>(region.data()));
            Put64(r + 8, region.size());
            Put64(r + 16, mr.rkey);
          } else {
            Put64(r, sends_ok);
            Put64(r + 8, sends_bad);
            Put64(r + 16, 0);
          }
          SendWr sw;
          sw.opcode = WrOpcode::kSendWithImm;
          sw.imm = imm;
          sw.sge = {reinterpret_cast<uintptr_t>(r), 24, omr.lkey};
          sw.peer = w.src_peer;
          sw.dest_qp = w.src_qp;
          (void)n.dev->PostSend(n.qp, sw, n.udp->NowNs());
        }
        post(w.wr_id);
      }
    }
  }
  const DeviceStats st = n.dev->stats();
  nlohmann::json j = {{"clients", clients},
                      {"requests_executed", st.requests_executed},
                      {"naks_sent", st.naks_sent},
                      {"sends_verified", sends_ok},
                      {"sends_bad", sends_bad},
                      {"malformed_dropped", st.malformed_dropped},
                      {"dma",
                       {{"mode", o.dma.dma},
                        {"executor_descriptors", st.copy_descriptors},
                        {"transport_descriptors", n.udp->endpoint().copy_stats().descriptors}}},
                      {"cpu", CpuJson()}};
  if (n.capture) j["pcap"] = FinishCapture(n.capture.get());
  if (o.json) std::printf("%s\n", j.dump().c_str());
  return sends_bad == 0 ? 0 : 1;
}

// ---------------------------------------------------------------------------------------------
class Client {
 public:
  explicit Client(const Options& o) : o_(o) {}

  int Run() {
    Result<NetAddr> remote = ParseNetAddr(o_.connect);
    if (!remote.ok()) {
      std::fprintf(stderr, "opensrd rdma client: --connect: %s\n",
                   remote.status().message().c_str());
      return 2;
    }
    if (o_.size > o_.max_size || (o_.op == "atomic" && o_.size != 8)) {
      std::fprintf(stderr, "opensrd rdma client: --size must be %s\n",
                   o_.op == "atomic" ? "8 for atomics" : "at most --max-size");
      return 2;
    }
    NetAddr local;  // any address, ephemeral port
    local.v6 = remote->v6;
    if (Status s = n_.Open(local, *remote, o_, "rdma_client"); !s.ok()) {
      std::fprintf(stderr, "opensrd rdma client: %s\n", s.ToString().c_str());
      return s.code() == Code::kInvalidArgument ? 2 : 1;
    }
    Result<PeerId> peer = n_.udp->endpoint().AddPeer({{0, *remote}}, n_.udp->NowNs());
    if (!peer.ok()) {
      std::fprintf(stderr, "opensrd rdma client: %s\n", peer.status().ToString().c_str());
      return 1;
    }
    peer_ = *peer;
    slots_ = static_cast<size_t>(o_.inflight);
    local_.assign(slots_ * std::max<size_t>(o_.size, 8) * 2 + 2 * kCtlLen, 0);
    lmr_ = n_.dev->RegMr(n_.pd, local_.data(), local_.size(), kAccessLocalWrite).value();
    if (!Hello()) return 1;
    const uint64_t need = o_.op == "atomic" ? 8 : uint64_t{o_.size} * slots_;
    if (need > remote_len_) {
      std::fprintf(stderr,
                   "opensrd rdma client: the server's region (%llu bytes) is smaller "
                   "than --size x --inflight\n",
                   static_cast<unsigned long long>(remote_len_));
      return 2;
    }
    // From here a signal ends the run with a report (Measure and DriveUntil watch g_stop).
    struct sigaction sa {};
    sa.sa_handler = OnSignal;
    sigaction(SIGINT, &sa, nullptr);
    sigaction(SIGTERM, &sa, nullptr);
    const int rc = Measure();
    return Print(rc);
  }

 private:
  uint8_t* Slot(size_t s) { return local_.data() + s * std::max<size_t>(o_.size, 8); }
  uint8_t* Check(size_t s) { return Slot(slots_ + s); }  // second half: read-back buffers
  uint8_t* Ctl(int i) { return local_.data() + local_.size() - 2 * kCtlLen + i * kCtlLen; }

  // Drives until `done` or `timeout_us`; false on timeout or socket failure. After SIGINT or
  // SIGTERM it waits one more second at most: enough to finish what is in flight and verify
  // against a live server, and a bound when the server stopped answering.
  template <typename F>
  bool DriveUntil(F done, Micros timeout_us) {
    Micros end = n_.udp->Now() + timeout_us;
    bool signalled = false;
    while (!done()) {
      if (g_stop && !signalled) {
        signalled = true;
        end = std::min(end, n_.udp->Now() + 1'000'000);
      }
      if (n_.udp->Now() > end) {
        if (signalled && first_error_.empty()) first_error_ = kGraceRanOut;
        return false;
      }
      if (!n_.Step(1000).ok()) return false;
      Drain();
    }
    return true;
  }
  void Drain() {
    WorkCompletion wc[64];
    size_t k;
    while ((k = n_.dev->PollCq(n_.cq, wc)) > 0) {
      for (size_t i = 0; i < k; ++i) OnCompletion(wc[i]);
    }
  }

  // Control exchange: SEND_WITH_IMM `imm` to the server's QP 1, wait for its reply in Ctl(1).
  bool Control(uint32_t imm, uint32_t want) {
    ctl_reply_ = 0;
    (void)n_.dev->PostRecv(
        n_.qp,
        {kCtlWr, {reinterpret_cast<uintptr_t>(Ctl(1)), static_cast<uint32_t>(kCtlLen), lmr_.lkey}});
    SendWr w;
    w.wr_id = kCtlWr;
    w.opcode = WrOpcode::kSendWithImm;
    w.imm = imm;
    w.sge = {reinterpret_cast<uintptr_t>(Ctl(0)), 8, lmr_.lkey};
    w.peer = peer_;
    w.dest_qp = kServerQp;
    if (!n_.dev->PostSend(n_.qp, w, n_.udp->NowNs()).ok()) return false;
    return DriveUntil([&] { return ctl_reply_ == want; }, 5'000'000);
  }
  bool Hello() {
    if (!Control(kHello, kHelloReply)) {
      std::fprintf(stderr,
                   "opensrd rdma client: no answer from %s (is `opensrd rdma server` "
                   "running there?)\n",
                   o_.connect.c_str());
      return false;
    }
    remote_va_ = Get64(Ctl(1));
    remote_len_ = Get64(Ctl(1) + 8);
    rkey_ = static_cast<uint32_t>(Get64(Ctl(1) + 16));
    return true;
  }

  void OnCompletion(const WorkCompletion& w) {
    if (w.wr_id == kCtlWr) {
      if (w.opcode == WcOpcode::kRecv && w.status == WcStatus::kSuccess) ctl_reply_ = w.imm;
      return;
    }
    const size_t slot = static_cast<size_t>(w.wr_id % slots_);
    --outstanding_;
    busy_[slot] = false;
    if (w.status != WcStatus::kSuccess) {
      ++errors_;
      if (first_error_.empty()) first_error_ = WcStatusName(w.status);
      return;
    }
    if (!warmup_) {
      lat_.AddNs(NowNs() - posted_ns_[slot]);
      ++ops_;
      bytes_ += o_.size;
    }
    if (o_.op == "read" && !warmup_ && !CheckPattern(SlotKey(slot), Slot(slot), o_.size)) {
      ++bad_;
    }
    if (o_.op == "atomic") olds_.push_back(Get64(Slot(slot)));
  }
  uint64_t SlotKey(size_t slot) const { return 0x5EED0000ull + slot; }

  void Post(size_t slot, WrOpcode op, uint64_t wr_id, uint8_t* local) {
    SendWr w;
    w.wr_id = wr_id;
    w.opcode = op;
    w.sge = {reinterpret_cast<uintptr_t>(local), o_.size, lmr_.lkey};
    w.peer = peer_;
    w.dest_qp = kServerQp;
    w.remote_addr = remote_va_ + (op == WrOpcode::kAtomicFetchAdd ? 0 : slot * o_.size);
    w.rkey = rkey_;
    w.compare_add = 1;
    busy_[slot] = true;
    ++outstanding_;
    posted_ns_[slot] = NowNs();
    if (!n_.dev->PostSend(n_.qp, w, n_.udp->NowNs()).ok()) {
      busy_[slot] = false;
      --outstanding_;
      ++errors_;
    }
  }

  int Measure() {
    busy_.assign(slots_, false);
    posted_ns_.assign(slots_, 0);
    WrOpcode op = WrOpcode::kRdmaWrite;
    if (o_.op == "read") op = WrOpcode::kRdmaRead;
    if (o_.op == "send") op = WrOpcode::kSend;
    if (o_.op == "atomic") op = WrOpcode::kAtomicFetchAdd;
    if (o_.op == "read") {  // the slots hold known patterns before they are read
      warmup_ = true;
      for (size_t s = 0; s < slots_; ++s) {
        FillPattern(SlotKey(s), Slot(s), o_.size);
        Post(s, WrOpcode::kRdmaWrite, s, Slot(s));
      }
      if (!DriveUntil([&] { return outstanding_ == 0; }, 10'000'000) || errors_) return 1;
      warmup_ = false;
    }
    // The measured ops (only) use a key the server never handed out, to show the error path.
    const uint32_t good_rkey = rkey_;
    if (o_.bad_rkey) rkey_ ^= 0x00010000;
    const uint64_t count = o_.count ? o_.count : ~0ull;
    const Micros dur =
        static_cast<Micros>((o_.count || o_.duration_s > 0 ? o_.duration_s : 3) * 1e6);
    start_ns_ = NowNs();
    const Micros end = n_.udp->Now() + (o_.count && o_.duration_s == 0 ? ~0ull / 2 : dur);
    uint64_t posted = 0;
    std::vector<uint64_t> gen(slots_, 0);
    while ((posted < count && n_.udp->Now() < end && !g_stop) || outstanding_ > 0) {
      for (size_t s = 0; s < slots_ && posted < count && n_.udp->Now() < end; ++s) {
        if (busy_[s]) continue;
        if (op == WrOpcode::kRdmaWrite) {
          FillPattern(SlotKey(s) + (++gen[s] << 20), Slot(s), o_.size);
        } else if (op == WrOpcode::kSend) {
          const uint64_t key = SlotKey(s) + (++gen[s] << 20);
          Put64(Slot(s), key);
          FillPattern(key, Slot(s) + 8, o_.size - 8);
        }
        Post(s, op, s + slots_ * posted, Slot(s));
        ++posted;
      }
      if (!n_.Step(0).ok()) return 1;
      Drain();
      if (g_stop && outstanding_ > 0 && !DriveUntil([&] { return outstanding_ == 0; }, 5'000'000)) {
        const std::string why = std::to_string(outstanding_) + " operations got " + kGraceRanOut;
        errors_ += outstanding_;  // the server stopped answering: these never completed
        if (first_error_.empty() || first_error_ == kGraceRanOut) first_error_ = why;  // the count
        std::fprintf(stderr, "opensrd rdma client: %s\n", why.c_str());
        end_ns_ = NowNs();
        return 1;
      }
    }
    end_ns_ = NowNs();
    rkey_ = good_rkey;
    if (errors_) return 1;
    return Verify(op, gen);
  }

  int Verify(WrOpcode op, const std::vector<uint64_t>& gen) {
    verified_ = false;
    if (op == WrOpcode::kRdmaWrite) {
      warmup_ = true;  // read every written slot back
      for (size_t s = 0; s < slots_; ++s) {
        if (gen[s] == 0) continue;
        Post(s, WrOpcode::kRdmaRead, s, Check(s));
      }
      if (!DriveUntil([&] { return outstanding_ == 0; }, 10'000'000) || errors_) return 1;
      for (size_t s = 0; s < slots_; ++s) {
        if (gen[s] && !CheckPattern(SlotKey(s) + (gen[s] << 20), Check(s), o_.size)) ++bad_;
      }
    } else if (op == WrOpcode::kSend) {
      if (o_.size < 8) {
        std::fprintf(stderr, "opensrd rdma client: send needs --size >= 8 to verify\n");
        return 1;
      }
      if (!Control(kReportReq, kReport)) return 1;
      const uint64_t ok = Get64(Ctl(1)), wrong = Get64(Ctl(1) + 8);
      // The server counts every client's SENDs; this run's must all be there and none wrong.
      if (ok < ops_ || wrong != 0) bad_ += wrong + (ok < ops_ ? ops_ - ok : 0);
    } else if (op == WrOpcode::kAtomicFetchAdd) {
      std::sort(olds_.begin(), olds_.end());
      const bool distinct = std::adjacent_find(olds_.begin(), olds_.end()) == olds_.end();
      if (!distinct || (!olds_.empty() && olds_.back() - olds_.front() + 1 != olds_.size())) {
        ++bad_;
      }
    }
    verified_ = bad_ == 0;
    return verified_ ? 0 : 1;
  }

  int Print(int rc) {
    const LatencySummary lat = lat_.Summarize();
    const double secs = std::max(1e-9, static_cast<double>(end_ns_ - start_ns_) / 1e9);
    const double gbps = static_cast<double>(bytes_) * 8 / secs / 1e9;
    if (o_.json) {
      nlohmann::json j = {
          {"protocol", "srd"},
          {"op", o_.op},
          {"size", o_.size},
          {"inflight", o_.inflight},
          {"ops", ops_},
          {"bytes", bytes_},
          {"seconds", secs},
          {"goodput_gbps", gbps},
          {"lat_us", {{"p50", lat.p50}, {"p99", lat.p99}, {"p999", lat.p999}, {"max", lat.max}}},
          {"errors", errors_},
          {"verified", verified_},
          {"retransmits", n_.udp->endpoint().stats().retransmits},
          {"dma",
           {{"mode", o_.dma.dma},
            {"executor_descriptors", n_.dev->stats().copy_descriptors},
            {"transport_descriptors", n_.udp->endpoint().copy_stats().descriptors}}},
          {"cpu", CpuJson()}};
      if (!first_error_.empty()) j["error"] = first_error_;
      if (n_.capture) j["pcap"] = FinishCapture(n_.capture.get());
      std::printf("%s\n", j.dump().c_str());
    } else {
      std::printf("opensrd rdma %s to %s (srd): %u-byte ops, %d in flight\n", o_.op.c_str(),
                  o_.connect.c_str(), o_.size, o_.inflight);
      std::printf(
          "  %llu ops in %.2f s: %.3f Gbit/s, lat us p50 %.1f p99 %.1f p99.9 %.1f "
          "max %.1f\n",
          static_cast<unsigned long long>(ops_), secs, gbps, lat.p50, lat.p99, lat.p999, lat.max);
      std::printf("  errors %llu%s%s, verified %s\n", static_cast<unsigned long long>(errors_),
                  first_error_.empty() ? "" : ": first ", first_error_.c_str(),
                  verified_ ? "yes" : "no");
      if (n_.capture)
        std::fprintf(stderr, "%s\n", CaptureSummary(FinishCapture(n_.capture.get())).c_str());
    }
    return rc;
  }

  static constexpr uint64_t kCtlWr = ~0ull;
  static constexpr const char* kGraceRanOut = "no answer before the signal's grace second ran out";
  const Options& o_;
  Node n_;
  PeerId peer_ = 0;
  size_t slots_ = 1;
  std::vector<uint8_t> local_;
  MemoryRegion lmr_;
  uint64_t remote_va_ = 0, remote_len_ = 0;
  uint32_t rkey_ = 0;
  uint32_t ctl_reply_ = 0;
  std::vector<bool> busy_;
  std::vector<uint64_t> posted_ns_;
  std::vector<uint64_t> olds_;
  uint64_t outstanding_ = 0, ops_ = 0, bytes_ = 0, errors_ = 0, bad_ = 0;
  uint64_t start_ns_ = 0, end_ns_ = 0;
  bool warmup_ = false, verified_ = false;
  std::string first_error_;
  LatencyRecorder lat_;
};

// Options that only one protocol's endpoint has: refused rather than ignored.
int CheckProtocolOptions(const Options& o) {
  const char* bad = nullptr;
  if (o.rping && o.protocol != "iwarp")
    bad = "--rping is for --protocol iwarp (RoCEv2: `opensrd rdma rping`)";
  if (!o.metrics.empty() && o.protocol != "srd")
    bad = "--metrics serves the SRD transport's counters: --protocol srd only";
  if (o.dma.dma != "off" && o.protocol != "srd") bad = "--dma applies to --protocol srd only";
  if (bad == nullptr) return 0;
  std::fprintf(stderr, "opensrd rdma: %s\n", bad);
  return 2;
}

}  // namespace

std::function<int()> AddRdmaCommand(CLI::App& app) {
  auto o = std::make_shared<Options>();
  auto* rdma = app.add_subcommand("rdma",
                                  "RDMA: native over SRD (server, client); RoCEv2 against "
                                  "rdma-core peers (pingpong, perftest)");
  rdma->require_subcommand(1);
  const auto protocols = CLI::IsMember({"srd", "roce", "iwarp"});
  auto* server = rdma->add_subcommand("server", "Expose a registered region until killed");
  server->add_option("--bind", o->bind, "HOST:PORT to listen on")->required();
  server->add_option("--protocol", o->protocol, "srd, roce or iwarp")->check(protocols);
  server->add_option("--region-size", o->region_bytes, "bytes of the registered region")
      ->check(CLI::Range(uint64_t{8}, uint64_t{1} << 32));
  server->add_option("--max-size", o->max_size, "largest op a client may run (bytes)")
      ->check(CLI::Range(8u, 16u << 20));
  server->add_option("--pcap", o->pcap, "write every datagram crossing the socket to this file");
  AddDmaOptions(server, o->dma, [](auto v) { return CLI::IsMember(v); });
  server->add_option("--metrics", o->metrics, "serve Prometheus text at http://HOST:PORT/metrics");
  server->add_flag("--json", o->json, "print one JSON object of counters at exit");
  server->add_flag("--rping", o->rping,
                   "iwarp: serve one rping client (librdmacm's `rping -c`), then exit");
  auto* max_conn =
      server
          ->add_option("--max-connections", o->max_connections,
                       "roce, iwarp: connections pending or open at once; more are refused (a "
                       "REJ, or the TCP connection closed) (default 16)")
          ->check(CLI::Range(1u, 65536u));
  auto* budget =
      server
          ->add_option("--recv-budget-mib", o->recv_budget_mib,
                       "roce, iwarp: receive buffers of all connections together, MiB; a "
                       "connection that would exceed it is rejected (default 64)")
          ->check(CLI::Range(uint64_t{1}, uint64_t{1} << 20));
  auto* client = rdma->add_subcommand("client", "Run an operation against a server and verify");
  client->add_option("--connect", o->connect, "server HOST:PORT")->required();
  client->add_option("--protocol", o->protocol, "srd, roce or iwarp")->check(protocols);
  client->add_option("--op", o->op, "write, read, send or atomic (FETCH_ADD)")
      ->check(CLI::IsMember({"write", "read", "send", "atomic"}));
  client->add_option("--size", o->size, "bytes per operation (atomic: 8)")
      ->check(CLI::Range(1u, 16u << 20));
  auto* dur = client->add_option("--duration", o->duration_s, "seconds (default 3)")
                  ->check(CLI::Range(0.001, 86400.0));
  client->add_option("--count", o->count, "operations to run")->excludes(dur);
  client->add_option("--inflight", o->inflight, "operations kept posted")
      ->check(CLI::Range(1, 1024));
  client->add_option("--max-size", o->max_size, "largest message (as the server's)")
      ->check(CLI::Range(8u, 16u << 20));
  client->add_flag("--json", o->json, "print one JSON object");
  client->add_flag("--rping", o->rping,
                   "iwarp: act as `rping -c -V` against an rping server (--count pings of --size)");
  client->add_option("--pcap", o->pcap, "write every datagram crossing the socket to this file");
  AddDmaOptions(client, o->dma, [](auto v) { return CLI::IsMember(v); });
  client->add_option("--metrics", o->metrics, "serve Prometheus text at http://HOST:PORT/metrics");
  client->add_flag("--bad-rkey", o->bad_rkey,
                   "test: use an rkey the server never handed out (expects remote access "
                   "errors)");
  auto roce = std::make_shared<RoceCliOptions>();
  AddRoceOptions(server, client, roce.get());
  return [o, roce, server, client, max_conn, budget]() -> int {
    if (int rc = CheckProtocolOptions(*o); rc != 0) return rc;
    if (o->protocol != "roce" && (roce->reorder > 0 || roce->seed != 0)) {
      std::fprintf(stderr, "opensrd rdma: --reorder and --seed apply to --protocol roce only\n");
      return 2;
    }
    if ((max_conn->count() > 0 || budget->count() > 0) && o->protocol == "srd") {
      std::fprintf(stderr,
                   "opensrd rdma: --max-connections and --recv-budget-mib are for --protocol "
                   "roce and iwarp\n");
      return 2;
    }
    if (o->protocol == "iwarp" && (server->parsed() || client->parsed())) {
      const IwarpCliOptions io{o->bind,
                               o->connect,
                               o->op,
                               o->pcap,
                               o->size,
                               o->count,
                               o->duration_s,
                               o->inflight,
                               o->json,
                               o->bad_rkey,
                               o->region_bytes,
                               o->max_size,
                               o->rping,
                               o->max_connections,
                               o->recv_budget_mib << 20};
      if (o->rping) return server->parsed() ? RunIwarpRpingServer(io) : RunIwarpRpingClient(io);
      return server->parsed() ? RunIwarpServer(io) : RunIwarpClient(io);
    }
    if (o->protocol == "roce") {
      RoceCliOptions& r = *roce;
      if (server->parsed()) r.bind = o->bind;
      r.connect = o->connect;
      r.op = o->op;
      r.pcap = o->pcap;
      r.size = o->op == "atomic" ? 8 : o->size;
      r.count = o->count;
      r.duration_s = o->duration_s;
      r.inflight = o->inflight;
      r.json = o->json;
      r.bad_rkey = o->bad_rkey;
      r.region_bytes = o->region_bytes;
      r.max_connections = o->max_connections;
      r.recv_budget_mib = o->recv_budget_mib;
      if (server->parsed()) return RunRoceServer(r);
      if (client->parsed()) return RunRoceClient(r);
    }
    if (server->parsed()) return RunServer(*o);
    if (client->parsed()) {
      if (o->op == "atomic" && o->size == 4096) o->size = 8;  // the default size
      Client c(*o);
      return c.Run();
    }
    return -1;
  };
}

}  // namespace opensrd::cli
