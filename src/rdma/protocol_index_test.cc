// The classifier and the pipeline: encapsulation -> protocol index -> tables -> command.
#include "rdma/protocol_index.h"

#include <gtest/gtest.h>

#include <vector>

#include "rdma/iwarp.h"
#include "rdma/mpa.h"
#include "rdma/native.h"
#include "rdma/pipeline.h"
#include "rdma/roce.h"
#include "rdma/samples.h"
#include "rdma/test_util.h"

namespace opensrd::rdma {
namespace {

using testing::Token;

TEST(ProtocolIndex, ClassifiesByEncapsulation) {
  std::vector<uint8_t> any = {1, 2, 3};
  EXPECT_EQ(*ClassifyPacket({Carrier::kUdp, 4791, false}, any), ProtocolIndex::kRoce);
  EXPECT_EQ(Token(ClassifyPacket({Carrier::kUdp, 4792, false}, any)), "unknown_protocol");
  EXPECT_EQ(*ClassifyPacket({Carrier::kTcp, 9999, true}, any), ProtocolIndex::kIwarp);
  std::vector<uint8_t> req = *mpa::EncodeStartFrame({});
  EXPECT_EQ(*ClassifyPacket({Carrier::kTcp, 9999, false}, req), ProtocolIndex::kIwarp);
  EXPECT_EQ(Token(ClassifyPacket({Carrier::kTcp, 4791, false}, any)), "unknown_protocol");
  std::vector<uint8_t> nat = {kNativeMarker, 1};
  EXPECT_EQ(*ClassifyPacket({Carrier::kSrdMessage, 0, false}, nat), ProtocolIndex::kNative);
  EXPECT_EQ(Token(ClassifyPacket({Carrier::kSrdMessage, 0, false}, any)), "unknown_protocol");
  EXPECT_EQ(Token(ClassifyPacket({Carrier::kSrdMessage, 0, false}, {})), "unknown_protocol");
  EXPECT_STREQ(ProtocolName(ProtocolIndex::kIwarp), "iwarp");
}

TEST(ProtocolIndex, OneCommandThreeWires) {
  const uint8_t data[] = {1, 2, 3, 4, 5, 6, 7};
  RdmaCommand c;
  c.opcode = RdmaOpcode::kWriteOnly;
  c.va = 0xFEEDF00D;
  c.rkey = 0x42;
  c.dma_length = 7;
  c.payload = data;
  std::vector<uint8_t> roce_unit = *roce::EncodeTransport(c);
  std::vector<uint8_t> iwarp_unit = *iwarp::EncodeUlpdu(c);
  std::vector<uint8_t> native_unit = *native::Encode(c);
  struct Case {
    ProtocolIndex index;
    const std::vector<uint8_t>& unit;
  } cases[] = {{ProtocolIndex::kRoce, roce_unit},
               {ProtocolIndex::kIwarp, iwarp_unit},
               {ProtocolIndex::kNative, native_unit}};
  for (const Case& k : cases) {
    SCOPED_TRACE(ProtocolName(k.index));
    EXPECT_EQ(TablesFor(k.index).index, k.index);
    Result<RdmaCommand> d = DecodeUnit(k.index, k.unit);
    ASSERT_TRUE(d.ok()) << d.status().ToString();
    EXPECT_EQ(Family(d->opcode), OpcodeFamily::kWrite);
    EXPECT_EQ(d->va, c.va);
    EXPECT_EQ(d->rkey, c.rkey);
    ASSERT_EQ(d->payload.size(), sizeof(data));
  }
  // The same bytes under another protocol's tables do not pass.
  EXPECT_FALSE(DecodeUnit(ProtocolIndex::kNative, roce_unit).ok());
  EXPECT_FALSE(DecodeUnit(ProtocolIndex::kIwarp, native_unit).ok());
}

TEST(ProtocolIndex, NativeRoundTripsEveryOpcode) {
  for (const RdmaCommand& c : SampleCommands(ProtocolIndex::kNative)) {
    SCOPED_TRACE(OpcodeName(c.opcode));
    std::vector<uint8_t> e = *native::Encode(c);
    EXPECT_EQ(e[0], kNativeMarker);
    Result<RdmaCommand> d = native::Decode(e);
    ASSERT_TRUE(d.ok()) << d.status().ToString();
    EXPECT_EQ(d->opcode, c.opcode);
    EXPECT_EQ(*native::Encode(*d), e);
  }
}

}  // namespace
}  // namespace opensrd::rdma
