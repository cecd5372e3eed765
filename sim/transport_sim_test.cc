// Deterministic-network tests of the SRD transport: whole transfers under seeded faults, run in
// simulated time. Every assertion here is exact for its seed.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdio>

#include "common/pattern.h"
#include "sim/transfer_harness.h"

namespace opensrd::sim {
namespace {

#if defined(OPENSRD_SANITIZED)
// Sanitizer builds run every scenario, scaled down: they look for memory and race errors, which
// do not need 7 GB of payload to show up.
constexpr uint64_t kBigRun = 4'000;
constexpr uint64_t kMidRun = 1'500;
constexpr Micros kBlackholeAt = 20'000;
#else
constexpr uint64_t kBigRun = 100'000;
constexpr uint64_t kMidRun = 20'000;
constexpr Micros kBlackholeAt = 200'000;  // about a tenth into the run
#endif

void Print(const char* name, const TransferResult& r) {
  double gbps = r.elapsed_us ? r.bytes * 8.0 / r.elapsed_us / 1000.0 : 0;
  std::printf(
      "[%s] sim %.3f s, %lu msgs, %.2f Gbit/s, retx %lu, rto %lu, corrupt %lu, dup %lu, "
      "stale %lu, rnr %lu\n",
      name, r.elapsed_us / 1e6, (unsigned long)r.delivered, gbps,
      (unsigned long)r.sender.retransmits, (unsigned long)r.sender.rto_events,
      (unsigned long)(r.sender.corrupt_dropped + r.receiver.corrupt_dropped),
      (unsigned long)(r.sender.duplicates_dropped + r.receiver.duplicates_dropped),
      (unsigned long)(r.sender.stale_dropped + r.receiver.stale_dropped),
      (unsigned long)r.receiver.rnr_sent);
  for (const auto& p : r.paths) {
    std::printf(
        "   path %u: sent %lu retx %lu acked %lu lost %lu srtt %lu us state %s suspect %lu\n", p.id,
        (unsigned long)p.sent, (unsigned long)p.retransmitted, (unsigned long)p.acked,
        (unsigned long)p.lost, (unsigned long)p.srtt_us, PathStateName(p.state),
        (unsigned long)p.suspect_events);
  }
}

void ExpectExactlyOnce(const TransferResult& r, uint64_t n) {
  EXPECT_TRUE(r.finished);
  EXPECT_EQ(r.sent_ok, n);
  EXPECT_EQ(r.send_errors, 0u);
  EXPECT_EQ(r.delivered, n);
  EXPECT_EQ(r.recv_errors, 0u);
  EXPECT_EQ(r.missing, 0u);
  EXPECT_EQ(r.duplicates, 0u);
  EXPECT_EQ(r.corrupt_payloads, 0u);
}

// Four paths of different delay; path 1 loses 5%; every path duplicates 2%, reorders 1% of
// packets by 100 us and corrupts 0.5%; path 3 is blackholed at `blackhole_at`.
TransferOptions FaultyFourPaths(uint64_t messages, Micros blackhole_at) {
  TransferOptions o;
  o.seed = 20261124;
  o.messages = messages;
  o.paths = 4;
  for (uint32_t i = 0; i < 4; ++i) {
    LinkConfig l;
    l.latency_us = 40 + 10 * i;
    l.gbps = 10;
    l.fault.dup = 0.02;
    l.fault.reorder = 0.01;
    l.fault.reorder_us = 100;
    l.fault.jitter_us = 5;
    l.fault.corrupt = 0.005;
    if (i == 1) l.fault.loss = 0.05;
    if (i == 3) l.fault.blackhole_after_us = blackhole_at;
    o.path_links.push_back(l);
  }
  return o;
}

// The transfers below run with the payload copied by memcpy and through the DMA engine; the
// engine must change nothing the network sees, and it must really carry the copies.
class SimTransferCopy : public ::testing::TestWithParam<PayloadCopy> {
 protected:
  void Use(TransferOptions& o) const { o.config.payload_copy = GetParam(); }
  static void ExpectCopiesWent(const TransferResult& r) {
    EXPECT_EQ(r.sender_copies.errors + r.receiver_copies.errors, 0u);
    EXPECT_GT(r.receiver_copies.copies, 0u);
    if (GetParam() == PayloadCopy::kEngine) {
      EXPECT_GE(r.sender_copies.descriptors, r.sender_copies.copies);
      EXPECT_EQ(r.receiver_copies.descriptors, r.receiver_copies.copies);
    } else {
      EXPECT_EQ(r.sender_copies.descriptors + r.receiver_copies.descriptors, 0u);
    }
  }
};

TEST_P(SimTransferCopy, LosslessSmall) {
  TransferOptions o;
  Use(o);
  o.messages = 300;
  o.max_size = 200'000;
  TransferHarness h(o);
  TransferResult r = h.Run();
  Print("lossless", r);
  ExpectExactlyOnce(r, o.messages);
  ExpectCopiesWent(r);
  EXPECT_EQ(r.sender.retransmits, 0u);
  for (const auto& p : r.paths) EXPECT_GT(p.sent, 0u) << "path " << p.id;
}

// The headline scenario: 100k messages of log-uniform sizes 1 B .. 1 MiB.
TEST(SimTransfer, HundredThousandMessagesUnderFaultsExactlyOnce) {
  const Micros blackhole_at = kBlackholeAt;
  TransferOptions o = FaultyFourPaths(kBigRun, blackhole_at);
  TransferHarness h(o);
  Network& net = h.net();
  const NetAddr b = net.address(h.receiver(), 0);
  auto data_on = [&](uint16_t path) {
    return net.link_stats(net.address(h.sender(), path), b).data_packets;
  };
  auto data_total = [&] {
    uint64_t t = 0;
    for (uint16_t i = 0; i < 4; ++i) t += data_on(i);
    return t;
  };
  // Snapshot the counters 10 RTTs after the blackhole (RTT: the slowest healthy path's srtt
  // measured at the blackhole instant).
  Micros snap_at = kNever, rtt_at_blackhole = 0;
  uint64_t p3_at_snap = 0, total_at_snap = 0;
  bool blackholed_before_end = false;
  TransferResult r = h.Run([&] {
    if (snap_at == kNever && net.now() >= blackhole_at) {
      blackholed_before_end = true;
      for (const auto& p : net.endpoint(h.sender()).path_stats(h.peer())) {
        if (p.id != 3) rtt_at_blackhole = std::max(rtt_at_blackhole, p.srtt_us);
      }
      snap_at = blackhole_at + 10 * rtt_at_blackhole;
    }
    if (snap_at != kNever && total_at_snap == 0 && net.now() >= snap_at) {
      p3_at_snap = data_on(3);
      total_at_snap = data_total();
    }
  });
  Print("faults-100k", r);
  ExpectExactlyOnce(r, o.messages);
  // Faults really happened and were handled.
  EXPECT_GT(r.sender.retransmits, 0u);
  EXPECT_GT(r.receiver.corrupt_dropped + r.sender.corrupt_dropped, 0u);
  EXPECT_GT(r.receiver.duplicates_dropped, 0u);
  // The blackholed path: suspect at the end, and after 10 RTTs it carries ~no data.
  ASSERT_TRUE(blackholed_before_end) << "run ended before the blackhole";
  ASSERT_GT(total_at_snap, 0u);
  const uint64_t p3_after = data_on(3) - p3_at_snap;
  const uint64_t total_after = data_total() - total_at_snap;
  std::printf("blackhole: rtt %lu us, data after +10 RTT: path3 %lu of %lu\n",
              (unsigned long)rtt_at_blackhole, (unsigned long)p3_after, (unsigned long)total_after);
  EXPECT_EQ(r.paths[3].state, PathState::kSuspect);
  EXPECT_LT(static_cast<double>(p3_after), 0.005 * static_cast<double>(total_after) + 1);
  // The lossy path still carries traffic, but less than a clean one.
  EXPECT_GT(r.paths[1].sent, 0u);
  EXPECT_LT(r.paths[1].sent, r.paths[0].sent);
}

// A path that goes dark for a while is marked suspect, probed, and brought back when it answers.
TEST(SimTransfer, BlackholedPathComesBackWhenItHeals) {
  TransferOptions o;
  o.seed = 77;
  o.messages = 4000;
  o.min_size = o.max_size = 64 * 1024;
  for (uint32_t i = 0; i < 4; ++i) {
    LinkConfig l;
    l.latency_us = 40 + 10 * i;
    if (i == 2) {
      l.fault.blackhole_after_us = 10'000;
      l.fault.blackhole_for_us = 20'000;  // dark from 10 ms to 30 ms
    }
    o.path_links.push_back(l);
  }
  TransferHarness h(o);
  Network& net = h.net();
  const NetAddr b = net.address(h.receiver(), 0);
  bool suspect_seen = false;
  uint64_t p2_at_heal = 0, total_at_heal = 0;
  auto data_on = [&](uint16_t p) {
    return net.link_stats(net.address(h.sender(), p), b).data_packets;
  };
  TransferResult r = h.Run([&] {
    const auto paths = net.endpoint(h.sender()).path_stats(h.peer());
    if (net.now() < 30'000 && paths[2].state == PathState::kSuspect) suspect_seen = true;
    if (total_at_heal == 0 && net.now() >= 30'000) {
      p2_at_heal = data_on(2);
      for (uint16_t i = 0; i < 4; ++i) total_at_heal += data_on(i);
    }
  });
  Print("heal", r);
  ExpectExactlyOnce(r, o.messages);
  ASSERT_GT(total_at_heal, 0u) << "run ended before the path healed";
  EXPECT_TRUE(suspect_seen);
  EXPECT_EQ(r.paths[2].state, PathState::kActive);
  uint64_t total_after = 0;
  for (uint16_t i = 0; i < 4; ++i) total_after += data_on(i);
  total_after -= total_at_heal;
  const uint64_t p2_after = data_on(2) - p2_at_heal;
  std::printf("heal: path 2 carried %lu of %lu data packets after it healed\n",
              (unsigned long)p2_after, (unsigned long)total_after);
  EXPECT_GT(static_cast<double>(p2_after), 0.1 * static_cast<double>(total_after));
}

TEST_P(SimTransferCopy, InOrderModeDeliversInOrderUnderFaults) {
  TransferOptions o = FaultyFourPaths(kMidRun, 50'000);
  Use(o);
  o.in_order = true;
  TransferHarness h(o);
  TransferResult r = h.Run();
  Print("in-order", r);
  ExpectExactlyOnce(r, o.messages);
  ExpectCopiesWent(r);
  EXPECT_EQ(r.order_violations, 0u);
  EXPECT_GT(r.sender.retransmits, 0u);
}

TEST(SimTransfer, OutOfOrderModeDoesDeliverOutOfOrder) {
  // The contrast that makes the in-order test meaningful: by default messages complete as they
  // finish, so under the same faults later messages overtake earlier ones.
  TransferOptions o = FaultyFourPaths(2000, kNever);
  o.max_size = 64'000;
  TransferHarness h(o);
  TransferResult r = h.Run();
  ExpectExactlyOnce(r, o.messages);
  EXPECT_GT(r.overtaken, 0u);
  o.in_order = true;
  TransferResult ordered = TransferHarness(o).Run();
  ExpectExactlyOnce(ordered, o.messages);
  EXPECT_EQ(ordered.overtaken, 0u);
  EXPECT_EQ(ordered.order_violations, 0u);
}

TEST_P(SimTransferCopy, ReceiverNotReadyBackPressureLosesNothing) {
  TransferOptions o;
  Use(o);
  o.messages = 400;
  o.max_size = 50'000;
  o.recv_buffers = 2;  // far fewer buffers than messages in flight
  o.inflight = 64;
  TransferHarness h(o);
  TransferResult r = h.Run();
  Print("rnr", r);
  ExpectExactlyOnce(r, o.messages);
  ExpectCopiesWent(r);
  EXPECT_GT(r.receiver.rnr_sent, 0u);
  EXPECT_GT(r.sender.rnr_received, 0u);
}

TEST_P(SimTransferCopy, SameSeedSameRun) {
  TransferOptions o = FaultyFourPaths(500, 20'000);
  Use(o);
  o.max_size = 100'000;
  TransferResult r1 = TransferHarness(o).Run();
  TransferResult r2 = TransferHarness(o).Run();
  EXPECT_EQ(r1.elapsed_us, r2.elapsed_us);
  EXPECT_EQ(r1.sender.retransmits, r2.sender.retransmits);
  EXPECT_EQ(r1.sender.datagrams_out, r2.sender.datagrams_out);
  EXPECT_EQ(r1.latencies_us, r2.latencies_us);
}

TEST(SimTransfer, EngineCopiesChangeNothingOnTheWire) {
  // Same seed, faults and sizes: memcpy and the engine must give the very same run.
  TransferOptions o = FaultyFourPaths(500, 20'000);
  o.max_size = 100'000;
  const TransferResult direct = TransferHarness(o).Run();
  o.config.payload_copy = PayloadCopy::kEngine;
  const TransferResult engine = TransferHarness(o).Run();
  ExpectExactlyOnce(engine, o.messages);
  EXPECT_EQ(direct.elapsed_us, engine.elapsed_us);
  EXPECT_EQ(direct.sender.datagrams_out, engine.sender.datagrams_out);
  EXPECT_EQ(direct.receiver.datagrams_out, engine.receiver.datagrams_out);
  EXPECT_EQ(direct.latencies_us, engine.latencies_us);
  EXPECT_EQ(direct.sender_copies.copies, engine.sender_copies.copies);
  EXPECT_EQ(direct.receiver_copies.copies, engine.receiver_copies.copies);
  EXPECT_GT(engine.sender_copies.descriptors, 0u);
}

INSTANTIATE_TEST_SUITE_P(DirectAndEngine, SimTransferCopy,
                         ::testing::Values(PayloadCopy::kDirect, PayloadCopy::kEngine),
                         [](const auto& info) {
                           return info.param == PayloadCopy::kDirect ? "Direct" : "Engine";
                         });

}  // namespace
}  // namespace opensrd::sim
