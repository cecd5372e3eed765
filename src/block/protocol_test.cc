#include "block/protocol.h"

#include <gtest/gtest.h>

#include <array>
#include <map>
#include <vector>

namespace opensrd::block::proto {
namespace {

std::vector<uint8_t> IoMessage(const IoHeader& h, size_t data_len) {
  std::vector<uint8_t> m(kIoHeaderLen + data_len, 0xCD);
  EncodeIo(h, std::span<uint8_t, kIoHeaderLen>(m.data(), kIoHeaderLen));
  return m;
}

TEST(BlockProtocol, IoHeaderBytesAreBigEndianAtDocumentedOffsets) {
  IoHeader h{.handle = 0x01020304,
             .request_id = 0x1112131415161718,
             .offset = 0x2122232425262728,
             .length = 4096,
             .op = Op::kWrite,
             .flags = kFua,
             .queue = 0x3132,
             .sequence = 0x4142434445464748};
  std::vector<uint8_t> m = IoMessage(h, 4096);
  const std::array<uint8_t, kIoHeaderLen> want = {
      0x4F, 0x42, 0x01, 0x03, 0x01, 0x02, 0x03, 0x04,  // magic, version, type, handle
      0x11, 0x12, 0x13, 0x14, 0x15, 0x16, 0x17, 0x18,  // request id
      0x21, 0x22, 0x23, 0x24, 0x25, 0x26, 0x27, 0x28,  // offset
      0x00, 0x00, 0x10, 0x00, 0x01, 0x01, 0x31, 0x32,  // length, op, flags, queue
      0x41, 0x42, 0x43, 0x44, 0x45, 0x46, 0x47, 0x48,  // sequence
      0,    0,    0,    0,    0,    0,    0,    0};    // reserved
  EXPECT_TRUE(std::equal(want.begin(), want.end(), m.begin()));
  std::span<const uint8_t> data;
  Result<IoHeader> p = ParseIo(m, &data);
  ASSERT_TRUE(p.ok()) << p.status().ToString();
  EXPECT_EQ(p->handle, h.handle);
  EXPECT_EQ(p->request_id, h.request_id);
  EXPECT_EQ(p->offset, h.offset);
  EXPECT_EQ(p->length, h.length);
  EXPECT_EQ(p->op, Op::kWrite);
  EXPECT_EQ(p->flags, kFua);
  EXPECT_EQ(p->queue, h.queue);
  EXPECT_EQ(p->sequence, h.sequence);
  EXPECT_EQ(data.size(), 4096u);
  EXPECT_EQ(data.data(), m.data() + kIoHeaderLen);
}

TEST(BlockProtocol, IoRejections) {
  IoHeader read{.handle = 1, .request_id = 2, .offset = 0, .length = 512, .op = Op::kRead};
  std::vector<uint8_t> ok = IoMessage(read, 0);
  ASSERT_TRUE(ParseIo(ok, nullptr).ok());

  auto expect_bad = [](std::vector<uint8_t> m, const char* what) {
    Result<IoHeader> p = ParseIo(m, nullptr);
    ASSERT_FALSE(p.ok()) << what;
    EXPECT_EQ(p.status().code(), Code::kMalformed) << what;
  };
  expect_bad(std::vector<uint8_t>(ok.begin(), ok.begin() + 3), "shorter than the prefix");
  expect_bad(std::vector<uint8_t>(ok.begin(), ok.begin() + 40), "shorter than the header");
  std::vector<uint8_t> m = ok;
  m[0] = 0;
  expect_bad(m, "bad magic");
  m = ok;
  m[2] = 2;
  expect_bad(m, "bad version");
  m = ok;
  m[3] = 0;
  expect_bad(m, "type 0");
  m[3] = 99;
  expect_bad(m, "unknown type");
  m[3] = static_cast<uint8_t>(Type::kAttach);
  expect_bad(m, "another type");
  m = ok;
  m[28] = 9;
  expect_bad(m, "unknown op");
  m = ok;
  m[29] = 0x80;
  expect_bad(m, "unknown flag");
  expect_bad(IoMessage({.offset = 512, .op = Op::kFlush}, 0), "flush with an offset");
  expect_bad(IoMessage({.length = 512, .op = Op::kWrite}, 511), "write data short");
  expect_bad(IoMessage({.length = 512, .op = Op::kWrite}, 513), "write data long");
  expect_bad(IoMessage({.length = 512, .op = Op::kRead}, 1), "read with data");
}

TEST(BlockProtocol, IoReplyRoundTripAndRejections) {
  std::vector<uint8_t> m(kIoReplyLen + 8);
  EncodeIoReply({.handle = 7, .request_id = 9, .status = WireStatus::kOk, .length = 8},
                std::span<uint8_t, kIoReplyLen>(m.data(), kIoReplyLen));
  std::span<const uint8_t> data;
  Result<IoReply> r = ParseIoReply(m, &data);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->handle, 7u);
  EXPECT_EQ(r->request_id, 9u);
  EXPECT_EQ(r->length, 8u);
  EXPECT_EQ(data.size(), 8u);

