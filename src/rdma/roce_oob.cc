#include "rdma/roce_oob.h"

#include <cstdio>

namespace opensrd::rdma::roce {
namespace {

Status Bad(const char* token, const char* what) {
  return Status(Code::kMalformed, std::string(token) + ": " + what);
}

// Reads `digits` hex digits at `pos`; advances it. False on any other character.
bool Hex(std::span<const uint8_t> m, size_t* pos, int digits, uint64_t* out) {
  uint64_t v = 0;
  for (int i = 0; i < digits; ++i) {
    uint8_t c = m[(*pos)++];
    int d = c >= '0' && c <= '9'   ? c - '0'
            : c >= 'a' && c <= 'f' ? c - 'a' + 10
            : c >= 'A' && c <= 'F' ? c - 'A' + 10
                                   : -1;
    if (d < 0) return false;
    v = v << 4 | uint64_t(d);
  }
  *out = v;
  return true;
}

bool Colon(std::span<const uint8_t> m, size_t* pos) {
  return m[(*pos)++] == ':';
}

}  // namespace

std::string FormatPingpongDest(const PingpongDest& d) {
  char msg[kPingpongDestLen];
  int n =
      std::snprintf(msg, sizeof msg, "%04x:%06x:%06x:", d.lid, d.qpn & 0xFFFFFF, d.psn & 0xFFFFFF);
  for (uint8_t b : d.gid) n += std::snprintf(msg + n, sizeof msg - size_t(n), "%02x", b);
  return std::string(msg, kPingpongDestLen);
}

Result<PingpongDest> ParsePingpongDest(std::span<const uint8_t> m) {
  if (m.size() != kPingpongDestLen) return Bad("bad_length", "pingpong address is 52 bytes");
  PingpongDest d;
  size_t pos = 0;
  uint64_t v;
  if (!Hex(m, &pos, 4, &v) || !Colon(m, &pos)) return Bad("bad_format", "LID");
  d.lid = uint16_t(v);
  if (!Hex(m, &pos, 6, &v) || !Colon(m, &pos)) return Bad("bad_format", "QPN");
  d.qpn = uint32_t(v);
  if (!Hex(m, &pos, 6, &v) || !Colon(m, &pos)) return Bad("bad_format", "PSN");
  d.psn = uint32_t(v);
  for (uint8_t& b : d.gid) {
    if (!Hex(m, &pos, 2, &v)) return Bad("bad_format", "GID");
    b = uint8_t(v);
  }
  if (m[pos] != 0) return Bad("bad_format", "no NUL at the end");
  return d;
}

std::string FormatPerftestDest(const PerftestDest& d) {
  char msg[kPerftestDestLen];
  int n = std::snprintf(msg, sizeof msg, "%04x:%04x:%06x:%06x:%08x:%016llx:", d.lid, d.out_reads,
                        d.qpn & 0xFFFFFF, d.psn & 0xFFFFFF, d.rkey,
                        static_cast<unsigned long long>(d.vaddr));
  for (uint8_t b : d.gid) n += std::snprintf(msg + n, sizeof msg - size_t(n), "%02x:", b);
  std::snprintf(msg + n, sizeof msg - size_t(n), "%08x:", d.srqn);
  return std::string(msg, kPerftestDestLen);
}

Result<PerftestDest> ParsePerftestDest(std::span<const uint8_t> m) {
  if (m.size() != kPerftestDestLen) return Bad("bad_length", "perftest address is 108 bytes");
  PerftestDest d;
  size_t pos = 0;
  uint64_t v;
  const struct {
    int digits;
    const char* name;
  } fields[] = {{4, "LID"}, {4, "out_reads"}, {6, "QPN"}, {6, "PSN"}, {8, "rkey"}, {16, "VA"}};
  uint64_t vals[6];
  for (int i = 0; i < 6; ++i) {
    if (!Hex(m, &pos, fields[i].digits, &vals[i]) || !Colon(m, &pos)) {
      return Bad("bad_format", fields[i].name);
    }
  }
  d.lid = uint16_t(vals[0]);
  d.out_reads = uint16_t(vals[1]);
  d.qpn = uint32_t(vals[2]);
  d.psn = uint32_t(vals[3]);
  d.rkey = uint32_t(vals[4]);
  d.vaddr = vals[5];
  for (uint8_t& b : d.gid) {
    if (!Hex(m, &pos, 2, &v) || !Colon(m, &pos)) return Bad("bad_format", "GID");
    b = uint8_t(v);
  }
  if (!Hex(m, &pos, 8, &v) || !Colon(m, &pos)) return Bad("bad_format", "SRQN");
  d.srqn = uint32_t(v);
  if (m[pos] != 0) return Bad("bad_format", "no NUL at the end");
  return d;
}

std::array<uint8_t, 16> Ipv4MappedGid(uint32_t ip) {
  return {0,
          0,
          0,
          0,
          0,
          0,
          0,
          0,
          0,
          0,
          0xFF,
          0xFF,
          uint8_t(ip >> 24),
          uint8_t(ip >> 16),
          uint8_t(ip >> 8),
          uint8_t(ip)};
}

bool GidToIpv4(const std::array<uint8_t, 16>& gid, uint32_t* ip) {
  for (int i = 0; i < 10; ++i) {
    if (gid[i] != 0) return false;
  }
  if (gid[10] != 0xFF || gid[11] != 0xFF) return false;
  *ip = uint32_t(gid[12]) << 24 | uint32_t(gid[13]) << 16 | uint32_t(gid[14]) << 8 | gid[15];
  return true;
}

}  // namespace opensrd::rdma::roce
