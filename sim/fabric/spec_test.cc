// The fabric simulator's spec parsers: what they accept, and one test per rejection path (each
// rejection is kInvalidArgument with a message naming the bad part).
#include <gtest/gtest.h>

#include "sim/fabric/faults.h"
#include "sim/fabric/spec_parse.h"
#include "sim/fabric/topology.h"
#include "sim/fabric/workload.h"

namespace opensrd::fabric {
namespace {

template <typename T>
void ExpectBad(const Result<T>& r, const std::string& needle) {
  ASSERT_FALSE(r.ok()) << "accepted; wanted an error naming '" << needle << "'";
  EXPECT_EQ(r.status().code(), Code::kInvalidArgument);
  EXPECT_NE(r.status().message().find(needle), std::string::npos) << r.status().message();
}

TEST(SpecParse, Accepts) {
  EXPECT_EQ(ParseBytes("2MiB", "size", 1, 1u << 30).value(), 2u << 20);
  EXPECT_EQ(ParseBytes("100KB", "size", 1, 1u << 30).value(), 100'000u);
  EXPECT_EQ(ParseBytes("4096", "size", 1, 1u << 30).value(), 4096u);
  EXPECT_EQ(ParseTimeNs("200us", "t").value(), 200'000u);
  EXPECT_EQ(ParseTimeNs("1.5ms", "t").value(), 1'500'000u);
  EXPECT_EQ(ParseCount("16", "k", 4, 64).value(), 16u);
  EXPECT_DOUBLE_EQ(ParseReal("0.25", "f", 0, 1).value(), 0.25);
  auto s = SplitSpec("a:x=1,y=2", "w").value();
  EXPECT_EQ(s.kind, "a");
  EXPECT_EQ(s.args.at("y"), "2");
}

TEST(SpecParse, RejectsMissingKind) {
  ExpectBad(SplitSpec(":k=8", "topology"), "missing kind");
}
TEST(SpecParse, RejectsItemWithoutEquals) {
  ExpectBad(SplitSpec("fattree:k", "topology"), "'k' is not KEY=VALUE");
  ExpectBad(SplitSpec("fattree:k=8,", "topology"), "is not KEY=VALUE");
  ExpectBad(SplitSpec("fattree:=8", "topology"), "is not KEY=VALUE");
}
TEST(SpecParse, RejectsRepeatedKey) {
  ExpectBad(SplitSpec("fattree:k=8,k=4", "topology"), "'k' given twice");
}
TEST(SpecParse, RejectsCountNotWhole) {
  ExpectBad(ParseCount("8x", "k", 0, 10), "not a whole number");
  ExpectBad(ParseCount("-1", "k", 0, 10), "not a whole number");
  ExpectBad(ParseCount("99999999999999999999", "k", 0, 10), "not a whole number");
}
TEST(SpecParse, RejectsCountOutOfRange) {
  ExpectBad(ParseCount("11", "k", 0, 10), "out of range");
}
TEST(SpecParse, RejectsRealNotNumber) {
  ExpectBad(ParseReal("abc", "f", 0, 1), "not a number");
  ExpectBad(ParseReal("0.5x", "f", 0, 1), "not a number");
}
TEST(SpecParse, RejectsRealOutOfRange) {
  ExpectBad(ParseReal("1.5", "f", 0, 1), "out of range");
}
TEST(SpecParse, RejectsBytesNotSize) {
  ExpectBad(ParseBytes("MiB", "size", 1, 10), "not a size");
}
TEST(SpecParse, RejectsBytesUnknownUnit) {
  ExpectBad(ParseBytes("2mib", "size", 1, 1u << 30), "unknown size unit 'mib'");
}
TEST(SpecParse, RejectsFractionalBytes) {
  ExpectBad(ParseBytes("1.5", "size", 1, 1u << 30), "not a whole number of bytes");
}
TEST(SpecParse, RejectsBytesOutOfRange) {
  ExpectBad(ParseBytes("2GiB", "size", 1, 1u << 30), "out of range");
  ExpectBad(ParseBytes("0", "size", 1, 1u << 30), "out of range");
}
TEST(SpecParse, RejectsTimeNotTime) {
  ExpectBad(ParseTimeNs("us", "t"), "not a time");
}
TEST(SpecParse, RejectsTimeWithoutUnit) {
  ExpectBad(ParseTimeNs("200", "t"), "needs a unit");
}
TEST(SpecParse, RejectsTimeBeyondAnHour) {
  ExpectBad(ParseTimeNs("2h", "t"), "needs a unit");
  ExpectBad(ParseTimeNs("4000s", "t"), "longer than an hour");
}

TEST(TopologySpec, Accepts) {
  TopologySpec f = ParseTopology("fattree:k=16").value();
  EXPECT_EQ(f.hosts(), 1024u);
  EXPECT_EQ(ParseTopology("fattree:k=32").value().hosts(), 8192u);
  EXPECT_EQ(ParseTopology("fattree:k=8").value().hosts(), 128u);
  TopologySpec o = ParseTopology("fattree:k=8,os=4").value();
  EXPECT_EQ(o.hosts(), 512u);
  EXPECT_DOUBLE_EQ(o.oversubscription(), 4.0);
  TopologySpec l = ParseTopology(
                       "leafspine:leaves=8,spines=2,hosts=16,gbps=100,delay_ns=500,queue_kb=128,"
                       "ecn_kb=32")
                       .value();
  EXPECT_EQ(l.hosts(), 128u);
  EXPECT_DOUBLE_EQ(l.oversubscription(), 8.0);
  EXPECT_EQ(l.queue_bytes, 128u * 1024);
  EXPECT_EQ(l.ecn_bytes, 32u * 1024);
  EXPECT_EQ(l.host_delay_ns, 500u);
}
TEST(TopologySpec, RejectsUnknownKind) {
  ExpectBad(ParseTopology("torus:k=8"), "unknown kind");
}
TEST(TopologySpec, RejectsUnknownKey) {
  ExpectBad(ParseTopology("fattree:k=8,spines=4"), "unknown key 'spines'");
  ExpectBad(ParseTopology("leafspine:k=8"), "unknown key 'k'");
}
TEST(TopologySpec, RejectsOddK) {
  ExpectBad(ParseTopology("fattree:k=7"), "k must be even");
}
TEST(TopologySpec, RejectsBadNumber) {
  ExpectBad(ParseTopology("fattree:k=2"), "out of range");
  ExpectBad(ParseTopology("fattree:k=8,gbps=fast"), "not a number");
  ExpectBad(ParseTopology("leafspine:leaves=0"), "out of range");
  ExpectBad(ParseTopology("fattree:k=8,delay_ns=1us"), "not a whole number");
}
TEST(TopologySpec, RejectsEcnAboveQueue) {
  ExpectBad(ParseTopology("fattree:k=8,queue_kb=64,ecn_kb=64"), "ecn_kb must be below queue_kb");
}
TEST(TopologySpec, RejectsTooManyHosts) {
  ExpectBad(ParseTopology("fattree:k=64,os=16"), "more than 2^19 hosts");
}

TEST(TopologyGraph, FatTreeShapeAndRoutes) {
  Topology t(ParseTopology("fattree:k=4").value());
  EXPECT_EQ(t.hosts(), 16u);
  EXPECT_EQ(t.node_count(), 16u + 8 + 8 + 4);
  EXPECT_EQ(t.SwitchHops(0, 1), 1u);
  EXPECT_EQ(t.SwitchHops(0, 2), 3u);
  EXPECT_EQ(t.SwitchHops(0, 4), 5u);
  // Walking the routes from host 0 reaches every host, whatever the hash.
  for (NodeId dst = 1; dst < 16; ++dst) {
    for (uint64_t hash = 0; hash < 4; ++hash) {
      NodeId at = t.link(t.host_uplink(0)).to;
      int hops = 1;
      while (at != dst && hops < 10) {
        at = t.link(t.Route(at, dst, hash)).to;
        ++hops;
      }
      EXPECT_EQ(at, dst);
      EXPECT_EQ(static_cast<uint32_t>(hops), t.SwitchHops(0, dst) + 1);
    }
  }
  EXPECT_EQ(t.TopTierLinks().size(), 16u);  // 4 cores x 4 pods
  EXPECT_GE(t.LinkBetween(t.Find("core0"), t.Find("agg0")), 0);
}

TEST(WorkloadSpec, Accepts) {
  WorkloadSpec p = ParseWorkload("permutation:size=2MiB,msgs=4", 128).value();
  EXPECT_EQ(p.size, 2u << 20);
  EXPECT_EQ(p.msgs, 4u);
  EXPECT_EQ(ParseWorkload("incast:n=15,size=2MB", 128).value().n, 15u);
  EXPECT_EQ(ParseWorkload("incast", 8).value().n, 7u);
  EXPECT_EQ(ParseWorkload("ring:size=8MiB", 128).value().kind, WorkloadSpec::Kind::kRing);
  EXPECT_EQ(ParseWorkload("alltoall:size=4KiB", 128).value().size, 4096u);
  EXPECT_EQ(ParseWorkload("dist:load=0.3,flows=50,cdf=websearch", 128).value().flows, 50u);
}
TEST(WorkloadSpec, RejectsUnknownKind) {
  ExpectBad(ParseWorkload("shuffle", 128), "unknown kind");
}
TEST(WorkloadSpec, RejectsUnknownKey) {
  ExpectBad(ParseWorkload("permutation:n=4", 128), "unknown key 'n'");
}
TEST(WorkloadSpec, RejectsBadMsgs) {
  ExpectBad(ParseWorkload("permutation:msgs=0", 128), "msgs");
}
TEST(WorkloadSpec, RejectsBadSize) {
  ExpectBad(ParseWorkload("permutation:size=0", 128), "out of range");
  ExpectBad(ParseWorkload("permutation:size=128MiB", 128), "out of range");
}
TEST(WorkloadSpec, RejectsFewerBytesThanMessages) {
  ExpectBad(ParseWorkload("permutation:size=2,msgs=4", 128), "fewer bytes than messages");
}
TEST(WorkloadSpec, RejectsRingSmallerThanHosts) {
  ExpectBad(ParseWorkload("ring:size=100", 128), "one byte per host");
}
TEST(WorkloadSpec, RejectsIncastBeyondHosts) {
  ExpectBad(ParseWorkload("incast:n=128", 128), "out of range");
}
TEST(WorkloadSpec, RejectsBadLoad) {
  ExpectBad(ParseWorkload("dist:load=2", 128), "load");
}
TEST(WorkloadSpec, RejectsBadFlows) {
  ExpectBad(ParseWorkload("dist:flows=0", 128), "flows");
}
TEST(WorkloadSpec, RejectsUnknownCdf) {
  ExpectBad(ParseWorkload("dist:cdf=hadoop", 128), "only websearch");
}
TEST(WorkloadSpec, RejectsSingleHost) {
  ExpectBad(ParseWorkload("permutation", 1), "at least two hosts");
}

class FaultSpec : public ::testing::Test {
 protected:
  Topology topo_{ParseTopology("leafspine:leaves=4,spines=2,hosts=2").value()};
  Result<std::vector<LinkFault>> Fail(const std::string& s) {
    return ParseFault(LinkFault::Kind::kFail, s, topo_, 1);
  }
  Result<std::vector<LinkFault>> Degrade(const std::string& s) {
    return ParseFault(LinkFault::Kind::kDegrade, s, topo_, 1);
  }
};
TEST_F(FaultSpec, Accepts) {
  auto f = Fail("spine1-leaf3@200us..1ms").value();
  ASSERT_EQ(f.size(), 1u);
  EXPECT_EQ(f[0].down_ns, 200'000u);
  EXPECT_EQ(f[0].up_ns, 1'000'000u);
  EXPECT_EQ(topo_.node(topo_.link(f[0].link).from).name, "spine1");
  EXPECT_EQ(Degrade("top:3=0.25").value().size(), 3u);
  EXPECT_DOUBLE_EQ(Degrade("leaf0-spine0=0.5").value()[0].value, 0.5);
  EXPECT_DOUBLE_EQ(
      ParseFault(LinkFault::Kind::kLoss, "host0-leaf0=0.01", topo_, 1).value()[0].value, 0.01);
}
TEST_F(FaultSpec, RejectsFailWithoutTime) {
  ExpectBad(Fail("spine1-leaf3"), "LINK@TIME");
}
TEST_F(FaultSpec, RejectsLinkWithoutDash) {
  ExpectBad(Fail("spine1@1us"), "NODE-NODE");
}
TEST_F(FaultSpec, RejectsUnknownNodes) {
  ExpectBad(Fail("spine9-leaf3@1us"), "no node named 'spine9'");
  ExpectBad(Fail("spine1-leaf9@1us"), "no node named 'leaf9'");
}
TEST_F(FaultSpec, RejectsNodesNotLinked) {
  ExpectBad(Fail("leaf0-leaf1@1us"), "are not linked");
}
TEST_F(FaultSpec, RejectsBadTimes) {
  ExpectBad(Fail("spine1-leaf3@soon"), "not a time");
  ExpectBad(Fail("spine1-leaf3@1us..later"), "not a time");
  ExpectBad(Fail("spine1-leaf3@2us..1us"), "up time before down time");
}
TEST_F(FaultSpec, RejectsDegradeWithoutValue) {
  ExpectBad(Degrade("spine1-leaf3"), "LINK=VALUE");
}
TEST_F(FaultSpec, RejectsBadValue) {
  ExpectBad(Degrade("spine1-leaf3=0"), "out of range");
  ExpectBad(ParseFault(LinkFault::Kind::kLoss, "spine1-leaf3=1.5", topo_, 1), "out of range");
}
TEST_F(FaultSpec, RejectsBadTopCount) {
  ExpectBad(Degrade("top:x=0.5"), "not a whole number");
  ExpectBad(Degrade("top:9=0.5"), "the top tier has only 8 links");
}
TEST_F(FaultSpec, RejectsUnknownNodeInDegrade) {
  ExpectBad(Degrade("core1-leaf3=0.5"), "no node named 'core1'");
}

}  // namespace
}  // namespace opensrd::fabric
