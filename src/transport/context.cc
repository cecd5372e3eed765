// TransportContext: construction, the application side, packetization and transmit, and the
// receiving half's entry points (context.h says how the context is split).
#include <algorithm>
#include <cstring>

#include "transport/context.h"
#include "transport/context_detail.h"

namespace opensrd {

using namespace context_detail;

TransportContext::TransportContext(EndpointShared& ep, Peer& peer, uint32_t local_id)
    : ep_(ep),
      peer_(peer),
      local_id_(local_id),
      mss_(ep.cfg.max_payload),
      window_(ep.cfg.window_packets),
      cc_(ep.cfg),
      srtt_(ep.t.initial_rtt),
      acks_(ep.cfg.window_packets, ep.cfg.ack_every, ep.t.ack_delay),
      assembly_(ep, peer.id) {
  EnsurePath(peer.paths.size());
}

void TransportContext::EnsurePath(size_t n) {
  if (path_queue_.size() < n) {
    path_queue_.resize(n);
    path_latest_acked_sent_.resize(n, 0);
  }
}

bool TransportContext::PathValid(int path) const {
  return path >= 0 && static_cast<size_t>(path) < peer_.paths.size() && peer_.paths[path].known &&
         peer_.paths[path].usable;
}

Status TransportContext::Post(SqId sq, std::span<const Sge> sgl, uint64_t tag, Nanos now) {
  uint64_t len = 0;
  for (const Sge& s : sgl) {
    if (s.addr == nullptr && s.len > 0) {
      return Status(Code::kInvalidArgument, "scatter-gather element with null address");
    }
    len += s.len;
  }
  if (len > ep_.cfg.max_message) {
    return Status(Code::kInvalidArgument, "message of " + std::to_string(len) +
                                              " bytes exceeds max_message " +
                                              std::to_string(ep_.cfg.max_message));
  }
  SendQueueState& q = ep_.sqs[sq];
  if (q.outstanding >= q.options.depth) {
    return Status(Code::kResourceExhausted, "send queue full");
  }
  // Quiet for half the idle timeout: the peer may reclaim its side before this message gets
  // there. Start over with a fresh handshake (a new generation) rather than find out by RESET.
  const Nanos idle = ep_.t.idle_timeout;
  if (idle > 0 && state_ == State::kEstablished && Idle() && now > last_heard_ + idle / 2) {
    Close(now, Code::kOk);
  }
  if (!Pending()) NoteProgress(now);  // the dead-peer clock runs only while work is pending
  NoteActivity(now);
  if (messages_.empty()) ++ep_.busy_contexts;
  const uint32_t id = next_msg_id_++;
  SendMessage& m = messages_[id];
  m.sq = sq;
  m.sq_seq = sq_seq_[sq]++;
  m.tag = tag;
  m.len = static_cast<uint32_t>(len);
  m.in_order = q.options.in_order;
  m.sgl.assign(sgl.begin(), sgl.end());
  m.sge_end.reserve(sgl.size());
  uint32_t end = 0;
  for (const Sge& s : sgl) m.sge_end.push_back(end += static_cast<uint32_t>(s.len));
  ++q.outstanding;
  unsent_.push_back(id);
  if (state_ == State::kIdle) Connect(now);
  return Status::Ok();
}

void TransportContext::CompleteSendMessage(uint32_t msg_id, Code status) {
  auto it = messages_.find(msg_id);
  if (it == messages_.end()) return;
  const SendMessage& m = it->second;
  ep_.CompleteSend(
      Completion{.kind = CompletionKind::kSend,
                 .status = status == Code::kOk && m.truncated ? Code::kTruncated : status,
                 .tag = m.tag,
                 .peer = peer_.id,
                 .sq = m.sq,
                 .length = m.len,
                 .sq_seq = m.sq_seq});
  messages_.erase(it);
  if (messages_.empty()) --ep_.busy_contexts;  // the post that made it busy counted it
}

void TransportContext::FailAllSends(Code status) {
  std::vector<uint32_t> ids;
  ids.reserve(messages_.size());
  for (auto& [id, m] : messages_) ids.push_back(id);
  std::sort(ids.begin(), ids.end());
  for (uint32_t id : ids) CompleteSendMessage(id, status);
  unsent_.clear();
}

wire::Common TransportContext::MakeCommon(wire::Type type, int path, Nanos now) const {
  wire::Common c;
  c.type = type;
  c.path_id = static_cast<uint8_t>(path);
  c.dst_ctx = remote_id_;
  c.src_ctx = local_id_;
  c.src_incarnation = ep_.incarnation;
  c.dst_incarnation = peer_.remote_incarnation;
  c.tx_ts = static_cast<uint32_t>(now);  // nanoseconds mod 2^32 (RTTs up to 4.29 s)
  return c;
}

bool TransportContext::FillTransmit(int path, Transmit& out, size_t len) const {
  if (len == 0 || !PathValid(path)) return false;
  out.local_socket = peer_.paths[path].spec.local_socket;
  out.remote = peer_.paths[path].spec.remote;
  out.len = len;
  return true;
}

bool TransportContext::SendData(Nanos now, uint32_t psn, bool retx, std::span<uint8_t> buf,
                                Transmit& out) {
  SentPacket& s = Slot(psn);
  auto mit = messages_.find(s.msg_id);
  if (mit == messages_.end()) return false;
  const SentPacket before = s;  // the path it was lost on, for CountResend
  const SendMessage& m = mit->second;
  int path;
  if (retx) {
    // Prefer another path than the one that lost it, and a clean one: it is on the critical path.
    path = ChoosePath(peer_.paths, s.tx_count > 0 ? s.path : -1, /*avoid_loss=*/true);
  } else if (m.packets_total == 1) {
    path = ChoosePath(peer_.paths, -1, /*avoid_loss=*/true);  // latency-sensitive, no burst
  } else {
    if (burst_left_ == 0 || !PathValid(burst_path_) ||
        peer_.paths[burst_path_].state != PathState::kActive) {
      burst_path_ = ChoosePath(peer_.paths, -1);
      burst_left_ = std::max<uint32_t>(ep_.cfg.spray_burst, 1);
    }
    path = burst_path_;
    --burst_left_;
  }
  if (path < 0) return false;

  wire::Common c = MakeCommon(wire::Type::kData, path, now);
  if (m.in_order) c.flags |= wire::kFlagInOrder;
  if (retx) c.flags |= wire::kFlagRetx;
  wire::DataExt d{.psn = psn,
                  .msg_id = s.msg_id,
                  .msg_len = m.len,
                  .offset = s.offset,
                  .sq_id = m.sq,
                  .payload_len = s.len,
                  .sq_seq = m.sq_seq};
  // Piggyback an ack we owe, when the buffer has room for the largest ack block: this path's
  // own if it owes one, else another path's (a ping-pong then costs two datagrams, not four).
  // An ack about another path may overtake that path's standalone acks, so the sender does not
  // use it for RACK (see OnAck); it still acknowledges and times.
  wire::AckExt ack;
  const wire::AckExt* piggy = nullptr;
  const int ack_path = acks_.AnyOwed(path);
  if (ack_path >= 0 && !acks_.IsProbeReply(static_cast<uint8_t>(ack_path)) &&
      buf.size() >=
          wire::kDataHeaderLen + wire::AckBlockLen(wire::kMaxSackRanges) + s.len + wire::kCrcLen) {
    c.flags |= acks_.Take(now, static_cast<uint8_t>(ack_path), wire::kMaxSackRanges, ack);
    piggy = &ack;
    ++ep_.stats.acks_piggybacked;
  }
  const size_t header = wire::EncodeDataHeader(c, d, buf, piggy);
  if (header == 0) return false;
  // Gather the fragment from the caller's SGL straight into the datagram (memcpy or the DMA
  // engine). A copy that fails cannot be sent as posted: PollTransmit ends the session.
  if (!ep_.copier.Gather(m.sgl, m.sge_end, s.offset, s.len, buf, header).ok()) {
    copy_failed_ = true;
    return false;
  }
  const size_t len = wire::SealDatagram(buf, header + s.len);
  if (!FillTransmit(path, out, len)) return false;

  s.path = static_cast<uint8_t>(path);
  s.sent_at = now;
  ++s.tx_count;
  s.state = PacketState::kInFlight;
  inflight_bytes_ += s.len;
  EnsurePath(path + 1);
  path_queue_[path].push_back({psn, s.tx_count});
  Path& p = peer_.paths[path];
  if (retx) {
    ++p.stats.retransmitted;
    ++ep_.stats.retransmits;
    ++stats_.retransmits;
    CountResend(before);
    s.cause = ResendCause::kNone;
  } else {
    ++p.stats.sent;
  }
  ++ep_.stats.data_packets_sent;
  ++stats_.data_packets_sent;
  cc_.OnSent(now, s.len + wire::kDataHeaderLen, srtt_);
  return true;
}

bool TransportContext::BuildAck(Nanos now, uint8_t path, std::span<uint8_t> buf, Transmit& out) {
  // Acks go back on their arrival path. A path we cannot send on (the peer used a path id we
  // have no address for) still gets its arrivals acknowledged, on another path: an ack owed
  // forever would keep the deadline in the past and spin the driver.
  int send_path = path;
  if (!PathValid(send_path)) send_path = ChoosePath(peer_.paths, -1, /*avoid_loss=*/true);
  if (send_path < 0) {
    acks_.Drop(path);
    return false;
  }
  wire::Common c = MakeCommon(wire::Type::kAck, send_path, now);
  if (acks_.IsProbeReply(path)) c.flags |= wire::kFlagProbe;
  // As many ranges as the buffer holds (the smallest max_payload leaves room for 9); the rest
  // stays owed and goes in the next ack.
  const size_t fixed = wire::kCommonLen + wire::kAckFixedLen + wire::kCrcLen;
  const size_t max_ranges = buf.size() > fixed ? (buf.size() - fixed) / wire::kSackRangeLen : 0;
  if (max_ranges == 0) return false;
  wire::AckExt a;
  c.flags |= acks_.Take(now, path, max_ranges, a);
  if (!FillTransmit(send_path, out, wire::EncodeAck(c, a, buf))) return false;
  ++ep_.stats.acks_sent;
  return true;
}

bool TransportContext::EmitProbe(Nanos now, int path, std::span<uint8_t> buf, Transmit& out) {
  if (state_ != State::kEstablished) return false;
  wire::Common c = MakeCommon(wire::Type::kProbe, path, now);
  return FillTransmit(path, out, wire::EncodeBare(c, buf));
}

bool TransportContext::PollTransmit(Nanos now, std::span<uint8_t> buf, Transmit& out) {
  const bool sent = PollTransmitInner(now, buf, out);
  if (copy_failed_) {
    // The DMA engine refused a packetization copy: the message's bytes cannot be read as posted.
    // Every send of the session fails with kIoError (none stalls, no packet goes out with bytes
    // that were not copied); the next post starts a new session.
    copy_failed_ = false;
    Close(now, Code::kIoError);
    return false;
  }
  if (!sent) return false;
  NoteActivity(now);
  return true;
}

bool TransportContext::PollTransmitInner(Nanos now, std::span<uint8_t> buf, Transmit& out) {
  // Control first: handshake, refusals, acks. They are small and unblock the peer.
  if (hello_ack_pending_) {
    hello_ack_pending_ = false;
    wire::Common c = MakeCommon(wire::Type::kHelloAck, hello_path_, now);
    wire::HelloExt h = MakeHello();
    h.echo_generation = remote_generation_;
    if (FillTransmit(hello_path_, out, wire::EncodeHello(c, h, buf))) return true;
  }
  if (state_ == State::kConnecting && hello_due_ <= now) {
    // Rotate the handshake over the paths so one dead path cannot stall it; with a cookie, use
    // the path it was issued for (first).
    int path = -1;
    if (cookie_path_ >= 0 && PathValid(cookie_path_)) {
      path = cookie_path_;
      cookie_path_ = -1;
    }
    for (size_t k = 0; k < peer_.paths.size() && path < 0; ++k) {
      const int cand = static_cast<int>((hello_attempts_ + k) % peer_.paths.size());
      if (PathValid(cand)) path = cand;
    }
    ++hello_attempts_;
    hello_due_ = now + ep_.t.handshake_retry;
    if (path >= 0) {
      wire::Common c = MakeCommon(wire::Type::kHello, path, now);
      c.dst_ctx = 0;
      c.dst_incarnation = 0;
      if (FillTransmit(path, out, wire::EncodeHello(c, MakeHello(), buf))) return true;
    }
  }
  while (acks_.HasNack()) {
    const AckGenerator::Nack n = acks_.PopNack();
    int path = n.path;
    if (!PathValid(path)) path = ChoosePath(peer_.paths, -1, /*avoid_loss=*/true);
    if (path < 0) continue;
    wire::Common c = MakeCommon(wire::Type::kNack, path, now);
    if (FillTransmit(path, out, wire::EncodeNack(c, {.psn = n.psn, .reason = n.reason}, buf))) {
      return true;
    }
  }
  for (size_t i = 0; i < acks_.paths(); ++i) {
    if (acks_.Due(static_cast<uint8_t>(i), now) &&
        BuildAck(now, static_cast<uint8_t>(i), buf, out)) {
      return true;
    }
  }
  if (state_ != State::kEstablished) return false;

  const uint64_t wire_overhead = kPacketOverhead;
  // Retransmissions go before new data, still inside the window and the pacer.
  while (!retx_.empty()) {
    const uint32_t psn = retx_.front();
    SentPacket& s = Slot(psn);
    if (!InRange(psn, snd_una_, snd_nxt_) || s.state != PacketState::kLost) {
      retx_.pop_front();
      continue;
    }
    if (!cc_.WindowAllows(inflight_bytes_, s.len)) return false;
    if (cc_.NextSendTime(now, s.len + wire_overhead, srtt_) > now) return false;
    retx_.pop_front();
    return SendData(now, psn, true, buf, out);
  }

  if (unsent_.empty() || now < rnr_until_) return false;
  if (snd_nxt_ - snd_una_ >= window_) return false;
  const uint32_t mss = mss_;
  SendMessage& m = messages_[unsent_.front()];
  if (m.packets_total == 0) {
    m.packets_total = m.len == 0 ? 1 : static_cast<uint32_t>((uint64_t{m.len} + mss - 1) / mss);
  }
  const uint16_t frag = static_cast<uint16_t>(std::min<uint32_t>(mss, m.len - m.next_offset));
  if (!cc_.WindowAllows(inflight_bytes_, frag)) return false;
  if (cc_.NextSendTime(now, frag + wire_overhead, srtt_) > now) return false;
  const uint32_t psn = snd_nxt_;
  EnsureRing();
  SentPacket& s = Slot(psn);
  s = SentPacket{.msg_id = unsent_.front(), .offset = m.next_offset, .len = frag};
  if (!SendData(now, psn, false, buf, out)) {
    s = SentPacket{};
    return false;
  }
  ++snd_nxt_;
  m.next_offset += frag;
  if (m.next_offset >= m.len) unsent_.pop_front();
  return true;
}

void TransportContext::OnData(Nanos now, const wire::Packet& p) {
  if (p.common.flags & wire::kFlagAck) OnAck(now, p);  // the piggybacked ack first
  last_heard_ = now;
  const wire::DataExt& d = p.data;
  const uint8_t path = p.common.path_id;
  acks_.NoteArrival(now, path, p.common.tx_ts);
  switch (acks_.Check(d.psn)) {
    case ReceiveWindow::Mark::kDuplicate:
      ++ep_.stats.duplicates_dropped;
      acks_.OnDuplicate(path, d.psn, p.common.flags & wire::kFlagRetx);
      return;
    case ReceiveWindow::Mark::kOutOfWindow:
      ++ep_.stats.out_of_window_dropped;
      acks_.QueueNack(path, d.psn, wire::NackReason::kOutOfWindow);
      return;
    case ReceiveWindow::Mark::kNew:
      break;
  }
  const bool in_order = p.common.flags & wire::kFlagInOrder;
  bool truncated = false;
  switch (assembly_.Place(d, in_order, p.payload, truncated)) {
    case MessageAssembly::Placed::kNoBuffer:
      ++ep_.stats.rnr_sent;
      acks_.QueueNack(path, d.psn, wire::NackReason::kReceiverNotReady);
      return;
    case MessageAssembly::Placed::kMismatch:
      ++ep_.stats.malformed_dropped;  // fragments of one message disagree: not ours to trust
      return;
    case MessageAssembly::Placed::kPlaced:
      break;
  }
  // Tell the sender its message did not fit (queued before this packet's ack, on its path).
  if (truncated) acks_.QueueNack(path, d.psn, wire::NackReason::kTruncated);
  acks_.OnNew(now, path, d.psn, p.common.flags & wire::kFlagRetx);
  NoteProgress(now);
}

ContextStats TransportContext::stats() const {
  ContextStats s = stats_;
  s.local_id = local_id_;
  s.remote_id = remote_id_;
  s.peer = peer_.id;
  s.established = state_ == State::kEstablished;
  s.cwnd_bytes = static_cast<uint64_t>(cc_.cwnd());
  s.pacing_rate_bytes_per_s = static_cast<uint64_t>(cc_.PacingRate(srtt_));
  s.srtt_us = srtt_ / 1000;  // the core keeps nanoseconds
  s.min_rtt_us = min_rtt_ / 1000;
  s.inflight_bytes = inflight_bytes_;
  return s;
}

void TransportContext::OnProbe(Nanos now, const wire::Packet& p) {
  last_heard_ = now;
  acks_.NoteArrival(now, p.common.path_id, p.common.tx_ts);
  acks_.OnProbe(p.common.path_id);
}

}  // namespace opensrd