  std::vector<uint8_t> short_data(m.begin(), m.end() - 1);
  EXPECT_EQ(ParseIoReply(short_data, nullptr).status().code(), Code::kMalformed);
  std::vector<uint8_t> e(kIoReplyLen);
  EncodeIoReply({.status = WireStatus::kIoError, .length = 0},
                std::span<uint8_t, kIoReplyLen>(e.data(), kIoReplyLen));
  ASSERT_TRUE(ParseIoReply(e, nullptr).ok());
  e[23] = 4;  // an error reply claiming data
  EXPECT_FALSE(ParseIoReply(e, nullptr).ok());
  e[23] = 0;
  e[16] = 200;  // unknown status
  EXPECT_FALSE(ParseIoReply(e, nullptr).ok());
}

TEST(BlockProtocol, AttachRoundTripAndRejections) {
  std::vector<uint8_t> buf(512);
  Attach a{.request_id = 5, .session = 0xABCDEF, .volume = "vol0", .token = "s3cret"};
  Result<size_t> n = EncodeAttach(a, buf);
  ASSERT_TRUE(n.ok());
  EXPECT_EQ(*n, kAttachFixedLen + 4 + 6);
  std::span<const uint8_t> msg(buf.data(), *n);
  Result<Attach> p = ParseAttach(msg);
  ASSERT_TRUE(p.ok()) << p.status().ToString();
  EXPECT_EQ(p->volume, "vol0");
  EXPECT_EQ(p->token, "s3cret");
  EXPECT_EQ(p->session, 0xABCDEFu);
  EXPECT_EQ(p->request_id, 5u);

  EXPECT_FALSE(ParseAttach(msg.first(*n - 1)).ok()) << "truncated token";
  std::vector<uint8_t> longer(msg.begin(), msg.end());
  longer.push_back(0);
  EXPECT_FALSE(ParseAttach(longer).ok()) << "trailing byte";
  std::vector<uint8_t> noname(msg.begin(), msg.end());
  noname[4] = noname[5] = 0;
  EXPECT_FALSE(ParseAttach(noname).ok()) << "empty name";
  std::vector<uint8_t> big(msg.begin(), msg.end());
  big[4] = 1;  // name length 260
  EXPECT_FALSE(ParseAttach(big).ok()) << "name too long";
  std::vector<uint8_t> tok(msg.begin(), msg.end());
  tok[6] = 1;
  EXPECT_FALSE(ParseAttach(tok).ok()) << "token too long";

  EXPECT_FALSE(EncodeAttach({.volume = ""}, buf).ok());
  EXPECT_FALSE(EncodeAttach({.volume = std::string(256, 'v')}, buf).ok());
  EXPECT_FALSE(EncodeAttach({.volume = "v", .token = std::string(256, 't')}, buf).ok());
  EXPECT_FALSE(EncodeAttach(a, std::span<uint8_t>(buf.data(), 20)).ok());
}

TEST(BlockProtocol, AttachReplyRoundTripAndRejections) {
  std::vector<uint8_t> buf(2048);
  AttachReply r{.request_id = 3, .handle = 42, .status = WireStatus::kOk};
  r.info.size_bytes = 1 << 30;
  r.info.block_size = 4096;
  r.info.read_only = true;
  r.info.can_fast_zero = true;
  r.info.can_discard = false;
  Result<size_t> n = EncodeAttachReply(r, buf);
  ASSERT_TRUE(n.ok());
  Result<AttachReply> p = ParseAttachReply({buf.data(), *n});
  ASSERT_TRUE(p.ok()) << p.status().ToString();
  EXPECT_EQ(p->handle, 42u);
  EXPECT_EQ(p->info.size_bytes, 1u << 30);
  EXPECT_EQ(p->info.block_size, 4096u);
  EXPECT_EQ(p->info.atomic_write_unit, 16384u);
  EXPECT_TRUE(p->info.read_only);
  EXPECT_TRUE(p->info.can_fast_zero);
  EXPECT_FALSE(p->info.can_discard);
  EXPECT_TRUE(p->info.can_flush);

  AttachReply denied{.request_id = 3, .status = WireStatus::kDenied, .message = "wrong token"};
  n = EncodeAttachReply(denied, buf);
  ASSERT_TRUE(n.ok());
  p = ParseAttachReply({buf.data(), *n});
  ASSERT_TRUE(p.ok());
  EXPECT_EQ(p->status, WireStatus::kDenied);
  EXPECT_EQ(p->message, "wrong token");
  EXPECT_FALSE(ParseAttachReply({buf.data(), *n - 1}).ok()) << "message cut short";

  for (uint32_t bs : {0u, 256u, 1000u, 1u << 17}) {
    AttachReply bad = r;
    bad.info.block_size = bs;
    n = EncodeAttachReply(bad, buf);
    EXPECT_FALSE(ParseAttachReply({buf.data(), *n}).ok()) << "block size " << bs;
  }
  AttachReply odd = r;
  odd.info.size_bytes = 4096 * 3 + 512;
  n = EncodeAttachReply(odd, buf);
  EXPECT_FALSE(ParseAttachReply({buf.data(), *n}).ok()) << "size not whole blocks";
  AttachReply small = r;
  small.info.max_transfer = 512;
  n = EncodeAttachReply(small, buf);
  EXPECT_FALSE(ParseAttachReply({buf.data(), *n}).ok()) << "max transfer below block";
}

TEST(BlockProtocol, ResizeAndInfo) {
  std::vector<uint8_t> buf(1024);
  Result<size_t> n =
      EncodeResize({.request_id = 1, .new_size = 1 << 24, .volume = "v", .token = "t"}, buf);
  ASSERT_TRUE(n.ok());
  Result<Resize> rz = ParseResize({buf.data(), *n});
  ASSERT_TRUE(rz.ok());
  EXPECT_EQ(rz->new_size, 1u << 24);
  EXPECT_EQ(rz->volume, "v");
  EXPECT_EQ(rz->token, "t");
  EXPECT_FALSE(ParseResize({buf.data(), *n + 1}).ok());

  n = EncodeResizeReply({.request_id = 1, .status = WireStatus::kOk, .size = 1 << 24}, buf);
  Result<ResizeReply> rr = ParseResizeReply({buf.data(), *n});
  ASSERT_TRUE(rr.ok());
  EXPECT_EQ(rr->size, 1u << 24);

  std::array<uint8_t, kInfoLen> info{};
  EncodeInfo({.handle = 3, .size = 8192}, info);
  Result<Info> i = ParseInfo(info);
  ASSERT_TRUE(i.ok());
  EXPECT_EQ(i->handle, 3u);
  EXPECT_EQ(i->size, 8192u);
  EXPECT_FALSE(ParseInfo(std::span<const uint8_t>(info).first(kInfoLen - 1)).ok());
}

TEST(BlockProtocol, StatusMapping) {
  EXPECT_TRUE(ToStatus(WireStatus::kOk, "").ok());
  EXPECT_EQ(ToStatus(WireStatus::kDenied, "x").code(), Code::kPermissionDenied);
  EXPECT_EQ(ToStatus(WireStatus::kInvalid, "beyond").message(), "invalid request: beyond");
  EXPECT_EQ(FromCode(Code::kInvalidArgument), WireStatus::kInvalid);
  EXPECT_EQ(FromCode(Code::kIoError), WireStatus::kIoError);
}

}  // namespace
}  // namespace opensrd::block::proto

