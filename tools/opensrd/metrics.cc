#include "tools/opensrd/metrics.h"

#include <httplib.h>
#include <pthread.h>
#include <signal.h>

#include <cstdio>
#include <mutex>
#include <sstream>
#include <thread>
#include <utility>
#include <vector>

namespace opensrd::cli {

namespace {

constexpr Micros kPublishPeriodUs = 100'000;

struct Snapshot {
  bool valid = false;
  EndpointStats ep;
  UdpStats udp;
  std::vector<std::pair<PeerId, std::vector<PathStats>>> peers;
  std::vector<ContextStats> contexts;
  std::vector<std::string> locals;  // socket i's bound address
  std::vector<ExtraMetric> extra;
};

// One metric family: HELP, TYPE, then its samples.
class Text {
 public:
  void Family(const std::string& name, const char* type, const char* help) {
    out_ << "# HELP " << name << ' ' << help << "\n# TYPE " << name << ' ' << type << '\n';
  }
  void Sample(const std::string& name, const std::string& labels, double v) {
    out_ << name;
    if (!labels.empty()) out_ << '{' << labels << '}';
    char buf[64];
    std::snprintf(buf, sizeof buf, " %.17g\n", v);
    out_ << buf;
  }
  std::string str() const { return out_.str(); }

 private:
  std::ostringstream out_;
};

std::string Quote(const std::string& s) {  // label value escaping (\, ", newline)
  std::string o;
  for (char c : s) {
    if (c == '\\' || c == '"') o += '\\';
    if (c == '\n') {
      o += "\\n";
      continue;
    }
    o += c;
  }
  return '"' + o + '"';
}

std::string Render(const Snapshot& s, const std::string& command) {
  Text t;
  t.Family("opensrd_info", "gauge", "Always 1; labels name the command.");
  t.Sample("opensrd_info", "command=" + Quote(command), 1);
  if (!s.valid) return t.str();
  // Endpoint counters. EFA's device counter names where the meaning is the same.
  const EndpointStats& e = s.ep;
  const struct {
    const char* name;
    uint64_t value;
    const char* help;
  } counters[] = {
      {"tx_pkts", e.datagrams_out, "Datagrams the endpoint sent (EFA tx_pkts)."},
      {"rx_pkts", e.datagrams_in, "Datagrams handed to the endpoint (EFA rx_pkts)."},
      {"rx_bytes", e.bytes_received, "Message bytes received (EFA rx_bytes)."},
      {"data_pkts_sent", e.data_packets_sent, "DATA packets sent, retransmissions included."},
      {"retrans_pkts", e.retransmits, "DATA packets retransmitted (EFA retrans_pkts)."},
      {"retrans_timeout_events", e.rto_events,
       "Retransmission timeouts (EFA retrans_timeout_events)."},
      {"spurious_retrans_timeout_events", e.spurious_rto_events,
       "Retransmission timeouts proven spurious later (the window cut was undone)."},
      {"tail_loss_probes", e.tail_probes, "Tail-loss probes sent."},
      {"spurious_retrans_pkts", e.spurious_retransmits,
       "Retransmissions the peer reported as duplicates (declared lost too early)."},
      {"acks_sent", e.acks_sent, "Standalone ACK packets sent."},
      {"acks_piggybacked", e.acks_piggybacked, "Acks that rode on a DATA packet."},
      {"acks_received", e.acks_received, "Acks received."},
      {"malformed_dropped", e.malformed_dropped, "Datagrams that failed to parse."},
      {"corrupt_dropped", e.corrupt_dropped, "Datagrams with a bad CRC32C."},
      {"duplicates_dropped", e.duplicates_dropped, "Duplicate DATA packets dropped."},
      {"stale_dropped", e.stale_dropped, "Packets for another incarnation or unknown context."},
      {"out_of_window_dropped", e.out_of_window_dropped, "DATA beyond the receive window."},
      {"rnr_sent", e.rnr_sent, "Receiver-not-ready NACKs sent."},
      {"rnr_received", e.rnr_received, "Receiver-not-ready NACKs received."},
      {"rnr_waits", e.rnr_waits, "Times a context began holding back after an RNR NACK."},
      {"endpoint_path_state_changes", e.path_state_changes,
       "Path state changes (active/suspect), all peers, freed ones included."},
      {"resets_sent", e.resets_sent, "RESETs sent."},
      {"resets_received", e.resets_received, "RESETs received."},
      {"retries_sent", e.retries_sent, "RETRYs sent (HELLOs without a valid cookie)."},
      {"forged_dropped", e.forged_dropped, "Packets dropped as forged."},
      {"auth_failed", e.auth_failed, "Datagrams whose cluster-key tag did not verify."},
      {"path_challenges_sent", e.path_challenges_sent, "PATH_CHALLENGEs sent."},
      {"paths_validated", e.paths_validated, "Path challenges answered."},
      {"path_migrations", e.path_migrations, "Validated paths that moved address."},
      {"peer_restarts", e.peer_restarts, "Peers seen restarting."},
      {"unresponsive_remote_events", e.peer_timeouts,
       "Peers that stopped answering (EFA unresponsive_remote_events)."},
      {"contexts_reclaimed", e.contexts_reclaimed, "Idle contexts freed."},
      {"peers_freed", e.peers_freed, "Accepted peers forgotten."},
      {"messages_sent", e.messages_sent, "Messages completed by the sender."},
      {"messages_received", e.messages_received, "Messages delivered."},
  };
  for (const auto& c : counters) {
    const std::string name = std::string("opensrd_") + c.name + "_total";
    t.Family(name, "counter", c.help);
    t.Sample(name, "", static_cast<double>(c.value));
  }
  const struct {
    const char* name;
    uint64_t value;
    const char* help;
  } gauges[] = {
      {"contexts", e.contexts_live, "Transport contexts alive."},
      {"peers", e.peers_live, "Peers known."},
      {"memory_bytes", e.memory_bytes, "Bytes the endpoint holds by its own accounting."},
      {"cwnd_bytes", e.cwnd_bytes, "Congestion windows, summed over contexts."},
      {"inflight_bytes", e.inflight_bytes, "Payload bytes in flight, summed over contexts."},
      {"pacing_rate_bytes_per_second", e.pacing_rate_bytes_per_s,
       "Pacer refill rates, summed over contexts (0: congestion control off)."},
  };
  for (const auto& g : gauges) {
    const std::string name = std::string("opensrd_") + g.name;
    t.Family(name, "gauge", g.help);
    t.Sample(name, "", static_cast<double>(g.value));
  }
  // Retransmissions by cause; they sum to opensrd_retrans_pkts_total.
  {
    const char* name = "opensrd_retrans_cause_pkts_total";
    t.Family(name, "counter",
             "DATA packets retransmitted, by what declared them lost (rack, rto, tlp: tail-loss "
             "probe, nack: refused out of window, rnr: re-sent after receiver-not-ready).");
    const std::pair<const char*, uint64_t> causes[] = {{"rack", e.retrans_rack},
                                                       {"rto", e.retrans_rto},
                                                       {"tlp", e.retrans_tlp},
                                                       {"nack", e.retrans_nack},
                                                       {"rnr", e.retrans_rnr}};
    for (const auto& [cause, v] : causes) {
      t.Sample(name, std::string("cause=") + Quote(cause), static_cast<double>(v));
    }
  }
  // The UDP shell.
  const UdpStats& u = s.udp;
  const struct {
    const char* name;
    uint64_t value;
    const char* help;
  } shell[] = {
      {"udp_datagrams_sent", u.datagrams_sent, "Datagrams the kernel took."},
      {"udp_datagrams_received", u.datagrams_received, "recvmmsg messages (a GRO batch is one)."},
      {"udp_send_retries", u.send_retries, "Sends the kernel pushed back (kept, retried)."},
      {"udp_send_errors", u.send_errors, "Datagrams dropped by a send error."},
      {"udp_gso_batches", u.gso_batches, "Sends carrying several datagrams."},
      {"udp_gro_batches", u.gro_batches, "Receives carrying several datagrams."},
      {"fault_dropped", u.fault_dropped, "Datagrams the fault injector dropped."},
      {"fault_duplicated", u.fault_duplicated, "Datagrams the fault injector duplicated."},
      {"fault_corrupted", u.fault_corrupted, "Datagrams the fault injector corrupted."},
      {"fault_delayed", u.fault_delayed, "Datagrams the fault injector delayed."},
  };
  for (const auto& c : shell) {
    const std::string name = std::string("opensrd_") + c.name + "_total";
    t.Family(name, "counter", c.help);
    t.Sample(name, "", static_cast<double>(c.value));
  }
  // Per path of every peer.
  auto labels = [&](PeerId peer, const PathStats& p) {
    const std::string local =
        p.spec.local_socket < s.locals.size() ? s.locals[p.spec.local_socket] : "";
    return "peer=" + Quote(std::to_string(peer)) + ",path=" + Quote(std::to_string(p.id)) +
           ",local=" + Quote(local) + ",remote=" + Quote(ToString(p.spec.remote));
  };
  const struct {
    const char* name;
    const char* type;
    const char* help;
    double (*get)(const PathStats&);
  } path_metrics[] = {
      {"opensrd_path_tx_pkts_total", "counter", "DATA packets first sent on the path.",
       [](const PathStats& p) { return static_cast<double>(p.sent); }},
      {"opensrd_path_retrans_pkts_total", "counter", "DATA packets re-sent on the path.",
       [](const PathStats& p) { return static_cast<double>(p.retransmitted); }},
      {"opensrd_path_acked_pkts_total", "counter", "DATA packets sent on the path and acked.",
       [](const PathStats& p) { return static_cast<double>(p.acked); }},
      {"opensrd_path_lost_pkts_total", "counter", "DATA packets declared lost on the path.",
       [](const PathStats& p) { return static_cast<double>(p.lost); }},
      {"opensrd_path_spurious_retrans_total", "counter",
       "Acks on the path reporting a duplicate arrival.",
       [](const PathStats& p) { return static_cast<double>(p.spurious); }},
      {"opensrd_path_suspect_events_total", "counter", "Times the path was marked suspect.",
       [](const PathStats& p) { return static_cast<double>(p.suspect_events); }},
      {"opensrd_path_state_changes_total", "counter",
       "Changes of the path's state (active to suspect and back).",
       [](const PathStats& p) { return static_cast<double>(p.state_changes); }},
      {"opensrd_path_retrans_timeout_events_total", "counter",
       "Retransmission timeouts on the path (EFA retrans_timeout_events).",
       [](const PathStats& p) { return static_cast<double>(p.rto_events); }},
      {"opensrd_path_srtt_seconds", "gauge", "Smoothed round-trip time.",
       [](const PathStats& p) { return static_cast<double>(p.srtt_us) / 1e6; }},
      {"opensrd_path_min_rtt_seconds", "gauge", "Smallest round-trip time seen.",
       [](const PathStats& p) { return static_cast<double>(p.min_rtt_us) / 1e6; }},
  };
  for (const auto& m : path_metrics) {
    t.Family(m.name, m.type, m.help);
    for (const auto& [peer, paths] : s.peers) {
      for (const PathStats& p : paths) t.Sample(m.name, labels(peer, p), m.get(p));
    }
  }
  {
    const char* name = "opensrd_path_lost_retrans_pkts_total";
    t.Family(name, "counter",
             "Packets lost on the path and re-sent (on any path), by what declared the loss.");
    for (const auto& [peer, paths] : s.peers) {
      for (const PathStats& p : paths) {
        const std::string l = labels(peer, p) + ",cause=";
        t.Sample(name, l + Quote("rack"), static_cast<double>(p.retrans_rack));
        t.Sample(name, l + Quote("rto"), static_cast<double>(p.retrans_rto));
        t.Sample(name, l + Quote("tlp"), static_cast<double>(p.retrans_tlp));
      }
    }
  }
  t.Family("opensrd_path_state", "gauge", "1 for the path's current state, 0 for the others.");
  for (const auto& [peer, paths] : s.peers) {
    for (const PathStats& p : paths) {
      for (PathState st : {PathState::kActive, PathState::kSuspect}) {
        t.Sample("opensrd_path_state", labels(peer, p) + ",state=" + Quote(PathStateName(st)),
                 p.state == st ? 1 : 0);
      }
    }
  }
  // Per transport context.
  auto ctx_labels = [](const ContextStats& c) {
    return "peer=" + Quote(std::to_string(c.peer)) +
           ",context=" + Quote(std::to_string(c.local_id)) +
           ",remote_context=" + Quote(std::to_string(c.remote_id));
  };
  const struct {
    const char* name;
    const char* type;
    const char* help;
    double (*get)(const ContextStats&);
  } ctx_metrics[] = {
      {"opensrd_context_cwnd_bytes", "gauge", "Congestion window.",
       [](const ContextStats& c) { return static_cast<double>(c.cwnd_bytes); }},
      {"opensrd_context_pacing_rate_bytes_per_second", "gauge",
       "Pacer refill rate (2 x cwnd / srtt; 0: congestion control off).",
       [](const ContextStats& c) { return static_cast<double>(c.pacing_rate_bytes_per_s); }},
      {"opensrd_context_srtt_seconds", "gauge", "Smoothed RTT over all the context's paths.",
       [](const ContextStats& c) { return static_cast<double>(c.srtt_us) / 1e6; }},
      {"opensrd_context_min_rtt_seconds", "gauge", "Smallest RTT sample (0: none yet).",
       [](const ContextStats& c) { return static_cast<double>(c.min_rtt_us) / 1e6; }},
      {"opensrd_context_inflight_bytes", "gauge", "Payload bytes sent and not yet acked.",
       [](const ContextStats& c) { return static_cast<double>(c.inflight_bytes); }},
      {"opensrd_context_data_pkts_sent_total", "counter", "DATA packets sent, re-sends included.",
       [](const ContextStats& c) { return static_cast<double>(c.data_packets_sent); }},
      {"opensrd_context_retrans_pkts_total", "counter", "DATA packets re-sent.",
       [](const ContextStats& c) { return static_cast<double>(c.retransmits); }},
      {"opensrd_context_retrans_timeout_events_total", "counter", "Retransmission timeouts.",
       [](const ContextStats& c) { return static_cast<double>(c.rto_events); }},
      {"opensrd_context_rnr_waits_total", "counter", "Receiver-not-ready waits begun.",
       [](const ContextStats& c) { return static_cast<double>(c.rnr_waits); }},
  };
  for (const auto& m : ctx_metrics) {
    t.Family(m.name, m.type, m.help);
    for (const ContextStats& c : s.contexts) t.Sample(m.name, ctx_labels(c), m.get(c));
  }
  // The command's own families.
  for (size_t i = 0; i < s.extra.size(); ++i) {
    const ExtraMetric& x = s.extra[i];
    if (i == 0 || s.extra[i - 1].name != x.name) t.Family(x.name, x.type, x.help.c_str());
    t.Sample(x.name, x.labels, x.value);
  }
  return t.str();
}

}  // namespace

std::string MetricLabel(const std::string& key, const std::string& value) {
  return key + '=' + Quote(value);
}

class MetricsServer::Impl {
 public:
  explicit Impl(std::string command) : command_(std::move(command)) {}
  ~Impl() {
    server_.stop();
    if (thread_.joinable()) thread_.join();
  }

