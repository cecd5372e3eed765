// The protocol index (the seed's "protocol index identifying an RDMA protocol"): derived from a
// packet's encapsulation before any RDMA header is read, it selects the header tables that turn
// the packet into an RdmaCommand. Pure functions; thread-safe.
#pragma once
#include <cstdint>
#include <span>

#include "common/status.h"

namespace opensrd::rdma {

enum class ProtocolIndex : uint8_t {
  kNative,  // opensrd's own RDMA header inside an SRD transport message
  kRoce,    // RoCEv2: InfiniBand transport headers in UDP, destination port 4791
  kIwarp,   // iWARP: RDMAP over DDP over MPA over TCP
};
const char* ProtocolName(ProtocolIndex p);

// How the bytes arrived: what the shell that received them knows without parsing them.
enum class Carrier : uint8_t {
  kUdp,         // a UDP datagram's payload
  kTcp,         // bytes of a TCP stream
  kSrdMessage,  // a message delivered by opensrd's SRD transport
};

struct PacketOrigin {
  Carrier carrier = Carrier::kUdp;
  uint16_t dst_port = 0;  // UDP/TCP destination port
  bool mpa_mode = false;  // TCP: the connection finished MPA start-up (FPDUs follow)
};

inline constexpr uint16_t kRoceUdpPort = 4791;
// First byte of a native RDMA header inside an SRD message (docs/WIRE.md, native.h); only
// messages starting with this byte are classified native.
inline constexpr uint8_t kNativeMarker = 0xD5;

// Classifies one packet (or the start of a TCP stream):
//   UDP to port 4791                                 -> kRoce
//   TCP in MPA mode, or starting "MPA ID Req Frame"  -> kIwarp
//   SRD message starting with kNativeMarker          -> kNative
// anything else is rejected with kMalformed "unknown_protocol".
Result<ProtocolIndex> ClassifyPacket(const PacketOrigin& origin, std::span<const uint8_t> bytes);

}  // namespace opensrd::rdma
