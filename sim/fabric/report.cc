#include "sim/fabric/report.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <nlohmann/json.hpp>

namespace opensrd::fabric {

namespace {
Quantiles Of(std::vector<double> v) {
  Quantiles q;
  if (v.empty()) return q;
  std::sort(v.begin(), v.end());
  auto at = [&](double p) {
    const size_t i = static_cast<size_t>(std::ceil(p * static_cast<double>(v.size()))) - 1;
    return v[std::min(i, v.size() - 1)];
  };
  q.min = v.front();
  q.p50 = at(0.5);
  q.p99 = at(0.99);
  q.max = v.back();
  return q;
}
nlohmann::json Json(const Quantiles& q) {
  return {{"min", q.min}, {"p50", q.p50}, {"p99", q.p99}, {"max", q.max}};
}
}  // namespace

double PeakRssMb() {
  FILE* f = std::fopen("/proc/self/status", "r");
  if (f == nullptr) return 0;
  char line[256];
  size_t kb = 0;
  while (std::fgets(line, sizeof line, f)) {
    if (std::sscanf(line, "VmHWM: %zu kB", &kb) == 1) break;
  }
  std::fclose(f);
  return static_cast<double>(kb) / 1024;
}

RunSummary Summarize(Fabric& fabric, const Workload& workload, double wall_s) {
  RunSummary s;
  const FabricConfig& cfg = fabric.config();
  s.topology = cfg.topology.ToString();
  s.hosts = fabric.hosts();
  s.paths = cfg.paths;
  s.seed = cfg.seed;
  s.congestion_control = cfg.endpoint.congestion_control;
  s.flows = workload.flows().size();
  std::vector<double> fct, slow;
  uint64_t last_end = 0, ideal_max = 0;
  for (const FlowRecord& f : workload.flows()) {
    ideal_max = std::max(ideal_max, f.ideal_ns);
    if (f.end_ns == 0 || f.status != Code::kOk) {
      ++s.lost_messages;
      s.fct_list_us.push_back(-1);
      continue;
    }
    ++s.completed;
    const double us = static_cast<double>(f.end_ns - f.start_ns) / 1000;
    fct.push_back(us);
    s.fct_list_us.push_back(us);
    slow.push_back(us * 1000 / static_cast<double>(f.ideal_ns));
    last_end = std::max(last_end, f.end_ns);
  }
  // Ring steps that never started (their predecessor's step never arrived) are lost too.
  const uint64_t never_started = workload.expected_flows() - workload.flows().size();
  s.lost_messages += never_started;
  s.flows += never_started;
  s.fct_us = Of(fct);
  s.slowdown = Of(slow);
  s.ideal_fct_us = static_cast<double>(ideal_max) / 1000;
  s.makespan_us =
      last_end > workload.t0_ns() ? static_cast<double>(last_end - workload.t0_ns()) / 1000 : 0;
  s.ideal_makespan_us = static_cast<double>(workload.IdealMakespanNs()) / 1000;
  s.goodput_frac =
      s.makespan_us > 0 && s.lost_messages == 0 ? s.ideal_makespan_us / s.makespan_us : 0;
  for (HostId h = 0; h < fabric.hosts(); ++h) {
    const EndpointStats st = fabric.endpoint(h).stats();
    s.retransmits += st.retransmits;
    s.rto_events += st.rto_events;
    s.tail_probes += st.tail_probes;
    s.path_stalls += st.path_stalls;
    s.spurious_retransmits += st.spurious_retransmits;
    s.endpoint_memory_bytes += st.memory_bytes;
    for (PeerId p : fabric.endpoint(h).peers()) {
      for (const PathStats& ps : fabric.endpoint(h).path_stats(p))
        s.suspect_events += ps.suspect_events;
    }
  }
  s.fabric = fabric.counters();
  s.packet_pool_peak = fabric.pool().peak();
  s.packet_pool_peak_mb = static_cast<double>(fabric.pool().peak_bytes()) / (1 << 20);
  s.wall_s = wall_s;
  s.sim_us = static_cast<double>(fabric.now_ns()) / 1000;
  s.peak_rss_mb = PeakRssMb();
  return s;
}

std::string SummaryText(const RunSummary& s) {
  char buf[4096];
  const FabricCounters& c = s.fabric;
  auto mean_kb = [&](int t) {
    return c.backlog_samples[t] ? static_cast<double>(c.backlog_sum[t]) /
                                      static_cast<double>(c.backlog_samples[t]) / 1024
                                : 0.0;
  };
  std::snprintf(
      buf, sizeof buf,
      "fabric:   %s\n"
      "workload: %s, %llu flows, %u paths, congestion control %s, seed %llu\n"
      "FCT us:   min %.1f  p50 %.1f  p99 %.1f  max %.1f   (ideal %.1f)\n"
      "slowdown: min %.2f  p50 %.2f  p99 %.2f  max %.2f\n"
      "makespan: %.1f us, ideal %.1f us: goodput %.1f%% of ideal\n"
      "flows:    %llu completed, %llu lost\n"
      "transport: %llu retransmits, %llu RTOs, %llu tail probes, %llu spurious, %llu paths "
      "marked suspect\n"
      "fabric:   %llu packet-hops; dropped %llu queue, %llu dead link, %llu random; %llu ECN "
      "marks\n"
      "queues:   mean/max backlog seen on arrival: NIC %.1f/%.1f KiB, tier 1 %.1f/%.1f KiB, "
      "tier 2 %.1f/%.1f KiB\n"
      "memory:   endpoints %.1f MiB by their accounting, packet pool peak %llu packets "
      "(%.1f MiB), peak RSS %.1f MiB\n"
      "speed:    %.3f s wall for %.1f us simulated; %.2fM events/s, %.2fM packet-hops/s\n",
      s.topology.c_str(), s.workload.c_str(), (unsigned long long)s.flows, s.paths,
      s.congestion_control ? "on" : "off", (unsigned long long)s.seed, s.fct_us.min, s.fct_us.p50,
      s.fct_us.p99, s.fct_us.max, s.ideal_fct_us, s.slowdown.min, s.slowdown.p50, s.slowdown.p99,
      s.slowdown.max, s.makespan_us, s.ideal_makespan_us, 100 * s.goodput_frac,
      (unsigned long long)s.completed, (unsigned long long)s.lost_messages,
      (unsigned long long)s.retransmits, (unsigned long long)s.rto_events,
      (unsigned long long)s.tail_probes, (unsigned long long)s.spurious_retransmits,
      (unsigned long long)s.suspect_events, (unsigned long long)c.packet_hops,
      (unsigned long long)c.dropped_queue, (unsigned long long)c.dropped_down,
      (unsigned long long)c.dropped_loss, (unsigned long long)c.ecn_marked, mean_kb(0),
      static_cast<double>(c.backlog_max[0]) / 1024, mean_kb(1),
      static_cast<double>(c.backlog_max[1]) / 1024, mean_kb(2),
      static_cast<double>(c.backlog_max[2]) / 1024,
      static_cast<double>(s.endpoint_memory_bytes) / (1 << 20),
      (unsigned long long)s.packet_pool_peak, s.packet_pool_peak_mb, s.peak_rss_mb, s.wall_s,
      s.sim_us, s.wall_s > 0 ? static_cast<double>(c.events) / s.wall_s / 1e6 : 0,
      s.wall_s > 0 ? static_cast<double>(c.packet_hops) / s.wall_s / 1e6 : 0);
  std::string text = buf;
  if (s.recovery_measured) {
    char line[256];
    if (s.recovery_us < 0) {
      std::snprintf(line, sizeof line,
                    "failure:  goodput %.2f Tbit/s before, %.2f at worst after; not back above "
                    "90%% before the flows ended\n",
                    s.goodput_before_gbps / 1000, s.goodput_worst_gbps / 1000);
    } else {
      std::snprintf(line, sizeof line,
                    "failure:  goodput %.2f Tbit/s before, %.2f at worst after; back above 90%% "
                    "(for 50 us) after %.1f us\n",
                    s.goodput_before_gbps / 1000, s.goodput_worst_gbps / 1000, s.recovery_us);
    }
    text += line;
  }
  return text;
}

std::string SummaryJson(const RunSummary& s) {
  const FabricCounters& c = s.fabric;
  nlohmann::json j;
  j["topology"] = s.topology;
  j["workload"] = s.workload;
  j["hosts"] = s.hosts;
  j["paths"] = s.paths;
  j["seed"] = s.seed;
  j["congestion_control"] = s.congestion_control;
  j["flows"] = s.flows;
  j["completed"] = s.completed;
  j["lost_messages"] = s.lost_messages;
  j["fct_us"] = Json(s.fct_us);
  j["slowdown"] = Json(s.slowdown);
  j["ideal_fct_us"] = s.ideal_fct_us;
  j["makespan_us"] = s.makespan_us;
  j["ideal_makespan_us"] = s.ideal_makespan_us;
  j["goodput_frac"] = s.goodput_frac;
  j["retransmits"] = s.retransmits;
  j["rto_events"] = s.rto_events;
  j["tail_probes"] = s.tail_probes;
  j["spurious_retransmits"] = s.spurious_retransmits;
  j["suspect_events"] = s.suspect_events;
  j["path_stalls"] = s.path_stalls;
  if (s.recovery_measured) {
    j["failure"] = {{"goodput_before_gbps", s.goodput_before_gbps},
                    {"goodput_worst_gbps", s.goodput_worst_gbps},
                    {"recovery_us", s.recovery_us}};
  }
  j["dropped"] = {
      {"queue", c.dropped_queue}, {"dead_link", c.dropped_down}, {"random", c.dropped_loss}};
  j["ecn_marked"] = c.ecn_marked;
  nlohmann::json q = nlohmann::json::array();
  for (int t = 0; t < 3; ++t) {
    q.push_back({{"tier", t},
                 {"mean_bytes", c.backlog_samples[t] ? c.backlog_sum[t] / c.backlog_samples[t] : 0},
                 {"max_bytes", c.backlog_max[t]}});
  }
  j["queues"] = q;
  j["endpoint_memory_bytes"] = s.endpoint_memory_bytes;
  j["sim"] = {
      {"events", c.events},
      {"packet_hops", c.packet_hops},
      {"wall_s", s.wall_s},
      {"sim_us", s.sim_us},
      {"events_per_s", s.wall_s > 0 ? static_cast<double>(c.events) / s.wall_s : 0},
      {"packet_hops_per_s", s.wall_s > 0 ? static_cast<double>(c.packet_hops) / s.wall_s : 0},
      {"packet_pool_peak", s.packet_pool_peak},
      {"packet_pool_peak_mb", s.packet_pool_peak_mb},
      {"peak_rss_mb", s.peak_rss_mb}};
  return j.dump();
}

bool WriteFlowsCsv(const std::string& path, const Fabric& fabric, const Workload& workload) {
  FILE* f = std::fopen(path.c_str(), "w");
  if (f == nullptr) return false;
  std::fprintf(f, "flow,src,dst,size,start_us,fct_us,ideal_us,slowdown,status\n");
  size_t i = 0;
  for (const FlowRecord& r : workload.flows()) {
    const bool done = r.end_ns != 0 && r.status == Code::kOk;
    const double fct = done ? static_cast<double>(r.end_ns - r.start_ns) / 1000 : -1;
    std::fprintf(f, "%zu,%u,%u,%llu,%.3f,%.3f,%.3f,%.4f,%s\n", i++, r.src, r.dst,
                 (unsigned long long)r.size,
                 static_cast<double>(r.start_ns - std::min(r.start_ns, workload.t0_ns())) / 1000,
                 fct, static_cast<double>(r.ideal_ns) / 1000,
                 done ? fct * 1000 / static_cast<double>(r.ideal_ns) : -1,
                 done ? "ok" : (r.end_ns == 0 ? "unfinished" : CodeName(r.status)));
  }
  (void)fabric;
  return std::fclose(f) == 0;
}

Recovery GoodputRecovery(const std::vector<uint64_t>& series, uint64_t bucket_ns, uint64_t t0_ns,
                         uint64_t fail_ns, uint64_t end_ns, uint64_t smooth_ns, uint64_t hold_ns) {
  Recovery r;
  if (bucket_ns == 0) return r;
  // Bucket i covers [i * b, (i + 1) * b) of absolute time; t is its start relative to t0.
  const size_t w = std::max<uint64_t>(1, (smooth_ns + bucket_ns / 2) / bucket_ns);
  std::vector<double> t, g;
  double sum = 0;
  std::vector<double> raw;
  for (size_t i = 0; i < series.size(); ++i) {
    const uint64_t start = i * bucket_ns;
    if (start + bucket_ns <= t0_ns) continue;
    if (start >= t0_ns + end_ns) break;
    raw.push_back(static_cast<double>(series[i]) * 8 / static_cast<double>(bucket_ns));
    sum += raw.back();
    if (raw.size() > w) sum -= raw[raw.size() - 1 - w];
    t.push_back(static_cast<double>(start) - static_cast<double>(t0_ns));
    g.push_back(sum / static_cast<double>(std::min(raw.size(), w)));
  }
  const double fail = static_cast<double>(fail_ns);
  double level = 0;
  size_t n = 0;
  for (size_t i = 0; i < t.size(); ++i) {
    if (t[i] >= fail - 50'000 && t[i] < fail) level += g[i], ++n;
  }
  if (n == 0) return r;
  level /= static_cast<double>(n);
  r.before_gbps = level;
  size_t first = t.size();
  for (size_t i = 0; i < t.size(); ++i) {
    if (t[i] >= fail) {
      first = i;
      break;
    }
  }
  if (first == t.size()) return r;
  r.worst_gbps = g[first];
  bool dipped = false;
  for (size_t i = first; i < t.size(); ++i) r.worst_gbps = std::min(r.worst_gbps, g[i]);
  if (r.worst_gbps >= 0.9 * level) {
    r.recovery_us = 0;
    return r;
  }
  const double hold = static_cast<double>(hold_ns);
  for (size_t i = first; i < t.size(); ++i) {
    dipped |= g[i] < 0.9 * level;
    if (!dipped || t.back() < t[i] + hold) continue;
    bool stays = true;
    for (size_t j = i; j < t.size() && t[j] < t[i] + hold; ++j) stays &= g[j] >= 0.9 * level;
    if (stays) {
      r.recovery_us = (t[i] - fail) / 1000;
      return r;
    }
  }
  return r;
}

bool WriteGoodputCsv(const std::string& path, const Fabric& fabric, uint64_t t0_ns) {
  FILE* f = std::fopen(path.c_str(), "w");
  if (f == nullptr) return false;
  const uint64_t b = fabric.config().goodput_bucket_ns;
  std::fprintf(f, "t_us,gbps\n");
  const auto& series = fabric.goodput_series();
  for (size_t i = 0; i < series.size(); ++i) {
    const uint64_t t = i * b;
    if (t + b <= t0_ns) continue;
    std::fprintf(f, "%.3f,%.3f\n", (static_cast<double>(t) - static_cast<double>(t0_ns)) / 1000,
                 static_cast<double>(series[i]) * 8 / static_cast<double>(b));
  }
  return std::fclose(f) == 0;
}

}  // namespace opensrd::fabric
