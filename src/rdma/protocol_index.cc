#include "rdma/protocol_index.h"

#include <cstring>

#include "rdma/mpa.h"

namespace opensrd::rdma {

const char* ProtocolName(ProtocolIndex p) {
  switch (p) {
    case ProtocolIndex::kNative:
      return "native";
    case ProtocolIndex::kRoce:
      return "roce";
    case ProtocolIndex::kIwarp:
      return "iwarp";
  }
  return "?";
}

Result<ProtocolIndex> ClassifyPacket(const PacketOrigin& origin, std::span<const uint8_t> bytes) {
  switch (origin.carrier) {
    case Carrier::kUdp:
      if (origin.dst_port == kRoceUdpPort) return ProtocolIndex::kRoce;
      break;
    case Carrier::kTcp:
      if (origin.mpa_mode) return ProtocolIndex::kIwarp;
      if (bytes.size() >= mpa::kKeyLen &&
          std::memcmp(bytes.data(), mpa::kRequestKey, mpa::kKeyLen) == 0) {
        return ProtocolIndex::kIwarp;
      }
      break;
    case Carrier::kSrdMessage:
      if (!bytes.empty() && bytes[0] == kNativeMarker) return ProtocolIndex::kNative;
      break;
  }
  return Status(Code::kMalformed, "unknown_protocol: no RDMA protocol matches the encapsulation");
}

}  // namespace opensrd::rdma
