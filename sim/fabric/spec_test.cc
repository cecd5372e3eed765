#include <gtest/gtest.h>

#include "sim/fabric/topology.h"

namespace opensrd::fabric {
namespace {
TEST(TopologySpec, FatTreeHosts) {
  EXPECT_EQ(ParseTopology("fattree:k=8").value().hosts(), 128u);
}
}  // namespace
}  // namespace opensrd::fabric
