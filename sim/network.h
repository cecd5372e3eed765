// Deterministic, event-driven network simulator for the sans-I/O SRD core. Hosts are Endpoints
// with a set of UDP "sockets" (ports on one IPv4 address); every directed socket-to-address pair
// is a link with latency, a serialization rate, a tail-drop queue and an optional FaultInjector.
// One virtual clock, one event queue, no threads and no sockets: a seed replays bit for bit, and
// simulated seconds of traffic run in a fraction of that in real time. Not thread-safe.
#pragma once
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <queue>
#include <span>
#include <vector>

#include "opensrd/transport.h"
#include "transport/fault.h"

namespace opensrd::sim {

using HostId = uint32_t;

struct LinkConfig {
  Micros latency_us = 20;
  double gbps = 10.0;            // serialization rate
  Micros queue_limit_us = 2000;  // tail drop when the queue holds more than this much time
  PathFault fault;               // applied to every packet on the link
};

// Counters per directed link, for tests (for example, the share of data on a blackholed path).
struct LinkStats {
  uint64_t packets = 0;       // offered to the link
  uint64_t data_packets = 0;  // of which SRD data packets
  uint64_t dropped_fault = 0;
  uint64_t dropped_queue = 0;
  uint64_t duplicated = 0;
  uint64_t corrupted = 0;
};

class Network {
 public:
  explicit Network(uint64_t seed) : seed_(seed) {}

  // A host at `ip` with `sockets` ports base_port, base_port+1, ...
  HostId AddHost(uint32_t ip, uint16_t base_port, uint16_t sockets, const EndpointConfig& cfg);
  // Replaces the host's endpoint with a fresh one (a process restart): same addresses, new state.
  void RestartHost(HostId h, const EndpointConfig& cfg);
  Endpoint& endpoint(HostId h) { return *hosts_[h].ep; }
  NetAddr address(HostId h, uint16_t socket) const {
    return {hosts_[h].ip, static_cast<uint16_t>(hosts_[h].base_port + socket)};
  }

  // Link from `from` to `to` (directed); links not configured use `default_link`.
  void SetLink(const NetAddr& from, const NetAddr& to, const LinkConfig& cfg);
  // Both directions of a path between two sockets.
  void SetPath(const NetAddr& a, const NetAddr& b, const LinkConfig& cfg) {
    SetLink(a, b, cfg);
    SetLink(b, a, cfg);
  }
  LinkConfig default_link;

  // The simulated clock, in microseconds; endpoints get it in nanoseconds (now_ns()), the core's
  // clock. (Links and faults are configured in microseconds; sub-microsecond links are the
  // fabric simulator's.)
  Micros now() const { return now_; }
  Nanos now_ns() const { return now_ * 1000; }
  // Call after the application posted work on a host outside an event (lets it transmit).
  void Kick(HostId h);
  // The host's process is descheduled for [from, until): it handles nothing, packets wait for
  // it in arrival order and its timers fire at `until` at the earliest. This is what a busy
  // two-core machine does to a transport thread for milliseconds at a time.
  void StallHost(HostId h, Micros from, Micros until);
  // Hands `bytes` to the host at `to` now, as if sent from `from` (an attacker's packet: `from`
  // need not be a host). Replies to an address with no host vanish, counted in link_stats.
  void Inject(const NetAddr& from, const NetAddr& to, std::span<const uint8_t> bytes);
  // Sees every datagram a host sends, before links and faults (what an on-path observer
  // captures). Tests use it to replay real packets.
  std::function<void(const NetAddr& from, const NetAddr& to, std::span<const uint8_t> bytes)> tap;
  // Advances to the next event time and processes everything due then. Returns false when
  // nothing is scheduled at all.
  bool Step();
  // Steps until `done()` is true or the next event lies after `deadline` (the clock then stops
  // at the deadline); returns done().
  bool RunUntil(const std::function<bool()>& done, Micros deadline);

  LinkStats link_stats(const NetAddr& from, const NetAddr& to) const;
  uint64_t events() const { return events_; }

 private:
  struct Host {
    uint32_t ip = 0;
    uint16_t base_port = 0;
    uint16_t sockets = 0;
    std::unique_ptr<Endpoint> ep;
    Micros timer = kNever;  // the endpoint's NextTimeout as last scheduled
    Micros stall_from = kNever, stall_until = 0;
    bool Stalled(Micros t) const { return t >= stall_from && t < stall_until; }
  };
  struct Link {
    LinkConfig cfg;
    double busy_until = 0;  // microseconds (fractional: serialization of small packets)
    LinkStats stats;
    std::unique_ptr<FaultInjector> injector;
  };
  struct Delivery {
    Micros at;
    uint64_t seq;  // tie-break: FIFO among equal times, for determinism
    NetAddr from;
    NetAddr to;
    std::vector<uint8_t> bytes;
    bool operator>(const Delivery& o) const { return at != o.at ? at > o.at : seq > o.seq; }
  };
  using LinkKey = std::pair<uint64_t, uint64_t>;
  static uint64_t Key(const NetAddr& a) { return (uint64_t{a.ip} << 16) | a.port; }

  Link& LinkFor(const NetAddr& from, const NetAddr& to);
  EndpointConfig WithIdentitySeed(const EndpointConfig& cfg, uint32_t ip);
  void Drain(HostId h);
  void Schedule(HostId h);
  void Send(const NetAddr& from, const NetAddr& to, const uint8_t* data, size_t len);
  bool FindHost(const NetAddr& a, HostId& h, uint16_t& socket) const;

  uint64_t seed_;
  Micros now_ = 0;
  uint64_t seq_ = 0;
  uint64_t events_ = 0;
  uint64_t identities_ = 0;  // identity seeds handed out
  std::vector<Host> hosts_;
  std::map<uint32_t, HostId> by_ip_;  // one host per IPv4 address
  std::map<LinkKey, Link> links_;
  std::priority_queue<Delivery, std::vector<Delivery>, std::greater<>> deliveries_;
  std::multimap<Micros, HostId> timers_;  // host timers, by deadline
  std::vector<uint8_t> scratch_;
};

}  // namespace opensrd::sim
