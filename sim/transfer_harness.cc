#include "sim/transfer_harness.h"

#include <algorithm>
#include <cmath>

#include "common/pattern.h"
#include "common/rng.h"

namespace opensrd::sim {

namespace {
constexpr uint32_t kIpA = 0x0A000001;  // simulated addresses only; nothing leaves the process
constexpr uint32_t kIpB = 0x0A000002;
constexpr uint16_t kPortA = 1000;
constexpr uint16_t kPortB = 2000;
}  // namespace

TransferHarness::TransferHarness(const TransferOptions& o) : o_(o), net_(o.seed) {
  Rng rng(o.seed * 7919 + 1);
  sizes_.resize(o.messages);
  const double lo = std::log(static_cast<double>(o.min_size));
  const double hi = std::log(static_cast<double>(o.max_size) + 1);
  for (auto& s : sizes_) {
    s = static_cast<uint32_t>(std::exp(lo + rng.Unit() * (hi - lo)));
    s = std::clamp(s, o.min_size, o.max_size);
  }
  delivered_count_.assign(o.messages, 0);
  send_bufs_.resize(o.messages);
  posted_at_.assign(o.messages, 0);

  EndpointConfig ca = o.config, cb = o.config;
  ca.node_id = 0xA;
  ca.seed = o.seed * 2 + 1;
  cb.node_id = 0xB;
  cb.seed = o.seed * 2 + 2;
  a_ = net_.AddHost(kIpA, kPortA, static_cast<uint16_t>(o.paths), ca);
  b_ = net_.AddHost(kIpB, kPortB, 1, cb);
  std::vector<PathSpec> specs;
  for (uint32_t i = 0; i < o.paths; ++i) {
    specs.push_back({static_cast<uint16_t>(i), net_.address(b_, 0)});
    if (i < o.path_links.size()) {
      net_.SetPath(net_.address(a_, static_cast<uint16_t>(i)), net_.address(b_, 0),
                   o.path_links[i]);
    }
  }
  Endpoint& ea = net_.endpoint(a_);
  Endpoint& eb = net_.endpoint(b_);
  cq_a_ = ea.CreateCompletionQueue();
  cq_b_ = eb.CreateCompletionQueue();
  sq_ = ea.CreateSendQueue({.cq = cq_a_, .in_order = o.in_order}).value();
  peer_ = ea.AddPeer(specs, net_.now_ns()).value();
  recv_bufs_.resize(o.recv_buffers);
  for (uint32_t i = 0; i < o.recv_buffers; ++i) {
    recv_bufs_[i].resize(o.max_size);
    (void)eb.PostRecv(cq_b_, recv_bufs_[i].data(), recv_bufs_[i].size(), i);
  }
}

void TransferHarness::PostSends() {
  Endpoint& ea = net_.endpoint(a_);
  bool posted = false;
  while (outstanding_ < o_.inflight && next_post_ < o_.messages) {
    const uint64_t i = next_post_++;
    auto& buf = send_bufs_[i];
    buf.resize(sizes_[i]);
    FillPattern(i, buf.data(), buf.size());
    // Two SGEs when possible, so gathering across elements is exercised on every run.
    const size_t half = buf.size() / 2;
    Sge sgl[2] = {{buf.data(), half}, {buf.data() + half, buf.size() - half}};
    const Status s = ea.PostSend(sq_, peer_, sgl, i, net_.now_ns());
    if (!s.ok()) {
      --next_post_;
      break;
    }
    posted_at_[i] = net_.now();
    ++outstanding_;
    posted = true;
  }
  if (posted) net_.Kick(a_);
}

void TransferHarness::PollSender(TransferResult& r) {
  Completion c[64];
  size_t n;
  while ((n = net_.endpoint(a_).PollCompletions(cq_a_, c)) > 0) {
    for (size_t k = 0; k < n; ++k) {
      --outstanding_;
      ++completed_;
      if (c[k].status == Code::kOk) {
        ++r.sent_ok;
        r.latencies_us.push_back(net_.now() - posted_at_[c[k].tag]);
      } else {
        ++r.send_errors;
      }
      std::vector<uint8_t>().swap(send_bufs_[c[k].tag]);
    }
  }
}

void TransferHarness::PollReceiver(TransferResult& r) {
  Endpoint& eb = net_.endpoint(b_);
  Completion c[64];
  size_t n;
  while ((n = eb.PollCompletions(cq_b_, c)) > 0) {
    for (size_t k = 0; k < n; ++k) {
      const Completion& cc = c[k];
      if (cc.status != Code::kOk) {
        ++r.recv_errors;
      } else if (cc.sq_seq >= o_.messages) {
        ++r.corrupt_payloads;
      } else {
        const uint32_t i = cc.sq_seq;
        if (cc.length != sizes_[i] ||
            !CheckPattern(i, static_cast<const uint8_t*>(cc.buffer), cc.length)) {
          ++r.corrupt_payloads;
        }
        if (delivered_count_[i]++ > 0) ++r.duplicates;
        if (static_cast<int64_t>(i) < highest_delivered_) ++r.overtaken;
        highest_delivered_ = std::max<int64_t>(highest_delivered_, i);
        if (o_.in_order) {
          if (i != next_in_order_) ++r.order_violations;
          next_in_order_ = i + 1;
        }
        ++r.delivered;
        r.bytes += cc.length;
      }
      const auto slot = static_cast<uint32_t>(cc.tag);
      (void)eb.PostRecv(cq_b_, recv_bufs_[slot].data(), recv_bufs_[slot].size(), slot);
    }
  }
}

TransferResult TransferHarness::Run(const std::function<void()>& on_step) {
  TransferResult r;
  const Micros start = net_.now();
  PostSends();
  auto done = [&] { return completed_ == o_.messages && r.delivered + r.recv_errors >= r.sent_ok; };
  while (!done() && net_.now() - start < o_.time_limit_us) {
    if (!net_.Step()) break;
    PollSender(r);
    PollReceiver(r);
    PostSends();
    if (on_step) on_step();
  }
  r.finished = done();
  r.elapsed_us = net_.now() - start;
  for (uint8_t d : delivered_count_) r.missing += d == 0;
  r.sender = net_.endpoint(a_).stats();
  r.receiver = net_.endpoint(b_).stats();
  r.sender_copies = net_.endpoint(a_).copy_stats();
  r.receiver_copies = net_.endpoint(b_).copy_stats();
  r.paths = net_.endpoint(a_).path_stats(peer_);
  return r;
}

}  // namespace opensrd::sim
