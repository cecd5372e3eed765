#include "sim/fabric/faults.h"

#include "common/rng.h"
#include "sim/fabric/spec_parse.h"

namespace opensrd::fabric {

namespace {
Status Bad(const std::string& msg) {
  return Status(Code::kInvalidArgument, msg);
}

Result<LinkId> ParseLink(const std::string& s, const std::string& text, const Topology& topo) {
  const size_t dash = s.find('-');
  if (dash == std::string::npos) return Bad("'" + text + "': a link is NODE-NODE (spine3-leaf7)");
  const std::string a = s.substr(0, dash), b = s.substr(dash + 1);
  const int64_t na = topo.Find(a), nb = topo.Find(b);
  if (na < 0) return Bad("'" + text + "': no node named '" + a + "'");
  if (nb < 0) return Bad("'" + text + "': no node named '" + b + "'");
  const int64_t l = topo.LinkBetween(static_cast<NodeId>(na), static_cast<NodeId>(nb));
  if (l < 0) return Bad("'" + text + "': " + a + " and " + b + " are not linked");
  return static_cast<LinkId>(l);
}
}  // namespace

Result<std::vector<LinkFault>> ParseFault(LinkFault::Kind kind, const std::string& text,
                                          const Topology& topo, uint64_t seed) {
  std::vector<LinkFault> out;
  if (kind == LinkFault::Kind::kFail) {
    const size_t at = text.find('@');
    if (at == std::string::npos) return Bad("--fail '" + text + "': expected LINK@TIME");
    auto link = ParseLink(text.substr(0, at), text, topo);
    if (!link.ok()) return Status(Code::kInvalidArgument, "--fail " + link.status().message());
    LinkFault f;
    f.kind = kind;
    f.link = link.value();
    f.label = text.substr(0, at);
    const std::string times = text.substr(at + 1);
    const size_t dots = times.find("..");
    auto down = ParseTimeNs(times.substr(0, dots), "down time");
    if (!down.ok()) return Bad("--fail '" + text + "': " + down.status().message());
    f.down_ns = down.value();
    if (dots != std::string::npos) {
      auto up = ParseTimeNs(times.substr(dots + 2), "up time");
      if (!up.ok()) return Bad("--fail '" + text + "': " + up.status().message());
      if (up.value() <= f.down_ns) return Bad("--fail '" + text + "': up time before down time");
      f.up_ns = up.value();
    }
    out.push_back(f);
    return out;
  }
  const char* opt = kind == LinkFault::Kind::kDegrade ? "--degrade" : "--loss";
  const size_t eq = text.rfind('=');
  if (eq == std::string::npos)
    return Bad(std::string(opt) + " '" + text + "': expected LINK=VALUE");
  auto value = kind == LinkFault::Kind::kDegrade
                   ? ParseReal(text.substr(eq + 1), "rate fraction", 0.001, 1.0)
                   : ParseReal(text.substr(eq + 1), "loss", 0.0, 1.0);
  if (!value.ok()) return Bad(std::string(opt) + " '" + text + "': " + value.status().message());
  const std::string what = text.substr(0, eq);
  std::vector<LinkId> links;
  if (what.rfind("top:", 0) == 0) {
    auto count = ParseCount(what.substr(4), "top:N", 1, 1u << 20);
    if (!count.ok()) return Bad(std::string(opt) + " '" + text + "': " + count.status().message());
    std::vector<LinkId> top = topo.TopTierLinks();
    if (count.value() > top.size()) {
      return Bad(std::string(opt) + " '" + text + "': the top tier has only " +
                 std::to_string(top.size()) + " links");
    }
    Rng rng(seed * 0x51ED27 + 3);
    for (size_t i = 0; i < count.value(); ++i) {
      std::swap(top[i], top[i + rng.Below(top.size() - i)]);
      links.push_back(top[i]);
    }
  } else {
    auto link = ParseLink(what, text, topo);
    if (!link.ok())
      return Status(Code::kInvalidArgument, std::string(opt) + " " + link.status().message());
    links.push_back(link.value());
  }
  for (LinkId l : links) {
    LinkFault f;
    f.kind = kind;
    f.link = l;
    f.value = value.value();
    f.label = topo.node(topo.link(l).from).name + "-" + topo.node(topo.link(l).to).name;
    out.push_back(f);
  }
  return out;
}

void ApplyFaults(const std::vector<LinkFault>& faults, Fabric& fabric, uint64_t t0_ns) {
  for (const LinkFault& f : faults) {
    switch (f.kind) {
      case LinkFault::Kind::kDegrade:
        fabric.SetLinkRate(f.link, f.value);
        break;
      case LinkFault::Kind::kLoss:
        fabric.SetLinkLoss(f.link, f.value);
        break;
      case LinkFault::Kind::kFail: {
        const LinkId l = f.link;
        fabric.At(t0_ns + f.down_ns, [&fabric, l] { fabric.SetLinkUp(l, false); });
        if (f.up_ns != kNever) {
          fabric.At(t0_ns + f.up_ns, [&fabric, l] { fabric.SetLinkUp(l, true); });
        }
        break;
      }
    }
  }
}

}  // namespace opensrd::fabric
