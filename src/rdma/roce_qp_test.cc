// RcQueuePair: the bytes of the first packets worked out from the IBTA layouts (SEND ONLY, the
// coalesced ACK, a sequence-error NAK, an RNR NAK), segmentation, PSN wrap, RNR and retry
// exhaustion, access errors, duplicates, and two queue pairs over a seeded lossy, reordering
// pipe with every byte checked.
#include "rdma/roce_qp.h"

#include <gtest/gtest.h>

#include <cstring>
#include <map>
#include <random>
#include <vector>

#include "rdma/roce.h"

namespace opensrd::rdma::roce {
namespace {

using Bytes = std::vector<uint8_t>;

RcConfig Config(uint32_t local, uint32_t remote, uint32_t spsn, uint32_t epsn) {
  RcConfig c;
  c.local_qpn = local;
  c.remote_qpn = remote;
  c.send_psn = spsn;
  c.expected_psn = epsn;
  c.mtu = 1024;
  c.ack_timeout_us = 1000;
  return c;
}

RdmaCommand Decode(const Bytes& b) {
  Result<RdmaCommand> r = DecodeTransport(b);
  EXPECT_TRUE(r.ok()) << r.status().ToString();
  return r.ok() ? *r : RdmaCommand{};
}

WorkRequest Send(uint64_t id, Bytes data) {
  WorkRequest w;
  w.wr_id = id;
  w.opcode = WrOpcode::kSend;
  w.data = std::move(data);
  return w;
}

// Two queue pairs, A (QPN 0x11) and B (QPN 0x22), each with a 64 KiB region behind it.
struct Pair {
  MemoryTarget ta{0x10000, 0xA0A0, 1 << 16};
  MemoryTarget tb{0x20000, 0xB0B0, 1 << 16};
  RcQueuePair a{Config(0x11, 0x22, 0x000100, 0x000200), &ta};
  RcQueuePair b{Config(0x22, 0x11, 0x000200, 0x000100), &tb};
  uint64_t now = 0;

