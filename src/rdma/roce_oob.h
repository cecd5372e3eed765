// The out-of-band connection exchanges of rdma-core's ibv_rc_pingpong and of perftest, which
// RoCEv2 peers without rdma_cm use to learn each other's QPN, PSN, GID (and, for perftest, the
// rkey and address of the buffer). Both are fixed-width hex text with a terminating NUL; the
// parsers take the peer's untrusted bytes and accept exactly that shape. Pure functions.
#pragma once
#include <array>
#include <cstdint>
#include <span>
#include <string>

#include "common/status.h"

namespace opensrd::rdma::roce {

// ibv_rc_pingpong: "%04x:%06x:%06x:%s" (LID, QPN, PSN, the 16 GID bytes as 32 hex digits) +
// NUL = 52 bytes.
inline constexpr size_t kPingpongDestLen = 52;
struct PingpongDest {
  uint16_t lid = 0;
  uint32_t qpn = 0;  // 24 bits
  uint32_t psn = 0;  // 24 bits
  std::array<uint8_t, 16> gid{};
};
std::string FormatPingpongDest(const PingpongDest& d);  // kPingpongDestLen bytes, NUL included
// Errors (kMalformed): "bad_length", "bad_format" (a separator, hex digit or the NUL).
Result<PingpongDest> ParsePingpongDest(std::span<const uint8_t> msg);

// perftest (4.5-0.17) with a GID: "%04x:%04x:%06x:%06x:%08x:%016llx:" (LID, outstanding reads,
// QPN, PSN, rkey, address), the 16 GID bytes as "%02x:" each, "%08x:" (SRQN), NUL = 108 bytes.
inline constexpr size_t kPerftestDestLen = 108;
struct PerftestDest {
  uint16_t lid = 0;
  uint16_t out_reads = 0;
  uint32_t qpn = 0;
  uint32_t psn = 0;
  uint32_t rkey = 0;
  uint64_t vaddr = 0;
  std::array<uint8_t, 16> gid{};
  uint32_t srqn = 0;
};
std::string FormatPerftestDest(const PerftestDest& d);
Result<PerftestDest> ParsePerftestDest(std::span<const uint8_t> msg);

// ::ffff:a.b.c.d as a GID, and back (false if the GID is not IPv4-mapped).
std::array<uint8_t, 16> Ipv4MappedGid(uint32_t ip);
bool GidToIpv4(const std::array<uint8_t, 16>& gid, uint32_t* ip);

}  // namespace opensrd::rdma::roce
