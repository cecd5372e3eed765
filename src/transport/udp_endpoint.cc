// UdpEndpoint: sockets, batching, adaptive waiting and fault injection around an Endpoint.
#include "transport/udp_endpoint.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/udp.h>
#include <sched.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <deque>
#include <queue>

#include "common/log.h"
#include "transport/wire.h"

namespace opensrd {

namespace {

// Datagrams moved per recvmmsg / sendmmsg call.
constexpr size_t kBatch = 32;
// recvmmsg calls per socket in one Poll step before the others get a turn.
constexpr int kRecvRoundsPerStep = 4;
// Datagrams pulled from the core in one Poll step before receiving again (acks must get in).
constexpr size_t kTxPerStep = 256;
// Transmit buffers: bounds what the shell holds when the kernel pushes back.
constexpr size_t kTxSlots = 512;
// Receive buffers hold the largest UDP payload, so no datagram is cut short.
constexpr size_t kRxBufLen = wire::kMaxDatagram + 1;
// epoll tag of wake fds (socket events carry the socket's index).
constexpr uint32_t kWakeTag = 0xFFFFFFFF;
// Empty spin rounds between sched_yield calls (see Poll).
constexpr uint32_t kSpinsPerYield = 4;
// Offset of the path id in the common header (docs/WIRE.md).
constexpr size_t kTypeOffset = 3, kFlagsOffset = 4, kPathIdOffset = 5;
// Up to this many sockets, Receive tries recvmmsg on each directly; beyond, one epoll_wait
// finds the readable ones first.
constexpr size_t kDirectRecvSockets = 4;
// UDP GSO: at most this many datagrams and this many bytes in one send (kernel limits).
constexpr size_t kGsoMaxSegments = 64;
constexpr size_t kGsoMaxBytes = 65000;
constexpr size_t kCmsgSpace = CMSG_SPACE(sizeof(uint16_t)) > CMSG_SPACE(sizeof(int))
                                  ? CMSG_SPACE(sizeof(uint16_t))
                                  : CMSG_SPACE(sizeof(int));

Status Errno(const std::string& what) {
  return Status(Code::kIoError, what + ": " + std::strerror(errno));
}

sockaddr_storage ToSockaddr(const NetAddr& a, socklen_t& len) {
  sockaddr_storage ss{};
  if (a.v6) {
    auto* s6 = reinterpret_cast<sockaddr_in6*>(&ss);
    s6->sin6_family = AF_INET6;
    std::memcpy(&s6->sin6_addr, a.ip6.data(), 16);
    s6->sin6_port = htons(a.port);
    len = sizeof(sockaddr_in6);
  } else {
    auto* s4 = reinterpret_cast<sockaddr_in*>(&ss);
    s4->sin_family = AF_INET;
    s4->sin_addr.s_addr = htonl(a.ip);
    s4->sin_port = htons(a.port);
    len = sizeof(sockaddr_in);
  }
  return ss;
}

NetAddr FromSockaddr(const sockaddr_storage& ss) {
  NetAddr a;
  if (ss.ss_family == AF_INET6) {
    const auto* s6 = reinterpret_cast<const sockaddr_in6*>(&ss);
    a.v6 = true;
    std::memcpy(a.ip6.data(), &s6->sin6_addr, 16);
    a.port = ntohs(s6->sin6_port);
  } else {
    const auto* s4 = reinterpret_cast<const sockaddr_in*>(&ss);
    a.ip = ntohl(s4->sin_addr.s_addr);
    a.port = ntohs(s4->sin_port);
  }
  return a;
}

void SetBuffer(int fd, int force_opt, int opt, int bytes) {
  // SO_*BUFFORCE ignores net.core.*mem_max (needs CAP_NET_ADMIN); fall back to the capped one.
  if (setsockopt(fd, SOL_SOCKET, force_opt, &bytes, sizeof bytes) != 0) {
    setsockopt(fd, SOL_SOCKET, opt, &bytes, sizeof bytes);
  }
}

// The wire path id of a datagram, or -1 if it does not look like ours.
// 0: not DATA; 1: DATA first sent; 2: DATA flagged as a retransmission.
int WireDataKind(const uint8_t* p, size_t len) {
  if (len < wire::kCommonLen || ((uint16_t{p[0]} << 8) | p[1]) != wire::kMagic) return 0;
  if (p[kTypeOffset] != static_cast<uint8_t>(wire::Type::kData)) return 0;
  return (p[kFlagsOffset] & wire::kFlagRetx) ? 2 : 1;
}

int WirePathId(const uint8_t* p, size_t len) {
  if (len < wire::kCommonLen) return -1;
  if (((uint16_t{p[0]} << 8) | p[1]) != wire::kMagic) return -1;
  return p[kPathIdOffset];
}

}  // namespace

class UdpEndpoint::Impl {
 public:
  explicit Impl(const UdpEndpointOptions& o)
      : opts_(o),
        ep_(o.endpoint),
        injector_(o.fault, o.fault_seed),
        tx_len_(MaxDatagramSize(o.endpoint)) {
    clock_gettime(CLOCK_MONOTONIC, &start_);
  }

