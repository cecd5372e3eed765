// Feeds commands through the receive pipeline into the executor against a small registered
// region, so ASan catches any access outside it. The input is a sequence of records
//   [ctl: 1 byte][length: 2 bytes, big-endian][unit: length bytes]
// ctl bits 0-1: protocol index (0 native, 1 RoCEv2 transport bytes, 2 iWARP ULPDU, 3 native);
// bit 2: replace the rkey with the region's real rkey; bit 3: execute on a QP of another PD;
// bit 4: replace the VA by region start + (VA mod 128), so it lands in or just beyond the
// region; bit 5: post a 32-byte receive before executing. Records share one ResponderState, so
// multi-segment WRITE/SEND sequences are explored. Checks beyond ASan: read data lies inside
// the region, and a rejected command leaves the region's bytes unchanged.
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <span>
#include <vector>

#include "rdma/executor.h"
#include "rdma/pipeline.h"

using namespace opensrd;
using namespace opensrd::rdma;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  constexpr size_t kRegion = 64;
  // Exact-size heap blocks: one byte beyond either is an ASan report.
  std::unique_ptr<uint8_t[]> region(new uint8_t[kRegion]);
  std::unique_ptr<uint8_t[]> recv(new uint8_t[32]);
  std::memset(region.get(), 0x11, kRegion);
  MemoryRegistry reg;
  const PdHandle pd = reg.AllocPd(), other = reg.AllocPd();
  const uint32_t all =
      kAccessLocalWrite | kAccessRemoteWrite | kAccessRemoteRead | kAccessRemoteAtomic;
  const MemoryRegion mr = reg.Register(pd, region.get(), kRegion, all).value();
  const MemoryRegion rmr = reg.Register(pd, recv.get(), 32, kAccessLocalWrite).value();
  Executor exec(reg);
  ReceiveQueue rq;
  ResponderState state;
  const uint64_t base = reinterpret_cast<uintptr_t>(region.get());
  std::vector<uint8_t> before(kRegion);
  size_t at = 0;
  while (at + 3 <= size) {
    const uint8_t ctl = data[at];
    const size_t len = std::min<size_t>(size - at - 3, data[at + 1] << 8 | data[at + 2]);
    std::span<const uint8_t> unit(data + at + 3, len);
    at += 3 + len;
    static constexpr ProtocolIndex kIdx[4] = {ProtocolIndex::kNative, ProtocolIndex::kRoce,
                                              ProtocolIndex::kIwarp, ProtocolIndex::kNative};
    Result<RdmaCommand> c = DecodeUnit(kIdx[ctl & 3], unit);
    if (!c.ok()) continue;
    RdmaCommand cmd = *c;
    if (ctl & 4) cmd.rkey = mr.rkey;
    if (ctl & 16) cmd.va = base + cmd.va % 128;
    if (ctl & 32) rq.posted.push_back({1, {reinterpret_cast<uintptr_t>(recv.get()), 32, rmr.lkey}});
    ExecTarget t{(ctl & 8) ? other : pd, &rq, &state};
    std::memcpy(before.data(), region.get(), kRegion);
    ExecResult r = exec.Execute(cmd, t);
    if (!r.read_data.empty() &&
        (r.read_data.data() < region.get() ||
         r.read_data.data() + r.read_data.size() > region.get() + kRegion)) {
      std::abort();
    }
    if (r.reply == Reply::kNak && std::memcmp(before.data(), region.get(), kRegion) != 0 &&
        Family(cmd.opcode) != OpcodeFamily::kWrite) {
      std::abort();  // a NAKed SEND/READ/atomic changed the region
    }
    if (r.reply == Reply::kNak && IsFirst(cmd.opcode) &&
        std::memcmp(before.data(), region.get(), kRegion) != 0) {
      std::abort();  // a NAKed first segment changed the region
    }
  }
  return 0;
}
