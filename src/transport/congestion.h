// Delay-based congestion control for one transport context, in the spirit of Swift (Falcon) and
// SRD: the window grows additively while measured RTT stays under base RTT + target, and shrinks
// in proportion to the overshoot at most once per RTT. Loss on a path is a path problem (the
// spraying layer moves traffic away), so only a retransmission timeout cuts the window.
// A token-bucket pacer spreads the window over the RTT with a bounded burst. Not thread-safe.
#pragma once
#include <cstdint>

#include "opensrd/transport.h"

namespace opensrd {

class DelayCongestion {
 public:
  DelayCongestion(const EndpointConfig& cfg);

  // An ack newly covered `acked_bytes`; `rtt_us` is the RTT sample it carried (0: none).
  void OnAck(Micros now, Micros rtt_us, Micros base_rtt_us, Micros srtt_us, uint64_t acked_bytes);
  void OnTimeout(Micros now, Micros srtt_us);

  // May `bytes` more go out with `inflight` bytes outstanding?
  bool WindowAllows(uint64_t inflight, uint64_t bytes) const {
    return !enabled_ || inflight + bytes <= static_cast<uint64_t>(cwnd_) || inflight == 0;
  }
  // Pacing: the earliest time the next packet of `bytes` may leave (<= now means now).
  Micros NextSendTime(Micros now, uint64_t bytes, Micros srtt_us);
  void OnSent(Micros now, uint64_t bytes, Micros srtt_us);
  // The time at which `bytes` will be allowed by the pacer, given no further sends.
  Micros PacedAt(uint64_t bytes, Micros srtt_us) const;

  double cwnd() const { return cwnd_; }

 private:
  void Refill(Micros now, Micros srtt_us);

  bool enabled_;
  double mss_;
  double cwnd_;
  double min_cwnd_;
  double max_cwnd_;
  Micros target_delay_;  // the cap
  Micros min_target_delay_;
  double target_frac_;
  double ai_;
  double beta_;
  double max_mdf_;
  Micros last_decrease_ = 0;
  bool decreased_once_ = false;
  // Pacer: tokens in bytes, refilled at cwnd/srtt with a gain above 1 so pacing never limits
  // below the window.
  double tokens_;
  double burst_bytes_;
  Micros last_refill_ = 0;
};

}  // namespace opensrd
