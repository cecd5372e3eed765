#include "transport/context.h"

#include <algorithm>
#include <cstring>

namespace opensrd {

namespace {
// Per packet on the path: long enough (~100 packets) that a 5% loss rate reads steadily above
// the 2% noise floor instead of dipping to zero between losses.
constexpr double kLossEwmaGain = 1.0 / 128;
constexpr uint32_t kMaxRtoBackoff = 6;
constexpr uint64_t kPacketOverhead = wire::kDataHeaderLen + wire::kCrcLen;
// Idle this long, a context gives back the memory it held for traffic (ring, queues, bitmap).
constexpr Nanos kTrimAfter = 100'000'000;  // 100 ms

// Serial-number helpers: PSNs wrap at 2^32.
bool InRange(uint32_t psn, uint32_t begin, uint32_t end) {
  return psn - begin < end - begin;
}
}  // namespace

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

// ---------------------------------------------------------------- lifecycle

void TransportContext::Connect(Nanos now) {
  if (state_ != State::kIdle) return;
  state_ = State::kConnecting;
  hello_due_ = now;
  connect_started_ = now;
  last_heard_ = now;
  NoteProgress(now);
  hello_attempts_ = 0;
}

wire::HelloExt TransportContext::MakeHello() const {
  // An accepting peer learns paths from packets, so it can take any path id the other side has.
  const size_t paths = peer_.learns_paths ? kMaxPathsPerPeer : peer_.paths.size();
  wire::HelloExt h{.node_id = ep_.cfg.node_id,
                   .num_paths = static_cast<uint16_t>(paths),
                   .max_payload = ep_.cfg.max_payload,
                   .generation = generation_,
                   .window_packets = ep_.cfg.window_packets};
  ep_.secrets.ResetToken(ep_.incarnation, local_id_, h.reset_token);
  std::memcpy(h.cookie, cookie_, sizeof cookie_);
  return h;
}

bool TransportContext::PartnerTokenIs(const uint8_t* token) const {
  if (!have_partner_token_) return false;
  uint8_t diff = 0;
  for (size_t i = 0; i < wire::kTokenLen; ++i) diff |= partner_token_[i] ^ token[i];
  return diff == 0;
}

void TransportContext::OnRetry(Nanos now, const wire::Packet& p) {
  std::memcpy(cookie_, p.retry.cookie, sizeof cookie_);
  // The cookie is bound to the address the HELLO came from: resend on that path, right away.
  cookie_path_ = p.common.path_id;
  hello_due_ = now;
}

void TransportContext::Negotiate(const wire::HelloExt& h) {
  // Each side sends no larger payloads than the other accepts and keeps no more packets in
  // flight than the other's receive window tracks (beyond it every packet would be refused).
  mss_ = std::min<uint32_t>(ep_.cfg.max_payload, h.max_payload);
  std::memcpy(partner_token_, h.reset_token, sizeof partner_token_);
  have_partner_token_ = true;
  window_ = std::min<uint32_t>(ep_.cfg.window_packets, h.window_packets);
  peer_.remote_num_paths = h.num_paths;
  for (size_t i = 0; i < peer_.paths.size(); ++i) peer_.paths[i].usable = i < h.num_paths;
}

void TransportContext::OnHello(Nanos now, const wire::Packet& p) {
  remote_id_ = p.common.src_ctx;
  remote_generation_ = p.hello.generation;
  Negotiate(p.hello);
  state_ = State::kEstablished;
  hello_due_ = kNever;
  hello_ack_pending_ = true;
  hello_path_ = p.common.path_id;
  hello_echo_generation_ = p.hello.generation;
  last_heard_ = now;
  NoteProgress(now);
}

void TransportContext::OnHelloAck(Nanos now, const wire::Packet& p) {
  if (state_ == State::kIdle) return;  // an answer to a handshake we gave up on
  remote_id_ = p.common.src_ctx;
  remote_generation_ = p.hello.generation;
  Negotiate(p.hello);
  state_ = State::kEstablished;
  hello_due_ = kNever;
  last_heard_ = now;
  NoteProgress(now);
}

void TransportContext::ResetSequenceState() {
  std::vector<SentPacket>().swap(ring_);
  ring_mask_ = 0;
  snd_una_ = snd_nxt_ = 0;
  next_msg_id_ = 0;
  sq_seq_.clear();
  retx_.clear();
  rnr_wait_.clear();
  rnr_until_ = 0;
  for (auto& q : path_queue_) q.clear();
  std::fill(path_latest_acked_sent_.begin(), path_latest_acked_sent_.end(), 0);
  inflight_bytes_ = 0;
  burst_left_ = 0;
  acks_.Reset();
}

void TransportContext::Close(Nanos now, Code status) {
  FailAllSends(status);
  assembly_.Abort(status);
  ResetSequenceState();
  if (remote_id_ != 0) {
    last_partner_ = remote_id_;
    last_partner_generation_ = remote_generation_;
  }
  remote_id_ = 0;
  remote_generation_ = 0;
  have_partner_token_ = false;
  mss_ = ep_.cfg.max_payload;
  window_ = ep_.cfg.window_packets;
  state_ = State::kIdle;
  hello_due_ = kNever;
  hello_ack_pending_ = false;
  ++generation_;
  last_heard_ = now;
  NoteProgress(now);
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

void TransportContext::Trim() {
  trim_pending_ = false;
  if (!Idle()) return;
  std::vector<SentPacket>().swap(ring_);
  ring_mask_ = 0;
  unsent_.Release();
  retx_.Release();
  rnr_wait_.Release();
  for (auto& q : path_queue_) q.Release();
  acks_.Trim();
  if (messages_.empty()) std::unordered_map<uint32_t, SendMessage>().swap(messages_);
}

size_t TransportContext::MemoryBytes() const {
  size_t n = sizeof(*this) + ring_.capacity() * sizeof(SentPacket) + unsent_.memory_bytes() +
             retx_.memory_bytes() + rnr_wait_.memory_bytes() +
             path_queue_.capacity() * sizeof(path_queue_[0]) +
             path_latest_acked_sent_.capacity() * sizeof(Nanos) + acks_.MemoryBytes() +
             assembly_.MemoryBytes();
  for (const auto& q : path_queue_) n += q.memory_bytes();
  // Hash tables: a bucket array plus one node per entry.
  n += messages_.bucket_count() * sizeof(void*) + sq_seq_.bucket_count() * sizeof(void*) +
       sq_seq_.size() * 24;
  for (const auto& [id, m] : messages_) {
    n += sizeof(m) + 16 + m.sgl.capacity() * sizeof(Sge) + m.sge_end.capacity() * 4;
  }
  return n;
}

bool TransportContext::Idle() const {
  return messages_.empty() && assembly_.Idle() && acks_.Idle() && !hello_ack_pending_ &&
         retx_.empty() && rnr_wait_.empty() && snd_una_ == snd_nxt_;
}

// ---------------------------------------------------------------- application

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
}

void TransportContext::FailAllSends(Code status) {
  std::vector<uint32_t> ids;
  ids.reserve(messages_.size());
  for (auto& [id, m] : messages_) ids.push_back(id);
  std::sort(ids.begin(), ids.end());
  for (uint32_t id : ids) CompleteSendMessage(id, status);
  unsent_.clear();
}

// ---------------------------------------------------------------- transmit

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

Nanos TransportContext::PathPto(int path) const {
  const Path& p = peer_.paths[path];
  // A path that has never been timed (it may never deliver at all) is judged by the fastest timed
  // path, not by the configured initial 1 ms: with that, every packet lost on a path dead from
  // the start waited 2 ms for its probe. The variance term keeps delay spikes from firing probes.
  const Path* ref = &p;
  if (!p.rtt.have_sample()) {
    for (const Path& o : peer_.paths) {
      if (o.rtt.have_sample() && (!ref->rtt.have_sample() || o.rtt.srtt() < ref->rtt.srtt())) {
        ref = &o;
      }
    }
  }
  const Nanos srtt = ref->rtt.srtt();
  const Nanos var = ref->rtt.have_sample() ? ref->rtt.rttvar() : srtt / 2;
  return std::max(std::max(2 * srtt, srtt + 4 * var) + ep_.t.ack_delay, ep_.t.min_pto) *
         p.delay_mult;
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

bool TransportContext::SendData(Nanos now, uint32_t psn, bool retx, std::span<uint8_t> buf,
                                Transmit& out) {
  SentPacket& s = Slot(psn);
  auto mit = messages_.find(s.msg_id);
  if (mit == messages_.end()) return false;
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
    if (acks_.Take(now, static_cast<uint8_t>(ack_path), wire::kMaxSackRanges, ack)) {
      c.flags |= wire::kFlagDupSeen;
    }
    piggy = &ack;
    ++ep_.stats.acks_piggybacked;
  }
  const size_t header = wire::EncodeDataHeader(c, d, buf, piggy);
  if (header == 0) return false;
  // Gather the fragment from the caller's SGL straight into the datagram.
  uint8_t* dst = buf.data() + header;
  uint32_t off = s.offset, left = s.len;
  size_t i = std::upper_bound(m.sge_end.begin(), m.sge_end.end(), off) - m.sge_end.begin();
  while (left > 0 && i < m.sgl.size()) {
    const uint32_t sge_start = m.sge_end[i] - static_cast<uint32_t>(m.sgl[i].len);
    const uint32_t in_sge = off - sge_start;
    const uint32_t n = std::min<uint32_t>(left, m.sge_end[i] - off);
    std::memcpy(dst, static_cast<const uint8_t*>(m.sgl[i].addr) + in_sge, n);
    dst += n;
    off += n;
    left -= n;
    ++i;
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
  } else {
    ++p.stats.sent;
  }
  ++ep_.stats.data_packets_sent;
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
  if (acks_.Take(now, path, max_ranges, a)) c.flags |= wire::kFlagDupSeen;
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
  if (!PollTransmitInner(now, buf, out)) return false;
  NoteActivity(now);
  return true;
}

bool TransportContext::PollTransmitInner(Nanos now, std::span<uint8_t> buf, Transmit& out) {
  // Control first: handshake, refusals, acks. They are small and unblock the peer.
  if (hello_ack_pending_) {
    hello_ack_pending_ = false;
    wire::Common c = MakeCommon(wire::Type::kHelloAck, hello_path_, now);
    wire::HelloExt h = MakeHello();
    h.echo_generation = hello_echo_generation_;
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

// ---------------------------------------------------------------- acks and loss

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
      p.rto_backoff = 0;
      if (p.state == PathState::kSuspect) {
        p.state = PathState::kActive;
        p.probe_due = kNever;
      }
    }
    // RACK reference: only when this path's own ack reported the packet, so the copy that
    // arrived is the one sent on this path (a late ack of an earlier copy sent elsewhere says
    // nothing about this path's order, and would fake losses here).
    if (s.path == ack_path && s.path < path_latest_acked_sent_.size()) {
      path_latest_acked_sent_[s.path] = std::max(path_latest_acked_sent_[s.path], s.sent_at);
    }
  }
  auto it = messages_.find(s.msg_id);
  if (it != messages_.end() && ++it->second.packets_acked == it->second.packets_total) {
    CompleteSendMessage(s.msg_id, Code::kOk);
  }
}

