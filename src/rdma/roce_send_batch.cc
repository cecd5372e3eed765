#include "rdma/roce_send_batch.h"

#include <cerrno>
#include <utility>

namespace opensrd::rdma::roce {
namespace {
// sendmmsg takes at most UIO_MAXIOV (1024) messages per call.
constexpr size_t kMaxPerCall = 1024;
}  // namespace

void RoceSendBatch::Add(const sockaddr_in& to, std::vector<uint8_t> body, uint32_t icrc) {
  Item& it = items_.emplace_back();
  it.body = std::move(body);
  for (int i = 0; i < 4; ++i) it.icrc[i] = static_cast<uint8_t>(icrc >> (8 * i));
  it.to = to;
}

std::vector<uint8_t>& RoceSendBatch::WithIcrc(size_t i) {
  Item& it = items_[i];
  it.body.insert(it.body.end(), it.icrc.begin(), it.icrc.end());
  return it.body;
}

size_t RoceSendBatch::Send(int fd) {
  const size_t n = items_.size();
  // Built after every Add: the pointers stay valid while items_ does not grow.
  iov_.resize(2 * n);
  msgs_.resize(n);
  for (size_t i = 0; i < n; ++i) {
    Item& it = items_[i];
    it.sent = false;
    iov_[2 * i] = {it.body.data(), it.body.size()};
    iov_[2 * i + 1] = {it.icrc.data(), it.icrc.size()};
    msgs_[i] = {};
    msgs_[i].msg_hdr.msg_name = &it.to;
    msgs_[i].msg_hdr.msg_namelen = sizeof it.to;
    msgs_[i].msg_hdr.msg_iov = &iov_[2 * i];
    msgs_[i].msg_hdr.msg_iovlen = 2;
  }
  size_t next = 0, sent = 0;
  while (next < n) {
    const size_t want = n - next < kMaxPerCall ? n - next : kMaxPerCall;
    const int r = sendmmsg(fd, &msgs_[next], static_cast<unsigned>(want), 0);
    if (r < 0) {
      if (errno == EINTR) continue;
      // sendmmsg reports an error only for the first datagram it tries (after a partial send the
      // next call starts at the refused one): that one is lost, like on the wire.
      ++next;
      continue;
    }
    for (int k = 0; k < r; ++k) items_[next + k].sent = true;
    next += static_cast<size_t>(r);
    sent += static_cast<size_t>(r);
  }
  return sent;
}

}  // namespace opensrd::rdma::roce
