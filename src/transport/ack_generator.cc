#include "transport/ack_generator.h"

#include <algorithm>

namespace opensrd {

namespace {
// NACKs are answers to packets; a burst of refusals beyond this is not worth remembering (the
// sender's timers cover them) and must not grow without bound under a flood.
constexpr size_t kMaxQueuedNacks = 1024;
constexpr size_t kMaxRetxFirst = 1024;
}  // namespace

AckGenerator::PathAcks& AckGenerator::For(uint8_t path) {
  if (path >= acks_.size()) acks_.resize(size_t{path} + 1);
  return acks_[path];
}

void AckGenerator::SetUrgent(PathAcks& st) {
  urgent_ += !st.now && !st.probe_reply;
  st.now = true;
}

void AckGenerator::NoteArrival(Nanos now, uint8_t path, uint32_t tx_ts) {
  PathAcks& st = For(path);
  st.echo_ts = tx_ts;
  st.echo_at = now;
}

void AckGenerator::OnNew(Nanos now, uint8_t path, uint32_t psn, bool retx) {
  rx_.Insert(psn);
  if (retx && retx_first_.insert(psn).second) {
    retx_first_order_.push_back(psn);
    if (retx_first_order_.size() > kMaxRetxFirst) {
      retx_first_.erase(retx_first_order_.front());
      retx_first_order_.pop_front();
    }
  }
  PathAcks& st = For(path);
  st.fresh.push_back(psn);
  if (++st.unacked >= ack_every_) {
    SetUrgent(st);
  } else if (st.due == kNever) {
    st.due = now + ack_delay_;
  }
}

void AckGenerator::OnDuplicate(uint8_t path, uint32_t psn, bool retx) {
  PathAcks& st = For(path);
  st.fresh.push_back(psn);
  if (!retx && retx_first_.erase(psn) > 0) st.dup_seen = true;
  // The first copy was the original (not a retransmission, so not a network duplicate of one).
  if (retx && retx_first_.count(psn) == 0) st.retx_dup = true;
  SetUrgent(st);
}

void AckGenerator::OnProbe(uint8_t path) {
  PathAcks& st = For(path);
  urgent_ += !st.now && !st.probe_reply;
  st.probe_reply = true;
}

void AckGenerator::QueueNack(uint8_t path, uint32_t psn, wire::NackReason reason) {
  if (nacks_.size() < kMaxQueuedNacks) nacks_.push_back({path, psn, reason});
}

AckGenerator::Nack AckGenerator::PopNack() {
  const Nack n = nacks_.front();
  nacks_.pop_front();
  return n;
}

bool AckGenerator::Due(uint8_t path, Nanos now) const {
  if (path >= acks_.size()) return false;
  const PathAcks& st = acks_[path];
  return st.now || st.probe_reply || (st.unacked > 0 && st.due <= now);
}

bool AckGenerator::Owes(uint8_t path) const {
  if (path >= acks_.size()) return false;
  const PathAcks& st = acks_[path];
  return st.now || st.unacked > 0;
}

int AckGenerator::AnyOwed(int preferred) const {
  if (preferred >= 0 && Owes(static_cast<uint8_t>(preferred))) return preferred;
  for (size_t i = 0; i < acks_.size(); ++i) {
    if (Owes(static_cast<uint8_t>(i))) return static_cast<int>(i);
  }
  return -1;
}

uint8_t AckGenerator::Take(Nanos now, uint8_t path, size_t max_ranges, wire::AckExt& a) {
  PathAcks& st = For(path);
  max_ranges = std::min(max_ranges, wire::kMaxSackRanges);
  a = wire::AckExt{};
  a.cum_psn = rx_.cum();
  // Turn the fresh PSNs above the cumulative point into ascending ranges; if they need more
  // ranges than fit, report the lowest and keep the rest for an ack right after this one.
  const uint32_t cum = a.cum_psn;
  auto& fresh = st.fresh;
  std::sort(fresh.begin(), fresh.end(), [cum](uint32_t x, uint32_t y) {
    return static_cast<int32_t>(x - cum) < static_cast<int32_t>(y - cum);
  });
  size_t i = 0;
  while (i < fresh.size() && static_cast<int32_t>(fresh[i] - cum) < 0) ++i;
  size_t rest = fresh.size();
  for (; i < fresh.size(); ++i) {
    const uint32_t psn = fresh[i];
    if (a.n_ranges > 0) {
      wire::SackRange& last = a.ranges[a.n_ranges - 1];
      if (psn - last.begin < last.end - last.begin) continue;  // reported twice
      if (psn == last.end) {
        ++last.end;
        continue;
      }
    }
    if (a.n_ranges == max_ranges) {
      rest = i;
      break;
    }
    a.ranges[a.n_ranges++] = {psn, psn + 1};
  }
  a.echo_ts = st.echo_ts;
  a.echo_path = path;
  // The hold time goes on the wire in microseconds (16 bits: up to 65 ms).
  a.ack_delay_us = static_cast<uint16_t>(std::min<Nanos>((now - st.echo_at) / 1000, 0xFFFF));
  fresh.erase(fresh.begin(), fresh.begin() + static_cast<std::ptrdiff_t>(rest));
  st.unacked = 0;
  st.due = kNever;
  const bool was_urgent = st.now || st.probe_reply;
  st.probe_reply = false;
  st.now = !fresh.empty();  // ranges left over: another ack right away
  urgent_ = urgent_ + (st.now ? 1 : 0) - (was_urgent ? 1 : 0);
  const uint8_t flags =
      (st.dup_seen ? wire::kFlagDupSeen : 0) | (st.retx_dup ? wire::kFlagRetxDup : 0);
  st.dup_seen = false;
  st.retx_dup = false;
  return flags;
}

void AckGenerator::Drop(uint8_t path) {
  if (path >= acks_.size()) return;
  PathAcks& st = acks_[path];
  urgent_ -= (st.now || st.probe_reply) ? 1 : 0;
  st = PathAcks{};
}

Nanos AckGenerator::NextDeadline() const {
  if (urgent_ > 0 || !nacks_.empty()) return 0;
  Nanos t = kNever;
  for (const PathAcks& st : acks_) {
    if (st.unacked > 0) t = std::min(t, st.due);
  }
  return t;
}

bool AckGenerator::Idle() const {
  if (urgent_ > 0 || !nacks_.empty()) return false;
  for (const PathAcks& st : acks_) {
    if (st.unacked > 0) return false;
  }
  return true;
}

void AckGenerator::Trim() {
  rx_.Trim();
  std::vector<PathAcks>().swap(acks_);
  urgent_ = 0;
  nacks_.Release();
  retx_first_.clear();
  std::unordered_set<uint32_t>().swap(retx_first_);
  retx_first_order_.Release();
}

size_t AckGenerator::MemoryBytes() const {
  size_t n = rx_.MemoryBytes() + acks_.capacity() * sizeof(PathAcks) + nacks_.memory_bytes() +
             retx_first_order_.memory_bytes() + retx_first_.bucket_count() * sizeof(void*) +
             retx_first_.size() * 16;
  for (const PathAcks& st : acks_) n += st.fresh.capacity() * sizeof(uint32_t);
  return n;
}

void AckGenerator::Reset() {
  rx_.Reset();
  retx_first_.clear();
  retx_first_order_.clear();
  acks_.clear();
  urgent_ = 0;
  nacks_.clear();
}

}  // namespace opensrd
