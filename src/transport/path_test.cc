#include "transport/path.h"

#include <gtest/gtest.h>

#include <vector>

namespace opensrd {
namespace {

// ------------------------------------------------------------------------------ RttEstimator

TEST(RttEstimator, BeforeAnySample) {
  RttEstimator r(1000);
  EXPECT_FALSE(r.have_sample());
  EXPECT_EQ(r.srtt(), 1000u);
  EXPECT_EQ(r.rttvar(), 500u);
  EXPECT_EQ(r.min(), 0u);
  EXPECT_EQ(r.Rto(1, 1'000'000), 3000u);  // 1000 + 4 * 500
}

TEST(RttEstimator, FirstSampleReplacesInitial) {
  RttEstimator r(1000);
  r.Sample(100);
  EXPECT_TRUE(r.have_sample());
  EXPECT_EQ(r.srtt(), 100u);
  EXPECT_EQ(r.rttvar(), 50u);
  EXPECT_EQ(r.min(), 100u);
  EXPECT_EQ(r.Rto(1, 1'000'000), 300u);
}

TEST(RttEstimator, Smoothing) {
  RttEstimator r(1000);
  r.Sample(100);
  r.Sample(200);
  // rttvar = (3 * 50 + |100 - 200|) / 4 = 62 (integer), srtt = (7 * 100 + 200) / 8 = 112.
  EXPECT_EQ(r.rttvar(), 62u);
  EXPECT_EQ(r.srtt(), 112u);
  EXPECT_EQ(r.min(), 100u);
  r.Sample(40);
  // rttvar = (3 * 62 + 72) / 4 = 64, srtt = (7 * 112 + 40) / 8 = 103.
  EXPECT_EQ(r.rttvar(), 64u);
  EXPECT_EQ(r.srtt(), 103u);
  EXPECT_EQ(r.min(), 40u);
}

TEST(RttEstimator, ConvergesToSteadyRtt) {
  RttEstimator r(10);
  r.Sample(5000);
  for (int i = 0; i < 200; ++i) r.Sample(1000);
  EXPECT_NEAR(static_cast<double>(r.srtt()), 1000.0, 8.0);  // integer truncation may stall a few
  EXPECT_LE(r.rttvar(), 4u);
  EXPECT_EQ(r.min(), 1000u);
}

TEST(RttEstimator, MinTracksSmallest) {
  RttEstimator r(1000);
  for (Micros s : {300u, 200u, 500u, 250u, 900u}) r.Sample(s);
  EXPECT_EQ(r.min(), 200u);
}

TEST(RttEstimator, ZeroSampleCountsAsOneMicrosecond) {
  RttEstimator r(1000);
  r.Sample(0);
  EXPECT_EQ(r.srtt(), 1u);
  EXPECT_EQ(r.min(), 1u);  // 0 would read as "no minimum yet"
}

TEST(RttEstimator, RtoFloorAndCeiling) {
  RttEstimator r(1000);
  r.Sample(100);  // srtt 100, rttvar 50: raw RTO 300
  EXPECT_EQ(r.Rto(250, 200'000), 300u);
  EXPECT_EQ(r.Rto(500, 200'000), 500u);  // floor
  EXPECT_EQ(r.Rto(100, 200), 200u);      // ceiling
  EXPECT_EQ(r.Rto(300, 300), 300u);
  RttEstimator slow(1000);
  slow.Sample(1'000'000);
  EXPECT_EQ(slow.Rto(250, 200'000), 200'000u);
}

// ------------------------------------------------------------------------------ ChoosePath

// A known, active path whose srtt is `rtt_us`.
Path MakePath(Micros rtt_us) {
  Path p(1000);
  p.known = true;
  p.rtt.Sample(rtt_us);
  return p;
}

std::vector<int> Counts(std::vector<Path>& paths, int picks, int exclude = -1,
                        bool avoid_loss = false) {
  std::vector<int> n(paths.size(), 0);
  for (int i = 0; i < picks; ++i) {
    const int p = ChoosePath(paths, exclude, avoid_loss);
    EXPECT_GE(p, 0);
    EXPECT_LT(p, static_cast<int>(paths.size()));
    if (p >= 0 && p < static_cast<int>(paths.size())) ++n[p];
  }
  return n;
}

TEST(ChoosePath, EmptyReturnsMinusOne) {
  std::vector<Path> none;
  EXPECT_EQ(ChoosePath(none, -1), -1);
  EXPECT_EQ(ChoosePath(none, 0), -1);
}

TEST(ChoosePath, OnlyUnknownPathsReturnsMinusOne) {
  std::vector<Path> paths(3, Path(1000));
  EXPECT_EQ(ChoosePath(paths, -1), -1);
  paths[1].state = PathState::kSuspect;
  EXPECT_EQ(ChoosePath(paths, -1), -1);
}

TEST(ChoosePath, SinglePath) {
  std::vector<Path> paths{MakePath(100)};
  for (int i = 0; i < 10; ++i) EXPECT_EQ(ChoosePath(paths, -1), 0);
}

TEST(ChoosePath, EqualPathsShareEvenly) {
  std::vector<Path> paths{MakePath(100), MakePath(100), MakePath(100), MakePath(100)};
  std::vector<int> n = Counts(paths, 4000);
  for (int c : n) EXPECT_EQ(c, 1000);
}

TEST(ChoosePath, WeightsFavourLowRtt) {
  // Weight ~ 1 / srtt: 100 us gets twice the packets of 200 us and four times those of 400 us.
  std::vector<Path> paths{MakePath(100), MakePath(200), MakePath(400)};
  std::vector<int> n = Counts(paths, 7000);
  EXPECT_NEAR(n[0], 4000, 5);
  EXPECT_NEAR(n[1], 2000, 5);
  EXPECT_NEAR(n[2], 1000, 5);
}

TEST(ChoosePath, SmoothInterleaving) {
  // Smooth weighted round-robin never sends long bursts down one of two equal paths.
  std::vector<Path> paths{MakePath(100), MakePath(100)};
  int last = -1, run = 0, longest = 0;
  for (int i = 0; i < 1000; ++i) {
    const int p = ChoosePath(paths, -1);
    run = p == last ? run + 1 : 1;
    last = p;
    longest = std::max(longest, run);
  }
  EXPECT_EQ(longest, 1);
}

TEST(ChoosePath, LossyPathGetsLess) {
  std::vector<Path> paths{MakePath(100), MakePath(100)};
  paths[1].loss_ewma = 0.5;  // bulk: weight (1 - 0.5)^2 = 0.25 of the clean path's
  std::vector<int> n = Counts(paths, 5000);
  EXPECT_NEAR(n[0], 4000, 5);
  EXPECT_NEAR(n[1], 1000, 5);
}

TEST(ChoosePath, LatencySensitivePacketsAvoidLossyPathsHarder) {
  std::vector<Path> paths{MakePath(100), MakePath(100)};
  paths[1].loss_ewma = 0.05;  // bulk: 0.9025 of the clean share; avoid_loss: 1 / (1 + 400 * 0.03)
  std::vector<int> bulk = Counts(paths, 3905);
  EXPECT_NEAR(bulk[1], 1853, 5);
  std::vector<Path> fresh{MakePath(100), MakePath(100)};
  fresh[1].loss_ewma = 0.05;
  std::vector<int> n = Counts(fresh, 14000, -1, true);
  EXPECT_NEAR(n[0], 13000, 5);
  EXPECT_NEAR(n[1], 1000, 5);
}

TEST(ChoosePath, LossBelowNoiseFloorIsNotPenalizedForLatency) {
  std::vector<Path> paths{MakePath(100), MakePath(100)};
  paths[1].loss_ewma = 0.015;  // reordering produces spurious losses of this order
  std::vector<int> n = Counts(paths, 4000, -1, true);
  EXPECT_NEAR(n[0], 2000, 5);
  EXPECT_NEAR(n[1], 2000, 5);
}

TEST(ChoosePath, DeadPathKeepsAFloor) {
  std::vector<Path> paths{MakePath(100), MakePath(100)};
  paths[1].loss_ewma = 1.0;  // floor: 5% of a clean path's weight
  std::vector<int> n = Counts(paths, 2100);
  EXPECT_NEAR(n[0], 2000, 5);
  EXPECT_NEAR(n[1], 100, 5);
}

TEST(ChoosePath, ExcludeHonouredWhenAnotherActivePathExists) {
  std::vector<Path> paths{MakePath(100), MakePath(1000), MakePath(100)};
  for (int i = 0; i < 300; ++i) {
    const int p = ChoosePath(paths, 0);
    EXPECT_NE(p, 0);
  }
  // Path 1 is slow and 2 fast: the excluded 0 aside, 2 still gets most.
  std::vector<int> n = Counts(paths, 1100, 0);
  EXPECT_EQ(n[0], 0);
  EXPECT_NEAR(n[1], 100, 5);
  EXPECT_NEAR(n[2], 1000, 5);
}

TEST(ChoosePath, ExcludedPathUsedWhenItIsTheOnlyActiveOne) {
  std::vector<Path> paths{MakePath(100), MakePath(100)};
  paths[1].state = PathState::kSuspect;
  for (int i = 0; i < 50; ++i) EXPECT_EQ(ChoosePath(paths, 0), 0);
  paths[1].known = false;
  for (int i = 0; i < 50; ++i) EXPECT_EQ(ChoosePath(paths, 0), 0);
}

TEST(ChoosePath, ExcludeOutOfRangeIsIgnored) {
  std::vector<Path> paths{MakePath(100), MakePath(100)};
  std::vector<int> n = Counts(paths, 100, 7);
  EXPECT_EQ(n[0], 50);
  EXPECT_EQ(n[1], 50);
}

TEST(ChoosePath, SuspectPathsSkippedWhileOneIsActive) {
  std::vector<Path> paths{MakePath(10), MakePath(100), MakePath(10)};
  paths[0].state = PathState::kSuspect;
  paths[2].state = PathState::kSuspect;
  for (int i = 0; i < 200; ++i) EXPECT_EQ(ChoosePath(paths, -1), 1);
}

TEST(ChoosePath, SuspectPathsUsedWhenNoneIsActive) {
  std::vector<Path> paths{MakePath(100), MakePath(100), MakePath(100)};
  for (auto& p : paths) p.state = PathState::kSuspect;
  paths[2].known = false;
  std::vector<int> n = Counts(paths, 200);
  EXPECT_EQ(n[0], 100);
  EXPECT_EQ(n[1], 100);
  EXPECT_EQ(n[2], 0);
  // Even an excluded suspect path is chosen rather than none.
  paths[1].known = false;
  for (int i = 0; i < 20; ++i) EXPECT_EQ(ChoosePath(paths, 0), 0);
}

TEST(ChoosePath, UnknownPathsNeverChosen) {
  std::vector<Path> paths{MakePath(1000), MakePath(1), MakePath(1000)};
  paths[1].known = false;  // fastest, but its address is not learned yet
  std::vector<int> n = Counts(paths, 1000);
  EXPECT_EQ(n[1], 0);
  EXPECT_EQ(n[0], 500);
  EXPECT_EQ(n[2], 500);
  // Excluding the only other known path falls back to the excluded one, not the unknown one.
  paths[2].known = false;
  for (int i = 0; i < 20; ++i) EXPECT_EQ(ChoosePath(paths, 0), 0);
}

// A path without an RTT sample counts as fast as the best sampled path, so it gets traffic (and
// with it the samples that set its real weight) instead of starving behind its initial RTT.
TEST(ChoosePath, PathWithoutSampleCountsAsTheBestSampledOne) {
  std::vector<Path> paths{MakePath(500), Path(1000)};
  paths[1].known = true;  // no samples: srtt = initial 1000
  std::vector<int> n = Counts(paths, 3000);
  EXPECT_NEAR(n[0], 1500, 5);
  EXPECT_NEAR(n[1], 1500, 5);
  // With no sample anywhere, the configured initial RTTs are all there is.
  std::vector<Path> none{Path(500), Path(1000)};
  none[0].known = none[1].known = true;
  n = Counts(none, 3000);
  EXPECT_NEAR(n[0], 2000, 5);
  EXPECT_NEAR(n[1], 1000, 5);
}

}  // namespace
// A path that stalled (and delivered nothing since) gets only the floor at once: a dead link's
// path must stop taking traffic before the slow loss EWMA notices. Before, it kept an equal
// share (1050 of 2100).
TEST(ChoosePath, StalledPathGetsOnlyTheFloor) {
  for (bool avoid_loss : {false, true}) {
    std::vector<Path> paths{MakePath(100), MakePath(100)};
    paths[1].stalled = true;
    std::vector<int> n = Counts(paths, 2100, -1, avoid_loss);
    EXPECT_EQ(n[0] + n[1], 2100);
    EXPECT_NEAR(n[1], 100, 2) << avoid_loss;  // 0.05 / (1 + 0.05) of the picks
    paths[1].stalled = false;                 // an ack of it restores its share
    n = Counts(paths, 200, -1, avoid_loss);
    EXPECT_NEAR(n[1], 100, 30) << avoid_loss;
  }
}

}  // namespace opensrd
