// opensrd RDMA: a verbs-like API (after libibverbs) over opensrd's transports.
//
// Objects: protection domains (PDs) group memory regions (MRs) and queue pairs (QPs); a QP may
// only touch MRs of its own PD, locally or on behalf of a remote peer. An MR is registered with
// access flags and gets an lkey (for the owner's own work requests) and an rkey (handed to peers
// for RDMA WRITE/READ/atomics). Keys are drawn from libsodium's randombytes so a peer cannot
// guess one, and carry an 8-bit registration generation in their low byte: a key is never
// handed out while another live region holds it, and a region registered again over the same
// memory gets fresh keys (the old rkey then fails with a remote access error).
//
// Work requests complete on completion queues (CQs) with the statuses ibverbs users know.
// `RdmaDevice` implements datagram QPs over the SRD transport (reliable, unordered, any
// destination, like EFA's SRD QPs): every request is one transport message carrying the native
// RDMA header (docs/WIRE.md) and is answered by one response message (ACK, NAK, read response or
// atomic ACK), so a requester learns remote errors. RoCEv2 and iWARP connected QPs reuse the
// same executor and memory registry (src/rdma/executor.h) but are not exposed here yet.
//
// Ownership: memory named by an MR stays the caller's and must outlive the registration; a work
// request's local buffers belong to the device until its completion is polled. Thread-safety:
// none; the thread that drives the Endpoint drives the RdmaDevice (sans-I/O like Endpoint).
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>

#include "common/status.h"
#include "opensrd/transport.h"

namespace opensrd::rdma {

// MR access flags (ibv_access_flags). Local read is always allowed.
enum AccessFlags : uint32_t {
  kAccessLocalWrite = 1u << 0,
  kAccessRemoteWrite = 1u << 1,
  kAccessRemoteRead = 1u << 2,
  kAccessRemoteAtomic = 1u << 3,
};

// Completion statuses, as ibv_wc_status names them.
enum class WcStatus : uint8_t {
  kSuccess,                 // IBV_WC_SUCCESS
  kLocalLengthError,        // IBV_WC_LOC_LEN_ERR: a received SEND did not fit the receive
  kLocalProtectionError,    // IBV_WC_LOC_PROT_ERR: a local SGE's lkey, bounds or access is bad
  kRemoteAccessError,       // IBV_WC_REM_ACCESS_ERR: rkey, bounds, permission or PD at the peer
  kRemoteInvalidRequest,    // IBV_WC_REM_INV_REQ_ERR: malformed request, misaligned atomic,
                            // a SEND longer than the peer's receive
  kRemoteOperationalError,  // IBV_WC_REM_OP_ERR
  kRnrRetryExceeded,        // IBV_WC_RNR_RETRY_EXC_ERR: the peer had no receive posted
  kTransportRetryExceeded,  // IBV_WC_RETRY_EXC_ERR: the transport gave up on the peer
  kFlushed,                 // IBV_WC_WR_FLUSH_ERR: the QP was destroyed or went to error
};
const char* WcStatusName(WcStatus s);

enum class WrOpcode : uint8_t {
  kSend,
  kSendWithImm,
  kRdmaWrite,
  kRdmaWriteWithImm,
  kRdmaRead,
  kAtomicFetchAdd,  // 8 bytes at an 8-byte aligned remote address; the old value lands locally
  kAtomicCmpSwap,
};

enum class WcOpcode : uint8_t {
  kSend,
  kRdmaWrite,
  kRdmaRead,
  kFetchAdd,
  kCompareSwap,
  kRecv,             // a SEND or SEND_WITH_IMM arrived
  kRecvRdmaWithImm,  // an RDMA_WRITE_WITH_IMM arrived (consumes a receive, no data in it)
};

using PdHandle = uint32_t;
using CqHandle = uint32_t;
using QpNum = uint32_t;

// One local buffer of a work request: an address inside an MR registered with `lkey`.
struct LocalSge {
  uint64_t addr = 0;
  uint32_t length = 0;
  uint32_t lkey = 0;
};

struct MemoryRegion {
  void* addr = nullptr;
  size_t length = 0;
  uint32_t access = 0;
  PdHandle pd = 0;
  uint32_t lkey = 0;
  uint32_t rkey = 0;
};

struct SendWr {
  uint64_t wr_id = 0;
  WrOpcode opcode = WrOpcode::kSend;
  LocalSge sge;  // data to send or write; where READ data or an atomic's old value lands
  uint32_t imm = 0;
  // Destination (datagram QP): a transport peer and a QP number on it.
  PeerId peer = 0;
  QpNum dest_qp = 0;
  // RDMA and atomics: the remote address and rkey.
  uint64_t remote_addr = 0;
  uint32_t rkey = 0;
  uint64_t compare_add = 0;  // FETCH_ADD: the addend; CMP_SWAP: the compare value
  uint64_t swap = 0;         // CMP_SWAP: the new value
};

struct RecvWr {
  uint64_t wr_id = 0;
  LocalSge sge;
};

struct WorkCompletion {
  uint64_t wr_id = 0;
  WcStatus status = WcStatus::kSuccess;
  WcOpcode opcode = WcOpcode::kSend;
  uint32_t byte_len = 0;  // receives and READs: bytes placed
  bool with_imm = false;
  uint32_t imm = 0;
  QpNum qp = 0;         // the local QP
  PeerId src_peer = 0;  // receives: who sent it
  QpNum src_qp = 0;
};

struct DeviceConfig {
  // Largest SEND, WRITE or READ; the device posts `recv_pool` transport receive buffers of this
  // size plus the native header.
  uint32_t max_message = 1u << 20;
  uint32_t recv_pool = 64;
  // Times a request refused with RNR (no receive posted at the target QP) is retried before it
  // completes kRnrRetryExceeded; 7 means "forever", as in InfiniBand.
  uint32_t rnr_retry = 7;
  Micros rnr_delay_us = 100;
  // WRITE data and READ responses land directly in registered memory through the transport's
  // placement hook when a message's first packet arrives first (checked then: key, PD, access,
  // bounds); otherwise they are copied from the receive pool.
  bool direct_placement = true;
};

struct DeviceStats {
  uint64_t requests_sent = 0;
  uint64_t requests_executed = 0;
  uint64_t naks_sent = 0;
  uint64_t rnr_naks_sent = 0;
  uint64_t rnr_retries = 0;
  uint64_t malformed_dropped = 0;  // transport messages that were not a valid native header
  uint64_t stray_responses = 0;    // responses matching no outstanding request
  uint64_t placed_direct = 0;      // messages whose data the transport placed in registered memory
  // DMA engine descriptors the executor's data moves posted (0 when the endpoint copies with
  // memcpy: EndpointConfig::payload_copy decides for the device too).
  uint64_t copy_descriptors = 0;
};

// Datagram QPs over one SRD transport Endpoint. The device creates its own transport CQ, SQ and
// receive pool on `ep`, which must outlive it and must not be used for other messages. The
// pool's buffers stay posted on `ep`: once the device is destroyed, `ep` must not be driven
// again (destroy the device last, or together with the endpoint).
class RdmaDevice {
 public:
  RdmaDevice(Endpoint& ep, const DeviceConfig& config = {});
  ~RdmaDevice();
  RdmaDevice(const RdmaDevice&) = delete;
  RdmaDevice& operator=(const RdmaDevice&) = delete;

