// Per-path state of a peer: where packets go, how long they take, whether the path is trusted.
// Paths are shared by every context toward the same peer. Not thread-safe.
#pragma once
#include <cstdint>
#include <vector>

#include "opensrd/transport.h"

namespace opensrd {

// RFC 6298-style smoothed RTT, in nanoseconds (any unit works), plus the minimum seen (the
// delay-based congestion control's base RTT).
class RttEstimator {
 public:
  explicit RttEstimator(Nanos initial_us) : srtt_(initial_us), rttvar_(initial_us / 2) {}
  void Sample(Nanos rtt) {
    if (rtt == 0) rtt = 1;
    if (!have_sample_) {
      srtt_ = rtt;
      rttvar_ = rtt / 2;
      have_sample_ = true;
    } else {
      const Nanos diff = srtt_ > rtt ? srtt_ - rtt : rtt - srtt_;
      rttvar_ = (3 * rttvar_ + diff) / 4;
      srtt_ = (7 * srtt_ + rtt) / 8;
    }
    if (min_ == 0 || rtt < min_) min_ = rtt;
  }
  Nanos srtt() const { return srtt_; }
  Nanos rttvar() const { return rttvar_; }
  Nanos min() const { return min_; }
  bool have_sample() const { return have_sample_; }
  Nanos Rto(Nanos floor, Nanos ceiling) const {
    Nanos rto = srtt_ + 4 * rttvar_;
    if (rto < floor) rto = floor;
    return rto > ceiling ? ceiling : rto;
  }

 private:
  Nanos srtt_;
  Nanos rttvar_;
  Nanos min_ = 0;
  bool have_sample_ = false;
};

struct Path {
  explicit Path(Nanos initial_rtt) : rtt(initial_rtt) {}
  PathSpec spec;
  bool known = false;  // accepted peers learn a path's address from its first packet
  bool usable = true;  // false: beyond the path count the peer announced in its handshake
  PathState state = PathState::kActive;
  RttEstimator rtt;
  Nanos recent_rtt = 0;  // EWMA (gain 1/4) of RTT samples: the congestion signal
  uint32_t consecutive_losses = 0;
  // Its packets went unacknowledged for a probe timeout while packets sent later on other paths
  // were acknowledged; cleared with consecutive_losses. ChoosePath gives it only the floor.
  bool stalled = false;
  uint32_t rto_backoff = 0;  // exponent applied to the RTO after timeouts
  Nanos suspect_since = 0;
  Nanos probe_due = kNever;
  Nanos probe_interval = 0;
  // Recent delivery ratio (EWMA over packets): weights spraying away from lossy paths.
  double loss_ewma = 0.0;
  double credit = 0.0;  // smooth weighted round-robin accumulator
  // Patience for this path's delay spikes: scales its tail-loss probe timeout and RACK reorder
  // window. Doubles (up to 16) each time the peer reports a copy that arrived twice on it (a
  // loss declared too early), halves after 512 of its packets acked without one.
  uint32_t delay_mult = 1;
  uint32_t clean_acks = 0;
  // Address validation of an accepting peer's path: packets from another address than `spec`
  // move the path only once a challenge sent there is answered from there.
  bool challenge_pending = false;
  uint64_t challenge_token = 0;
  NetAddr challenge_addr;
  uint16_t challenge_sock = 0;
  Nanos challenge_sent = 0;
  PathStats stats;
};

// Chooses the path for the next packet by smooth weighted round-robin, weight ~ quality / srtt
// with a floor so no healthy path starves of RTT samples. Deterministic and low-variance
// (round-robin over paths of unequal delay would fill the receiver's reorder state).
// `avoid_loss` (single-packet messages, retransmissions) punishes lossy paths much harder than
// bulk spraying does; see path.cc. A path that stalled (`stalled`) gets only the floor. Returns
// -1 when no path is known.
int ChoosePath(std::vector<Path>& paths, int exclude, bool avoid_loss = false);

}  // namespace opensrd
