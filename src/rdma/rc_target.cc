#include "rdma/rc_target.h"

#include <cstring>

namespace opensrd::rdma {

NakCode NakCodeOf(TargetVerdict v) {
  switch (v) {
    case TargetVerdict::kRemoteAccessError:
      return NakCode::kRemoteAccessError;
    case TargetVerdict::kRemoteOperationalError:
      return NakCode::kRemoteOperationalError;
    default:
      return NakCode::kInvalidRequest;
  }
}

MemoryTarget::MemoryTarget(uint64_t base_va, uint32_t rkey, size_t size)
    : base_va_(base_va), rkey_(rkey), memory_(size, 0) {}

bool MemoryTarget::InRange(uint64_t va, uint32_t rkey, size_t length) const {
  if (rkey != rkey_ || va < base_va_) return false;
  uint64_t off = va - base_va_;
  return off <= memory_.size() && length <= memory_.size() - off;
}

TargetVerdict MemoryTarget::DeliverSend(std::span<const uint8_t> data, bool first, bool last,
                                        const uint32_t* imm) {
  if (first) {
    if (posted_.empty()) return TargetVerdict::kNotReady;
    receiving_ = true;
    receiving_capacity_ = posted_.front();
    posted_.pop_front();
    partial_.clear();
  }
  if (!receiving_) return TargetVerdict::kInvalidRequest;
  if (partial_.size() + data.size() > receiving_capacity_) {
    receiving_ = false;  // the receive completes in error at the responder
    return TargetVerdict::kInvalidRequest;
  }
  partial_.insert(partial_.end(), data.begin(), data.end());
  if (last) {
    Received r;
    r.data = std::move(partial_);
    partial_.clear();
    if (imm != nullptr) {
      r.has_imm = true;
      r.imm = *imm;
    }
    received_.push_back(std::move(r));
    receiving_ = false;
  }
  return TargetVerdict::kOk;
}

TargetVerdict MemoryTarget::CheckWrite(uint64_t va, uint32_t rkey, uint32_t length) {
  return InRange(va, rkey, length) ? TargetVerdict::kOk : TargetVerdict::kRemoteAccessError;
}

TargetVerdict MemoryTarget::Write(uint64_t va, uint32_t rkey, std::span<const uint8_t> data) {
  if (!InRange(va, rkey, data.size())) return TargetVerdict::kRemoteAccessError;
  if (!data.empty()) std::memcpy(memory_.data() + (va - base_va_), data.data(), data.size());
  return TargetVerdict::kOk;
}

TargetVerdict MemoryTarget::CompleteWriteImm(uint32_t imm, uint32_t /*total_length*/) {
  if (posted_.empty()) return TargetVerdict::kNotReady;
  posted_.pop_front();
  Received r;
  r.has_imm = true;
  r.imm = imm;
  r.write_imm = true;
  received_.push_back(std::move(r));
  return TargetVerdict::kOk;
}

TargetVerdict MemoryTarget::Read(uint64_t va, uint32_t rkey, std::span<uint8_t> out) {
  if (!InRange(va, rkey, out.size())) return TargetVerdict::kRemoteAccessError;
  if (!out.empty()) std::memcpy(out.data(), memory_.data() + (va - base_va_), out.size());
  return TargetVerdict::kOk;
}

TargetVerdict MemoryTarget::Atomic(RdmaOpcode op, uint64_t va, uint32_t rkey, uint64_t swap_add,
                                   uint64_t compare, uint64_t* original) {
  if (va % 8 != 0) return TargetVerdict::kInvalidRequest;
  if (!InRange(va, rkey, 8)) return TargetVerdict::kRemoteAccessError;
  uint8_t* p = memory_.data() + (va - base_va_);
  uint64_t v;
  std::memcpy(&v, p, 8);  // host order, as a local CPU atomic sees the word
  *original = v;
  if (op == RdmaOpcode::kFetchAdd) {
    v += swap_add;
  } else if (v == compare) {
    v = swap_add;
  }
  std::memcpy(p, &v, 8);
  return TargetVerdict::kOk;
}

}  // namespace opensrd::rdma
