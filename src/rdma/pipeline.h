// The receive pipeline's middle step: a protocol index selects its header tables, which turn a
// protocol's unit (after its codec removed the framing: RoCEv2 BTH..pad with the ICRC checked,
// an iWARP ULPDU from an MPA FPDU, a native SRD message) into an RdmaCommand. Pure; thread-safe.
#pragma once
#include <cstdint>
#include <span>

#include "common/status.h"
#include "rdma/command.h"
#include "rdma/header_table.h"
#include "rdma/protocol_index.h"

namespace opensrd::rdma {

const ProtocolTables& TablesFor(ProtocolIndex index);

// Decodes one unframed unit with the tables `index` selects (RoCEv2 also checks the pad).
Result<RdmaCommand> DecodeUnit(ProtocolIndex index, std::span<const uint8_t> unit);

}  // namespace opensrd::rdma
