// `opensrd perf server`: one UDP socket, any number of clients at once (each a peer of the
// endpoint, its paths told apart by source port). Verifies every byte it receives, echoes pings
// and answers a client's kEnd with a kReport of what it verified. Serves until SIGINT/SIGTERM.
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <map>
#include <memory>
#include <vector>

#include "common/log.h"
#include "tools/opensrd/capture.h"
#include "tools/opensrd/commands.h"
#include "tools/opensrd/key_file.h"
#include "tools/opensrd/metrics.h"
#include "tools/opensrd/perf_protocol.h"
#include "transport/udp_endpoint.h"

namespace opensrd::cli {

namespace {

volatile sig_atomic_t g_stop = 0;
void OnSignal(int) {
  g_stop = 1;
}

// Tags of send completions: echoes carry the receive buffer index, reports a report slot.
constexpr uint64_t kReportTag = 1ull << 63;

struct ClientTally {
  ReportBody body;
  EndpointStats base;     // server counters when the client's first message arrived
  uint64_t next_seq = 0;  // one past the highest data `seq` delivered so far
};

class PerfServer {
 public:
  PerfServer(const PerfServerOptions& o, std::unique_ptr<UdpEndpoint> udp, MetricsServer* metrics)
      : o_(o), udp_(std::move(udp)), ep_(udp_->endpoint()), metrics_(metrics) {}

  Status Start() {
    cq_ = ep_.CreateCompletionQueue();
    Result<SqId> sq = ep_.CreateSendQueue({.cq = cq_, .depth = 1u << 16});
    if (!sq.ok()) return sq.status();
    sq_ = *sq;
    buffers_.resize(o_.buffers);
    for (int i = 0; i < o_.buffers; ++i) {
      buffers_[i].reset(new uint8_t[o_.max_size]);
      Status s = Repost(i);
      if (!s.ok()) return s;
    }
    return Status::Ok();
  }

  Status Run() {
    std::vector<Completion> comps(256);
    while (!g_stop) {
      Result<size_t> r = udp_->Poll(100000);  // a signal also ends the wait (EINTR)
      if (!r.ok()) return r.status();
      if (metrics_) metrics_->MaybePublish(*udp_);
      path_log_.Check(ep_, udp_->Now());
      size_t n;
      while ((n = ep_.PollCompletions(cq_, comps)) > 0) {
        for (size_t i = 0; i < n; ++i) {
          Status s = comps[i].kind == CompletionKind::kRecv ? OnRecv(comps[i]) : OnSend(comps[i]);
          if (!s.ok()) return s;
        }
      }
    }
    return Status::Ok();
  }

 private:
  Status Repost(uint64_t idx) { return ep_.PostRecv(cq_, buffers_[idx].get(), o_.max_size, idx); }

  ClientTally& Tally(PeerId peer) {
    auto it = tallies_.find(peer);
    if (it == tallies_.end()) it = tallies_.emplace(peer, ClientTally{{}, ep_.stats()}).first;
    return it->second;
  }

  Status OnRecv(const Completion& c) {
    const uint64_t idx = c.tag;
    uint8_t* buf = buffers_[idx].get();
    ClientTally& t = Tally(c.peer);
    AppHeader h;
    if (c.status != Code::kOk || !ReadHeader(buf, c.length, h)) {
      ++t.body.messages_bad;
      return Repost(idx);
    }
    switch (h.kind) {
      case AppKind::kData:
      case AppKind::kPing: {
        const bool ok = CheckMessage(buf, c.length, h);
        ++(ok ? t.body.messages_ok : t.body.messages_bad);
        if (ok) t.body.bytes_ok += c.length;
        if (h.kind == AppKind::kData) {
          if (ok && h.seq < t.next_seq) ++t.body.overtaken;
          if (ok) t.next_seq = std::max(t.next_seq, h.seq + 1);
          return Repost(idx);
        }
        buf[0] = static_cast<uint8_t>(AppKind::kPong);  // echo; repost when the send completes
        const Sge sge{buf, c.length};
        Status s = ep_.PostSend(sq_, c.peer, {&sge, 1}, idx, udp_->NowNs());
        return s.ok() ? s : Repost(idx);
      }
      case AppKind::kEnd:
        SendReport(c.peer, h.seq);
        return Repost(idx);
      default:
        ++t.body.messages_bad;
        return Repost(idx);
    }
  }

  void SendReport(PeerId peer, uint64_t client_count) {
    ClientTally t = Tally(peer);
    tallies_.erase(peer);
    const EndpointStats now = ep_.stats();
    t.body.corrupt_dropped = now.corrupt_dropped - t.base.corrupt_dropped;
    t.body.duplicates_dropped = now.duplicates_dropped - t.base.duplicates_dropped;
    t.body.retransmits = now.retransmits - t.base.retransmits;
    auto msg = std::make_unique<uint8_t[]>(kAppHeaderLen + sizeof(ReportBody));
    WriteHeader(msg.get(), AppHeader{.kind = AppKind::kReport,
                                     .length = kAppHeaderLen + sizeof(ReportBody),
                                     .seq = client_count});
    std::memcpy(msg.get() + kAppHeaderLen, &t.body, sizeof t.body);
    const Sge sge{msg.get(), kAppHeaderLen + sizeof(ReportBody)};
    const uint64_t tag = kReportTag | next_report_++;
    Status s = ep_.PostSend(sq_, peer, {&sge, 1}, tag, udp_->NowNs());
    if (s.ok()) reports_.emplace(tag, std::move(msg));
    if (!o_.quiet) {
      std::string from = "?";
      if (auto paths = ep_.path_stats(peer); !paths.empty()) from = ToString(paths[0].spec.remote);
      log::Get("perf_server")
          .info("client {} (peer {}): {} messages verified, {} bad, client says {}{}", from, peer,
                t.body.messages_ok, t.body.messages_bad, client_count,
                s.ok() ? "" : " (report not sent: " + s.ToString() + ")");
    }
  }

