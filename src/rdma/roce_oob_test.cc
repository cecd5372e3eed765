// The ibv_rc_pingpong and perftest address messages: byte vectors as the C programs print them
// (the guest's rxe0 at 10.77.0.2), round trips, and one test per rejection path.
#include "rdma/roce_oob.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "rdma/test_util.h"

namespace opensrd::rdma::roce {
namespace {

using testing::Token;

std::vector<uint8_t> Bytes(const std::string& s) {
  return std::vector<uint8_t>(s.begin(), s.end());
}

// sprintf("%04x:%06x:%06x:%s", 0, 0x11, 0x6d5dd4, "00000000000000000000ffff0a4d0002") + NUL.
const std::string kPingpong =
    std::string("0000:000011:6d5dd4:00000000000000000000ffff0a4d0002") + '\0';

TEST(RoceOob, PingpongVector) {
  ASSERT_EQ(kPingpong.size(), kPingpongDestLen);
  Result<PingpongDest> d = ParsePingpongDest(Bytes(kPingpong));
  ASSERT_TRUE(d.ok()) << d.status().ToString();
  EXPECT_EQ(d->qpn, 0x11u);
  EXPECT_EQ(d->psn, 0x6d5dd4u);
  uint32_t ip = 0;
  ASSERT_TRUE(GidToIpv4(d->gid, &ip));
  EXPECT_EQ(ip, 0x0A4D0002u);
  PingpongDest mine;
  mine.qpn = 0x11;
  mine.psn = 0x6d5dd4;
  mine.gid = Ipv4MappedGid(0x0A4D0002);
  EXPECT_EQ(FormatPingpongDest(mine), kPingpong);
}

TEST(RoceOob, PingpongRejections) {
  EXPECT_EQ(Token(ParsePingpongDest(Bytes(kPingpong.substr(0, 51)))), "bad_length");
  std::string s = kPingpong;
  s[4] = '-';  // separator after the LID
  EXPECT_EQ(Token(ParsePingpongDest(Bytes(s))), "bad_format");
  s = kPingpong;
  s[7] = 'g';  // not a hex digit in the QPN
  EXPECT_EQ(Token(ParsePingpongDest(Bytes(s))), "bad_format");
  s = kPingpong;
  s[51] = '0';  // no NUL
  EXPECT_EQ(Token(ParsePingpongDest(Bytes(s))), "bad_format");
  s = kPingpong;
  s[20] = ' ';  // inside the GID
  EXPECT_EQ(Token(ParsePingpongDest(Bytes(s))), "bad_format");
  std::array<uint8_t, 16> link_local{0xfe, 0x80};
  uint32_t ip;
  EXPECT_FALSE(GidToIpv4(link_local, &ip));
}

// What ib_write_bw -x 1 printed for rxe0 at 10.77.0.2 (QPN 0x16, PSN 0x7157ec, RKey 0x719,
// VAddr 0x7fd19f7e2000, 128 outstanding reads), NUL included.
const std::string kPerftest = std::string(
                                  "0000:0080:000016:7157ec:00000719:00007fd19f7e2000:"
                                  "00:00:00:00:00:00:00:00:00:00:ff:ff:0a:4d:00:02:00000000:") +
                              '\0';

TEST(RoceOob, PerftestVector) {
  ASSERT_EQ(kPerftest.size(), kPerftestDestLen);
  Result<PerftestDest> d = ParsePerftestDest(Bytes(kPerftest));
  ASSERT_TRUE(d.ok()) << d.status().ToString();
  EXPECT_EQ(d->out_reads, 0x80);
  EXPECT_EQ(d->qpn, 0x16u);
  EXPECT_EQ(d->psn, 0x7157ecu);
  EXPECT_EQ(d->rkey, 0x719u);
  EXPECT_EQ(d->vaddr, 0x7fd19f7e2000ull);
  uint32_t ip = 0;
  ASSERT_TRUE(GidToIpv4(d->gid, &ip));
  EXPECT_EQ(ip, 0x0A4D0002u);
  EXPECT_EQ(FormatPerftestDest(*d), kPerftest);
}

TEST(RoceOob, PerftestRejections) {
  EXPECT_EQ(Token(ParsePerftestDest(Bytes(kPerftest + "x"))), "bad_length");
  for (size_t at : {4u, 20u, 40u, 60u, 100u, 106u, 107u}) {
    std::string s = kPerftest;
    s[at] = 'z';
    EXPECT_EQ(Token(ParsePerftestDest(Bytes(s))), "bad_format") << "byte " << at;
  }
}

}  // namespace
}  // namespace opensrd::rdma::roce
