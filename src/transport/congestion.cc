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
      target_delay_(cfg.target_delay_us),
      min_target_delay_(std::min(cfg.min_target_delay_us, cfg.target_delay_us)),
      target_frac_(cfg.target_delay_frac),
      ai_(cfg.cc_ai_packets),
      beta_(cfg.cc_beta),
      max_mdf_(cfg.cc_max_mdf),
      tokens_(static_cast<double>(cfg.pacing_burst_packets) * cfg.max_payload),
      burst_bytes_(static_cast<double>(cfg.pacing_burst_packets) * cfg.max_payload) {}

void DelayCongestion::OnAck(Micros now, Micros rtt_us, Micros base_rtt_us, Micros srtt_us,
                            uint64_t acked_bytes) {
  if (!enabled_ || rtt_us == 0) return;
  // The allowance scales with the path's base RTT: a fixed 100 us would let a flow keep seven
  // round trips of queue on a 14 us fabric.
  const Micros allowance =
      std::clamp(static_cast<Micros>(target_frac_ * static_cast<double>(base_rtt_us)),
                 min_target_delay_, target_delay_);
  const Micros target = base_rtt_us + allowance;
  if (rtt_us <= target) {
    // One `ai_` MSS per window's worth of acked bytes: additive increase per RTT.
    cwnd_ += ai_ * mss_ * static_cast<double>(acked_bytes) / cwnd_;
  } else if (!decreased_once_ || now - last_decrease_ >= srtt_us) {
    const double over = static_cast<double>(rtt_us - target) / static_cast<double>(rtt_us);
    cwnd_ *= std::max(1.0 - beta_ * over, 1.0 - max_mdf_);
    last_decrease_ = now;
    decreased_once_ = true;
  }
  cwnd_ = std::clamp(cwnd_, min_cwnd_, max_cwnd_);
}

void DelayCongestion::OnTimeout(Micros now, Micros srtt_us) {
  if (!enabled_) return;
  if (decreased_once_ && now - last_decrease_ < srtt_us) return;
  cwnd_ = std::max(cwnd_ * (1.0 - max_mdf_), min_cwnd_);
  last_decrease_ = now;
  decreased_once_ = true;
}

void DelayCongestion::Refill(Micros now, Micros srtt_us) {
  if (now <= last_refill_) return;
  const double rate = kPacingGain * cwnd_ / static_cast<double>(std::max<Micros>(srtt_us, 1));
  tokens_ = std::min(burst_bytes_, tokens_ + rate * static_cast<double>(now - last_refill_));
  last_refill_ = now;
}

Micros DelayCongestion::PacedAt(uint64_t bytes, Micros srtt_us) const {
  if (!enabled_) return 0;
  if (tokens_ >= static_cast<double>(bytes) || tokens_ >= burst_bytes_) return last_refill_;
  const double rate = kPacingGain * cwnd_ / static_cast<double>(std::max<Micros>(srtt_us, 1));
  const double wait = (static_cast<double>(bytes) - tokens_) / rate;
  return last_refill_ + static_cast<Micros>(wait) + 1;
}

Micros DelayCongestion::NextSendTime(Micros now, uint64_t bytes, Micros srtt_us) {
  if (!enabled_) return now;
  Refill(now, srtt_us);
  return std::max(now, PacedAt(bytes, srtt_us));
}

void DelayCongestion::OnSent(Micros now, uint64_t bytes, Micros srtt_us) {
  if (!enabled_) return;
  Refill(now, srtt_us);
  tokens_ -= static_cast<double>(bytes);
}

}  // namespace opensrd
