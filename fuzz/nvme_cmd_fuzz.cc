// Feeds arbitrary NVMe-style commands (the first 64 bytes) with an arbitrary data area (the rest,
// where dataset management ranges live) to the adapter's command translation. Beyond "no
// crash": whatever it accepts stays inside the namespace and inside the data area, and a
// failed translation submits nothing.
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <vector>

#include "block/nvme_translate.h"

using namespace opensrd;
using namespace opensrd::nvme;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < sizeof(Command)) return 0;
  Command c;
  std::memcpy(&c, data, sizeof c);
  std::vector<uint8_t> area(data + sizeof c, data + size);
  Geometry g{.ns_blocks = 8192, .block_size = 512, .max_transfer = 128 << 10, .read_only = false};
  if (size & 1) g.read_only = true;
  Translation t = Translate(c, g, area);
  if (t.status != kSuccess && !t.requests.empty()) std::abort();
  const uint64_t ns_bytes = g.ns_blocks * g.block_size;
  for (const block::IoRequest& r : t.requests) {
    if (r.op == block::Op::kFlush) continue;
    if (r.offset > ns_bytes || r.length > ns_bytes - r.offset) std::abort();
    if (r.offset % g.block_size || r.length % g.block_size) std::abort();
    if (g.read_only && r.op != block::Op::kRead) std::abort();
    if (r.op == block::Op::kRead || r.op == block::Op::kWrite) {
      const auto* p = static_cast<const uint8_t*>(r.data);
      if (r.length > g.max_transfer) std::abort();
      if (p < area.data() || p + r.length > area.data() + area.size()) std::abort();
    }
  }
  return 0;
}
