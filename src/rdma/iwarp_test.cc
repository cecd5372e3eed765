// iWARP DDP/RDMAP codec: byte vectors worked out by hand from RFC 5041 (DDP tagged and
// untagged headers) and RFC 5040 (RDMAP control, read request, terminate), round trips of every
// RDMAP opcode and segment position, and one test per rejection path.
#include "rdma/iwarp.h"

#include <gtest/gtest.h>

#include <cstring>
#include <vector>

#include "rdma/samples.h"
#include "rdma/test_util.h"

namespace opensrd::rdma {
namespace {

using testing::Token;

TEST(Iwarp, TaggedWriteMatchesHandVector) {
  const uint8_t data[] = {'h', 'i', '!'};
  RdmaCommand c;
  c.opcode = RdmaOpcode::kWriteOnly;
  c.rkey = 0x1234;
  c.va = 0x1000;
  c.payload = data;
  // DDP control: T 1, L 1, Rsvd 0, DV 01 -> 0xC1. RDMAP control: RV 01, Rsvd 0, OpCode 0 -> 0x40.
  const std::vector<uint8_t> want = {0xC1, 0x40, 0x00, 0x00, 0x12, 0x34, 0x00, 0x00, 0x00,
                                     0x00, 0x00, 0x00, 0x10, 0x00, 'h',  'i',  '!'};
  Result<std::vector<uint8_t>> e = iwarp::EncodeUlpdu(c);
  ASSERT_TRUE(e.ok()) << e.status().ToString();
  EXPECT_EQ(*e, want);
  Result<RdmaCommand> d = iwarp::DecodeUlpdu(want);
  ASSERT_TRUE(d.ok()) << d.status().ToString();
  EXPECT_EQ(d->opcode, RdmaOpcode::kWriteLast);  // tagged segments never claim "first"
  EXPECT_EQ(d->rkey, 0x1234u);
  EXPECT_EQ(d->va, 0x1000u);
  EXPECT_EQ(d->payload.size(), 3u);
  EXPECT_TRUE(d->flags & kFlagLast);
  EXPECT_FALSE(d->flags & kFlagFirst);
}

TEST(Iwarp, ReadRequestMatchesHandVector) {
  RdmaCommand c;
  c.opcode = RdmaOpcode::kReadRequest;
  c.msn = 7;
  c.sink_stag = 0x5A000001;
  c.sink_to = 0x0000600000001000ull;
  c.dma_length = 0x1000;
  c.rkey = 0xA5000002;
  c.va = 0x00007F0012340000ull;
  // DDP untagged: T 0, L 1, DV 1 -> 0x41; RDMAP: RV 1, OpCode 1 -> 0x41; reserved; QN 1; MSN 7;
  // MO 0. Read request: sink STag, sink TO, size, source STag, source TO.
  const std::vector<uint8_t> want = {0x41, 0x41, 0,    0,    0,    0,    0,    0,    0,    1,
                                     0,    0,    0,    7,    0,    0,    0,    0,  // DDP untagged
                                     0x5A, 0x00, 0x00, 0x01, 0x00, 0x00, 0x60, 0x00, 0x00, 0x00,
                                     0x10, 0x00, 0x00, 0x00, 0x10, 0x00, 0xA5, 0x00, 0x00, 0x02,
                                     0x00, 0x00, 0x7F, 0x00, 0x12, 0x34, 0x00, 0x00};
  Result<std::vector<uint8_t>> e = iwarp::EncodeUlpdu(c);
  ASSERT_TRUE(e.ok()) << e.status().ToString();
  EXPECT_EQ(*e, want);
  Result<RdmaCommand> d = iwarp::DecodeUlpdu(want);
  ASSERT_TRUE(d.ok()) << d.status().ToString();
  EXPECT_EQ(d->opcode, RdmaOpcode::kReadRequest);
  EXPECT_EQ(d->msn, 7u);
  EXPECT_EQ(d->sink_stag, 0x5A000001u);
  EXPECT_EQ(d->sink_to, 0x0000600000001000ull);
  EXPECT_EQ(d->dma_length, 0x1000u);
  EXPECT_EQ(d->rkey, 0xA5000002u);
  EXPECT_EQ(d->va, 0x00007F0012340000ull);
}

TEST(Iwarp, SendSeInvalidateAndTerminateMatchHandVectors) {
  const uint8_t data[] = {1, 2};
  RdmaCommand s;
  s.opcode = RdmaOpcode::kSendOnlyInv;
  s.flags = kFlagSolicited;
  s.invalidate_rkey = 0xBEEF0001;
  s.msn = 3;
  s.payload = data;
  const std::vector<uint8_t> want_send = {0x41, 0x46, 0xBE, 0xEF, 0x00, 0x01, 0, 0, 0, 0,
                                          0,    0,    0,    3,    0,    0,    0, 0, 1, 2};
  EXPECT_EQ(*iwarp::EncodeUlpdu(s), want_send);
  Result<RdmaCommand> d = iwarp::DecodeUlpdu(want_send);
  ASSERT_TRUE(d.ok());
  EXPECT_EQ(d->opcode, RdmaOpcode::kSendOnlyInv);
  EXPECT_EQ(d->flags & (kFlagSolicited | kFlagInvalidate), kFlagSolicited | kFlagInvalidate);
  EXPECT_EQ(d->invalidate_rkey, 0xBEEF0001u);

  const uint8_t hdrs[] = {0, 14};
  RdmaCommand t;
  t.opcode = RdmaOpcode::kTerminate;
  t.msn = 1;
  t.term_layer = static_cast<uint8_t>(iwarp::TermLayer::kDdp);
  t.term_etype = static_cast<uint8_t>(iwarp::DdpErrorType::kTaggedBuffer);
  t.term_code = static_cast<uint8_t>(iwarp::DdpTaggedErrorCode::kBaseOrBounds);
  t.term_hdrct = iwarp::kHdrCtSegmentLength;
  t.payload = hdrs;
  // Terminate control: Layer 1 | EType 1 -> 0x11; code 0x01; Hdr-Ct M -> 0x80 0x00.
  const std::vector<uint8_t> want_term = {0x41, 0x47, 0, 0, 0, 0, 0,    0,    0,    2,    0, 0,
                                          0,    1,    0, 0, 0, 0, 0x11, 0x01, 0x80, 0x00, 0, 14};
  EXPECT_EQ(*iwarp::EncodeUlpdu(t), want_term);
  Result<RdmaCommand> dt = iwarp::DecodeUlpdu(want_term);
  ASSERT_TRUE(dt.ok());
  EXPECT_EQ(dt->opcode, RdmaOpcode::kTerminate);
  EXPECT_EQ(dt->term_layer, 1);
  EXPECT_EQ(dt->term_etype, 1);
  EXPECT_EQ(dt->term_code, 1);
  EXPECT_EQ(dt->term_hdrct, iwarp::kHdrCtSegmentLength);
  EXPECT_EQ(dt->payload.size(), 2u);
}

TEST(Iwarp, UntaggedPositionsComeFromLastFlagAndOffset) {
  const uint8_t data[] = {9};
  struct Case {
    RdmaOpcode op;
    uint32_t mo;
  } cases[] = {{RdmaOpcode::kSendFirst, 0},     {RdmaOpcode::kSendMiddle, 100},
               {RdmaOpcode::kSendLast, 200},    {RdmaOpcode::kSendOnly, 0},
               {RdmaOpcode::kSendLastInv, 300}, {RdmaOpcode::kSendOnlyInv, 0}};
  for (const Case& k : cases) {
    SCOPED_TRACE(OpcodeName(k.op));
    RdmaCommand c;
    c.opcode = k.op;
    c.message_offset = k.mo;
    c.payload = data;
    Result<RdmaCommand> d = iwarp::DecodeUlpdu(*iwarp::EncodeUlpdu(c));
    ASSERT_TRUE(d.ok());
    EXPECT_EQ(d->opcode, k.op);
    EXPECT_EQ(d->message_offset, k.mo);
  }
  // A non-last segment of a Send with Invalidate keeps the flag (and its wire opcode).
  RdmaCommand c;
  c.opcode = RdmaOpcode::kSendMiddle;
  c.flags = kFlagInvalidate;
  c.message_offset = 8;
  c.invalidate_rkey = 5;
  c.payload = data;
  std::vector<uint8_t> e = *iwarp::EncodeUlpdu(c);
  EXPECT_EQ(e[1], 0x44);
  Result<RdmaCommand> d = iwarp::DecodeUlpdu(e);
  ASSERT_TRUE(d.ok());
  EXPECT_EQ(d->opcode, RdmaOpcode::kSendMiddle);
  EXPECT_TRUE(d->flags & kFlagInvalidate);
}

TEST(Iwarp, EveryOpcodeRoundTrips) {
  std::vector<RdmaCommand> samples = SampleCommands(ProtocolIndex::kIwarp);
  EXPECT_EQ(samples.size(), 16u);
  for (const RdmaCommand& c : samples) {
    SCOPED_TRACE(OpcodeName(c.opcode));
    Result<std::vector<uint8_t>> e = iwarp::EncodeUlpdu(c);
    ASSERT_TRUE(e.ok()) << e.status().ToString();
    Result<RdmaCommand> d = iwarp::DecodeUlpdu(*e);
    ASSERT_TRUE(d.ok()) << d.status().ToString();
    EXPECT_EQ(Family(d->opcode), Family(c.opcode));
    EXPECT_EQ(IsLast(d->opcode), IsLast(c.opcode));
    if (Family(c.opcode) == OpcodeFamily::kSend || Family(c.opcode) == OpcodeFamily::kSingle) {
      EXPECT_EQ(d->opcode, c.opcode);
    }
    EXPECT_EQ(d->payload.size(), c.payload.size());
    Result<std::vector<uint8_t>> again = iwarp::EncodeUlpdu(*d);
    ASSERT_TRUE(again.ok());
    EXPECT_EQ(*again, *e);
  }
}

TEST(Iwarp, EncoderRefusesRoceOnlyOpcodes) {
  for (RdmaOpcode op : {RdmaOpcode::kAck, RdmaOpcode::kCompareSwap, RdmaOpcode::kWriteOnlyImm,
                        RdmaOpcode::kAtomicAck}) {
    RdmaCommand c;
    c.opcode = op;
    EXPECT_FALSE(iwarp::EncodeUlpdu(c).ok()) << OpcodeName(op);
  }
}

// --- one test per rejection path -------------------------------------------------------------

std::vector<uint8_t> ReadRequestBytes() {
  RdmaCommand c;
  c.opcode = RdmaOpcode::kReadRequest;
  return *iwarp::EncodeUlpdu(c);
}

TEST(IwarpReject, TooShort) {
  std::vector<uint8_t> r = ReadRequestBytes();
  EXPECT_EQ(Token(iwarp::DecodeUlpdu(std::span(r).first(1))), "too_short");
  EXPECT_EQ(Token(iwarp::DecodeUlpdu(std::span(r).first(17))), "too_short");
  EXPECT_EQ(Token(iwarp::DecodeUlpdu(std::span(r).first(30))), "too_short");
}

TEST(IwarpReject, BadOpcode) {
  std::vector<uint8_t> r = ReadRequestBytes();
  for (uint8_t op = 8; op < 16; ++op) {
    r[1] = static_cast<uint8_t>(0x40 | op);
    EXPECT_EQ(Token(iwarp::DecodeUlpdu(r)), "bad_opcode") << int(op);
  }
}

TEST(IwarpReject, BadVersions) {
  std::vector<uint8_t> r = ReadRequestBytes();
  r[0] = 0x42;  // DDP version 2
  EXPECT_EQ(Token(iwarp::DecodeUlpdu(r)), "bad_field");
  r = ReadRequestBytes();
  r[1] = 0x81;  // RDMAP version 2
  EXPECT_EQ(Token(iwarp::DecodeUlpdu(r)), "bad_field");
}

TEST(IwarpReject, TaggedFlagDisagreesWithOpcode) {
  std::vector<uint8_t> r = ReadRequestBytes();
  r[0] |= 0x80;  // a read request is untagged
  EXPECT_EQ(Token(iwarp::DecodeUlpdu(r)), "bad_field");
  RdmaCommand w;
  w.opcode = RdmaOpcode::kWriteOnly;
  std::vector<uint8_t> wb = *iwarp::EncodeUlpdu(w);
  wb[0] &= 0x7F;  // a write is tagged
  wb.resize(18);
  EXPECT_EQ(Token(iwarp::DecodeUlpdu(wb)), "bad_field");
}

TEST(IwarpReject, WrongQueueNumber) {
  std::vector<uint8_t> r = ReadRequestBytes();
  r[9] = 0;  // QN 0 is the send queue
  EXPECT_EQ(Token(iwarp::DecodeUlpdu(r)), "bad_field");
}

TEST(IwarpReject, ReadRequestMustBeOneSegment) {
  std::vector<uint8_t> r = ReadRequestBytes();
  r[0] &= static_cast<uint8_t>(~0x40);  // L = 0
  EXPECT_EQ(Token(iwarp::DecodeUlpdu(r)), "bad_field");
  r = ReadRequestBytes();
  r[17] = 4;  // MO = 4
  EXPECT_EQ(Token(iwarp::DecodeUlpdu(r)), "bad_field");
}

TEST(IwarpReject, PayloadOnReadRequest) {
  std::vector<uint8_t> r = ReadRequestBytes();
  r.push_back(0);
  EXPECT_EQ(Token(iwarp::DecodeUlpdu(r)), "unexpected_payload");
}

}  // namespace
}  // namespace opensrd::rdma