  ~Impl() {
    for (int fd : fds_) close(fd);
    if (epfd_ >= 0) close(epfd_);
  }

  Status Open() {
    if (opts_.local.empty()) return Status(Code::kInvalidArgument, "UdpEndpoint needs a socket");
    if (opts_.local.size() > 0xFFFF) return Status(Code::kInvalidArgument, "too many sockets");
    epfd_ = epoll_create1(EPOLL_CLOEXEC);
    if (epfd_ < 0) return Errno("epoll_create1");
    for (size_t i = 0; i < opts_.local.size(); ++i) {
      const int family = opts_.local[i].v6 ? AF_INET6 : AF_INET;
      const int fd = socket(family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
      if (fd < 0) return Errno("socket");
      fds_.push_back(fd);
      SetBuffer(fd, SO_RCVBUFFORCE, SO_RCVBUF, opts_.socket_buffer_bytes);
      SetBuffer(fd, SO_SNDBUFFORCE, SO_SNDBUF, opts_.socket_buffer_bytes);
      if (opts_.gso) {
        // Receive coalesced batches (split below) and send with UDP_SEGMENT; a kernel without
        // them just leaves us on one datagram per buffer.
        const int one = 1;
        gro_ = setsockopt(fd, SOL_UDP, UDP_GRO, &one, sizeof one) == 0 && (i == 0 || gro_);
        const int probe = 1400;
        gso_ = setsockopt(fd, SOL_UDP, UDP_SEGMENT, &probe, sizeof probe) == 0 && (i == 0 || gso_);
        const int zero = 0;
        setsockopt(fd, SOL_UDP, UDP_SEGMENT, &zero, sizeof zero);
      }
      socklen_t len = 0;
      sockaddr_storage sa = ToSockaddr(opts_.local[i], len);
      if (bind(fd, reinterpret_cast<sockaddr*>(&sa), len) != 0) {
        return Errno("bind " + ToString(opts_.local[i]));
      }
      socklen_t sl = sizeof sa;
      if (getsockname(fd, reinterpret_cast<sockaddr*>(&sa), &sl) != 0) return Errno("getsockname");
      bound_.push_back(FromSockaddr(sa));
      epoll_event ev{};
      ev.events = EPOLLIN;
      ev.data.u32 = static_cast<uint32_t>(i);
      if (epoll_ctl(epfd_, EPOLL_CTL_ADD, fd, &ev) != 0) return Errno("epoll_ctl");
    }
    pending_.resize(fds_.size());
    pending_since_.resize(fds_.size());
    gso_full_ = std::min(kGsoMaxSegments, kGsoMaxBytes / tx_len_);
    tx_buf_.resize(kTxSlots * tx_len_);
    tx_slots_.resize(kTxSlots);
    for (uint32_t i = 0; i < kTxSlots; ++i) free_slots_.push_back(kTxSlots - 1 - i);
    rx_buf_.resize(kBatch * kRxBufLen);
    rx_from_.resize(kBatch);
    rx_iov_.resize(kBatch);
    rx_msgs_.resize(kBatch);
    rx_cmsg_.resize(kBatch * kCmsgSpace);
    tx_iov_.resize(kBatch * kGsoMaxSegments);
    tx_to_.resize(kBatch);
    tx_msgs_.resize(kBatch);
    tx_cmsg_.resize(kBatch * kCmsgSpace);
    tx_count_.resize(kBatch);
    readable_.assign(fds_.size(), true);
    return Status::Ok();
  }

  bool gso_enabled() const { return gso_ && gro_; }

  Status AddWakeFd(int fd) {
    epoll_event ev{};
    ev.events = EPOLLIN;
    ev.data.u32 = kWakeTag;
    if (epoll_ctl(epfd_, EPOLL_CTL_ADD, fd, &ev) != 0) return Errno("epoll_ctl wake fd");
    return Status::Ok();
  }
  int epfd() const { return epfd_; }

  // The shell keeps time in microseconds (waits, spins, held packets); the core runs on
  // nanoseconds. Both from one clock: NowNs() / 1000 == Now().
  Nanos NowNs() const {
    timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    const int64_t ns = (t.tv_sec - start_.tv_sec) * 1'000'000'000 + (t.tv_nsec - start_.tv_nsec);
    return static_cast<Nanos>(ns) + 1000;
  }
  Micros Now() const { return NowNs() / 1000; }
  // The core's next deadline on the shell's microsecond clock (rounded up: never early).
  Micros CoreDeadline() const {
    const Nanos t = ep_.NextTimeout();
    return t == kNever ? kNever : (t + 999) / 1000;
  }

  Result<size_t> Poll(Micros max_wait_us) {
    Result<size_t> moved = Step();
    if (!moved.ok()) return moved;
    const Micros now = Now();
    if (*moved > 0) last_activity_ = now;
    if (*moved > 0) {
      idle_spins_ = 0;
      return moved;
    }
    if (max_wait_us == 0 || TxPending() || now < last_activity_ + opts_.spin_us) {
      // Spinning. Every few empty rounds give the CPU away for a moment: on loopback the kernel
      // delivers our peer's datagrams from ksoftirqd, and with a spinner on every core it would
      // starve (measured: packets trickling in one per spin period, then retransmission
      // timeouts). Yielding on every round instead costs small-message latency.
      if (++idle_spins_ % kSpinsPerYield == 0) sched_yield();
      return moved;
    }
    // Idle: sleep until a socket is readable or the next deadline (core timer, held packet).
    Micros deadline = std::min(now + max_wait_us, CoreDeadline());
    if (!held_.empty()) deadline = std::min(deadline, held_.top().due);
    if (deadline <= now) return moved;
    Status s = Wait(deadline - now);
    if (!s.ok()) return s;
    Result<size_t> more = Step();
    if (!more.ok()) return more;
    if (*more > 0) last_activity_ = Now();
    return *moved + *more;
  }

  UdpEndpointOptions opts_;
  Endpoint ep_;
  FaultInjector injector_;
  UdpStats stats_;
  // Per-datagram events are logged at most 10 a second each (bursts of 10), with the number
  // left unlogged in between.
  log::RateLimit send_error_log_{10, 10};
  log::RateLimit filtered_log_{10, 10};
  log::RateLimit fault_log_{10, 10};
  spdlog::logger* log_ = &log::Get("udp");
  std::vector<int> fds_;
  std::vector<NetAddr> bound_;

 private:
  struct TxSlot {
    uint16_t socket = 0;
    NetAddr remote;
    uint32_t len = 0;
  };
  // A datagram the fault injector delayed, in either direction.
  struct Held {
    Micros due = 0;
    uint64_t seq = 0;  // FIFO among equal deadlines
    bool inbound = false;
    uint16_t socket = 0;
    NetAddr addr;  // source (inbound) or destination (outbound)
    std::vector<uint8_t> bytes;
    bool operator>(const Held& o) const { return due != o.due ? due > o.due : seq > o.seq; }
  };

  uint8_t* SlotData(uint32_t slot) { return tx_buf_.data() + size_t{slot} * tx_len_; }
  bool TxPending() const {
    for (const auto& q : pending_) {
      if (!q.empty()) return true;
    }
    return false;
  }

  Result<size_t> Step() {
    size_t moved = 0;
    // One clock read per half step: the core sees step_ns_ (a clock read per datagram cost
    // ~6% of a spinning client's CPU).
    step_ns_ = NowNs();
    Micros now = step_ns_ / 1000;
    // What the application posted since the last step goes out before we look for input: a
    // reply should not wait behind a receive system call.
    moved += Transmit(now);
    ReleaseHeld(now, moved);
    Result<size_t> in = Receive(now);
    if (!in.ok()) return in;
    moved += *in;
    step_ns_ = NowNs();
    now = step_ns_ / 1000;
    if (ep_.NextTimeout() <= step_ns_) {
      ep_.HandleTimeout(step_ns_);
      last_activity_ = now;
    }
    moved += Transmit(now);
    return moved;
  }
  Nanos step_ns_ = 0;  // the core's "now" during the current step

  // Moves delayed datagrams whose time has come on to the core (inbound) or the wire.
  void ReleaseHeld(Micros now, size_t& moved) {
    while (!held_.empty() && held_.top().due <= now) {
      Held h = std::move(const_cast<Held&>(held_.top()));
      held_.pop();
      if (h.inbound) {
        ep_.HandleDatagram(step_ns_, h.socket, h.addr, h.bytes);
        ++moved;
      } else if (h.bytes.size() > tx_len_) {
        ++stats_.send_errors;  // cannot happen: it came from a transmit slot
      } else if (!free_slots_.empty()) {
        const uint32_t slot = free_slots_.back();
        free_slots_.pop_back();
        std::memcpy(SlotData(slot), h.bytes.data(), h.bytes.size());
        tx_slots_[slot] = {h.socket, h.addr, static_cast<uint32_t>(h.bytes.size())};
        Enqueue(h.socket, slot, now);
      } else {
        // No slot free now: keep it held a little longer rather than drop it.
        h.due = now + 1;
        held_.push(std::move(h));
        break;
      }
    }
  }

  void Hold(Micros due, bool inbound, uint16_t socket, const NetAddr& addr, const uint8_t* p,
            size_t len) {
    ++stats_.fault_delayed;
    held_.push(Held{due, held_seq_++, inbound, socket, addr, std::vector<uint8_t>(p, p + len)});
  }

  // An arriving datagram: captured, then the path filter and the injector's receive-side
  // verdict.
  void Deliver(Micros now, uint16_t sock, const NetAddr& from, uint8_t* p, size_t len) {
    if (opts_.pcap != nullptr) opts_.pcap->Append(from, bound_[sock], {p, len});
    if (opts_.max_path_id > 0) {
      const int path = WirePathId(p, len);
      if (path >= 0 && static_cast<uint32_t>(path) >= opts_.max_path_id) {
        ++stats_.path_filtered;
        uint64_t skipped = 0;
        spdlog::logger& lg = *log_;
        if (lg.should_log(spdlog::level::debug) && filtered_log_.Allow(now, skipped)) {
          lg.debug("datagram refused by the path filter from={} path={} max_paths={} unlogged={}",
                   ToString(from), path, opts_.max_path_id, skipped);
        }
        return;
      }
    }
    if (!opts_.inject_faults) {
      ep_.HandleDatagram(step_ns_, sock, from, {p, len});
      return;
    }
    const FaultInjector::Verdict v = injector_.Decide(sock, now);
    if (v.drop) {
      ++stats_.fault_dropped;
      LogFaultDrop(now, "in", sock);
      return;
    }
    if (v.corrupt) {
      injector_.CorruptInPlace({p, len});
      ++stats_.fault_corrupted;
    }
    if (v.copies > 1) ++stats_.fault_duplicated;
    for (uint32_t c = 0; c < v.copies; ++c) {
      if (v.delay_us > 0) {
        Hold(now + v.delay_us, true, sock, from, p, len);
      } else {
        ep_.HandleDatagram(step_ns_, sock, from, {p, len});
      }
    }
  }

  Result<size_t> Receive(Micros now) {
    size_t total = 0;
    // With many sockets one epoll call finds the readable ones; with a few, trying recvmmsg on
    // each directly is cheaper (measured: 64 B round trip over 4 paths 6.2 -> 5.7 us).
    if (fds_.size() > kDirectRecvSockets) {
      epoll_event evs[64];
      const int n = epoll_wait(epfd_, evs, 64, 0);
      if (n < 0 && errno != EINTR) return Errno("epoll_wait");
      std::fill(readable_.begin(), readable_.end(), false);
      for (int i = 0; i < n; ++i) {
        if (evs[i].data.u32 != kWakeTag) readable_[evs[i].data.u32] = true;
      }
    }
    for (size_t s = 0; s < fds_.size(); ++s) {
      if (!readable_[s]) continue;
      for (int round = 0; round < kRecvRoundsPerStep; ++round) {
        for (size_t i = 0; i < kBatch; ++i) {
          rx_iov_[i] = {rx_buf_.data() + i * kRxBufLen, kRxBufLen};
          rx_msgs_[i] = {};
          rx_msgs_[i].msg_hdr.msg_name = &rx_from_[i];
          rx_msgs_[i].msg_hdr.msg_namelen = sizeof(sockaddr_storage);
          rx_msgs_[i].msg_hdr.msg_iov = &rx_iov_[i];
          rx_msgs_[i].msg_hdr.msg_iovlen = 1;
          if (gro_) {
            rx_msgs_[i].msg_hdr.msg_control = rx_cmsg_.data() + i * kCmsgSpace;
            rx_msgs_[i].msg_hdr.msg_controllen = kCmsgSpace;
          }
        }
        const int n = recvmmsg(fds_[s], rx_msgs_.data(), kBatch, MSG_DONTWAIT, nullptr);
        if (n < 0) {
          if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) break;
          // Errors queued by ICMP (e.g. ECONNREFUSED) are per datagram, not fatal.
          if (errno == ECONNREFUSED || errno == EHOSTUNREACH || errno == ENETUNREACH) continue;
          return Errno("recvmmsg");
        }
        ++stats_.recv_calls;
        stats_.datagrams_received += n;
        total += n;
        // The batch is timed now, after it is all in: datagrams that arrived during this step's
        // sends would otherwise carry the step's start time, from before they came, and the
        // RTT samples they give (ack echo) or start (the receiver's ack delay) come out short,
        // down to the 1 ns clamp on loopback. One clock read per non-empty batch.
        step_ns_ = NowNs();
        now = step_ns_ / 1000;
        for (int i = 0; i < n; ++i) {
          if (rx_msgs_[i].msg_hdr.msg_flags & MSG_TRUNC) {
            ++stats_.recv_truncated;
            continue;
          }
          uint8_t* data = rx_buf_.data() + i * kRxBufLen;
          const size_t len = rx_msgs_[i].msg_len;
          const size_t seg = GroSegmentSize(rx_msgs_[i].msg_hdr);
          const NetAddr from = FromSockaddr(rx_from_[i]);
          if (seg == 0 || seg >= len) {
            Deliver(now, static_cast<uint16_t>(s), from, data, len);
            continue;
          }
          // A GRO batch: equal segments, the last possibly shorter; each is one datagram.
          ++stats_.gro_batches;
          for (size_t off = 0; off < len; off += seg) {
            Deliver(now, static_cast<uint16_t>(s), from, data + off, std::min(seg, len - off));
          }
        }
        if (static_cast<size_t>(n) < kBatch) break;
      }
    }
    return total;
  }

