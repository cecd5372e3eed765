// IwarpTcpConnection: the thin I/O shell under one IwarpQp. A non-blocking kernel TCP socket
// (TCP_NODELAY) moves the queue pair's bytes: OnReadable reads what the socket holds and feeds
// it in, Flush writes what the queue pair has to send until the socket would block. The caller
// owns the event loop (epoll in the CLI) and asks wants_write() to arm EPOLLOUT. IPv4 only.
// Not thread-safe.
#pragma once
#include <memory>
#include <span>
#include <vector>

#include "common/pcap_writer.h"
#include "common/status.h"
#include "opensrd/transport.h"
#include "rdma/iwarp_qp.h"

namespace opensrd::rdma::iwarp {

class IwarpTcpConnection {
 public:
  // Connects (blocking) and queues the MPA request; the socket is then non-blocking.
  static Result<std::unique_ptr<IwarpTcpConnection>> Connect(const NetAddr& to, const QpConfig& cfg,
                                                             MemoryRegistry& registry);
  // Takes an accepted socket (made non-blocking here) for a responder queue pair.
  static std::unique_ptr<IwarpTcpConnection> Adopt(int fd, const QpConfig& cfg,
                                                   MemoryRegistry& registry);
  ~IwarpTcpConnection();
  IwarpTcpConnection(const IwarpTcpConnection&) = delete;
  IwarpTcpConnection& operator=(const IwarpTcpConnection&) = delete;

  int fd() const { return fd_; }
  IwarpQp& qp() { return qp_; }
  // Reads until EAGAIN. kIoError on a socket error; the peer's close is reported to the queue
  // pair and sets closed().
  Status OnReadable();
  // Bytes the caller already read from the socket (an MPA request held before the queue pair
  // existed): recorded and counted as if OnReadable had read them, then fed in.
  void Inject(std::span<const uint8_t> bytes);
  // Writes pending output until EAGAIN or none is left.
  Status Flush();
  bool wants_write() const { return !qp_.PendingOutput().empty(); }
  bool closed() const { return closed_; }
  // Records every byte read and written as TCP segments between the socket's real addresses
  // (sequence numbers count from 1 in each direction; the handshake is not recorded).
  void set_capture(PcapWriter::Source* capture);
  uint64_t bytes_in() const { return bytes_in_; }
  uint64_t bytes_out() const { return bytes_out_; }

 private:
  IwarpTcpConnection(int fd, const QpConfig& cfg, MemoryRegistry& registry);
  int fd_;
  IwarpQp qp_;
  std::vector<uint8_t> buf_;
  bool closed_ = false;
  PcapWriter::Source* capture_ = nullptr;
  NetAddr local_{}, peer_{};
  uint64_t bytes_in_ = 0, bytes_out_ = 0;
};

}  // namespace opensrd::rdma::iwarp
