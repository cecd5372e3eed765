// TransportContext's lifecycle: handshake, negotiation, Close() (every way a session ends),
// idleness and the memory it gives back.
#include <algorithm>
#include <cstring>

#include "transport/context.h"
#include "transport/context_detail.h"

namespace opensrd {

using namespace context_detail;

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

void TransportContext::Establish(Nanos now, const wire::Packet& p) {
  remote_id_ = p.common.src_ctx;
  remote_generation_ = p.hello.generation;
  Negotiate(p.hello);
  state_ = State::kEstablished;
  ep_.NotePeerConnected(peer_, p.common.src_incarnation);
  hello_due_ = kNever;
  last_heard_ = now;
  NoteProgress(now);
}

void TransportContext::OnHello(Nanos now, const wire::Packet& p) {
  Establish(now, p);
  hello_ack_pending_ = true;  // it echoes remote_generation_, the HELLO's generation
  hello_path_ = p.common.path_id;
}

void TransportContext::OnHelloAck(Nanos now, const wire::Packet& p) {
  if (state_ == State::kIdle) return;  // an answer to a handshake we gave up on
  Establish(now, p);
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
  latest_acked_sent_ = second_acked_sent_ = 0;
  latest_acked_path_ = -1;
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

}  // namespace opensrd