  static size_t GroSegmentSize(const msghdr& h) {
    for (cmsghdr* c = CMSG_FIRSTHDR(&h); c != nullptr;
         c = CMSG_NXTHDR(const_cast<msghdr*>(&h), c)) {
      if (c->cmsg_level == SOL_UDP && c->cmsg_type == UDP_GRO) {
        int v = 0;
        std::memcpy(&v, CMSG_DATA(c), sizeof v);
        return v > 0 ? static_cast<size_t>(v) : 0;
      }
    }
    return 0;
  }

  void Enqueue(uint16_t socket, uint32_t slot, Micros now) {
    if (pending_[socket].empty()) pending_since_[socket] = now;
    pending_[socket].push_back(slot);
  }

  // Whether socket s's queue may wait for more datagrams to fill a larger GSO send
  // (UdpEndpointOptions::gso_cork_us): only while it ends in a full-size datagram (bulk data; an
  // ack, a control packet or the short last packet of a message sends the queue at once), only
  // until one send would be full, and only for gso_cork_us after its oldest datagram came.
  bool Corked(size_t s, Micros now) const {
    const std::deque<uint32_t>& q = pending_[s];
    if (!gso_ || opts_.gso_cork_us == 0 || q.empty()) return false;
    if (tx_slots_[q.back()].len != tx_len_ || q.size() >= gso_full_) return false;
    return now < pending_since_[s] + opts_.gso_cork_us;
  }

