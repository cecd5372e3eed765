// PayloadCopier: the transport's two payload copies, packetization (bytes of a message's
// scatter-gather list into an outgoing datagram) and reassembly (a received fragment into the
// posted receive buffer it belongs to), done either with memcpy (PayloadCopy::kDirect) or
// through the DMA engine (PayloadCopy::kEngine, include/opensrd/dma.h).
//
// The engine runs synchronously in the caller's thread: a copy posts its descriptors to the
// copier's own ring, rings the doorbell, polls the engine once and reaps the completions
// before returning, so the sans-I/O core stays single-threaded and deterministic.
//
// Memory the engine may touch is mapped per copy, as Linux's streaming DMA mappings
// (dma_map_single) are: before the descriptors are posted, the copier registers the *whole*
// objects the copy involves (each SGL element it reads, the whole datagram buffer, the whole
// posted receive buffer, the received datagram's payload) at fresh IOVA windows separated by
// unmapped guard gaps, then builds descriptors for the sub-ranges the transport computed, and
// unregisters everything once the copy has completed. A sub-range the transport got wrong
// (past the end of the receive buffer, say) therefore crosses a window's end and completes with
// kNotRegistered: the copy fails with kIoError and no byte outside the objects is touched,
// where a direct memcpy would have written past the buffer. docs/DMA.md "In the transport".
//
// Not thread-safe: owned by one endpoint (EndpointShared) and used from its driving thread.
#pragma once
#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>

#include "opensrd/transport.h"

namespace opensrd {

class PayloadCopier {
 public:
  explicit PayloadCopier(PayloadCopy mode, dma::PrefetchMode prefetch = dma::PrefetchMode::kAuto);
  ~PayloadCopier();
  PayloadCopier(const PayloadCopier&) = delete;
  PayloadCopier& operator=(const PayloadCopier&) = delete;

  PayloadCopy mode() const { return mode_; }

  // Copies bytes [offset, offset + len) of the message whose elements are `sgl` (sge_end: the
  // running totals of their lengths) to datagram[at, at + len).
  Status Gather(std::span<const Sge> sgl, std::span<const uint32_t> sge_end, uint32_t offset,
                uint32_t len, std::span<uint8_t> datagram, size_t at);

  // Copies `payload` to buffer[offset, offset + payload.size()); `buffer`/`buffer_len` is the
  // whole posted receive buffer.
  Status Place(void* buffer, size_t buffer_len, size_t offset, std::span<const uint8_t> payload);

  const PayloadCopyStats& stats() const { return stats_; }

 private:
  struct Engine;
  PayloadCopy mode_;
  std::unique_ptr<Engine> engine_;
  PayloadCopyStats stats_;
};

}  // namespace opensrd