  // Moves packets both ways without loss until both sides are quiet.
  void Run() {
    for (int i = 0; i < 10000; ++i) {
      auto oa = a.TakeOutgoing();
      auto ob = b.TakeOutgoing();
      if (oa.empty() && ob.empty()) return;
      for (const Bytes& p : oa) b.OnPacket(Decode(p), now);
      for (const Bytes& p : ob) a.OnPacket(Decode(p), now);
    }
    FAIL() << "no quiescence";
  }
};

TEST(RocePsn, DiffWraps) {
  EXPECT_EQ(PsnDiff(0x000001, 0xFFFFFF), 2);
  EXPECT_EQ(PsnDiff(0xFFFFFF, 0x000001), -2);
  EXPECT_EQ(PsnDiff(0x400000, 0x000000), 0x400000);
  EXPECT_EQ(RnrTimerMicros(12), 640u);
  EXPECT_EQ(RnrTimerMicros(0), 655360u);
}

TEST(RoceQp, SendOnlyAckAndNakBytes) {
  Pair p;
  p.tb.PostReceive(64);
  ASSERT_TRUE(p.a.PostSend(Send(7, {'h', 'e', 'l', 'l', 'o'}), 0));
  auto out = p.a.TakeOutgoing();
  ASSERT_EQ(out.size(), 1u);
  // BTH: SEND ONLY 0x04; SE 0 M 0 PadCnt 3 TVer 0 = 0x30; P_Key FFFF; DestQP 0x000022;
  // AckReq 1 = 0x80; PSN 0x000100. Then "hello" and three pad bytes.
  const Bytes send = {0x04, 0x30, 0xFF, 0xFF, 0x00, 0x00, 0x00, 0x22, 0x80, 0x00,
                      0x01, 0x00, 'h',  'e',  'l',  'l',  'o',  0x00, 0x00, 0x00};
  EXPECT_EQ(out[0], send);

  p.b.OnPacket(Decode(out[0]), 0);
  auto ack = p.b.TakeOutgoing();
  ASSERT_EQ(ack.size(), 1u);
  // ACKNOWLEDGE 0x11 to QP 0x11, PSN 0x000100; AETH syndrome 0x1F (ACK, no credits), MSN 1.
  const Bytes ack_bytes = {0x11, 0x00, 0xFF, 0xFF, 0x00, 0x00, 0x00, 0x11,
                           0x00, 0x00, 0x01, 0x00, 0x1F, 0x00, 0x00, 0x01};
  EXPECT_EQ(ack[0], ack_bytes);
  ASSERT_EQ(p.tb.received().size(), 1u);
  EXPECT_EQ(p.tb.received()[0].data, Bytes({'h', 'e', 'l', 'l', 'o'}));

  p.a.OnPacket(Decode(ack[0]), 0);
  auto done = p.a.TakeCompletions();
  ASSERT_EQ(done.size(), 1u);
  EXPECT_EQ(done[0].wr_id, 7u);
  EXPECT_EQ(done[0].status, WcStatus::kSuccess);

  // A packet two PSNs ahead of the expected 0x000101: one NAK (PSN sequence error) naming
  // 0x000101, and no second NAK for the next packet of the same gap.
  RdmaCommand ahead = Decode(send);
  ahead.psn = 0x000103;
  p.b.OnPacket(ahead, 0);
  ahead.psn = 0x000104;
  p.b.OnPacket(ahead, 0);
  auto nak = p.b.TakeOutgoing();
  ASSERT_EQ(nak.size(), 1u);
  const Bytes nak_bytes = {0x11, 0x00, 0xFF, 0xFF, 0x00, 0x00, 0x00, 0x11,
                           0x00, 0x00, 0x01, 0x01, 0x60, 0x00, 0x00, 0x01};
  EXPECT_EQ(nak[0], nak_bytes);
  EXPECT_EQ(p.tb.received().size(), 1u);
}

TEST(RoceQp, RnrNakThenRetryAfterTimer) {
  Pair p;
  ASSERT_TRUE(p.a.PostSend(Send(1, {1, 2, 3, 4}), 0));
  p.b.OnPacket(Decode(p.a.TakeOutgoing().at(0)), 0);
  auto rnr = p.b.TakeOutgoing();
  ASSERT_EQ(rnr.size(), 1u);
  // RNR NAK: AETH syndrome 001 + timer 12 (0.64 ms) = 0x2C, MSN 0, PSN 0x000100.
  const Bytes rnr_bytes = {0x11, 0x00, 0xFF, 0xFF, 0x00, 0x00, 0x00, 0x11,
                           0x00, 0x00, 0x01, 0x00, 0x2C, 0x00, 0x00, 0x00};
  EXPECT_EQ(rnr[0], rnr_bytes);
  p.a.OnPacket(Decode(rnr[0]), 100);
  EXPECT_TRUE(p.a.TakeOutgoing().empty());
  ASSERT_TRUE(p.a.NextDeadline().has_value());
  EXPECT_EQ(*p.a.NextDeadline(), 100u + 640u);
  p.tb.PostReceive(16);
  p.now = 740;
  p.a.OnTimer(740);
  p.Run();
  auto done = p.a.TakeCompletions();
  ASSERT_EQ(done.size(), 1u);
  EXPECT_EQ(done[0].status, WcStatus::kSuccess);
  EXPECT_EQ(p.tb.received().at(0).data, Bytes({1, 2, 3, 4}));
  EXPECT_EQ(p.a.stats().rnr_naks_received, 1u);
}

TEST(RoceQp, RnrRetryExhaustedFlushesTheRest) {
  MemoryTarget ta{0, 1, 64}, tb{0, 1, 64};
  RcConfig ca = Config(0x11, 0x22, 5, 9);
  ca.rnr_retry = 1;
  RcQueuePair a{ca, &ta}, b{Config(0x22, 0x11, 9, 5), &tb};
  a.PostSend(Send(1, {1}), 0);
  a.PostSend(Send(2, {2}), 0);
  uint64_t now = 0;
  for (int i = 0; i < 10 && !a.in_error(); ++i) {
    for (const Bytes& x : a.TakeOutgoing()) b.OnPacket(Decode(x), now);
    for (const Bytes& x : b.TakeOutgoing()) a.OnPacket(Decode(x), now);
    if (a.NextDeadline()) {
      now = *a.NextDeadline();
      a.OnTimer(now);
    }
  }
  auto done = a.TakeCompletions();
  ASSERT_EQ(done.size(), 2u);
  EXPECT_EQ(done[0].status, WcStatus::kRnrRetryExceeded);
  EXPECT_EQ(done[1].status, WcStatus::kFlushed);
  EXPECT_EQ(a.stats().rnr_naks_received, 2u);  // the first try and one retry
}

TEST(RoceQp, RetryExceededAfterTimeouts) {
  MemoryTarget ta{0, 1, 64};
  RcConfig c = Config(0x11, 0x22, 0, 0);
  c.retry_cnt = 2;
  RcQueuePair a{c, &ta};
  a.PostSend(Send(1, {1}), 0);
  uint64_t now = 0;
  int sends = 0;
  while (!a.in_error() && sends < 20) {
    sends += static_cast<int>(a.TakeOutgoing().size());  // every packet is lost
    now = *a.NextDeadline();
    a.OnTimer(now);
  }
  EXPECT_EQ(sends, 3);  // the first transmission and two retries
  EXPECT_EQ(now, 3000u);
  auto done = a.TakeCompletions();
  ASSERT_EQ(done.size(), 1u);
  EXPECT_EQ(done[0].status, WcStatus::kRetryExceeded);
  EXPECT_FALSE(a.PostSend(Send(2, {2}), now));
  EXPECT_EQ(a.TakeCompletions().at(0).status, WcStatus::kFlushed);
}

TEST(RoceQp, WriteSegmentsAcrossPsnWrap) {
  MemoryTarget ta{0, 1, 64}, tb{0x5000, 0x77, 8192};
  RcQueuePair a{Config(0x11, 0x22, 0xFFFFFE, 3), &ta}, b{Config(0x22, 0x11, 3, 0xFFFFFE), &tb};
  WorkRequest w;
  w.wr_id = 9;
  w.opcode = WrOpcode::kWriteImm;
  w.remote_va = 0x5000 + 100;
  w.rkey = 0x77;
  w.imm = 0xCAFE;
  for (int i = 0; i < 2560; ++i) w.data.push_back(static_cast<uint8_t>(i * 7));
  Bytes want = w.data;
  tb.PostReceive(0);
  a.PostSend(w, 0);
  auto pk = a.TakeOutgoing();
  ASSERT_EQ(pk.size(), 3u);
  RdmaCommand c0 = Decode(pk[0]), c1 = Decode(pk[1]), c2 = Decode(pk[2]);
  EXPECT_EQ(c0.opcode, RdmaOpcode::kWriteFirst);
  EXPECT_EQ(c0.psn, 0xFFFFFEu);
  EXPECT_EQ(c0.dma_length, 2560u);
  EXPECT_EQ(c0.payload.size(), 1024u);
  EXPECT_EQ(c1.opcode, RdmaOpcode::kWriteMiddle);
  EXPECT_EQ(c1.psn, 0xFFFFFFu);
  EXPECT_EQ(c1.flags & kFlagAckRequest, 0);
  EXPECT_EQ(c2.opcode, RdmaOpcode::kWriteLastImm);
  EXPECT_EQ(c2.psn, 0u);
  EXPECT_EQ(c2.imm, 0xCAFEu);
  EXPECT_EQ(c2.payload.size(), 512u);
  EXPECT_NE(c2.flags & kFlagAckRequest, 0);
  for (const Bytes& x : pk) b.OnPacket(Decode(x), 0);
  for (const Bytes& x : b.TakeOutgoing()) a.OnPacket(Decode(x), 0);
  EXPECT_EQ(a.TakeCompletions().at(0).status, WcStatus::kSuccess);
  EXPECT_TRUE(std::equal(want.begin(), want.end(), tb.memory().begin() + 100));
  ASSERT_EQ(tb.received().size(), 1u);
  EXPECT_EQ(tb.received()[0].imm, 0xCAFEu);
}

// More PSNs than the window holds and nothing posted afterwards: the ACKs alone must reopen the
// window and move the rest out (found against rxe: 16 KiB writes stalled after 128 packets).
TEST(RoceQp, AcksReopenTheWindow) {
  MemoryTarget ta{0, 1, 64}, tb{0x5000, 0x77, 1 << 16};
  RcConfig c = Config(0x11, 0x22, 10, 20);
  c.max_inflight_packets = 8;
  RcQueuePair a{c, &ta}, b{Config(0x22, 0x11, 20, 10), &tb};
  WorkRequest w;
  w.opcode = WrOpcode::kWrite;
  w.remote_va = 0x5000;
  w.rkey = 0x77;
  w.data = Bytes(20 * 1024, 0x5A);
  a.PostSend(w, 0);
  a.PostSend(w, 0);
  for (int i = 0; i < 100; ++i) {
    for (const Bytes& x : a.TakeOutgoing()) b.OnPacket(Decode(x), 0);
    for (const Bytes& x : b.TakeOutgoing()) a.OnPacket(Decode(x), 0);
  }
  auto done = a.TakeCompletions();
  ASSERT_EQ(done.size(), 2u);
  EXPECT_EQ(done[1].status, WcStatus::kSuccess);
  EXPECT_EQ(a.stats().packets_sent, 40u);
}

TEST(RoceQp, WrongRkeyIsRemoteAccessErrorAndMemoryUntouched) {
  Pair p;
  WorkRequest w;
  w.wr_id = 3;
  w.opcode = WrOpcode::kWrite;
  w.remote_va = p.tb.base_va();
  w.rkey = p.tb.rkey() + 1;
  w.data = Bytes(3000, 0xEE);
  p.a.PostSend(w, 0);
  p.Run();
  auto done = p.a.TakeCompletions();
  ASSERT_EQ(done.size(), 1u);
  EXPECT_EQ(done[0].status, WcStatus::kRemoteAccessError);
  EXPECT_EQ(std::count(p.tb.memory().begin(), p.tb.memory().end(), 0xEE), 0);
  EXPECT_TRUE(p.a.in_error());
}

// A READ request's length is the peer's to choose: one of almost 4 GiB is refused as an invalid
// request before the responder sets memory aside for it (it tried to allocate 4 GiB: the fuzz
// target ran out of memory).
TEST(RoceQp, HugeReadRequestIsRefusedBeforeAnyAllocation) {
  Pair p;
  RdmaCommand req;
  req.opcode = RdmaOpcode::kReadRequest;
  req.flags = kFlagFirst | kFlagLast | kFlagAckRequest;
  req.dest_qp = 0x22;
  req.psn = 0x000100;  // what B expects from A
  req.va = p.tb.base_va();
  req.rkey = p.tb.rkey();
  req.dma_length = 0xFFFFFDFF;
  Result<Bytes> wire = EncodeTransport(req);
  ASSERT_TRUE(wire.ok()) << wire.status().ToString();
  p.b.OnPacket(Decode(*wire), 0);
  auto out = p.b.TakeOutgoing();
  ASSERT_EQ(out.size(), 1u);
  const RdmaCommand nak = Decode(out[0]);
  EXPECT_EQ(nak.opcode, RdmaOpcode::kNak);
  EXPECT_EQ(nak.syndrome & 0x1F, static_cast<uint8_t>(NakCode::kInvalidRequest));
}

TEST(RoceQp, MisalignedAtomicIsInvalidRequest) {
  Pair p;
  WorkRequest w;
  w.opcode = WrOpcode::kFetchAdd;
  w.remote_va = p.tb.base_va() + 4;
  w.rkey = p.tb.rkey();
  w.swap_add = 1;
  p.a.PostSend(w, 0);
  p.Run();
  EXPECT_EQ(p.a.TakeCompletions().at(0).status, WcStatus::kRemoteInvalidRequest);
}

TEST(RoceQp, DuplicatesAreAckedOrReExecutedNotRedelivered) {
  Pair p;
  p.tb.PostReceive(8);
  p.tb.PostReceive(8);
  p.tb.memory()[0] = 0x42;
  p.a.PostSend(Send(1, {9}), 0);
  WorkRequest r;
  r.wr_id = 2;
  r.opcode = WrOpcode::kRead;
  r.remote_va = p.tb.base_va();
  r.rkey = p.tb.rkey();
  r.read_length = 1;
  p.a.PostSend(r, 0);
  auto req = p.a.TakeOutgoing();
  ASSERT_EQ(req.size(), 2u);
  for (const Bytes& x : req) p.b.OnPacket(Decode(x), 0);
  auto first = p.b.TakeOutgoing();
  for (const Bytes& x : req) p.b.OnPacket(Decode(x), 0);  // both again, as after a lost answer
  auto again = p.b.TakeOutgoing();
  EXPECT_EQ(p.tb.received().size(), 1u);  // the SEND was delivered once
  EXPECT_EQ(p.b.stats().duplicates, 2u);
  // Again: the READ response (re-executed) and one coalesced ACK repeating the SEND's.
  ASSERT_EQ(again.size(), 2u);
  EXPECT_EQ(Decode(again[0]).opcode, RdmaOpcode::kReadResponseOnly);
  EXPECT_EQ(Decode(again[1]).opcode, RdmaOpcode::kAck);
  for (const Bytes& x : again) p.a.OnPacket(Decode(x), 0);
  for (const Bytes& x : first) p.a.OnPacket(Decode(x), 0);
  auto done = p.a.TakeCompletions();
  ASSERT_EQ(done.size(), 2u);
  EXPECT_EQ(done[1].read_data, Bytes({0x42}));
}

// A deterministic lossy pipe: each packet is dropped with probability `loss`, else delivered
// after 10-40 us (so packets overtake each other). Virtual time only.
class LossyPipe {
 public:
  LossyPipe(uint64_t seed, double loss) : rng_(seed), loss_(loss) {}
  void Send(int to, Bytes b, uint64_t now) {
    if (std::uniform_real_distribution<double>(0, 1)(rng_) < loss_) {
      ++dropped_;
      return;
    }
    uint64_t at = now + 10 + rng_() % 31;
    q_.emplace(std::make_pair(at, seq_++), std::make_pair(to, std::move(b)));
  }
  bool Next(uint64_t* at) const {
    if (q_.empty()) return false;
    *at = q_.begin()->first.first;
    return true;
  }
  std::pair<int, Bytes> Pop() {
    auto it = q_.begin();
    auto v = std::move(it->second);
    q_.erase(it);
    return v;
  }
  uint64_t dropped() const { return dropped_; }