  // Trace level: one line per injected drop, rate-limited (a lossy run drops thousands).
  void LogFaultDrop(Micros now, const char* dir, uint16_t socket) {
    spdlog::logger& lg = *log_;
    if (!lg.should_log(spdlog::level::trace)) return;
    uint64_t skipped = 0;
    if (fault_log_.Allow(now, skipped)) {
      lg.trace("fault injector dropped a datagram dir={} socket={} unlogged={}", dir, socket,
               skipped);
    }
  }

  void CountOutboundFault(bool dropped, int data_kind) {
    ++(dropped ? stats_.fault_out_dropped : stats_.fault_out_duplicated);
    if (data_kind == 0) return;
    ++(dropped ? stats_.fault_out_data_dropped : stats_.fault_out_data_duplicated);
    if (data_kind == 2)
      ++(dropped ? stats_.fault_out_retx_dropped : stats_.fault_out_retx_duplicated);
  }

  // The injector's send-side verdict on a datagram the core produced into `slot`.
  void Outbound(Micros now, uint32_t slot) {
    TxSlot& t = tx_slots_[slot];
    if (!opts_.inject_faults) {
      Enqueue(t.socket, slot, now);
      return;
    }
    const FaultInjector::Verdict v = injector_.Decide(t.socket, now);
    const int kind = v.drop || v.copies > 1 ? WireDataKind(SlotData(slot), t.len) : 0;
    if (v.drop) {
      CountOutboundFault(true, kind);
      ++stats_.fault_dropped;
      LogFaultDrop(now, "out", t.socket);
      free_slots_.push_back(slot);
      return;
    }
    uint8_t* p = SlotData(slot);
    if (v.corrupt) {
      injector_.CorruptInPlace({p, t.len});
      ++stats_.fault_corrupted;
    }
    if (v.copies > 1) ++stats_.fault_duplicated;
    if (v.delay_us > 0) {
      if (v.copies > 1) CountOutboundFault(false, kind);
      for (uint32_t c = 0; c < v.copies; ++c)
        Hold(now + v.delay_us, false, t.socket, t.remote, p, t.len);
      free_slots_.push_back(slot);
      return;
    }
    Enqueue(t.socket, slot, now);
    if (v.copies > 1 && !free_slots_.empty()) {
      CountOutboundFault(false, kind);  // counted only when the copy really goes out
      const uint32_t dup = free_slots_.back();
      free_slots_.pop_back();
      std::memcpy(SlotData(dup), p, t.len);
      tx_slots_[dup] = t;
      Enqueue(t.socket, dup, now);
    }
  }

