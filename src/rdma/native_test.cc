// The native RDMA header against the bytes docs/WIRE.md documents, and its rejections.
#include <gtest/gtest.h>

#include <vector>

#include "rdma/native.h"
#include "rdma/pipeline.h"
#include "rdma/test_util.h"

namespace opensrd::rdma {
namespace {

using testing::Token;

TEST(NativeWire, DocumentedBytes) {
  RdmaCommand c;
  c.opcode = RdmaOpcode::kFetchAdd;
  c.dest_qp = 1;
  c.src_qp = 2;
  c.msn = 7;
  c.va = 0x1000;
  c.rkey = 0xA1B2C300;
  c.dma_length = 8;
  c.swap_add = 3;
  const std::vector<uint8_t> want = {
      0xd5, 0x01, 0x17, 0x00, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x02, 0x00,
      0x00, 0x00, 0x07, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x10, 0x00, 0xa1, 0xb2,
      0xc3, 0x00, 0x00, 0x00, 0x00, 0x08, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
      0x00, 0x00, 0x00, 0x00, 0x03, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00};
  EXPECT_EQ(*native::Encode(c), want);
  Result<RdmaCommand> d = DecodeUnit(ProtocolIndex::kNative, want);
  ASSERT_TRUE(d.ok()) << d.status().ToString();
  EXPECT_EQ(d->opcode, RdmaOpcode::kFetchAdd);
  EXPECT_EQ(d->dest_qp, 1u);
  EXPECT_EQ(d->src_qp, 2u);
  EXPECT_EQ(d->msn, 7u);
  EXPECT_EQ(d->va, 0x1000u);
  EXPECT_EQ(d->rkey, 0xA1B2C300u);
  EXPECT_EQ(d->swap_add, 3u);
}

TEST(NativeWire, NakSyndromeAndReadResponsePayload) {
  RdmaCommand n;
  n.opcode = RdmaOpcode::kNak;
  n.syndrome = 0x62;
  std::vector<uint8_t> e = *native::Encode(n);
  ASSERT_EQ(e.size(), 40u);
  EXPECT_EQ(e[2], 21);
  EXPECT_EQ(e[36], 0x62);
  uint8_t data[5] = {1, 2, 3, 4, 5};
  RdmaCommand r;
  r.opcode = RdmaOpcode::kReadResponseOnly;
  r.dma_length = 5;
  r.payload = data;
  e = *native::Encode(r);
  ASSERT_EQ(e.size(), 41u);
  Result<RdmaCommand> d = native::Decode(e);
  ASSERT_TRUE(d.ok());
  EXPECT_EQ(d->payload.size(), 5u);
  EXPECT_EQ(d->payload[4], 5);
}

TEST(NativeWire, Rejections) {
  RdmaCommand c;
  c.opcode = RdmaOpcode::kWriteOnly;
  std::vector<uint8_t> good = *native::Encode(c);
  std::vector<uint8_t> b = good;
  b[1] = 2;  // version
  EXPECT_EQ(Token(native::Decode(b)), "bad_field");
  b = good;
  b[2] = 200;  // opcode
  EXPECT_EQ(Token(native::Decode(b)), "bad_opcode");
  b = good;
  b.resize(35);
  EXPECT_EQ(Token(native::Decode(b)), "too_short");
  c.opcode = RdmaOpcode::kReadRequest;
  b = *native::Encode(c);
  b.push_back(0);  // a READ request carries no data
  EXPECT_EQ(Token(native::Decode(b)), "unexpected_payload");
}

}  // namespace
}  // namespace opensrd::rdma
