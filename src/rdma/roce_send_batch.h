// RoceSendBatch: the RoCEv2 datagrams one RoceUdpShell::Flush has for one socket, handed to the
// kernel with as few sendmmsg calls as it takes (one per 1024 datagrams) instead of one sendto
// each: at the 1 KiB path MTU, a 64 KiB WRITE was 64 system calls.
//
// Each datagram is its body (BTH onward, owned) and its 4-byte ICRC, gathered from two iovecs,
// so the body is never grown to append the ICRC (EncodeTransport sizes it exactly, and a
// push_back reallocated and copied every packet).
//
// A datagram the kernel refuses (sendto's errors: EMSGSIZE, EACCES, ENOBUFS...) is skipped and
// the rest are still sent, in order, as one sendto each would have done: sent(i) says which went.
// Not thread-safe; reusable (Clear keeps the arrays' capacity).
#pragma once
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/uio.h>

#include <array>
#include <cstdint>
#include <vector>

namespace opensrd::rdma::roce {

class RoceSendBatch {
 public:
  // Queues `body` followed by the ICRC (little-endian on the wire) for `to`.
  void Add(const sockaddr_in& to, std::vector<uint8_t> body, uint32_t icrc);
  // Sends everything queued, in the order added, from the (blocking) socket fd. Returns how many
  // the kernel took.
  size_t Send(int fd);
  void Clear() { items_.clear(); }

  size_t size() const { return items_.size(); }
  bool sent(size_t i) const { return items_[i].sent; }
  // The body with its ICRC appended (the capture wants the datagram in one piece).
  std::vector<uint8_t>& WithIcrc(size_t i);

 private:
  struct Item {
    std::vector<uint8_t> body;
    std::array<uint8_t, 4> icrc;
    sockaddr_in to;
    bool sent = false;
  };
  std::vector<Item> items_;
  std::vector<iovec> iov_;
  std::vector<mmsghdr> msgs_;
};

}  // namespace opensrd::rdma::roce
