// opensrd SRD transport: reliable, out-of-order, multipath datagram delivery.
//
// `Endpoint` is the sans-I/O protocol core. It never reads a clock, touches a socket or starts a
// thread: the caller feeds it datagrams and the current time and drains the datagrams and the
// next timer deadline it produces. The same object therefore runs over real UDP sockets
// (`UdpEndpoint`, src/transport/udp_endpoint.h) and inside the deterministic network simulator
// (sim/), where hundreds of endpoints share one virtual clock.
//
// Model (after the SRD seed patents): applications create send queues (SQs) and completion
// queues (CQs), post messages to a peer and post receive buffers. The SQ's identity plus the
// destination select a *transport context*; by default every SQ toward one peer shares one
// context. A context packetizes messages, sprays packets over the peer's paths, tracks every
// packet, takes selective acks, retransmits (preferring another path) and runs delay-based
// congestion control. Messages complete in whatever order they finish; an SQ created with
// `in_order` has its messages delivered in posting order at the receiver.
//
// Ownership: memory named by a posted send SGL or receive buffer belongs to the endpoint until
// its completion is polled. Thread-safety: none; one thread drives an Endpoint.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <limits>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "common/status.h"
#include "opensrd/dma.h"

namespace opensrd {

// The core's clock: nanoseconds on the driver's monotonic clock (the epoch is arbitrary but fixed
// per endpoint). A 100 Gbit/s link sends a 1400-byte packet in 112 ns, so pacing and RTTs of a
// datacenter fabric need finer than microseconds.
using Nanos = uint64_t;
// Durations in the configuration are given in microseconds (the `_us` fields).
using Micros = uint64_t;
inline constexpr Nanos kNever = std::numeric_limits<Nanos>::max();
inline constexpr Nanos UsToNs(Micros us) {
  return us >= kNever / 1000 ? kNever : us * 1000;
}

// A UDP address: IPv4 in `ip` (host byte order), or IPv6 when `v6` is set, in `ip6` (the 16
// address bytes in network order). Ports in host byte order.
struct NetAddr {
  uint32_t ip = 0;
  uint16_t port = 0;
  bool v6 = false;
  std::array<uint8_t, 16> ip6{};
  friend bool operator==(const NetAddr&, const NetAddr&) = default;
};
// "A.B.C.D:PORT" or "[IPv6]:PORT".
std::string ToString(const NetAddr& a);
// Parses "A.B.C.D:PORT", "[IPv6]:PORT" or "localhost:PORT" (127.0.0.1).
Result<NetAddr> ParseNetAddr(const std::string& host_port);
// 127.0.0.0/8 or ::1.
bool IsLoopback(const NetAddr& a);

// A path is a (local socket, remote address) pair. `local_socket` indexes the sockets of the I/O
// shell that drives the endpoint (in the simulator: the host's ports).
struct PathSpec {
  uint16_t local_socket = 0;
  NetAddr remote;
};

// Cluster key protection of every datagram (docs/SECURITY.md): none, authenticated (kMac), or
// encrypted and authenticated (kAead).
enum class KeyMode : uint8_t { kNone, kMac, kAead };
const char* KeyModeName(KeyMode m);

using PeerId = uint32_t;
using SqId = uint16_t;
using CqId = uint16_t;

// How the transport copies payload bytes (EndpointConfig::payload_copy).
enum class PayloadCopy : uint8_t {
  kDirect,  // memcpy
  kEngine,  // descriptors through the DMA engine (include/opensrd/dma.h)
};

// What an endpoint's payload copies did (Endpoint::copy_stats).
struct PayloadCopyStats {
  uint64_t copies = 0;       // gathers and placements that moved bytes
  uint64_t descriptors = 0;  // DMA engine descriptors posted (0 with PayloadCopy::kDirect)
  uint64_t errors = 0;       // copies the engine refused (each fails its message, kIoError)
};

struct EndpointConfig {
  uint64_t node_id = 0;      // stable identity across restarts (0: drawn at random)
  uint32_t incarnation = 0;  // changes on every restart (0: drawn at random)
  uint64_t seed = 1;         // the endpoint's RNG (spraying choices)
  // Identities (and later secrets) come from getrandom unless this is non-zero: then they derive
  // from it, so the simulator and tests replay bit for bit. Never set it on a real network.
  uint64_t identity_seed = 0;
  // Reset tokens derive from the endpoint's static key: from this seed if non-zero (the
  // simulator keeps it per host across restarts, as a key file would), else random per process
  // (a restarted process then cannot reset its old sessions; peers time them out).
  uint64_t static_key_seed = 0;
  // A HELLO that would create state must echo a cookie (RETRY) proving its source address.
  bool validate_addresses = true;
  // Pre-shared cluster key (from a key file; every endpoint of the cluster has the same).
  KeyMode key_mode = KeyMode::kNone;
  std::array<uint8_t, 32> cluster_key{};
  uint16_t max_payload = 1400;  // payload bytes per packet; the datagram adds 56 bytes
  uint32_t max_message = 64u << 20;
  uint32_t window_packets = 8192;  // PSN window: packets in flight per context (power of two)
  uint32_t contexts_per_peer = 1;  // SQ s uses context slot s % contexts_per_peer
  // Receive buffers one peer's messages may hold at once, from the buffer's first packet until
  // the application posts that buffer again (PostRecv with the same address); beyond it the
  // peer is told "receiver not ready" and retries. 0: no quota (the fair share of partly
  // received messages still applies). For servers that hold buffers while they work on them
  // (the storage bridge), so one busy client cannot take them all.
  uint32_t recv_quota_per_peer = 0;
  // Acks: at most every `ack_every` data packets or `ack_delay_us` after the first unacked one;
  // at once on a gap or a duplicate.
  uint32_t ack_every = 8;
  Micros ack_delay_us = 10;
  // Loss detection and retransmission timers.
  Micros min_rto_us = 250;
  Micros max_rto_us = 200'000;
  Micros initial_rtt_us = 1000;
  // Tail-loss probe: a lone packet in flight on a path is re-sent elsewhere after
  // max(2 * srtt + ack_delay_us, min_pto_us) instead of waiting for the RTO.
  Micros min_pto_us = 25;
  double reorder_window_frac = 0.25;  // RACK: a packet sent this fraction of srtt before an
                                      // acked one on the same path is lost
  Micros min_reorder_window_us = 30;
  uint32_t suspect_after_losses = 3;   // consecutive losses that mark a path suspect
  Micros probe_interval_us = 2000;     // first probe of a suspect path; doubles up to max_rto
  Micros rnr_retry_us = 200;           // resend after "receiver not ready"
  Micros peer_timeout_us = 3'000'000;  // no progress for this long: work fails kTimedOut
  // A context that a peer opened toward us and that has had no work and heard nothing for this
  // long is reclaimed (its memory freed); 0 = never. A context we opened that has been quiet for
  // half of it reconnects before its next message, so the peer cannot have reclaimed it.
  Micros idle_timeout_us = 60'000'000;
  Micros handshake_retry_us = 5000;
  // Delay-based congestion control (Swift-like) with pacing.
  bool congestion_control = true;
  uint32_t initial_cwnd_packets = 64;
  // Queueing delay allowed above a path's base RTT: target_delay_frac x base RTT, clamped to
  // [min_target_delay_us, target_delay_us]. The floor is 100 us by default because RTT samples
  // on hosts that share their cores include scheduling delay (a 5 us floor measured 1.3-1.9
  // Gbit/s on loopback against ~6-7 with 100 us); a datacenter fabric simulation sets it to a few
  // microseconds so the target follows a 14 us round trip.
  Micros target_delay_us = 1000;
  Micros min_target_delay_us = 100;
  double target_delay_frac = 1.0;
  double cc_ai_packets = 1.0;  // additive increase per RTT below target
  double cc_beta = 0.8;        // multiplicative decrease gain
  double cc_max_mdf = 0.5;     // largest single decrease
  uint32_t pacing_burst_packets = 32;
  // Spraying: packets per path choice (1 = per-packet spraying; larger = flowlets, which lets a
  // UDP shell batch with GSO).
  uint32_t spray_burst = 1;
  // Payload copies (a message's SGL gathered into packets, a received payload placed into its
  // receive buffer): memcpy, or the DMA engine run synchronously in the endpoint's thread with
  // every buffer mapped for the one copy (docs/DMA.md, "In the transport").
  PayloadCopy payload_copy = PayloadCopy::kDirect;
  dma::PrefetchMode dma_prefetch = dma::PrefetchMode::kAuto;  // kEngine only
};

struct SqOptions {
  CqId cq = 0;
  bool in_order = false;  // receiver delivers this SQ's messages in posting order
  uint32_t depth = 4096;  // messages posted and not yet completed
};

// One scatter-gather element of a message to send.
struct Sge {
  const void* addr = nullptr;
  size_t len = 0;
};

enum class CompletionKind : uint8_t { kSend, kRecv };

struct Completion {
  CompletionKind kind = CompletionKind::kSend;
  Code status = Code::kOk;
  uint64_t tag = 0;  // the caller's tag from PostSend / PostRecv
  PeerId peer = 0;
  SqId sq = 0;             // sending SQ (for receives: the sender's SQ id)
  uint32_t length = 0;     // message length
  uint32_t sq_seq = 0;     // message number within its SQ toward this peer, counted from 0 in
                           // every session of the context (it starts over after a reconnect)
  void* buffer = nullptr;  // receive buffer that holds the message (kRecv)
  // Direct placement (Endpoint::SetPlacementHook): when set, the message's bytes from
  // `placed_from` on went to `placed` instead of `buffer` (which holds the bytes before it).
  void* placed = nullptr;
  uint32_t placed_from = 0;
};

// Direct placement of incoming messages (RDMA WRITE data, READ responses landing in registered
// memory without a copy through the receive pool). Consulted once per message, when the first
// fragment to arrive is the message's first (offset 0; otherwise the message takes the normal
// path), with that fragment's bytes and the message length. A result with `data` set sends the
// message's bytes from `header_len` (at most the fragment's length) on to data[0 ..
// msg_len - header_len); the receive buffer still takes the first `header_len` bytes and the
// completion. The hook must not call into the Endpoint.
struct Placement {
  uint8_t* data = nullptr;
  uint32_t header_len = 0;
};
using PlacementHook = std::function<Placement(PeerId peer, std::span<const uint8_t> first_fragment,
                                              uint32_t msg_len)>;

// What happened to a peer (Endpoint::PollPeerEvents). kConnected: a session with the peer is up
// (once per peer incarnation). kRestarted: the peer came back as a new incarnation; its old
// session's work failed with kPeerRestarted (kConnected follows once the new session is up).
// kGone: the peer timed out (reason kTimedOut or kRnrRetryExceeded) or was forgotten after
// being idle (reason kOk); a later handshake announces it again with kConnected.
enum class PeerEventKind : uint8_t { kConnected, kRestarted, kGone };
const char* PeerEventKindName(PeerEventKind k);

struct PeerEvent {
  PeerEventKind kind = PeerEventKind::kConnected;
  PeerId peer = 0;
  Code reason = Code::kOk;
};

enum class PathState : uint8_t { kActive, kSuspect };
const char* PathStateName(PathState s);

struct PathStats {
  uint32_t id = 0;
  PathSpec spec;
  PathState state = PathState::kActive;
  uint64_t sent = 0;           // data packets first sent on this path
  uint64_t retransmitted = 0;  // data packets re-sent on this path
  uint64_t acked = 0;          // data packets sent on this path and acknowledged
  uint64_t lost = 0;           // data packets declared lost on this path
  Micros srtt_us = 0;
  Micros min_rtt_us = 0;
  uint64_t suspect_events = 0;
  uint64_t spurious = 0;  // acks on this path reporting a duplicate arrival
  // Packets lost on this path and re-sent (on whichever path), by what declared the loss: RACK
  // (later packets on the path were acked), the path's retransmission timeout, or a tail-loss
  // probe. Counted when the copy leaves, so a packet acked while queued for re-send is not.
  uint64_t retrans_rack = 0;
  uint64_t retrans_rto = 0;
  uint64_t retrans_tlp = 0;
  uint64_t rto_events = 0;     // retransmission timeouts that fired on this path
  uint64_t state_changes = 0;  // active -> suspect and suspect -> active
};

// One transport context (Endpoint::context_stats): its congestion state and what it re-sent.
struct ContextStats {
  uint32_t local_id = 0;
  uint32_t remote_id = 0;
  PeerId peer = 0;
  bool established = false;
  uint64_t cwnd_bytes = 0;
  // The pacer's refill rate (2 x cwnd / srtt), bytes per second; 0 with congestion control off.
  uint64_t pacing_rate_bytes_per_s = 0;
  Micros srtt_us = 0;     // context-wide, over every path's samples
  Micros min_rtt_us = 0;  // smallest sample since the context was created (0: none yet)
  uint64_t inflight_bytes = 0;
  uint64_t data_packets_sent = 0;  // retransmissions included
  uint64_t retransmits = 0;
  uint64_t retrans_rack = 0;
  uint64_t retrans_rto = 0;
  uint64_t retrans_tlp = 0;
  uint64_t retrans_nack = 0;  // refused by the receiver (out of its window)
  uint64_t retrans_rnr = 0;   // re-sent after a receiver-not-ready wait (not a loss)
  uint64_t rto_events = 0;
  uint64_t rnr_waits = 0;
};

struct EndpointStats {
  uint64_t datagrams_in = 0;
  uint64_t datagrams_out = 0;
  uint64_t data_packets_sent = 0;
  uint64_t retransmits = 0;
  // retransmits by cause; they sum to retransmits. See PathStats and ContextStats.
  uint64_t retrans_rack = 0;
  uint64_t retrans_rto = 0;
  uint64_t retrans_tlp = 0;
  uint64_t retrans_nack = 0;
  uint64_t retrans_rnr = 0;
  uint64_t rto_events = 0;
  // RTO events proven spurious afterwards: an ack echoed a packet sent before the timeout (it
  // was delayed, not lost), and the window cut was taken back.
  uint64_t spurious_rto_events = 0;
  uint64_t tail_probes = 0;
  // Paths whose oldest packet went unacknowledged for a probe timeout while a packet sent after
  // it on another path was acknowledged: its packets were declared lost at once (no RTO).
  uint64_t path_stalls = 0;
  uint64_t acks_sent = 0;
  uint64_t acks_piggybacked = 0;  // acks that rode on a data packet (not in acks_sent)
  uint64_t acks_received = 0;
  uint64_t malformed_dropped = 0;  // failed to parse (any reason but checksum)
  uint64_t corrupt_dropped = 0;    // checksum mismatch
  uint64_t duplicates_dropped = 0;
  // Acks from the peer reporting that a copy arrived twice: retransmissions that were not needed
  // (or network duplication). The receiver's duplicates_dropped counts the copies exactly.
  uint64_t spurious_retransmits = 0;
  uint64_t stale_dropped = 0;  // from or to another incarnation, or unknown context
  uint64_t out_of_window_dropped = 0;
  uint64_t rnr_sent = 0;
  uint64_t recv_quota_refusals = 0;  // messages refused because their peer was at its quota
  uint64_t rnr_received = 0;
  // Times a context started holding its new messages back after a receiver-not-ready NACK (an
  // RNR NACK arriving while it already waits extends that wait and is not counted again).
  uint64_t rnr_waits = 0;
  uint64_t path_state_changes = 0;  // sum of PathStats::state_changes, including freed peers'
  uint64_t resets_sent = 0;
  uint64_t resets_received = 0;
  uint64_t retries_sent = 0;          // RETRY answers to HELLOs without a valid cookie
  uint64_t forged_dropped = 0;        // wrong reset token, unproven restart, bad path response
  uint64_t auth_failed = 0;           // cluster key on: datagrams whose tag did not verify
  uint64_t path_challenges_sent = 0;  // a path seen at a new address
  uint64_t paths_validated = 0;       // challenges answered from the new address
  uint64_t path_migrations = 0;       // validated paths that moved to another address
  uint64_t peer_restarts = 0;
  uint64_t peer_timeouts = 0;
  uint64_t peer_events_dropped = 0;  // not polled in time: the oldest beyond 4096 are dropped
  uint64_t contexts_reclaimed = 0;   // idle contexts freed (idle_timeout_us)
  uint64_t peers_freed = 0;          // accepted peers forgotten with their last context
  uint64_t contexts_live = 0;        // at the time of the call
  uint64_t peers_live = 0;           // at the time of the call
  // Bytes the endpoint holds for its peers, contexts and queues, by its own accounting (heap
  // allocator overhead not included), at the time of the call.
  uint64_t memory_bytes = 0;
  uint64_t messages_sent = 0;
  uint64_t messages_received = 0;
  uint64_t bytes_received = 0;
  uint64_t cwnd_bytes = 0;  // sum over contexts, at the time of the call
  // Sums over contexts at the time of the call.
  uint64_t inflight_bytes = 0;
  uint64_t pacing_rate_bytes_per_s = 0;
};

// The largest datagram an endpoint with this configuration sends: a full DATA packet
// (max_payload + 56) plus the cluster key's trailer (32 bytes) when one is set. PollTransmit's
// buffer must hold it.
size_t MaxDatagramSize(const EndpointConfig& c);

// A datagram produced by the core, to be sent from `local_socket` to `remote`.
struct Transmit {
  uint16_t local_socket = 0;
  NetAddr remote;
  size_t len = 0;
};

class Endpoint {
 public:
  explicit Endpoint(const EndpointConfig& config);
  ~Endpoint();
  Endpoint(const Endpoint&) = delete;
  Endpoint& operator=(const Endpoint&) = delete;

