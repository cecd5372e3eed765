// RoCEv2 codec: InfiniBand RC transport headers (BTH, RETH, AETH, AtomicETH, AtomicAckETH,
// ImmDt, IETH) in UDP to port 4791 over IPv4, with the pad count and the invariant CRC (ICRC).
// The header layouts live in tables (roce.cc) decoded by the generic codec; this file adds the
// framing: pad, ICRC, and the IPv4/UDP headers the ICRC covers. Pure functions; thread-safe.
#pragma once
#include <array>
#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

#include "common/status.h"
#include "rdma/command.h"
#include "rdma/header_table.h"

namespace opensrd::rdma::roce {

inline constexpr uint16_t kUdpPort = 4791;
inline constexpr size_t kBthLen = 12;
inline constexpr size_t kIcrcLen = 4;
inline constexpr size_t kIpv4HeaderLen = 20;  // no options: RoCEv2 peers send none
inline constexpr size_t kUdpHeaderLen = 8;
inline constexpr size_t kIpv6HeaderLen = 40;  // no extension headers

// BTH opcodes of the reliable-connection class (IBTA vol. 1, table 38; RC = 0x00-0x1F).
enum class WireOpcode : uint8_t {
  kSendFirst = 0x00,
  kSendMiddle = 0x01,
  kSendLast = 0x02,
  kSendLastImm = 0x03,
  kSendOnly = 0x04,
  kSendOnlyImm = 0x05,
  kWriteFirst = 0x06,
  kWriteMiddle = 0x07,
  kWriteLast = 0x08,
  kWriteLastImm = 0x09,
  kWriteOnly = 0x0A,
  kWriteOnlyImm = 0x0B,
  kReadRequest = 0x0C,
  kReadResponseFirst = 0x0D,
  kReadResponseMiddle = 0x0E,
  kReadResponseLast = 0x0F,
  kReadResponseOnly = 0x10,
  kAcknowledge = 0x11,
  kAtomicAcknowledge = 0x12,
  kCompareSwap = 0x13,
  kFetchAdd = 0x14,
  kSendLastInv = 0x16,
  kSendOnlyInv = 0x17,
};

const ProtocolTables& Tables();

// The IPv4 and UDP header fields a RoCEv2 packet is sent with (host byte order). The ICRC
// covers all of them except TOS, TTL and the two checksums, so a receiver can only check it if
// it knows the IP identification the sender used.
struct Ipv4Udp {
  uint32_t src_ip = 0;
  uint32_t dst_ip = 0;
  uint16_t src_port = 0;  // flow entropy: rxe uses one per QP
  uint16_t dst_port = kUdpPort;
  uint16_t ip_id = 0;
  bool dont_fragment = true;
  uint8_t ttl = 64;
  uint8_t tos = 0;
  uint16_t udp_checksum = 0;  // 0: none (what rxe sends); the ICRC protects the payload
};

// BTH through payload and pad (no ICRC): the bytes the UDP payload starts with. Sets the pad
// count from the payload length.
Result<std::vector<uint8_t>> EncodeTransport(const RdmaCommand& cmd);

// The UDP payload a socket sends: BTH... + payload + pad + ICRC, the ICRC computed for the IPv4
// and UDP headers `ip` describes (the kernel must send exactly those: an unconnected UDP socket
// with IP_PMTUDISC_DO sends IP identification 0 with DF set).
Result<std::vector<uint8_t>> EncodeUdpPayload(const Ipv4Udp& ip, const RdmaCommand& cmd);

// A whole IPv4 packet: IPv4 header (with a correct header checksum) + UDP header + BTH... +
// payload + pad + ICRC.
Result<std::vector<uint8_t>> BuildPacket(const Ipv4Udp& ip, const RdmaCommand& cmd);

// The ICRC of a packet: `ip_udp` is its IPv4 header and UDP header (28 bytes), `udp_payload`
// runs from the BTH to the end of the pad (the ICRC excluded). The 4 bytes go on the wire in this
// order: (uint8_t)icrc, icrc >> 8, icrc >> 16, icrc >> 24 (as Ethernet sends its FCS).
uint32_t ComputeIcrc(std::span<const uint8_t> ip_udp, std::span<const uint8_t> udp_payload);

// Decodes BTH onward without an ICRC check: `bytes` ends with the pad (ICRC removed). Checks
// the pad count against the payload; the payload excludes the pad. Errors: see DecodeHeaders,
// plus "bad_pad".
Result<RdmaCommand> DecodeTransport(std::span<const uint8_t> bytes);

// Parses a whole IP packet (as BuildPacket or BuildPacket6 make, or as captured): IPv4 (no
// options) or IPv6 (no extension headers), UDP to port 4791, lengths, ICRC, then the transport
// headers. The command's payload points into `packet`. The UDP checksum is not checked.
// Error tokens: "too_short", "bad_ip", "bad_udp", "bad_length", "bad_icrc", and
// DecodeTransport's.
Result<RdmaCommand> ParsePacket(std::span<const uint8_t> packet);

// Parses a UDP payload received on a socket, which never shows the IP header: the ICRC is
// checked against headers rebuilt from `ip` (addresses, ports, and the IP identification the
// sender is known to use), or not at all if `ip` is null.
Result<RdmaCommand> ParseUdpPayload(std::span<const uint8_t> udp_payload, const Ipv4Udp* ip);

// The IPv4 + UDP headers (28 bytes) BuildPacket puts in front of `udp_payload_len` bytes.
void WriteIpv4UdpHeaders(const Ipv4Udp& ip, size_t udp_payload_len, std::span<uint8_t> out);

// RoCEv2 over IPv6 (rxe's GIDs that are not IPv4-mapped). The ICRC masks the traffic class,
// flow label and hop limit; the UDP checksum, mandatory over IPv6, is computed.
struct Ipv6Udp {
  std::array<uint8_t, 16> src_ip{};
  std::array<uint8_t, 16> dst_ip{};
  uint16_t src_port = 0;
  uint16_t dst_port = kUdpPort;
  uint8_t traffic_class = 0;
  uint32_t flow_label = 0;  // 20 bits
  uint8_t hop_limit = 64;
};
// The IPv6 + UDP headers (48 bytes, UDP checksum zero: BuildPacket6 fills it in).
void WriteIpv6UdpHeaders(const Ipv6Udp& ip, size_t udp_payload_len, std::span<uint8_t> out);
// ICRC over `ip6_udp` (48 bytes of IPv6 + UDP header) and the BTH onward, as ComputeIcrc.
uint32_t ComputeIcrc6(std::span<const uint8_t> ip6_udp, std::span<const uint8_t> udp_payload);
// A whole IPv6 packet: header, UDP header with its checksum, BTH... + payload + pad + ICRC.
Result<std::vector<uint8_t>> BuildPacket6(const Ipv6Udp& ip, const RdmaCommand& cmd);
// As ParseUdpPayload, the ICRC checked against IPv6/UDP headers rebuilt from `ip`.
Result<RdmaCommand> ParseUdpPayload6(std::span<const uint8_t> udp_payload, const Ipv6Udp& ip);

}  // namespace opensrd::rdma::roce
