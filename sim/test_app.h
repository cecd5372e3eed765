// Test helpers shared by the simulator tests: a minimal application on one simulated host
// (a CQ, an SQ, receive buffers reposted after each completion, every completion kept) and a
// run loop that also catches a deadline stuck in the past (a busy loop in a real shell).
// Header-only; test code. Not thread-safe.
#pragma once
#include <gtest/gtest.h>

#include <algorithm>
#include <functional>
#include <vector>

#include "common/pattern.h"
#include "sim/network.h"

namespace opensrd::sim::simtest {

constexpr uint32_t kIpA = 0x0A000001, kIpB = 0x0A000002, kIpC = 0x0A000003;

inline EndpointConfig Config(uint64_t node, uint64_t seed) {
  EndpointConfig c;
  c.node_id = node;
  c.seed = seed;
  c.peer_timeout_us = 50'000;
  return c;
}

// One endpoint's application side: a CQ, an SQ, posted receive buffers that are reposted after
// each completion, and every completion kept for the test to inspect.
struct App {
  Network* net = nullptr;
  HostId host = 0;
  CqId cq = 0;
  SqId sq = 0;
  std::vector<std::vector<uint8_t>> recv_bufs;
  std::vector<std::vector<uint8_t>> send_bufs;
  std::vector<Completion> sends, recvs;
  // For each receive completion, the key whose pattern its payload holds (-1: none), read
  // before the buffer is reposted and overwritten.
  std::vector<int64_t> keys;
  bool repost = true;

  Endpoint& ep() { return net->endpoint(host); }
  void Init(Network& n, HostId h, const SqOptions& sqo = {}, size_t buffers = 16,
            size_t size = 64 * 1024) {
    net = &n;
    host = h;
    cq = ep().CreateCompletionQueue();
    SqOptions o = sqo;
    o.cq = cq;
    sq = ep().CreateSendQueue(o).value();
    recv_bufs.assign(buffers, std::vector<uint8_t>(size));
    for (size_t i = 0; i < recv_bufs.size(); ++i) {
      ASSERT_TRUE(ep().PostRecv(cq, recv_bufs[i].data(), size, i).ok());
    }
  }
  // Posts a message whose bytes are the pattern of `key` (the tag is the key too).
  void Send(PeerId peer, uint64_t key, uint32_t size) {
    send_bufs.emplace_back(size);
    FillPattern(key, send_bufs.back().data(), size);
    Sge sge{send_bufs.back().data(), size};
    const Status st = ep().PostSend(sq, peer, {&sge, 1}, key, net->now_ns());
    ASSERT_TRUE(st.ok()) << st.ToString();
    net->Kick(host);
  }
  void Poll() {
    Completion c[16];
    size_t n;
    while ((n = ep().PollCompletions(cq, c)) > 0) {
      for (size_t k = 0; k < n; ++k) {
        if (c[k].kind == CompletionKind::kSend) {
          sends.push_back(c[k]);
          continue;
        }
        recvs.push_back(c[k]);
        int64_t key = -1;
        for (int64_t cand = 0; cand < 256 && key < 0 && c[k].status == Code::kOk; ++cand) {
          if (CheckPattern(static_cast<uint64_t>(cand), static_cast<const uint8_t*>(c[k].buffer),
                           c[k].length)) {
            key = cand;
          }
        }
        keys.push_back(key);
        if (!repost) continue;
        const auto& buf = recv_bufs[c[k].tag];
        (void)ep().PostRecv(cq, const_cast<uint8_t*>(buf.data()), buf.size(), c[k].tag);
      }
    }
  }
  size_t Count(const std::vector<Completion>& v, Code code) const {
    return static_cast<size_t>(
        std::count_if(v.begin(), v.end(), [&](const Completion& c) { return c.status == code; }));
  }
};

// Runs the network, polling every app after each step, until `done` or `limit` more simulated
// microseconds. Also fails (returns false) if the simulator spins without time advancing: a
// deadline stuck in the past is a busy loop in a real shell.
inline bool RunNet(Network& net, std::vector<App*> apps, const std::function<bool()>& done,
                   Micros limit) {
  uint64_t overdue_steps = 0;
  bool spun = false;
  const bool ok = net.RunUntil(
      [&] {
        for (App* a : apps) a->Poll();
        bool overdue = false;
        for (App* a : apps) overdue |= a->ep().NextTimeout() < net.now_ns();
        overdue_steps = overdue ? overdue_steps + 1 : 0;
        spun |= overdue_steps > 10'000;
        return spun || done();
      },
      net.now() + limit);
  EXPECT_FALSE(spun) << "an endpoint's deadline stayed in the past at t=" << net.now()
                     << " us: a real shell would spin";
  return ok && !spun;
}

}  // namespace opensrd::sim::simtest
