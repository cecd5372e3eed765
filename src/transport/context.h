// TransportContext: the reliable-delivery state between this endpoint and one peer context,
// both directions, and the one place that owns the context's lifecycle.
//
// Split by concern as quiche splits a connection: packetization, path choice and transmit
// (context.cc), the sent-packet ring with per-path RACK, RTO and tail-loss probes, retransmission
// and the timers (context_recovery.cc), the lifecycle (context_lifecycle.cc), ack generation with
// the receive window (ack_generator.h) and message assembly with in-order delivery
// (message_assembly.h). Congestion control is DelayCongestion (congestion.h).
//
// Lifecycle: kIdle (no partner) -> kConnecting (HELLO sent) -> kEstablished. Every way out of a
// session (peer restart or reset, dead-peer timeout, handshake timeout, idle reconnect) goes
// through one function, Close(), so the halves cannot disagree about what survives: nothing does
// but the generation counter and the identity of the last partner (to refuse its stale HELLOs).
// Owned by the Endpoint; not thread-safe.
#pragma once
#include <cstdint>
#include <unordered_map>
#include <vector>

#include "common/ring_deque.h"
#include "opensrd/transport.h"
#include "transport/ack_generator.h"
#include "transport/congestion.h"
#include "transport/endpoint_state.h"
#include "transport/message_assembly.h"
#include "transport/wire.h"

namespace opensrd {

class TransportContext {
 public:
  enum class State : uint8_t { kIdle, kConnecting, kEstablished };

  TransportContext(EndpointShared& ep, Peer& peer, uint32_t local_id);

  uint32_t local_id() const { return local_id_; }
  uint32_t remote_id() const { return remote_id_; }
  State state() const { return state_; }
  Peer& peer() { return peer_; }
  uint32_t generation() const { return generation_; }

  // ---- handshake ----
  void Connect(Nanos now);
  // A kHello from the peer's context `src_ctx` maps to us (the endpoint checked the generation).
  void OnHello(Nanos now, const wire::Packet& p);
  // A kHelloAck answering our current generation.
  void OnHelloAck(Nanos now, const wire::Packet& p);
  uint32_t remote_generation() const { return remote_generation_; }
  // The partner of the last session that ended and its generation then: a HELLO from it that is
  // not newer is a replay or a straggler.
  uint32_t last_partner() const { return last_partner_; }
  uint32_t last_partner_generation() const { return last_partner_generation_; }
  void ForgetLastPartner() { last_partner_ = last_partner_generation_ = 0; }
  // The partner's reset token (from its handshake) equals `token` (constant time).
  bool PartnerTokenIs(const uint8_t* token) const;
  // A RETRY for our HELLO: echo its cookie in the next HELLO, at once.
  void OnRetry(Nanos now, const wire::Packet& p);

  // Ends the session (see the header comment): sends fail with `status`, partly received
  // messages give their buffers back with `status`, sequence state starts over, the generation
  // moves on. kOk ends a session that has nothing outstanding (idle reconnect).
  void Close(Nanos now, Code status);

  // ---- application ----
  Status Post(SqId sq, std::span<const Sge> sgl, uint64_t tag, Nanos now);

  // ---- packets (already parsed, addressed to this context, incarnations checked) ----
  void OnData(Nanos now, const wire::Packet& p);
  void OnAck(Nanos now, const wire::Packet& p);
  void OnNack(Nanos now, const wire::Packet& p);
  void OnProbe(Nanos now, const wire::Packet& p);
  // Any valid packet from the peer proves it alive (but not that work progresses).
  void NotePeerAlive(Nanos now) {
    last_heard_ = now;
    NoteActivity(now);
  }

  // ---- driving ----
  bool PollTransmit(Nanos now, std::span<uint8_t> buf, Transmit& out);
  Nanos NextTimeout() const;
  void HandleTimeout(Nanos now);
  bool Busy() const { return !messages_.empty(); }
  // Nothing to send, nothing in flight or half-received, no ack owed: safe to forget.
  bool Idle() const;
  Nanos last_heard() const { return last_heard_; }
  // Gives back what the context held for traffic (sent-packet ring, queues, receive bitmap, ack
  // state) once it has been idle for a while; it grows again with the next traffic.
  void Trim();
  // Bytes this context holds (itself and what it allocated), for EndpointStats::memory_bytes.
  size_t MemoryBytes() const;
  double cwnd() const { return cc_.cwnd(); }
  // Counters and congestion state for Endpoint::context_stats.
  ContextStats stats() const;
  // Sends a probe on `path` (a suspect path of this context's peer).
  bool EmitProbe(Nanos now, int path, std::span<uint8_t> buf, Transmit& out);

