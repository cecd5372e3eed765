// TransportContext's sent-packet map and loss recovery: the PSN ring, acks in, RACK, RTO and
// tail-loss probes, NACKs, and the timers that drive them.
#include <algorithm>
#include <cstring>

#include "transport/context.h"
#include "transport/context_detail.h"

namespace opensrd {

using namespace context_detail;

Nanos TransportContext::PathPto(int path) const {
  const Path& p = peer_.paths[path];
  // A path that has never been timed (it may never deliver at all) is judged by the fastest timed
  // path, not by the configured initial 1 ms: with that, every packet lost on a path dead from
  // the start waited 2 ms for its probe. The variance term keeps delay spikes from firing probes.
  // The fastest path is kept as samples arrive (NoteRttSample): looking for it here made every
  // deadline O(paths^2) while a flow had unsampled paths (35% of the fabric simulator's CPU).
  const Path* ref = &p;
  if (!p.rtt.have_sample()) {
    const int f = peer_.fastest_path;
    if (f >= 0 && static_cast<size_t>(f) < peer_.paths.size()) ref = &peer_.paths[f];
  }
  const Nanos srtt = ref->rtt.srtt();
  const Nanos var = ref->rtt.have_sample() ? ref->rtt.rttvar() : srtt / 2;
  return std::max(std::max(2 * srtt, srtt + 4 * var) + ep_.t.ack_delay, ep_.t.min_pto) *
         p.delay_mult;
}

void TransportContext::NoteRttSample(int path) {
  // The first sampled path of smallest srtt, as a walk over the paths would find it. Only a sample
  // of the fastest path itself can make another one the fastest (its srtt grew): walk then, which
  // is one sample in paths on average.
  auto faster = [&](int a, int b) {
    const Nanos sa = peer_.paths[a].rtt.srtt(), sb = peer_.paths[b].rtt.srtt();
    return sa < sb || (sa == sb && a < b);
  };
  int& f = peer_.fastest_path;
  if (f >= 0 && f != path && static_cast<size_t>(f) < peer_.paths.size() &&
      peer_.paths[f].rtt.have_sample()) {
    if (faster(path, f)) f = path;
    return;
  }
  f = -1;
  for (size_t i = 0; i < peer_.paths.size(); ++i) {
    if (!peer_.paths[i].rtt.have_sample()) continue;
    if (f < 0 || faster(static_cast<int>(i), f)) f = static_cast<int>(i);
  }
}

Nanos TransportContext::StallDeadline(int path) const {
  const auto& q = path_queue_[path];
  if (q.empty()) return kNever;
  const SentPacket& s = Slot(q.front().psn);
  if (s.state != PacketState::kInFlight) return kNever;
  if (AckedSentElsewhere(path) > s.sent_at) return s.sent_at + StallTimeout(path);
  // Only this path's own later packets were acked (RACK's reorder window did not declare this
  // one): its probe timeout, as a tail probe would.
  if (latest_acked_sent_ > s.sent_at) return s.sent_at + PathPto(path);
  return kNever;
}

Nanos TransportContext::StallTimeout(int path) const {
  // Never later than the path's RTO: with another path delivering, a timeout is this path's
  // failure, not a stalled peer or a congestion collapse, and the RTO's back-off and window cut
  // would only slow the flow down.
  Nanos t = std::min(PathPto(path), PathRto(path));
  // At the tail of the work (nothing new left to send) every packet still out holds up a
  // completion: judge it by the fastest path, not by its own (a slow path's probe timeout is
  // its long queue twice over), but not below twice the context's smoothed RTT: when every
  // path shares one queue (incast) the fastest path's estimate is old news, and hurrying
  // those packets cost 14% of an incast's makespan. A late packet costs a spurious copy, and
  // the ack saying so doubles the path's delay_mult, so a path that is only slow stops being
  // hurried.
  const int f = peer_.fastest_path;
  if (unsent_.empty() && f >= 0 && f != path && static_cast<size_t>(f) < peer_.paths.size() &&
      peer_.paths[f].rtt.have_sample()) {
    const RttEstimator& r = peer_.paths[f].rtt;
    const Nanos fast =
        std::max({std::max(2 * r.srtt(), r.srtt() + 4 * r.rttvar()) + ep_.t.ack_delay,
                  2 * srtt_ + ep_.t.ack_delay, ep_.t.min_pto}) *
        peer_.paths[path].delay_mult;
    t = std::min(t, fast);
  }
  return t;
}

bool TransportContext::TailProbeApplies(int path) const {
  // Only a first transmission that is alone in flight on its path (a tail: nothing behind it
  // can trigger RACK), and only when the probe would come before the RTO.
  const auto& q = path_queue_[path];
  if (q.size() != 1) return false;
  const SentPacket& s = Slot(q.front().psn);
  return s.state == PacketState::kInFlight && s.tx_count == 1 && q.front().tx_count == 1 &&
         PathPto(path) < PathRto(path);
}

Nanos TransportContext::PathRto(int path) const {
  const Path& p = peer_.paths[path];
  Nanos rto = p.rtt.Rto(ep_.t.min_rto, ep_.t.max_rto) << p.rto_backoff;
  return std::min(rto, ep_.t.max_rto);
}

void TransportContext::EnsureRing() {
  const size_t needed = static_cast<size_t>(snd_nxt_ - snd_una_) + 1;
  if (needed <= ring_.size()) return;
  size_t n = ring_.empty() ? 64 : ring_.size() * 2;
  while (n < needed) n *= 2;
  std::vector<SentPacket> grown(n);
  for (uint32_t psn = snd_una_; psn != snd_nxt_; ++psn) grown[psn & (n - 1)] = Slot(psn);
  ring_.swap(grown);
  ring_mask_ = static_cast<uint32_t>(n - 1);
  trim_pending_ = true;
}

void TransportContext::MarkAcked(Nanos now, uint32_t psn, int ack_path, uint64_t& acked_bytes) {
  SentPacket& s = Slot(psn);
  if (s.state == PacketState::kAcked || s.state == PacketState::kFree) return;
  if (s.state == PacketState::kInFlight) inflight_bytes_ -= s.len;
  s.state = PacketState::kAcked;
  acked_bytes += s.len;
  if (s.path < peer_.paths.size()) {
    Path& p = peer_.paths[s.path];
    ++p.stats.acked;
    if (p.delay_mult > 1 && ++p.clean_acks >= 512) {
      p.delay_mult /= 2;
      p.clean_acks = 0;
    }
    p.loss_ewma *= 1.0 - kLossEwmaGain;
    // Only a packet sent after the path fell under suspicion proves it works now; a late ack of
    // one sent before would revive a dead path.
    if (p.state == PathState::kActive || s.sent_at >= p.suspect_since) {
      p.consecutive_losses = 0;
      p.stalled = false;
      p.rto_backoff = 0;
      if (p.state == PathState::kSuspect) {
        SetPathState(p, PathState::kActive);
        p.probe_due = kNever;
      }
    }
    // RACK reference: only when this path's own ack reported the packet, so the copy that
    // arrived is the one sent on this path (a late ack of an earlier copy sent elsewhere says
    // nothing about this path's order, and would fake losses here).
    if (s.path == ack_path && s.path < path_latest_acked_sent_.size()) {
      path_latest_acked_sent_[s.path] = std::max(path_latest_acked_sent_[s.path], s.sent_at);
      if (s.path == latest_acked_path_) {
        latest_acked_sent_ = std::max(latest_acked_sent_, s.sent_at);
      } else if (s.sent_at > latest_acked_sent_) {
        second_acked_sent_ = latest_acked_sent_;  // the old largest is the largest elsewhere
        latest_acked_sent_ = s.sent_at;
        latest_acked_path_ = s.path;
      } else {
        second_acked_sent_ = std::max(second_acked_sent_, s.sent_at);
      }
    }
  }
  auto it = messages_.find(s.msg_id);
  if (it != messages_.end() && ++it->second.packets_acked == it->second.packets_total) {
    CompleteSendMessage(s.msg_id, Code::kOk);
  }
}

// Eifel (RFC 3522) for timeouts: was a timeout's loss real? On a busy two-core machine the
// peer's thread is descheduled for milliseconds, longer than any sane RTO: every path goes quiet,
// timeouts fire, and each such stall halved the window although nothing was lost. When the copy
// sent before the timeout turns out to have arrived, the cut is taken back; when the re-sent
// copy is what arrived, the loss was real and the cut stays.
// JudgeTimeout looks at one newly acknowledged PSN `s`. A SACK range names the path the copy
// arrived on and the echo when the newest packet there left (`path` >= 0, `echo_sent`); the
// cumulative point names no path, and then only a PSN not re-sent yet is conclusive. The
// receiver's kFlagRetxDup (a re-sent copy arrived after the original) is judged per ack, in
// OnAck.
void TransportContext::JudgeTimeout(Nanos now, const SentPacket& s, int path, Nanos echo_sent) {
  if (s.cause != ResendCause::kRto || s.tx_count == 0) return;
  if (s.state == PacketState::kLost) {
    UndoSpuriousTimeout(now);  // not re-sent yet: an earlier copy is the only one out
  } else if (s.state == PacketState::kInFlight && path >= 0 && echo_sent != kNever) {
    if (s.path != path || echo_sent < s.sent_at) {
      UndoSpuriousTimeout(now);
    } else {
      cc_.ConfirmTimeout();
    }
  }
}

void TransportContext::UndoSpuriousTimeout(Nanos now) {
  // Evidence about a cut older than this proves little (the traffic has moved on since).
  const Nanos horizon = std::max<Nanos>(16 * srtt_, 10'000'000);
  if (const Nanos cut = cc_.UndoTimeout(now, horizon); cut != 0) {
    ++ep_.stats.spurious_rto_events;
    stalled_before_ = cut;
  }
}

void TransportContext::AdvanceUna() {
  while (snd_una_ != snd_nxt_ && Slot(snd_una_).state == PacketState::kAcked) {
    Slot(snd_una_).state = PacketState::kFree;
    ++snd_una_;
  }
}

void TransportContext::SetPathState(Path& p, PathState to) {
  if (p.state == to) return;
  p.state = to;
  ++p.stats.state_changes;
  ++ep_.stats.path_state_changes;
}

void TransportContext::CountResend(const SentPacket& s) {
  Path* lost_on = s.path < peer_.paths.size() ? &peer_.paths[s.path] : nullptr;
  switch (s.cause) {
    case ResendCause::kRack:
      ++ep_.stats.retrans_rack;
      ++stats_.retrans_rack;
      if (lost_on) ++lost_on->stats.retrans_rack;
      break;
    case ResendCause::kRto:
      ++ep_.stats.retrans_rto;
      ++stats_.retrans_rto;
      if (lost_on) ++lost_on->stats.retrans_rto;
      break;
    case ResendCause::kTailProbe:
      ++ep_.stats.retrans_tlp;
      ++stats_.retrans_tlp;
      if (lost_on) ++lost_on->stats.retrans_tlp;
      break;
    case ResendCause::kNack:
    case ResendCause::kNone:  // not reached: every path into retx_ sets a cause
      ++ep_.stats.retrans_nack;
      ++stats_.retrans_nack;
      break;
    case ResendCause::kRnr:
      ++ep_.stats.retrans_rnr;
      ++stats_.retrans_rnr;
      break;
  }
}

void TransportContext::DeclareLost(Nanos now, uint32_t psn, ResendCause cause) {
  SentPacket& s = Slot(psn);
  if (s.state != PacketState::kInFlight) return;
  s.state = PacketState::kLost;
  s.cause = cause;
  const bool timeout = cause == ResendCause::kRto || cause == ResendCause::kTailProbe;
  inflight_bytes_ -= s.len;
  retx_.push_back(psn);
  Path& p = peer_.paths[s.path];
  ++p.stats.lost;
  p.loss_ewma = p.loss_ewma * (1.0 - kLossEwmaGain) + kLossEwmaGain;
  if (!timeout) return;
  ++p.consecutive_losses;
  if (p.state == PathState::kActive && p.consecutive_losses >= ep_.cfg.suspect_after_losses &&
      AnotherPathDelivers(s.path, s.sent_at)) {
    SetPathState(p, PathState::kSuspect);
    ep_.suspect_peers.insert(peer_.id);
    p.suspect_since = now;
    ++p.stats.suspect_events;
    p.probe_interval = std::max(ep_.t.probe_interval, p.rtt.srtt());
    p.probe_due = now + p.probe_interval;
  }
}

// Timeouts on every path at once say the peer (or this host) stalled, not that a path broke: a
// busy receiver that acks late makes every path's packets time out together, and marking them
// all suspect sent the traffic into probe back-off and made healthy paths flap (hundreds of
// state changes a second on loopback under storage load). A path is blamed for a packet sent at
// `sent_at` only if another active path shows the peer was not silent: a packet of it sent
// later was acknowledged, or it has nothing in flight and lost nothing (a lone request on a dead
// path cannot be told from a stall when it times out, and must still be blamed: Defect10).
bool TransportContext::AnotherPathDelivers(size_t path, Nanos sent_at) const {
  for (size_t i = 0; i < peer_.paths.size(); ++i) {
    const Path& o = peer_.paths[i];
    if (i == path || !o.known || !o.usable || o.state != PathState::kActive) continue;
    const bool acked_later =
        i < path_latest_acked_sent_.size() && path_latest_acked_sent_[i] > sent_at;
    const bool idle = o.consecutive_losses == 0 && i < path_queue_.size() && path_queue_[i].empty();
    if (acked_later || idle) return true;
  }
  return false;
}

void TransportContext::DetectLossOnPath(Nanos now, int path) {
  auto& q = path_queue_[path];
  const Path& pp = peer_.paths[path];
  const Nanos window = std::max<Nanos>(ep_.t.min_reorder_window,
                                       static_cast<Nanos>(ep_.cfg.reorder_window_frac *
                                                          static_cast<double>(pp.rtt.srtt()))) *
                       pp.delay_mult;
  const Nanos reference = path_latest_acked_sent_[path];
  while (!q.empty()) {
    const PathEntry e = q.front();
    const SentPacket& s = Slot(e.psn);
    if (!InRange(e.psn, snd_una_, snd_nxt_) || s.tx_count != e.tx_count ||
        s.state != PacketState::kInFlight) {
      q.pop_front();  // acked, re-sent elsewhere, or gone
      continue;
    }
    if (s.sent_at + window >= reference) break;
    DeclareLost(now, e.psn, ResendCause::kRack);
    q.pop_front();
  }
}

void TransportContext::OnAck(Nanos now, const wire::Packet& p) {
  ++ep_.stats.acks_received;
  last_heard_ = now;
  if (state_ != State::kEstablished) return;
  const wire::AckExt& a = p.ack;
  // Acks travel on paths of different delay, so an older ack (lower cumulative point) often
  // arrives after a newer one: its ranges and RTT sample still count. A cumulative point beyond
  // anything sent is not ours.
  if (static_cast<int32_t>(a.cum_psn - snd_nxt_) > 0) {
    ++ep_.stats.malformed_dropped;
    return;
  }
  // The peer saw a copy arrive twice on the path this ack is about: a loss there was declared
  // too early. Be more patient with that path's delays.
  // Some re-sent copy was not needed: the original had arrived (it or its ack was late).
  if (p.common.flags & (wire::kFlagDupSeen | wire::kFlagRetxDup)) UndoSpuriousTimeout(now);
  if ((p.common.flags & wire::kFlagDupSeen) && a.echo_path < peer_.paths.size()) {
    Path& dp = peer_.paths[a.echo_path];
    ++ep_.stats.spurious_retransmits;
    ++dp.stats.spurious;
    dp.delay_mult = std::min<uint32_t>(dp.delay_mult * 2, 16);
    dp.clean_acks = 0;
  }
  // Ranges feed per-path RACK only when the ack arrived on the path it is about: only then is
  // it ordered with that path's other acks.
  const int rack_path = p.common.path_id == a.echo_path ? a.echo_path : -1;
  // When the echoed packet left (ranges and echo are about the same path): tells which copy of
  // a re-sent packet arrived.
  const uint32_t echo_age = static_cast<uint32_t>(now) - a.echo_ts;
  const Nanos echo_sent = echo_age < 4'000'000'000u && echo_age <= now ? now - echo_age : kNever;
  for (uint8_t i = 0; i < a.n_ranges; ++i) {
    const uint32_t b = a.ranges[i].begin, e = a.ranges[i].end;
    if (!InRange(b, snd_una_, snd_nxt_) || e - snd_una_ > snd_nxt_ - snd_una_) continue;
    for (uint32_t psn = b; psn != e; ++psn) JudgeTimeout(now, Slot(psn), a.echo_path, echo_sent);
  }
  uint64_t acked_bytes = 0;
  if (static_cast<int32_t>(a.cum_psn - snd_una_) > 0) {
    for (uint32_t psn = snd_una_; psn != a.cum_psn; ++psn) {
      JudgeTimeout(now, Slot(psn), -1, kNever);
      MarkAcked(now, psn, -1, acked_bytes);
    }
  }
  for (uint8_t i = 0; i < a.n_ranges; ++i) {
    const uint32_t b = a.ranges[i].begin, e = a.ranges[i].end;
    if (!InRange(b, snd_una_, snd_nxt_) || e - snd_una_ > snd_nxt_ - snd_una_) continue;
    for (uint32_t psn = b; psn != e; ++psn) MarkAcked(now, psn, rack_path, acked_bytes);
  }
  AdvanceUna();
  if (acked_bytes > 0) NoteProgress(now);

  // RTT sample from the echoed timestamp, minus the time the receiver held the ack.
  Nanos rtt = 0;
  if (a.echo_path < peer_.paths.size()) {
    // Timestamps are nanoseconds mod 2^32: an echo more than ~4 s old is nonsense (or forged).
    const uint32_t elapsed = static_cast<uint32_t>(now) - a.echo_ts;
    if (elapsed < 4'000'000'000u) {
      const Nanos held = Nanos{a.ack_delay_us} * 1000;
      rtt = elapsed > held ? elapsed - held : 1;
      Path& path = peer_.paths[a.echo_path];
      path.rtt.Sample(rtt);
      NoteRttSample(a.echo_path);
      if (p.common.type == wire::Type::kAck && (p.common.flags & wire::kFlagProbe)) {
        SetPathState(path, PathState::kActive);
        path.probe_due = kNever;
        path.consecutive_losses = 0;
        path.stalled = false;
        path.rto_backoff = 0;
      }
      if (min_rtt_ == 0 || rtt < min_rtt_) min_rtt_ = rtt;
      // A packet that left before a timeout later proven spurious waited out the peer's stall:
      // its delay is the stall, not a queue in the network. The path's RTO estimator learns it
      // (the next stall should not fire a timeout as early), but the pacer's RTT and the
      // congestion signal must not: they would shrink the window the undo just restored.
      if (echo_sent >= stalled_before_) {
        srtt_ = (7 * srtt_ + rtt) / 8;
        // Congestion is judged per path against that path's own base RTT (paths differ in
        // delay), on a lightly smoothed delay so one reordered packet is not a congestion signal.
        path.recent_rtt = path.recent_rtt == 0 ? rtt : (3 * path.recent_rtt + rtt) / 4;
        cc_.OnAck(now, path.recent_rtt, path.rtt.min(), srtt_, acked_bytes);
      }
    }
  }
  for (size_t i = 0; i < path_queue_.size(); ++i) DetectLossOnPath(now, static_cast<int>(i));
}

void TransportContext::OnNack(Nanos now, const wire::Packet& p) {
  last_heard_ = now;
  const uint32_t psn = p.nack.psn;
  if (!InRange(psn, snd_una_, snd_nxt_)) return;
  SentPacket& s = Slot(psn);
  if (p.nack.reason == wire::NackReason::kTruncated) {
    // Not a refusal: the packet was taken. The message will complete TRUNCATED.
    auto it = messages_.find(s.msg_id);
    if (it != messages_.end() && s.state != PacketState::kFree) it->second.truncated = true;
    return;
  }
  if (s.state != PacketState::kInFlight) return;
  if (p.nack.reason == wire::NackReason::kReceiverNotReady) {
    // Back-pressure, not loss: park the packet and hold new messages for a while.
    ++ep_.stats.rnr_received;
    if (rnr_until_ <= now) {
      ++ep_.stats.rnr_waits;
      ++stats_.rnr_waits;
    }
    rnr_since_progress_ = true;
    s.state = PacketState::kRnrWait;
    inflight_bytes_ -= s.len;
    rnr_until_ = now + ep_.t.rnr_retry;
    rnr_wait_.push_back({rnr_until_, psn});
  } else {
    DeclareLost(now, psn, ResendCause::kNack);
  }
}

Nanos TransportContext::NextTimeout() const {
  if (hello_ack_pending_) return 0;
  Nanos t = acks_.NextDeadline();
  if (trim_pending_ && Idle()) t = std::min(t, last_activity_ + kTrimAfter);
  if (t == 0) return 0;
  if (state_ == State::kConnecting) {
    t = std::min({t, hello_due_, connect_started_ + ep_.t.peer_timeout});
  }
  if (state_ != State::kEstablished) return t;
  if (Pending()) t = std::min(t, last_progress_ + ep_.t.peer_timeout);
  if (!rnr_wait_.empty()) t = std::min(t, rnr_wait_.front().first);
  for (size_t i = 0; i < path_queue_.size(); ++i) {
    if (path_queue_[i].empty()) continue;
    const SentPacket& s = Slot(path_queue_[i].front().psn);
    t = std::min(t, s.sent_at + PathRto(static_cast<int>(i)));
    if (TailProbeApplies(static_cast<int>(i))) {
      t = std::min(t, s.sent_at + PathPto(static_cast<int>(i)));
    }
    t = std::min(t, StallDeadline(static_cast<int>(i)));
  }
  const bool can_send = !retx_.empty() || (!unsent_.empty() && snd_nxt_ - snd_una_ < window_);
  if (can_send && cc_.WindowAllows(inflight_bytes_, mss_)) {
    // The same byte count PollTransmit asks the pacer about (or more), or this deadline could
    // say "now" while PollTransmit still waits: a busy loop in the driver.
    t = std::min(t, std::max(rnr_until_, cc_.PacedAt(mss_ + kPacketOverhead, srtt_)));
  }
  return t;
}

void TransportContext::HandleTimeout(Nanos now) {
  if (trim_pending_ && now >= last_activity_ + kTrimAfter && Idle()) Trim();
  if (state_ == State::kConnecting && now >= connect_started_ + ep_.t.peer_timeout) {
    ++ep_.stats.peer_timeouts;
    if (peer_.announced_incarnation == 0) {
      ep_.PushPeerEvent(PeerEventKind::kGone, peer_.id, Code::kTimedOut);  // never answered
    } else {
      ep_.NotePeerGone(peer_, Code::kTimedOut);
    }
    Close(now, Code::kTimedOut);
    return;
  }
  if (state_ != State::kEstablished) return;
  if (Pending() && now >= last_progress_ + ep_.t.peer_timeout) {
    // No progress for the whole timeout (a dead peer, or one that refuses everything): the
    // session ends. Sends fail, half-received messages give their buffers back, and late
    // packets of this session meet no partner (they are answered with RESET).
    ++ep_.stats.peer_timeouts;
    const Code why = rnr_since_progress_ ? Code::kRnrRetryExceeded : Code::kTimedOut;
    ep_.NotePeerGone(peer_, why);
    Close(now, why);
    return;
  }
  while (!rnr_wait_.empty() && rnr_wait_.front().first <= now) {
    const uint32_t psn = rnr_wait_.front().second;
    rnr_wait_.pop_front();
    SentPacket& s = Slot(psn);
    if (InRange(psn, snd_una_, snd_nxt_) && s.state == PacketState::kRnrWait) {
      s.state = PacketState::kLost;  // re-send, without blaming the path
      s.cause = ResendCause::kRnr;
      retx_.push_back(psn);
    }
  }
  for (size_t i = 0; i < path_queue_.size(); ++i) {
    auto& q = path_queue_[i];
    // Drop stale heads first so the RTO is measured from the oldest packet truly in flight.
    while (!q.empty()) {
      const PathEntry e = q.front();
      const SentPacket& s = Slot(e.psn);
      if (InRange(e.psn, snd_una_, snd_nxt_) && s.tx_count == e.tx_count &&
          s.state == PacketState::kInFlight) {
        break;
      }
      q.pop_front();
    }
    if (q.empty()) continue;
    const Nanos rto = PathRto(static_cast<int>(i));
    if (TailProbeApplies(static_cast<int>(i)) &&
        Slot(q.front().psn).sent_at + PathPto(static_cast<int>(i)) <= now) {
      // Tail-loss probe: nothing sent after this packet on its path can reveal its loss, so
      // rather than wait for the RTO, re-send it on another path. The path is not backed off,
      // but the probe counts toward suspicion: in request/response traffic probes rescue every
      // packet of a dead path, so without this no RTO would ever mark it. An ack of any later
      // packet on the path clears the count, so a spurious probe on a live path costs nothing.
      ++ep_.stats.tail_probes;
      DeclareLost(now, q.front().psn, ResendCause::kTailProbe);
      q.pop_front();
      continue;
    }
    if (StallDeadline(static_cast<int>(i)) <= now) {
      // The path stalled (StallDeadline): another path delivered a later packet, so this one's
      // packets are not coming. Declare them lost now and re-send them elsewhere rather than
      // wait for this path's RTO, backed off and 100 us or more, with their bytes held in the
      // window: with many paths a flow has a packet or two per path, so RACK on the path itself
      // never fires and a dead link's packets each waited for an RTO. The losses count as
      // timeouts (toward suspicion), ChoosePath shuns the path until it delivers again, and
      // nothing is backed off: the peer is alive. A packet sent after the evidence, or younger
      // than the probe timeout, stays.
      ++ep_.stats.path_stalls;
      // Out for a whole RTO while the context's smoothed RTT is over twice its least (every path
      // queues: a congested receiver, not one bad path): the congestion response the RTO would
      // have had, without the path's back-off. Without it incast 15->1 took 1.033x of its
      // optimal makespan (1.011x with it); cutting the window on every such stall cost the
      // degraded-links case its gain (the slow paths' queues do not move the context's RTT).
      if (Slot(q.front().psn).sent_at + rto <= now && srtt_ > 2 * min_rtt_) {
        cc_.OnTimeout(now, srtt_);
      }
      peer_.paths[i].stalled = true;
      const Nanos pto = StallTimeout(static_cast<int>(i));
      const Nanos evidence = AckedSentElsewhere(static_cast<int>(i));
      const Nanos own_pto = PathPto(static_cast<int>(i));
      while (!q.empty()) {
        const PathEntry e = q.front();
        const SentPacket& s = Slot(e.psn);
        if (s.tx_count == e.tx_count && s.state == PacketState::kInFlight &&
            InRange(e.psn, snd_una_, snd_nxt_)) {
          const bool elsewhere = s.sent_at < evidence && s.sent_at + pto <= now;
          const bool own = s.sent_at < latest_acked_sent_ && s.sent_at + own_pto <= now;
          if (!elsewhere && !own) break;
          DeclareLost(now, e.psn, ResendCause::kTailProbe);
        }
        q.pop_front();
      }
      continue;
    }
    if (Slot(q.front().psn).sent_at + rto > now) continue;
    ++ep_.stats.rto_events;
    ++stats_.rto_events;
    ++peer_.paths[i].stats.rto_events;
    while (!q.empty()) {
      const PathEntry e = q.front();
      const SentPacket& s = Slot(e.psn);
      if (s.tx_count == e.tx_count && s.state == PacketState::kInFlight &&
          InRange(e.psn, snd_una_, snd_nxt_)) {
        if (s.sent_at + rto > now) break;
        DeclareLost(now, e.psn, ResendCause::kRto);
      }
      q.pop_front();
    }
    Path& p = peer_.paths[i];
    p.rto_backoff = std::min(p.rto_backoff + 1, kMaxRtoBackoff);
    cc_.OnTimeout(now, srtt_);
  }
}

}  // namespace opensrd
