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
// atomic ACK), so a requester learns remote errors. `RcDevice` implements connected QPs over
// RoCEv2 (reliable connection on UDP 4791, connected through the InfiniBand CM on QP1 as
// rdma_cm does) and iWARP (MPA over kernel TCP); both reuse the same executor and memory
// registry (src/rdma/executor.h), so every protocol applies one set of access checks.
//
// Ownership: memory named by an MR stays the caller's and must outlive the registration; a work
// request's local buffers belong to the device until its completion is polled. Thread-safety:
// none; the thread that drives the Endpoint drives the RdmaDevice (sans-I/O like Endpoint), and
// one thread drives an RcDevice (it owns its sockets: Poll does the I/O).
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <vector>

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

// ---- Connected queue pairs: RoCEv2 and iWARP ----------------------------------------------

enum class RcProtocol : uint8_t {
  kRoce,   // RoCEv2 RC over IPv4/UDP; connections through the IB CM (QP1), as rdma_cm's
  kIwarp,  // iWARP: MPA revision 2 (enhanced) over kernel TCP, as siw and rdma_cm's. RDMAP
           // (RFC 5040) has no atomics and no immediate data: PostSend refuses those opcodes
           // with kInvalidArgument. SENDs and WRITEs complete once handed to TCP (as in siw),
           // so a WRITE the peer refuses completes kSuccess and the connection then ends
           // (the peer's TERMINATE: kDisconnected, the QP flushed).
};
const char* RcProtocolName(RcProtocol p);

struct RcDeviceConfig {
  RcProtocol protocol = RcProtocol::kRoce;
  // The local IPv4 address and port. RoCEv2: the UDP port every packet arrives on; both sides
  // of a connection use the same one (4791 for every real peer; devices on one host differ in
  // address). iWARP: the TCP port Listen accepts on (0: any, for a device that only connects).
  NetAddr local;
  // RoCEv2: the rdma_cm port whose service ID Listen and Connect use (rping's default 7174).
  // iWARP has no service IDs: the peer's TCP port in Connect is the service.
  uint16_t cm_port = 7174;
  // RoCEv2: how long the CM waits for an answer before it resends a REQ, REP or DREQ (15
  // resends, then kUnreachable). Linux's CM under a TCG guest needs about a second.
  uint32_t cm_resend_ms = 1000;
  // Largest RDMA READ this side serves; a larger request is refused (NAK / TERMINATE) before
  // any memory is set aside for it.
  uint32_t max_read_bytes = 16u << 20;
  // Passive side: connections pending (a request not yet accepted or rejected) or open at
  // once. A request beyond it is refused at once (RoCEv2: a REJ; iWARP: the TCP connection is
  // closed before its MPA request is read) and counted in connections_refused, so a peer
  // cannot make the device hold unbounded state.
  uint32_t max_connections = 64;
  // iWARP, passive side: an accepted TCP connection must deliver its whole MPA request within
  // this (milliseconds), or it is closed and counted in connections_refused, so a silent peer
  // cannot hold one of the max_connections slots.
  uint32_t connect_request_timeout_ms = 5000;
  // Passive side: a connection request the application neither accepts nor rejects within
  // this (milliseconds) is refused (RoCEv2: REJ, reason timeout; iWARP: an MPA reply with the
  // reject flag), counted in connections_refused, and Accept/Reject of it fail with kNotFound:
  // an application that sits on a request cannot make the peer wait or hold a slot forever.
  uint32_t answer_timeout_ms = 10000;
  // iWARP, active side: the TCP connect and the peer's MPA reply must both arrive within this
  // (milliseconds), or the QP gets kUnreachable and what was posted on it flushes, so a peer
  // that accepts TCP and never answers cannot hold a connecting QP. (RoCEv2's bound is its CM:
  // cm_resend_ms times 16.)
  uint32_t connect_timeout_ms = 10000;
  // RoCEv2: the path MTU this side asks for when it connects (payload bytes per packet: 256 to
  // 4096; an accepted connection runs at the one its REQ asked for, since the REP carries none),
  // the local ACK timeout and the retry counts (7: forever, as in InfiniBand). iWARP: TCP
  // retransmits; these do not apply.
  uint32_t mtu = 1024;
  uint64_t ack_timeout_us = 67'109;
  uint8_t retry_cnt = 7;
  uint8_t rnr_retry = 7;
  // RoCEv2: read whole IPv4 packets from a raw socket to check every received ICRC (needs
  // CAP_NET_RAW; without it the device reads its UDP socket and counts icrc_unchecked).
  bool raw_receive = true;
  // RoCEv2, fault injection for tests: the probability that a queue pair's packet is held
  // back and sent after its next one (or alone after 1 ms), and the seed of those choices
  // (0: random; CountersJson reports the one used).
  double reorder = 0;
  uint64_t reorder_seed = 0;
  // RDMA READs (and RoCEv2 atomics) this side serves at once and issues at once: the IRD and
  // ORD of MPA's enhanced start-up (iWARP) or the CM's responder resources and initiator depth
  // (RoCEv2). rping asks for 1 and 1.
  uint16_t ird = 16;
  uint16_t ord = 16;
  // iWARP: payload bytes per DDP segment (one FPDU).
  uint32_t max_segment = 16384;
  // Record every packet (RoCEv2) or TCP segment (iWARP) sent and received, with the real
  // addresses and ports, to this pcap file. Empty: none.
  std::string pcap;
};

