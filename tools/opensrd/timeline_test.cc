#include "tools/opensrd/timeline.h"

#include <gtest/gtest.h>

namespace opensrd::cli {
namespace {

TEST(Timeline, RowsAreRatesAndDeltasOverTheInterval) {
  PathStats a;
  a.id = 1;
  a.state = PathState::kSuspect;
  a.sent = 1000;
  a.acked = 900;
  a.retransmitted = 50;
  a.lost = 30;
  a.retrans_rack = 5;
  a.retrans_rto = 20;
  a.retrans_tlp = 2;
  a.srtt_us = 120;
  a.min_rtt_us = 40;
  a.state_changes = 3;
  PathStats before = a;
  before.sent = 800;
  before.acked = 850;
  before.retransmitted = 40;
  before.lost = 10;
  before.retrans_rack = 5;
  before.retrans_rto = 10;
  before.retrans_tlp = 1;
  EXPECT_EQ(TimelineRows(2.5, 7, {a}, {before}, 0.5),
            "2.500,7,1,suspect,400,100,20,20,0,10,1,120,40,3\n");
  // No earlier sample of the path: counted from zero.
  EXPECT_EQ(TimelineRows(0.1, 7, {a}, {}, 0.1),
            "0.100,7,1,suspect,10000,9000,500,30,5,20,2,120,40,3\n");
  // A counter that went backwards (the peer was freed and came back) reads 0, not 2^64.
  EXPECT_EQ(TimelineRows(1, 7, {before}, {a}, 1.0), "1.000,7,1,suspect,0,0,0,0,0,0,0,120,40,3\n");
  EXPECT_EQ(TimelineHeader().substr(0, 22), "t_s,peer,path,state,se");
}

}  // namespace
}  // namespace opensrd::cli
