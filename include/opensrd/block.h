// opensrd block storage: the contract every block device front and back shares.
//
// A `BlockDevice` is an asynchronous, thread-safe block device: the storage bridge's backends
// (io_uring on a file, librbd) implement it, the storage adapter's remote volume (requests over
// SRD to a bridge) implements it, and the fronts (the NBD server, the NVMe-style host queues,
// later vhost-user-blk) drive whichever one they are given. So a front is tested against a local
// file device and then runs unchanged against a remote volume.
//
// Ownership: the memory named by a request (`data`) belongs to the device until `done` runs.
// Thread-safety: Submit and Info may be called from any thread; `done` runs exactly once, on a
// thread of the device's choosing (possibly inside Submit), and must not block.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "common/status.h"

namespace opensrd::block {

enum class Op : uint8_t {
  kRead = 0,
  kWrite = 1,
  kFlush = 2,        // everything acknowledged before it reaches stable storage
  kDiscard = 3,      // the range may read back as anything afterwards (NBD TRIM)
  kWriteZeroes = 4,  // the range reads back as zeroes afterwards
};
const char* OpName(Op op);

// Request flags.
inline constexpr uint8_t kFua = 1;       // WRITE / WRITE_ZEROES: durable before completion
inline constexpr uint8_t kNoUnmap = 2;   // WRITE_ZEROES: keep the range allocated
inline constexpr uint8_t kFastZero = 4;  // WRITE_ZEROES: fail with kNotSupported-like status
                                         // (Code::kInvalidArgument) if zeroing would be slow

struct VolumeInfo {
  uint64_t size_bytes = 0;
  uint32_t block_size = 512;           // logical block: offsets and lengths are multiples
  uint32_t atomic_write_unit = 16384;  // an aligned write of at most this size is never torn
  uint32_t max_transfer = 1u << 20;    // largest single READ/WRITE
  bool read_only = false;
  bool can_flush = true;
  bool can_fua = true;
  bool can_discard = true;
  bool can_write_zeroes = true;
  bool can_fast_zero = false;
};

struct IoRequest {
  Op op = Op::kRead;
  uint8_t flags = 0;
  uint64_t offset = 0;   // bytes
  uint32_t length = 0;   // bytes (0 for kFlush)
  void* data = nullptr;  // kRead: destination; kWrite: source (const in spirit); else unused
};

// Completion status: kOk, kInvalidArgument (out of range, misaligned, unsupported), kIoError,
// kTimedOut (a remote volume stayed unreachable), kCancelled (device closed).
using IoCallback = std::function<void(Status)>;

// An allocation extent for NBD's base:allocation context.
struct Extent {
  uint64_t length = 0;
  bool hole = false;  // unallocated (reads as zeroes)
  bool zero = false;  // reads as zeroes
};

class BlockDevice {
 public:
  virtual ~BlockDevice() = default;
  // Current geometry; may change while the device is open (live resize grows size_bytes).
  virtual VolumeInfo Info() const = 0;
  virtual void Submit(const IoRequest& request, IoCallback done) = 0;
  // Allocation status of [offset, offset + length): extents covering a prefix of the range (at
  // least one byte). Devices that do not track allocation report one data extent.
  virtual Result<std::vector<Extent>> BlockStatus(uint64_t offset, uint64_t length) {
    return std::vector<Extent>{Extent{length, false, false}};
  }
};

// Checks a request against the geometry: in range, aligned to block_size, length within
// max_transfer, not a write to a read-only device, op supported. Every device calls it first.
Status ValidateRequest(const VolumeInfo& info, const IoRequest& request);

}  // namespace opensrd::block
