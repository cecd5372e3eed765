// Sample commands: one per opcode each protocol can carry, with distinctive field values and
// payloads of varied length (every pad count). Shared by the unit tests, the fuzz corpus
// generator and the pcap writer that tshark judges, so all three exercise the same set.
#pragma once
#include <vector>

#include "rdma/command.h"
#include "rdma/protocol_index.h"

namespace opensrd::rdma {

// Commands whose every field fits the protocol's headers; payloads point into static storage.
std::vector<RdmaCommand> SampleCommands(ProtocolIndex index);

}  // namespace opensrd::rdma
