// RoceUdpShell over real sockets on 127.0.0.1 (ports 7760 and 7761): two queue pairs WRITE,
// READ back and SEND through the kernel. With the raw receive path (root), every received ICRC
// is checked against the real IP header, which also proves the claim the send side rests on:
// the kernel sends IP identification 0 with DF from an unconnected IP_PMTUDISC_DO socket (any
// other ID and every ICRC would fail, and nothing would complete).
#include "rdma/roce_udp.h"

#include <gtest/gtest.h>

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

}  // namespace
}  // namespace opensrd::rdma::roce
