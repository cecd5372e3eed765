// Native RDMA: opensrd's own RDMA header, carried at the start of an SRD transport message
// (the transport delivers whole messages reliably, unordered, without duplicates, so the header
// needs no sequence numbers, segment positions or checksums). docs/WIRE.md describes it byte by
// byte. Like RoCEv2 and iWARP it is a table set for the generic header codec: the protocol
// index selects it and DecodeHeaders turns a message into an RdmaCommand. Every native message
// starts with kNativeMarker, which ClassifyPacket looks for. Datagram QPs (rdma_device.cc) use
// the Only opcodes: one request message, one response message (ACK, NAK, read response or
// atomic ACK) that echoes the request's ReqID (the command's msn). Pure; thread-safe.
#pragma once
#include <cstdint>
#include <span>
#include <vector>

#include "common/status.h"
#include "rdma/command.h"
#include "rdma/header_table.h"

namespace opensrd::rdma::native {

inline constexpr uint8_t kVersion = 1;
inline constexpr size_t kBaseHeaderLen = 36;
inline constexpr size_t kMaxHeaderLen = kBaseHeaderLen + 16;  // base + AtomicETH

// The wire opcode is the RdmaOpcode's value; the acknowledgement kinds have one each.
const ProtocolTables& Tables();

Result<std::vector<uint8_t>> Encode(const RdmaCommand& cmd);   // headers + payload
Result<RdmaCommand> Decode(std::span<const uint8_t> message);  // payload points into message

}  // namespace opensrd::rdma::native
