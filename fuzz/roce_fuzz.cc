// Feeds arbitrary bytes to the RoCEv2 parser. The first byte picks the shape:
//   even: a whole IPv4 packet for roce::ParsePacket (ICRC and all);
//   odd:  transport bytes (BTH onward, pad included) that the harness wraps in IPv4/UDP (or,
//         with bit 1 set, IPv6/UDP) and seals with a correct ICRC, so the fuzzer explores the
//         header tables past the CRC. Even inputs may be IPv4 or IPv6 packets.
// Checks beyond "no crash": a command that parses re-encodes into a packet that parses to the
// same command, and a sealed packet parses exactly when its transport bytes decode.
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <span>
#include <vector>

#include "rdma/protocol_index.h"
#include "rdma/roce.h"

using namespace opensrd;
using namespace opensrd::rdma;

namespace {

bool SameCommand(const RdmaCommand& a, const RdmaCommand& b) {
  return a.opcode == b.opcode && a.flags == b.flags && a.dest_qp == b.dest_qp && a.psn == b.psn &&
         a.msn == b.msn && a.va == b.va && a.rkey == b.rkey && a.dma_length == b.dma_length &&
         a.imm == b.imm && a.invalidate_rkey == b.invalidate_rkey && a.swap_add == b.swap_add &&
         a.compare == b.compare && a.atomic_orig == b.atomic_orig && a.syndrome == b.syndrome &&
         a.pkey == b.pkey && a.payload.size() == b.payload.size() &&
         (a.payload.empty() ||
          std::memcmp(a.payload.data(), b.payload.data(), a.payload.size()) == 0);
}

void ReEncode(const RdmaCommand& c, const roce::Ipv4Udp& ip) {
  Result<std::vector<uint8_t>> again = roce::BuildPacket(ip, c);
  if (!again.ok()) std::abort();  // whatever parses must be expressible
  Result<RdmaCommand> d = roce::ParsePacket(*again);
  if (!d.ok() || !SameCommand(c, *d)) std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  std::span<const uint8_t> in(data + 1, size - 1);
  (void)ClassifyPacket({Carrier::kUdp, static_cast<uint16_t>(data[0] * 19), false}, in);
  roce::Ipv4Udp ip;
  ip.src_ip = 0x0A000001;
  ip.dst_ip = 0x0A000002;
  ip.src_port = static_cast<uint16_t>(0xC000 | data[0]);
  ip.ip_id = static_cast<uint16_t>(data[0] * 257);
  if ((data[0] & 1) == 0) {
    Result<RdmaCommand> r = roce::ParsePacket(in);
    if (!r.ok()) return 0;
    if (in.size() >= 28) {
      ip.ip_id = static_cast<uint16_t>(in[4] << 8 | in[5]);
      ip.dont_fragment = (in[6] & 0x40) != 0;
      ip.src_ip = static_cast<uint32_t>(in[12] << 24 | in[13] << 16 | in[14] << 8 | in[15]);
      ip.dst_ip = static_cast<uint32_t>(in[16] << 24 | in[17] << 16 | in[18] << 8 | in[19]);
      ip.src_port = static_cast<uint16_t>(in[20] << 8 | in[21]);
    }
    ReEncode(*r, ip);
    return 0;
  }
  if (in.size() + 60 > 65535) return 0;
  if (data[0] & 2) {  // sealed over IPv6
    roce::Ipv6Udp ip6;
    ip6.src_ip[15] = 1;
    ip6.dst_ip[15] = 2;
    ip6.src_port = ip.src_port;
    ip6.flow_label = data[0];
    std::vector<uint8_t> u(in.size() + roce::kIcrcLen);
    if (!in.empty()) std::memcpy(u.data(), in.data(), in.size());
    uint8_t hdr[48];
    roce::WriteIpv6UdpHeaders(ip6, u.size(), hdr);
    uint32_t icrc = roce::ComputeIcrc6(hdr, in);
    for (int i = 0; i < 4; ++i) u[in.size() + i] = static_cast<uint8_t>(icrc >> (8 * i));
    Result<RdmaCommand> r = roce::ParseUdpPayload6(u, ip6);
    Result<RdmaCommand> t = roce::DecodeTransport(in);
    if (r.ok() != (t.ok() && in.size() >= roce::kBthLen)) std::abort();
    if (r.ok()) {
      Result<std::vector<uint8_t>> p6 = roce::BuildPacket6(ip6, *r);
      if (!p6.ok()) std::abort();
      Result<RdmaCommand> d = roce::ParsePacket(*p6);
      if (!d.ok() || !SameCommand(*r, *d)) std::abort();
    }
    return 0;
  }
  std::vector<uint8_t> pkt(28 + in.size() + roce::kIcrcLen);
  roce::WriteIpv4UdpHeaders(ip, in.size() + roce::kIcrcLen, pkt);
  if (!in.empty()) std::memcpy(pkt.data() + 28, in.data(), in.size());
  uint32_t icrc = roce::ComputeIcrc(std::span(pkt).first(28), in);
  for (int i = 0; i < 4; ++i) pkt[28 + in.size() + i] = static_cast<uint8_t>(icrc >> (8 * i));
  Result<RdmaCommand> r = roce::ParsePacket(pkt);
  Result<RdmaCommand> t = roce::DecodeTransport(in);
  if (r.ok() != (t.ok() && in.size() >= roce::kBthLen)) std::abort();
  if (r.ok()) ReEncode(*r, ip);
  return 0;
}
