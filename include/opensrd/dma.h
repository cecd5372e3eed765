// opensrd's DMA engine: producers post descriptors (copy, scatter-gather copy, fill, copy with
// CRC32C, compare) to rings that live in memfd memory, so a ring can be shared between
// processes; the engine parses them, executes them on a backend (the CPU today; the interface
// is shaped after Intel DSA's idxd work queues and DPDK's dmadev so a device could take over) and
// writes one completion record per descriptor. The engine only touches memory registered with it:
// descriptors name memory by IOVA (an address in the engine's registered address space, as DSA
// and dmadev do), and a descriptor naming anything else completes with an error status.
//
// The idea of US09959227B1 in software: as the engine's parser reads descriptor i, a second
// parser reads ahead along the ring (i+1..i+k) and prefetches the source buffers those
// descriptors name, so that when the engine reaches them their data is already in cache
// (optionally a helper thread touches the lines instead). PrefetchMode::kAuto measures whether
// that pays on the current workload and turns it off where it does not. docs/DMA.md has the
// design and the measured figures.
//
// Threads: a SharedRing and its RingProducer belong to one producer thread (or process); the
// engine side of the same ring belongs to the engine's thread. DmaEngine is not thread-safe:
// configure it (regions, channels) and Poll() it from one thread, or Start() its worker thread
// and leave it alone until Stop(). Regions and channels may change only while no worker runs.
#pragma once
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string_view>
#include <vector>

#include "common/status.h"

namespace opensrd::dma {

// ---- Ring memory layout (shared between processes; every field little-endian, native) ----

enum class Opcode : uint8_t {
  kInvalid = 0,  // a zeroed slot is never a valid descriptor
  kCopy = 1,     // length bytes from src to dst (must not overlap)
  kCopySg = 2,   // scatter-gather: src_count entries at src to dst_count entries at dst
  kFill = 3,     // length bytes at dst with the 8-byte pattern repeated (little-endian)
  kCopyCrc = 4,  // as kCopy, and CRC32C of the bytes (seeded with crc_seed) into the completion
  kCompare = 5,  // length bytes at src against dst; result 0 equal, 1 different (+ offset)
};

// Descriptor flags.
inline constexpr uint8_t kFlagNotify = 0x01;  // signal the channel's completion eventfd
inline constexpr uint8_t kKnownFlags = kFlagNotify;

// One scatter-gather list entry (kCopySg's lists live in registered memory).
struct SgEntry {
  uint64_t iova;
  uint32_t length;  // bytes, > 0
  uint32_t reserved;
};
static_assert(sizeof(SgEntry) == 16);
inline constexpr uint16_t kMaxSgEntries = 64;

// A descriptor, 64 bytes like DSA's. Addresses are IOVAs (see DmaEngine::RegisterRegion).
struct Descriptor {
  uint8_t opcode;        // Opcode
  uint8_t flags;         // kFlag*
  uint16_t src_count;    // kCopySg: entries in the source list
  uint32_t length;       // bytes (kCopySg: total of each list, which must agree)
  uint64_t src;          // source; kCopySg: source list
  uint64_t dst;          // destination; kCopySg: destination list; kCompare: second source
  uint64_t pattern;      // kFill
  uint64_t user_data;    // returned untouched in the completion record
  uint32_t crc_seed;     // kCopyCrc: CRC32C to extend (0 for a fresh one)
  uint16_t dst_count;    // kCopySg: entries in the destination list
  uint16_t reserved0;    // must be 0
  uint64_t reserved[2];  // must be 0
};
static_assert(sizeof(Descriptor) == 64);

enum class CompletionStatus : uint8_t {
  kPending = 0,  // not completed yet (the engine writes the record, then this byte)
  kSuccess = 1,
  kBadOpcode = 2,
  kBadField = 3,       // unknown flag, non-zero reserved field, or a field the opcode forbids
  kNullAddress = 4,    // an address of 0
  kBadLength = 5,      // zero length, or a scatter-gather total that disagrees
  kNotRegistered = 6,  // names memory outside every registered region
  kAccessDenied = 7,   // writes a region registered read-only
  kOverlap = 8,        // source and destination overlap
  kBadSgList = 9,      // entry count 0 or above kMaxSgEntries, or an empty entry
};
const char* StatusName(CompletionStatus s);

// One completion record per ring slot, written by the engine.
struct Completion {
  uint8_t status;  // CompletionStatus, stored last with release order
  uint8_t result;  // kCompare: 0 equal, 1 different
  uint16_t reserved;
  uint32_t bytes_completed;  // bytes moved, filled or compared
  uint64_t user_data;        // the descriptor's
  uint64_t offset;           // kCompare: first differing byte
  uint32_t crc;              // kCopyCrc
  uint32_t reserved2;
};
static_assert(sizeof(Completion) == 32);

// Channel-level errors the engine records in the ring header; the channel stops until reset.
enum class RingError : uint32_t {
  kNone = 0,
  kOverflow = 1,  // the producer published more descriptors than the ring holds
};

inline constexpr uint32_t kRingMagic = 0x414d4453;  // "SDMA"
inline constexpr uint16_t kRingVersion = 1;

// The first bytes of a ring's memory; descriptors follow at descriptor_offset, completion
// records at completion_offset. Indices are free-running 64-bit counters; slot = index & (cap-1).
struct RingHeader {
  uint32_t magic;
  uint16_t version;
  uint16_t descriptor_size;
  uint32_t capacity;  // descriptors, a power of two
  uint32_t completion_size;
  uint64_t descriptor_offset;
  uint64_t completion_offset;
  uint64_t total_bytes;
  alignas(64) std::atomic<uint64_t> head;      // producer: descriptors published (the doorbell)
  alignas(64) std::atomic<uint64_t> tail;      // engine: descriptors parsed (informational)
  alignas(64) std::atomic<uint64_t> consumed;  // producer: completion records reaped
  alignas(64) std::atomic<uint32_t> error;     // engine: RingError
};
static_assert(std::atomic<uint64_t>::is_always_lock_free, "rings are shared between processes");

// A mapping of a ring in this process. Create() makes the memfd; another process maps the
// same ring with Attach(fd) (e.g. after fork, or with the fd passed over a Unix socket).
class SharedRing {
 public:
  static constexpr uint32_t kMaxCapacity = 1u << 16;
  // capacity: a power of two in 1..kMaxCapacity.
  static Result<std::unique_ptr<SharedRing>> Create(uint32_t capacity);
  // Maps an existing ring; checks the header (magic, version, sizes) against the fd's size.
  static Result<std::unique_ptr<SharedRing>> Attach(int fd);
  ~SharedRing();
  SharedRing(const SharedRing&) = delete;
  SharedRing& operator=(const SharedRing&) = delete;

