// The fabric simulator's event queue: a binary heap of small plain events ordered by
// (time, sequence). The sequence number breaks ties in scheduling order, so a run replays bit
// for bit. Header-only. Not thread-safe.
#pragma once
#include <cstdint>
#include <queue>
#include <vector>

namespace opensrd::fabric {

enum class EventKind : uint8_t {
  kArrive,   // packet `a` reaches the far end of link `b`
  kNicFree,  // host `a`'s NIC finished serializing its packet
  kTimer,    // host `a`'s endpoint timer (stale unless it matches the host's pending time)
  kCall,     // scheduled callback `a` (workload starts, faults)
};

struct Event {
  uint64_t at_ns = 0;
  uint64_t seq = 0;
  uint32_t a = 0;
  uint32_t b = 0;
  EventKind kind = EventKind::kArrive;
};

class EventQueue {
 public:
  void Push(uint64_t at_ns, EventKind kind, uint32_t a, uint32_t b = 0) {
    heap_.push(Event{at_ns, seq_++, a, b, kind});
  }
  bool empty() const { return heap_.empty(); }
  const Event& top() const { return heap_.top(); }
  Event Pop() {
    Event e = heap_.top();
    heap_.pop();
    return e;
  }
  size_t size() const { return heap_.size(); }

 private:
  struct Later {
    bool operator()(const Event& x, const Event& y) const {
      return x.at_ns != y.at_ns ? x.at_ns > y.at_ns : x.seq > y.seq;
    }
  };
  std::priority_queue<Event, std::vector<Event>, Later> heap_;
  uint64_t seq_ = 0;
};

}  // namespace opensrd::fabric