  // ---- verbs objects ----
  PdHandle AllocPd();
  Status DeallocPd(PdHandle pd);  // fails while MRs or QPs of the PD exist
  Result<MemoryRegion> RegMr(PdHandle pd, void* addr, size_t length, uint32_t access);
  // kResourceExhausted ("busy") while incoming data is being placed into the region; retry
  // after Progress.
  Status DeregMr(uint32_t lkey);
  CqHandle CreateCq();
  // A datagram QP; QP numbers start at 1 in creation order (a peer's first QP is its
  // well-known QP 1).
  Result<QpNum> CreateQp(PdHandle pd, CqHandle send_cq, CqHandle recv_cq);
  // Completes every outstanding work request of the QP with kFlushed, then destroys it.
  Status DestroyQp(QpNum qp);

  // ---- data path ----
  // An invalid local SGE (lkey, bounds, access) is reported as a kLocalProtectionError
  // completion, as hardware does; a bad QP, opcode or size is an error Status.
  Status PostSend(QpNum qp, const SendWr& wr, Nanos now);
  Status PostRecv(QpNum qp, const RecvWr& wr);
  size_t PollCq(CqHandle cq, std::span<WorkCompletion> out);

  // ---- driving (after the Endpoint's own I/O step) ----
  // Takes the transport's completions: executes arriving requests, sends responses, completes
  // work requests, resends RNR-refused requests whose delay passed. Returns the number of
  // things done (non-zero: the endpoint may have datagrams to send).
  size_t Progress(Nanos now);
  // Earliest time Progress has timer work (RNR retries), or kNever.
  Nanos NextTimeout() const;
  bool Busy() const;  // work requests outstanding

  DeviceStats stats() const;

 private:
  class Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace opensrd::rdma