  int fd() const { return fd_; }
  uint32_t capacity() const { return capacity_; }
  RingHeader* header() const { return header_; }
  Descriptor* descriptors() const { return descriptors_; }
  Completion* completions() const { return completions_; }

 private:
  SharedRing() = default;
  static Result<std::unique_ptr<SharedRing>> Map(int fd, size_t bytes, bool init,
                                                 uint32_t capacity);
  int fd_ = -1;
  void* base_ = nullptr;
  size_t bytes_ = 0;
  uint32_t capacity_ = 0;
  RingHeader* header_ = nullptr;
  Descriptor* descriptors_ = nullptr;
  Completion* completions_ = nullptr;
};

// The producer's side of a ring: Enqueue() writes descriptors, Submit() publishes all of them
// with one store to head (and one eventfd write if a doorbell fd is set), Reap() collects
// completion records in ring order and frees their slots.
class RingProducer {
 public:
  explicit RingProducer(SharedRing* ring, int doorbell_fd = -1);
  // kResourceExhausted when every slot is taken (enqueued, in flight or not yet reaped).
  Status Enqueue(const Descriptor& d);
  void Submit();
  // Up to max completions, oldest first; stops at the first slot still pending.
  size_t Reap(Completion* out, size_t max);
  uint32_t free_slots() const;
  uint64_t enqueued() const { return pending_; }
  uint64_t doorbells() const { return doorbells_; }

