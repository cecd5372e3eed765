#include "rdma/roce_udp.h"

#include <arpa/inet.h>
#include <linux/filter.h>
#include <netinet/in.h>
#include <poll.h>
#include <sched.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <ctime>
#include <iterator>
#include <string>

#include "rdma/ib_cm.h"
#include "rdma/roce.h"

namespace opensrd::rdma::roce {
namespace {

Status Errno(const std::string& what) {
  return Status(Code::kIoError, what + ": " + std::strerror(errno));
}

sockaddr_in Addr(uint32_t ip, uint16_t port) {
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(ip);
  a.sin_port = htons(port);
  return a;
}

}  // namespace

uint64_t RoceUdpShell::NowMicros() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return uint64_t(ts.tv_sec) * 1'000'000 + uint64_t(ts.tv_nsec) / 1000;
}

Result<std::unique_ptr<RoceUdpShell>> RoceUdpShell::Open(const Options& options) {
  if (!(options.reorder >= 0 && options.reorder <= 1)) {
    return Status(Code::kInvalidArgument, "reorder probability must be in [0, 1]");
  }
  std::unique_ptr<RoceUdpShell> s(new RoceUdpShell());
  s->opt_ = options;
  s->reorder_rng_.seed(options.reorder_seed);
  s->rx_buf_.resize(kRecvBatch * kRecvSlot);
  s->udp_fd_ = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  if (s->udp_fd_ < 0) return Errno("socket");
  int big = 8 << 20;
  setsockopt(s->udp_fd_, SOL_SOCKET, SO_RCVBUF, &big, sizeof big);
  sockaddr_in a = Addr(options.local_ip, options.port);
  if (bind(s->udp_fd_, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
    return Errno("bind UDP " + std::to_string(options.port));
  }
  if (options.raw_receive) {
    s->raw_fd_ = socket(AF_INET, SOCK_RAW | SOCK_CLOEXEC | SOCK_NONBLOCK, IPPROTO_UDP);
    if (s->raw_fd_ >= 0) {
      setsockopt(s->raw_fd_, SOL_SOCKET, SO_RCVBUF, &big, sizeof big);
      // The raw socket would copy (and wake us for) every UDP datagram the host receives: keep
      // only IPv4 headers without options (what Receive parses) to our address and port.
      const uint32_t drop = 7;
      sock_filter ours[] = {
          {BPF_LD | BPF_B | BPF_ABS, 0, 0, 0},  // version and header length
          {BPF_JMP | BPF_JEQ | BPF_K, 0, static_cast<uint8_t>(drop - 2), 0x45},
          {BPF_LD | BPF_W | BPF_ABS, 0, 0, 16},  // destination address
          {BPF_JMP | BPF_JEQ | BPF_K, 0, static_cast<uint8_t>(drop - 4), options.local_ip},
          {BPF_LD | BPF_H | BPF_ABS, 0, 0, 22},  // UDP destination port
          {BPF_JMP | BPF_JEQ | BPF_K, 0, static_cast<uint8_t>(drop - 6), options.port},
          {BPF_RET | BPF_K, 0, 0, 0xFFFF},  // the whole datagram
          {BPF_RET | BPF_K, 0, 0, 0},       // drop
      };
      sock_fprog keep{static_cast<unsigned short>(std::size(ours)), ours};
      if (setsockopt(s->raw_fd_, SOL_SOCKET, SO_ATTACH_FILTER, &keep, sizeof keep) != 0) {
        return Errno("SO_ATTACH_FILTER (raw)");
      }
      // The port's socket drops everything: the raw socket already has a copy.
      sock_filter drop_all{BPF_RET | BPF_K, 0, 0, 0};
      sock_fprog prog{1, &drop_all};
      if (setsockopt(s->udp_fd_, SOL_SOCKET, SO_ATTACH_FILTER, &prog, sizeof prog) != 0) {
        return Errno("SO_ATTACH_FILTER");
      }
    }
  }
  return s;
}

RoceUdpShell::~RoceUdpShell() {
  for (Attached& q : qps_) close(q.fd);
  if (gsi_fd_ >= 0) close(gsi_fd_);
  if (raw_fd_ >= 0) close(raw_fd_);
  if (udp_fd_ >= 0) close(udp_fd_);
}

Result<uint16_t> RoceUdpShell::Attach(RcQueuePair* qp, uint32_t local_qpn, uint32_t peer_ip,
                                      uint16_t peer_port) {
  Result<int> fd_or = SendSocket();
  if (!fd_or.ok()) return fd_or.status();
  const int fd = *fd_or;
  sockaddr_in a{};
  socklen_t len = sizeof a;
  getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
  uint16_t port = ntohs(a.sin_port);
  qps_.push_back({qp, local_qpn & kPsnMask, peer_ip, peer_port, fd, port, {}, 0});
  return port;
}

void RoceUdpShell::Detach(const RcQueuePair* qp) {
  for (auto it = qps_.begin(); it != qps_.end(); ++it) {
    if (it->qp == qp) {
      close(it->fd);
      qps_.erase(it);
      return;
    }
  }
}

Result<int> RoceUdpShell::SendSocket() {
  int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return Errno("socket");
  // DF, and with it IP identification 0 on an unconnected socket: the ICRC covers the ID.
  int pmtu = IP_PMTUDISC_DO;
  int big = 4 << 20;
  setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &big, sizeof big);
  sockaddr_in a = Addr(opt_.local_ip, 0);
  if (setsockopt(fd, IPPROTO_IP, IP_MTU_DISCOVER, &pmtu, sizeof pmtu) != 0 ||
      bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
    Status st = Errno("send socket");
    close(fd);
    return st;
  }
  return fd;
}