 private:
  std::mt19937_64 rng_;
  double loss_;
  uint64_t seq_ = 0;
  uint64_t dropped_ = 0;
  std::map<std::pair<uint64_t, uint64_t>, std::pair<int, Bytes>> q_;
};

// Each side runs WRITE, READ-back, SEND, SEND_WITH_IMM, WRITE_WITH_IMM and FETCH_ADD against
// the other through 1% loss and reordering; PSNs start near the wrap.
void RunLossy(uint64_t seed) {
  constexpr size_t kMem = 1 << 17;
  MemoryTarget t[2] = {{0x100000, 0x1111, kMem}, {0x200000, 0x2222, kMem}};
  RcConfig c0 = Config(0x11, 0x22, 0xFFFF00, 0xFFFFF0);
  RcConfig c1 = Config(0x22, 0x11, 0xFFFFF0, 0xFFFF00);
  c0.ack_timeout_us = c1.ack_timeout_us = 500;
  c0.min_rnr_timer = c1.min_rnr_timer = 1;
  c0.max_inflight_packets = c1.max_inflight_packets = 32;
  RcQueuePair qp[2] = {{c0, &t[0]}, {c1, &t[1]}};
  LossyPipe pipe(seed, 0.01);
  std::mt19937_64 rng(seed * 7 + 1);

  // Expected state of each side's memory, as the other side's requests change it in order.
  std::vector<uint8_t> model[2] = {Bytes(kMem, 0), Bytes(kMem, 0)};
  std::map<uint64_t, Bytes> want_read[2];
  std::map<uint64_t, uint64_t> want_atomic[2];
  std::vector<Bytes> want_recv[2];
  uint64_t now = 0, next_id = 1;
  const int kOps = 300;
  int posted[2] = {0, 0};
  bool fence[2] = {false, false};
  size_t completed[2] = {0, 0};

  auto post_one = [&](int s) {
    int peer = 1 - s;
    WorkRequest w;
    w.wr_id = next_id++;
    uint32_t len = static_cast<uint32_t>(1 + rng() % 5000);
    uint64_t off = rng() % (kMem - 8192);
    w.remote_va = t[peer].base_va() + off;
    w.rkey = t[peer].rkey();
    switch (rng() % 6) {
      case 0:
      case 1:
        w.opcode = rng() % 2 ? WrOpcode::kWrite : WrOpcode::kWriteImm;
        w.imm = static_cast<uint32_t>(w.wr_id);
        for (uint32_t i = 0; i < len; ++i) w.data.push_back(static_cast<uint8_t>(rng()));
        std::copy(w.data.begin(), w.data.end(), model[peer].begin() + off);
        if (w.opcode == WrOpcode::kWriteImm) {
          t[peer].PostReceive(0);
          want_recv[peer].push_back({});
        }
        break;
      case 2:
        w.opcode = WrOpcode::kRead;
        w.read_length = len;
        fence[s] = true;
        want_read[s][w.wr_id] = Bytes(model[peer].begin() + off, model[peer].begin() + off + len);
        break;
      case 3:
      case 4:
        w.opcode = rng() % 2 ? WrOpcode::kSend : WrOpcode::kSendImm;
        for (uint32_t i = 0; i < len; ++i) w.data.push_back(static_cast<uint8_t>(rng()));
        t[peer].PostReceive(len);
        want_recv[peer].push_back(w.data);
        break;
      default: {
        w.opcode = WrOpcode::kFetchAdd;
        off &= ~uint64_t{7};
        w.remote_va = t[peer].base_va() + off;
        w.swap_add = rng() % 1000;
        uint64_t v;
        std::memcpy(&v, model[peer].data() + off, 8);
        want_atomic[s][w.wr_id] = v;
        v += w.swap_add;
        std::memcpy(model[peer].data() + off, &v, 8);
      }
    }
    if (w.opcode != WrOpcode::kRead) fence[s] = false;
    ASSERT_TRUE(qp[s].PostSend(std::move(w), now));
    ++posted[s];
  };

  for (int step = 0; step < 2'000'000; ++step) {
    for (int s = 0; s < 2; ++s) {
      // A resent READ runs again at the responder and may see a WRITE posted after it (as
      // InfiniBand allows without the fence bit): nothing follows a READ until it completes.
      if (posted[s] < kOps && qp[s].outstanding() < (fence[s] ? 1u : 8u)) post_one(s);
      for (Bytes& b : qp[s].TakeOutgoing()) pipe.Send(1 - s, std::move(b), now);
      for (Completion& c : qp[s].TakeCompletions()) {
        ASSERT_EQ(c.status, WcStatus::kSuccess) << WcStatusName(c.status);
        if (c.opcode == WrOpcode::kRead) {
          ASSERT_EQ(c.read_data, want_read[s].at(c.wr_id)) << "READ " << c.wr_id;
        }
        if (c.opcode == WrOpcode::kFetchAdd) {
          ASSERT_EQ(c.atomic_original, want_atomic[s].at(c.wr_id));
        }
        ++completed[s];
      }
    }
    if (completed[0] == kOps && completed[1] == kOps) break;
    uint64_t at = UINT64_MAX, p;
    if (pipe.Next(&p)) at = p;
    for (auto& q : qp) {
      if (q.NextDeadline() && *q.NextDeadline() < at) at = *q.NextDeadline();
    }
    ASSERT_NE(at, UINT64_MAX) << "stalled";
    now = std::max(now, at);
    uint64_t head;
    if (pipe.Next(&head) && head <= now) {
      auto [to, bytes] = pipe.Pop();
      Result<RdmaCommand> cmd = DecodeTransport(bytes);
      ASSERT_TRUE(cmd.ok());
      qp[to].OnPacket(*cmd, now);
    }
    for (auto& q : qp) {
      if (q.NextDeadline() && *q.NextDeadline() <= now) q.OnTimer(now);
    }
  }
  ASSERT_EQ(completed[0], size_t{kOps});
  ASSERT_EQ(completed[1], size_t{kOps});
  for (int s = 0; s < 2; ++s) {
    EXPECT_EQ(t[s].memory(), model[s]) << "side " << s;
    ASSERT_EQ(t[s].received().size(), want_recv[s].size());
    for (size_t i = 0; i < want_recv[s].size(); ++i) {
      EXPECT_EQ(t[s].received()[i].data, want_recv[s][i]) << "receive " << i;
    }
  }
  EXPECT_GT(pipe.dropped(), 10u);
  EXPECT_GT(qp[0].stats().retransmitted_packets + qp[1].stats().retransmitted_packets, 0u);
  EXPECT_GT(qp[0].stats().naks_sent + qp[1].stats().naks_sent, 0u);
}

TEST(RoceQp, LossyReorderingPipeDeliversEverythingVerified) {
  for (uint64_t seed : {20261127u, 1u, 2u, 3u, 4u, 5u}) {
    SCOPED_TRACE(seed);
    RunLossy(seed);
    if (HasFatalFailure()) return;
  }
}

}  // namespace
}  // namespace opensrd::rdma::roce