 private:
  enum class PacketState : uint8_t { kFree, kInFlight, kLost, kAcked, kRnrWait };
  bool copy_failed_ = false;  // a payload copy failed while building a packet (PollTransmit)
  // Why a packet waits in retx_: counted by cause when its copy leaves (ContextStats).
  enum class ResendCause : uint8_t { kNone, kRack, kRto, kTailProbe, kNack, kRnr };

  struct SendMessage {
    SqId sq = 0;
    uint32_t sq_seq = 0;
    uint64_t tag = 0;
    uint32_t len = 0;
    uint32_t next_offset = 0;    // packetization cursor
    uint32_t packets_total = 0;  // set when packetization starts (the payload size is
                                 // negotiated in the handshake)
    uint32_t packets_acked = 0;
    bool in_order = false;
    bool truncated = false;  // the receiver said the message did not fit its buffer
    std::vector<Sge> sgl;
    std::vector<uint32_t> sge_end;  // prefix sums of sgl lengths
  };

  struct SentPacket {
    uint32_t msg_id = 0;
    uint32_t offset = 0;
    uint16_t len = 0;
    uint8_t path = 0;
    PacketState state = PacketState::kFree;
    uint16_t tx_count = 0;
    ResendCause cause = ResendCause::kNone;  // fits the padding before sent_at
    Nanos sent_at = 0;
  };

  // A (psn, tx_count) entry in a path's send-order queue; stale once the packet was re-sent.
  struct PathEntry {
    uint32_t psn = 0;
    uint16_t tx_count = 0;
  };

  // Makes room in the ring for one more PSN in flight (snd_nxt_), keeping [una, nxt).
  void EnsureRing();
  SentPacket& Slot(uint32_t psn) { return ring_[psn & ring_mask_]; }
  const SentPacket& Slot(uint32_t psn) const { return ring_[psn & ring_mask_]; }
  void Negotiate(const wire::HelloExt& h);
  // The partner's HELLO or HELLO_ACK: record it, negotiate, and become established.
  void Establish(Nanos now, const wire::Packet& p);
  wire::HelloExt MakeHello() const;
  bool SendData(Nanos now, uint32_t psn, bool retx, std::span<uint8_t> buf, Transmit& out);
  bool BuildAck(Nanos now, uint8_t path, std::span<uint8_t> buf, Transmit& out);
  wire::Common MakeCommon(wire::Type type, int path, Nanos now) const;
  bool FillTransmit(int path, Transmit& out, size_t len) const;
  // `ack_path`: the path whose ack reported this PSN individually (-1: cumulative point).
  void MarkAcked(Nanos now, uint32_t psn, int ack_path, uint64_t& acked_bytes);
  // Timeouts (the path's RTO or a tail-loss probe: the path stopped delivering), unlike RACK or a
  // NACK (the path delivered later packets, so it is lossy but alive), make a path suspect.
  void DeclareLost(Nanos now, uint32_t psn, ResendCause cause);
  // Counts a re-send of `s` (still holding the path it was lost on) by its cause.
  void CountResend(const SentPacket& s);
  // Moves a path of this context's peer to `to`, counting the change.
  void SetPathState(Path& p, PathState to);
  void DetectLossOnPath(Nanos now, int path);
  void AdvanceUna();
  void CompleteSendMessage(uint32_t msg_id, Code status);
  void FailAllSends(Code status);
  void ResetSequenceState();
  void EnsurePath(size_t path);
  bool PathValid(int path) const;
  bool AnotherPathDelivers(size_t path, Nanos sent_at) const;
  Nanos PathRto(int path) const;
  void JudgeTimeout(Nanos now, const SentPacket& s, int path, Nanos echo_sent);
  void UndoSpuriousTimeout(Nanos now);
  Nanos PathPto(int path) const;  // tail-loss probe timeout
  // Keeps peer_.fastest_path after `path`'s RTT estimator took a sample.
  void NoteRttSample(int path);
  // A path stalled: its oldest packet in flight is older than StallTimeout while a packet sent
  // after it was acknowledged on another path (the peer is alive, this path is not
  // delivering), or older than its probe timeout while a later one on the path itself was.
  // kNever when that packet has no such evidence yet.
  Nanos StallDeadline(int path) const;
  // How long a packet may go unacknowledged on `path`, with that evidence, before it stalls.
  Nanos StallTimeout(int path) const;
  bool TailProbeApplies(int path) const;
  // Work outstanding that the dead-peer timer guards: sends not complete or messages half in.
  bool Pending() const { return !messages_.empty() || assembly_.Assembling(); }
  void NoteActivity(Nanos now) {
    last_activity_ = now;
    trim_pending_ = true;
  }
  bool PollTransmitInner(Nanos now, std::span<uint8_t> buf, Transmit& out);
  void NoteProgress(Nanos now) {
    last_progress_ = now;
    rnr_since_progress_ = false;
  }