  // Pulls datagrams from the core and sends them, batched per socket.
  size_t Transmit(Micros now) {
    size_t sent = Flush(now);
    size_t pulled = 0;
    while (pulled < kTxPerStep) {
      size_t batch = 0;
      // Keep one slot spare for a duplicate; stop pulling while the kernel pushes back.
      while (batch < kBatch && free_slots_.size() > 1 && !blocked_) {
        const uint32_t slot = free_slots_.back();
        opensrd::Transmit t;
        if (!ep_.PollTransmit(step_ns_, {SlotData(slot), tx_len_}, t)) break;
        free_slots_.pop_back();
        ++batch;
        if (t.local_socket >= fds_.size() || t.len > tx_len_) {
          ++stats_.send_errors;  // the core named a socket we do not have
          free_slots_.push_back(slot);
          continue;
        }
        tx_slots_[slot] = {t.local_socket, t.remote, static_cast<uint32_t>(t.len)};
        Outbound(now, slot);
      }
      if (batch == 0) break;
      pulled += batch;
      sent += Flush(now);
    }
    return sent + pulled;  // activity, not an exact count: a pulled datagram may be sent twice
  }

  // sendmmsg of everything pending, per socket. With GSO, consecutive datagrams to the same
  // address whose sizes match (the last may be shorter) leave as one UDP_SEGMENT send. Returns
  // datagrams handed to the kernel.
  size_t Flush(Micros now) {
    size_t sent = 0;
    blocked_ = false;
    for (size_t s = 0; s < fds_.size(); ++s) {
      if (Corked(s, now)) continue;
      std::deque<uint32_t>& q = pending_[s];
      while (!q.empty()) {
        size_t msgs = 0, used = 0, iovs = 0;
        while (msgs < kBatch && used < q.size()) {
          const TxSlot& first = tx_slots_[q[used]];
          size_t k = 1, bytes = first.len;
          if (gso_) {
            while (used + k < q.size() && k < kGsoMaxSegments) {
              const TxSlot& t = tx_slots_[q[used + k]];
              if (!(t.remote == first.remote) || t.len > first.len ||
                  bytes + t.len > kGsoMaxBytes) {
                break;
              }
              bytes += t.len;
              ++k;
              if (t.len < first.len) break;  // a shorter segment ends the batch
            }
          }
          mmsghdr& m = tx_msgs_[msgs];
          m = {};
          socklen_t to_len = 0;
          tx_to_[msgs] = ToSockaddr(first.remote, to_len);
          m.msg_hdr.msg_name = &tx_to_[msgs];
          m.msg_hdr.msg_namelen = to_len;
          m.msg_hdr.msg_iov = &tx_iov_[iovs];
          m.msg_hdr.msg_iovlen = k;
          for (size_t x = 0; x < k; ++x) {
            tx_iov_[iovs++] = {SlotData(q[used + x]), tx_slots_[q[used + x]].len};
          }
          if (k > 1) {
            uint8_t* cbuf = tx_cmsg_.data() + msgs * kCmsgSpace;
            std::memset(cbuf, 0, kCmsgSpace);
            m.msg_hdr.msg_control = cbuf;
            m.msg_hdr.msg_controllen = CMSG_SPACE(sizeof(uint16_t));
            cmsghdr* c = CMSG_FIRSTHDR(&m.msg_hdr);
            c->cmsg_level = SOL_UDP;
            c->cmsg_type = UDP_SEGMENT;
            c->cmsg_len = CMSG_LEN(sizeof(uint16_t));
            const auto seg = static_cast<uint16_t>(first.len);
            std::memcpy(CMSG_DATA(c), &seg, sizeof seg);
            ++stats_.gso_batches;
          }
          tx_count_[msgs] = k;
          used += k;
          ++msgs;
        }
        const int r = sendmmsg(fds_[s], tx_msgs_.data(), static_cast<unsigned>(msgs), MSG_DONTWAIT);
        ++stats_.send_calls;
        if (r < 0) {
          if (errno == EAGAIN || errno == EWOULDBLOCK || errno == ENOBUFS || errno == EINTR) {
            ++stats_.send_retries;  // kept; retried on the next step
            blocked_ = true;
            break;
          }
          // This message cannot be sent (e.g. EMSGSIZE): drop its datagrams, counted.
          uint64_t skipped = 0;
          if (send_error_log_.Allow(Now(), skipped)) {
            log_->warn("send failed socket={} errno={} ({}) datagrams={} unlogged={}", s, errno,
                       std::strerror(errno), tx_count_[0], skipped);
          }
          for (size_t x = 0; x < tx_count_[0]; ++x) {
            ++stats_.send_errors;
            free_slots_.push_back(q.front());
            q.pop_front();
          }
          continue;
        }
        if (opts_.pcap != nullptr) Capture(s, static_cast<size_t>(r));
        for (int i = 0; i < r; ++i) {
          for (size_t x = 0; x < tx_count_[i]; ++x) {
            free_slots_.push_back(q.front());
            q.pop_front();
            ++sent;
            ++stats_.datagrams_sent;
          }
        }
        if (static_cast<size_t>(r) < msgs) {
          blocked_ = true;  // the kernel took only part: retry the rest on the next step
          break;
        }
      }
    }
    return sent;
  }

