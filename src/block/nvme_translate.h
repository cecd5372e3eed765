// Translation of one NVMe-style command into block requests: the adapter's "local bus protocol
// -> block device" step, as a pure function so it can be unit-tested and fuzzed on its own.
// Every field a host controls is checked against the namespace and the shared data area first:
// a translation never names memory outside `data` or blocks outside the namespace.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "opensrd/block.h"
#include "opensrd/nvme_queue.h"

namespace opensrd::nvme {

struct Geometry {
  uint64_t ns_blocks = 0;
  uint32_t block_size = 512;
  uint32_t max_transfer = 1u << 20;
  bool read_only = false;
};

struct Translation {
  uint16_t status = kSuccess;              // not kSuccess: complete at once with it, submit nothing
  std::vector<block::IoRequest> requests;  // empty with kSuccess: nothing to do (a hint)
};

Translation Translate(const Command& c, const Geometry& g, std::span<uint8_t> data);

// The completion status for a device's outcome of a command with this opcode.
uint16_t StatusFor(const Status& s, uint8_t opcode);

}  // namespace opensrd::nvme