  Status Start(const std::string& host_port) {
    Result<NetAddr> a = ParseNetAddr(host_port);
    if (!a.ok())
      return Status(Code::kInvalidArgument, "--metrics " + host_port + ": " + a.status().message());
    if (a->port == 0) return Status(Code::kInvalidArgument, "--metrics " + host_port + ": port 0");
    std::string host = ToString(*a);
    host = host.substr(0, host.rfind(':'));
    if (!host.empty() && host.front() == '[') host = host.substr(1, host.size() - 2);
    server_.Get("/metrics", [this](const httplib::Request&, httplib::Response& res) {
      Snapshot copy;
      {
        std::lock_guard<std::mutex> l(mu_);
        copy = snapshot_;
      }
      res.set_content(Render(copy, command_), "text/plain; version=0.0.4; charset=utf-8");
    });
    if (!server_.bind_to_port(host.c_str(), a->port)) {
      return Status(Code::kIoError, "--metrics " + host_port + ": cannot listen there");
    }
    thread_ = std::thread([this] {
      // Signals go to the command's own threads (httplib's workers inherit this mask).
      sigset_t all;
      sigfillset(&all);
      pthread_sigmask(SIG_BLOCK, &all, nullptr);
      server_.listen_after_bind();
    });
    return Status::Ok();
  }