#include <filesystem>
#include <fstream>
#include <iterator>

namespace opensrd::block::proto {
namespace {

// fuzz/block_corpus.py encodes one message of every kind from docs/WIRE.md's layout, by hand:
// every one of those must parse here, so the page, the script and the code agree.
TEST(BlockProtocol, SeedsEncodedFromTheDocumentedLayoutParse) {
  std::map<Type, int> parsed;
  int files = 0;
  for (const auto& e : std::filesystem::directory_iterator(OPENSRD_BLOCK_CORPUS)) {
    std::ifstream in(e.path(), std::ios::binary);
    std::vector<uint8_t> m((std::istreambuf_iterator<char>(in)), {});
    ++files;
    Result<Type> t = PeekType(m);
    if (!t.ok()) continue;
    bool ok = false;
    switch (*t) {
      case Type::kIo:
        ok = ParseIo(m, nullptr).ok();
        break;
      case Type::kIoReply:
        ok = ParseIoReply(m, nullptr).ok();
        break;
      case Type::kAttach:
        ok = ParseAttach(m).ok();
        break;
      case Type::kAttachReply:
        ok = ParseAttachReply(m).ok();
        break;
      case Type::kResize:
        ok = ParseResize(m).ok();
        break;
      case Type::kResizeReply:
        ok = ParseResizeReply(m).ok();
        break;
      case Type::kInfo:
        ok = ParseInfo(m).ok();
        break;
    }
    parsed[*t] += ok;
  }
  EXPECT_GE(files, 20);
  EXPECT_EQ(parsed[Type::kIo], 7) << "every valid IO seed";
  EXPECT_EQ(parsed[Type::kIoReply], 2);
  EXPECT_EQ(parsed[Type::kAttach], 2);
  EXPECT_EQ(parsed[Type::kAttachReply], 2);
  EXPECT_EQ(parsed[Type::kResize], 1);
  EXPECT_EQ(parsed[Type::kResizeReply], 2);
  EXPECT_EQ(parsed[Type::kInfo], 1);
}

}  // namespace
}  // namespace opensrd::block::proto