  EndpointShared& ep_;
  Peer& peer_;
  const uint32_t local_id_;
  uint32_t remote_id_ = 0;
  State state_ = State::kIdle;
  Nanos hello_due_ = kNever;
  Nanos connect_started_ = 0;
  bool hello_ack_pending_ = false;
  uint8_t hello_path_ = 0;
  uint32_t hello_attempts_ = 0;
  uint32_t generation_ = 1;         // ours; moves on with every Close()
  uint32_t remote_generation_ = 0;  // the partner's, from its kHello
  uint32_t last_partner_ = 0;
  uint32_t last_partner_generation_ = 0;
  bool have_partner_token_ = false;
  uint8_t partner_token_[wire::kTokenLen] = {};
  uint8_t cookie_[wire::kCookieLen] = {};  // from the peer's RETRY (zero: none yet)
  int cookie_path_ = -1;                   // the path the RETRY answered: resend there first
  // Negotiated in the handshake: the smaller of both sides' values.
  uint32_t mss_;
  uint32_t window_;

  // ---- sender ----
  std::unordered_map<uint32_t, SendMessage> messages_;
  RingDeque<uint32_t> unsent_;  // message ids with packets not yet packetized
  uint32_t next_msg_id_ = 0;
  // In-order numbering per SQ, per session: the receiver's streams start over with a session.
  std::unordered_map<SqId, uint32_t> sq_seq_;
  // PSN-indexed, a power of two between 64 and the window, grown as packets go in flight and
  // freed when the context goes idle (Trim): memory follows what is in flight.
  std::vector<SentPacket> ring_;
  uint32_t ring_mask_ = 0;
  uint32_t snd_una_ = 0;                            // oldest PSN not known to be received
  uint32_t snd_nxt_ = 0;                            // next new PSN
  RingDeque<uint32_t> retx_;                        // PSNs declared lost, to re-send
  RingDeque<std::pair<Nanos, uint32_t>> rnr_wait_;  // (resend time, psn)
  std::vector<RingDeque<PathEntry>> path_queue_;    // per path, in send order
  std::vector<Nanos> path_latest_acked_sent_;       // RACK reference per path
  // The stall evidence (StallDeadline): the largest of them, its path, and the largest of any
  // other path (a path's own evidence gets the plain probe timeout).
  Nanos latest_acked_sent_ = 0;
  int latest_acked_path_ = -1;
  Nanos second_acked_sent_ = 0;
  // The latest send time acknowledged on a path other than `path`.
  Nanos AckedSentElsewhere(int path) const {
    return path == latest_acked_path_ ? second_acked_sent_ : latest_acked_sent_;
  }
  uint64_t inflight_bytes_ = 0;
  DelayCongestion cc_;
  Nanos last_heard_ = 0;       // any valid packet from the partner
  Nanos last_activity_ = 0;    // anything: a packet in or out, a post
  bool trim_pending_ = false;  // holds traffic memory that Trim() would free
  Nanos last_progress_ = 0;    // handshake, new data acked, or new data received
  bool rnr_since_progress_ = false;
  uint32_t burst_left_ = 0;
  int burst_path_ = -1;
  Nanos rnr_until_ = 0;  // no new messages start before this (receiver not ready)
  Nanos srtt_;           // context-wide smoothed RTT (for pacing and the CC's once-per-RTT rule)
  // Packets sent before this time waited out a peer stall (a timeout proven spurious).
  Nanos stalled_before_ = 0;
  Nanos min_rtt_ = 0;   // smallest RTT sample of any path (0: none yet)
  ContextStats stats_;  // counters only; stats() fills the gauges

  // ---- receiver ----
  AckGenerator acks_;
  MessageAssembly assembly_;
};

}  // namespace opensrd