Status RoceUdpShell::SendGsi(uint32_t peer_ip, std::vector<uint8_t> pkt, uint16_t peer_port) {
  if (gsi_fd_ < 0) {
    Result<int> fd = SendSocket();
    if (!fd.ok()) return fd.status();
    gsi_fd_ = *fd;
    sockaddr_in a{};
    socklen_t len = sizeof a;
    getsockname(gsi_fd_, reinterpret_cast<sockaddr*>(&a), &len);
    gsi_port_ = ntohs(a.sin_port);
  }
  Ipv4Udp ip;
  ip.src_ip = opt_.local_ip;
  ip.dst_ip = peer_ip;
  ip.src_port = gsi_port_;
  ip.dst_port = peer_port;
  uint8_t hdr[kIpv4HeaderLen + kUdpHeaderLen];
  WriteIpv4UdpHeaders(ip, pkt.size() + kIcrcLen, hdr);
  const uint32_t icrc = ComputeIcrc(hdr, pkt);
  for (int i = 0; i < 4; ++i) pkt.push_back(static_cast<uint8_t>(icrc >> (8 * i)));
  sockaddr_in to = Addr(peer_ip, peer_port);
  if (sendto(gsi_fd_, pkt.data(), pkt.size(), 0, reinterpret_cast<sockaddr*>(&to), sizeof to) < 0) {
    ++stats_.send_errors;  // lost like on the wire: the CM resends
    return Status::Ok();
  }
  ++stats_.gsi_tx;
  if (capture_ != nullptr) {
    capture_->Append(NetAddr{opt_.local_ip, gsi_port_}, NetAddr{peer_ip, peer_port}, pkt);
  }
  return Status::Ok();
}

bool RoceUdpShell::DeliverGsi(uint32_t src_ip, std::span<const uint8_t> body) {
  if (!cm::LooksLikeGsi(body)) return false;
  if (gsi_handler_) {
    ++stats_.gsi_rx;
    gsi_handler_(src_ip, body);
  } else {
    ++stats_.unknown_qp;
  }
  return true;
}

void RoceUdpShell::Queue(Attached& q, std::vector<uint8_t> pkt) {
  Ipv4Udp ip;
  ip.src_ip = opt_.local_ip;
  ip.dst_ip = q.peer_ip;
  ip.src_port = q.src_port;
  ip.dst_port = q.peer_port;
  ip.ip_id = 0;
  ip.dont_fragment = true;
  uint8_t hdr[kIpv4HeaderLen + kUdpHeaderLen];
  WriteIpv4UdpHeaders(ip, pkt.size() + kIcrcLen, hdr);
  const uint32_t icrc = ComputeIcrc(hdr, pkt);
  batch_.Add(Addr(q.peer_ip, q.peer_port), std::move(pkt), icrc);
}

void RoceUdpShell::SendQueued(const Attached& q) {
  if (batch_.size() == 0) return;
  last_activity_us_ = NowMicros();
  batch_.Send(q.fd);
  for (size_t i = 0; i < batch_.size(); ++i) {
    if (!batch_.sent(i)) {
      ++stats_.send_errors;  // lost like on the wire: the queue pair resends
      continue;
    }
    ++stats_.tx_packets;
    if (capture_ != nullptr) {
      capture_->Append(NetAddr{opt_.local_ip, q.src_port}, NetAddr{q.peer_ip, q.peer_port},
                       batch_.WithIcrc(i));
    }
  }
  batch_.Clear();
}

