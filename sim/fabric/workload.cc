#include "sim/fabric/workload.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <set>

#include "sim/fabric/spec_parse.h"

namespace opensrd::fabric {

namespace {
Status Bad(const std::string& msg) {
  return Status(Code::kInvalidArgument, msg);
}

// The web-search flow sizes of DCTCP (Alizadeh et al., SIGCOMM 2010) in the form pFabric's
// simulations use: (size in 1460-byte packets, cumulative probability); sizes between points
// are interpolated.
struct CdfPoint {
  double packets;
  double p;
};
constexpr CdfPoint kWebSearch[] = {{1, 0.0},    {6, 0.15},   {13, 0.2},    {19, 0.3},
                                   {33, 0.4},   {53, 0.53},  {133, 0.6},   {667, 0.7},
                                   {1333, 0.8}, {3333, 0.9}, {6667, 0.97}, {20000, 1.0}};
double WebSearchBytes(double u) {
  for (size_t i = 1; i < std::size(kWebSearch); ++i) {
    if (u <= kWebSearch[i].p) {
      const CdfPoint a = kWebSearch[i - 1], b = kWebSearch[i];
      const double f = (u - a.p) / (b.p - a.p);
      return (a.packets + f * (b.packets - a.packets)) * 1460;
    }
  }
  return kWebSearch[std::size(kWebSearch) - 1].packets * 1460;
}
double WebSearchMeanBytes() {
  double mean = 0;
  for (size_t i = 1; i < std::size(kWebSearch); ++i) {
    const CdfPoint a = kWebSearch[i - 1], b = kWebSearch[i];
    mean += (b.p - a.p) * (a.packets + b.packets) / 2 * 1460;
  }
  return mean;
}
constexpr uint64_t kMaxMessage = 64u << 20;  // EndpointConfig::max_message
constexpr int kTagShift = 20;                // send tag: flow << 20 | message index
}  // namespace

std::string WorkloadSpec::ToString() const {
  char buf[160];
  switch (kind) {
    case Kind::kPermutation:
      std::snprintf(buf, sizeof buf, "permutation, %llu bytes per flow in %u message(s)",
                    (unsigned long long)size, msgs);
      break;
    case Kind::kIncast:
      std::snprintf(buf, sizeof buf, "incast %u->1, %llu bytes per flow in %u message(s)", n,
                    (unsigned long long)size, msgs);
      break;
    case Kind::kAllToAll:
      std::snprintf(buf, sizeof buf, "all-to-all, %llu bytes per pair", (unsigned long long)size);
      break;
    case Kind::kRing:
      std::snprintf(buf, sizeof buf, "ring allreduce of %llu bytes per host",
                    (unsigned long long)size);
      break;
    case Kind::kDist:
      std::snprintf(buf, sizeof buf, "%u web-search flows at load %.2f", flows, load);
      break;
  }
  return buf;
}

Result<WorkloadSpec> ParseWorkload(const std::string& text, uint32_t hosts) {
  auto split = SplitSpec(text, "workload");
  if (!split.ok()) return split.status();
  const std::string& kind = split.value().kind;
  const auto& args = split.value().args;
  WorkloadSpec w;
  std::set<std::string> known;
  if (kind == "permutation") {
    w.kind = WorkloadSpec::Kind::kPermutation;
    known = {"size", "msgs"};
  } else if (kind == "incast") {
    w.kind = WorkloadSpec::Kind::kIncast;
    known = {"size", "msgs", "n"};
  } else if (kind == "alltoall") {
    w.kind = WorkloadSpec::Kind::kAllToAll;
    w.size = 64 * 1024;
    known = {"size"};
  } else if (kind == "ring") {
    w.kind = WorkloadSpec::Kind::kRing;
    w.size = 8u << 20;
    known = {"size"};
  } else if (kind == "dist") {
    w.kind = WorkloadSpec::Kind::kDist;
    known = {"load", "flows", "cdf"};
  } else {
    return Bad("workload '" + text + "': unknown kind '" + kind +
               "' (permutation, incast, alltoall, ring, dist)");
  }
  for (const auto& [key, v] : args) {
    if (!known.count(key)) return Bad("workload '" + text + "': unknown key '" + key + "'");
  }
  auto wrap = [&](const Status& s) { return Bad("workload '" + text + "': " + s.message()); };
  if (auto it = args.find("msgs"); it != args.end()) {
    auto r = ParseCount(it->second, "msgs", 1, 1024);
    if (!r.ok()) return wrap(r.status());
    w.msgs = static_cast<uint32_t>(r.value());
  }
  if (auto it = args.find("size"); it != args.end()) {
    auto r = ParseBytes(it->second, "size", 1, kMaxMessage * w.msgs);
    if (!r.ok()) return wrap(r.status());
    w.size = r.value();
  }
  if (w.size < w.msgs) return Bad("workload '" + text + "': fewer bytes than messages");
  if (w.kind == WorkloadSpec::Kind::kRing && w.size / hosts == 0) {
    return Bad("workload '" + text + "': size must be at least one byte per host");
  }
  if (auto it = args.find("n"); it != args.end()) {
    auto r = ParseCount(it->second, "n", 1, hosts > 1 ? hosts - 1 : 1);
    if (!r.ok()) return wrap(r.status());
    w.n = static_cast<uint32_t>(r.value());
  } else if (w.kind == WorkloadSpec::Kind::kIncast) {
    w.n = std::min<uint32_t>(w.n, hosts - 1);
  }
  if (auto it = args.find("load"); it != args.end()) {
    auto r = ParseReal(it->second, "load", 0.01, 1.0);
    if (!r.ok()) return wrap(r.status());
    w.load = r.value();
  }
  if (auto it = args.find("flows"); it != args.end()) {
    auto r = ParseCount(it->second, "flows", 1, 10'000'000);
    if (!r.ok()) return wrap(r.status());
    w.flows = static_cast<uint32_t>(r.value());
  }
  if (auto it = args.find("cdf"); it != args.end() && it->second != "websearch") {
    return Bad("workload '" + text + "': cdf='" + it->second + "': only websearch is built in");
  }
  if (hosts < 2) return Bad("workload '" + text + "': needs at least two hosts");
  return w;
}

Workload::Workload(const WorkloadSpec& spec, Fabric& fabric, uint32_t paths, uint64_t seed)
    : spec_(spec), fab_(fabric), paths_(paths), rng_(seed * 0x9E3779B97F4A7C15ull + 11) {
  const uint32_t n = fab_.hosts();
  uint64_t largest = 0;
  switch (spec_.kind) {
    case WorkloadSpec::Kind::kPermutation: {
      // A random derangement (Sattolo's algorithm gives one cycle through all hosts).
      std::vector<uint32_t> perm(n);
      for (uint32_t i = 0; i < n; ++i) perm[i] = i;
      for (uint32_t i = n - 1; i > 0; --i) std::swap(perm[i], perm[rng_.Below(i)]);
      for (uint32_t i = 0; i < n; ++i) AddFlow(i, perm[i], spec_.size, 0);
      break;
    }
    case WorkloadSpec::Kind::kIncast:
      // Senders spread evenly over the hosts from the far end (one sender is in another pod).
      for (uint32_t i = 0; i < spec_.n; ++i) {
        AddFlow(n - 1 - static_cast<HostId>(uint64_t{i} * (n - 1) / spec_.n), 0, spec_.size, 0);
      }
      break;
    case WorkloadSpec::Kind::kAllToAll:
      for (uint32_t s = 0; s < n; ++s) {
        for (uint32_t d = 0; d < n; ++d) {
          if (s != d) AddFlow(s, d, spec_.size, 0);
        }
      }
      break;
    case WorkloadSpec::Kind::kRing:
      ring_recvs_.assign(n, 0);
      expected_flows_ = uint64_t{n} * 2 * (n - 1);
      for (uint32_t h = 0; h < n; ++h) AddFlow(h, (h + 1) % n, spec_.size / n, 0);
      break;
    case WorkloadSpec::Kind::kDist: {
      // Poisson arrivals: every host offers `load` of its link on average.
      const double mean = WebSearchMeanBytes();
      const double per_ns = spec_.load * fab_.topology().spec().host_gbps / 8 / mean * n;
      double t = 0;
      for (uint32_t f = 0; f < spec_.flows; ++f) {
        t += -std::log(1 - rng_.Unit()) / per_ns;
        const HostId s = static_cast<HostId>(rng_.Below(n));
        HostId d = static_cast<HostId>(rng_.Below(n - 1));
        if (d >= s) ++d;
        const uint64_t size = std::max<uint64_t>(1, std::llround(WebSearchBytes(rng_.Unit())));
        AddFlow(s, d, size, static_cast<uint64_t>(t));
      }
      break;
    }
  }
  if (spec_.kind != WorkloadSpec::Kind::kRing) expected_flows_ = flows_.size();
  for (const FlowRecord& f : flows_) largest = std::max(largest, f.size);
  const uint64_t msg = (largest + spec_.msgs - 1) / spec_.msgs;
  source_.assign(msg, 0x5A);
  sink_.assign(msg, 0);
  // Receive buffers: as many as a host may need at once (reposted after each message).
  std::vector<uint64_t> incoming(n, 0);
  for (const FlowRecord& f : flows_) incoming[f.dst] += spec_.msgs;
  for (HostId h = 0; h < n; ++h) {
    uint64_t post = std::min<uint64_t>(incoming[h], 1024);
    if (spec_.kind == WorkloadSpec::Kind::kRing) post = 16;
    for (uint64_t i = 0; i < post; ++i) {
      (void)fab_.endpoint(h).PostRecv(fab_.cq(h), sink_.data(), sink_.size(), i);
    }
  }
}

void Workload::AddFlow(HostId src, HostId dst, uint64_t size, uint64_t start_ns) {
  FlowRecord f;
  f.src = src;
  f.dst = dst;
  f.size = size;
  f.start_ns = start_ns;  // relative to t0 until the flow starts
  f.ideal_ns = fab_.IdealFctNs(src, dst, size);
  flows_.push_back(f);
}

void Workload::Connect(uint64_t deadline_ns) {
  std::set<std::pair<HostId, HostId>> pairs;
  for (const FlowRecord& f : flows_) pairs.insert({f.src, f.dst});
  for (const auto& [s, d] : pairs) fab_.Connect(s, d, paths_);
  const uint64_t want = fab_.connected_events() + pairs.size();
  // The senders' sessions are up once each reported kConnected; the fabric then goes quiet
  // but for timers, so stop as soon as the count is reached.
  fab_.on_completion = nullptr;
  while (fab_.connected_events() < want && fab_.now_ns() < deadline_ns &&
         fab_.event_queue_size() > 0) {
    fab_.Run(std::min(deadline_ns, fab_.now_ns() + 1000));
  }
}

void Workload::StartFlow(uint32_t f) {
  FlowRecord& r = flows_[f];
  r.start_ns = fab_.now_ns();
  r.msgs_left = spec_.msgs;
  Endpoint& ep = fab_.endpoint(r.src);
  const PeerId peer = fab_.Connect(r.src, r.dst, paths_);
  uint64_t left = r.size;
  for (uint32_t m = 0; m < spec_.msgs; ++m) {
    const uint64_t len = m + 1 == spec_.msgs ? left : r.size / spec_.msgs;
    left -= len;
    const Sge sge{source_.data(), len};
    const Status st =
        ep.PostSend(fab_.sq(r.src), peer, {&sge, 1}, (uint64_t{f} << kTagShift) | m, fab_.now_ns());
    if (!st.ok()) {
      r.status = st.code();
      --r.msgs_left;
    }
  }
  if (r.msgs_left == 0) {
    r.end_ns = fab_.now_ns();
    ++completed_;
  }
  fab_.Kick(r.src);
}

void Workload::OnCompletion(HostId h, const Completion& c) {
  if (c.kind == CompletionKind::kRecv) {
    // The same sink buffer goes back for the next message.
    (void)fab_.endpoint(h).PostRecv(fab_.cq(h), sink_.data(), sink_.size(), c.tag);
    if (spec_.kind == WorkloadSpec::Kind::kRing && c.status == Code::kOk) {
      const uint64_t step = ++ring_recvs_[h];
      const uint32_t n = fab_.hosts();
      if (step < 2 * (n - 1)) {
        AddFlow(h, (h + 1) % n, spec_.size / n, 0);
        StartFlow(static_cast<uint32_t>(flows_.size() - 1));
      }
    }
    return;
  }
  FlowRecord& r = flows_[c.tag >> kTagShift];
  if (c.status != Code::kOk && r.status == Code::kOk) r.status = c.status;
  if (r.msgs_left == 0) return;
  if (--r.msgs_left == 0) {
    r.end_ns = fab_.now_ns();
    if (++completed_ == expected_flows_) fab_.Stop();
  }
}

void Workload::Run(uint64_t t0_ns, uint64_t deadline_ns) {
  t0_ = t0_ns;
  fab_.on_completion = [this](HostId h, const Completion& c) { OnCompletion(h, c); };
  // Flows are in start order; one callback starts those due and schedules the next batch.
  auto next = std::make_shared<uint32_t>(0);
  const uint32_t initial = static_cast<uint32_t>(flows_.size());
  std::shared_ptr<std::function<void()>> pump = std::make_shared<std::function<void()>>();
  *pump = [this, next, initial, pump_weak = std::weak_ptr<std::function<void()>>(pump)] {
    while (*next < initial && t0_ + flows_[*next].start_ns <= fab_.now_ns()) StartFlow((*next)++);
    if (*next < initial) {
      auto p = pump_weak.lock();
      fab_.At(t0_ + flows_[*next].start_ns, [p] { (*p)(); });
    }
  };
  fab_.At(t0_, [pump] { (*pump)(); });
  fab_.Run(deadline_ns);
}

uint64_t Workload::IdealMakespanNs() const {
  const uint32_t n = fab_.hosts();
  const double gbps = fab_.topology().spec().host_gbps;
  if (spec_.kind == WorkloadSpec::Kind::kRing) {
    // Step k leaves host x once step k-1 from x-1 has arrived: the last step's chain of
    // dependencies walks back around the ring over 2(n-1) edges, each at its unloaded delivery
    // time (its ack is waited for only at the very end). Prefix sums over the doubled ring.
    const uint64_t c = spec_.size / n;
    const uint64_t steps = 2 * uint64_t{n - 1};
    std::vector<uint64_t> prefix(1, 0);
    for (uint64_t i = 0; i < 3 * uint64_t{n}; ++i) {
      const HostId h = static_cast<HostId>(i % n);
      prefix.push_back(prefix.back() + fab_.IdealDeliveryNs(h, (h + 1) % n, c));
    }
    uint64_t worst = 0;
    for (uint64_t end = steps; end < prefix.size(); ++end) {
      worst = std::max(worst, prefix[end] - prefix[end - steps]);
    }
    return worst + fab_.IdealFctNs(0, 1, c) - fab_.IdealDeliveryNs(0, 1, c);
  }
  std::vector<uint64_t> in(n, 0), out(n, 0);
  uint64_t latency = 0, last_start = 0;
  for (const FlowRecord& f : flows_) {
    in[f.dst] += fab_.WireBytes(f.size);
    out[f.src] += fab_.WireBytes(f.size);
    latency = std::max(
        latency,
        f.ideal_ns - static_cast<uint64_t>(static_cast<double>(fab_.WireBytes(f.size)) * 8 / gbps));
    // Started flows hold absolute times; the others, offsets from t0.
    last_start = std::max(last_start, f.start_ns >= t0_ ? f.start_ns - t0_ : f.start_ns);
  }
  const uint64_t most =
      std::max(*std::max_element(in.begin(), in.end()), *std::max_element(out.begin(), out.end()));
  const uint64_t busy = static_cast<uint64_t>(static_cast<double>(most) * 8 / gbps) + latency;
  return spec_.kind == WorkloadSpec::Kind::kDist ? std::max(busy, last_start + latency) : busy;
}

}  // namespace opensrd::fabric
