// `opensrd perf client`: drives a bandwidth (bw) or ping-pong latency (lat) run against
// `opensrd perf server` over N paths, then asks the server what it verified (kEnd -> kReport,
// see perf_protocol.h) and prints a report, as one JSON object with --json.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstring>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "tools/opensrd/capture.h"
#include "tools/opensrd/commands.h"
#include "tools/opensrd/key_file.h"
#include "tools/opensrd/latency.h"
#include "tools/opensrd/metrics.h"
#include "tools/opensrd/perf_protocol.h"
#include "tools/opensrd/timeline.h"
#include "transport/udp_endpoint.h"

namespace opensrd::cli {

namespace {

constexpr int kRecvBuffers = 8;
constexpr Micros kReportWaitUs = 2'000'000;  // after the run, for the server's kReport
constexpr Micros kLingerUs = 20'000;         // at most, after the report, to send owed acks

// The source address the kernel would use toward `remote` (no packet is sent); port 0.
Result<NetAddr> RouteSource(const NetAddr& remote) {
  const int fd = socket(remote.v6 ? AF_INET6 : AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return Status(Code::kIoError, "socket failed");
  sockaddr_storage ss{};
  socklen_t len;
  const uint16_t port = htons(remote.port == 0 ? 9 : remote.port);
  if (remote.v6) {
    auto* s6 = reinterpret_cast<sockaddr_in6*>(&ss);
    s6->sin6_family = AF_INET6;
    std::memcpy(&s6->sin6_addr, remote.ip6.data(), 16);
    s6->sin6_port = port;
    len = sizeof(sockaddr_in6);
  } else {
    auto* s4 = reinterpret_cast<sockaddr_in*>(&ss);
    s4->sin_family = AF_INET;
    s4->sin_addr.s_addr = htonl(remote.ip);
    s4->sin_port = port;
    len = sizeof(sockaddr_in);
  }
  socklen_t sl = sizeof ss;
  const bool ok = connect(fd, reinterpret_cast<sockaddr*>(&ss), len) == 0 &&
                  getsockname(fd, reinterpret_cast<sockaddr*>(&ss), &sl) == 0;
  close(fd);
  if (!ok) return Status(Code::kIoError, "no route to " + ToString(remote));
  NetAddr a;
  if (remote.v6) {
    a.v6 = true;
    std::memcpy(a.ip6.data(), &reinterpret_cast<sockaddr_in6*>(&ss)->sin6_addr, 16);
  } else {
    a.ip = ntohl(reinterpret_cast<sockaddr_in*>(&ss)->sin_addr.s_addr);
  }
  return a;
}

class PerfClient {
 public:
  // `locals`/`remotes`: path i goes from locals[i] to remotes[i].
  PerfClient(const PerfClientOptions& o, std::vector<NetAddr> locals, std::vector<NetAddr> remotes)
      : o_(o), locals_(std::move(locals)), remotes_(std::move(remotes)), remote_(remotes_[0]) {}

  Status Setup(const FaultSpec& fault, const EndpointConfig& key_cfg, PcapWriter::Source* pcap) {
    UdpEndpointOptions uo;
    uo.pcap = pcap;
    uo.endpoint.key_mode = key_cfg.key_mode;
    uo.endpoint.cluster_key = key_cfg.cluster_key;
    uo.endpoint.payload_copy = key_cfg.payload_copy;
    uo.endpoint.dma_prefetch = key_cfg.dma_prefetch;
    uint64_t seed = o_.seed;
    if (seed == 0) {
      seed = static_cast<uint64_t>(std::chrono::steady_clock::now().time_since_epoch().count()) ^
             (uint64_t{static_cast<uint32_t>(getpid())} << 32);
    }
    uo.endpoint.seed = seed;
    uo.endpoint.max_payload =
        static_cast<uint16_t>(o_.max_payload ? o_.max_payload : AutoMaxPayload(remote_));
    uo.endpoint.peer_timeout_us = o_.peer_timeout_ms * 1000;
    uo.endpoint.spray_burst = static_cast<uint32_t>(o_.spray_burst);
    uo.gso_cork_us = static_cast<Micros>(o_.gso_cork_us);
    uo.endpoint.max_message = std::max<uint32_t>(size_, 1u << 16);
    uo.inject_faults = !fault.paths.empty();
    uo.fault = fault;
    uo.fault_seed = seed ^ 0xFA17;
    uo.local = locals_;
    Result<std::unique_ptr<UdpEndpoint>> udp = UdpEndpoint::Create(uo);
    if (!udp.ok()) return udp.status();
    udp_ = std::move(udp.value());
    Endpoint& ep = udp_->endpoint();
    std::vector<PathSpec> paths;
    for (size_t i = 0; i < remotes_.size(); ++i) {
      paths.push_back({static_cast<uint16_t>(i), remotes_[i]});
    }
    Result<PeerId> peer = ep.AddPeer(paths, udp_->NowNs());
    if (!peer.ok()) return peer.status();
    peer_ = *peer;
    cq_ = ep.CreateCompletionQueue();
    Result<SqId> sq = ep.CreateSendQueue(
        {.cq = cq_, .in_order = o_.in_order, .depth = static_cast<uint32_t>(o_.inflight + 8)});
    if (!sq.ok()) return sq.status();
    sq_ = *sq;
    recv_len_ = std::max<size_t>(size_, kAppHeaderLen + sizeof(ReportBody));
    for (int i = 0; i < kRecvBuffers; ++i) {
      recv_bufs_.emplace_back(new uint8_t[recv_len_]);
      Status s = ep.PostRecv(cq_, recv_bufs_.back().get(), recv_len_, i);
      if (!s.ok()) return s;
    }
    salt_ = seed * 0x9E3779B97F4A7C15ull;
    return Status::Ok();
  }

  void Run() {
    start_ = udp_->Now();
    last_done_ = last_progress_ = start_;
    if (o_.mode == "lat") {
      RunLat();
    } else {
      RunBw();
    }
    if (errors_ == 0) FetchReport();
  }

  // `capture`: the --pcap writer, closed here so that its counters are final.
  int Print(PcapWriter* capture) {
    const LatencySummary lat = lat_.Summarize();
    const double secs = std::max<double>(1e-6, static_cast<double>(last_done_ - start_) / 1e6);
    const EndpointStats st = udp_->endpoint().stats();
    const UdpStats& us = udp_->stats();
    const bool verified = errors_ == 0 && have_report_ && report_.messages_bad == 0 &&
                          report_.messages_ok == messages_ && bad_echoes_ == 0 && messages_ > 0 &&
                          (!o_.in_order || report_.overtaken == 0);
    const double gbps = static_cast<double>(bytes_) * 8 / secs / 1e9;
    std::vector<PathStats> paths = udp_->endpoint().path_stats(peer_);
    if (o_.json) {
      nlohmann::json j;
      j["mode"] = o_.mode;
      j["size"] = size_;
      j["duration_s"] = secs;
      j["goodput_gbps"] = gbps;
      j["messages"] = messages_;
      j["msgs_per_sec"] = static_cast<double>(messages_) / secs;
      j["lat_us"] = {{"p50", lat.p50}, {"p99", lat.p99}, {"p999", lat.p999}, {"max", lat.max}};
      j["retransmits"] = st.retransmits + report_.retransmits;
      j["corrupt_dropped"] = st.corrupt_dropped + report_.corrupt_dropped;
      j["duplicates_dropped"] = st.duplicates_dropped + report_.duplicates_dropped;
      // Losses this client declared too early (the server saw the original after the copy).
      j["spurious_retransmits"] = st.spurious_retransmits;
      j["key_mode"] = KeyModeName(udp_->endpoint().config().key_mode);
      j["auth_failed"] = st.auth_failed;
      j["errors"] = errors_;
      if (!first_error_.empty()) j["error"] = first_error_;
      j["verified"] = verified;
      j["server"] = {{"report", have_report_},
                     {"messages_ok", report_.messages_ok},
                     {"messages_bad", report_.messages_bad},
                     {"overtaken", report_.overtaken},
                     {"retransmits", report_.retransmits},
                     {"corrupt_dropped", report_.corrupt_dropped},
                     {"duplicates_dropped", report_.duplicates_dropped}};
      j["client"] = {{"retransmits", st.retransmits},
                     {"rto_events", st.rto_events},
                     {"spurious_rto_events", st.spurious_rto_events},
                     {"tail_probes", st.tail_probes},
                     {"corrupt_dropped", st.corrupt_dropped},
                     {"duplicates_dropped", st.duplicates_dropped},
                     {"rnr_received", st.rnr_received},
                     {"datagrams_out", st.datagrams_out},
                     {"datagrams_in", st.datagrams_in},
                     {"data_packets_sent", st.data_packets_sent},
                     {"acks_sent", st.acks_sent},
                     {"acks_piggybacked", st.acks_piggybacked},
                     {"acks_received", st.acks_received},
                     {"bad_echoes", bad_echoes_},
                     {"datagrams_sent", us.datagrams_sent},
                     {"datagrams_received", us.datagrams_received},
                     {"send_retries", us.send_retries},
                     {"send_errors", us.send_errors},
                     {"gso", udp_->gso_enabled()},
                     {"gso_batches", us.gso_batches},
                     {"gro_batches", us.gro_batches}};
      const PayloadCopyStats cs = udp_->endpoint().copy_stats();
      j["dma"] = {{"engine", o_.dma.dma == "on"},
                  {"prefetch", o_.dma.prefetch},
                  {"copies", cs.copies},
                  {"descriptors", cs.descriptors},
                  {"errors", cs.errors}};
      j["fault"] = {{"dropped", us.fault_dropped},
                    {"duplicated", us.fault_duplicated},
                    {"corrupted", us.fault_corrupted},
                    {"delayed", us.fault_delayed},
                    {"out_dropped", us.fault_out_dropped},
                    {"out_duplicated", us.fault_out_duplicated},
                    {"out_data_dropped", us.fault_out_data_dropped},
                    {"out_data_duplicated", us.fault_out_data_duplicated},
                    {"out_retx_dropped", us.fault_out_retx_dropped},
                    {"out_retx_duplicated", us.fault_out_retx_duplicated}};
      nlohmann::json pj = nlohmann::json::array();
      for (const PathStats& p : paths) {
        pj.push_back({{"id", p.id},
                      {"local", ToString(udp_->local_address(p.spec.local_socket))},
                      {"remote", ToString(p.spec.remote)},
                      {"sent", p.sent},
                      {"spurious", p.spurious},
                      {"acked", p.acked},
                      {"retransmitted", p.retransmitted},
                      {"lost", p.lost},
                      {"srtt_us", p.srtt_us},
                      {"state", PathStateName(p.state)}});
      }
      j["paths"] = pj;
      if (capture) j["pcap"] = FinishCapture(capture);
      std::printf("%s\n", j.dump().c_str());
    } else {
      std::printf("opensrd perf %s to %s: %d paths, %u-byte messages%s\n", o_.mode.c_str(),
                  ToString(remote_).c_str(), o_.paths, size_, o_.in_order ? ", in order" : "");
      std::printf("  %llu messages in %.2f s: %.3f Gbit/s goodput, %.0f msgs/s\n",
                  static_cast<unsigned long long>(messages_), secs, gbps,
                  static_cast<double>(messages_) / secs);
      std::printf("  %s us: p50 %.1f  p99 %.1f  p99.9 %.1f  max %.1f\n",
                  o_.mode == "lat" ? "round trip" : "post to completion", lat.p50, lat.p99,
                  lat.p999, lat.max);
      std::printf(
          "  retransmits %llu, corrupt dropped %llu, duplicates dropped %llu\n",
          static_cast<unsigned long long>(st.retransmits + report_.retransmits),
          static_cast<unsigned long long>(st.corrupt_dropped + report_.corrupt_dropped),
          static_cast<unsigned long long>(st.duplicates_dropped + report_.duplicates_dropped));
      for (const PathStats& p : paths) {
        std::printf("  path %u %s -> %s: sent %llu, retransmitted %llu, srtt %llu us, %s\n", p.id,
                    ToString(udp_->local_address(p.spec.local_socket)).c_str(),
                    ToString(p.spec.remote).c_str(), static_cast<unsigned long long>(p.sent),
                    static_cast<unsigned long long>(p.retransmitted),
                    static_cast<unsigned long long>(p.srtt_us), PathStateName(p.state));
      }
      std::printf("  verified: %s (server checked %llu ok, %llu bad)\n", verified ? "yes" : "NO",
                  static_cast<unsigned long long>(report_.messages_ok),
                  static_cast<unsigned long long>(report_.messages_bad));
      if (o_.dma.dma == "on") {
        const PayloadCopyStats cs = udp_->endpoint().copy_stats();
        std::printf(
            "  payload copies: DMA engine, prefetch %s: %llu copies, %llu descriptors, "
            "%llu errors\n",
            o_.dma.prefetch.c_str(), (unsigned long long)cs.copies,
            (unsigned long long)cs.descriptors, (unsigned long long)cs.errors);
      }
      if (capture) std::printf("  %s\n", CaptureSummary(FinishCapture(capture)).c_str());
    }
    if (!first_error_.empty()) {
      std::fprintf(stderr, "opensrd perf client: error: %s\n", first_error_.c_str());
    } else if (!verified) {
      std::fprintf(stderr, "opensrd perf client: error: run not verified\n");
    }
    return verified && errors_ == 0 ? 0 : 1;
  }

  void set_size(uint32_t size) { size_ = size; }
  void set_metrics(MetricsServer* m) { metrics_ = m; }
  void set_timeline(TimelineWriter* t) { timeline_ = t; }

 private:
  void Error(const std::string& what) {
    ++errors_;
    if (first_error_.empty()) first_error_ = what;
  }

  void ErrorFromCompletion(const Completion& c) {
    if (c.status == Code::kTimedOut) {
      Error("peer " + ToString(remote_) + " did not answer within " +
            std::to_string(o_.peer_timeout_ms) + " ms (" + CodeName(c.status) + ")");
    } else {
      Error(std::string("message failed: ") + CodeName(c.status));
    }
  }

  bool StopPosting(Micros now, uint64_t posted) const {
    if (errors_ > 0) return true;
    if (o_.count > 0) return posted >= o_.count;
    return now >= start_ + static_cast<Micros>(o_.duration_s * 1e6);
  }

  // Polls the endpoint once; fails the run if nothing has completed for much longer than the
  // core's own peer timeout (a safety net: the core should have failed the work by then).
  bool Drive() {
    Result<size_t> r = udp_->Poll(1000);
    if (!r.ok()) {
      Error(r.status().ToString());
      return false;
    }
    if (metrics_) metrics_->MaybePublish(*udp_);
    path_log_.Check(udp_->endpoint(), udp_->Now());
    if (timeline_) timeline_->MaybeSample(udp_->endpoint(), udp_->Now());
    if (udp_->Now() > last_progress_ + o_.peer_timeout_ms * 1000 + 2'000'000) {
      Error("no progress for " + std::to_string(o_.peer_timeout_ms + 2000) + " ms");
      return false;
    }
    return true;
  }

  void RepostRecv(uint64_t tag) {
    Status s = udp_->endpoint().PostRecv(cq_, recv_bufs_[tag].get(), recv_len_, tag);
    if (!s.ok()) Error("PostRecv: " + s.ToString());
  }

  // A receive outside the ping-pong: the server's report (anything else is not expected).
  void OnOtherRecv(const Completion& c) {
    AppHeader h;
    const uint8_t* b = recv_bufs_[c.tag].get();
    if (c.status == Code::kOk && ReadHeader(b, c.length, h) && h.kind == AppKind::kReport &&
        c.length >= kAppHeaderLen + sizeof(ReportBody)) {
      std::memcpy(&report_, b + kAppHeaderLen, sizeof report_);
      have_report_ = true;
    } else {
      ++bad_echoes_;
    }
    RepostRecv(c.tag);
  }

  void RunBw() {
    Endpoint& ep = udp_->endpoint();
    std::vector<std::unique_ptr<uint8_t[]>> bufs;
    std::vector<uint64_t> posted_at_ns(o_.inflight);
    std::vector<uint32_t> free_slots;
    for (int i = 0; i < o_.inflight; ++i) {
      bufs.emplace_back(new uint8_t[size_]);
      free_slots.push_back(o_.inflight - 1 - i);
    }
    uint64_t seq = 0;
    std::vector<Completion> comps(64);
    while (true) {
      Micros now = udp_->Now();
      const bool stop = StopPosting(now, seq);
      if (stop && free_slots.size() == static_cast<size_t>(o_.inflight)) break;
      while (!stop && !free_slots.empty() && !StopPosting(now, seq)) {
        const uint32_t slot = free_slots.back();
        FillMessage(bufs[slot].get(), size_, AppKind::kData, salt_ + seq, seq);
        const Sge sge{bufs[slot].get(), size_};
        posted_at_ns[slot] = NowNs();
        Status s = ep.PostSend(sq_, peer_, {&sge, 1}, slot, udp_->NowNs());
        if (!s.ok()) {
          Error("PostSend: " + s.ToString());
          break;
        }
        free_slots.pop_back();
        ++seq;
        now = udp_->Now();
      }
      if (!Drive()) return;
      size_t n;
      while ((n = ep.PollCompletions(cq_, comps)) > 0) {
        now = udp_->Now();
        for (size_t i = 0; i < n; ++i) {
          const Completion& c = comps[i];
          if (c.kind == CompletionKind::kRecv) {
            OnOtherRecv(c);
            continue;
          }
          free_slots.push_back(static_cast<uint32_t>(c.tag));
          last_progress_ = now;
          if (c.status != Code::kOk) {
            ErrorFromCompletion(c);
            continue;
          }
          ++messages_;
          bytes_ += c.length;
          lat_.AddNs(NowNs() - posted_at_ns[c.tag]);
          last_done_ = now;
        }
      }
    }
  }

  void RunLat() {
    Endpoint& ep = udp_->endpoint();
    std::unique_ptr<uint8_t[]> buf(new uint8_t[size_]);
    std::vector<Completion> comps(16);
    for (uint64_t seq = 0; !StopPosting(udp_->Now(), seq); ++seq) {
      const uint64_t key = salt_ + seq;
      FillMessage(buf.get(), size_, AppKind::kPing, key, seq);
      const Sge sge{buf.get(), size_};
      const uint64_t t0 = NowNs();
      Status s = ep.PostSend(sq_, peer_, {&sge, 1}, 0, udp_->NowNs());
      if (!s.ok()) return Error("PostSend: " + s.ToString());
      bool sent = false, echoed = false;
      uint64_t rtt_ns = 0;
      while (!(sent && echoed)) {
        if (!Drive()) return;
        size_t n;
        while ((n = ep.PollCompletions(cq_, comps)) > 0) {
          const Micros now = udp_->Now();
          for (size_t i = 0; i < n; ++i) {
            const Completion& c = comps[i];
            last_progress_ = now;
            if (c.kind == CompletionKind::kSend) {
              if (c.status != Code::kOk) return ErrorFromCompletion(c);
              sent = true;
              continue;
            }
            AppHeader h;
            const uint8_t* b = recv_bufs_[c.tag].get();
            if (c.status != Code::kOk || !ReadHeader(b, c.length, h) || h.kind != AppKind::kPong) {
              OnOtherRecv(c);
              continue;
            }
            if (!CheckMessage(b, c.length, h) || h.key != key || h.seq != seq) ++bad_echoes_;
            echoed = true;
            rtt_ns = NowNs() - t0;
            RepostRecv(c.tag);
          }
        }
      }
      ++messages_;
      bytes_ += size_;
      lat_.AddNs(rtt_ns);
      last_done_ = udp_->Now();
    }
  }

  // kEnd -> kReport: the server's verdict on everything this run sent.
  void FetchReport() {
    Endpoint& ep = udp_->endpoint();
    uint8_t end[kAppHeaderLen];
    WriteHeader(end, AppHeader{.kind = AppKind::kEnd, .length = kAppHeaderLen, .seq = messages_});
    const Sge sge{end, sizeof end};
    Status s = ep.PostSend(sq_, peer_, {&sge, 1}, ~0ull, udp_->NowNs());
    if (!s.ok()) return Error("PostSend(end): " + s.ToString());
    const Micros deadline = udp_->Now() + kReportWaitUs + o_.peer_timeout_ms * 1000;
    bool sent = false;
    std::vector<Completion> comps(16);
    last_progress_ = udp_->Now();
    while (!(sent && have_report_)) {
      if (udp_->Now() > deadline) return Error("no report from the server");
      if (!Drive()) return;
      size_t n;
      while ((n = ep.PollCompletions(cq_, comps)) > 0) {
        for (size_t i = 0; i < n; ++i) {
          const Completion& c = comps[i];
          if (c.kind == CompletionKind::kRecv) {
            OnOtherRecv(c);
          } else if (c.status != Code::kOk) {
            return ErrorFromCompletion(c);
          } else {
            sent = true;
          }
        }
      }
    }
    Linger();
  }

  // Keeps driving the endpoint briefly so the acks we owe (the report's, above all) go out:
  // otherwise the server keeps retransmitting to a port that is gone until its peer timeout.
  void Linger() {
    const Micros until = udp_->Now() + kLingerUs;
    while (udp_->Now() < until && udp_->endpoint().NextTimeout() != kNever) {
      if (!udp_->Poll(0).ok()) return;
    }
  }

  const PerfClientOptions& o_;
  const std::vector<NetAddr> locals_, remotes_;
  const NetAddr remote_;  // path 0's
  uint32_t size_ = 0;
  std::unique_ptr<UdpEndpoint> udp_;
  MetricsServer* metrics_ = nullptr;  // --metrics; null without
  PathStateLog path_log_{"perf_client"};
  TimelineWriter* timeline_ = nullptr;  // --timeline; null without
  PeerId peer_ = 0;
  CqId cq_ = 0;
  SqId sq_ = 0;
  size_t recv_len_ = 0;
  std::vector<std::unique_ptr<uint8_t[]>> recv_bufs_;
  uint64_t salt_ = 0;
  Micros start_ = 0, last_done_ = 0, last_progress_ = 0;
  uint64_t messages_ = 0, bytes_ = 0, errors_ = 0, bad_echoes_ = 0;
  std::string first_error_;
  LatencyRecorder lat_;
  bool have_report_ = false;
  ReportBody report_;
};

int Usage(const std::string& msg) {
  std::fprintf(stderr, "opensrd perf client: %s\n", msg.c_str());
  return 2;
}

}  // namespace

// "HOST" or "HOST:PORT" (port 0 when absent: ephemeral).
Result<NetAddr> ParseLocal(const std::string& s) {
  return ParseNetAddr(s.find(':') == std::string::npos ? s + ":0" : s);
}

int RunPerfClient(const PerfClientOptions& o) {
  PerfClientOptions opts = o;
  std::vector<NetAddr> locals, remotes;
  if (!o.path.empty()) {
    // Multi-homed: explicit (local, remote) pairs.
    for (const std::string& p : o.path) {
      const auto eq = p.find('=');
      if (eq == std::string::npos) return Usage("--path '" + p + "' is not LOCAL=REMOTE");
      Result<NetAddr> local = ParseLocal(p.substr(0, eq));
      if (!local.ok()) return Usage("--path '" + p + "': local: " + local.status().message());
      Result<NetAddr> remote = ParseNetAddr(p.substr(eq + 1));
      if (!remote.ok()) return Usage("--path '" + p + "': remote: " + remote.status().message());
      if (remote->port == 0) return Usage("--path '" + p + "': remote port 0 is not a server");
      locals.push_back(*local);
      remotes.push_back(*remote);
    }
    if (o.path.size() > 256) return Usage("at most 256 --path");
    opts.paths = static_cast<int>(o.path.size());
  } else {
    if (o.connect.empty()) return Usage("--connect HOST:PORT or --path LOCAL=REMOTE is required");
    Result<NetAddr> remote = ParseNetAddr(o.connect);
    if (!remote.ok()) return Usage("--connect: " + remote.status().message());
    if (remote->port == 0) return Usage("--connect: port 0 is not a server");
    if (o.source_port_base != 0 && o.source_port_base + o.paths - 1 > 65535) {
      return Usage("--source-port-base + --paths exceeds port 65535");
    }
    Result<NetAddr> source = RouteSource(*remote);
    if (!source.ok()) {
      std::fprintf(stderr, "opensrd perf client: %s\n", source.status().ToString().c_str());
      return 1;
    }
    for (int i = 0; i < o.paths; ++i) {
      const uint16_t port = o.source_port_base ? static_cast<uint16_t>(o.source_port_base + i) : 0;
      NetAddr local = *source;
      local.port = port;
      locals.push_back(local);
      remotes.push_back(*remote);
    }
  }
  Result<FaultSpec> fault = ParseFaultSpec(o.fault);
  if (!fault.ok()) return Usage(fault.status().message());
  for (const auto& [path, f] : fault->paths) {
    if (path >= static_cast<uint32_t>(opts.paths)) {
      return Usage("--fault names path " + std::to_string(path) + " but there are only " +
                   std::to_string(opts.paths) + " paths (numbered from 0)");
    }
  }
  if (o.mode != "bw" && o.mode != "lat") return Usage("--mode must be bw or lat");
  EndpointConfig key_cfg;
  if (Status k = ApplyKeyOptions(o.key_file, o.key_mode, key_cfg); !k.ok()) {
    return Usage(k.message());
  }
  if (Status d = ApplyDmaOptions(o.dma, key_cfg); !d.ok()) return Usage(d.message());
  const uint32_t size = o.size ? o.size : (o.mode == "lat" ? 64 : 65536);
  if (size < kAppHeaderLen) {
    return Usage("--size must be at least " + std::to_string(kAppHeaderLen) + " (the perf header)");
  }
  if (opts.count == 0 && opts.duration_s <= 0) opts.duration_s = 3;
  // Declared before the client: the endpoint's capture source must outlive it.
  Result<std::unique_ptr<PcapWriter>> capture = OpenCapture(o.pcap);
  if (!capture.ok()) return Usage(capture.status().message());
  // Also before the client, which publishes into it.
  std::unique_ptr<MetricsServer> metrics;
  if (!o.metrics.empty()) {
    Result<std::unique_ptr<MetricsServer>> m = MetricsServer::Start(o.metrics, "perf_client");
    if (!m.ok()) {
      if (m.status().code() == Code::kInvalidArgument) return Usage(m.status().message());
      std::fprintf(stderr, "opensrd perf client: %s\n", m.status().message().c_str());
      return 1;
    }
    metrics = std::move(m.value());
  }
  std::unique_ptr<TimelineWriter> timeline;
  if (!o.timeline.empty()) {
    Result<std::unique_ptr<TimelineWriter>> t =
        TimelineWriter::Open(o.timeline, static_cast<Micros>(o.timeline_interval_ms) * 1000);
    if (!t.ok()) return Usage(t.status().message());
    timeline = std::move(t.value());
  }
  PerfClient client(opts, std::move(locals), std::move(remotes));
  client.set_size(size);
  client.set_metrics(metrics.get());
  client.set_timeline(timeline.get());
  Status s = client.Setup(*fault, key_cfg, *capture ? (*capture)->NewSource() : nullptr);
  if (!s.ok()) {
    std::fprintf(stderr, "opensrd perf client: %s\n", s.ToString().c_str());
    return 1;
  }
  client.Run();
  if (timeline && !timeline->Close()) {
    std::fprintf(stderr, "opensrd perf client: --timeline %s: write failed\n", o.timeline.c_str());
    return 1;
  }
  return client.Print(capture->get());
}

}  // namespace opensrd::cli
