// The observability counters (issue 16) each move for their own cause: a blackholed path under
// bulk traffic gives RTO-caused retransmissions and a state change; a lone packet lost on a path
// gives a tail-loss-probe retransmission; random loss under bulk traffic gives RACK ones; a
// receiver without buffers gives RNR waits. Every run is deterministic for its seed, and the
// by-cause counters always sum to the total at every level (endpoint, context, path).
#include <gtest/gtest.h>

#include <cstdio>

#include "sim/transfer_harness.h"

namespace opensrd::sim {
namespace {

struct Snapshot {
  EndpointStats ep;
  std::vector<PathStats> paths;
  std::vector<ContextStats> contexts;
};

Snapshot Take(TransferHarness& h) {
  Endpoint& e = h.net().endpoint(h.sender());
  return {e.stats(), e.path_stats(h.peer()), e.context_stats(h.peer())};
}

void Print(const char* name, const Snapshot& s) {
  std::printf(
      "[%s] retx %lu = rack %lu + rto %lu + tlp %lu + nack %lu + rnr %lu; rto events %lu, "
      "state changes %lu, rnr waits %lu, spurious %lu\n",
      name, (unsigned long)s.ep.retransmits, (unsigned long)s.ep.retrans_rack,
      (unsigned long)s.ep.retrans_rto, (unsigned long)s.ep.retrans_tlp,
      (unsigned long)s.ep.retrans_nack, (unsigned long)s.ep.retrans_rnr,
      (unsigned long)s.ep.rto_events, (unsigned long)s.ep.path_state_changes,
      (unsigned long)s.ep.rnr_waits, (unsigned long)s.ep.spurious_retransmits);
  for (const PathStats& p : s.paths) {
    std::printf(
        "   path %u %s: sent %lu retx %lu lost %lu (rack %lu rto %lu tlp %lu) rto events "
        "%lu changes %lu\n",
        p.id, PathStateName(p.state), (unsigned long)p.sent, (unsigned long)p.retransmitted,
        (unsigned long)p.lost, (unsigned long)p.retrans_rack, (unsigned long)p.retrans_rto,
        (unsigned long)p.retrans_tlp, (unsigned long)p.rto_events, (unsigned long)p.state_changes);
  }
}

// The sums that hold whatever the traffic: causes add up to the total at every level, and the
// endpoint's counters are the sums of its contexts' and paths'.
void ExpectConsistent(const Snapshot& s) {
  const EndpointStats& e = s.ep;
  EXPECT_EQ(e.retransmits,
            e.retrans_rack + e.retrans_rto + e.retrans_tlp + e.retrans_nack + e.retrans_rnr);
  uint64_t retx = 0, rack = 0, rto = 0, tlp = 0, rto_events = 0, waits = 0;
  for (const ContextStats& c : s.contexts) {
    EXPECT_EQ(c.retransmits,
              c.retrans_rack + c.retrans_rto + c.retrans_tlp + c.retrans_nack + c.retrans_rnr);
    retx += c.retransmits;
    rto_events += c.rto_events;
    waits += c.rnr_waits;
  }
  EXPECT_EQ(retx, e.retransmits);
  EXPECT_EQ(rto_events, e.rto_events);
  EXPECT_EQ(waits, e.rnr_waits);
  uint64_t path_rto_events = 0, changes = 0;
  for (const PathStats& p : s.paths) {
    rack += p.retrans_rack;
    rto += p.retrans_rto;
    tlp += p.retrans_tlp;
    path_rto_events += p.rto_events;
    changes += p.state_changes;
  }
  EXPECT_EQ(rack, e.retrans_rack);
  EXPECT_EQ(rto, e.retrans_rto);
  EXPECT_EQ(tlp, e.retrans_tlp);
  EXPECT_EQ(path_rto_events, e.rto_events);
  EXPECT_EQ(changes, e.path_state_changes);
}

void ExpectAllDelivered(const TransferResult& r, uint64_t n) {
  EXPECT_TRUE(r.finished);
  EXPECT_EQ(r.sent_ok, n);
  EXPECT_EQ(r.delivered, n);
  EXPECT_EQ(r.missing, 0u);
  EXPECT_EQ(r.duplicates, 0u);
  EXPECT_EQ(r.corrupt_payloads, 0u);
}

TEST(SimCounters, LosslessRunRetransmitsNothingAndReportsCongestionState) {
  TransferOptions o;
  o.messages = 200;
  o.max_size = 100'000;
  TransferHarness h(o);
  const TransferResult r = h.Run();
  ExpectAllDelivered(r, o.messages);
  const Snapshot s = Take(h);
  Print("lossless", s);
  ExpectConsistent(s);
  EXPECT_EQ(s.ep.retransmits, 0u);
  EXPECT_EQ(s.ep.rto_events, 0u);
  EXPECT_EQ(s.ep.path_state_changes, 0u);
  EXPECT_EQ(s.ep.rnr_waits, 0u);
  ASSERT_EQ(s.contexts.size(), 1u);
  const ContextStats& c = s.contexts[0];
  EXPECT_TRUE(c.established);
  EXPECT_EQ(c.inflight_bytes, 0u);  // everything acked
  EXPECT_EQ(c.data_packets_sent, s.ep.data_packets_sent);
  EXPECT_GT(c.cwnd_bytes, 0u);
  EXPECT_EQ(c.cwnd_bytes, s.ep.cwnd_bytes);
  // Links of 20 us each way: no RTT below 40 us, and the smoothed one is not below the least.
  EXPECT_GE(c.min_rtt_us, 40u);
  EXPECT_GE(c.srtt_us, c.min_rtt_us);
  // The pacer refills at twice the window per smoothed RTT (within rounding of both to us).
  const double expected = 2.0 * static_cast<double>(c.cwnd_bytes) / (c.srtt_us * 1e-6);
  EXPECT_NEAR(static_cast<double>(c.pacing_rate_bytes_per_s), expected, 0.05 * expected);
  EXPECT_EQ(c.pacing_rate_bytes_per_s, s.ep.pacing_rate_bytes_per_s);
  // Congestion control off: no pacing.
  o.config.congestion_control = false;
  TransferHarness off(o);
  ExpectAllDelivered(off.Run(), o.messages);
  EXPECT_EQ(Take(off).contexts.at(0).pacing_rate_bytes_per_s, 0u);
}

// Bulk traffic over four paths; path 1 blackholed after 5 ms for good. Nothing comes back on
// it, so RACK (which needs a later packet acked on the same path) cannot fire there: its
// packets are declared lost when the path stalls (a probe timeout, while later packets on the
// other paths are acked), counted as tail-loss probes, and three such losses in a row mark it
// suspect (one state change). Before the stall rule they waited for the path's RTO (and the run
// took over 20 ms; 18.3 ms now).
TEST(SimCounters, BlackholedPathRetransmitsByStallAndChangesStateOnce) {
  TransferOptions o;
  o.seed = 16;
  o.messages = 3000;
  o.max_size = 200'000;
  o.paths = 4;
  for (uint32_t i = 0; i < 4; ++i) {
    LinkConfig l;
    l.latency_us = 30 + 5 * i;
    if (i == 1) l.fault.blackhole_after_us = 5'000;
    o.path_links.push_back(l);
  }
  TransferHarness h(o);
  const TransferResult r = h.Run();
  ExpectAllDelivered(r, o.messages);
  EXPECT_GT(r.elapsed_us, 5'000u);  // the path died in the run
  const Snapshot s = Take(h);
  Print("blackhole", s);
  ExpectConsistent(s);
  ASSERT_EQ(s.paths.size(), 4u);
  const PathStats& dead = s.paths[1];
  EXPECT_GT(dead.retrans_tlp, 0u);
  EXPECT_EQ(dead.retrans_tlp, dead.lost);
  EXPECT_GT(s.ep.path_stalls, 0u);
  EXPECT_EQ(dead.retrans_rack, 0u);
  EXPECT_EQ(dead.state, PathState::kSuspect);
  EXPECT_EQ(dead.state_changes, 1u);
  EXPECT_EQ(dead.suspect_events, 1u);
  for (uint32_t i : {0u, 2u, 3u}) {
    const PathStats& p = s.paths[i];
    EXPECT_EQ(p.rto_events, 0u) << "path " << i;
    EXPECT_EQ(p.retrans_rto, 0u) << "path " << i;
    EXPECT_EQ(p.state_changes, 0u) << "path " << i;
    EXPECT_EQ(p.state, PathState::kActive) << "path " << i;
  }
  // The re-sends left on the live paths, so the dead path's losses show in others' retransmitted.
  EXPECT_GT(s.paths[0].retransmitted + s.paths[2].retransmitted + s.paths[3].retransmitted, 0u);
}

// Request/response traffic: one single-packet message at a time, so every packet is alone in
// flight on its path (a tail). Path 1 is dark from 10 ms to 60 ms: its lone packets are rescued
// by tail-loss probes, not by the (longer) RTO; the probes mark it suspect, and once it delivers
// again it turns active: two state changes.
TEST(SimCounters, LostTailPacketIsRetransmittedByTailLossProbe) {
  TransferOptions o;
  o.seed = 17;
  o.messages = 3000;
  o.min_size = 64;
  o.max_size = 1000;
  o.inflight = 1;
  o.paths = 2;
  for (uint32_t i = 0; i < 2; ++i) {
    LinkConfig l;
    l.latency_us = 30;
    if (i == 1) {
      l.fault.blackhole_after_us = 10'000;
      l.fault.blackhole_for_us = 50'000;
    }
    o.path_links.push_back(l);
  }
  TransferHarness h(o);
  const TransferResult r = h.Run();
  ExpectAllDelivered(r, o.messages);
  const Snapshot s = Take(h);
  Print("tail", s);
  ExpectConsistent(s);
  ASSERT_EQ(s.paths.size(), 2u);
  const PathStats& dark = s.paths[1];
  EXPECT_GT(dark.retrans_tlp, 0u);
  EXPECT_EQ(dark.retrans_rto, 0u);
  EXPECT_EQ(dark.retrans_rack, 0u);
  EXPECT_EQ(s.ep.rto_events, 0u);
  EXPECT_EQ(dark.state_changes, 2u);  // suspect, then active again
  EXPECT_EQ(dark.state, PathState::kActive);
  EXPECT_EQ(s.paths[0].state_changes, 0u);
  EXPECT_EQ(s.paths[0].retrans_tlp + s.paths[0].retrans_rto + s.paths[0].retrans_rack, 0u);
  EXPECT_EQ(s.ep.retrans_tlp, s.ep.retransmits);
}

// Bulk traffic, 5% random loss on path 2 only: the path keeps delivering later packets, so its
// losses are found by RACK. No path goes dark, so there is no timeout.
TEST(SimCounters, RandomLossUnderBulkTrafficIsFoundByRack) {
  TransferOptions o;
  o.seed = 18;
  o.messages = 2000;
  o.max_size = 200'000;
  o.paths = 3;
  for (uint32_t i = 0; i < 3; ++i) {
    LinkConfig l;
    l.latency_us = 30;
    if (i == 2) l.fault.loss = 0.05;
    o.path_links.push_back(l);
  }
  TransferHarness h(o);
  const TransferResult r = h.Run();
  ExpectAllDelivered(r, o.messages);
  const Snapshot s = Take(h);
  Print("rack", s);
  ExpectConsistent(s);
  const PathStats& lossy = s.paths.at(2);
  EXPECT_GT(lossy.retrans_rack, 0u);
  // RACK found most of them: the rest were tails (TLP) or the last packets before a lull (RTO).
  EXPECT_GT(lossy.retrans_rack, 4 * (lossy.retrans_tlp + lossy.retrans_rto));
  for (uint32_t i : {0u, 1u}) {
    EXPECT_EQ(s.paths[i].retrans_rack + s.paths[i].retrans_rto + s.paths[i].retrans_tlp, 0u);
  }
  EXPECT_EQ(s.ep.retrans_rnr, 0u);
}

// Packets held back for a while on a path (reordering, no loss) are declared lost by RACK before
// they arrive: the receiver then sees two copies and the sender counts a spurious retransmission.
TEST(SimCounters, ReorderingWithoutLossGivesSpuriousRetransmissions) {
  TransferOptions o;
  o.seed = 19;
  o.messages = 1000;
  o.max_size = 200'000;
  o.paths = 2;
  for (uint32_t i = 0; i < 2; ++i) {
    LinkConfig l;
    l.latency_us = 30;
    if (i == 1) {
      l.fault.reorder = 0.02;
      l.fault.reorder_us = 2000;
    }
    o.path_links.push_back(l);
  }
  TransferHarness h(o);
  const TransferResult r = h.Run();
  ExpectAllDelivered(r, o.messages);
  const Snapshot s = Take(h);
  Print("reorder", s);
  ExpectConsistent(s);
  EXPECT_GT(s.ep.spurious_retransmits, 0u);
  EXPECT_GT(s.paths.at(1).spurious, 0u);
  EXPECT_EQ(s.paths.at(0).spurious, 0u);
  // An ack reports at most one duplicate, so the receiver's exact count bounds it from above.
  EXPECT_LE(s.ep.spurious_retransmits, r.receiver.duplicates_dropped);
}

// Two receive buffers for 64 messages in flight: the receiver refuses with RNR, the sender waits
// and re-sends the refused packets (counted as RNR re-sends, not losses: no path is blamed).
TEST(SimCounters, ReceiverNotReadyGivesRnrWaitsAndRnrResends) {
  TransferOptions o;
  o.messages = 400;
  o.max_size = 50'000;
  o.recv_buffers = 2;
  o.inflight = 64;
  TransferHarness h(o);
  const TransferResult r = h.Run();
  ExpectAllDelivered(r, o.messages);
  const Snapshot s = Take(h);
  Print("rnr", s);
  ExpectConsistent(s);
  EXPECT_GT(s.ep.rnr_waits, 0u);
  EXPECT_LE(s.ep.rnr_waits, s.ep.rnr_received);
  EXPECT_GT(s.ep.retrans_rnr, 0u);
  EXPECT_EQ(s.ep.path_state_changes, 0u);
  for (const PathStats& p : s.paths) EXPECT_EQ(p.lost, 0u) << "path " << p.id;
}

}  // namespace
}  // namespace opensrd::sim