  // Records the datagrams of the first `msgs` messages of socket s's last sendmmsg (the front
  // of its queue), which the kernel took.
  void Capture(size_t s, size_t msgs) {
    const std::deque<uint32_t>& q = pending_[s];
    size_t at = 0;
    for (size_t i = 0; i < msgs; ++i) {
      for (size_t x = 0; x < tx_count_[i]; ++x, ++at) {
        const TxSlot& t = tx_slots_[q[at]];
        opts_.pcap->Append(bound_[s], t.remote, {SlotData(q[at]), t.len});
      }
    }
  }

  Status Wait(Micros timeout_us) {
    ++stats_.waits;
    timespec ts{static_cast<time_t>(timeout_us / 1'000'000),
                static_cast<long>((timeout_us % 1'000'000) * 1000)};
    epoll_event evs[64];
    const int n = epoll_pwait2(epfd_, evs, 64, &ts, nullptr);
    // The events are level-triggered: Receive() finds the readable sockets again.
    if (n < 0 && errno != EINTR) return Errno("epoll_pwait2");
    return Status::Ok();
  }

  timespec start_{};
  const size_t tx_len_;
  int epfd_ = -1;
  Micros last_activity_ = 0;
  bool blocked_ = false;
  uint32_t idle_spins_ = 0;  // the last Flush met EAGAIN/ENOBUFS
  std::vector<uint8_t> tx_buf_;
  std::vector<TxSlot> tx_slots_;
  std::vector<uint32_t> free_slots_;
  std::vector<std::deque<uint32_t>> pending_;  // per socket, slots to send in order
  std::vector<Micros> pending_since_;          // per socket, when its queue became non-empty
  size_t gso_full_ = 1;                        // full-size datagrams in one full GSO send
  std::vector<uint8_t> rx_buf_;
  std::vector<sockaddr_storage> rx_from_;
  std::vector<iovec> rx_iov_;
  std::vector<mmsghdr> rx_msgs_;
  std::vector<sockaddr_storage> tx_to_;
  std::vector<iovec> tx_iov_;
  std::vector<mmsghdr> tx_msgs_;
  std::vector<uint8_t> rx_cmsg_;
  std::vector<uint8_t> tx_cmsg_;
  std::vector<size_t> tx_count_;  // datagrams in each tx_msgs_ entry
  bool gso_ = false;
  bool gro_ = false;
  std::vector<bool> readable_;
  std::priority_queue<Held, std::vector<Held>, std::greater<Held>> held_;
  uint64_t held_seq_ = 0;
};

Result<std::unique_ptr<UdpEndpoint>> UdpEndpoint::Create(const UdpEndpointOptions& options) {
  std::unique_ptr<Impl> impl;
  try {
    impl = std::make_unique<Impl>(options);  // Endpoint validates its config by throwing
  } catch (const std::exception& e) {
    return Status(Code::kInvalidArgument, e.what());
  }
  Status s = impl->Open();
  if (!s.ok()) return s;
  return std::unique_ptr<UdpEndpoint>(new UdpEndpoint(std::move(impl)));
}

UdpEndpoint::UdpEndpoint(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
UdpEndpoint::~UdpEndpoint() = default;

Endpoint& UdpEndpoint::endpoint() {
  return impl_->ep_;
}
const Endpoint& UdpEndpoint::endpoint() const {
  return impl_->ep_;
}
Micros UdpEndpoint::Now() const {
  return impl_->Now();
}
Nanos UdpEndpoint::NowNs() const {
  return impl_->NowNs();
}
size_t UdpEndpoint::num_sockets() const {
  return impl_->fds_.size();
}
NetAddr UdpEndpoint::local_address(size_t i) const {
  return impl_->bound_.at(i);
}
const UdpStats& UdpEndpoint::stats() const {
  return impl_->stats_;
}
bool UdpEndpoint::gso_enabled() const {
  return impl_->gso_enabled();
}
Status UdpEndpoint::AddWakeFd(int fd) {
  return impl_->AddWakeFd(fd);
}
int UdpEndpoint::poll_fd() const {
  return impl_->epfd();
}

Result<size_t> UdpEndpoint::Poll(Micros max_wait_us) {
  return impl_->Poll(max_wait_us);
}

}  // namespace opensrd
