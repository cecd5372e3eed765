// Drives a RoCEv2 RC queue pair (responder and requester) with arbitrary packets, timer ticks
// and work requests. Input: a sequence of records, each a kind byte then its body:
//   0: packet, 2-byte big-endian length + transport bytes (BTH onward, pad included);
//   1: time passes, 2 bytes of milliseconds, then due timers fire;
//   2: a work request, 1 byte opcode selector + 2 bytes of length.
// Checks beyond "no crash": every packet the queue pair emits decodes, and its PSN state never
// lets more completions out than work requests went in.
#include <cstdint>
#include <cstdlib>
#include <span>
#include <vector>

#include "rdma/rc_target.h"
#include "rdma/roce.h"
#include "rdma/roce_qp.h"

using namespace opensrd;
using namespace opensrd::rdma;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  MemoryTarget target(0x1000, 0x55, 4096);
  for (int i = 0; i < 4; ++i) target.PostReceive(2048);
  roce::RcConfig cfg;
  cfg.local_qpn = 0x11;
  cfg.remote_qpn = 0x22;
  cfg.send_psn = 0xFFFFF0;
  cfg.expected_psn = 0x000100;
  cfg.mtu = 256;
  cfg.retry_cnt = 3;
  cfg.rnr_retry = 3;
  cfg.ack_timeout_us = 1000;
  roce::RcQueuePair qp(cfg, &target);
  uint64_t now = 0;
  size_t posted = 0, completed = 0;
  size_t i = 0;
  auto drain = [&] {
    for (const std::vector<uint8_t>& p : qp.TakeOutgoing()) {
      if (!roce::DecodeTransport(p).ok()) std::abort();
    }
    completed += qp.TakeCompletions().size();
    if (completed > posted) std::abort();
  };
  while (i < size) {
    uint8_t kind = data[i++] % 3;
    if (kind == 0) {
      if (i + 2 > size) break;
      size_t n = size_t{data[i]} << 8 | data[i + 1];
      i += 2;
      if (n > size - i) n = size - i;
      Result<RdmaCommand> cmd = roce::DecodeTransport(std::span<const uint8_t>(data + i, n));
      i += n;
      if (cmd.ok()) qp.OnPacket(*cmd, now);
    } else if (kind == 1) {
      if (i + 2 > size) break;
      now += (uint64_t{data[i]} << 8 | data[i + 1]) * 1000;
      i += 2;
      if (qp.NextDeadline() && *qp.NextDeadline() <= now) qp.OnTimer(now);
    } else {
      if (i + 3 > size) break;
      roce::WorkRequest w;
      w.wr_id = posted;
      w.opcode = static_cast<roce::WrOpcode>(data[i] % 7);
      uint32_t len = (uint32_t{data[i + 1]} << 8 | data[i + 2]) % 3000;
      i += 3;
      w.data.assign(w.opcode == roce::WrOpcode::kRead ? 0 : len, 0xAB);
      w.read_length = len;
      w.remote_va = 0x2000;
      w.rkey = 0x66;
      ++posted;
      qp.PostSend(std::move(w), now);
    }
    drain();
  }
  return 0;
}
