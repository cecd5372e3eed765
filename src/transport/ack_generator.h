// AckGenerator: what the receiving half of a context knows about arrivals and owes the peer in
// return (quiche's received-packet manager). It keeps the PSN receive window (duplicates and the
// cumulative point), per-path ack state (acks are per arrival path and travel back on that path),
// and the queue of refusals (NACKs). The context asks it what to send and when.
//
// Each ack reports exactly the PSNs that arrived on its path since that path's previous ack (plus
// the cumulative point), so every arrival is acknowledged even with hundreds of holes from
// cross-path reordering, and acks about one path cannot overtake each other on paths of different
// delay (which would fake losses at the sender). Not thread-safe.
#pragma once
#include <cstdint>
#include <unordered_set>
#include <vector>

#include "common/ring_deque.h"
#include "opensrd/transport.h"
#include "transport/receive_window.h"
#include "transport/wire.h"

namespace opensrd {

class AckGenerator {
 public:
  AckGenerator(uint32_t window_pow2, uint32_t ack_every, Nanos ack_delay)
      : rx_(window_pow2), ack_every_(ack_every), ack_delay_(ack_delay) {}

  // ---- arrivals ----
  // Every data or probe arrival on `path` refreshes the timestamp the next ack of that path
  // echoes (the sender's RTT sample).
  void NoteArrival(Nanos now, uint8_t path, uint32_t tx_ts);
  ReceiveWindow::Mark Check(uint32_t psn) const { return rx_.Check(psn); }
  // A new PSN was accepted (placed): record it and schedule an ack. `retx`: this copy is a
  // retransmission (kFlagRetx).
  void OnNew(Nanos now, uint8_t path, uint32_t psn, bool retx);
  // A PSN arrived again: the sender may have missed our ack, so say it again at once. If the
  // first copy was a retransmission and this one is not, the original was late, not lost: the
  // ack tells the sender (kFlagDupSeen) so it can be more patient with this path. If this copy
  // is the retransmission, the re-send was not needed (kFlagRetxDup).
  void OnDuplicate(uint8_t path, uint32_t psn, bool retx);
  // A probe on `path`: answer at once with an ack flagged as a probe reply.
  void OnProbe(uint8_t path);
  void QueueNack(uint8_t path, uint32_t psn, wire::NackReason reason);

  // ---- what to send ----
  bool HasNack() const { return !nacks_.empty(); }
  struct Nack {
    uint8_t path = 0;
    uint32_t psn = 0;
    wire::NackReason reason = wire::NackReason::kReceiverNotReady;
  };
  Nack PopNack();
  // The path's ack should go out now (due, urgent or a probe reply).
  bool Due(uint8_t path, Nanos now) const;
  // The path has anything unacknowledged (may ride on data early).
  bool Owes(uint8_t path) const;
  bool IsProbeReply(uint8_t path) const { return path < acks_.size() && acks_[path].probe_reply; }
  // A path that owes an ack: `preferred` if it does, else the lowest; -1 if none.
  int AnyOwed(int preferred) const;
  size_t paths() const { return acks_.size(); }
  // Fills `a` with what `path` owes (at most `max_ranges` ranges; what does not fit stays owed
  // and is due at once) and marks the rest acknowledged. Returns the flags the ack carries about
  // duplicates on the path since its previous ack (kFlagDupSeen, kFlagRetxDup: the sender learns
  // of its spurious retransmissions).
  uint8_t Take(Nanos now, uint8_t path, size_t max_ranges, wire::AckExt& a);
  // Forgets what `path` owes without sending it (a path we can no longer send on).
  void Drop(uint8_t path);

  // ---- timing and lifecycle ----
  // 0 if something is due now, else the earliest delayed-ack deadline, or kNever.
  Nanos NextDeadline() const;
  bool Idle() const;
  uint32_t cum() const { return rx_.cum(); }
  void Reset();
  // Frees what idle state does not need (call only when Idle()).
  void Trim();
  size_t MemoryBytes() const;

 private:
  struct PathAcks {
    std::vector<uint32_t> fresh;  // PSNs received (or received again) since the last ack
    uint32_t unacked = 0;
    Nanos due = kNever;
    bool now = false;
    bool probe_reply = false;
    bool dup_seen = false;
    bool retx_dup = false;
    uint32_t echo_ts = 0;  // tx timestamp of the latest packet on this path
    Nanos echo_at = 0;     // when it arrived
  };
  PathAcks& For(uint8_t path);
  void SetUrgent(PathAcks& st);

  ReceiveWindow rx_;
  const uint32_t ack_every_;
  const Nanos ack_delay_;
  std::vector<PathAcks> acks_;  // by wire path id
  uint32_t urgent_ = 0;         // paths with `now` or `probe_reply` set
  RingDeque<Nack> nacks_;
  // PSNs whose first arriving copy was a retransmission (bounded, oldest forgotten first): a
  // later original of one of them proves the sender's loss declaration was spurious. Network
  // duplicates are not confused with it: both of their copies carry the same retx flag.
  std::unordered_set<uint32_t> retx_first_;
  RingDeque<uint32_t> retx_first_order_;
};

}  // namespace opensrd
