// Delay-based congestion control for one transport context, in the spirit of Swift (Falcon) and
// SRD: the window grows additively while measured RTT stays under base RTT + target, and shrinks
// in proportion to the overshoot at most once per RTT. Loss on a path is a path problem (the
// spraying layer moves traffic away), so only a retransmission timeout cuts the window.
// A token-bucket pacer spreads the window over the RTT with a bounded burst. Not thread-safe.
#pragma once
#include <cstdint>

#include "opensrd/transport.h"

namespace opensrd {

// Times are nanoseconds (the core's clock); the configuration's delays are converted.
class DelayCongestion {
 public:
  DelayCongestion(const EndpointConfig& cfg);

  // An ack newly covered `acked_bytes`; `rtt` is the RTT sample it carried (0: none).
  void OnAck(Nanos now, Nanos rtt, Nanos base_rtt, Nanos srtt, uint64_t acked_bytes);
  void OnTimeout(Nanos now, Nanos srtt);
  // A timeout's loss turned out not to be one (the original copy arrived): the window goes back
  // to what it was before the timeouts since the last confirmed one, if the first of those cuts
  // is at most `horizon` old (older evidence proves little). Returns when that cut happened (0:
  // there was none to take back).
  Nanos UndoTimeout(Nanos now, Nanos horizon);
  // A timeout's loss was real (its retransmission was what arrived): keep the cut.
  void ConfirmTimeout() { undo_valid_ = false; }

  // May `bytes` more go out with `inflight` bytes outstanding?
  bool WindowAllows(uint64_t inflight, uint64_t bytes) const {
    return !enabled_ || inflight + bytes <= static_cast<uint64_t>(cwnd_) || inflight == 0;
  }
  // Pacing: the earliest time the next packet of `bytes` may leave (<= now means now).
  Nanos NextSendTime(Nanos now, uint64_t bytes, Nanos srtt);
  void OnSent(Nanos now, uint64_t bytes, Nanos srtt);
  // The time at which `bytes` will be allowed by the pacer, given no further sends.
  Nanos PacedAt(uint64_t bytes, Nanos srtt) const;

  double cwnd() const { return cwnd_; }
  // The pacer's refill rate in bytes per second for this srtt (0 when disabled: unpaced).
  double PacingRate(Nanos srtt) const;

 private:
  void Refill(Nanos now, Nanos srtt);

  bool enabled_;
  double mss_;
  double cwnd_;
  double min_cwnd_;
  double max_cwnd_;
  Nanos target_delay_;  // the cap
  Nanos min_target_delay_;
  double target_frac_;
  double ai_;
  double beta_;
  double max_mdf_;
  Nanos last_decrease_ = 0;
  bool decreased_once_ = false;
  // The window before the first timeout cut not yet confirmed or undone.
  double undo_cwnd_ = 0;
  Nanos undo_since_ = 0;
  bool undo_valid_ = false;
  // Pacer: tokens in bytes, refilled at cwnd/srtt with a gain above 1 so pacing never limits
  // below the window.
  double tokens_;
  double burst_bytes_;
  Nanos last_refill_ = 0;
};

}  // namespace opensrd