bool RoceUdpShell::HoldNext() {
  if (opt_.reorder <= 0) return false;
  // 53 random bits as a double in [0, 1): the same on every platform for one seed.
  return static_cast<double>(reorder_rng_() >> 11) * 0x1.0p-53 < opt_.reorder;
}

void RoceUdpShell::Flush() {
  const uint64_t now = opt_.reorder > 0 ? NowMicros() : 0;
  for (Attached& q : qps_) {
    // Everything this queue pair has goes out in one batch, in the order a sendto each would
    // have sent it (held packets included).
    for (std::vector<uint8_t>& pkt : q.qp->TakeOutgoing()) {
      if (!q.held.empty()) {
        // The held packet follows the one after it: the peer sees the two swapped.
        Queue(q, std::move(pkt));
        Queue(q, std::move(q.held));
        q.held.clear();
        ++stats_.reordered;
      } else if (HoldNext()) {
        q.held = std::move(pkt);
        q.held_since_us = now;
      } else {
        Queue(q, std::move(pkt));
      }
    }
    if (!q.held.empty() && now - q.held_since_us >= opt_.reorder_hold_us) {
      Queue(q, std::move(q.held));
      q.held.clear();
      ++stats_.reorder_expired;
    }
    SendQueued(q);
  }
}

void RoceUdpShell::Dispatch(const RdmaCommand& cmd, uint64_t now_us) {
  for (Attached& q : qps_) {
    if (q.qpn == cmd.dest_qp) {
      q.qp->OnPacket(cmd, now_us);
      return;
    }
  }
  ++stats_.unknown_qp;
}

size_t RoceUdpShell::Receive() {
  // recvmmsg, kRecvBatch datagrams a call: one system call and one wake-up per batch instead of
  // per 1 KiB packet. At most kRecvRounds batches (256 datagrams) before the caller sends again.
  const bool raw = raw_fd_ >= 0;
  size_t total = 0;
  for (int round = 0; round < kRecvRounds; ++round) {
    for (size_t i = 0; i < kRecvBatch; ++i) {
      rx_iov_[i] = {rx_buf_.data() + i * kRecvSlot, kRecvSlot};
      rx_msgs_[i] = {};
      rx_msgs_[i].msg_hdr.msg_iov = &rx_iov_[i];
      rx_msgs_[i].msg_hdr.msg_iovlen = 1;
      if (!raw) {
        rx_msgs_[i].msg_hdr.msg_name = &rx_from_[i];
        rx_msgs_[i].msg_hdr.msg_namelen = sizeof rx_from_[i];
      }
    }
    const int n =
        recvmmsg(raw ? raw_fd_ : udp_fd_, rx_msgs_.data(), kRecvBatch, MSG_DONTWAIT, nullptr);
    if (n <= 0) return total;
    total += static_cast<size_t>(n);
    const uint64_t now = NowMicros();  // once per batch: it all arrived by now
    for (int i = 0; i < n; ++i) {
      std::span<const uint8_t> dgram(rx_buf_.data() + size_t(i) * kRecvSlot, rx_msgs_[i].msg_len);
      if (raw) {
        OnRawDatagram(dgram, now);
      } else {
        OnUdpDatagram(dgram, rx_from_[i], now);
      }
    }
    if (static_cast<size_t>(n) < kRecvBatch) return total;  // drained
  }
  return total;
}

