// RoCEv2 codec: a byte vector worked out by hand from the IBTA layouts (BTH, RETH, pad, ICRC
// computed separately with Python's zlib), round trips of every RC opcode through whole IPv4
// packets, and one test per rejection path.
#include "rdma/roce.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cstring>
#include <vector>

#include "rdma/samples.h"
#include "rdma/test_util.h"

namespace opensrd::rdma {
namespace {

using testing::Token;

const uint8_t kHello[] = {'h', 'e', 'l', 'l', 'o'};

RdmaCommand HandWrite() {
  RdmaCommand c;
  c.opcode = RdmaOpcode::kWriteOnly;
  c.flags = kFlagAckRequest;
  c.dest_qp = 0x11;
  c.psn = 0x102;
  c.va = 0x12345678;
  c.rkey = 0xAABBCCDD;
  c.dma_length = 5;
  c.payload = kHello;
  return c;
}

roce::Ipv4Udp HandIp() {
  roce::Ipv4Udp ip;
  ip.src_ip = 0x0A000001;
  ip.dst_ip = 0x0A000002;
  ip.src_port = 0xC000;
  ip.ip_id = 0x1234;
  return ip;
}

// BTH: opcode 0x0A (RDMA WRITE Only); SE 0, M 0, PadCnt 3, TVer 0 -> 0x30; P_Key 0xFFFF;
// reserved 0; DestQP 0x000011; A 1 -> 0x80; PSN 0x000102. RETH: VA, R_Key, DMA length 5.
// Then "hello" and 3 pad bytes.
const std::vector<uint8_t> kHandTransport = {
    0x0A, 0x30, 0xFF, 0xFF, 0x00, 0x00, 0x00, 0x11, 0x80, 0x00, 0x01, 0x02,  // BTH
    0x00, 0x00, 0x00, 0x00, 0x12, 0x34, 0x56, 0x78,                          // RETH VA
    0xAA, 0xBB, 0xCC, 0xDD, 0x00, 0x00, 0x00, 0x05,                          // R_Key, DMALen
    'h',  'e',  'l',  'l',  'o',  0x00, 0x00, 0x00};
// zlib.crc32 over 8 x 0xFF, the masked IPv4/UDP headers and the masked transport bytes
// above, for the addresses in HandIp(); sent least significant byte first.
const uint8_t kHandIcrc[] = {0xB1, 0x3C, 0x0C, 0x3E};

TEST(Roce, WriteOnlyMatchesHandVector) {
  Result<std::vector<uint8_t>> t = roce::EncodeTransport(HandWrite());
  ASSERT_TRUE(t.ok()) << t.status().ToString();
  EXPECT_EQ(*t, kHandTransport);

  Result<std::vector<uint8_t>> p = roce::BuildPacket(HandIp(), HandWrite());
  ASSERT_TRUE(p.ok());
  const std::vector<uint8_t>& pkt = *p;
  ASSERT_EQ(pkt.size(), 20u + 8 + kHandTransport.size() + 4);
  // IPv4: 45 00, total 68, ID 0x1234, DF, TTL 64, UDP; UDP: 0xC000 -> 4791, length 48, csum 0.
  const uint8_t ip_start[] = {0x45, 0x00, 0x00, 68, 0x12, 0x34, 0x40, 0x00, 64, 17};
  EXPECT_EQ(0, std::memcmp(pkt.data(), ip_start, sizeof(ip_start)));
  const uint8_t udp[] = {0xC0, 0x00, 0x12, 0xB7, 0x00, 48, 0x00, 0x00};
  EXPECT_EQ(0, std::memcmp(pkt.data() + 20, udp, sizeof(udp)));
  EXPECT_EQ(0, std::memcmp(pkt.data() + 28, kHandTransport.data(), kHandTransport.size()));
  EXPECT_EQ(0, std::memcmp(pkt.data() + pkt.size() - 4, kHandIcrc, 4));

  Result<RdmaCommand> d = roce::ParsePacket(pkt);
  ASSERT_TRUE(d.ok()) << d.status().ToString();
  EXPECT_EQ(d->opcode, RdmaOpcode::kWriteOnly);
  EXPECT_EQ(d->dest_qp, 0x11u);
  EXPECT_EQ(d->psn, 0x102u);
  EXPECT_EQ(d->va, 0x12345678u);
  EXPECT_EQ(d->rkey, 0xAABBCCDDu);
  EXPECT_EQ(d->dma_length, 5u);
  EXPECT_EQ(d->pkey, 0xFFFF);
  EXPECT_EQ(d->pad_count, 3);
  EXPECT_EQ(d->flags, kFlagAckRequest | kFlagFirst | kFlagLast);
  ASSERT_EQ(d->payload.size(), 5u);
  EXPECT_EQ(0, std::memcmp(d->payload.data(), "hello", 5));
}

TEST(Roce, IcrcIgnoresMaskedFieldsOnly) {
  std::vector<uint8_t> pkt = *roce::BuildPacket(HandIp(), HandWrite());
  // TOS, TTL (with a fixed-up header checksum), UDP checksum and BTH byte 4 are masked.
  std::vector<uint8_t> p = pkt;
  p[1] = 0xB8;
  p[8] = 3;
  roce::Ipv4Udp ip = HandIp();
  ip.tos = 0xB8;
  ip.ttl = 3;
  ip.udp_checksum = 0x1234;
  std::vector<uint8_t> hdr(28);
  roce::WriteIpv4UdpHeaders(ip, pkt.size() - 28, hdr);
  std::memcpy(p.data(), hdr.data(), 28);
  p[28 + 4] = 0x77;
  EXPECT_EQ(Token(roce::ParsePacket(p)), "ok");
  // The IP identification is covered.
  ip = HandIp();
  ip.ip_id = 0x1235;
  roce::WriteIpv4UdpHeaders(ip, pkt.size() - 28, hdr);
  p = pkt;
  std::memcpy(p.data(), hdr.data(), 28);
  EXPECT_EQ(Token(roce::ParsePacket(p)), "bad_icrc");
}

TEST(Roce, EveryOpcodeRoundTripsThroughIpv4) {
  std::vector<RdmaCommand> samples = SampleCommands(ProtocolIndex::kRoce);
  EXPECT_EQ(samples.size(), 25u);
  for (const RdmaCommand& c : samples) {
    SCOPED_TRACE(OpcodeName(c.opcode));
    Result<std::vector<uint8_t>> p = roce::BuildPacket(HandIp(), c);
    ASSERT_TRUE(p.ok()) << p.status().ToString();
    Result<RdmaCommand> d = roce::ParsePacket(*p);
    ASSERT_TRUE(d.ok()) << d.status().ToString();
    EXPECT_EQ(d->opcode, c.opcode);
    EXPECT_EQ(d->dest_qp, c.dest_qp);
    EXPECT_EQ(d->psn, c.psn);
    EXPECT_EQ(d->flags & (kFlagAckRequest | kFlagSolicited | kFlagInvalidate),
              c.flags & (kFlagAckRequest | kFlagSolicited | kFlagInvalidate));
    EXPECT_EQ(d->flags & kFlagFirst ? 1 : 0, IsFirst(c.opcode) ? 1 : 0);
    EXPECT_EQ(d->flags & kFlagLast ? 1 : 0, IsLast(c.opcode) ? 1 : 0);
    ASSERT_EQ(d->payload.size(), c.payload.size());
    if (!c.payload.empty()) {
      EXPECT_EQ(0, std::memcmp(d->payload.data(), c.payload.data(), c.payload.size()));
    }
    // The decoded command encodes to the identical packet.
    Result<std::vector<uint8_t>> again = roce::BuildPacket(HandIp(), *d);
    ASSERT_TRUE(again.ok());
    EXPECT_EQ(*again, *p);
    // The socket-side encoder makes the same UDP payload.
    Result<std::vector<uint8_t>> u = roce::EncodeUdpPayload(HandIp(), c);
    ASSERT_TRUE(u.ok());
    EXPECT_TRUE(std::equal(u->begin(), u->end(), p->begin() + 28, p->end()));
    // And the socket-side parser agrees, with and without the ICRC check.
    roce::Ipv4Udp ip = HandIp();
    std::span<const uint8_t> udp_payload = std::span(*p).subspan(28);
    EXPECT_EQ(Token(roce::ParseUdpPayload(udp_payload, &ip)), "ok");
    EXPECT_EQ(Token(roce::ParseUdpPayload(udp_payload, nullptr)), "ok");
    ip.ip_id ^= 1;
    EXPECT_EQ(Token(roce::ParseUdpPayload(udp_payload, &ip)), "bad_icrc");
  }
}

TEST(Roce, RethAndAtomicFieldsSurvive) {
  for (const RdmaCommand& c : SampleCommands(ProtocolIndex::kRoce)) {
    Result<RdmaCommand> d = roce::ParsePacket(*roce::BuildPacket(HandIp(), c));
    ASSERT_TRUE(d.ok());
    switch (c.opcode) {
      case RdmaOpcode::kWriteFirst:
      case RdmaOpcode::kWriteOnly:
      case RdmaOpcode::kWriteOnlyImm:
      case RdmaOpcode::kReadRequest:
        EXPECT_EQ(d->va, c.va);
        EXPECT_EQ(d->rkey, c.rkey);
        EXPECT_EQ(d->dma_length, c.dma_length);
        break;
      case RdmaOpcode::kCompareSwap:
      case RdmaOpcode::kFetchAdd:
        EXPECT_EQ(d->va, c.va);
        EXPECT_EQ(d->rkey, c.rkey);
        EXPECT_EQ(d->swap_add, c.swap_add);
        EXPECT_EQ(d->compare, c.compare);
        break;
      case RdmaOpcode::kAtomicAck:
        EXPECT_EQ(d->atomic_orig, c.atomic_orig);
        EXPECT_EQ(d->msn, c.msn);
        break;
      case RdmaOpcode::kAck:
      case RdmaOpcode::kRnrNak:
      case RdmaOpcode::kNak:
        EXPECT_EQ(d->syndrome, c.syndrome);
        EXPECT_EQ(d->msn, c.msn);
        break;
      default:
        break;
    }
    if (HasImmediate(c.opcode)) {
      EXPECT_EQ(d->imm, c.imm);
    }
    if (IsInvalidate(c.opcode)) {
      EXPECT_EQ(d->invalidate_rkey, c.invalidate_rkey);
    }
  }
}

TEST(Roce, AckSyndromeNamesTheKind) {
  RdmaCommand c;
  c.opcode = RdmaOpcode::kNak;
  c.syndrome = 0x60 | static_cast<uint8_t>(NakCode::kPsnSequenceError);
  Result<RdmaCommand> d = roce::ParsePacket(*roce::BuildPacket(HandIp(), c));
  ASSERT_TRUE(d.ok());
  EXPECT_EQ(d->opcode, RdmaOpcode::kNak);
  // BTH opcode 0x11 with AETH syndrome 0x40 (reserved class 010) is refused.
  std::vector<uint8_t> t = {0x11, 0x00, 0xFF, 0xFF, 0, 0, 0, 1, 0, 0, 0, 1, 0x40, 0, 0, 1};
  EXPECT_EQ(Token(roce::DecodeTransport(t)), "bad_field");
  t[12] = 0x3F;  // RNR NAK, timer 31
  Result<RdmaCommand> r = roce::DecodeTransport(t);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->opcode, RdmaOpcode::kRnrNak);
}

TEST(Roce, EncoderRefusesIwarpOnlyOpcodeAndWideFields) {
  RdmaCommand c;
  c.opcode = RdmaOpcode::kTerminate;
  EXPECT_FALSE(roce::EncodeTransport(c).ok());
  c.opcode = RdmaOpcode::kSendOnly;
  c.dest_qp = 1u << 24;
  EXPECT_FALSE(roce::EncodeTransport(c).ok());
}

roce::Ipv6Udp HandIp6() {
  roce::Ipv6Udp ip;
  ip.src_ip = {0xFE, 0x80, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1};
  ip.dst_ip = {0xFE, 0x80, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2};
  ip.src_port = 0xC000;
  ip.flow_label = 0x12345;
  return ip;
}

TEST(Roce, Ipv6WriteOnlyMatchesHandVector) {
  Result<std::vector<uint8_t>> p = roce::BuildPacket6(HandIp6(), HandWrite());
  ASSERT_TRUE(p.ok()) << p.status().ToString();
  const std::vector<uint8_t>& pkt = *p;
  ASSERT_EQ(pkt.size(), 40u + 8 + kHandTransport.size() + 4);
  // Version 6, traffic class 0, flow label 0x12345; payload length 48; UDP; hop limit 64.
  const uint8_t ip6[] = {0x60, 0x01, 0x23, 0x45, 0x00, 48, 17, 64};
  EXPECT_EQ(0, std::memcmp(pkt.data(), ip6, sizeof(ip6)));
  EXPECT_EQ(0, std::memcmp(pkt.data() + 48, kHandTransport.data(), kHandTransport.size()));
  // zlib.crc32 with the IPv6 masking (traffic class, flow label, hop limit, UDP checksum).
  const uint8_t icrc[] = {0x91, 0x2B, 0x66, 0x36};
  EXPECT_EQ(0, std::memcmp(pkt.data() + pkt.size() - 4, icrc, 4));
  EXPECT_NE(pkt[46] | pkt[47], 0);  // a UDP checksum is present
  Result<RdmaCommand> d = roce::ParsePacket(pkt);
  ASSERT_TRUE(d.ok()) << d.status().ToString();
  EXPECT_EQ(d->opcode, RdmaOpcode::kWriteOnly);
  EXPECT_EQ(d->rkey, 0xAABBCCDDu);
  EXPECT_EQ(d->payload.size(), 5u);
  std::span<const uint8_t> udp_payload = std::span(pkt).subspan(48);
  EXPECT_EQ(Token(roce::ParseUdpPayload6(udp_payload, HandIp6())), "ok");
  // Masked fields may change in flight; the addresses may not.
  std::vector<uint8_t> q = pkt;
  q[1] ^= 0xF0;  // traffic class
  q[3] ^= 0x0F;  // flow label
  q[7] = 1;      // hop limit
  EXPECT_EQ(Token(roce::ParsePacket(q)), "ok");
  q = pkt;
  q[23] ^= 1;  // source address
  EXPECT_EQ(Token(roce::ParsePacket(q)), "bad_icrc");
  roce::Ipv6Udp other = HandIp6();
  other.src_port = 0xC001;
  EXPECT_EQ(Token(roce::ParseUdpPayload6(udp_payload, other)), "bad_icrc");
}

TEST(Roce, Ipv6EveryOpcodeRoundTrips) {
  for (const RdmaCommand& c : SampleCommands(ProtocolIndex::kRoce)) {
    SCOPED_TRACE(OpcodeName(c.opcode));
    Result<std::vector<uint8_t>> p = roce::BuildPacket6(HandIp6(), c);
    ASSERT_TRUE(p.ok());
    Result<RdmaCommand> d = roce::ParsePacket(*p);
    ASSERT_TRUE(d.ok()) << d.status().ToString();
    EXPECT_EQ(*roce::BuildPacket6(HandIp6(), *d), *p);
  }
}

TEST(RoceReject, Ipv6HeaderAndLengths) {
  std::vector<uint8_t> pkt = *roce::BuildPacket6(HandIp6(), HandWrite());
  EXPECT_EQ(Token(roce::ParsePacket(std::span(pkt).first(47))), "too_short");
  std::vector<uint8_t> p = pkt;
  p[6] = 6;  // next header TCP
  EXPECT_EQ(Token(roce::ParsePacket(p)), "bad_ip");
  p = pkt;
  p[5] += 4;  // payload length beyond the buffer
  EXPECT_EQ(Token(roce::ParsePacket(p)), "bad_length");
  p = pkt;
  p[45] += 4;  // UDP length disagrees
  EXPECT_EQ(Token(roce::ParsePacket(p)), "bad_length");
  p = pkt;
  p[43] ^= 1;  // destination port 4790
  EXPECT_EQ(Token(roce::ParsePacket(p)), "bad_udp");
  p = pkt;
  p[60] ^= 1;  // a RETH byte
  EXPECT_EQ(Token(roce::ParsePacket(p)), "bad_icrc");
}

// --- one test per rejection path -------------------------------------------------------------

// Rebuilds the ICRC after a test edits the transport bytes, so the edit is what gets refused.
std::vector<uint8_t> Reseal(std::vector<uint8_t> pkt) {
  uint32_t icrc =
      roce::ComputeIcrc(std::span(pkt).first(28), std::span(pkt).subspan(28, pkt.size() - 32));
  for (int i = 0; i < 4; ++i) pkt[pkt.size() - 4 + i] = static_cast<uint8_t>(icrc >> (8 * i));
  return pkt;
}

TEST(RoceReject, TooShort) {
  std::vector<uint8_t> pkt = *roce::BuildPacket(HandIp(), HandWrite());
  EXPECT_EQ(Token(roce::ParsePacket(std::span(pkt).first(27))), "too_short");
  std::vector<uint8_t> u(15, 0);
  EXPECT_EQ(Token(roce::ParseUdpPayload(u, nullptr)), "too_short");
  // A WRITE ONLY cut inside its RETH, with a valid ICRC and lengths.
  roce::Ipv4Udp ip = HandIp();
  std::vector<uint8_t> body(kHandTransport.begin(), kHandTransport.begin() + 20);
  std::vector<uint8_t> p(28 + body.size() + 4);
  roce::WriteIpv4UdpHeaders(ip, body.size() + 4, p);
  std::memcpy(p.data() + 28, body.data(), body.size());
  EXPECT_EQ(Token(roce::ParsePacket(Reseal(p))), "too_short");
}

TEST(RoceReject, BadIcrc) {
  std::vector<uint8_t> pkt = *roce::BuildPacket(HandIp(), HandWrite());
  for (size_t i : {size_t{28}, size_t{35}, size_t{45}, pkt.size() - 5, pkt.size() - 1}) {
    std::vector<uint8_t> p = pkt;
    p[i] ^= 0x01;
    EXPECT_EQ(Token(roce::ParsePacket(p)), "bad_icrc") << "byte " << i;
  }
}

TEST(RoceReject, BadOpcode) {
  std::vector<uint8_t> pkt = *roce::BuildPacket(HandIp(), HandWrite());
  for (uint8_t op : {0x15, 0x18, 0x1F, 0x24, 0x64, 0xFF}) {  // reserved RC, UC, UD, CNP...
    std::vector<uint8_t> p = pkt;
    p[28] = op;
    EXPECT_EQ(Token(roce::ParsePacket(Reseal(p))), "bad_opcode") << int(op);
  }
}

TEST(RoceReject, BadPad) {
  std::vector<uint8_t> pkt = *roce::BuildPacket(HandIp(), HandWrite());
  // Payload+pad of 9 bytes: not a multiple of 4.
  std::vector<uint8_t> body(kHandTransport);
  body.push_back(0);
  std::vector<uint8_t> p(28 + body.size() + 4);
  roce::WriteIpv4UdpHeaders(HandIp(), body.size() + 4, p);
  std::memcpy(p.data() + 28, body.data(), body.size());
  EXPECT_EQ(Token(roce::ParsePacket(Reseal(p))), "bad_pad");
  // A pad count larger than the bytes after the headers: an empty SEND ONLY with PadCnt 3.
  std::vector<uint8_t> t = {0x04, 0x30, 0xFF, 0xFF, 0, 0, 0, 1, 0, 0, 0, 1};
  EXPECT_EQ(Token(roce::DecodeTransport(t)), "bad_pad");
  t[1] = 0x00;
  EXPECT_EQ(Token(roce::DecodeTransport(t)), "ok");
  (void)pkt;
}

TEST(RoceReject, BadHeaderVersion) {
  std::vector<uint8_t> p = *roce::BuildPacket(HandIp(), HandWrite());
  p[29] |= 0x01;  // TVer 1
  EXPECT_EQ(Token(roce::ParsePacket(Reseal(p))), "bad_field");
}

TEST(RoceReject, PayloadOnAnOpcodeWithout) {
  RdmaCommand c;
  c.opcode = RdmaOpcode::kReadRequest;
  std::vector<uint8_t> t = *roce::EncodeTransport(c);
  t.insert(t.end(), {1, 2, 3, 4});
  EXPECT_EQ(Token(roce::DecodeTransport(t)), "unexpected_payload");
}

TEST(RoceReject, BadIpAndUdp) {
  std::vector<uint8_t> pkt = *roce::BuildPacket(HandIp(), HandWrite());
  std::vector<uint8_t> p = pkt;
  p[0] = 0x46;  // IPv4 options
  EXPECT_EQ(Token(roce::ParsePacket(p)), "bad_ip");
  p = pkt;
  p[10] ^= 1;  // header checksum
  EXPECT_EQ(Token(roce::ParsePacket(p)), "bad_ip");
  roce::Ipv4Udp ip = HandIp();
  ip.dst_port = 4792;
  p = *roce::BuildPacket(ip, HandWrite());
  EXPECT_EQ(Token(roce::ParsePacket(p)), "bad_udp");
  p = pkt;
  p[25] += 4;  // UDP length
  EXPECT_EQ(Token(roce::ParsePacket(p)), "bad_length");
  p = pkt;
  p[3] += 4;  // IPv4 total length beyond the buffer
  p[10] = p[11] = 0;
  EXPECT_NE(Token(roce::ParsePacket(p)), "ok");
}

}  // namespace
}  // namespace opensrd::rdma
