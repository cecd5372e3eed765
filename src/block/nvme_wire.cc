#include "block/nvme_wire.h"

#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace opensrd::nvme {
namespace {

constexpr size_t kMsgLen = 16;

}  // namespace

Status SendHandoff(int sock, const Handoff& h) {
  uint8_t msg[kMsgLen] = {};
  std::memcpy(msg, &kRegionMagic, 4);
  std::memcpy(msg + 4, &kRegionVersion, 4);
  std::memcpy(msg + 8, &h.region_size, 8);
  iovec iov{msg, sizeof msg};
  alignas(cmsghdr) char ctrl[CMSG_SPACE(3 * sizeof(int))] = {};
  msghdr mh{};
  mh.msg_iov = &iov;
  mh.msg_iovlen = 1;
  mh.msg_control = ctrl;
  mh.msg_controllen = sizeof ctrl;
  cmsghdr* c = CMSG_FIRSTHDR(&mh);
  c->cmsg_level = SOL_SOCKET;
  c->cmsg_type = SCM_RIGHTS;
  c->cmsg_len = CMSG_LEN(3 * sizeof(int));
  const int fds[3] = {h.memfd, h.kick, h.irq};
  std::memcpy(CMSG_DATA(c), fds, sizeof fds);
  if (sendmsg(sock, &mh, MSG_NOSIGNAL) != static_cast<ssize_t>(sizeof msg)) {
    return Status(Code::kIoError, std::string("sendmsg: ") + strerror(errno));
  }
  return Status::Ok();
}

Status SendRefusal(int sock, const std::string& why) {
  std::string m = why.substr(0, 200);
  [[maybe_unused]] ssize_t n = send(sock, m.data(), m.size(), MSG_NOSIGNAL);
  return Status::Ok();
}

Result<Handoff> ReceiveHandoff(int sock) {
  uint8_t msg[256] = {};
  iovec iov{msg, sizeof msg};
  alignas(cmsghdr) char ctrl[CMSG_SPACE(3 * sizeof(int))] = {};
  msghdr mh{};
  mh.msg_iov = &iov;
  mh.msg_iovlen = 1;
  mh.msg_control = ctrl;
  mh.msg_controllen = sizeof ctrl;
  const ssize_t n = recvmsg(sock, &mh, MSG_CMSG_CLOEXEC);
  if (n <= 0) return Status(Code::kIoError, "the adapter closed the NVMe socket");
  cmsghdr* c = CMSG_FIRSTHDR(&mh);
  if (c == nullptr || c->cmsg_type != SCM_RIGHTS || c->cmsg_len != CMSG_LEN(3 * sizeof(int))) {
    if (c != nullptr && c->cmsg_type == SCM_RIGHTS) {  // close whatever came
      const size_t k = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
      for (size_t i = 0; i < k; ++i) {
        int fd;
        std::memcpy(&fd, CMSG_DATA(c) + i * sizeof(int), sizeof fd);
        close(fd);
      }
    }
    return Status(Code::kResourceExhausted,
                  "the adapter refused: " + std::string(reinterpret_cast<char*>(msg), n));
  }
  int fds[3];
  std::memcpy(fds, CMSG_DATA(c), sizeof fds);
  Handoff h{fds[0], fds[1], fds[2], 0};
  uint32_t magic, version;
  std::memcpy(&magic, msg, 4);
  std::memcpy(&version, msg + 4, 4);
  std::memcpy(&h.region_size, msg + 8, 8);
  if (n != static_cast<ssize_t>(kMsgLen) || magic != kRegionMagic || version != kRegionVersion) {
    for (int fd : fds) close(fd);
    return Status(Code::kMalformed, "bad NVMe handoff message");
  }
  return h;
}

}  // namespace opensrd::nvme