enum class CmEventKind : uint8_t {
  kConnectRequest,  // passive: a peer asks to connect (Accept or Reject `request`)
  kEstablished,     // the QP is connected: work requests flow
  kRejected,        // active: the peer refused (REJ, or an MPA reply with the reject flag)
  kUnreachable,     // active: no answer after every resend, or the TCP connect failed
  kDisconnected,    // the peer disconnected, or the connection broke (the QP is flushed)
};
const char* CmEventName(CmEventKind k);

struct CmEvent {
  CmEventKind kind = CmEventKind::kEstablished;
  uint32_t request = 0;  // kConnectRequest: the handle Accept / Reject take
  QpNum qp = 0;          // the local QP the event is about (0 for kConnectRequest)
  NetAddr peer;          // the peer's address (IPv4; port: its UDP source / TCP port)
  // kConnectRequest: the request's private data; kEstablished on the active side: the
  // accepting side's. RoCEv2's CM messages have a fixed size: the bytes given, then zeros (as
  // rdma_cm delivers them).
  std::vector<uint8_t> private_data;
  std::string reason;  // kRejected ("reason N", the CM's code), kUnreachable, kDisconnected: why
};

struct RcDeviceStats {
  uint64_t connections_requested = 0;  // passive: requests seen
  uint64_t connections_accepted = 0;
  uint64_t connections_refused = 0;  // passive: over max_connections, malformed, timed out
  uint64_t packets_sent = 0;         // RoCEv2 packets or iWARP FPDUs
  uint64_t packets_received = 0;
  uint64_t retransmitted_packets = 0;  // RoCEv2 go-back-N resends
  uint64_t timeouts = 0;               // RoCEv2 local ACK timeouts
  uint64_t duplicates = 0;             // RoCEv2 requests received again (re-acknowledged)
  uint64_t naks_sent = 0;
  uint64_t naks_received = 0;
  uint64_t rnr_naks_sent = 0;
  uint64_t terminates_sent = 0;  // iWARP
  uint64_t terminates_received = 0;
  uint64_t requests_executed = 0;  // remote operations served
  uint64_t icrc_checked = 0;       // RoCEv2
  uint64_t icrc_bad = 0;
  uint64_t icrc_unchecked = 0;
  uint64_t malformed_dropped = 0;
};

// Connected (RC) queue pairs of one protocol, with an rdma_cm-like connection interface, on
// the sockets this device opens. The verbs objects and the data path behave as RdmaDevice's:
// the same access checks (MemoryRegistry), the same completion statuses; SendWr::peer and
// dest_qp are not used (a connected QP has one peer). A QP is created unconnected; Connect
// (active) or Accept (passive, after a kConnectRequest event) ties it to a peer; work requests
// posted before kEstablished wait for it. DestroyQp and a lost connection flush every
// outstanding work request and posted receive (kFlushed), as a QP in the error state does.
class RcDevice {
 public:
  static Result<std::unique_ptr<RcDevice>> Open(const RcDeviceConfig& config);
  ~RcDevice();
  RcDevice(const RcDevice&) = delete;
  RcDevice& operator=(const RcDevice&) = delete;

  // ---- verbs objects ----
  PdHandle AllocPd();
  Status DeallocPd(PdHandle pd);  // fails while MRs or QPs of the PD exist
  Result<MemoryRegion> RegMr(PdHandle pd, void* addr, size_t length, uint32_t access);
  Status DeregMr(uint32_t lkey);
  CqHandle CreateCq();
  Result<QpNum> CreateQp(PdHandle pd, CqHandle send_cq, CqHandle recv_cq);
  // Disconnects the QP if it is connected, completes every outstanding work request and
  // posted receive with kFlushed (on its CQs), then destroys it.
  Status DestroyQp(QpNum qp);

  // ---- connections (after rdma_cm) ----
  // Passive: accept connection requests (iWARP: listen on the configured TCP port).
  Status Listen();
  uint16_t local_port() const;  // the UDP port, or the TCP port Listen bound
  // Active: connects an unconnected QP to `peer` (RoCEv2: the peer device's IP and UDP port;
  // iWARP: its IP and TCP port) with up to 56 bytes of private data (RoCEv2; iWARP allows
  // 512). The outcome arrives as kEstablished, kRejected or kUnreachable.
  Status Connect(QpNum qp, const NetAddr& peer, std::span<const uint8_t> private_data);
  // Passive: answers a kConnectRequest with an unconnected QP and private data for the peer.
  Status Accept(uint32_t request, QpNum qp, std::span<const uint8_t> private_data);
  Status Reject(uint32_t request);
  // Ends the connection (RoCEv2: DREQ; iWARP: the TCP stream is closed); the QP is flushed
  // and reports kDisconnected.
  Status Disconnect(QpNum qp);
  // The next connection event, if any (false: none).
  bool PollCmEvent(CmEvent* out);

  // ---- data path ----
  Status PostSend(QpNum qp, const SendWr& wr);
  Status PostRecv(QpNum qp, const RecvWr& wr);
  size_t PollCq(CqHandle cq, std::span<WorkCompletion> out);

  // ---- driving ----
  // Sends what is queued, waits up to timeout_ms for packets or connections (less if a timer
  // is due sooner), handles them and the timers, sends again. kIoError on a socket failure.
  Status Poll(int timeout_ms);

  RcDeviceStats stats() const;
  // The protocol's own counters (shell and queue pairs), for --json and metrics.
  std::string CountersJson() const;
  // Closes the pcap file (every record reaches it; later packets are not recorded) and
  // returns its figures as JSON {file, captured, written, dropped, write_errors}; "null"
  // when the device records nothing.
  std::string CloseCapture();

  class Impl;

 private:
  explicit RcDevice(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace opensrd::rdma
