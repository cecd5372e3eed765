#include "sim/fabric/topology.h"

#include <cstdio>
#include <set>

#include "sim/fabric/spec_parse.h"

namespace opensrd::fabric {

namespace {
Status Bad(const std::string& msg) {
  return Status(Code::kInvalidArgument, msg);
}
}  // namespace

uint32_t TopologySpec::hosts() const {
  if (kind == Kind::kLeafSpine) return leaves * hosts_per_leaf;
  return k * (k / 2) * (k / 2) * os;
}

double TopologySpec::oversubscription() const {
  if (kind == Kind::kLeafSpine) return hosts_per_leaf * host_gbps / (spines * fabric_gbps);
  return (k / 2) * os * host_gbps / ((k / 2) * fabric_gbps);
}

std::string TopologySpec::ToString() const {
  char buf[256];
  if (kind == Kind::kLeafSpine) {
    std::snprintf(buf, sizeof buf,
                  "leaf-spine, %u leaves x %u hosts, %u spines, %u hosts, %.0f/%.0f Gbit/s, "
                  "oversubscription %.2g:1",
                  leaves, hosts_per_leaf, spines, hosts(), host_gbps, fabric_gbps,
                  oversubscription());
  } else {
    std::snprintf(buf, sizeof buf,
                  "fat tree k=%u, %u hosts, %u cores, %.0f/%.0f Gbit/s, oversubscription %.2g:1", k,
                  hosts(), (k / 2) * (k / 2), host_gbps, fabric_gbps, oversubscription());
  }
  return buf;
}

Result<TopologySpec> ParseTopology(const std::string& text) {
  auto split = SplitSpec(text, "topology");
  if (!split.ok()) return split.status();
  TopologySpec s;
  auto args = split.value().args;
  const std::string& kind = split.value().kind;
  if (kind == "fattree") {
    s.kind = TopologySpec::Kind::kFatTree;
  } else if (kind == "leafspine") {
    s.kind = TopologySpec::Kind::kLeafSpine;
  } else {
    return Bad("topology '" + text + "': unknown kind '" + kind + "' (fattree, leafspine)");
  }
  auto take = [&](const char* key) -> const std::string* {
    auto it = args.find(key);
    return it == args.end() ? nullptr : &it->second;
  };
  Status err;
  auto count = [&](const char* key, uint32_t& out, uint64_t lo, uint64_t hi) {
    if (const std::string* v = take(key); v && err.ok()) {
      auto r = ParseCount(*v, key, lo, hi);
      if (r.ok()) {
        out = static_cast<uint32_t>(r.value());
      } else {
        err = r.status();
      }
    }
  };
  auto real = [&](const char* key, double& out, double lo, double hi) {
    if (const std::string* v = take(key); v && err.ok()) {
      auto r = ParseReal(*v, key, lo, hi);
      if (r.ok()) {
        out = r.value();
      } else {
        err = r.status();
      }
    }
  };
  auto ns = [&](const char* key, uint64_t& out) {
    if (const std::string* v = take(key); v && err.ok()) {
      auto r = ParseCount(*v, key, 0, 1'000'000'000);
      if (r.ok()) {
        out = r.value();
      } else {
        err = r.status();
      }
    }
  };
  auto kb = [&](const char* key, uint64_t& out, uint64_t lo) {
    if (const std::string* v = take(key); v && err.ok()) {
      auto r = ParseCount(*v, key, lo, 1u << 20);
      if (r.ok()) {
        out = r.value() * 1024;
      } else {
        err = r.status();
      }
    }
  };
  std::set<std::string> known = {"gbps",          "core_gbps", "delay_ns", "host_delay_ns",
                                 "core_delay_ns", "queue_kb",  "ecn_kb"};
  if (s.kind == TopologySpec::Kind::kFatTree) {
    known.insert({"k", "os"});
    count("k", s.k, 4, 64);
    if (err.ok() && s.k % 2 != 0) return Bad("topology '" + text + "': k must be even");
    count("os", s.os, 1, 16);
  } else {
    known.insert({"leaves", "spines", "hosts"});
    count("leaves", s.leaves, 2, 4096);
    count("spines", s.spines, 1, 1024);
    count("hosts", s.hosts_per_leaf, 1, 1024);
  }
  for (const auto& [key, v] : args) {
    if (!known.count(key)) return Bad("topology '" + text + "': unknown key '" + key + "'");
  }
  real("gbps", s.host_gbps, 0.1, 10000);
  s.fabric_gbps = s.host_gbps;
  real("core_gbps", s.fabric_gbps, 0.1, 10000);
  ns("delay_ns", s.fabric_delay_ns);
  s.host_delay_ns = s.core_delay_ns = s.fabric_delay_ns;
  ns("host_delay_ns", s.host_delay_ns);
  ns("core_delay_ns", s.core_delay_ns);
  kb("queue_kb", s.queue_bytes, 8);
  kb("ecn_kb", s.ecn_bytes, 0);
  if (!err.ok()) return Status(Code::kInvalidArgument, "topology '" + text + "': " + err.message());
  if (s.ecn_bytes >= s.queue_bytes) {
    return Bad("topology '" + text + "': ecn_kb must be below queue_kb");
  }
  if (s.hosts() > (1u << 19)) return Bad("topology '" + text + "': more than 2^19 hosts");
  return s;
}

Topology::Topology(const TopologySpec& spec) : spec_(spec) {
  if (spec.kind == TopologySpec::Kind::kLeafSpine) {
    BuildLeafSpine();
  } else {
    BuildFatTree();
  }
}

NodeId Topology::AddNode(Node::Kind kind, uint8_t tier, uint32_t index, uint32_t pod,
                         std::string name) {
  Node n;
  n.kind = kind;
  n.tier = tier;
  n.index = index;
  n.pod = pod;
  n.name = std::move(name);
  nodes_.push_back(std::move(n));
  return static_cast<NodeId>(nodes_.size() - 1);
}

void Topology::Connect(NodeId lower, NodeId upper, double gbps, uint64_t delay_ns, uint8_t tier) {
  const LinkId up = static_cast<LinkId>(links_.size());
  links_.push_back({lower, upper, up + 1, gbps, delay_ns, tier});
  links_.push_back({upper, lower, up, gbps, delay_ns, tier});
  nodes_[lower].up.push_back(up);
  nodes_[upper].down.push_back(up + 1);
}

void Topology::BuildLeafSpine() {
  const TopologySpec& s = spec_;
  hosts_ = s.hosts();
  hosts_per_edge_ = s.hosts_per_leaf;
  edges_per_pod_ = s.leaves;
  for (uint32_t h = 0; h < hosts_; ++h) {
    AddNode(Node::Kind::kHost, 0, h, 0, "host" + std::to_string(h));
    host_edge_.push_back(h / s.hosts_per_leaf);
  }
  const NodeId leaf0 = static_cast<NodeId>(nodes_.size());
  for (uint32_t l = 0; l < s.leaves; ++l) {
    AddNode(Node::Kind::kSwitch, 1, l, 0, "leaf" + std::to_string(l));
  }
  const NodeId spine0 = static_cast<NodeId>(nodes_.size());
  for (uint32_t p = 0; p < s.spines; ++p) {
    AddNode(Node::Kind::kSwitch, 2, p, 0, "spine" + std::to_string(p));
  }
  for (uint32_t h = 0; h < hosts_; ++h) {
    Connect(h, leaf0 + host_edge_[h], s.host_gbps, s.host_delay_ns, 0);
  }
  // Spine p's down link l goes to leaf l (Route relies on that order).
  for (uint32_t p = 0; p < s.spines; ++p) {
    for (uint32_t l = 0; l < s.leaves; ++l) {
      Connect(leaf0 + l, spine0 + p, s.fabric_gbps, s.core_delay_ns, 1);
    }
  }
}

void Topology::BuildFatTree() {
  const TopologySpec& s = spec_;
  const uint32_t half = s.k / 2;
  hosts_ = s.hosts();
  hosts_per_edge_ = half * s.os;
  edges_per_pod_ = half;
  for (uint32_t h = 0; h < hosts_; ++h) {
    const uint32_t edge = h / hosts_per_edge_;
    AddNode(Node::Kind::kHost, 0, h, edge / half, "host" + std::to_string(h));
    host_edge_.push_back(edge);
  }
  const NodeId edge0 = static_cast<NodeId>(nodes_.size());
  for (uint32_t e = 0; e < s.k * half; ++e) {
    AddNode(Node::Kind::kSwitch, 1, e, e / half, "edge" + std::to_string(e));
  }
  const NodeId agg0 = static_cast<NodeId>(nodes_.size());
  for (uint32_t a = 0; a < s.k * half; ++a) {
    AddNode(Node::Kind::kSwitch, 2, a, a / half, "agg" + std::to_string(a));
  }
  const NodeId core0 = static_cast<NodeId>(nodes_.size());
  for (uint32_t c = 0; c < half * half; ++c) {
    AddNode(Node::Kind::kSwitch, 3, c, 0, "core" + std::to_string(c));
  }
  for (uint32_t h = 0; h < hosts_; ++h) {
    Connect(h, edge0 + host_edge_[h], s.host_gbps, s.host_delay_ns, 0);
  }
  // Agg j of a pod: down link e goes to edge e of the pod. Core c: down link p goes to pod p's
  // agg c / half (Route relies on both orders).
  for (uint32_t p = 0; p < s.k; ++p) {
    for (uint32_t j = 0; j < half; ++j) {
      for (uint32_t e = 0; e < half; ++e) {
        Connect(edge0 + p * half + e, agg0 + p * half + j, s.fabric_gbps, s.fabric_delay_ns, 1);
      }
    }
  }
  for (uint32_t c = 0; c < half * half; ++c) {
    for (uint32_t p = 0; p < s.k; ++p) {
      Connect(agg0 + p * half + c / half, core0 + c, s.fabric_gbps, s.core_delay_ns, 2);
    }
  }
}

LinkId Topology::Route(NodeId sw, NodeId dst_host, uint64_t hash) const {
  const Node& n = nodes_[sw];
  const uint32_t edge = host_edge_[dst_host];
  bool below;
  uint32_t down_index = 0;
  if (n.tier == 1) {
    below = edge == n.index;
    down_index = dst_host % hosts_per_edge_;
  } else if (spec_.kind == TopologySpec::Kind::kLeafSpine) {
    below = true;
    down_index = edge;
  } else if (n.tier == 2) {
    below = edge / edges_per_pod_ == n.pod;
    down_index = edge % edges_per_pod_;
  } else {
    below = true;
    down_index = edge / edges_per_pod_;
  }
  if (below) return n.down[down_index];
  return n.up[hash % n.up.size()];
}

uint32_t Topology::SwitchHops(NodeId a, NodeId b) const {
  const uint32_t ea = host_edge_[a], eb = host_edge_[b];
  if (ea == eb) return 1;
  if (spec_.kind == TopologySpec::Kind::kLeafSpine) return 3;
  return ea / edges_per_pod_ == eb / edges_per_pod_ ? 3 : 5;
}

int64_t Topology::Find(const std::string& name) const {
  for (size_t i = hosts_; i < nodes_.size(); ++i) {
    if (nodes_[i].name == name) return static_cast<int64_t>(i);
  }
  if (name.rfind("host", 0) == 0) {
    for (size_t i = 0; i < hosts_; ++i) {
      if (nodes_[i].name == name) return static_cast<int64_t>(i);
    }
  }
  return -1;
}

int64_t Topology::LinkBetween(NodeId a, NodeId b) const {
  for (const auto* v : {&nodes_[a].up, &nodes_[a].down}) {
    for (LinkId l : *v) {
      if (links_[l].to == b) return l;
    }
  }
  return -1;
}

std::vector<LinkId> Topology::TopTierLinks() const {
  const uint8_t top = spec_.kind == TopologySpec::Kind::kLeafSpine ? 1 : 2;
  std::vector<LinkId> out;
  for (LinkId l = 0; l < links_.size(); ++l) {
    if (links_[l].tier == top && nodes_[links_[l].from].tier < nodes_[links_[l].to].tier) {
      out.push_back(l);
    }
  }
  return out;
}

}  // namespace opensrd::fabric
