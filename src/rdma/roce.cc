#include "rdma/roce.h"

#include <isa-l/crc.h>

#include <array>
#include <cstring>
#include <string>

namespace opensrd::rdma::roce {
namespace {

using F = CommandField;

// Header indices in kHeaders.
enum : uint8_t { kBth, kReth, kAeth, kAtomicEth, kAtomicAckEth, kImmDt, kIeth };

// IBTA vol. 1, 9.2 BTH: 12 bytes.
constexpr FieldDescriptor kBthFields[] = {
    {"OpCode", F::kWireOpcode, 0, 0, 8},  {"SE", F::kSolicited, 1, 0, 1},
    {"M", F::kMigReq, 1, 1, 1},           {"PadCnt", F::kPadCount, 1, 2, 2},
    {"TVer", F::kConstant, 1, 4, 4, 0},   {"P_Key", F::kPkey, 2, 0, 16},
    {"Reserved8", F::kReserved, 4, 0, 8},  // the byte the ICRC masks
    {"DestQP", F::kDestQp, 5, 0, 24},     {"A", F::kAckRequest, 8, 0, 1},
    {"Reserved7", F::kReserved, 8, 1, 7}, {"PSN", F::kPsn, 9, 0, 24},
};
// 9.3.2 RETH: 16 bytes.
constexpr FieldDescriptor kRethFields[] = {
    {"VA", F::kVa, 0, 0, 64},
    {"R_Key", F::kRkey, 8, 0, 32},
    {"DMALen", F::kDmaLength, 12, 0, 32},
};
// 9.3.5 AETH: 4 bytes.
constexpr FieldDescriptor kAethFields[] = {
    {"Syndrome", F::kSyndrome, 0, 0, 8},
    {"MSN", F::kMsn, 1, 0, 24},
};
// 9.3.3 AtomicETH: 28 bytes.
constexpr FieldDescriptor kAtomicEthFields[] = {
    {"VA", F::kVa, 0, 0, 64},
    {"R_Key", F::kRkey, 8, 0, 32},
    {"SwapAddData", F::kSwapAdd, 12, 0, 64},
    {"CompareData", F::kCompare, 20, 0, 64},
};
// 9.3.6 AtomicAckETH: 8 bytes.
constexpr FieldDescriptor kAtomicAckEthFields[] = {
    {"OrigRemDt", F::kAtomicOrig, 0, 0, 64},
};
// 9.3.4 ImmDt and 9.3.7 IETH: 4 bytes each.
constexpr FieldDescriptor kImmDtFields[] = {{"ImmDt", F::kImm, 0, 0, 32}};
constexpr FieldDescriptor kIethFields[] = {{"R_Key", F::kInvalidateRkey, 0, 0, 32}};

constexpr HeaderTable kHeaders[] = {
    {"BTH", 12, kBthFields},
    {"RETH", 16, kRethFields},
    {"AETH", 4, kAethFields},
    {"AtomicETH", 28, kAtomicEthFields},
    {"AtomicAckETH", 8, kAtomicAckEthFields},
    {"ImmDt", 4, kImmDtFields},
    {"IETH", 4, kIethFields},
};

constexpr uint8_t W(WireOpcode w) {
  return static_cast<uint8_t>(w);
}
using O = RdmaOpcode;

// IBTA vol. 1, 9.2: which extension headers each RC opcode carries.
constexpr OpcodeLayout kLayouts[] = {
    {W(WireOpcode::kSendFirst), O::kSendFirst, 1, {kBth}, true},
    {W(WireOpcode::kSendMiddle), O::kSendMiddle, 1, {kBth}, true},
    {W(WireOpcode::kSendLast), O::kSendLast, 1, {kBth}, true},
    {W(WireOpcode::kSendLastImm), O::kSendLastImm, 2, {kBth, kImmDt}, true},
    {W(WireOpcode::kSendOnly), O::kSendOnly, 1, {kBth}, true},
    {W(WireOpcode::kSendOnlyImm), O::kSendOnlyImm, 2, {kBth, kImmDt}, true},
    {W(WireOpcode::kWriteFirst), O::kWriteFirst, 2, {kBth, kReth}, true},
    {W(WireOpcode::kWriteMiddle), O::kWriteMiddle, 1, {kBth}, true},
    {W(WireOpcode::kWriteLast), O::kWriteLast, 1, {kBth}, true},
    {W(WireOpcode::kWriteLastImm), O::kWriteLastImm, 2, {kBth, kImmDt}, true},
    {W(WireOpcode::kWriteOnly), O::kWriteOnly, 2, {kBth, kReth}, true},
    {W(WireOpcode::kWriteOnlyImm), O::kWriteOnlyImm, 3, {kBth, kReth, kImmDt}, true},
    {W(WireOpcode::kReadRequest), O::kReadRequest, 2, {kBth, kReth}, false},
    {W(WireOpcode::kReadResponseFirst), O::kReadResponseFirst, 2, {kBth, kAeth}, true},
    {W(WireOpcode::kReadResponseMiddle), O::kReadResponseMiddle, 1, {kBth}, true},
    {W(WireOpcode::kReadResponseLast), O::kReadResponseLast, 2, {kBth, kAeth}, true},
    {W(WireOpcode::kReadResponseOnly), O::kReadResponseOnly, 2, {kBth, kAeth}, true},
    // One wire opcode, three commands: decoding takes the first and Refine() reads the
    // syndrome; encoding finds the exact one.
    {W(WireOpcode::kAcknowledge), O::kAck, 2, {kBth, kAeth}, false},
    {W(WireOpcode::kAcknowledge), O::kRnrNak, 2, {kBth, kAeth}, false},
    {W(WireOpcode::kAcknowledge), O::kNak, 2, {kBth, kAeth}, false},
    {W(WireOpcode::kAtomicAcknowledge), O::kAtomicAck, 3, {kBth, kAeth, kAtomicAckEth}, false},
    {W(WireOpcode::kCompareSwap), O::kCompareSwap, 2, {kBth, kAtomicEth}, false},
    {W(WireOpcode::kFetchAdd), O::kFetchAdd, 2, {kBth, kAtomicEth}, false},
    {W(WireOpcode::kSendLastInv), O::kSendLastInv, 2, {kBth, kIeth}, true},
    {W(WireOpcode::kSendOnlyInv), O::kSendOnlyInv, 2, {kBth, kIeth}, true},
};

bool Refine(RdmaCommand& c) {
  if (c.opcode != RdmaOpcode::kAck) return true;
  return AckKindOfSyndrome(c.syndrome, &c.opcode);
}

constexpr ProtocolTables kTables{
    ProtocolIndex::kRoce, "roce",  {"OpCode", F::kWireOpcode, 0, 0, 8}, kHeaders, kLayouts, false,
    F::kReserved,         &Refine,
};

Status Malformed(const std::string& m) {
  return Status(Code::kMalformed, m);
}

uint16_t Be16(const uint8_t* p) {
  return static_cast<uint16_t>(p[0] << 8 | p[1]);
}
void Put16(uint8_t* p, uint16_t v) {
  p[0] = static_cast<uint8_t>(v >> 8);
  p[1] = static_cast<uint8_t>(v);
}
void Put32(uint8_t* p, uint32_t v) {
  Put16(p, static_cast<uint16_t>(v >> 16));
  Put16(p + 2, static_cast<uint16_t>(v));
}

uint16_t Ipv4Checksum(const uint8_t* h) {
  uint32_t sum = 0;
  for (size_t i = 0; i < kIpv4HeaderLen; i += 2) sum += Be16(h + i);
  while (sum >> 16) sum = (sum & 0xFFFF) + (sum >> 16);
  return static_cast<uint16_t>(~sum);
}

void PutIcrc(uint8_t* p, uint32_t icrc) {
  for (int i = 0; i < 4; ++i) p[i] = static_cast<uint8_t>(icrc >> (8 * i));
}
uint32_t GetIcrc(const uint8_t* p) {
  return uint32_t{p[0]} | uint32_t{p[1]} << 8 | uint32_t{p[2]} << 16 | uint32_t{p[3]} << 24;
}

Result<RdmaCommand> CheckAndDecode(std::span<const uint8_t> ip_udp,
                                   std::span<const uint8_t> udp_payload) {
  if (udp_payload.size() < kBthLen + kIcrcLen) return Malformed("too_short: roce UDP payload");
  std::span<const uint8_t> body = udp_payload.first(udp_payload.size() - kIcrcLen);
  uint32_t want = ComputeIcrc(ip_udp, body);
  uint32_t got = GetIcrc(udp_payload.data() + body.size());
  if (want != got) return Malformed("bad_icrc: roce ICRC does not match");
  return DecodeTransport(body);
}

}  // namespace

const ProtocolTables& Tables() {
  return kTables;
}

Result<std::vector<uint8_t>> EncodeTransport(const RdmaCommand& in) {
  RdmaCommand cmd = in;
  cmd.pad_count = static_cast<uint8_t>((4 - cmd.payload.size() % 4) % 4);
  size_t hlen = EncodedHeaderLength(kTables, cmd);
  if (hlen == 0) {
    return Status(Code::kInvalidArgument,
                  std::string("roce has no opcode for ") + OpcodeName(cmd.opcode));
  }
  std::vector<uint8_t> out(hlen + cmd.payload.size() + cmd.pad_count, 0);
  Result<size_t> n = EncodeHeaders(kTables, cmd, out);
  if (!n.ok()) return n.status();
  if (!cmd.payload.empty()) std::memcpy(out.data() + hlen, cmd.payload.data(), cmd.payload.size());
  return out;
}

void WriteIpv4UdpHeaders(const Ipv4Udp& ip, size_t udp_payload_len, std::span<uint8_t> out) {
  uint8_t* h = out.data();
  h[0] = 0x45;  // version 4, 5 words
  h[1] = ip.tos;
  Put16(h + 2, static_cast<uint16_t>(kIpv4HeaderLen + kUdpHeaderLen + udp_payload_len));
  Put16(h + 4, ip.ip_id);
  Put16(h + 6, ip.dont_fragment ? 0x4000 : 0);
  h[8] = ip.ttl;
  h[9] = 17;  // UDP
  Put16(h + 10, 0);
  Put32(h + 12, ip.src_ip);
  Put32(h + 16, ip.dst_ip);
  Put16(h + 10, Ipv4Checksum(h));
  uint8_t* u = h + kIpv4HeaderLen;
  Put16(u, ip.src_port);
  Put16(u + 2, ip.dst_port);
  Put16(u + 4, static_cast<uint16_t>(kUdpHeaderLen + udp_payload_len));
  Put16(u + 6, ip.udp_checksum);
}

uint32_t ComputeIcrc(std::span<const uint8_t> ip_udp, std::span<const uint8_t> udp_payload) {
  // The invariant prefix, masked (IBTA annex A17, RoCEv2): 8 one-bytes stand for the LRH a
  // RoCEv2 packet lacks; then IPv4 with TOS, TTL and header checksum as ones; UDP with its
  // checksum as ones (ports and length are covered); the BTH with its reserved byte 4 as ones.
  std::array<uint8_t, 8 + kIpv4HeaderLen + kUdpHeaderLen + kBthLen> pre;
  std::memset(pre.data(), 0xFF, 8);
  uint8_t* ip = pre.data() + 8;
  std::memcpy(ip, ip_udp.data(), kIpv4HeaderLen);
  ip[1] = 0xFF;
  ip[8] = 0xFF;
  ip[10] = ip[11] = 0xFF;
  uint8_t* udp = ip + kIpv4HeaderLen;
  std::memcpy(udp, ip_udp.data() + kIpv4HeaderLen, kUdpHeaderLen);
  udp[6] = udp[7] = 0xFF;
  uint8_t* bth = udp + kUdpHeaderLen;
  size_t nbth = udp_payload.size() < kBthLen ? udp_payload.size() : kBthLen;
  std::memcpy(bth, udp_payload.data(), nbth);
  if (nbth > 4) bth[4] = 0xFF;
  uint32_t crc = crc32_gzip_refl(0, pre.data(), static_cast<uint64_t>(8 + 28 + nbth));
  if (udp_payload.size() > nbth) {
    crc = crc32_gzip_refl(crc, udp_payload.data() + nbth, udp_payload.size() - nbth);
  }
  return crc;
}

Result<std::vector<uint8_t>> BuildPacket(const Ipv4Udp& ip, const RdmaCommand& cmd) {
  Result<std::vector<uint8_t>> body = EncodeTransport(cmd);
  if (!body.ok()) return body.status();
  const std::vector<uint8_t>& b = *body;
  size_t udp_len = b.size() + kIcrcLen;
  if (kIpv4HeaderLen + kUdpHeaderLen + udp_len > 65535) {
    return Status(Code::kInvalidArgument, "roce packet larger than an IPv4 datagram");
  }
  std::vector<uint8_t> pkt(kIpv4HeaderLen + kUdpHeaderLen + udp_len);
  WriteIpv4UdpHeaders(ip, udp_len, pkt);
  std::memcpy(pkt.data() + 28, b.data(), b.size());
  PutIcrc(pkt.data() + 28 + b.size(), ComputeIcrc(std::span(pkt).first(28), b));
  return pkt;
}

Result<std::vector<uint8_t>> EncodeUdpPayload(const Ipv4Udp& ip, const RdmaCommand& cmd) {
  Result<std::vector<uint8_t>> body = EncodeTransport(cmd);
  if (!body.ok()) return body.status();
  std::vector<uint8_t> out = std::move(body.value());
  size_t n = out.size();
  if (kIpv4HeaderLen + kUdpHeaderLen + n + kIcrcLen > 65535) {
    return Status(Code::kInvalidArgument, "roce packet larger than an IPv4 datagram");
  }
  uint8_t hdr[kIpv4HeaderLen + kUdpHeaderLen];
  WriteIpv4UdpHeaders(ip, n + kIcrcLen, hdr);
  out.resize(n + kIcrcLen);
  PutIcrc(out.data() + n, ComputeIcrc(hdr, std::span(out).first(n)));
  return out;
}

Result<RdmaCommand> DecodeTransport(std::span<const uint8_t> bytes) {
  Result<RdmaCommand> r = DecodeHeaders(kTables, bytes);
  if (!r.ok()) return r;
  RdmaCommand c = *r;
  // Headers are whole words, so payload + pad must be too (IBTA: packets are 4-byte multiples).
  if (c.payload.size() % 4 != 0) {
    return Malformed("bad_pad: roce payload + pad of " + std::to_string(c.payload.size()) +
                     " bytes is not a multiple of 4");
  }
  if (c.pad_count > c.payload.size()) {
    return Malformed("bad_pad: roce pad count " + std::to_string(c.pad_count) + " exceeds " +
                     std::to_string(c.payload.size()) + " payload bytes");
  }
  c.payload = c.payload.first(c.payload.size() - c.pad_count);
  return c;
}

namespace {

Result<RdmaCommand> ParseIpv6Packet(std::span<const uint8_t> packet) {
  if (packet.size() < kIpv6HeaderLen + kUdpHeaderLen) return Malformed("too_short: roce IPv6");
  const uint8_t* h = packet.data();
  size_t plen = Be16(h + 4);
  if (plen < kUdpHeaderLen || kIpv6HeaderLen + plen > packet.size()) {
    return Malformed("bad_length: roce IPv6 payload length " + std::to_string(plen));
  }
  if (h[6] != 17) return Malformed("bad_ip: roce IPv6 next header is not UDP");
  const uint8_t* u = h + kIpv6HeaderLen;
  if (Be16(u + 2) != kUdpPort) return Malformed("bad_udp: roce UDP destination port is not 4791");
  if (Be16(u + 4) != plen) {
    return Malformed("bad_length: roce UDP length " + std::to_string(Be16(u + 4)));
  }
  constexpr size_t kHdr = kIpv6HeaderLen + kUdpHeaderLen;
  std::span<const uint8_t> udp_payload = packet.subspan(kHdr, plen - kUdpHeaderLen);
  if (udp_payload.size() < kBthLen + kIcrcLen) return Malformed("too_short: roce UDP payload");
  std::span<const uint8_t> body = udp_payload.first(udp_payload.size() - kIcrcLen);
  if (ComputeIcrc6(packet.first(kHdr), body) != GetIcrc(body.data() + body.size())) {
    return Malformed("bad_icrc: roce ICRC does not match");
  }
  return DecodeTransport(body);
}

}  // namespace

Result<RdmaCommand> ParsePacket(std::span<const uint8_t> packet) {
  if (!packet.empty() && (packet[0] >> 4) == 6) return ParseIpv6Packet(packet);
  if (packet.size() < kIpv4HeaderLen + kUdpHeaderLen) return Malformed("too_short: roce IPv4");
  const uint8_t* h = packet.data();
  if (h[0] != 0x45) return Malformed("bad_ip: roce needs IPv4 without options");
  size_t total = Be16(h + 2);
  if (total < kIpv4HeaderLen + kUdpHeaderLen || total > packet.size()) {
    return Malformed("bad_length: roce IPv4 total length " + std::to_string(total));
  }
  if ((Be16(h + 6) & 0x3FFF) != 0) return Malformed("bad_ip: roce IPv4 fragment");
  if (h[9] != 17) return Malformed("bad_ip: roce IPv4 protocol is not UDP");
  if (Ipv4Checksum(h) != 0) return Malformed("bad_ip: roce IPv4 header checksum");
  const uint8_t* u = h + kIpv4HeaderLen;
  if (Be16(u + 2) != kUdpPort) return Malformed("bad_udp: roce UDP destination port is not 4791");
  if (Be16(u + 4) != total - kIpv4HeaderLen) {
    return Malformed("bad_length: roce UDP length " + std::to_string(Be16(u + 4)));
  }
  return CheckAndDecode(packet.first(28), packet.subspan(28, total - 28));
}

Result<RdmaCommand> ParseUdpPayload(std::span<const uint8_t> udp_payload, const Ipv4Udp* ip) {
  if (ip == nullptr) {
    if (udp_payload.size() < kBthLen + kIcrcLen) return Malformed("too_short: roce UDP payload");
    return DecodeTransport(udp_payload.first(udp_payload.size() - kIcrcLen));
  }
  if (udp_payload.size() + 28 > 65535) return Malformed("bad_length: roce UDP payload");
  uint8_t hdr[28];
  WriteIpv4UdpHeaders(*ip, udp_payload.size(), hdr);
  return CheckAndDecode(hdr, udp_payload);
}

void WriteIpv6UdpHeaders(const Ipv6Udp& ip, size_t udp_payload_len, std::span<uint8_t> out) {
  uint8_t* h = out.data();
  uint32_t w = 6u << 28 | uint32_t{ip.traffic_class} << 20 | (ip.flow_label & 0xFFFFF);
  Put32(h, w);
  Put16(h + 4, static_cast<uint16_t>(kUdpHeaderLen + udp_payload_len));
  h[6] = 17;
  h[7] = ip.hop_limit;
  std::memcpy(h + 8, ip.src_ip.data(), 16);
  std::memcpy(h + 24, ip.dst_ip.data(), 16);
  uint8_t* u = h + kIpv6HeaderLen;
  Put16(u, ip.src_port);
  Put16(u + 2, ip.dst_port);
  Put16(u + 4, static_cast<uint16_t>(kUdpHeaderLen + udp_payload_len));
  Put16(u + 6, 0);
}

uint32_t ComputeIcrc6(std::span<const uint8_t> ip6_udp, std::span<const uint8_t> udp_payload) {
  // As for IPv4 (see ComputeIcrc), with the IPv6 header's variant fields masked: traffic class,
  // flow label and hop limit.
  std::array<uint8_t, 8 + kIpv6HeaderLen + kUdpHeaderLen + kBthLen> pre;
  std::memset(pre.data(), 0xFF, 8);
  uint8_t* ip = pre.data() + 8;
  std::memcpy(ip, ip6_udp.data(), kIpv6HeaderLen + kUdpHeaderLen);
  ip[0] |= 0x0F;
  ip[1] = ip[2] = ip[3] = 0xFF;
  ip[7] = 0xFF;
  uint8_t* udp = ip + kIpv6HeaderLen;
  udp[6] = udp[7] = 0xFF;
  uint8_t* bth = udp + kUdpHeaderLen;
  size_t nbth = udp_payload.size() < kBthLen ? udp_payload.size() : kBthLen;
  std::memcpy(bth, udp_payload.data(), nbth);
  if (nbth > 4) bth[4] = 0xFF;
  uint32_t crc = crc32_gzip_refl(0, pre.data(), 8 + kIpv6HeaderLen + kUdpHeaderLen + nbth);
  if (udp_payload.size() > nbth) {
    crc = crc32_gzip_refl(crc, udp_payload.data() + nbth, udp_payload.size() - nbth);
  }
  return crc;
}

Result<std::vector<uint8_t>> BuildPacket6(const Ipv6Udp& ip, const RdmaCommand& cmd) {
  Result<std::vector<uint8_t>> body = EncodeTransport(cmd);
  if (!body.ok()) return body.status();
  const std::vector<uint8_t>& b = *body;
  size_t udp_len = kUdpHeaderLen + b.size() + kIcrcLen;
  if (udp_len > 65535) return Status(Code::kInvalidArgument, "roce packet over 64 KiB");
  constexpr size_t kHdr = kIpv6HeaderLen + kUdpHeaderLen;
  std::vector<uint8_t> pkt(kIpv6HeaderLen + udp_len);
  WriteIpv6UdpHeaders(ip, b.size() + kIcrcLen, pkt);
  std::memcpy(pkt.data() + kHdr, b.data(), b.size());
  PutIcrc(pkt.data() + kHdr + b.size(), ComputeIcrc6(std::span(pkt).first(kHdr), b));
  // UDP checksum over the IPv6 pseudo-header (addresses, UDP length, next header) and the
  // datagram; 0 is sent as 0xFFFF.
  uint32_t sum = 0;
  for (size_t i = 8; i < 40; i += 2) sum += Be16(pkt.data() + i);
  sum += static_cast<uint32_t>(udp_len) + 17;
  const uint8_t* u = pkt.data() + kIpv6HeaderLen;
  for (size_t i = 0; i + 1 < udp_len; i += 2) sum += Be16(u + i);
  if (udp_len & 1) sum += static_cast<uint32_t>(u[udp_len - 1]) << 8;
  while (sum >> 16) sum = (sum & 0xFFFF) + (sum >> 16);
  uint16_t csum = static_cast<uint16_t>(~sum);
  Put16(pkt.data() + kIpv6HeaderLen + 6, csum == 0 ? 0xFFFF : csum);
  return pkt;
}

Result<RdmaCommand> ParseUdpPayload6(std::span<const uint8_t> udp_payload, const Ipv6Udp& ip) {
  if (udp_payload.size() < kBthLen + kIcrcLen) return Malformed("too_short: roce UDP payload");
  if (udp_payload.size() + kUdpHeaderLen > 65535) return Malformed("bad_length: roce UDP payload");
  uint8_t hdr[kIpv6HeaderLen + kUdpHeaderLen];
  WriteIpv6UdpHeaders(ip, udp_payload.size(), hdr);
  std::span<const uint8_t> body = udp_payload.first(udp_payload.size() - kIcrcLen);
  if (ComputeIcrc6(hdr, body) != GetIcrc(body.data() + body.size())) {
    return Malformed("bad_icrc: roce ICRC does not match");
  }
  return DecodeTransport(body);
}

}  // namespace opensrd::rdma::roce
