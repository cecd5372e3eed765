// MPA framing: start frames and FPDUs against byte vectors from RFC 5044 / RFC 6581 (the FPDU's
// CRC bytes were confirmed by tshark's MPA dissector), the stream receiver under arbitrary
// chunking, and one test per rejection path.
#include "rdma/mpa.h"

#include <gtest/gtest.h>

#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "rdma/iwarp.h"
#include "rdma/test_util.h"

namespace opensrd::rdma {
namespace {

using mpa::MpaReceiver;
using testing::Token;

std::vector<uint8_t> Bytes(const char* s) {
  return std::vector<uint8_t>(s, s + std::strlen(s));
}

TEST(Mpa, RequestFrameMatchesHandVector) {
  mpa::StartFrame f;
  f.flags = mpa::kFlagCrc;
  f.revision = 2;
  f.enhanced = mpa::Enhanced{true, false, false, true, 16, 16};
  f.private_data = {0xAB};
  std::vector<uint8_t> want = Bytes("MPA ID Req Frame");
  // Flags C + enhanced -> 0x50; revision 2; PD_Length 5; IRD word: A (P2P) | 16 -> 0x8010;
  // ORD word: D (read RTR) | 16 -> 0x4010; then the ULP's private data.
  want.insert(want.end(), {0x50, 0x02, 0x00, 0x05, 0x80, 0x10, 0x40, 0x10, 0xAB});
  Result<std::vector<uint8_t>> e = mpa::EncodeStartFrame(f);
  ASSERT_TRUE(e.ok());
  EXPECT_EQ(*e, want);
  EXPECT_EQ(mpa::StartFrameLength(want), want.size());
  Result<mpa::StartFrame> d = mpa::DecodeStartFrame(want, false);
  ASSERT_TRUE(d.ok()) << d.status().ToString();
  EXPECT_FALSE(d->reply);
  EXPECT_EQ(d->flags, mpa::kFlagCrc);
  EXPECT_EQ(d->revision, 2);
  ASSERT_TRUE(d->enhanced.has_value());
  EXPECT_TRUE(d->enhanced->peer_to_peer);
  EXPECT_FALSE(d->enhanced->send_rtr);
  EXPECT_FALSE(d->enhanced->write_rtr);
  EXPECT_TRUE(d->enhanced->read_rtr);
  EXPECT_EQ(d->enhanced->ird, 16);
  EXPECT_EQ(d->enhanced->ord, 16);
  EXPECT_EQ(d->private_data, std::vector<uint8_t>{0xAB});
}

TEST(Mpa, RevisionOneReplyWithReject) {
  mpa::StartFrame f;
  f.reply = true;
  f.flags = mpa::kFlagReject;
  f.revision = 1;
  std::vector<uint8_t> e = *mpa::EncodeStartFrame(f);
  std::vector<uint8_t> want = Bytes("MPA ID Rep Frame");
  want.insert(want.end(), {0x20, 0x01, 0x00, 0x00});
  EXPECT_EQ(e, want);
  Result<mpa::StartFrame> d = mpa::DecodeStartFrame(e, true);
  ASSERT_TRUE(d.ok());
  EXPECT_TRUE(d->flags & mpa::kFlagReject);
  EXPECT_FALSE(d->enhanced.has_value());
}

// A tagged RDMA WRITE of "hello world!!" to STag 0x1234, TO 0x1000: ULPDU length 27, pad 3,
// CRC32C 0xC01B5466 sent least significant byte first. tshark 4.0 reports "Good CRC32" for it.
const std::vector<uint8_t> kWriteFpdu = {0x00, 0x1B, 0xC1, 0x40, 0x00, 0x00, 0x12, 0x34, 0x00,
                                         0x00, 0x00, 0x00, 0x00, 0x00, 0x10, 0x00, 'h',  'e',
                                         'l',  'l',  'o',  ' ',  'w',  'o',  'r',  'l',  'd',
                                         '!',  '!',  0x00, 0x00, 0x00, 0x66, 0x54, 0x1B, 0xC0};

TEST(Mpa, FpduMatchesVectorCheckedByTshark) {
  const uint8_t data[] = "hello world!!";
  RdmaCommand c;
  c.opcode = RdmaOpcode::kWriteOnly;
  c.rkey = 0x1234;
  c.va = 0x1000;
  c.payload = std::span<const uint8_t>(data, 13);
  std::vector<uint8_t> ulpdu = *iwarp::EncodeUlpdu(c);
  Result<std::vector<uint8_t>> f = mpa::EncodeFpdu(ulpdu);
  ASSERT_TRUE(f.ok());
  EXPECT_EQ(*f, kWriteFpdu);
  EXPECT_EQ(mpa::FpduLength(27), kWriteFpdu.size());
  // Without CRCs the field is present and zero.
  std::vector<uint8_t> nocrc = *mpa::EncodeFpdu(ulpdu, false);
  EXPECT_EQ(0, std::memcmp(nocrc.data() + nocrc.size() - 4, "\0\0\0\0", 4));
}

TEST(Mpa, ReceiverHandlesArbitraryChunks) {
  mpa::StartFrame req;
  req.enhanced = mpa::Enhanced{};
  std::vector<uint8_t> stream = *mpa::EncodeStartFrame(req);
  std::vector<std::vector<uint8_t>> ulpdus;
  for (size_t len : {14u, 15u, 16u, 17u, 100u, 1500u, 65535u}) {
    std::vector<uint8_t> u(len);
    for (size_t i = 0; i < len; ++i) u[i] = static_cast<uint8_t>(i * 13 + len);
    std::vector<uint8_t> f = *mpa::EncodeFpdu(u);
    stream.insert(stream.end(), f.begin(), f.end());
    ulpdus.push_back(u);
  }
  std::mt19937 rng(7);
  for (int round = 0; round < 20; ++round) {
    MpaReceiver rx({MpaReceiver::Expect::kRequest, true, 65535});
    size_t off = 0, got = 0;
    bool started = false;
    while (off < stream.size() || rx.buffered() > 0) {
      size_t n = round == 0 ? 1 : std::uniform_int_distribution<size_t>(1, 3000)(rng);
      n = std::min(n, stream.size() - off);
      rx.Feed(std::span(stream).subspan(off, n));
      off += n;
      for (;;) {
        Result<MpaReceiver::Event> ev = rx.Next();
        ASSERT_TRUE(ev.ok()) << ev.status().ToString();
        if (ev->kind == MpaReceiver::Event::Kind::kNone) break;
        if (ev->kind == MpaReceiver::Event::Kind::kStartFrame) {
          ASSERT_FALSE(started);
          started = true;
          EXPECT_TRUE(ev->start.enhanced.has_value());
          rx.StartFpdus(true);
          continue;
        }
        ASSERT_LT(got, ulpdus.size());
        ASSERT_EQ(ev->ulpdu.size(), ulpdus[got].size());
        EXPECT_EQ(0, std::memcmp(ev->ulpdu.data(), ulpdus[got].data(), ev->ulpdu.size()));
        ++got;
      }
      if (n == 0) break;
    }
    EXPECT_TRUE(started);
    EXPECT_EQ(got, ulpdus.size());
  }
}

// --- one test per rejection path -------------------------------------------------------------

Result<MpaReceiver::Event> FeedAll(MpaReceiver& rx, const std::vector<uint8_t>& b) {
  rx.Feed(b);
  return rx.Next();
}

TEST(MpaReject, BadKey) {
  std::vector<uint8_t> rep = Bytes("MPA ID Rep Frame");
  rep.insert(rep.end(), {0x40, 0x01, 0, 0});
  EXPECT_EQ(Token(mpa::DecodeStartFrame(rep, false)), "bad_key");
  MpaReceiver rx({MpaReceiver::Expect::kRequest});
  EXPECT_EQ(Token(FeedAll(rx, rep)), "bad_key");
  // Refused from the first wrong byte, without waiting for a whole header.
  MpaReceiver early({MpaReceiver::Expect::kReply});
  EXPECT_EQ(Token(FeedAll(early, Bytes("GET / HTTP/1.1"))), "bad_key");
}

TEST(MpaReject, BadRevision) {
  for (uint8_t rev : {0, 3, 255}) {
    std::vector<uint8_t> req = Bytes("MPA ID Req Frame");
    req.insert(req.end(), {0x40, rev, 0, 0});
    EXPECT_EQ(Token(mpa::DecodeStartFrame(req, false)), "bad_revision");
    MpaReceiver rx({MpaReceiver::Expect::kRequest});
    EXPECT_EQ(Token(FeedAll(rx, req)), "bad_revision");
  }
}

TEST(MpaReject, BadPrivateDataLength) {
  std::vector<uint8_t> req = Bytes("MPA ID Req Frame");
  req.insert(req.end(), {0x40, 0x02, 0x02, 0x01});  // 513 bytes
  req.resize(req.size() + 513);
  EXPECT_EQ(Token(mpa::DecodeStartFrame(req, false)), "bad_length");
  MpaReceiver rx({MpaReceiver::Expect::kRequest});
  EXPECT_EQ(Token(FeedAll(rx, std::vector<uint8_t>(req.begin(), req.begin() + 20))), "bad_length");
  std::vector<uint8_t> enh = Bytes("MPA ID Req Frame");
  enh.insert(enh.end(), {0x50, 0x02, 0x00, 0x02, 0x80, 0x01});  // enhanced word cut short
  EXPECT_EQ(Token(mpa::DecodeStartFrame(enh, false)), "bad_length");
  EXPECT_EQ(Token(mpa::DecodeStartFrame(std::span(enh).first(19), false)), "too_short");
  mpa::StartFrame big;
  big.private_data.resize(510);
  big.enhanced = mpa::Enhanced{};
  EXPECT_FALSE(mpa::EncodeStartFrame(big).ok());
}

TEST(MpaReject, BadCrc) {
  for (size_t i = 0; i < kWriteFpdu.size(); ++i) {
    if (i < 2) continue;  // the length field: a different error
    std::vector<uint8_t> f = kWriteFpdu;
    f[i] ^= 0x10;
    MpaReceiver rx({});
    EXPECT_EQ(Token(FeedAll(rx, f)), "bad_crc") << "byte " << i;
  }
  // Without CRCs the same corruption passes the framing.
  std::vector<uint8_t> f = kWriteFpdu;
  f[40 - 10] ^= 0x10;
  MpaReceiver rx({MpaReceiver::Expect::kFpdus, false});
  EXPECT_EQ(Token(FeedAll(rx, f)), "ok");
}

TEST(MpaReject, BadUlpduLength) {
  std::vector<uint8_t> f = kWriteFpdu;
  f[0] = 0;
  f[1] = 13;  // shorter than any DDP header
  MpaReceiver rx({});
  EXPECT_EQ(Token(FeedAll(rx, f)), "bad_length");
  MpaReceiver small({MpaReceiver::Expect::kFpdus, true, 16});
  EXPECT_EQ(Token(FeedAll(small, kWriteFpdu)), "bad_length");  // 27 > 16
  EXPECT_FALSE(mpa::EncodeFpdu({}).ok());
}

TEST(MpaReject, ErrorsAreSticky) {
  std::vector<uint8_t> bad = kWriteFpdu;
  bad[20] ^= 1;
  MpaReceiver rx({});
  EXPECT_EQ(Token(FeedAll(rx, bad)), "bad_crc");
  EXPECT_EQ(Token(FeedAll(rx, kWriteFpdu)), "bad_crc");
}

}  // namespace
}  // namespace opensrd::rdma