  Status OnSend(const Completion& c) {
    if (c.tag & kReportTag) {
      reports_.erase(c.tag);
      return Status::Ok();
    }
    return Repost(c.tag);  // an echo finished (or failed): its buffer is free again
  }

  const PerfServerOptions& o_;
  std::unique_ptr<UdpEndpoint> udp_;
  Endpoint& ep_;
  MetricsServer* metrics_;  // null without --metrics
  PathStateLog path_log_{"perf_server"};
  CqId cq_ = 0;
  SqId sq_ = 0;
  std::vector<std::unique_ptr<uint8_t[]>> buffers_;
  std::map<PeerId, ClientTally> tallies_;
  std::map<uint64_t, std::unique_ptr<uint8_t[]>> reports_;  // in flight, by tag
  uint64_t next_report_ = 0;
};

}  // namespace

int RunPerfServer(const PerfServerOptions& o) {
  std::vector<NetAddr> binds;
  for (const std::string& b : o.bind) {
    Result<NetAddr> a = ParseNetAddr(b);
    if (!a.ok()) {
      std::fprintf(stderr, "opensrd perf server: --bind %s: %s\n", b.c_str(),
                   a.status().message().c_str());
      return 2;
    }
    binds.push_back(*a);
  }
  if (binds.empty()) {
    std::fprintf(stderr, "opensrd perf server: --bind is required\n");
    return 2;
  }
  const NetAddr* bind = &binds[0];
  if (o.max_size < kAppHeaderLen + sizeof(ReportBody)) {
    std::fprintf(stderr, "opensrd perf server: --max-size must be >= %zu\n",
                 kAppHeaderLen + sizeof(ReportBody));
    return 2;
  }
  UdpEndpointOptions uo;
  if (Status k = ApplyKeyOptions(o.key_file, o.key_mode, uo.endpoint); !k.ok()) {
    std::fprintf(stderr, "opensrd perf server: %s\n", k.message().c_str());
    return 2;
  }
  if (Status d = ApplyDmaOptions(o.dma, uo.endpoint); !d.ok()) {
    std::fprintf(stderr, "opensrd perf server: %s\n", d.message().c_str());
    return 2;
  }
  Result<std::unique_ptr<PcapWriter>> capture = OpenCapture(o.pcap);
  if (!capture.ok()) {
    std::fprintf(stderr, "opensrd perf server: %s\n", capture.status().message().c_str());
    return 2;
  }
  if (*capture) uo.pcap = (*capture)->NewSource();
  uo.local = binds;
  uo.max_path_id = static_cast<uint32_t>(o.paths);
  uo.endpoint.max_payload =
      static_cast<uint16_t>(o.max_payload ? o.max_payload : AutoMaxPayload(*bind));
  uo.endpoint.max_message = o.max_size;
  uo.endpoint.seed =
      static_cast<uint64_t>(std::chrono::steady_clock::now().time_since_epoch().count() ^
                            (static_cast<uint64_t>(getpid()) << 32));
  Result<std::unique_ptr<UdpEndpoint>> udp = UdpEndpoint::Create(uo);
  if (!udp.ok()) {
    std::fprintf(stderr, "opensrd perf server: %s\n", udp.status().ToString().c_str());
    return 1;
  }
  struct sigaction sa {};
  sa.sa_handler = OnSignal;
  sigaction(SIGINT, &sa, nullptr);
  sigaction(SIGTERM, &sa, nullptr);

  std::string listening;
  for (size_t i = 0; i < (*udp)->num_sockets(); ++i) {
    listening += (i ? ", " : "") + ToString((*udp)->local_address(i));
  }
  std::unique_ptr<MetricsServer> metrics;
  if (!o.metrics.empty()) {
    Result<std::unique_ptr<MetricsServer>> m = MetricsServer::Start(o.metrics, "perf_server");
    if (!m.ok()) {
      std::fprintf(stderr, "opensrd perf server: %s\n", m.status().message().c_str());
      return m.status().code() == Code::kInvalidArgument ? 2 : 1;
    }
    metrics = std::move(m.value());
    metrics->MaybePublish(**udp, true);
  }
  PerfServer server(o, std::move(udp.value()), metrics.get());
  Status s = server.Start();
  if (s.ok()) {
    if (!o.quiet) {
      log::Get("perf_server")
          .info("listening on {} (up to {} paths per client)", listening, o.paths);
    }
    s = server.Run();
  }
  if (*capture) {
    log::Get("perf_server").info("{}", CaptureSummary(FinishCapture(capture->get())));
  }
  if (!s.ok()) {
    std::fprintf(stderr, "opensrd perf server: %s\n", s.ToString().c_str());
    return 1;
  }
  return 0;
}

}  // namespace opensrd::cli
