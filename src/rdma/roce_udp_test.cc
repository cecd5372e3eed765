// RoceUdpShell over real sockets on 127.0.0.1 (ports 7760 and 7761): two queue pairs WRITE,
// READ back and SEND through the kernel. With the raw receive path (root), every received ICRC
// is checked against the real IP header, which also proves the claim the send side rests on:
// the kernel sends IP identification 0 with DF from an unconnected IP_PMTUDISC_DO socket (any
// other ID and every ICRC would fail, and nothing would complete).
// The reorder tests (ports 7800-7806) hold packets back with Options::reorder: the order a plain
// socket sees follows from the seed alone, and two queue pairs that swap each other's packets
// still complete everything, through NAKs and resends.
#include "rdma/roce_udp.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <vector>

namespace opensrd::rdma::roce {
namespace {

constexpr uint32_t kLoopback = 0x7F000001;

TEST(RoceUdpShell, WriteReadSendOverLoopbackWithIcrcChecked) {
  MemoryTarget ta(0x1000, 0xA1, 1 << 16), tb(0x9000, 0xB2, 1 << 16);
  RcConfig ca, cb;
  ca.local_qpn = cb.remote_qpn = 0x123;
  cb.local_qpn = ca.remote_qpn = 0x456;
  ca.send_psn = cb.expected_psn = 0xFFFFF8;
  cb.send_psn = ca.expected_psn = 77;
  RcQueuePair a(ca, &ta), b(cb, &tb);
  RoceUdpShell::Options oa, ob;
  oa.local_ip = ob.local_ip = kLoopback;
  oa.port = 7760;
  ob.port = 7761;
  auto sa = RoceUdpShell::Open(oa);
  auto sb = RoceUdpShell::Open(ob);
  ASSERT_TRUE(sa.ok()) << sa.status().ToString();
  ASSERT_TRUE(sb.ok()) << sb.status().ToString();
  RoceUdpShell& shell_a = *sa.value();
  RoceUdpShell& shell_b = *sb.value();
  if (!shell_a.raw_receive()) GTEST_SKIP() << "no CAP_NET_RAW: received ICRCs cannot be checked";
  ASSERT_TRUE(shell_a.Attach(&a, 0x123, kLoopback, 7761).ok());
  ASSERT_TRUE(shell_b.Attach(&b, 0x456, kLoopback, 7760).ok());

  std::vector<uint8_t> data(10000);
  for (size_t i = 0; i < data.size(); ++i) data[i] = static_cast<uint8_t>(i * 13 + 1);
  WorkRequest w;
  w.wr_id = 1;
  w.opcode = WrOpcode::kWrite;
  w.remote_va = 0x9000 + 8;
  w.rkey = 0xB2;
  w.data = data;
  a.PostSend(w, RoceUdpShell::NowMicros());
  WorkRequest r;
  r.wr_id = 2;
  r.opcode = WrOpcode::kRead;
  r.remote_va = 0x9000 + 8;
  r.rkey = 0xB2;
  r.read_length = static_cast<uint32_t>(data.size());
  a.PostSend(r, RoceUdpShell::NowMicros());
  tb.PostReceive(100);
  WorkRequest s;
  s.wr_id = 3;
  s.opcode = WrOpcode::kSendImm;
  s.imm = 0xFEED;
  s.data = {1, 2, 3};
  a.PostSend(s, RoceUdpShell::NowMicros());

  std::vector<Completion> done;
  for (int i = 0; i < 2000 && done.size() < 3; ++i) {
    ASSERT_TRUE(shell_a.Poll(1).ok());
    ASSERT_TRUE(shell_b.Poll(1).ok());
    for (Completion& c : a.TakeCompletions()) done.push_back(std::move(c));
  }
  const auto& xa = shell_a.stats();
  const auto& xb = shell_b.stats();
  ASSERT_EQ(done.size(), 3u) << "a: tx " << xa.tx_packets << " rx " << xa.rx_packets << " bad "
                             << xa.icrc_bad << " malformed " << xa.malformed << " unknown "
                             << xa.unknown_qp << "; b: tx " << xb.tx_packets << " rx "
                             << xb.rx_packets << " bad " << xb.icrc_bad << " malformed "
                             << xb.malformed;
  for (const Completion& c : done) EXPECT_EQ(c.status, WcStatus::kSuccess) << c.wr_id;
  EXPECT_EQ(done[1].read_data, data);
  EXPECT_TRUE(std::equal(data.begin(), data.end(), tb.memory().begin() + 8));
  ASSERT_EQ(tb.received().size(), 1u);
  EXPECT_EQ(tb.received()[0].imm, 0xFEEDu);
  EXPECT_GT(shell_b.stats().icrc_checked, 10u);
  EXPECT_GT(shell_a.stats().icrc_checked, 10u);
  EXPECT_EQ(shell_a.stats().icrc_bad + shell_b.stats().icrc_bad, 0u);
}

// A WRITE of `packets` MTU-sized packets from a reordering shell on 7800 to a plain UDP socket
// on 7801 that never answers: returns the PSNs in the order they arrived, and the shell's stats.
std::vector<uint32_t> ReorderedPsns(uint64_t seed, int packets, RoceUdpShell::Stats* stats) {
  std::vector<uint32_t> order;
  int sink = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(kLoopback);
  a.sin_port = htons(7801);
  int big = 4 << 20;
  setsockopt(sink, SOL_SOCKET, SO_RCVBUF, &big, sizeof big);
  if (bind(sink, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
    ADD_FAILURE() << "bind 7801";
    close(sink);
    return order;
  }
  MemoryTarget t(0x1000, 0xA1, 1 << 16);
  RcConfig c;
  c.local_qpn = 0x11;
  c.remote_qpn = 0x22;
  c.send_psn = 1000;
  c.ack_timeout_us = 30'000'000;  // no resend while the test runs: each PSN once
  RcQueuePair qp(c, &t);
  RoceUdpShell::Options o;
  o.local_ip = kLoopback;
  o.port = 7800;
  o.raw_receive = false;
  o.reorder = 0.3;
  o.reorder_seed = seed;
  auto sh = RoceUdpShell::Open(o);
  if (!sh.ok()) {
    ADD_FAILURE() << sh.status().ToString();
    close(sink);
    return order;
  }
  EXPECT_TRUE(sh.value()->Attach(&qp, 0x11, kLoopback, 7801).ok());
  WorkRequest w;
  w.wr_id = 1;
  w.opcode = WrOpcode::kWrite;
  w.remote_va = 0x9000;
  w.rkey = 0xB2;
  w.data.assign(size_t(packets) * c.mtu, 0x5A);
  qp.PostSend(w, RoceUdpShell::NowMicros());
  uint8_t buf[2048];
  for (int i = 0; i < 1000 && static_cast<int>(order.size()) < packets; ++i) {
    EXPECT_TRUE(sh.value()->Poll(1).ok());
    pollfd p{sink, POLLIN, 0};
    while (poll(&p, 1, 0) > 0) {
      ssize_t n = recv(sink, buf, sizeof buf, 0);
      if (n < 12) break;
      order.push_back(uint32_t{buf[9]} << 16 | uint32_t{buf[10]} << 8 | buf[11]);
    }
  }
  *stats = sh.value()->stats();
  close(sink);
  return order;
}

TEST(RoceUdpShell, ReorderSwapsPacketsAsTheSeedSays) {
  constexpr int kPackets = 40;
  RoceUdpShell::Stats s1, s2;
  std::vector<uint32_t> first = ReorderedPsns(7, kPackets, &s1);
  std::vector<uint32_t> again = ReorderedPsns(7, kPackets, &s2);
  ASSERT_EQ(first.size(), size_t{kPackets});
  EXPECT_EQ(first, again) << "one seed, one order";
  // Every PSN exactly once: held packets are delayed, never lost.
  std::vector<uint32_t> sorted = first;
  std::sort(sorted.begin(), sorted.end());
  for (int i = 0; i < kPackets; ++i) EXPECT_EQ(sorted[i], 1000u + i);
  // Each swap shows as a PSN right after its successor; a held last packet (nothing followed
  // it) goes out alone, late but in order.
  uint64_t swaps = 0;
  for (size_t i = 1; i < first.size(); ++i) {
    if (first[i] + 1 == first[i - 1]) ++swaps;
  }
  EXPECT_GT(s1.reordered, 0u);
  EXPECT_EQ(swaps, s1.reordered);
  EXPECT_EQ(s1.tx_packets, uint64_t{kPackets});
  EXPECT_NE(first, sorted);
}

TEST(RoceUdpShell, HeldPacketWithNoSuccessorGoesOutAfterTheBound) {
  // Every packet is held and the only one has no successor: without the bound it would wait
  // for a resend (the ACK timeout here is far longer than the loop runs).
  MemoryTarget ta(0x1000, 0xA1, 1 << 12), tb(0x9000, 0xB2, 1 << 12);
  RcConfig ca, cb;
  ca.local_qpn = cb.remote_qpn = 0x31;
  cb.local_qpn = ca.remote_qpn = 0x32;
  ca.send_psn = cb.expected_psn = 5;
  cb.send_psn = ca.expected_psn = 9;
  ca.ack_timeout_us = cb.ack_timeout_us = 30'000'000;
  RcQueuePair a(ca, &ta), b(cb, &tb);
  RoceUdpShell::Options oa, ob;
  oa.local_ip = ob.local_ip = kLoopback;
  oa.port = 7802;
  ob.port = 7803;
  oa.raw_receive = ob.raw_receive = false;
  oa.reorder = 1.0;
  auto sa = RoceUdpShell::Open(oa);
  auto sb = RoceUdpShell::Open(ob);
  ASSERT_TRUE(sa.ok() && sb.ok());
  ASSERT_TRUE(sa.value()->Attach(&a, 0x31, kLoopback, 7803).ok());
  ASSERT_TRUE(sb.value()->Attach(&b, 0x32, kLoopback, 7802).ok());
  tb.PostReceive(16);
  WorkRequest s;
  s.wr_id = 9;
  s.opcode = WrOpcode::kSend;
  s.data = {4, 5, 6};
  a.PostSend(s, RoceUdpShell::NowMicros());
  std::vector<Completion> done;
  for (int i = 0; i < 2000 && done.empty(); ++i) {
    ASSERT_TRUE(sa.value()->Poll(1).ok());
    ASSERT_TRUE(sb.value()->Poll(1).ok());
    done = a.TakeCompletions();
  }
  ASSERT_EQ(done.size(), 1u);
  EXPECT_EQ(done[0].status, WcStatus::kSuccess);
  ASSERT_EQ(tb.received().size(), 1u);
  EXPECT_EQ(sa.value()->stats().reorder_expired, 1u);
  EXPECT_EQ(sa.value()->stats().reordered, 0u);
  EXPECT_EQ(a.stats().retransmitted_packets, 0u);
}

// The raw socket sees every UDP datagram the host receives; a socket filter keeps only those
// to the shell's address and port, so other traffic (a perf run beside a RoCEv2 server) neither
// wakes the shell nor costs it a copy. Port 7807 for the shell, 7808 for the other traffic.
TEST(RoceUdpShell, OtherUdpTrafficNeverReachesTheShell) {
  RoceUdpShell::Options o;
  o.local_ip = kLoopback;
  o.port = 7807;
  auto sh = RoceUdpShell::Open(o);
  ASSERT_TRUE(sh.ok()) << sh.status().ToString();
  RoceUdpShell& shell = *sh.value();
  if (!shell.raw_receive()) GTEST_SKIP() << "no CAP_NET_RAW: no raw socket to filter";
  int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  ASSERT_GE(fd, 0);
  sockaddr_in to{};
  to.sin_family = AF_INET;
  to.sin_addr.s_addr = htonl(kLoopback);
  to.sin_port = htons(7808);
  const uint8_t junk[64] = {};
  for (int i = 0; i < 200; ++i) {
    ASSERT_EQ(sendto(fd, junk, sizeof junk, 0, reinterpret_cast<sockaddr*>(&to), sizeof to),
              static_cast<ssize_t>(sizeof junk));
  }
  close(fd);
  for (int i = 0; i < 20; ++i) ASSERT_TRUE(shell.Poll(1).ok());
  EXPECT_EQ(shell.stats().raw_foreign, 0u);
  EXPECT_EQ(shell.stats().rx_packets, 0u);
}

TEST(RoceUdpShell, RejectsReorderOutsideZeroToOne) {
  RoceUdpShell::Options o;
  o.local_ip = kLoopback;
  o.port = 7804;
  o.reorder = 1.5;
  EXPECT_EQ(RoceUdpShell::Open(o).status().code(), Code::kInvalidArgument);
  o.reorder = -0.1;
  EXPECT_EQ(RoceUdpShell::Open(o).status().code(), Code::kInvalidArgument);
}

TEST(RoceUdpShell, BothSidesReorderingStillCompleteAndVerify) {
  MemoryTarget ta(0x1000, 0xA1, 1 << 17), tb(0x9000, 0xB2, 1 << 17);
  RcConfig ca, cb;
  ca.local_qpn = cb.remote_qpn = 0x41;
  cb.local_qpn = ca.remote_qpn = 0x42;
  ca.send_psn = cb.expected_psn = 0xFFFFF0;  // across the PSN wrap
  cb.send_psn = ca.expected_psn = 300;
  ca.ack_timeout_us = cb.ack_timeout_us = 20'000;
  RcQueuePair a(ca, &ta), b(cb, &tb);
  RoceUdpShell::Options oa, ob;
  oa.local_ip = ob.local_ip = kLoopback;
  oa.port = 7805;
  ob.port = 7806;
  oa.reorder = ob.reorder = 0.2;
  oa.reorder_seed = 11;
  ob.reorder_seed = 12;
  auto sa = RoceUdpShell::Open(oa);
  auto sb = RoceUdpShell::Open(ob);
  ASSERT_TRUE(sa.ok() && sb.ok());
  RoceUdpShell& shell_a = *sa.value();
  RoceUdpShell& shell_b = *sb.value();
  ASSERT_TRUE(shell_a.Attach(&a, 0x41, kLoopback, 7806).ok());
  ASSERT_TRUE(shell_b.Attach(&b, 0x42, kLoopback, 7805).ok());
  std::vector<uint8_t> data(64 * 1024);
  for (size_t i = 0; i < data.size(); ++i) data[i] = static_cast<uint8_t>(i * 29 + 3);
  WorkRequest w;
  w.wr_id = 1;
  w.opcode = WrOpcode::kWrite;
  w.remote_va = 0x9000;
  w.rkey = 0xB2;
  w.data = data;
  a.PostSend(w, RoceUdpShell::NowMicros());
  WorkRequest r;
  r.wr_id = 2;
  r.opcode = WrOpcode::kRead;
  r.remote_va = 0x9000;
  r.rkey = 0xB2;
  r.read_length = static_cast<uint32_t>(data.size());
  a.PostSend(r, RoceUdpShell::NowMicros());
  for (int i = 0; i < 20; ++i) {
    tb.PostReceive(64);
    WorkRequest s;
    s.wr_id = 10 + i;
    s.opcode = WrOpcode::kSend;
    s.data.assign(40, static_cast<uint8_t>(i));
    a.PostSend(s, RoceUdpShell::NowMicros());
  }
  std::vector<Completion> done;
  for (int i = 0; i < 20000 && done.size() < 22; ++i) {
    ASSERT_TRUE(shell_a.Poll(1).ok());
    ASSERT_TRUE(shell_b.Poll(1).ok());
    for (Completion& c : a.TakeCompletions()) done.push_back(std::move(c));
  }
  ASSERT_EQ(done.size(), 22u);
  for (const Completion& c : done) EXPECT_EQ(c.status, WcStatus::kSuccess) << c.wr_id;
  EXPECT_EQ(done[1].read_data, data);
  EXPECT_TRUE(std::equal(data.begin(), data.end(), tb.memory().begin()));
  ASSERT_EQ(tb.received().size(), 20u);
  for (size_t i = 0; i < 20; ++i)
    EXPECT_EQ(tb.received()[i].data, std::vector<uint8_t>(40, static_cast<uint8_t>(i)));
  EXPECT_GT(shell_a.stats().reordered, 0u);
  EXPECT_GT(shell_b.stats().reordered, 0u);
  // A swapped request is a sequence error at the responder: NAK, then go-back-N.
  EXPECT_GT(b.stats().naks_sent, 0u);
  EXPECT_GT(a.stats().naks_received, 0u);
  EXPECT_GT(a.stats().retransmitted_packets, 0u);
}

}  // namespace
}  // namespace opensrd::rdma::roce
