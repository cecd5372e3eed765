#include "tools/opensrd/prom_text.h"

#include <gtest/gtest.h>

#include <cmath>

namespace opensrd::cli {
namespace {

PromReject OnlyRejection(const PromText& t) {
  EXPECT_TRUE(t.samples.empty());
  EXPECT_EQ(t.total_rejected(), 1u);
  for (size_t i = 0; i < static_cast<size_t>(PromReject::kCount); ++i) {
    if (t.rejected[i]) return static_cast<PromReject>(i);
  }
  return PromReject::kCount;
}

TEST(PromText, ParsesSamplesLabelsAndSkipsComments) {
  const PromText t = ParsePromText(
      "# HELP opensrd_tx_pkts_total Datagrams.\n"
      "# TYPE opensrd_tx_pkts_total counter\n"
      "opensrd_tx_pkts_total 12345\n"
      "\n"
      "opensrd_path_state{peer=\"1\",path=\"2\",state=\"suspect\"} 1\r\n"
      "opensrd_path_srtt_seconds{remote=\"a\\\\b\\\"c\\nd\",} 4.5e-05 1700000000000\n"
      "opensrd_x NaN\n"
      "opensrd_y -Inf");
  ASSERT_EQ(t.samples.size(), 5u);
  EXPECT_EQ(t.total_rejected(), 0u);
  EXPECT_EQ(t.samples[0].name, "opensrd_tx_pkts_total");
  EXPECT_EQ(t.samples[0].value, 12345);
  EXPECT_EQ(t.samples[1].Label("path"), "2");
  EXPECT_EQ(t.samples[1].Label("state"), "suspect");
  EXPECT_EQ(t.samples[1].Label("absent"), "");
  EXPECT_EQ(t.samples[2].Label("remote"), "a\\b\"c\nd");
  EXPECT_DOUBLE_EQ(t.samples[2].value, 4.5e-05);
  EXPECT_TRUE(std::isnan(t.samples[3].value));
  EXPECT_TRUE(std::isinf(t.samples[4].value) && t.samples[4].value < 0);
}

TEST(PromText, RejectsBadNames) {
  EXPECT_EQ(OnlyRejection(ParsePromText("9abc 1\n")), PromReject::kBadName);
  EXPECT_EQ(OnlyRejection(ParsePromText("{a=\"b\"} 1\n")), PromReject::kBadName);
  EXPECT_EQ(OnlyRejection(ParsePromText("m{-a=\"b\"} 1\n")), PromReject::kBadName);
}

TEST(PromText, RejectsBadLabels) {
  EXPECT_EQ(OnlyRejection(ParsePromText("m{a} 1\n")), PromReject::kBadLabels);
  EXPECT_EQ(OnlyRejection(ParsePromText("m{a=b} 1\n")), PromReject::kBadLabels);
  EXPECT_EQ(OnlyRejection(ParsePromText("m{a=\"b} 1\n")), PromReject::kBadLabels);
  EXPECT_EQ(OnlyRejection(ParsePromText("m{a=\"\\x\"} 1\n")), PromReject::kBadLabels);
  EXPECT_EQ(OnlyRejection(ParsePromText("m{a=\"b\" 1\n")), PromReject::kBadLabels);
  EXPECT_EQ(OnlyRejection(ParsePromText("m{a=\"b\\")), PromReject::kBadLabels);
  EXPECT_EQ(OnlyRejection(ParsePromText("m{")), PromReject::kBadLabels);
}

TEST(PromText, RejectsMissingAndBadValues) {
  EXPECT_EQ(OnlyRejection(ParsePromText("m\n")), PromReject::kMissingValue);
  EXPECT_EQ(OnlyRejection(ParsePromText("m   \n")), PromReject::kMissingValue);
  EXPECT_EQ(OnlyRejection(ParsePromText("m{a=\"b\"}\n")), PromReject::kMissingValue);
  EXPECT_EQ(OnlyRejection(ParsePromText("m\t1\n")), PromReject::kMissingValue);
  EXPECT_EQ(OnlyRejection(ParsePromText("m abc\n")), PromReject::kBadValue);
  EXPECT_EQ(OnlyRejection(ParsePromText("m 0x10\n")), PromReject::kBadValue);
  EXPECT_EQ(OnlyRejection(ParsePromText("m inf\n")), PromReject::kBadValue);
  EXPECT_EQ(OnlyRejection(ParsePromText("m 1.5.5\n")), PromReject::kBadValue);
  EXPECT_EQ(OnlyRejection(ParsePromText("m " + std::string(70, '1') + "\n")),
            PromReject::kBadValue);
}

TEST(PromText, RejectsTooLongLinesAndTooManyLabels) {
  EXPECT_EQ(OnlyRejection(ParsePromText("m" + std::string(PromText::kMaxLine, 'x') + " 1\n")),
            PromReject::kTooLong);
  std::string many = "m{";
  for (int i = 0; i < 17; ++i) many += "l" + std::to_string(i) + "=\"v\",";
  many += "} 1\n";
  EXPECT_EQ(OnlyRejection(ParsePromText(many)), PromReject::kTooLong);
}

TEST(PromText, ABadLineDoesNotSpoilTheOthers) {
  const PromText t = ParsePromText("a 1\nb{ 2\nc 3\n");
  ASSERT_EQ(t.samples.size(), 2u);
  EXPECT_EQ(t.samples[1].name, "c");
  EXPECT_EQ(t.total_rejected(), 1u);
}

}  // namespace
}  // namespace opensrd::cli
