#include "transport/congestion.h"

#include <algorithm>

namespace opensrd {

namespace {
constexpr double kPacingGain = 2.0;
}

DelayCongestion::DelayCongestion(const EndpointConfig& cfg)
    : enabled_(cfg.congestion_control),
      mss_(cfg.max_payload),
      cwnd_(static_cast<double>(cfg.initial_cwnd_packets) * cfg.max_payload),
      min_cwnd_(2.0 * cfg.max_payload),
      max_cwnd_(static_cast<double>(cfg.window_packets) * cfg.max_payload),
      target_delay_(UsToNs(cfg.target_delay_us)),
      min_target_delay_(UsToNs(std::min(cfg.min_target_delay_us, cfg.target_delay_us))),
      target_frac_(cfg.target_delay_frac),
      ai_(cfg.cc_ai_packets),
      beta_(cfg.cc_beta),
      max_mdf_(cfg.cc_max_mdf),
      tokens_(static_cast<double>(cfg.pacing_burst_packets) * cfg.max_payload),
      burst_bytes_(static_cast<double>(cfg.pacing_burst_packets) * cfg.max_payload) {}

void DelayCongestion::OnAck(Nanos now, Nanos rtt, Nanos base_rtt, Nanos srtt,
                            uint64_t acked_bytes) {
  if (!enabled_ || rtt == 0) return;
  // The allowance scales with the path's base RTT: a fixed 100 us would let a flow keep seven
  // round trips of queue on a 14 us fabric.
  const Nanos allowance =
      std::clamp(static_cast<Nanos>(target_frac_ * static_cast<double>(base_rtt)),
                 min_target_delay_, target_delay_);
  const Nanos target = base_rtt + allowance;
  if (rtt <= target) {
    // One `ai_` MSS per window's worth of acked bytes: additive increase per RTT.
    cwnd_ += ai_ * mss_ * static_cast<double>(acked_bytes) / cwnd_;
  } else if (!decreased_once_ || now - last_decrease_ >= srtt) {
    const double over = static_cast<double>(rtt - target) / static_cast<double>(rtt);
    cwnd_ *= std::max(1.0 - beta_ * over, 1.0 - max_mdf_);
    last_decrease_ = now;
    decreased_once_ = true;
  }
  cwnd_ = std::clamp(cwnd_, min_cwnd_, max_cwnd_);
}

void DelayCongestion::OnTimeout(Nanos now, Nanos srtt) {
  if (!enabled_) return;
  if (decreased_once_ && now - last_decrease_ < srtt) return;
  if (!undo_valid_) {
    undo_cwnd_ = cwnd_;
    undo_since_ = now;
    undo_valid_ = true;
  }
  cwnd_ = std::max(cwnd_ * (1.0 - max_mdf_), min_cwnd_);
  last_decrease_ = now;
  decreased_once_ = true;
}

Nanos DelayCongestion::UndoTimeout(Nanos now, Nanos horizon) {
  if (!enabled_ || !undo_valid_ || now - undo_since_ > horizon) return 0;
  cwnd_ = std::max(cwnd_, undo_cwnd_);
  undo_valid_ = false;
  return undo_since_;
}

double DelayCongestion::PacingRate(Nanos srtt) const {
  if (!enabled_) return 0;
  return kPacingGain * cwnd_ / static_cast<double>(std::max<Nanos>(srtt, 1)) * 1e9;
}

void DelayCongestion::Refill(Nanos now, Nanos srtt) {
  if (now <= last_refill_) return;
  const double rate = kPacingGain * cwnd_ / static_cast<double>(std::max<Nanos>(srtt, 1));
  tokens_ = std::min(burst_bytes_, tokens_ + rate * static_cast<double>(now - last_refill_));
  last_refill_ = now;
}

Nanos DelayCongestion::PacedAt(uint64_t bytes, Nanos srtt) const {
  if (!enabled_) return 0;
  if (tokens_ >= static_cast<double>(bytes) || tokens_ >= burst_bytes_) return last_refill_;
  const double rate = kPacingGain * cwnd_ / static_cast<double>(std::max<Nanos>(srtt, 1));
  const double wait = (static_cast<double>(bytes) - tokens_) / rate;
  return last_refill_ + static_cast<Nanos>(wait) + 1;
}

Nanos DelayCongestion::NextSendTime(Nanos now, uint64_t bytes, Nanos srtt) {
  if (!enabled_) return now;
  Refill(now, srtt);
  return std::max(now, PacedAt(bytes, srtt));
}

void DelayCongestion::OnSent(Nanos now, uint64_t bytes, Nanos srtt) {
  if (!enabled_) return;
  Refill(now, srtt);
  tokens_ -= static_cast<double>(bytes);
}

}  // namespace opensrd
