#include "transport/wire.h"

#include <gtest/gtest.h>

#include <vector>

#include "common/crc32c.h"

namespace opensrd::wire {
namespace {

Common MakeCommon(Type t) {
  Common c;
  c.type = t;
  c.flags = kFlagRetx;
  c.path_id = 3;
  c.dst_ctx = 0x11223344;
  c.src_ctx = 0x55667788;
  c.src_incarnation = 0xAABBCCDD;
  c.dst_incarnation = 0x01020304;
  c.tx_ts = 123456;
  return c;
}

std::vector<uint8_t> MakeData(size_t payload_len = 100) {
  std::vector<uint8_t> payload(payload_len);
  for (size_t i = 0; i < payload.size(); ++i) payload[i] = static_cast<uint8_t>(i);
  DataExt d;
  d.psn = 77;
  d.msg_id = 5;
  d.msg_len = 1000;
  d.offset = 200;
  d.sq_id = 9;
  d.sq_seq = 4;
  std::vector<uint8_t> buf(2000);
  size_t n = EncodeData(MakeCommon(Type::kData), d, payload, buf);
  buf.resize(n);
  return buf;
}

// Re-seals after a test edits header bytes, so the edit (not the checksum) is what is rejected.
void Reseal(std::vector<uint8_t>& b) {
  SealDatagram(b, b.size() - kCrcLen);
}

TEST(Wire, DataRoundTrip) {
  auto buf = MakeData();
  ASSERT_EQ(buf.size(), kDataHeaderLen + 100 + kCrcLen);
  Packet p;
  ASSERT_EQ(Parse(buf, p), ParseError::kNone);
  EXPECT_EQ(p.common.type, Type::kData);
  EXPECT_EQ(p.common.flags, kFlagRetx);
  EXPECT_EQ(p.common.path_id, 3);
  EXPECT_EQ(p.common.dst_ctx, 0x11223344u);
  EXPECT_EQ(p.common.src_ctx, 0x55667788u);
  EXPECT_EQ(p.common.src_incarnation, 0xAABBCCDDu);
  EXPECT_EQ(p.common.dst_incarnation, 0x01020304u);
  EXPECT_EQ(p.common.tx_ts, 123456u);
  EXPECT_EQ(p.data.psn, 77u);
  EXPECT_EQ(p.data.msg_id, 5u);
  EXPECT_EQ(p.data.msg_len, 1000u);
  EXPECT_EQ(p.data.offset, 200u);
  EXPECT_EQ(p.data.sq_id, 9);
  EXPECT_EQ(p.data.sq_seq, 4u);
  ASSERT_EQ(p.payload.size(), 100u);
  EXPECT_EQ(p.payload[99], 99);
}

TEST(Wire, ByteOrderIsNetworkOrder) {
  auto buf = MakeData();
  EXPECT_EQ(buf[0], 0x53);  // 'S'
  EXPECT_EQ(buf[1], 0x44);  // 'D'
  EXPECT_EQ(buf[2], kVersion);
  EXPECT_EQ(buf[3], 1);                // kData
  EXPECT_EQ(buf[8], 0x11);             // dst_ctx high byte first
  EXPECT_EQ(buf[kCommonLen + 3], 77);  // psn low byte last
}

TEST(Wire, AckRoundTrip) {
  AckExt a;
  a.cum_psn = 0xFFFFFFF0;  // ranges wrap around 2^32: serial arithmetic
  a.echo_ts = 99;
  a.ack_delay_us = 7;
  a.echo_path = 2;
  a.n_ranges = 2;
  a.ranges[0] = {0xFFFFFFF5, 0xFFFFFFFA};
  a.ranges[1] = {3, 9};
  std::vector<uint8_t> buf(512);
  size_t n = EncodeAck(MakeCommon(Type::kAck), a, buf);
  ASSERT_GT(n, 0u);
  buf.resize(n);
  Packet p;
  ASSERT_EQ(Parse(buf, p), ParseError::kNone);
  EXPECT_EQ(p.ack.cum_psn, a.cum_psn);
  EXPECT_EQ(p.ack.n_ranges, 2);
  EXPECT_EQ(p.ack.ranges[1].end, 9u);
  EXPECT_EQ(p.ack.echo_path, 2);
  EXPECT_EQ(p.ack.ack_delay_us, 7);
}

TEST(Wire, HelloNackBareRoundTrip) {
  std::vector<uint8_t> buf(256);
  HelloExt h{.node_id = 0x0102030405060708ull,
             .num_paths = 4,
             .max_payload = 1400,
             .generation = 7,
             .echo_generation = 6,
             .window_packets = 4096};
  size_t n = EncodeHello(MakeCommon(Type::kHello), h, buf);
  EXPECT_EQ(n, kCommonLen + kHelloExtLen + kCrcLen);
  Packet p;
  ASSERT_EQ(Parse({buf.data(), n}, p), ParseError::kNone);
  EXPECT_EQ(p.hello.node_id, h.node_id);
  EXPECT_EQ(p.hello.num_paths, 4);
  EXPECT_EQ(p.hello.generation, 7u);
  EXPECT_EQ(p.hello.echo_generation, 6u);
  EXPECT_EQ(p.hello.window_packets, 4096u);
  n = EncodeNack(MakeCommon(Type::kNack), NackExt{.psn = 9, .reason = NackReason::kOutOfWindow},
                 buf);
  ASSERT_EQ(Parse({buf.data(), n}, p), ParseError::kNone);
  EXPECT_EQ(p.nack.reason, NackReason::kOutOfWindow);
  n = EncodeBare(MakeCommon(Type::kProbe), buf);
  ASSERT_EQ(Parse({buf.data(), n}, p), ParseError::kNone);
  EXPECT_EQ(p.common.type, Type::kProbe);
}

TEST(Wire, DataWithPiggybackedAck) {
  AckExt a;
  a.cum_psn = 10;
  a.echo_ts = 5;
  a.echo_path = 1;
  a.n_ranges = 2;
  a.ranges[0] = {12, 14};
  a.ranges[1] = {20, 21};
  std::vector<uint8_t> payload(64, 0x5A), buf(512);
  size_t n =
      EncodeData(MakeCommon(Type::kData), DataExt{.psn = 3, .msg_len = 64}, payload, buf, &a);
  ASSERT_EQ(n, kDataHeaderLen + AckBlockLen(2) + 64 + kCrcLen);
  Packet p;
  ASSERT_EQ(Parse({buf.data(), n}, p), ParseError::kNone);
  EXPECT_TRUE(p.common.flags & kFlagAck);
  EXPECT_EQ(p.data.psn, 3u);
  EXPECT_EQ(p.ack.cum_psn, 10u);
  EXPECT_EQ(p.ack.n_ranges, 2);
  EXPECT_EQ(p.ack.ranges[1].begin, 20u);
  ASSERT_EQ(p.payload.size(), 64u);
  EXPECT_EQ(p.payload[63], 0x5A);
  // Without an ack the flag is cleared even if the caller's common header had it.
  Common c = MakeCommon(Type::kData);
  c.flags |= kFlagAck;
  n = EncodeData(c, DataExt{.msg_len = 64}, payload, buf);
  ASSERT_EQ(Parse({buf.data(), n}, p), ParseError::kNone);
  EXPECT_FALSE(p.common.flags & kFlagAck);
}

TEST(WireReject, PiggybackedAckBadRangeOrLength) {
  AckExt a;
  a.cum_psn = 10;
  a.n_ranges = 1;
  a.ranges[0] = {12, 14};
  std::vector<uint8_t> payload(8, 1), buf(512);
  size_t n = EncodeData(MakeCommon(Type::kData), DataExt{.msg_len = 8}, payload, buf, &a);
  std::vector<uint8_t> b(buf.begin(), buf.begin() + n);
  b[kDataHeaderLen + 12 + 3] = 5;  // range begin below the cumulative point
  Reseal(b);
  Packet p;
  EXPECT_EQ(Parse(b, p), ParseError::kBadField);
  std::vector<uint8_t> c(buf.begin(), buf.begin() + n);
  c[kDataHeaderLen + 11] = 3;  // claims 3 ranges: no room for them and the payload
  Reseal(c);
  EXPECT_EQ(Parse(c, p), ParseError::kBadLength);
}

TEST(Wire, ResetRoundTripAndRejections) {
  std::vector<uint8_t> buf(256);
  size_t n = EncodeReset(MakeCommon(Type::kReset), {.addressed_incarnation = 0xCAFE}, buf);
  ASSERT_EQ(n, kCommonLen + kResetExtLen + kCrcLen);
  Packet p;
  ASSERT_EQ(Parse({buf.data(), n}, p), ParseError::kNone);
  EXPECT_EQ(p.common.type, Type::kReset);
  EXPECT_EQ(p.reset.addressed_incarnation, 0xCAFEu);
  std::vector<uint8_t> b(buf.begin(), buf.begin() + n);
  b[kCommonLen + 7] = 1;  // reserved word
  Reseal(b);
  EXPECT_EQ(Parse(b, p), ParseError::kBadField);
  // A reset without its extension (the old bare form) is refused.
  Common c = MakeCommon(Type::kProbe);
  n = EncodeBare(c, buf);
  buf[3] = static_cast<uint8_t>(Type::kReset);
  std::vector<uint8_t> bare(buf.begin(), buf.begin() + n);
  Reseal(bare);
  EXPECT_EQ(Parse(bare, p), ParseError::kBadLength);
}

TEST(Wire, EncoderRefusesSmallBuffer) {
  std::vector<uint8_t> small(kDataHeaderLen + 10);
  std::vector<uint8_t> payload(100);
  EXPECT_EQ(EncodeData(MakeCommon(Type::kData), DataExt{.msg_len = 100}, payload, small), 0u);
}

// One test per rejection path of Parse.
TEST(WireReject, TooShort) {
  auto b = MakeData();
  Packet p;
  EXPECT_EQ(Parse({b.data(), 10}, p), ParseError::kTooShort);
  // A data header cut short but with a valid CRC of what remains.
  std::vector<uint8_t> cut(b.begin(), b.begin() + kCommonLen + 4);
  cut.resize(cut.size() + kCrcLen);
  SealDatagram(cut, kCommonLen + 4);
  EXPECT_EQ(Parse(cut, p), ParseError::kTooShort);
}

TEST(WireReject, BadMagic) {
  auto b = MakeData();
  b[0] = 0x00;
  Reseal(b);
  Packet p;
  EXPECT_EQ(Parse(b, p), ParseError::kBadMagic);
}

TEST(WireReject, BadVersion) {
  auto b = MakeData();
  b[2] = 9;
  Reseal(b);
  Packet p;
  EXPECT_EQ(Parse(b, p), ParseError::kBadVersion);
}

TEST(WireReject, BadType) {
  auto b = MakeData();
  Packet p;
  for (uint8_t t : {0, 11, 255}) {
    b[3] = t;
    Reseal(b);
    EXPECT_EQ(Parse(b, p), ParseError::kBadType) << int(t);
  }
}

TEST(WireReject, BadChecksumOnAnyFlippedBit) {
  auto good = MakeData();
  Packet p;
  for (size_t i = 4; i < good.size(); i += 13) {
    auto b = good;
    b[i] ^= 0x10;
    EXPECT_EQ(Parse(b, p), ParseError::kBadChecksum) << i;
  }
}

TEST(WireReject, NonZeroReserved) {
  auto b = MakeData();
  b[7] = 1;
  Reseal(b);
  Packet p;
  EXPECT_EQ(Parse(b, p), ParseError::kBadField);
}

TEST(WireReject, PayloadLengthDisagrees) {
  auto b = MakeData();
  b[kCommonLen + 19] = 101;  // payload_len low byte: claims 101, carries 100
  Reseal(b);
  Packet p;
  EXPECT_EQ(Parse(b, p), ParseError::kBadLength);
}

TEST(WireReject, FragmentOutsideMessage) {
  auto b = MakeData();
  b[kCommonLen + 14] = 0x03;  // offset = 0x3C8 + ... pushes offset+len past msg_len=1000
  b[kCommonLen + 15] = 0xE8;
  Reseal(b);
  Packet p;
  EXPECT_EQ(Parse(b, p), ParseError::kBadField);
}

TEST(WireReject, EmptyFragmentOfNonEmptyMessage) {
  std::vector<uint8_t> buf(256);
  size_t n = EncodeData(MakeCommon(Type::kData), DataExt{.msg_len = 10}, {}, buf);
  Packet p;
  EXPECT_EQ(Parse({buf.data(), n}, p), ParseError::kBadField);
  n = EncodeData(MakeCommon(Type::kData), DataExt{.msg_len = 0}, {}, buf);
  EXPECT_EQ(Parse({buf.data(), n}, p), ParseError::kNone);  // an empty message is legal
}

std::vector<uint8_t> AckWith(std::initializer_list<SackRange> ranges, uint32_t cum = 10) {
  AckExt a;
  a.cum_psn = cum;
  for (auto r : ranges) a.ranges[a.n_ranges++] = r;
  std::vector<uint8_t> buf(512);
  buf.resize(EncodeAck(MakeCommon(Type::kAck), a, buf));
  return buf;
}

TEST(WireReject, AckRangeEmptyOrInverted) {
  Packet p;
  EXPECT_EQ(Parse(AckWith({{20, 20}}), p), ParseError::kBadField);
  EXPECT_EQ(Parse(AckWith({{30, 20}}), p), ParseError::kBadField);
}

TEST(WireReject, AckRangeBelowCumulative) {
  Packet p;
  EXPECT_EQ(Parse(AckWith({{5, 20}}), p), ParseError::kBadField);
  EXPECT_EQ(Parse(AckWith({{10, 20}}), p), ParseError::kBadField);
}

TEST(WireReject, AckRangesNotAscending) {
  Packet p;
  EXPECT_EQ(Parse(AckWith({{30, 40}, {12, 14}}), p), ParseError::kBadField);
  EXPECT_EQ(Parse(AckWith({{12, 14}, {14, 16}}), p), ParseError::kBadField);  // must have a gap
}

TEST(WireReject, AckTooManyRanges) {
  auto b = AckWith({{12, 14}});
  b[kCommonLen + 11] = kMaxSackRanges + 1;
  Reseal(b);
  Packet p;
  EXPECT_EQ(Parse(b, p), ParseError::kBadField);
}

TEST(WireReject, AckCountDisagreesWithLength) {
  auto b = AckWith({{12, 14}});
  b[kCommonLen + 11] = 2;
  Reseal(b);
  Packet p;
  EXPECT_EQ(Parse(b, p), ParseError::kBadLength);
}

TEST(WireReject, HelloBadFields) {
  std::vector<uint8_t> buf(256);
  Packet p;
  HelloExt h{.node_id = 1, .num_paths = 0, .max_payload = 1400, .window_packets = 64};
  size_t n = EncodeHello(MakeCommon(Type::kHello), h, buf);
  EXPECT_EQ(Parse({buf.data(), n}, p), ParseError::kBadField);
  h.num_paths = 2;
  for (uint32_t bad_window : {0u, 32u, 100u, (1u << 21)}) {
    h.window_packets = bad_window;
    n = EncodeHello(MakeCommon(Type::kHello), h, buf);
    EXPECT_EQ(Parse({buf.data(), n}, p), ParseError::kBadField) << bad_window;
  }
  h.window_packets = 64;
  h.num_paths = 2;
  h.max_payload = 10;
  n = EncodeHello(MakeCommon(Type::kHello), h, buf);
  EXPECT_EQ(Parse({buf.data(), n}, p), ParseError::kBadField);
  h.max_payload = 1400;
  Common c = MakeCommon(Type::kHello);
  c.src_incarnation = 0;
  n = EncodeHello(c, h, buf);
  EXPECT_EQ(Parse({buf.data(), n}, p), ParseError::kBadField);
}

TEST(WireReject, HelloWrongLength) {
  std::vector<uint8_t> buf(256);
  size_t n = EncodeHello(
      MakeCommon(Type::kHello),
      HelloExt{.node_id = 1, .num_paths = 1, .max_payload = 1400, .window_packets = 64}, buf);
  std::vector<uint8_t> longer(buf.begin(), buf.begin() + n - kCrcLen);
  longer.push_back(0);
  longer.resize(longer.size() + kCrcLen);
  SealDatagram(longer, longer.size() - kCrcLen);
  Packet p;
  EXPECT_EQ(Parse(longer, p), ParseError::kBadLength);
}

TEST(WireReject, NackBadReasonAndPadding) {
  std::vector<uint8_t> buf(256);
  size_t n = EncodeNack(MakeCommon(Type::kNack), NackExt{.psn = 1}, buf);
  buf.resize(n);
  Packet p;
  buf[kCommonLen + 4] = 9;
  Reseal(buf);
  EXPECT_EQ(Parse(buf, p), ParseError::kBadField);
  buf[kCommonLen + 4] = 1;
  buf[kCommonLen + 6] = 1;
  Reseal(buf);
  EXPECT_EQ(Parse(buf, p), ParseError::kBadField);
}

TEST(WireReject, BareWithTrailingBytes) {
  std::vector<uint8_t> buf(256);
  size_t n = EncodeBare(MakeCommon(Type::kProbe), buf);
  std::vector<uint8_t> b(buf.begin(), buf.begin() + n - kCrcLen);
  b.push_back(1);
  b.resize(b.size() + kCrcLen);
  Reseal(b);
  Packet p;
  EXPECT_EQ(Parse(b, p), ParseError::kBadLength);
}

TEST(WireReject, OversizeDatagram) {
  std::vector<uint8_t> b(kMaxDatagram + 1);
  Packet p;
  EXPECT_EQ(Parse(b, p), ParseError::kBadLength);
}

}  // namespace
}  // namespace opensrd::wire
