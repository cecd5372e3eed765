// Internal to TransportContext's files (context*.cc): constants and serial-number helpers.
#pragma once
#include <cstdint>

#include "opensrd/transport.h"
#include "transport/wire.h"

namespace opensrd::context_detail {

// Per packet on the path: long enough (~100 packets) that a 5% loss rate reads steadily above
// the 2% noise floor instead of dipping to zero between losses.
inline constexpr double kLossEwmaGain = 1.0 / 128;
inline constexpr uint32_t kMaxRtoBackoff = 6;
inline constexpr uint64_t kPacketOverhead = wire::kDataHeaderLen + wire::kCrcLen;
// Idle this long, a context gives back the memory it held for traffic (ring, queues, bitmap).
inline constexpr Nanos kTrimAfter = 100'000'000;  // 100 ms

// Serial-number helpers: PSNs wrap at 2^32.
inline bool InRange(uint32_t psn, uint32_t begin, uint32_t end) {
  return psn - begin < end - begin;
}

}  // namespace opensrd::context_detail
