// The execution side of the engine, shaped after DPDK dmadev's fast path (enqueue operations,
// ring one doorbell with Submit(), collect completions with status) and after DSA's work
// queues, so that a device backend (idxd work queue, dmadev vchan) can replace the CPU one.
// The engine parses and validates descriptors and translates their IOVAs; a backend sees only
// validated operations on local addresses. Not thread-safe: one engine thread drives it.
#pragma once
#include <cstddef>
#include <cstdint>
#include <memory>

#include "opensrd/dma.h"

namespace opensrd::dma {

struct Segment {
  uint8_t* p;
  uint32_t len;
};

// A validated operation. Addresses are local and inside registered regions; src and dst of a
// copy do not overlap. The scatter-gather arrays are valid only during Enqueue() (a device
// backend writes them into its own descriptor list, as a DSA batch does).
struct Op {
  Opcode opcode;
  uint8_t flags;
  uint32_t length;
  uint8_t* src;  // kCopy, kCopyCrc, kCompare
  uint8_t* dst;  // kCopy, kCopyCrc, kFill; kCompare: the second source
  uint64_t pattern;
  uint32_t crc_seed;
  const Segment* src_sg;
  const Segment* dst_sg;
  uint16_t src_count;
  uint16_t dst_count;
  uint64_t cookie;  // returned in the result: the engine's channel and ring index
};

struct OpResult {
  uint64_t cookie;
  CompletionStatus status;
  uint8_t result;  // kCompare: 0 equal, 1 different
  uint8_t flags;   // the op's
  uint32_t bytes;
  uint64_t offset;  // kCompare: first differing byte
  uint32_t crc;
};

class DmaBackend {
 public:
  struct Info {
    const char* name;
    uint32_t opcodes;      // bit (1 << Opcode) for each supported opcode
    uint32_t max_pending;  // operations enqueued and not yet collected
    bool runs_on_cpu;      // the engine's look-ahead prefetch only helps a CPU backend
  };
  virtual ~DmaBackend() = default;
  virtual Info info() const = 0;
  // false when max_pending operations are outstanding: Submit() and collect, then retry.
  virtual bool Enqueue(const Op& op) = 0;
  // The doorbell: operations enqueued so far may start.
  virtual void Submit() = 0;
  // Up to max finished operations, in any order.
  virtual size_t Completed(OpResult* out, size_t max) = 0;
};

// Executes each operation on the calling thread inside Enqueue().
std::unique_ptr<DmaBackend> MakeCpuBackend();

// What the CPU backend does for one operation; exposed for tests and the fuzz target.
OpResult ExecuteOnCpu(const Op& op);

}  // namespace opensrd::dma
