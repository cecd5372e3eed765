// Feeds arbitrary bytes to an iWARP queue pair as its TCP stream: MPA start frame, FPDUs (CRC
// checked), DDP/RDMAP decoding and the executor behind them. The first byte picks the role and
// the chunking:
//   bit 0 == 0: a responder, fed what an initiator would send (MPA request, RTR, requests);
//   bit 0 == 1: an initiator that sent its request and posted a WRITE and a READ, fed a reply
//               and responses.
// Bits 1-7 set the chunk size (1..128 bytes). Checks beyond "no crash": nothing is written
// outside the registered region (guard bytes stay intact), a terminated queue pair emits
// nothing more, and every posted work request completes exactly once.
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <span>
#include <vector>

#include "rdma/iwarp_qp.h"

using namespace opensrd;
using namespace opensrd::rdma;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  const bool initiator = data[0] & 1;
  const size_t chunk = 1 + (data[0] >> 1);
  std::span<const uint8_t> in(data + 1, size - 1);

  MemoryRegistry reg;
  PdHandle pd = reg.AllocPd();
  constexpr size_t kRegion = 4096;
  constexpr size_t kGuard = 64;
  std::vector<uint8_t> mem(kRegion + 2 * kGuard, 0x5A);
  MemoryRegion mr = *reg.Register(pd, mem.data() + kGuard, kRegion,
                                  kAccessLocalWrite | kAccessRemoteWrite | kAccessRemoteRead);
  iwarp::QpConfig cfg;
  cfg.initiator = initiator;
  cfg.pd = pd;
  cfg.max_segment = 512;
  iwarp::IwarpQp qp(cfg, reg);
  uint32_t posted = 0;
  if (initiator) {
    qp.Connect();
    SendWr w;
    w.opcode = WrOpcode::kRdmaWrite;
    w.sge = {reinterpret_cast<uintptr_t>(mem.data() + kGuard), 100, mr.lkey};
    w.remote_addr = 0x1000;
    w.rkey = 0x1234;
    (void)qp.PostSend(w);
    w.opcode = WrOpcode::kRdmaRead;
    w.sge.length = 1000;
    (void)qp.PostSend(w);
    posted = 2;
  }
  (void)qp.PostRecv({1, {reinterpret_cast<uintptr_t>(mem.data() + kGuard), 256, mr.lkey}});
  ++posted;
  qp.ConsumeOutput(qp.PendingOutput().size());
  uint32_t completed = 0;
  for (size_t off = 0; off < in.size(); off += chunk) {
    qp.OnBytes(in.subspan(off, std::min(chunk, in.size() - off)));
    const bool dead = qp.state() == iwarp::IwarpQp::State::kTerminated;
    qp.ConsumeOutput(qp.PendingOutput().size());
    completed += static_cast<uint32_t>(qp.TakeCompletions().size());
    if (dead) {
      qp.OnBytes(in.subspan(off));
      if (!qp.PendingOutput().empty()) std::abort();
      break;
    }
  }
  completed += static_cast<uint32_t>(qp.TakeCompletions().size());
  if (completed > posted) std::abort();
  if (qp.state() == iwarp::IwarpQp::State::kTerminated && completed != posted) std::abort();
  for (size_t i = 0; i < kGuard; ++i) {
    if (mem[i] != 0x5A || mem[kGuard + kRegion + i] != 0x5A) std::abort();
  }
  return 0;
}
