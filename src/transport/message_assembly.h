// MessageAssembly: the receiving half's messages (quiche's stream assembly). Places fragments
// straight into posted receive buffers (taken from the endpoint's shared receive queue), completes
// each message exactly once, and holds messages of in-order SQs until their turn.
//
// In-order streams are keyed by the sender's SQ and numbered per context session: the sender
// numbers an in-order SQ's messages from 0 in every session of a context (a new handshake
// generation starts over), and this side forgets its streams when the session ends. Buffers go to
// an in-order stream's messages only in sequence, with enough kept for every earlier unplaced
// message, so later messages cannot hold every buffer while the next one to deliver waits.
// Not thread-safe.
#pragma once
#include <cstdint>
#include <map>
#include <set>
#include <span>
#include <unordered_map>

#include "transport/endpoint_state.h"
#include "transport/wire.h"

namespace opensrd {

class MessageAssembly {
 public:
  MessageAssembly(EndpointShared& ep, const PeerId& peer) : ep_(ep), peer_(peer) {}

  enum class Placed : uint8_t {
    kPlaced,    // accepted (and delivered if it completed its message)
    kNoBuffer,  // no receive buffer may be used for it now: refuse (receiver not ready)
    kMismatch,  // disagrees with earlier fragments of its message: drop
  };
  // `truncated_start` is set when this fragment started a message that does not fit its buffer.
  Placed Place(const wire::DataExt& d, bool in_order, std::span<const uint8_t> payload,
               bool& truncated_start);

  // Ends the session: every partly received message gives its buffer back with `status`;
  // messages held for in-order delivery arrived whole and are delivered. Streams start over.
  void Abort(Code status);
  // Messages partly received (their buffers are held).
  bool Assembling() const { return !assembling_.empty(); }
  // Nothing partly received and nothing held back.
  bool Idle() const;
  size_t MemoryBytes() const;

 private:
  struct RecvMessage {
    PostedRecv buffer;
    uint32_t len = 0;
    uint32_t received = 0;
    SqId sq = 0;
    uint32_t sq_seq = 0;
    bool in_order = false;
    bool truncated = false;
    bool copy_failed = false;  // a placement copy failed: the message completes kIoError
    Placement placement;       // direct placement (PlacementHook); data null: none
  };
  struct OrderedStream {
    uint32_t next_deliver = 0;
    uint32_t lowest_unassigned = 0;
    std::set<uint32_t> assigned_above;
    std::map<uint32_t, std::pair<CqId, Completion>> held;
  };

  bool ReserveBuffer(const wire::DataExt& d, bool in_order, PostedRecv& out);
  bool MayHoldAnother(bool next_in_order) const;
  // Keeps the endpoint's count of held buffers and holders in step (after assembling_ changed
  // by one message: +1 added, -1 removed).
  void NoteHeld(int delta);
  void Deliver(const RecvMessage& m);
  Completion MakeCompletion(const RecvMessage& m, Code status, uint32_t length) const;

  EndpointShared& ep_;
  const PeerId& peer_;
  std::unordered_map<uint32_t, RecvMessage> assembling_;  // by the sender's message id
  std::unordered_map<SqId, OrderedStream> ordered_;
};

}  // namespace opensrd
