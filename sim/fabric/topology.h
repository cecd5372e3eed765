// Clos topologies for the fabric simulator: a 2-tier leaf-spine and a 3-tier k-ary fat tree,
// built as a graph of nodes (hosts and switches) joined by directed links, with the up/down
// routing that ECMP applies in such fabrics. Pure data: no clock, no packets. Not thread-safe.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "common/status.h"

namespace opensrd::fabric {

using NodeId = uint32_t;
using LinkId = uint32_t;  // a directed link; its reverse is Link::reverse

struct TopologySpec {
  enum class Kind : uint8_t { kLeafSpine, kFatTree };
  Kind kind = Kind::kFatTree;
  // Fat tree: k pods of k/2 edge and k/2 aggregation switches, (k/2)^2 cores. An edge switch has
  // k/2 uplinks and os * k/2 hosts (oversubscription os:1 by more hosts per edge, as racks do).
  uint32_t k = 8;
  uint32_t os = 1;
  // Leaf-spine: `leaves` leaves of `hosts_per_leaf` hosts, each leaf wired to every spine.
  uint32_t leaves = 8;
  uint32_t spines = 4;
  uint32_t hosts_per_leaf = 16;
  // Link rates per tier (Gbit/s): host links, and the links between switches.
  double host_gbps = 100;
  double fabric_gbps = 100;
  // Propagation delay per tier (nanoseconds): host-leaf, leaf-spine/edge-agg, agg-core.
  uint64_t host_delay_ns = 1000;
  uint64_t fabric_delay_ns = 1000;
  uint64_t core_delay_ns = 1000;
  // Every switch output port: drop-tail beyond queue_bytes; ECN mark above ecn_bytes (0: off).
  uint64_t queue_bytes = 256 * 1024;
  uint64_t ecn_bytes = 0;

  uint32_t hosts() const;
  double oversubscription() const;
  std::string ToString() const;
};

// "fattree:k=8[,os=4][,gbps=100][,core_gbps=100][,delay_ns=1000][,core_delay_ns=..]
//  [,queue_kb=256][,ecn_kb=0]" or "leafspine:leaves=8,spines=4,hosts=16[,...same keys]".
// Errors name the bad part (kInvalidArgument).
Result<TopologySpec> ParseTopology(const std::string& text);

struct Link {
  NodeId from = 0;
  NodeId to = 0;
  LinkId reverse = 0;
  double gbps = 0;
  uint64_t delay_ns = 0;
  uint8_t tier = 0;  // 0 host link, 1 leaf-spine / edge-agg, 2 agg-core
};

struct Node {
  enum class Kind : uint8_t { kHost, kSwitch };
  Kind kind = Kind::kHost;
  uint8_t tier = 0;          // 0 host, 1 leaf/edge, 2 spine/agg, 3 core
  uint32_t index = 0;        // within its tier
  uint32_t pod = 0;          // fat tree: pod of an edge, agg or host
  std::string name;          // host12, leaf3, spine1, edge5, agg2, core7
  std::vector<LinkId> up;    // toward the core, chosen by ECMP
  std::vector<LinkId> down;  // toward hosts, indexed as Topology::Route explains
};

class Topology {
 public:
  explicit Topology(const TopologySpec& spec);

  const TopologySpec& spec() const { return spec_; }
  uint32_t hosts() const { return hosts_; }
  // Hosts are nodes 0 .. hosts()-1.
  const Node& node(NodeId n) const { return nodes_[n]; }
  const Link& link(LinkId l) const { return links_[l]; }
  size_t node_count() const { return nodes_.size(); }
  size_t link_count() const { return links_.size(); }
  // The host's one NIC link (host -> leaf/edge).
  LinkId host_uplink(NodeId host) const { return nodes_[host].up[0]; }
  // The output link of switch `sw` toward `dst_host`: the one down link if dst lies below it,
  // else the uplink `hash` selects (ECMP).
  LinkId Route(NodeId sw, NodeId dst_host, uint64_t hash) const;
  // Switch hops a packet between two hosts crosses (1, 3 or 5).
  uint32_t SwitchHops(NodeId a, NodeId b) const;
  // Node by name ("spine3"), or -1.
  int64_t Find(const std::string& name) const;
  // The directed link from node a to node b, or -1 when they are not neighbours.
  int64_t LinkBetween(NodeId a, NodeId b) const;
  // Links of the top tier (spine-leaf or core-agg), one per direction, upward ones only.
  std::vector<LinkId> TopTierLinks() const;

 private:
  NodeId AddNode(Node::Kind kind, uint8_t tier, uint32_t index, uint32_t pod, std::string name);
  void Connect(NodeId lower, NodeId upper, double gbps, uint64_t delay_ns, uint8_t tier);
  void BuildLeafSpine();
  void BuildFatTree();

  TopologySpec spec_;
  uint32_t hosts_ = 0;
  uint32_t hosts_per_edge_ = 0;
  uint32_t edges_per_pod_ = 0;
  std::vector<Node> nodes_;
  std::vector<Link> links_;
  std::vector<uint32_t> host_edge_;  // host -> index of its leaf/edge switch
};

}  // namespace opensrd::fabric
