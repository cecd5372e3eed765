// The generic table-driven codec: bit-field access, table validation for every shipped protocol,
// and a toy protocol that exists only as tables (the pipeline's promise: a new protocol needs no
// change to the codec).
#include "rdma/header_table.h"

#include <gtest/gtest.h>

#include <vector>

#include "rdma/iwarp.h"
#include "rdma/native.h"
#include "rdma/roce.h"
#include "rdma/test_util.h"

namespace opensrd::rdma {
namespace {

TEST(HeaderTable, ReadAndWriteBitFields) {
  std::vector<uint8_t> b(8, 0);
  FieldDescriptor pad{"PadCnt", CommandField::kPadCount, 1, 2, 2};
  WriteField(b, pad, 3);
  EXPECT_EQ(b[1], 0x30);
  EXPECT_EQ(ReadField(b, pad), 3u);
  FieldDescriptor qp{"DestQP", CommandField::kDestQp, 5, 0, 24};
  WriteField(b, qp, 0xABCDEF);
  EXPECT_EQ(b[5], 0xAB);
  EXPECT_EQ(b[6], 0xCD);
  EXPECT_EQ(b[7], 0xEF);
  EXPECT_EQ(ReadField(b, qp), 0xABCDEFu);
  // A field straddling bytes leaves its neighbours alone.
  FieldDescriptor mid{"x", CommandField::kImm, 0, 4, 8};
  std::vector<uint8_t> c = {0xF0, 0x0F};
  WriteField(c, mid, 0x5A);
  EXPECT_EQ(c[0], 0xF5);
  EXPECT_EQ(c[1], 0xAF);
  EXPECT_EQ(ReadField(c, mid), 0x5Au);
  FieldDescriptor wide{"VA", CommandField::kVa, 0, 0, 64};
  std::vector<uint8_t> d(8);
  WriteField(d, wide, 0x0102030405060708ull);
  EXPECT_EQ(d[0], 1);
  EXPECT_EQ(d[7], 8);
  EXPECT_EQ(ReadField(d, wide), 0x0102030405060708ull);
}

TEST(HeaderTable, ShippedTablesAreConsistent) {
  EXPECT_TRUE(ValidateTables(roce::Tables()).ok()) << ValidateTables(roce::Tables()).ToString();
  EXPECT_TRUE(ValidateTables(iwarp::Tables()).ok()) << ValidateTables(iwarp::Tables()).ToString();
  EXPECT_TRUE(ValidateTables(native::Tables()).ok()) << ValidateTables(native::Tables()).ToString();
}

// A toy protocol: one 8-byte header (opcode, flags, QP) and an optional 4-byte immediate.
constexpr FieldDescriptor kToyBase[] = {
    {"Op", CommandField::kWireOpcode, 0, 0, 8},  {"Ver", CommandField::kConstant, 1, 0, 4, 7},
    {"SE", CommandField::kSolicited, 1, 4, 1},   {"Rsvd", CommandField::kReserved, 1, 5, 3},
    {"Rsvd2", CommandField::kReserved, 2, 0, 8}, {"QP", CommandField::kDestQp, 3, 0, 24},
    {"PSN", CommandField::kPsn, 6, 0, 16},
};
constexpr FieldDescriptor kToyImm[] = {{"Imm", CommandField::kImm, 0, 0, 32}};
constexpr HeaderTable kToyHeaders[] = {{"toy", 8, kToyBase}, {"imm", 4, kToyImm}};
constexpr OpcodeLayout kToyLayouts[] = {
    {1, RdmaOpcode::kSendOnly, 1, {0}, true},
    {2, RdmaOpcode::kSendOnlyImm, 2, {0, 1}, true},
    {3, RdmaOpcode::kAck, 1, {0}, false},
};
constexpr ProtocolTables kToy{ProtocolIndex::kNative,
                              "toy",
                              {"Op", CommandField::kWireOpcode, 0, 0, 8},
                              kToyHeaders,
                              kToyLayouts};

TEST(HeaderTable, ToyProtocolIsTablesOnly) {
  ASSERT_TRUE(ValidateTables(kToy).ok()) << ValidateTables(kToy).ToString();
  RdmaCommand c;
  c.opcode = RdmaOpcode::kSendOnlyImm;
  c.flags = kFlagSolicited;
  c.dest_qp = 0x123456;
  c.psn = 0xBEEF;
  c.imm = 0xCAFEF00D;
  std::vector<uint8_t> out(EncodedHeaderLength(kToy, c));
  ASSERT_EQ(out.size(), 12u);
  ASSERT_TRUE(EncodeHeaders(kToy, c, out).ok());
  const std::vector<uint8_t> want = {0x02, 0x78, 0x00, 0x12, 0x34, 0x56,
                                     0xBE, 0xEF, 0xCA, 0xFE, 0xF0, 0x0D};
  EXPECT_EQ(out, want);
  Result<RdmaCommand> d = DecodeHeaders(kToy, out);
  ASSERT_TRUE(d.ok()) << d.status().ToString();
  EXPECT_EQ(d->opcode, RdmaOpcode::kSendOnlyImm);
  EXPECT_EQ(d->flags, kFlagSolicited | kFlagFirst | kFlagLast);
  EXPECT_EQ(d->dest_qp, 0x123456u);
  EXPECT_EQ(d->psn, 0xBEEFu);
  EXPECT_EQ(d->imm, 0xCAFEF00Du);
  EXPECT_TRUE(d->payload.empty());
}

TEST(HeaderTable, GenericRejections) {
  std::vector<uint8_t> ok = {0x03, 0x70, 0, 0, 0, 1, 0, 1};
  ASSERT_TRUE(DecodeHeaders(kToy, ok).ok());
  auto token = [](const Result<RdmaCommand>& r) { return testing::Token(r); };
  EXPECT_EQ(token(DecodeHeaders(kToy, std::span(ok).first(0))), "too_short");
  EXPECT_EQ(token(DecodeHeaders(kToy, std::span(ok).first(5))), "too_short");
  std::vector<uint8_t> op = ok;
  op[0] = 9;
  EXPECT_EQ(token(DecodeHeaders(kToy, op)), "bad_opcode");
  std::vector<uint8_t> ver = ok;
  ver[1] = 0x60;
  EXPECT_EQ(token(DecodeHeaders(kToy, ver)), "bad_field");
  std::vector<uint8_t> extra = ok;
  extra.push_back(1);
  EXPECT_EQ(token(DecodeHeaders(kToy, extra)), "unexpected_payload");
  // Reserved bits are ignored on receipt.
  std::vector<uint8_t> rsvd = ok;
  rsvd[1] |= 0x07;
  rsvd[2] = 0xFF;
  EXPECT_EQ(token(DecodeHeaders(kToy, rsvd)), "ok");
}

TEST(HeaderTable, EncoderRefusesWhatDoesNotFit) {
  RdmaCommand c;
  c.opcode = RdmaOpcode::kSendOnly;
  c.dest_qp = 0x1000000;  // 25 bits
  std::vector<uint8_t> out(64);
  Result<size_t> r = EncodeHeaders(kToy, c, out);
  EXPECT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), Code::kInvalidArgument);
  c.dest_qp = 1;
  c.opcode = RdmaOpcode::kWriteOnly;  // no layout
  EXPECT_FALSE(EncodeHeaders(kToy, c, out).ok());
  EXPECT_EQ(EncodedHeaderLength(kToy, c), 0u);
  c.opcode = RdmaOpcode::kSendOnly;
  EXPECT_FALSE(EncodeHeaders(kToy, c, std::span(out).first(4)).ok());
}

