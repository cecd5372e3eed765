// RoceSendBatch and RoceUdpShell's batched send over real sockets on 127.0.17.3-6, UDP ports
// 7860-7865: every datagram of a batch arrives once, in order, with its ICRC after the body; a
// datagram the kernel refuses mid-batch is counted and the rest still go.
#include "rdma/roce_send_batch.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <poll.h>
#include <unistd.h>

#include <vector>

#include "rdma/roce_udp.h"

namespace opensrd::rdma::roce {
namespace {

sockaddr_in Addr(uint32_t ip, uint16_t port) {
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(ip);
  a.sin_port = htons(port);
  return a;
}

// A UDP socket bound to ip:port with room for a few thousand small datagrams (-1: failed).
int Bound(uint32_t ip, uint16_t port) {
  int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  int big = 4 << 20;
  setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &big, sizeof big);
  sockaddr_in a = Addr(ip, port);
  if (bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
    close(fd);
    return -1;
  }
  return fd;
}

// Every datagram waiting on fd (none arrive later: loopback delivers within sendmmsg).
std::vector<std::vector<uint8_t>> Drain(int fd) {
  std::vector<std::vector<uint8_t>> got;
  std::vector<uint8_t> buf(70000);
  for (;;) {
    ssize_t n = recv(fd, buf.data(), buf.size(), MSG_DONTWAIT);
    if (n < 0) return got;
    got.emplace_back(buf.begin(), buf.begin() + n);
  }
}

std::vector<uint8_t> Body(size_t i, size_t len) {
  std::vector<uint8_t> b(len);
  for (size_t k = 0; k < len; ++k) b[k] = static_cast<uint8_t>(i * 31 + k);
  return b;
}

std::vector<uint8_t> WithIcrc(std::vector<uint8_t> b, uint32_t icrc) {
  for (int k = 0; k < 4; ++k) b.push_back(static_cast<uint8_t>(icrc >> (8 * k)));
  return b;
}

constexpr uint32_t kIpA = 0x7F001103;  // 127.0.17.3

TEST(RoceSendBatch, SendsEveryDatagramInOrderWithItsIcrcLast) {
  int sink = Bound(kIpA, 7860);
  int tx = Bound(kIpA, 0);
  ASSERT_GE(sink, 0);
  ASSERT_GE(tx, 0);
  // More than one sendmmsg call holds (1024 at most each).
  constexpr size_t kCount = 1500;
  RoceSendBatch batch;
  for (size_t i = 0; i < kCount; ++i) {
    batch.Add(Addr(kIpA, 7860), Body(i, 12 + i % 50), 0xA0B0C000u + uint32_t(i));
  }
  EXPECT_EQ(batch.Send(tx), kCount);
  for (size_t i = 0; i < kCount; ++i) EXPECT_TRUE(batch.sent(i)) << i;
  std::vector<std::vector<uint8_t>> got = Drain(sink);
  ASSERT_EQ(got.size(), kCount);
  for (size_t i = 0; i < kCount; ++i) {
    EXPECT_EQ(got[i], WithIcrc(Body(i, 12 + i % 50), 0xA0B0C000u + uint32_t(i))) << i;
  }
  // Reused after Clear: only the new datagrams go.
  batch.Clear();
  batch.Add(Addr(kIpA, 7860), Body(7, 20), 1);
  EXPECT_EQ(batch.Send(tx), 1u);
  got = Drain(sink);
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0], WithIcrc(Body(7, 20), 1));
  close(sink);
  close(tx);
}

TEST(RoceSendBatch, RefusedDatagramsMidBatchAreSkippedAndTheRestGo) {
  int sink = Bound(kIpA, 7861);
  int tx = Bound(kIpA, 0);
  ASSERT_GE(sink, 0);
  ASSERT_GE(tx, 0);
  // Datagram 3 is longer than UDP allows (EMSGSIZE), 6 goes to the broadcast address on a socket
  // without SO_BROADCAST (EACCES), 9 (the last) is too long again.
  RoceSendBatch batch;
  for (size_t i = 0; i < 10; ++i) {
    const bool too_long = i == 3 || i == 9;
    batch.Add(Addr(i == 6 ? 0xFFFFFFFF : kIpA, 7861), Body(i, too_long ? 70000 : 40), uint32_t(i));
  }
  EXPECT_EQ(batch.Send(tx), 7u);
  std::vector<size_t> want;
  for (size_t i = 0; i < 10; ++i) {
    const bool refused = i == 3 || i == 6 || i == 9;
    EXPECT_EQ(batch.sent(i), !refused) << i;
    if (!refused) want.push_back(i);
  }
  std::vector<std::vector<uint8_t>> got = Drain(sink);
  ASSERT_EQ(got.size(), want.size());
  for (size_t k = 0; k < want.size(); ++k) EXPECT_EQ(got[k], WithIcrc(Body(want[k], 40), want[k]));
  close(sink);
  close(tx);
}