void TransportContext::AdvanceUna() {
  while (snd_una_ != snd_nxt_ && Slot(snd_una_).state == PacketState::kAcked) {
    Slot(snd_una_).state = PacketState::kFree;
    ++snd_una_;
  }
}

void TransportContext::DeclareLost(Nanos now, uint32_t psn, bool timeout) {
  SentPacket& s = Slot(psn);
  if (s.state != PacketState::kInFlight) return;
  s.state = PacketState::kLost;
  inflight_bytes_ -= s.len;
  retx_.push_back(psn);
  Path& p = peer_.paths[s.path];
  ++p.stats.lost;
  p.loss_ewma = p.loss_ewma * (1.0 - kLossEwmaGain) + kLossEwmaGain;
  if (!timeout) return;
  ++p.consecutive_losses;
  if (p.state == PathState::kActive && p.consecutive_losses >= ep_.cfg.suspect_after_losses) {
    p.state = PathState::kSuspect;
    ep_.suspect_peers.insert(peer_.id);
    p.suspect_since = now;
    ++p.stats.suspect_events;
    p.probe_interval = std::max(ep_.t.probe_interval, p.rtt.srtt());
    p.probe_due = now + p.probe_interval;
  }
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
    DeclareLost(now, e.psn, false);
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
  uint64_t acked_bytes = 0;
  if (static_cast<int32_t>(a.cum_psn - snd_una_) > 0) {
    for (uint32_t psn = snd_una_; psn != a.cum_psn; ++psn) MarkAcked(now, psn, -1, acked_bytes);
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
      if (p.common.type == wire::Type::kAck && (p.common.flags & wire::kFlagProbe)) {
        path.state = PathState::kActive;
        path.probe_due = kNever;
        path.consecutive_losses = 0;
        path.rto_backoff = 0;
      }
      srtt_ = (7 * srtt_ + rtt) / 8;
      // Congestion is judged per path against that path's own base RTT (paths differ in
      // delay), on a lightly smoothed delay so one reordered packet is not a congestion signal.
      path.recent_rtt = path.recent_rtt == 0 ? rtt : (3 * path.recent_rtt + rtt) / 4;
      cc_.OnAck(now, path.recent_rtt, path.rtt.min(), srtt_, acked_bytes);
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
    rnr_since_progress_ = true;
    s.state = PacketState::kRnrWait;
    inflight_bytes_ -= s.len;
    rnr_until_ = now + ep_.t.rnr_retry;
    rnr_wait_.push_back({rnr_until_, psn});
  } else {
    DeclareLost(now, psn, false);
  }
}

