// The CPU backend: memcpy, memset-like fill, ISA-L CRC32C and memcmp on the engine's thread.
#include <algorithm>
#include <array>
#include <cstring>

#include "common/crc32c.h"
#include "dma/backend.h"

namespace opensrd::dma {
namespace {

// Copy-with-CRC works in pieces small enough to stay in L1 between the copy and the CRC.
constexpr size_t kCrcChunk = 16 * 1024;

void Fill(uint8_t* dst, size_t len, uint64_t pattern) {
  std::array<uint8_t, 64> block;
  for (size_t i = 0; i < block.size(); i += 8) std::memcpy(block.data() + i, &pattern, 8);
  size_t off = 0;
  for (; off + block.size() <= len; off += block.size()) {
    std::memcpy(dst + off, block.data(), block.size());
  }
  std::memcpy(dst + off, block.data(), len - off);
}

// First differing byte of a and b, or len if equal.
size_t FirstDifference(const uint8_t* a, const uint8_t* b, size_t len) {
  constexpr size_t kStep = 4096;
  for (size_t off = 0; off < len; off += kStep) {
    const size_t n = std::min(kStep, len - off);
    if (std::memcmp(a + off, b + off, n) == 0) continue;
    for (size_t i = off;; ++i) {
      if (a[i] != b[i]) return i;
    }
  }
  return len;
}

void CopySg(const Op& op) {
  uint16_t si = 0, di = 0;
  uint32_t soff = 0, doff = 0;
  while (si < op.src_count && di < op.dst_count) {
    const Segment& s = op.src_sg[si];
    const Segment& d = op.dst_sg[di];
    const uint32_t n = std::min(s.len - soff, d.len - doff);
    std::memcpy(d.p + doff, s.p + soff, n);
    soff += n;
    doff += n;
    if (soff == s.len) ++si, soff = 0;
    if (doff == d.len) ++di, doff = 0;
  }
}

class CpuBackend final : public DmaBackend {
 public:
  Info info() const override {
    return {"cpu",
            (1u << static_cast<int>(Opcode::kCopy)) | (1u << static_cast<int>(Opcode::kCopySg)) |
                (1u << static_cast<int>(Opcode::kFill)) |
                (1u << static_cast<int>(Opcode::kCopyCrc)) |
                (1u << static_cast<int>(Opcode::kCompare)),
            kMaxPending, true};
  }
  bool Enqueue(const Op& op) override {
    if (count_ == kMaxPending) return false;
    done_[count_++] = ExecuteOnCpu(op);
    return true;
  }
  void Submit() override {}
  size_t Completed(OpResult* out, size_t max) override {
    const size_t n = std::min(max, count_);
    std::copy(done_.begin() + static_cast<ptrdiff_t>(count_ - n),
              done_.begin() + static_cast<ptrdiff_t>(count_), out);
    count_ -= n;
    return n;
  }

 private:
  static constexpr uint32_t kMaxPending = 256;
  std::array<OpResult, kMaxPending> done_;
  size_t count_ = 0;
};

}  // namespace

OpResult ExecuteOnCpu(const Op& op) {
  OpResult r{};
  r.cookie = op.cookie;
  r.flags = op.flags;
  r.status = CompletionStatus::kSuccess;
  r.bytes = op.length;
  switch (op.opcode) {
    case Opcode::kCopy:
      std::memcpy(op.dst, op.src, op.length);
      break;
    case Opcode::kCopySg:
      CopySg(op);
      break;
    case Opcode::kFill:
      Fill(op.dst, op.length, op.pattern);
      break;
    case Opcode::kCopyCrc: {
      uint32_t crc = op.crc_seed;
      for (size_t off = 0; off < op.length; off += kCrcChunk) {
        const size_t n = std::min<size_t>(kCrcChunk, op.length - off);
        std::memcpy(op.dst + off, op.src + off, n);
        crc = Crc32c(op.dst + off, n, crc);
      }
      r.crc = crc;
      break;
    }
    case Opcode::kCompare: {
      const size_t at = FirstDifference(op.src, op.dst, op.length);
      r.result = at != op.length;
      r.offset = r.result ? at : 0;
      break;
    }
    case Opcode::kInvalid:
      r.status = CompletionStatus::kBadOpcode;
      r.bytes = 0;
      break;
  }
  return r;
}

std::unique_ptr<DmaBackend> MakeCpuBackend() {
  return std::make_unique<CpuBackend>();
}

}  // namespace opensrd::dma
