// The storage adapter's host interface: NVMe-style submission and completion queues in shared
// memory (seed US10162793B1: the host speaks its local bus protocol; the adapter translates).
//
// A host process drives the adapter as it would an NVMe device: it writes 64-byte commands into
// a submission queue (SQ) and rings the queue's tail doorbell; the adapter executes them on its
// volume and writes 16-byte completion entries (CQEs) with a phase bit into the paired
// completion queue (CQ); the host consumes them and rings the CQ head doorbell. Data buffers
// live in the region's data area, which both processes map: a command names its buffer by
// offset into that area (where NVMe names physical pages with PRPs).
//
// The region is a memfd the adapter creates; a host gets it, with a "kick" eventfd (wakes an
// adapter that went to sleep when idle) and an "interrupt" eventfd (the adapter signals it after
// posting completions), over a unix socket (SCM_RIGHTS). `NvmeHost` below is the host library.
//
// Layout (little-endian, as NVMe): a 4 KiB header (RegionHeader, then per-queue doorbells at
// 1024 + 256 * q), then per queue its SQ and CQ (each queue's pair rounded up to 4 KiB), then
// the data area. All fields shared between the processes are accessed atomically.
//
// Thread-safety: one NvmeHost per host thread (a queue has one producer); see NvmeController
// (src/block/nvme_controller.h) for the adapter side.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <string>

#include "common/status.h"