  const EndpointConfig& config() const;
  uint32_t incarnation() const;

  // ---- setup ----
  CqId CreateCompletionQueue();
  Result<SqId> CreateSendQueue(const SqOptions& options);
  // Declares a peer reachable over `paths` (path i is wire path id i) and starts the handshake.
  // Peers that contact this endpoint first appear by themselves (see Completion::peer).
  Result<PeerId> AddPeer(const std::vector<PathSpec>& paths, Nanos now);

  // ---- data path ----
  // Queues a message of sum(sgl[i].len) bytes (0 .. max_message) for `peer`. The SGL memory
  // must stay valid until the send completion is polled.
  Status PostSend(SqId sq, PeerId peer, std::span<const Sge> sgl, uint64_t tag, Nanos now);
  // Offers a buffer for one incoming message (any peer, any SQ); its completion goes to `cq`.
  // The most recently posted buffer is used first (it is the one most likely still in cache).
  Status PostRecv(CqId cq, void* buffer, size_t len, uint64_t tag);
  // Installs (or, with an empty function, removes) the direct placement hook (see Placement).
  void SetPlacementHook(PlacementHook hook);
  // Moves up to out.size() completions of `cq` into `out`; returns how many.
  size_t PollCompletions(CqId cq, std::span<Completion> out);
  // Moves up to out.size() peer events (oldest first) into `out`; returns how many. Events
  // wait for at most 4096 polls' worth: beyond that the oldest are dropped and counted.
  size_t PollPeerEvents(std::span<PeerEvent> out);

  // ---- I/O (the driver's side) ----
  void HandleDatagram(Nanos now, uint16_t local_socket, const NetAddr& from,
                      std::span<const uint8_t> bytes);
  // Writes the next datagram to send into `buf` (at least MaxDatagramSize bytes) and returns
  // true, or returns false when nothing may be sent now (see NextTimeout).
  bool PollTransmit(Nanos now, std::span<uint8_t> buf, Transmit& out);
  // Earliest time at which HandleTimeout has work, or kNever.
  Nanos NextTimeout() const;
  void HandleTimeout(Nanos now);
  // True while messages are posted and not complete (drivers spin rather than sleep then).
  bool Busy() const;

  // ---- observation ----
  EndpointStats stats() const;
  PayloadCopyStats copy_stats() const;
  std::vector<PathStats> path_stats(PeerId peer) const;
  std::vector<ContextStats> context_stats(PeerId peer) const;
  std::vector<PeerId> peers() const;

 private:
  class Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace opensrd
