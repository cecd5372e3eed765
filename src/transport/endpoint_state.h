// State an Endpoint shares with its transport contexts: configuration, counters, the shared
// receive queue, completion queues and send queues, and the peer table. Internal to
// src/transport; not thread-safe (the Endpoint's single driving thread owns it).
#pragma once
#include <cstdint>
#include <deque>
#include <set>
#include <unordered_map>
#include <vector>

#include "common/rng.h"
#include "opensrd/transport.h"
#include "transport/path.h"
#include "transport/payload_copier.h"
#include "transport/protection.h"
#include "transport/secrets.h"

namespace opensrd {

struct PostedRecv {
  CqId cq = 0;
  void* buffer = nullptr;
  size_t len = 0;
  uint64_t tag = 0;
};

// Path ids are one byte on the wire.
inline constexpr size_t kMaxPathsPerPeer = 256;

struct SendQueueState {
  SqOptions options;
  uint32_t outstanding = 0;  // posted, not yet completed
};

struct Peer {
  PeerId id = 0;
  uint64_t node_id = 0;                          // 0 until learned from a handshake
  uint32_t remote_incarnation = 0;               // 0: unknown (before a handshake, after a restart)
  bool learns_paths = false;                     // accepted peers learn path addresses from packets
  uint16_t remote_num_paths = kMaxPathsPerPeer;  // from the peer's handshake
  std::vector<Path> paths;                       // index = wire path id
  // The sampled path of smallest srtt (-1: none known), kept by TransportContext::NoteRttSample
  // so a probe timeout for an unsampled path costs O(1), not a walk over every path.
  int fastest_path = -1;
  std::vector<uint32_t> contexts;  // every local context id toward this peer
  // The context that sends for SQ s is slots[s % contexts_per_peer] (0: none yet; one is opened
  // on the next post). Fixed slots keep an SQ on one context however many the peer opens.
  std::vector<uint32_t> slots;
  // The incarnation announced with PeerEventKind::kConnected (0: none since the last kGone or
  // kRestarted), so several contexts toward one peer announce it once.
  uint32_t announced_incarnation = 0;
};

// The configuration's durations in nanoseconds, the core's clock (EndpointConfig gives them in
// microseconds).
struct Timing {
  explicit Timing(const EndpointConfig& c)
      : ack_delay(UsToNs(c.ack_delay_us)),
        min_rto(UsToNs(c.min_rto_us)),
        max_rto(UsToNs(c.max_rto_us)),
        initial_rtt(UsToNs(c.initial_rtt_us)),
        min_pto(UsToNs(c.min_pto_us)),
        min_reorder_window(UsToNs(c.min_reorder_window_us)),
        probe_interval(UsToNs(c.probe_interval_us)),
        rnr_retry(UsToNs(c.rnr_retry_us)),
        peer_timeout(UsToNs(c.peer_timeout_us)),
        idle_timeout(UsToNs(c.idle_timeout_us)),
        handshake_retry(UsToNs(c.handshake_retry_us)) {}
  Nanos ack_delay, min_rto, max_rto, initial_rtt, min_pto, min_reorder_window, probe_interval,
      rnr_retry, peer_timeout, idle_timeout, handshake_retry;
};

struct EndpointShared {
  explicit EndpointShared(const EndpointConfig& c)
      : cfg(c),
        t(c),
        rng(c.seed),
        secrets(c.identity_seed, c.static_key_seed),
        protection(c.key_mode, c.cluster_key, c.identity_seed != 0 ? &rng : nullptr),
        copier(c.payload_copy, c.dma_prefetch) {}

  void CompleteSend(const Completion& c) {
    stats.messages_sent += c.status == Code::kOk;
    SendQueueState& sq = sqs[c.sq];
    --sq.outstanding;
    cqs[sq.options.cq].push_back(c);
  }
  void PushPeerEvent(PeerEventKind kind, PeerId peer, Code reason = Code::kOk) {
    if (peer_events.size() >= kMaxPeerEvents) {
      peer_events.pop_front();
      ++stats.peer_events_dropped;
    }
    peer_events.push_back(PeerEvent{kind, peer, reason});
  }
  // A session with `peer` is up with its incarnation `incarnation`: announce it once.
  void NotePeerConnected(Peer& peer, uint32_t incarnation) {
    if (peer.announced_incarnation == incarnation) return;
    peer.announced_incarnation = incarnation;
    PushPeerEvent(PeerEventKind::kConnected, peer.id);
  }
  void NotePeerGone(Peer& peer, Code reason) {
    if (peer.announced_incarnation == 0) return;
    peer.announced_incarnation = 0;
    PushPeerEvent(PeerEventKind::kGone, peer.id, reason);
  }
  static constexpr size_t kMaxPeerEvents = 4096;

  void CompleteRecv(CqId cq, const Completion& c) {
    if (c.status == Code::kOk) {
      ++stats.messages_received;
      stats.bytes_received += c.length;
    }
    cqs[cq].push_back(c);
  }

  EndpointConfig cfg;
  Timing t;
  Rng rng;
  Secrets secrets;
  PacketProtection protection;
  PayloadCopier copier;  // packetization and reassembly copies (memcpy or the DMA engine)
  uint32_t incarnation = 0;
  EndpointStats stats;
  std::deque<PostedRecv> recvs;
  PlacementHook placement;  // Endpoint::SetPlacementHook; empty: none
  std::deque<PeerEvent> peer_events;
  std::vector<std::deque<Completion>> cqs;
  std::vector<SendQueueState> sqs;
  // Contexts with messages posted and not complete (Endpoint::Busy without a scan).
  size_t busy_contexts = 0;
  // Receive buffers held by partly received messages, and the contexts holding any: the fair
  // share of the shared receive pool (MessageAssembly::ReserveBuffer).
  size_t recv_held = 0;
  size_t recv_holders = 0;
  // recv_quota_per_peer: buffers each peer's messages hold, and which peer holds each buffer
  // (until the application posts it again).
  std::unordered_map<PeerId, uint32_t> recv_lent;
  std::unordered_map<const void*, PeerId> lent_buffers;
  bool AtRecvQuota(PeerId peer) const {
    if (cfg.recv_quota_per_peer == 0) return false;
    auto it = recv_lent.find(peer);
    return it != recv_lent.end() && it->second >= cfg.recv_quota_per_peer;
  }
  void LendRecv(PeerId peer, const void* buffer) {
    if (cfg.recv_quota_per_peer == 0) return;
    ++recv_lent[peer];
    lent_buffers[buffer] = peer;
  }
  void ReturnRecv(const void* buffer) {
    if (cfg.recv_quota_per_peer == 0) return;
    auto it = lent_buffers.find(buffer);
    if (it == lent_buffers.end()) return;
    auto lent = recv_lent.find(it->second);
    if (lent != recv_lent.end() && --lent->second == 0) recv_lent.erase(lent);
    lent_buffers.erase(it);
  }
  // Peers with a suspect path (probes are due on them); the endpoint visits only these.
  std::set<PeerId> suspect_peers;
};

}  // namespace opensrd