 private:
  SharedRing* ring_;
  int doorbell_fd_;
  uint64_t pending_;   // next index to write; published as head by Submit()
  uint64_t consumed_;  // next index to reap
  uint64_t doorbells_ = 0;
};

// ---- The engine ----

enum class PrefetchMode : uint8_t {
  kOff,   // the parser alone
  kOn,    // the look-ahead parser prefetches source lines of descriptors i+1..i+k
  kAuto,  // batches of one descriptor: off; larger ones: alternate on and off over trial
          // windows and keep whichever is faster
};
// "off" | "on" | "auto"; kInvalidArgument otherwise.
Result<PrefetchMode> ParsePrefetchMode(std::string_view s);
const char* PrefetchModeName(PrefetchMode m);

struct PrefetchOptions {
  // The default follows the measurement in docs/DMA.md.
  PrefetchMode mode = PrefetchMode::kAuto;
  uint32_t lookahead = 8;              // descriptors ahead of the one executing
  uint32_t max_bytes_per_desc = 4096;  // source bytes prefetched per look-ahead descriptor
  uint32_t max_bytes_ahead = 32768;    // source bytes in flight ahead of the executor
  // A helper thread that touches (loads) source lines ahead of the executor instead of
  // prefetch instructions. It spins while work is queued: on a small machine it competes
  // with the application for a core (see docs/DMA.md).
  bool helper_thread = false;
  // How long the helper keeps spinning after it last found work before it naps (50 us naps).
  uint32_t helper_spin_us = 50;
  // kAuto: descriptors per trial window, windows kept between trials, and the gain that
  // keeps prefetch on (fraction of the cost without it).
  uint32_t auto_window = 256;
  uint32_t auto_hold_windows = 32;
  double auto_min_gain = 0.03;
};

struct EngineOptions {
  PrefetchOptions prefetch;
  uint32_t budget = 64;  // descriptors a channel may execute per Poll() round
};

enum Access : uint32_t { kRead = 1, kWrite = 2, kReadWrite = 3 };

struct ChannelOptions {
  int doorbell_fd = -1;    // eventfd the producer writes after Submit() (wakes the worker)
  int completion_fd = -1;  // eventfd the engine writes when kFlagNotify descriptors complete
};

struct ChannelStats {
  uint64_t completed = 0;  // descriptors with any status
  uint64_t errors = 0;     // descriptors completed with an error status
  uint64_t bytes = 0;      // bytes moved, filled or compared
  uint64_t prefetched_bytes = 0;
  uint64_t notifications = 0;  // completion eventfd writes
};

class DmaEngine {
 public:
  explicit DmaEngine(EngineOptions options = {});
  ~DmaEngine();
  DmaEngine(const DmaEngine&) = delete;
  DmaEngine& operator=(const DmaEngine&) = delete;

  // Makes [base, base+len) reachable by descriptors at IOVAs [iova, iova+len). Regions may not
  // overlap in IOVA space nor contain IOVA 0. Returns the region id. The memory must stay
  // mapped until the region is removed or the engine destroyed.
  Result<uint32_t> RegisterRegion(void* base, size_t len, uint64_t iova, uint32_t access);
  // In-process convenience: IOVA = virtual address.
  Result<uint32_t> RegisterRegion(void* base, size_t len, uint32_t access = kReadWrite) {
    return RegisterRegion(base, len, reinterpret_cast<uint64_t>(base), access);
  }
  Status UnregisterRegion(uint32_t id);

  // Serves ring as a channel; the ring must outlive the engine or the channel.
  Result<uint32_t> AddChannel(SharedRing* ring, ChannelOptions options = {});
  Status RemoveChannel(uint32_t id);
  // Clears a channel's RingError and resynchronises it with the ring's head (the descriptors
  // that overflowed are dropped without being executed).
  Status ResetChannel(uint32_t id);

  // One round over every channel: parse and execute up to `budget` published descriptors each.
  // Returns descriptors completed.
  size_t Poll();

  // A worker thread that polls, sleeping on the channels' doorbell fds when idle.
  Status Start();
  void Stop();

  // From the polling thread, or after Stop(): not synchronised with a running worker.
  ChannelStats stats(uint32_t channel) const;
  // What kAuto currently chose (true = prefetching); fixed modes report themselves.
  bool prefetch_active() const;
  // kAuto: trials run so far (each compares one window with and one without prefetch).
  uint64_t prefetch_trials() const;
  // kAuto: batches handed to the governor (batches of one descriptor are not; docs/DMA.md).
  uint64_t batches_governed() const;
  const char* backend_name() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace opensrd::dma
