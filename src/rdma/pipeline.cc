#include "rdma/pipeline.h"

#include "rdma/iwarp.h"
#include "rdma/native.h"
#include "rdma/roce.h"

namespace opensrd::rdma {

const ProtocolTables& TablesFor(ProtocolIndex index) {
  switch (index) {
    case ProtocolIndex::kRoce:
      return roce::Tables();
    case ProtocolIndex::kIwarp:
      return iwarp::Tables();
    case ProtocolIndex::kNative:
      break;
  }
  return native::Tables();
}

Result<RdmaCommand> DecodeUnit(ProtocolIndex index, std::span<const uint8_t> unit) {
  // RoCEv2's pad count lives in the BTH but trims the payload: its codec's one extra step.
  if (index == ProtocolIndex::kRoce) return roce::DecodeTransport(unit);
  return DecodeHeaders(TablesFor(index), unit);
}

}  // namespace opensrd::rdma
