#include "sim/fabric/fabric.h"

#include <algorithm>
#include <chrono>
#include <cmath>

#include "sim/fabric/ecmp.h"
#include "transport/wire.h"

namespace opensrd::fabric {

namespace {
constexpr uint32_t kIpBase = 0x0A000000;  // host h is 10.0.0.0 + h (simulated only)
constexpr uint16_t kPortBase = 1000;      // the host's socket i is UDP port 1000 + i
}  // namespace

EndpointConfig FabricConfig::DatacenterEndpoint() {
  EndpointConfig c;
  c.validate_addresses = false;
  c.initial_rtt_us = 20;
  c.min_rto_us = 100;
  c.min_pto_us = 20;
  c.min_reorder_window_us = 5;
  c.ack_delay_us = 2;
  c.min_target_delay_us = 4;
  c.target_delay_us = 50;
  c.probe_interval_us = 200;
  c.peer_timeout_us = 1'000'000;
  c.max_rto_us = 10'000;
  return c;
}

Fabric::Fabric(const FabricConfig& config)
    : cfg_(config),
      topo_(config.topology),
      pool_(MaxDatagramSize([&] {
        EndpointConfig c = config.endpoint;
        c.max_payload = static_cast<uint16_t>(config.mtu - 28 - kSrdHeader);
        return c;
      }())),
      loss_rng_(config.seed * 0x2545F4914F6CDD1Dull + 7) {
  cfg_.endpoint.max_payload = static_cast<uint16_t>(cfg_.mtu - 28 - kSrdHeader);
  ports_.resize(topo_.link_count());
  salt_.resize(topo_.node_count());
  for (size_t n = 0; n < salt_.size(); ++n) salt_[n] = Mix64(cfg_.seed * 1315423911u + n);
  hosts_.resize(topo_.hosts());
  for (HostId h = 0; h < topo_.hosts(); ++h) {
    EndpointConfig c = cfg_.endpoint;
    c.node_id = 0x1000 + h;
    c.incarnation = 1;
    c.seed = cfg_.seed * 1000003 + h;
    c.identity_seed = Mix64(cfg_.seed ^ (uint64_t{h} << 20)) | 1;
    c.static_key_seed = Mix64(cfg_.seed * 31 + h) | 1;
    Host& host = hosts_[h];
    host.ep = std::make_unique<Endpoint>(c);
    host.ip = kIpBase + h;
    host.cq = host.ep->CreateCompletionQueue();
    SqOptions o;
    o.cq = host.cq;
    o.depth = 1u << 16;
    host.sq = host.ep->CreateSendQueue(o).value();
  }
}

Fabric::~Fabric() = default;

PeerId Fabric::Connect(HostId src, HostId dst, uint32_t paths) {
  Host& s = hosts_[src];
  auto it = s.peers.find(dst);
  if (it != s.peers.end()) return it->second;
  std::vector<PathSpec> specs(paths);
  for (uint32_t i = 0; i < paths; ++i) {
    specs[i] = {static_cast<uint16_t>(i), NetAddr{hosts_[dst].ip, kPortBase}};
  }
  const PeerId p = s.ep->AddPeer(specs, now_).value();
  s.peers.emplace(dst, p);
  Kick(src);
  return p;
}

void Fabric::At(uint64_t at_ns, std::function<void()> fn) {
  calls_.push_back(std::move(fn));
  events_.Push(std::max(at_ns, now_), EventKind::kCall, static_cast<uint32_t>(calls_.size() - 1));
}

void Fabric::SetLinkUp(LinkId l, bool up) {
  ports_[l].up = up;
  ports_[topo_.link(l).reverse].up = up;
}
void Fabric::SetLinkRate(LinkId l, double frac) {
  ports_[l].rate_frac = frac;
  ports_[topo_.link(l).reverse].rate_frac = frac;
}
void Fabric::SetLinkLoss(LinkId l, double p) {
  ports_[l].loss = p;
  ports_[topo_.link(l).reverse].loss = p;
}

uint64_t Fabric::WireBytes(uint64_t message_bytes) const {
  const uint64_t mp = max_payload();
  const uint64_t packets = std::max<uint64_t>(1, (message_bytes + mp - 1) / mp);
  return message_bytes + packets * (kSrdHeader + kWireOverhead);
}

uint64_t Fabric::IdealFctNs(HostId src, HostId dst, uint64_t bytes) const {
  return IdealNs(src, dst, bytes, true);
}

uint64_t Fabric::IdealDeliveryNs(HostId src, HostId dst, uint64_t bytes) const {
  return IdealNs(src, dst, bytes, false);
}

uint64_t Fabric::IdealNs(HostId src, HostId dst, uint64_t bytes, bool with_ack) const {
  const TopologySpec& s = topo_.spec();
  const uint32_t hops = topo_.SwitchHops(src, dst);
  const uint64_t mp = max_payload();
  const double last =
      static_cast<double>(std::min<uint64_t>(bytes, mp) + kSrdHeader + kWireOverhead);
  // One-way propagation: two host links plus the fabric links between the switches.
  uint64_t prop = 2 * s.host_delay_ns;
  if (hops == 3)
    prop += 2 * (s.kind == TopologySpec::Kind::kLeafSpine ? s.core_delay_ns : s.fabric_delay_ns);
  if (hops == 5) prop += 2 * s.fabric_delay_ns + 2 * s.core_delay_ns;
  const double ack = 64 + kSrdHeader + kWireOverhead;  // an ack datagram, roughly
  double ns = static_cast<double>(WireBytes(bytes)) * 8 / s.host_gbps +
              hops * last * 8 / s.fabric_gbps + static_cast<double>(prop);
  if (with_ack) ns += (hops + 1) * ack * 8 / s.fabric_gbps + static_cast<double>(prop);
  return static_cast<uint64_t>(std::ceil(ns));
}

void Fabric::Kick(HostId h) {
  TryTransmit(h);
  // While the NIC is busy its free event asks for the deadline (NextTimeout walks every path of
  // every context: asking once per packet sent, not once per packet received, halves the cost).
  if (!hosts_[h].nic_busy) Reschedule(h);
}

void Fabric::Touch(HostId h) {
  Host& host = hosts_[h];
  Completion c[32];
  size_t n;
  while ((n = host.ep->PollCompletions(host.cq, c)) > 0) {
    for (size_t i = 0; i < n; ++i) {
      if (on_completion) on_completion(h, c[i]);
    }
  }
  PeerEvent ev[16];
  while ((n = host.ep->PollPeerEvents(ev)) > 0) {
    for (size_t i = 0; i < n; ++i) {
      connected_ += ev[i].kind == PeerEventKind::kConnected;
      gone_ += ev[i].kind == PeerEventKind::kGone;
    }
  }
  Kick(h);
}

void Fabric::TryTransmit(HostId h) {
  Host& host = hosts_[h];
  if (host.nic_busy) return;
  const uint32_t pkt = pool_.Alloc();
  Transmit t;
  if (!host.ep->PollTransmit(now_, {pool_.data(pkt), pool_.slot_bytes()}, t)) {
    pool_.Free(pkt);
    return;
  }
  const uint32_t pkt_id = pool_.Shrink(pkt, t.len);
  PacketHeader& hdr = pool_.header(pkt_id);
  hdr.src_ip = host.ip;
  hdr.sport = static_cast<uint16_t>(kPortBase + t.local_socket);
  hdr.dst_ip = t.remote.ip;
  hdr.dport = t.remote.port;
  hdr.len = static_cast<uint16_t>(t.len);
  hdr.ecn = false;
  const LinkId up = topo_.host_uplink(h);
  // The NIC serializes one packet at a time; it asks the endpoint for the next when done.
  const double ser = static_cast<double>(t.len + kWireOverhead) * 8 / Gbps(up);
  host.nic_busy = true;
  host.nic_free_at = now_ + static_cast<uint64_t>(std::ceil(ser));
  events_.Push(host.nic_free_at, EventKind::kNicFree, h);
  Enqueue(up, pkt_id);
}

void Fabric::Reschedule(HostId h) {
  Host& host = hosts_[h];
  const Nanos d = host.ep->NextTimeout();
  if (d == kNever) return;
  // A deadline already due after the drain: HandleTimeout runs a nanosecond later (never at the
  // same instant again, which could spin the clock in place).
  const uint64_t t = std::max<uint64_t>(d, now_ + 1);
  if (t >= host.timer_at) return;
  host.timer_at = t;
  events_.Push(t, EventKind::kTimer, h);
}

void Fabric::Enqueue(LinkId l, uint32_t pkt) {
  PortState& p = ports_[l];
  const Link& link = topo_.link(l);
  PacketHeader& hdr = pool_.header(pkt);
  if (!p.up) {
    ++ctr_.dropped_down;
    pool_.Free(pkt);
    return;
  }
  if (p.loss > 0 && loss_rng_.Chance(p.loss)) {
    ++ctr_.dropped_loss;
    pool_.Free(pkt);
    return;
  }
  const double gbps = Gbps(l);
  const double now = static_cast<double>(now_);
  const double start = std::max(now, p.busy_until);
  const uint64_t backlog = static_cast<uint64_t>((start - now) * gbps / 8);
  const uint32_t wire = hdr.len + kWireOverhead;
  const TopologySpec& s = topo_.spec();
  const uint8_t tier = std::min<uint8_t>(link.tier, 2);
  if (link.tier > 0 || topo_.node(link.from).kind == Node::Kind::kSwitch) {
    if (backlog + wire > s.queue_bytes) {
      ++ctr_.dropped_queue;
      pool_.Free(pkt);
      return;
    }
    if (s.ecn_bytes > 0 && backlog > s.ecn_bytes) {
      hdr.ecn = true;
      ++ctr_.ecn_marked;
    }
  }
  ctr_.backlog_sum[tier] += backlog;
  ++ctr_.backlog_samples[tier];
  ctr_.backlog_max[tier] = std::max(ctr_.backlog_max[tier], backlog);
  p.max_backlog = std::max(p.max_backlog, backlog);
  ++p.packets;
  ++ctr_.packet_hops;
  p.busy_until = start + wire * 8 / gbps;
  const uint64_t at = static_cast<uint64_t>(std::ceil(p.busy_until)) + link.delay_ns;
  events_.Push(at, EventKind::kArrive, pkt, l);
}

void Fabric::Arrive(uint32_t pkt, LinkId l) {
  // A packet on the wire when its link died is lost with it.
  if (!ports_[l].up) {
    ++ctr_.dropped_down;
    pool_.Free(pkt);
    return;
  }
  const NodeId at = topo_.link(l).to;
  const PacketHeader& hdr = pool_.header(pkt);
  const uint32_t dst = hdr.dst_ip - kIpBase;
  if (dst >= topo_.hosts()) {  // nobody there (the core only sends to hosts it was given)
    pool_.Free(pkt);
    return;
  }
  if (topo_.node(at).kind == Node::Kind::kSwitch) {
    Enqueue(topo_.Route(at, dst, EcmpHash(hdr, salt_[at])), pkt);
    return;
  }
  Host& host = hosts_[at];
  const uint8_t* bytes = pool_.data(pkt);
  if (cfg_.goodput_bucket_ns > 0 && hdr.len > kSrdHeader &&
      bytes[3] == static_cast<uint8_t>(wire::Type::kData)) {
    const size_t b = now_ / cfg_.goodput_bucket_ns;
    if (b >= rx_series_.size()) rx_series_.resize(b + 1, 0);
    rx_series_[b] += hdr.len - kSrdHeader;
  }
  const NetAddr from{hdr.src_ip, hdr.sport};
  host.ep->HandleDatagram(now_, static_cast<uint16_t>(hdr.dport - kPortBase), from,
                          {bytes, hdr.len});
  pool_.Free(pkt);
  Touch(at);
}

void Fabric::Run(uint64_t deadline_ns) {
  stop_ = false;
  auto last_progress = std::chrono::steady_clock::now();
  while (!stop_ && !events_.empty()) {
    if (events_.top().at_ns > deadline_ns) {
      now_ = std::max(now_, deadline_ns);
      return;
    }
    const Event e = events_.Pop();
    now_ = e.at_ns;
    ++ctr_.events;
    switch (e.kind) {
      case EventKind::kArrive:
        Arrive(e.a, e.b);
        break;
      case EventKind::kNicFree: {
        Host& host = hosts_[e.a];
        host.nic_busy = false;
        if (host.ep->NextTimeout() <= now_) {
          ++ctr_.timer_calls;
          host.ep->HandleTimeout(now_);
        }
        Touch(e.a);
        break;
      }
      case EventKind::kTimer: {
        Host& host = hosts_[e.a];
        if (e.at_ns != host.timer_at) break;  // superseded by an earlier deadline
        host.timer_at = kNever;
        if (host.ep->NextTimeout() <= now_) {
          ++ctr_.timer_calls;
          host.ep->HandleTimeout(now_);
        }
        Touch(e.a);
        break;
      }
      case EventKind::kCall:
        calls_[e.a]();
        break;
    }
    if (on_progress && (ctr_.events & 0xFFFF) == 0) {
      const auto wall = std::chrono::steady_clock::now();
      if (wall - last_progress >= std::chrono::seconds(1)) {
        last_progress = wall;
        on_progress();
      }
    }
  }
}

}  // namespace opensrd::fabric
