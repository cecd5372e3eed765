// A two-host transfer driven through the simulator: host A sends messages of seeded random sizes
// to host B over several paths; B verifies every byte against the pattern, counts deliveries
// per message, and reposts its buffers. Used by the deterministic transport tests and by the
// simulated demo. Not thread-safe.
#pragma once
#include <cstdint>
#include <functional>
#include <vector>

#include "sim/network.h"

namespace opensrd::sim {

struct TransferOptions {
  uint64_t seed = 1;
  uint32_t paths = 4;
  uint64_t messages = 1000;
  uint32_t min_size = 1;
  uint32_t max_size = 1u << 20;  // sizes are log-uniform in [min_size, max_size]
  uint32_t inflight = 32;        // messages posted and not completed at the sender
  uint32_t recv_buffers = 64;
  bool in_order = false;
  EndpointConfig config;
  std::vector<LinkConfig> path_links;  // per path (both directions); default_link otherwise
  Micros time_limit_us = 60'000'000;
};

struct TransferResult {
  uint64_t sent_ok = 0;  // send completions with kOk
  uint64_t send_errors = 0;
  uint64_t delivered = 0;  // receive completions with kOk
  uint64_t recv_errors = 0;
  uint64_t duplicates = 0;        // a message delivered more than once
  uint64_t missing = 0;           // a message never delivered
  uint64_t corrupt_payloads = 0;  // wrong length or bytes
  uint64_t order_violations = 0;  // in-order mode: delivered out of sequence
  uint64_t overtaken = 0;         // deliveries of a message after a later-posted one (any mode)
  bool finished = false;
  Micros elapsed_us = 0;
  uint64_t bytes = 0;
  std::vector<Micros> latencies_us;  // post to send completion
  EndpointStats sender;
  EndpointStats receiver;
  PayloadCopyStats sender_copies, receiver_copies;
  std::vector<PathStats> paths;
};

class TransferHarness {
 public:
  explicit TransferHarness(const TransferOptions& o);

  Network& net() { return net_; }
  HostId sender() const { return a_; }
  HostId receiver() const { return b_; }
  PeerId peer() const { return peer_; }
  const std::vector<uint32_t>& sizes() const { return sizes_; }

  // Runs until every message is acknowledged and delivered, or the time limit. `on_step` (if
  // set) runs after every simulator step, e.g. to snapshot counters at a chosen time.
  TransferResult Run(const std::function<void()>& on_step = nullptr);

 private:
  void PostSends();
  void PollSender(TransferResult& r);
  void PollReceiver(TransferResult& r);

  TransferOptions o_;
  Network net_;
  HostId a_ = 0, b_ = 0;
  PeerId peer_ = 0;
  SqId sq_ = 0;
  CqId cq_a_ = 0, cq_b_ = 0;
  std::vector<uint32_t> sizes_;
  std::vector<uint8_t> delivered_count_;
  std::vector<std::vector<uint8_t>> send_bufs_;  // by message index, freed on completion
  std::vector<Micros> posted_at_;
  std::vector<std::vector<uint8_t>> recv_bufs_;
  uint64_t next_post_ = 0;
  uint64_t outstanding_ = 0;
  uint64_t completed_ = 0;
  uint32_t next_in_order_ = 0;
  int64_t highest_delivered_ = -1;
};

}  // namespace opensrd::sim
