#include "sim/network.h"

#include <algorithm>

#include "transport/wire.h"

namespace opensrd::sim {

HostId Network::AddHost(uint32_t ip, uint16_t base_port, uint16_t sockets,
                        const EndpointConfig& cfg) {
  Host h;
  h.ip = ip;
  h.base_port = base_port;
  h.sockets = sockets;
  h.ep = std::make_unique<Endpoint>(WithIdentitySeed(cfg, ip));
  hosts_.push_back(std::move(h));
  by_ip_[ip] = static_cast<HostId>(hosts_.size() - 1);
  return static_cast<HostId>(hosts_.size() - 1);
}

void Network::RestartHost(HostId h, const EndpointConfig& cfg) {
  hosts_[h].ep = std::make_unique<Endpoint>(WithIdentitySeed(cfg, hosts_[h].ip));
  Schedule(h);
}

EndpointConfig Network::WithIdentitySeed(const EndpointConfig& cfg, uint32_t ip) {
  // Simulated hosts draw identities and secrets from the network's seed, not from getrandom: a
  // run replays exactly, and every host (and every restart of one) still gets its own identity.
  // The static key is per host address and survives restarts, as a key file would.
  EndpointConfig c = cfg;
  if (c.identity_seed == 0) c.identity_seed = (seed_ * 0x9E3779B97F4A7C15ull) ^ ++identities_;
  if (c.static_key_seed == 0) c.static_key_seed = (seed_ * 0xBF58476D1CE4E5B9ull) ^ ip ^ 1;
  return c;
}

void Network::SetLink(const NetAddr& from, const NetAddr& to, const LinkConfig& cfg) {
  Link& l = links_[{Key(from), Key(to)}];
  l.cfg = cfg;
  l.injector = cfg.fault.any() ? std::make_unique<FaultInjector>(FaultSpec{{{0, cfg.fault}}},
                                                                 seed_ ^ (Key(from) * 31 + Key(to)))
                               : nullptr;
}

Network::Link& Network::LinkFor(const NetAddr& from, const NetAddr& to) {
  auto it = links_.find({Key(from), Key(to)});
  if (it != links_.end()) return it->second;
  SetLink(from, to, default_link);
  return links_[{Key(from), Key(to)}];
}

LinkStats Network::link_stats(const NetAddr& from, const NetAddr& to) const {
  auto it = links_.find({Key(from), Key(to)});
  return it == links_.end() ? LinkStats{} : it->second.stats;
}

bool Network::FindHost(const NetAddr& a, HostId& h, uint16_t& socket) const {
  auto it = by_ip_.find(a.ip);
  if (it == by_ip_.end()) return false;
  const Host& host = hosts_[it->second];
  if (a.port < host.base_port || a.port >= host.base_port + host.sockets) return false;
  h = it->second;
  socket = static_cast<uint16_t>(a.port - host.base_port);
  return true;
}

void Network::Send(const NetAddr& from, const NetAddr& to, const uint8_t* data, size_t len) {
  if (tap) tap(from, to, {data, len});
  Link& l = LinkFor(from, to);
  ++l.stats.packets;
  if (len > 3 && data[3] == static_cast<uint8_t>(wire::Type::kData)) ++l.stats.data_packets;
  uint32_t copies = 1;
  bool corrupt = false;
  Micros extra = 0;
  if (l.injector) {
    const FaultInjector::Verdict v = l.injector->Decide(0, now_);
    if (v.drop) {
      ++l.stats.dropped_fault;
      return;
    }
    copies = v.copies;
    corrupt = v.corrupt;
    extra = v.delay_us;
    l.stats.duplicated += copies > 1;
    l.stats.corrupted += corrupt;
  }
  // Serialization and queueing: the link sends one packet at a time at its rate.
  const double now = static_cast<double>(now_);
  if (l.busy_until - now > static_cast<double>(l.cfg.queue_limit_us)) {
    ++l.stats.dropped_queue;
    return;
  }
  const double tx_us = static_cast<double>(len) * 8.0 / (l.cfg.gbps * 1000.0);
  l.busy_until = std::max(l.busy_until, now) + tx_us;
  const Micros at = static_cast<Micros>(l.busy_until) + l.cfg.latency_us + extra;
  for (uint32_t i = 0; i < copies; ++i) {
    Delivery d{at + i, seq_++, from, to, std::vector<uint8_t>(data, data + len)};
    if (corrupt && i == 0) l.injector->CorruptInPlace(d.bytes);
    deliveries_.push(std::move(d));
  }
}

void Network::Drain(HostId h) {
  Host& host = hosts_[h];
  scratch_.resize(wire::kMaxDatagram);
  Transmit t;
  while (host.ep->PollTransmit(now_ns(), scratch_, t)) {
    Send({host.ip, static_cast<uint16_t>(host.base_port + t.local_socket)}, t.remote,
         scratch_.data(), t.len);
  }
}

void Network::Schedule(HostId h) {
  Host& host = hosts_[h];
  // A deadline already due after a drain means only HandleTimeout can act: run it next tick
  // (never at the same instant again, which could spin the clock in place).
  // The endpoints run on nanoseconds; this clock ticks in microseconds: round up (never early).
  const Nanos ns = host.ep->NextTimeout();
  Micros t = ns == kNever ? kNever : (ns + 999) / 1000;
  if (t != kNever) t = std::max(t, now_ + 1);
  if (t == host.timer) return;
  if (host.timer != kNever) {
    auto range = timers_.equal_range(host.timer);
    for (auto it = range.first; it != range.second; ++it) {
      if (it->second == h) {
        timers_.erase(it);
        break;
      }
    }
  }
  host.timer = t;
  if (t != kNever) timers_.emplace(t, h);
}

void Network::Inject(const NetAddr& from, const NetAddr& to, std::span<const uint8_t> bytes) {
  HostId h;
  uint16_t socket;
  if (!FindHost(to, h, socket)) return;
  hosts_[h].ep->HandleDatagram(now_ns(), socket, from, bytes);
  Kick(h);
}

void Network::StallHost(HostId h, Micros from, Micros until) {
  hosts_[h].stall_from = from;
  hosts_[h].stall_until = until;
}

void Network::Kick(HostId h) {
  Drain(h);
  Schedule(h);
}

bool Network::Step() {
  Micros next = kNever;
  if (!deliveries_.empty()) next = deliveries_.top().at;
  if (!timers_.empty()) next = std::min(next, timers_.begin()->first);
  if (next == kNever) return false;
  now_ = std::max(now_, next);
  // Deliver everything due now, then run due timers, then let touched hosts transmit.
  std::vector<HostId> touched;
  while (!deliveries_.empty() && deliveries_.top().at <= now_) {
    Delivery d = std::move(const_cast<Delivery&>(deliveries_.top()));
    deliveries_.pop();
    ++events_;
    HostId h;
    uint16_t socket;
    if (!FindHost(d.to, h, socket)) continue;  // nobody there: the packet vanishes
    if (hosts_[h].Stalled(now_)) {
      d.at = hosts_[h].stall_until;  // same seq: the waiting packets keep their order
      deliveries_.push(std::move(d));
      continue;
    }
    hosts_[h].ep->HandleDatagram(now_ns(), socket, d.from, d.bytes);
    touched.push_back(h);
  }
  while (!timers_.empty() && timers_.begin()->first <= now_) {
    const HostId h = timers_.begin()->second;
    timers_.erase(timers_.begin());
    hosts_[h].timer = kNever;
    ++events_;
    if (hosts_[h].Stalled(now_)) {
      hosts_[h].timer = hosts_[h].stall_until;
      timers_.emplace(hosts_[h].stall_until, h);
      continue;
    }
    hosts_[h].ep->HandleTimeout(now_ns());
    touched.push_back(h);
  }
  std::sort(touched.begin(), touched.end());
  touched.erase(std::unique(touched.begin(), touched.end()), touched.end());
  for (HostId h : touched) {
    Drain(h);
    Schedule(h);
  }
  return true;
}

bool Network::RunUntil(const std::function<bool()>& done, Micros deadline) {
  while (!done()) {
    // Never run an event scheduled after the deadline: the clock stops at the deadline, so a
    // test that waits "100 ms" does not jump to a timer a minute later.
    Micros next = kNever;
    if (!deliveries_.empty()) next = deliveries_.top().at;
    if (!timers_.empty()) next = std::min(next, timers_.begin()->first);
    if (next > deadline) {
      if (deadline != kNever) now_ = std::max(now_, deadline);
      return done();
    }
    if (!Step()) return done();
  }
  return true;
}

}  // namespace opensrd::sim