TEST(HeaderTable, ValidationCatchesBrokenTables) {
  static constexpr FieldDescriptor kOverlap[] = {
      {"Op", CommandField::kWireOpcode, 0, 0, 8},
      {"A", CommandField::kImm, 0, 4, 8},
      {"B", CommandField::kPsn, 1, 4, 4},
  };
  static constexpr HeaderTable kH1[] = {{"overlap", 2, kOverlap}};
  static constexpr OpcodeLayout kL[] = {{1, RdmaOpcode::kSendOnly, 1, {0}, true}};
  ProtocolTables t{
      ProtocolIndex::kNative, "bad", {"Op", CommandField::kWireOpcode, 0, 0, 8}, kH1, kL};
  EXPECT_FALSE(ValidateTables(t).ok());
  static constexpr FieldDescriptor kGap[] = {{"Op", CommandField::kWireOpcode, 0, 0, 8}};
  static constexpr HeaderTable kH2[] = {{"gap", 2, kGap}};
  t.headers = kH2;
  EXPECT_FALSE(ValidateTables(t).ok());
  static constexpr HeaderTable kH3[] = {{"fine", 1, kGap}};
  t.headers = kH3;
  EXPECT_TRUE(ValidateTables(t).ok());
  static constexpr OpcodeLayout kBadIndex[] = {{1, RdmaOpcode::kSendOnly, 1, {3}, true}};
  t.layouts = kBadIndex;
  EXPECT_FALSE(ValidateTables(t).ok());
}

}  // namespace
}  // namespace opensrd::rdma