void RoceUdpShell::OnRawDatagram(std::span<const uint8_t> pkt, uint64_t now_us) {
  // The filter keeps ours; this check stays for a kernel that ran no filter.
  if (pkt.size() < 28 || pkt[0] != 0x45 || pkt[9] != 17) return;
  uint32_t dst = uint32_t{pkt[16]} << 24 | uint32_t{pkt[17]} << 16 | pkt[18] << 8 | pkt[19];
  uint16_t dport = static_cast<uint16_t>(pkt[22] << 8 | pkt[23]);
  if (dst != opt_.local_ip || dport != opt_.port) {
    ++stats_.raw_foreign;
    return;
  }
  ++stats_.rx_packets;
  if (capture_ != nullptr) {
    uint32_t src = uint32_t{pkt[12]} << 24 | uint32_t{pkt[13]} << 16 | pkt[14] << 8 | pkt[15];
    uint16_t sport = static_cast<uint16_t>(pkt[20] << 8 | pkt[21]);
    capture_->Append(NetAddr{src, sport}, NetAddr{dst, dport}, pkt.subspan(28));
  }
  // The ICRC over the header bytes as they arrived (ParsePacket would insist on port 4791;
  // tests run two shells on one address with other ports).
  size_t ip_len = size_t{pkt[2]} << 8 | pkt[3];
  size_t udp_len = size_t{pkt[24]} << 8 | pkt[25];
  if (ip_len != pkt.size() || udp_len != ip_len - kIpv4HeaderLen ||
      udp_len < kUdpHeaderLen + kBthLen + kIcrcLen) {
    ++stats_.malformed;
    return;
  }
  std::span<const uint8_t> body = pkt.subspan(28, pkt.size() - 28 - kIcrcLen);
  const uint8_t* c = pkt.data() + pkt.size() - kIcrcLen;
  uint32_t got = uint32_t{c[0]} | uint32_t{c[1]} << 8 | uint32_t{c[2]} << 16 | uint32_t{c[3]} << 24;
  if (ComputeIcrc(pkt.first(28), body) != got) {
    ++stats_.icrc_bad;
    return;
  }
  uint32_t src = uint32_t{pkt[12]} << 24 | uint32_t{pkt[13]} << 16 | pkt[14] << 8 | pkt[15];
  if (DeliverGsi(src, body)) {
    ++stats_.icrc_checked;
    return;
  }
  Result<RdmaCommand> cmd = DecodeTransport(body);
  if (!cmd.ok()) {
    ++stats_.malformed;
    return;
  }
  ++stats_.icrc_checked;
  Dispatch(*cmd, now_us);
}

void RoceUdpShell::OnUdpDatagram(std::span<const uint8_t> dgram, const sockaddr_in& from,
                                 uint64_t now_us) {
  ++stats_.rx_packets;
  if (capture_ != nullptr) {
    capture_->Append(NetAddr{ntohl(from.sin_addr.s_addr), ntohs(from.sin_port)},
                     NetAddr{opt_.local_ip, opt_.port}, dgram);
  }
  if (dgram.size() >= kIcrcLen &&
      DeliverGsi(ntohl(from.sin_addr.s_addr), dgram.first(dgram.size() - kIcrcLen))) {
    ++stats_.icrc_unchecked;
    return;
  }
  Result<RdmaCommand> cmd = ParseUdpPayload(dgram, nullptr);
  if (!cmd.ok()) {
    ++stats_.malformed;
    return;
  }
  ++stats_.icrc_unchecked;
  Dispatch(*cmd, now_us);
}

Status RoceUdpShell::Poll(int timeout_ms) {
  Flush();
  uint64_t now = NowMicros();
  int wait = timeout_ms;
  for (Attached& q : qps_) {
    std::optional<uint64_t> d = q.qp->NextDeadline();
    if (!d) continue;
    int ms = *d <= now ? 0 : static_cast<int>((*d - now + 999) / 1000);
    if (ms < wait) wait = ms;
  }
  for (const Attached& q : qps_) {
    if (q.held.empty()) continue;
    const uint64_t due = q.held_since_us + opt_.reorder_hold_us;
    int ms = due <= now ? 0 : static_cast<int>((due - now + 999) / 1000);
    if (ms < wait) wait = ms;
  }
  pollfd p{raw_fd_ >= 0 ? raw_fd_ : udp_fd_, POLLIN, 0};
  int r = 0;
  if (wait > 0 && opt_.spin_us > 0) {
    // Spinning while traffic flows: a shell asleep in poll is woken (and, on a busy machine,
    // preempts its peer) once per arriving packet, i.e. per 1 KiB. Every few empty rounds the
    // CPU is given away, so a peer on the same core still runs.
    for (uint32_t round = 1; NowMicros() < last_activity_us_ + opt_.spin_us; ++round) {
      r = poll(&p, 1, 0);
      if (r != 0) break;
      if (round % kSpinsPerYield == 0) sched_yield();
    }
  }
  if (r == 0) r = poll(&p, 1, wait);
  if (r < 0 && errno != EINTR) return Errno("poll");
  if (r > 0 && Receive() > 0) last_activity_us_ = NowMicros();
  now = NowMicros();
  for (Attached& q : qps_) {
    std::optional<uint64_t> d = q.qp->NextDeadline();
    if (d && *d <= now) q.qp->OnTimer(now);
  }
  Flush();
  return Status::Ok();
}

}  // namespace opensrd::rdma::roce