// ---------------------------------------------------------------- receive

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

void TransportContext::OnProbe(Nanos now, const wire::Packet& p) {
  last_heard_ = now;
  acks_.NoteArrival(now, p.common.path_id, p.common.tx_ts);
  acks_.OnProbe(p.common.path_id);
}

// ---------------------------------------------------------------- timers

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
    Close(now, Code::kTimedOut);
    return;
  }
  if (state_ != State::kEstablished) return;
  if (Pending() && now >= last_progress_ + ep_.t.peer_timeout) {
    // No progress for the whole timeout (a dead peer, or one that refuses everything): the
    // session ends. Sends fail, half-received messages give their buffers back, and late
    // packets of this session meet no partner (they are answered with RESET).
    ++ep_.stats.peer_timeouts;
    Close(now, rnr_since_progress_ ? Code::kRnrRetryExceeded : Code::kTimedOut);
    return;
  }
  while (!rnr_wait_.empty() && rnr_wait_.front().first <= now) {
    const uint32_t psn = rnr_wait_.front().second;
    rnr_wait_.pop_front();
    SentPacket& s = Slot(psn);
    if (InRange(psn, snd_una_, snd_nxt_) && s.state == PacketState::kRnrWait) {
      s.state = PacketState::kLost;  // re-send, without blaming the path
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
      DeclareLost(now, q.front().psn, /*timeout=*/true);
      q.pop_front();
      continue;
    }
    if (Slot(q.front().psn).sent_at + rto > now) continue;
    ++ep_.stats.rto_events;
    while (!q.empty()) {
      const PathEntry e = q.front();
      const SentPacket& s = Slot(e.psn);
      if (s.tx_count == e.tx_count && s.state == PacketState::kInFlight &&
          InRange(e.psn, snd_una_, snd_nxt_)) {
        if (s.sent_at + rto > now) break;
        DeclareLost(now, e.psn, true);
      }
      q.pop_front();
    }
    Path& p = peer_.paths[i];
    p.rto_backoff = std::min(p.rto_backoff + 1, kMaxRtoBackoff);
    cc_.OnTimeout(now, srtt_);
  }
}

}  // namespace opensrd
