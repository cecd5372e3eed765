// Feeds raw descriptor rings to the DMA engine over a registered arena. Checks beyond "no
// crash": the engine never writes outside the read-write region (guard zones around it and a
// read-only region stay byte-identical), every descriptor gets exactly one completion with a
// known status, an overflowing producer executes nothing, and a successful copy really copied.
//
// Input: [config][count][skew] then `count` raw 64-byte descriptors, then bytes that seed the
// arena (scatter-gather lists live there). config bits 0-1: prefetch off/on/auto/on; bit 2:
// publish an overflowing head for the first batch. Addresses are IOVAs: the read-write arena
// is at kArenaIova, the read-only region at kRoIova (fuzz/dma_corpus.py writes the seeds).
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <vector>

#include "opensrd/dma.h"

using namespace opensrd;
using namespace opensrd::dma;

namespace {

constexpr uint64_t kArenaIova = 0x10000, kRoIova = 0x30000;
constexpr size_t kGuard = 4096, kArena = 64 * 1024, kRo = 4096;
constexpr uint32_t kCapacity = 16;
constexpr size_t kMaxDescriptors = 48;

void Check(bool ok) {
  if (!ok) std::abort();
}

bool Untouched(const uint8_t* p, size_t n, uint8_t v) {
  for (size_t i = 0; i < n; ++i) {
    if (p[i] != v) return false;
  }
  return true;
}

// The harness's own translation of an IOVA range, independent of the engine's.
const uint8_t* Local(uint64_t iova, uint64_t len, uint8_t* arena, uint8_t* ro) {
  if (iova >= kArenaIova && iova - kArenaIova <= kArena && len <= kArena - (iova - kArenaIova)) {
    return arena + (iova - kArenaIova);
  }
  if (iova >= kRoIova && iova - kRoIova <= kRo && len <= kRo - (iova - kRoIova)) {
    return ro + (iova - kRoIova);
  }
  return nullptr;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 3) return 0;
  const uint8_t config = data[0];
  size_t count = data[1] % (kMaxDescriptors + 1);
  const int8_t skew = static_cast<int8_t>(data[2]);
  data += 3;
  size -= 3;
  count = std::min(count, size / sizeof(Descriptor));
  const uint8_t* descs = data;
  data += count * sizeof(Descriptor);
  size -= count * sizeof(Descriptor);

  // [guard][arena rw][guard][ro][guard]
  std::vector<uint8_t> mem(kGuard + kArena + kGuard + kRo + kGuard, 0xa5);
  uint8_t* arena = mem.data() + kGuard;
  uint8_t* ro = arena + kArena + kGuard;
  std::memset(arena, 0, kArena);
  std::memcpy(arena, data, std::min(size, kArena));
  for (size_t i = 0; i < kRo; ++i) ro[i] = static_cast<uint8_t>(i * 13);
  const std::vector<uint8_t> ro_before(ro, ro + kRo);

  EngineOptions o;
  o.prefetch.mode = (config & 3) == 0   ? PrefetchMode::kOff
                    : (config & 3) == 2 ? PrefetchMode::kAuto
                                        : PrefetchMode::kOn;
  o.prefetch.auto_window = 4;
  o.prefetch.auto_hold_windows = 1;
  o.budget = 5;  // several rounds per batch
  DmaEngine engine(o);
  Check(engine.RegisterRegion(arena, kArena, kArenaIova, kReadWrite).ok());
  Check(engine.RegisterRegion(ro, kRo, kRoIova, kRead).ok());
  auto made = SharedRing::Create(kCapacity);
  Check(made.ok());
  SharedRing* ring = made.value().get();
  auto ch = engine.AddChannel(ring);
  Check(ch.ok());
  RingHeader* h = ring->header();

  uint64_t index = 0;
  bool overflow = (config & 4) != 0;
  for (size_t first = 0; first < count; first += kCapacity) {
    const size_t batch = std::min<size_t>(kCapacity, count - first);
    for (size_t i = 0; i < batch; ++i) {
      std::memcpy(&ring->descriptors()[(index + i) % kCapacity],
                  descs + (first + i) * sizeof(Descriptor), sizeof(Descriptor));
    }
    if (overflow) {
      // Publishes more than the ring holds (or a head behind the tail): nothing may run.
      overflow = false;
      const std::vector<uint8_t> before(arena, arena + kArena);
      h->head.store(skew >= 0 ? index + kCapacity + 1 + static_cast<uint64_t>(skew)
                              : index - 1 - static_cast<uint64_t>(-skew));
      engine.Poll();
      Check(h->error.load() == static_cast<uint32_t>(RingError::kOverflow));
      Check(std::memcmp(before.data(), arena, kArena) == 0);
      Check(engine.stats(ch.value()).completed == index);
      h->head.store(index);
      Check(engine.ResetChannel(ch.value()).ok());
    }
    h->head.store(index + batch);
    while (engine.Poll() > 0) {
    }
    Check(h->tail.load() == index + batch);
    uint8_t last_status = 0;
    for (size_t i = 0; i < batch; ++i) {
      Completion& c = ring->completions()[(index + i) % kCapacity];
      Descriptor d;
      std::memcpy(&d, descs + (first + i) * sizeof(Descriptor), sizeof d);
      Check(c.status >= static_cast<uint8_t>(CompletionStatus::kSuccess) &&
            c.status <= static_cast<uint8_t>(CompletionStatus::kBadSgList));
      Check(c.user_data == d.user_data);
      Check(c.bytes_completed ==
            (c.status == static_cast<uint8_t>(CompletionStatus::kSuccess) ? d.length : 0));
      last_status = c.status;
      c.status = 0;
    }
    // The batch's last descriptor ran last: if it was a successful copy, its destination now
    // equals its source (they cannot overlap, and nothing ran after it).
    Descriptor last;
    std::memcpy(&last, descs + (first + batch - 1) * sizeof(Descriptor), sizeof last);
    if (last.opcode == static_cast<uint8_t>(Opcode::kCopy) &&
        last_status == static_cast<uint8_t>(CompletionStatus::kSuccess)) {
      const uint8_t* src = Local(last.src, last.length, arena, ro);
      const uint8_t* dst = Local(last.dst, last.length, arena, ro);
      Check(src != nullptr && dst != nullptr && dst >= arena && dst < arena + kArena);
      Check(std::memcmp(src, dst, last.length) == 0);
    }
    index += batch;
    h->consumed.store(index);
  }
  Check(Untouched(mem.data(), kGuard, 0xa5));
  Check(Untouched(arena + kArena, kGuard, 0xa5));
  Check(Untouched(ro + kRo, kGuard, 0xa5));
  Check(std::memcmp(ro, ro_before.data(), kRo) == 0);
  Check(engine.stats(ch.value()).completed == count);
  return 0;
}
