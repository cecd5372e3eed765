#include "rdma/iwarp_tcp.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstring>
#include <string>

namespace opensrd::rdma::iwarp {
namespace {

Status Errno(const std::string& what) {
  return Status(Code::kIoError, what + ": " + std::strerror(errno));
}

void Tune(int fd) {
  int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);  // FPDUs are latency-bound
  fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
}

}  // namespace

IwarpTcpConnection::IwarpTcpConnection(int fd, const QpConfig& cfg, MemoryRegistry& registry)
    : fd_(fd), qp_(cfg, registry), buf_(256 * 1024) {}

IwarpTcpConnection::~IwarpTcpConnection() {
  if (fd_ >= 0) close(fd_);
}

Result<std::unique_ptr<IwarpTcpConnection>> IwarpTcpConnection::Connect(const NetAddr& to,
                                                                        const QpConfig& cfg,
                                                                        MemoryRegistry& reg) {
  if (to.v6) return Status(Code::kInvalidArgument, "iwarp: IPv4 addresses only");
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return Errno("socket");
  sockaddr_in sa{};
  sa.sin_family = AF_INET;
  sa.sin_port = htons(to.port);
  sa.sin_addr.s_addr = htonl(to.ip);
  // A blocking connect keeps the shell simple; the socket turns non-blocking once connected.
  if (connect(fd, reinterpret_cast<sockaddr*>(&sa), sizeof sa) != 0) {
    Status s = Errno("connect " + ToString(to));
    close(fd);
    return s;
  }
  Tune(fd);
  std::unique_ptr<IwarpTcpConnection> c(new IwarpTcpConnection(fd, cfg, reg));
  c->qp_.Connect();
  return c;
}

std::unique_ptr<IwarpTcpConnection> IwarpTcpConnection::Adopt(int fd, const QpConfig& cfg,
                                                              MemoryRegistry& reg) {
  Tune(fd);
  return std::unique_ptr<IwarpTcpConnection>(new IwarpTcpConnection(fd, cfg, reg));
}

namespace {
NetAddr FromSockaddr(const sockaddr_in& a) {
  NetAddr n;
  n.ip = ntohl(a.sin_addr.s_addr);
  n.port = ntohs(a.sin_port);
  return n;
}
}  // namespace

void IwarpTcpConnection::set_capture(PcapWriter::Source* capture) {
  sockaddr_in l{}, p{};
  socklen_t ll = sizeof l, pl = sizeof p;
  if (getsockname(fd_, reinterpret_cast<sockaddr*>(&l), &ll) != 0 ||
      getpeername(fd_, reinterpret_cast<sockaddr*>(&p), &pl) != 0 || l.sin_family != AF_INET) {
    return;  // not connected (or not IPv4): nothing sensible to record
  }
  local_ = FromSockaddr(l);
  peer_ = FromSockaddr(p);
  capture_ = capture;
}

Status IwarpTcpConnection::OnReadable() {
  while (!closed_) {
    ssize_t n = recv(fd_, buf_.data(), buf_.size(), 0);
    if (n > 0) {
      if (capture_ != nullptr) {
        capture_->AppendTcp(peer_, local_, static_cast<uint32_t>(1 + bytes_in_),
                            static_cast<uint32_t>(1 + bytes_out_),
                            {buf_.data(), static_cast<size_t>(n)});
      }
      bytes_in_ += static_cast<uint64_t>(n);
      qp_.OnBytes({buf_.data(), static_cast<size_t>(n)});
      continue;
    }
    if (n == 0) {
      closed_ = true;
      qp_.OnStreamClosed();
      break;
    }
    if (errno == EAGAIN || errno == EWOULDBLOCK) break;
    if (errno == EINTR) continue;
    closed_ = true;
    Status s = Errno("recv");
    qp_.OnStreamClosed();
    return s;
  }
  return Status();
}

void IwarpTcpConnection::Inject(std::span<const uint8_t> bytes) {
  if (bytes.empty()) return;
  if (capture_ != nullptr) {
    capture_->AppendTcp(peer_, local_, static_cast<uint32_t>(1 + bytes_in_),
                        static_cast<uint32_t>(1 + bytes_out_), bytes);
  }
  bytes_in_ += bytes.size();
  qp_.OnBytes(bytes);
}

Status IwarpTcpConnection::Flush() {
  while (!qp_.PendingOutput().empty()) {
    std::span<const uint8_t> out = qp_.PendingOutput();
    ssize_t n = send(fd_, out.data(), out.size(), MSG_NOSIGNAL);
    if (n > 0) {
      if (capture_ != nullptr) {
        capture_->AppendTcp(local_, peer_, static_cast<uint32_t>(1 + bytes_out_),
                            static_cast<uint32_t>(1 + bytes_in_),
                            out.first(static_cast<size_t>(n)));
      }
      bytes_out_ += static_cast<uint64_t>(n);
      qp_.ConsumeOutput(static_cast<size_t>(n));
      continue;
    }
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) break;
    if (n < 0 && errno == EINTR) continue;
    return Errno("send");
  }
  return Status();
}

}  // namespace opensrd::rdma::iwarp