namespace opensrd::nvme {

inline constexpr uint32_t kRegionMagic = 0x4F4E5651;  // "ONVQ"
inline constexpr uint32_t kRegionVersion = 1;
inline constexpr uint16_t kMaxQueues = 8;
inline constexpr uint32_t kNamespaceId = 1;  // the one namespace: the adapter's volume

// NVM command set opcodes (NVMe base spec numbering).
enum Opcode : uint8_t {
  kFlush = 0x00,
  kWrite = 0x01,
  kRead = 0x02,
  kWriteZeroes = 0x08,
  kDatasetManagement = 0x09,  // with the deallocate attribute: discard ranges
};

// cdw12 bits (READ / WRITE / WRITE_ZEROES): number of logical blocks, 0-based, in bits 0-15.
inline constexpr uint32_t kCdw12Fua = 1u << 30;
inline constexpr uint32_t kCdw12Deallocate = 1u << 25;  // WRITE_ZEROES may unmap
// Dataset management: cdw10 bits 0-7 = ranges - 1; cdw11 bit 2 = deallocate.
inline constexpr uint32_t kDsmDeallocate = 1u << 2;

struct Command {
  uint8_t opcode = 0;
  uint8_t flags = 0;
  uint16_t cid = 0;  // command id, echoed in the completion
  uint32_t nsid = kNamespaceId;
  uint64_t rsvd = 0;
  uint64_t mptr = 0;
  uint64_t data_offset = 0;  // PRP1's place: the buffer's offset in the data area
  uint64_t data_len = 0;     // PRP2's place: the buffer's length in bytes
  uint32_t cdw10 = 0;        // READ/WRITE/WRITE_ZEROES: starting LBA, low 32 bits
  uint32_t cdw11 = 0;        // starting LBA, high 32 bits
  uint32_t cdw12 = 0;
  uint32_t cdw13 = 0, cdw14 = 0, cdw15 = 0;
};
static_assert(sizeof(Command) == 64);

struct Completion {
  uint32_t dw0 = 0;
  uint32_t rsvd = 0;
  uint16_t sq_head = 0;  // how far the adapter has consumed the SQ
  uint16_t sq_id = 0;
  uint16_t cid = 0;
  uint16_t status = 0;  // bit 0: phase; bits 1-8: status code; 9-11: status code type; 15: DNR
};
static_assert(sizeof(Completion) == 16);

// A dataset management range (16 bytes, in the data area).
struct DsmRange {
  uint32_t attributes = 0;
  uint32_t nlb = 0;  // blocks (not 0-based)
  uint64_t slba = 0;
};
static_assert(sizeof(DsmRange) == 16);

// Status = (type << 9) | (code << 1) | phase; DNR (do not retry) is bit 15.
inline constexpr uint16_t StatusField(uint8_t type, uint8_t code, bool dnr) {
  return static_cast<uint16_t>((type << 9) | (code << 1) | (dnr ? 0x8000 : 0));
}
inline constexpr uint16_t kStatusMask = 0xFFFE;
inline constexpr uint16_t kSuccess = 0;
inline constexpr uint16_t kInvalidOpcode = StatusField(0, 0x01, true);
inline constexpr uint16_t kInvalidField = StatusField(0, 0x02, true);
inline constexpr uint16_t kDataTransferError = StatusField(0, 0x04, false);
inline constexpr uint16_t kInternalError = StatusField(0, 0x06, false);
inline constexpr uint16_t kInvalidNamespace = StatusField(0, 0x0B, true);
inline constexpr uint16_t kLbaOutOfRange = StatusField(0, 0x80, true);
inline constexpr uint16_t kWriteToReadOnly = StatusField(1, 0x82, true);
inline constexpr uint16_t kWriteFault = StatusField(2, 0x80, false);
inline constexpr uint16_t kUnrecoveredReadError = StatusField(2, 0x81, false);
inline constexpr uint16_t kAccessDenied = StatusField(2, 0x86, true);
// Human words for a status (without the phase bit).
const char* StatusName(uint16_t status);

// The region's first 4 KiB. The adapter writes it; hosts read it (geometry may change: a live
// resize bumps `generation` after updating `ns_blocks`).
struct RegionHeader {
  uint32_t magic;
  uint32_t version;
  uint16_t num_queues;
  uint16_t sq_entries;
  uint16_t cq_entries;
  uint16_t rsvd0;
  uint32_t block_size;
  uint32_t atomic_write_unit;  // bytes
  uint32_t max_transfer;       // bytes
  uint32_t generation;
  uint64_t ns_blocks;
  uint64_t data_offset;
  uint64_t data_size;
  uint64_t region_size;
};
inline constexpr size_t kDoorbellBase = 1024;
inline constexpr size_t kDoorbellStride = 256;
// Per-queue doorbells and flags, each on its own cache line.
struct Doorbells {
  alignas(64) uint32_t sq_tail;   // host writes
  alignas(64) uint32_t cq_head;   // host writes
  alignas(64) uint32_t sleeping;  // adapter writes: 1 while it waits for a kick
  alignas(64) uint32_t rsvd;
};
static_assert(sizeof(Doorbells) == kDoorbellStride);

// Where things are, for both sides.
struct Layout {
  uint16_t num_queues = 1;
  uint16_t sq_entries = 256;
  uint16_t cq_entries = 256;
  uint64_t data_size = 64u << 20;
  size_t QueueBytes() const;
  size_t SqOffset(uint16_t q) const;
  size_t CqOffset(uint16_t q) const;
  size_t DataOffset() const;
  size_t RegionSize() const;
};

// ---- the host library ----

struct NamespaceInfo {
  uint64_t blocks = 0;
  uint32_t block_size = 0;
  uint32_t atomic_write_unit = 0;
  uint32_t max_transfer = 0;
};

class NvmeHost {
 public:
  // Connects to an adapter's NVMe socket (`opensrd adapter --nvme unix:PATH`) and maps its
  // region. Only one host at a time: a second connection is refused.
  static Result<std::unique_ptr<NvmeHost>> Connect(const std::string& socket_path);
  ~NvmeHost();

  NamespaceInfo Info() const;
  uint16_t num_queues() const;
  uint16_t sq_entries() const;
  // The shared data area: command buffers are offsets into it.
  std::span<uint8_t> data();

  // Queues a command on SQ `q` (cid is the caller's) and rings the doorbell. A full queue
  // (the adapter has not consumed sq_entries - 1 commands yet) is kResourceExhausted.
  Status Submit(uint16_t q, const Command& cmd);
  // Moves completions of CQ `q` into `out`; returns how many.
  size_t Reap(uint16_t q, std::span<Completion> out);
  // Blocks until the adapter signals completions or `timeout_ms` passes.
  void Wait(int timeout_ms);

 private:
  class Impl;
  explicit NvmeHost(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

// Command builders.
Command ReadCommand(uint16_t cid, uint64_t slba, uint32_t blocks, uint64_t data_offset,
                    uint32_t block_size);
Command WriteCommand(uint16_t cid, uint64_t slba, uint32_t blocks, uint64_t data_offset,
                     uint32_t block_size, bool fua = false);
Command FlushCommand(uint16_t cid);
Command WriteZeroesCommand(uint16_t cid, uint64_t slba, uint32_t blocks, bool deallocate);
Command DiscardCommand(uint16_t cid, uint64_t ranges_offset, uint32_t num_ranges);

}  // namespace opensrd::nvme
