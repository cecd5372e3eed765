// AckGenerator's duplicate flags: which order of copies tells the sender what.
#include "transport/ack_generator.h"

#include <gtest/gtest.h>

namespace opensrd {
namespace {

uint8_t TakeFlags(AckGenerator& g, uint8_t path) {
  wire::AckExt a;
  return g.Take(0, path, wire::kMaxSackRanges, a);
}

TEST(AckGeneratorFlags, ResentCopyAfterTheOriginalSaysTheResendWasNotNeeded) {
  AckGenerator g(1024, 2, 1000);
  g.OnNew(0, 0, 5, /*retx=*/false);
  EXPECT_EQ(TakeFlags(g, 0), 0);
  g.OnDuplicate(1, 5, /*retx=*/true);
  EXPECT_EQ(TakeFlags(g, 1), wire::kFlagRetxDup);  // on the path the re-sent copy came
  EXPECT_EQ(TakeFlags(g, 1), 0);                   // said once
}

TEST(AckGeneratorFlags, OriginalAfterTheResentCopyIsALateOriginal) {
  AckGenerator g(1024, 2, 1000);
  g.OnNew(0, 0, 7, /*retx=*/true);
  g.OnDuplicate(2, 7, /*retx=*/false);
  EXPECT_EQ(TakeFlags(g, 2), wire::kFlagDupSeen);
}

TEST(AckGeneratorFlags, NetworkDuplicatesSetNeither) {
  AckGenerator g(1024, 2, 1000);
  g.OnNew(0, 0, 1, /*retx=*/true);  // a re-sent copy, duplicated by the network
  g.OnDuplicate(0, 1, /*retx=*/true);
  g.OnNew(0, 0, 2, /*retx=*/false);  // an original, duplicated by the network
  g.OnDuplicate(0, 2, /*retx=*/false);
  EXPECT_EQ(TakeFlags(g, 0), 0);
}

}  // namespace
}  // namespace opensrd