  void MaybePublish(const UdpEndpoint& udp, bool force, const ExtraMetricsFn& extra) {
    const Micros now = udp.Now();
    if (!force && now < last_ + kPublishPeriodUs) return;
    std::unique_lock<std::mutex> l(mu_, std::try_to_lock);
    if (!l.owns_lock()) return;  // a scrape is copying: try again next time
    last_ = now;
    const Endpoint& ep = udp.endpoint();
    snapshot_.valid = true;
    snapshot_.ep = ep.stats();
    snapshot_.udp = udp.stats();
    snapshot_.peers.clear();
    snapshot_.contexts.clear();
    for (PeerId p : ep.peers()) {
      snapshot_.peers.emplace_back(p, ep.path_stats(p));
      for (const ContextStats& c : ep.context_stats(p)) snapshot_.contexts.push_back(c);
    }
    snapshot_.extra.clear();
    if (extra) extra(snapshot_.extra);
    snapshot_.locals.clear();
    for (size_t i = 0; i < udp.num_sockets(); ++i) {
      snapshot_.locals.push_back(ToString(udp.local_address(i)));
    }
  }

 private:
  const std::string command_;
  httplib::Server server_;
  std::thread thread_;
  std::mutex mu_;
  Snapshot snapshot_;  // guarded by mu_
  Micros last_ = 0;    // I/O thread only
};

Result<std::unique_ptr<MetricsServer>> MetricsServer::Start(const std::string& host_port,
                                                            const std::string& command) {
  auto impl = std::make_unique<Impl>(command);
  Status s = impl->Start(host_port);
  if (!s.ok()) return s;
  return std::unique_ptr<MetricsServer>(new MetricsServer(std::move(impl)));
}

MetricsServer::MetricsServer(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
MetricsServer::~MetricsServer() = default;

void MetricsServer::MaybePublish(const UdpEndpoint& udp, bool force, const ExtraMetricsFn& extra) {
  impl_->MaybePublish(udp, force, extra);
}

}  // namespace opensrd::cli
