// The fabric simulator: the real SRD core (opensrd::Endpoint, the code the UDP shell drives) on
// every host of a simulated Clos fabric. One virtual clock in nanoseconds and one event queue;
// no thread and no socket per host. Each host has one NIC port that pulls the endpoint's next
// datagram when it is free (the NIC's rate is the host's backpressure); the endpoint's paths are
// UDP source ports, and switches choose uplinks by an ECMP hash of the 5-tuple, so the core's
// entropy picks fabric paths as it would in a datacenter. Switch output ports are byte-limited
// drop-tail queues with an optional ECN threshold; links can go down and up, run at a fraction
// of their rate, or lose packets at random. Routing does not reconverge: a dead link is a
// blackhole for the 5-tuples that hash onto it, and the transport has to route around it.
// Not thread-safe; a seed replays bit for bit.
#pragma once
#include <cstdint>
#include <functional>
#include <memory>
#include <unordered_map>
#include <vector>

#include "common/rng.h"
#include "opensrd/transport.h"
#include "sim/fabric/event_queue.h"
#include "sim/fabric/packet_pool.h"
#include "sim/fabric/topology.h"

namespace opensrd::fabric {

using HostId = uint32_t;

// Ethernet (14 + 4 FCS) plus IPv4 (20) and UDP (8) around every SRD datagram on a wire.
inline constexpr uint32_t kWireOverhead = 46;
// The SRD data header (transport/wire.h); the payload per packet is the MTU less both.
inline constexpr uint32_t kSrdHeader = 56;

struct FabricConfig {
  TopologySpec topology;
  uint32_t paths = 128;  // source ports (SRD paths) per peer
  uint32_t mtu = 4096;   // IP MTU: the SRD packet plus IPv4 and UDP headers
  uint64_t seed = 1;     // endpoints' spraying RNGs, link loss, workload choices
  EndpointConfig endpoint = DatacenterEndpoint();
  uint64_t goodput_bucket_ns = 0;  // > 0: data bytes arriving at hosts per bucket (time series)

  // The core tuned for a datacenter fabric (~14 us unloaded RTT): short delay targets, RTOs
  // and ack delays; no address validation (the fabric is trusted; the handshake is then one RTT).
  static EndpointConfig DatacenterEndpoint();
};

struct PortState {
  bool up = true;
  double rate_frac = 1.0;  // degraded links run at this fraction of their rate
  double loss = 0;         // random loss probability per packet
  double busy_until = 0;   // ns: the output queue drains by then (FIFO, one packet at a time)
  uint64_t packets = 0;
  uint64_t max_backlog = 0;  // bytes queued ahead of an arriving packet, at worst
};

struct FabricCounters {
  uint64_t events = 0;
  uint64_t packet_hops = 0;    // packets put on a link
  uint64_t dropped_queue = 0;  // drop-tail at a full switch queue
  uint64_t dropped_down = 0;   // sent onto, or in flight on, a dead link
  uint64_t dropped_loss = 0;   // random loss
  uint64_t ecn_marked = 0;     // marked CE (the core reads no ECN: counted only)
  uint64_t timer_calls = 0;    // HandleTimeout calls
  // Backlog seen by packets arriving at switch ports, by link tier (0 host->leaf is the NIC).
  uint64_t backlog_sum[3] = {0, 0, 0};
  uint64_t backlog_samples[3] = {0, 0, 0};
  uint64_t backlog_max[3] = {0, 0, 0};
};

class Fabric {
 public:
  explicit Fabric(const FabricConfig& config);
  ~Fabric();

  const FabricConfig& config() const { return cfg_; }
  const Topology& topology() const { return topo_; }
  uint32_t hosts() const { return topo_.hosts(); }
  Endpoint& endpoint(HostId h) { return *hosts_[h].ep; }
  SqId sq(HostId h) const { return hosts_[h].sq; }
  CqId cq(HostId h) const { return hosts_[h].cq; }
  uint64_t now_ns() const { return now_; }

  // The peer id of `dst` at `src` (AddPeer with `paths` source ports on first use).
  PeerId Connect(HostId src, HostId dst, uint32_t paths);
  // Hosts whose endpoints have reported a session up (PeerEventKind::kConnected), counted once
  // per event.
  uint64_t connected_events() const { return connected_; }
  uint64_t gone_events() const { return gone_; }
  // After the application posted work on a host outside a completion callback.
  void Kick(HostId h);
  // Runs `fn` at simulated time `at_ns`.
  void At(uint64_t at_ns, std::function<void()> fn);
  // Every completion any host's CQ yields, as it is polled (after the event that produced it).
  std::function<void(HostId, const Completion&)> on_completion;
  // Called about once a wall second while Run works (a progress line).
  std::function<void()> on_progress;

  // Both directions of the link between nodes a and b.
  void SetLinkUp(LinkId l, bool up);
  void SetLinkRate(LinkId l, double frac);
  void SetLinkLoss(LinkId l, double p);

  // Processes events until none is left, `Stop()` is called, or the next is after `deadline_ns`.
  void Run(uint64_t deadline_ns);
  void Stop() { stop_ = true; }

  // The unloaded completion time (ns) of a message of `bytes` from src to dst, as the sender
  // sees it: every packet serialized back to back at the host rate, the last one stored and
  // forwarded at every switch, and its ack's trip back.
  uint64_t IdealFctNs(HostId src, HostId dst, uint64_t bytes) const;
  // The part of it until the receiver holds the last byte (without the ack's trip back).
  uint64_t IdealDeliveryNs(HostId src, HostId dst, uint64_t bytes) const;
  uint32_t max_payload() const { return cfg_.endpoint.max_payload; }
  uint64_t WireBytes(uint64_t message_bytes) const;

  const FabricCounters& counters() const { return ctr_; }
  const PortState& port(LinkId l) const { return ports_[l]; }
  const PacketPool& pool() const { return pool_; }
  size_t event_queue_size() const { return events_.size(); }
  const std::vector<uint64_t>& goodput_series() const { return rx_series_; }

 private:
  struct Host {
    std::unique_ptr<Endpoint> ep;
    uint32_t ip = 0;
    CqId cq = 0;
    SqId sq = 0;
    bool nic_busy = false;
    uint64_t nic_free_at = 0;
    uint64_t timer_at = kNever;  // time of the timer event that counts (others are stale)
    std::unordered_map<HostId, PeerId> peers;
  };
  uint64_t IdealNs(HostId src, HostId dst, uint64_t bytes, bool with_ack) const;
  void Touch(HostId h);
  void TryTransmit(HostId h);
  void Reschedule(HostId h);
  void Enqueue(LinkId l, uint32_t pkt);
  void Arrive(uint32_t pkt, LinkId l);
  double Gbps(LinkId l) const { return topo_.link(l).gbps * ports_[l].rate_frac; }

  FabricConfig cfg_;
  Topology topo_;
  std::vector<Host> hosts_;
  std::vector<PortState> ports_;
  std::vector<uint64_t> salt_;  // ECMP hash salt per node
  EventQueue events_;
  PacketPool pool_;
  std::vector<std::function<void()>> calls_;
  FabricCounters ctr_;
  uint64_t now_ = 0;
  bool stop_ = false;
  uint64_t connected_ = 0;
  uint64_t gone_ = 0;
  Rng loss_rng_;
  std::vector<uint64_t> rx_series_;
};

}  // namespace opensrd::fabric
