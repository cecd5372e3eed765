// TransportContext: the reliable-delivery state between this endpoint and one peer context,
// both directions. The sending half packetizes messages, chooses a path per packet, keeps every
// packet's status in a PSN-indexed ring, detects loss (per-path RACK and per-path RTO),
// retransmits on another path and runs congestion control. The receiving half deduplicates by
// PSN, places fragments straight into posted receive buffers, completes each message exactly
// once, optionally in SQ order, and generates coalesced selective acks.
// Owned by the Endpoint; not thread-safe.
#pragma once
#include <cstdint>
#include <deque>
#include <map>
#include <set>
#include <unordered_map>
#include <vector>

#include "opensrd/transport.h"
#include "transport/congestion.h"
#include "transport/endpoint_state.h"
#include "transport/receive_window.h"
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

  // ---- handshake ----
  void Connect(Micros now);
  // A kHello from the peer's context `remote_id` (incarnation `remote_inc`) maps to us.
  void OnHello(Micros now, const wire::Packet& p);
  void OnHelloAck(Micros now, const wire::Packet& p);
  uint32_t remote_generation() const { return remote_generation_; }
  // The peer lost our state (kReset) or came back with a new incarnation: everything in flight
  // fails with kPeerRestarted and sequence state starts over.
  void OnPeerRestart(Micros now);

  // ---- application ----
  Status Post(SqId sq, std::span<const Sge> sgl, uint64_t tag, Micros now);

  // ---- packets (already parsed, addressed to this context, incarnations checked) ----
  void OnData(Micros now, const wire::Packet& p);
  void OnAck(Micros now, const wire::Packet& p);
  void OnNack(Micros now, const wire::Packet& p);
  void OnProbe(Micros now, const wire::Packet& p);
  // Any valid packet from the peer proves it alive.
  void NotePeerAlive(Micros now) { last_heard_ = now; }

  // ---- driving ----
  bool PollTransmit(Micros now, std::span<uint8_t> buf, Transmit& out);
  Micros NextTimeout() const;
  void HandleTimeout(Micros now);
  bool Busy() const { return !messages_.empty(); }
  // Nothing to send, nothing in flight or half-received, no ack owed: safe to forget.
  bool Idle() const;
  Micros last_heard() const { return last_heard_; }
  double cwnd() const { return cc_.cwnd(); }
  // Sends a probe on `path` (a suspect path of this context's peer).
  bool EmitProbe(Micros now, int path, std::span<uint8_t> buf, Transmit& out);

 private:
  enum class PacketState : uint8_t { kFree, kInFlight, kLost, kAcked, kRnrWait };

  struct SendMessage {
    SqId sq = 0;
    uint32_t sq_seq = 0;
    uint64_t tag = 0;
    uint32_t len = 0;
    uint32_t next_offset = 0;  // packetization cursor
    uint32_t packets_total = 0;
    uint32_t packets_acked = 0;
    bool in_order = false;
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
    Micros sent_at = 0;
  };

  // A (psn, tx_count) entry in a path's send-order queue; stale once the packet was re-sent.
  struct PathEntry {
    uint32_t psn;
    uint16_t tx_count;
  };

  struct RecvMessage {
    PostedRecv buffer;
    uint32_t len = 0;
    uint32_t received = 0;
    SqId sq = 0;
    uint32_t sq_seq = 0;
    bool in_order = false;
    bool truncated = false;
  };

  // In-order delivery state of one sending SQ of the peer.
  struct OrderedStream {
    uint32_t next_deliver = 0;
    uint32_t lowest_unassigned = 0;  // buffers are reserved in sequence (no deadlock)
    std::set<uint32_t> assigned_above;
    std::map<uint32_t, std::pair<CqId, Completion>> held;
  };

  SentPacket& Slot(uint32_t psn) { return ring_[psn & ring_mask_]; }
  const SentPacket& Slot(uint32_t psn) const { return ring_[psn & ring_mask_]; }
  bool SendData(Micros now, uint32_t psn, bool retx, std::span<uint8_t> buf, Transmit& out);
  bool BuildAck(Micros now, uint8_t path, std::span<uint8_t> buf, Transmit& out);
  bool AckPending(uint8_t path) const;
  // Fills `a` with what `path` owes the peer and marks it acknowledged (standalone or piggyback).
  void TakeAck(Micros now, uint8_t path, wire::AckExt& a);
  wire::Common MakeCommon(wire::Type type, int path, Micros now) const;
  bool FillTransmit(int path, Transmit& out, size_t len) const;
  // `ack_path`: the path whose ack reported this PSN individually (-1: cumulative point).
  void MarkAcked(Micros now, uint32_t psn, int ack_path, uint64_t& acked_bytes);
  // `timeout`: declared by the path's RTO (the path stopped delivering), not by RACK (the path
  // delivered later packets, so it is lossy but alive). Only timeouts make a path suspect.
  void DeclareLost(Micros now, uint32_t psn, bool timeout);
  void DetectLossOnPath(Micros now, int path);
  void AdvanceUna();
  void CompleteSendMessage(uint32_t msg_id, Code status);
  void FailAll(Code status);
  void ResetSequenceState();
  void EnsurePath(size_t path);
  bool PathValid(int path) const;
  void DeliverRecv(const RecvMessage& m);
  Completion RecvCompletion(const RecvMessage& m, Code status, uint32_t length) const;
  bool ReserveBuffer(const wire::DataExt& d, bool in_order, PostedRecv& out);
  void QueueAck(Micros now, const wire::Packet& p, bool immediate);
  Micros PathRto(int path) const;
  Micros PathPto(int path) const;  // tail-loss probe timeout
  bool TailProbeApplies(int path) const;
  uint64_t InflightBytes() const { return inflight_bytes_; }

  EndpointShared& ep_;
  Peer& peer_;
  const uint32_t local_id_;
  uint32_t remote_id_ = 0;
  State state_ = State::kIdle;
  Micros hello_due_ = kNever;
  Micros connect_started_ = 0;
  bool hello_ack_pending_ = false;
  uint8_t hello_path_ = 0;
  uint32_t hello_attempts_ = 0;
  uint32_t generation_ = 1;         // ours; bumped on every reconnect after a failure
  uint32_t remote_generation_ = 0;  // the peer's, from its kHello

  // ---- sender ----
  std::unordered_map<uint32_t, SendMessage> messages_;
  std::deque<uint32_t> unsent_;  // message ids with packets not yet packetized
  uint32_t next_msg_id_ = 0;
  std::vector<SentPacket> ring_;
  uint32_t ring_mask_;
  uint32_t snd_una_ = 0;                              // oldest PSN not known to be received
  uint32_t snd_nxt_ = 0;                              // next new PSN
  std::deque<uint32_t> retx_;                         // PSNs declared lost, to re-send
  std::deque<std::pair<Micros, uint32_t>> rnr_wait_;  // (resend time, psn)
  std::vector<std::deque<PathEntry>> path_queue_;     // per path, in send order
  std::vector<Micros> path_latest_acked_sent_;        // RACK reference per path
  uint64_t inflight_bytes_ = 0;
  DelayCongestion cc_;
  Micros last_heard_ = 0;
  uint32_t burst_left_ = 0;
  int burst_path_ = -1;
  Micros rnr_until_ = 0;  // no new messages start before this (receiver not ready)
  Micros srtt_us_;        // context-wide smoothed RTT (for pacing and the CC's once-per-RTT rule)

  // ---- receiver ----
  ReceiveWindow rx_;
  std::unordered_map<uint32_t, RecvMessage> assembling_;
  std::unordered_map<SqId, OrderedStream> ordered_;
  // Acks are per arrival path and travel back on that path. Each reports exactly the PSNs that
  // arrived on its path since its previous ack (plus the cumulative point), so every arrival is
  // acknowledged even with hundreds of holes from cross-path reordering, and acks about one path
  // cannot overtake each other on paths of different delay (which would fake losses).
  struct AckState {
    std::vector<uint32_t> fresh;  // PSNs received (or received again) since the last ack
    uint32_t unacked = 0;
    Micros due = kNever;
    bool now = false;
    bool probe_reply = false;
    uint32_t echo_ts = 0;  // tx timestamp of the latest packet on this path
    Micros echo_at = 0;    // when it arrived
  };
  std::vector<AckState> acks_;  // by wire path id
  uint32_t acks_pending_ = 0;   // paths with `now` or `probe_reply` set
  AckState& AckFor(uint8_t path);
  std::deque<std::pair<uint32_t, wire::NackReason>> nacks_;  // (psn, reason) to send
  uint8_t nack_path_ = 0;
};

}  // namespace opensrd
