// Native RDMA header tables: the placeholder layout for RDMA carried in SRD transport messages,
// until the native RDMA transport settles its header (docs/WIRE.md will then describe it). It
// exists to show the pipeline's contract: a protocol is a table set plus framing, and the
// generic codec needs nothing else. Every native message starts with kNativeMarker, which is
// what ClassifyPacket looks for. Pure; thread-safe.
#pragma once
#include <cstdint>
#include <span>
#include <vector>

#include "common/status.h"
#include "rdma/command.h"
#include "rdma/header_table.h"

namespace opensrd::rdma::native {

inline constexpr uint8_t kVersion = 1;
inline constexpr size_t kBaseHeaderLen = 32;

// The wire opcode is the RdmaOpcode's value; the acknowledgement kinds have one each.
const ProtocolTables& Tables();

Result<std::vector<uint8_t>> Encode(const RdmaCommand& cmd);   // headers + payload
Result<RdmaCommand> Decode(std::span<const uint8_t> message);  // payload points into message

}  // namespace opensrd::rdma::native