// A queue pair's WRITE of `packets` MTU-sized packets through a shell on ip:7863 (no reorder)
// to peer_ip:7862, where a plain socket that never answers may listen.
struct OneWrite {
  MemoryTarget target{0x1000, 0xA1, 1 << 16};
  RcQueuePair qp;
  std::unique_ptr<RoceUdpShell> shell;
  explicit OneWrite(uint32_t qpn, uint32_t psn)
      : qp(
            [&] {
              RcConfig c;
              c.local_qpn = qpn;
              c.remote_qpn = 0x99;
              c.send_psn = psn;
              c.ack_timeout_us = 30'000'000;  // no resend while the test runs
              return c;
            }(),
            &target) {}
  void Post(int packets) {
    WorkRequest w;
    w.wr_id = 1;
    w.opcode = WrOpcode::kWrite;
    w.remote_va = 0x9000;
    w.rkey = 0xB2;
    w.data.assign(size_t(packets) * 1024, 0x5A);
    qp.PostSend(w, RoceUdpShell::NowMicros());
  }
};

uint32_t Psn(const std::vector<uint8_t>& d) {
  return uint32_t{d[9]} << 16 | uint32_t{d[10]} << 8 | d[11];
}

TEST(RoceUdpShell, OneFlushSendsEveryPacketInOrder) {
  constexpr uint32_t kIp = 0x7F001104;  // 127.0.17.4
  int sink = Bound(kIp, 7862);
  ASSERT_GE(sink, 0);
  RoceUdpShell::Options o;
  o.local_ip = kIp;
  o.port = 7863;
  o.raw_receive = false;
  auto sh = RoceUdpShell::Open(o);
  ASSERT_TRUE(sh.ok()) << sh.status().ToString();
  OneWrite w(0x11, 500);
  ASSERT_TRUE(sh.value()->Attach(&w.qp, 0x11, kIp, 7862).ok());
  w.Post(100);  // within max_inflight_packets (128): all of it leaves in the first Flush
  ASSERT_TRUE(sh.value()->Poll(0).ok());
  std::vector<std::vector<uint8_t>> got = Drain(sink);
  ASSERT_EQ(got.size(), 100u);
  for (uint32_t i = 0; i < 100; ++i) EXPECT_EQ(Psn(got[i]), 500 + i) << i;
  EXPECT_EQ(sh.value()->stats().tx_packets, 100u);
  EXPECT_EQ(sh.value()->stats().send_errors, 0u);
  close(sink);
}

TEST(RoceUdpShell, RefusedSendsAreCountedAndOtherQueuePairsStillSend) {
  constexpr uint32_t kIp = 0x7F001105;  // 127.0.17.5
  int sink = Bound(kIp, 7864);
  ASSERT_GE(sink, 0);
  RoceUdpShell::Options o;
  o.local_ip = kIp;
  o.port = 7865;
  o.raw_receive = false;
  auto sh = RoceUdpShell::Open(o);
  ASSERT_TRUE(sh.ok()) << sh.status().ToString();
  // The first queue pair's peer is the broadcast address: every send is refused (EACCES).
  OneWrite lost(0x21, 10), kept(0x22, 70);
  ASSERT_TRUE(sh.value()->Attach(&lost.qp, 0x21, 0xFFFFFFFF, 7864).ok());
  ASSERT_TRUE(sh.value()->Attach(&kept.qp, 0x22, kIp, 7864).ok());
  lost.Post(8);
  kept.Post(8);
  ASSERT_TRUE(sh.value()->Poll(0).ok());
  std::vector<std::vector<uint8_t>> got = Drain(sink);
  ASSERT_EQ(got.size(), 8u);
  for (uint32_t i = 0; i < 8; ++i) EXPECT_EQ(Psn(got[i]), 70 + i) << i;
  EXPECT_EQ(sh.value()->stats().send_errors, 8u);
  EXPECT_EQ(sh.value()->stats().tx_packets, 8u);
  close(sink);
}

}  // namespace
}  // namespace opensrd::rdma::roce
