// MemoryDevice: see memory_device.h.
#include "block/memory_device.h"

#include <algorithm>
#include <cstring>
#include <stdexcept>
#include <string>

namespace opensrd::block {

MemoryDevice::MemoryDevice(VolumeInfo info, uint32_t page_size, bool volatile_cache)
    : page_size_(page_size), volatile_cache_(volatile_cache), info_(info) {
  const uint32_t bs = info.block_size ? info.block_size : 1;
  if (page_size == 0 || (page_size & (page_size - 1)) != 0 || page_size % bs != 0) {
    throw std::invalid_argument("MemoryDevice: page size " + std::to_string(page_size) +
                                " is not a power of two multiple of the block size");
  }
}

VolumeInfo MemoryDevice::Info() const {
  std::lock_guard lock(mu_);
  return info_;
}

void MemoryDevice::Resize(uint64_t size_bytes) {
  std::lock_guard lock(mu_);
  if (size_bytes < info_.size_bytes) {
    // The page holding the new end keeps only the bytes before it, so growing again reads zeroes.
    MarkDirty(size_bytes, info_.size_bytes - size_bytes);
    ZeroRange(size_bytes, info_.size_bytes - size_bytes, /*keep_allocated=*/false);
  }
  info_.size_bytes = size_bytes;
}

void MemoryDevice::InjectError(Op op, std::optional<Code> code) {
  std::lock_guard lock(mu_);
  injected_[static_cast<size_t>(op) % 5] = code;
}

MemoryDevice::Counters MemoryDevice::counters() const {
  std::lock_guard lock(mu_);
  return counters_;
}

uint64_t MemoryDevice::allocated_pages() const {
  std::lock_guard lock(mu_);
  return pages_.size();
}

uint64_t MemoryDevice::dirty_pages() const {
  std::lock_guard lock(mu_);
  return dirty_.size();
}

void MemoryDevice::PowerCut() {
  std::lock_guard lock(mu_);
  if (!volatile_cache_) return;  // memory is the stable storage: nothing to lose
  pages_.clear();
  for (const auto& [index, bytes] : durable_) {
    auto& p = pages_[index];
    p.reset(new uint8_t[page_size_]);
    std::memcpy(p.get(), bytes.get(), page_size_);
  }
  dirty_.clear();
}

void MemoryDevice::MarkDirty(uint64_t offset, uint64_t length) {
  if (!volatile_cache_ || length == 0) return;
  const uint64_t first = offset / page_size_;
  const uint64_t end = (offset + length - 1) / page_size_ + 1;
  for (auto* m : {&pages_, &durable_}) {
    for (auto it = m->lower_bound(first); it != m->end() && it->first < end; ++it) {
      dirty_.insert(it->first);
    }
  }
}

void MemoryDevice::Persist(uint64_t first_page, uint64_t end_page) {
  for (auto it = dirty_.lower_bound(first_page); it != dirty_.end() && *it < end_page;) {
    auto page = pages_.find(*it);
    if (page == pages_.end()) {
      durable_.erase(*it);
    } else {
      auto& d = durable_[*it];
      if (!d) d.reset(new uint8_t[page_size_]);
      std::memcpy(d.get(), page->second.get(), page_size_);
    }
    it = dirty_.erase(it);
  }
}

void MemoryDevice::Submit(const IoRequest& request, IoCallback done) {
  Status s = Execute(request);
  done(std::move(s));  // outside the lock: the callback may submit again
}

Status MemoryDevice::Execute(const IoRequest& r) {
  std::lock_guard lock(mu_);
  if (Status s = ValidateRequest(info_, r); !s.ok()) return s;
  if (const auto& inj = injected_[static_cast<size_t>(r.op) % 5]; inj) {
    return Status(*inj, std::string("injected ") + OpName(r.op) + " error");
  }
  if (r.flags & kFua) ++counters_.fua;
  if (r.op != Op::kRead && r.op != Op::kFlush) {
    MarkDirty(r.offset, r.length);  // pages a discard is about to free
    Status s = Mutate(r);
    MarkDirty(r.offset, r.length);  // pages a write just allocated
    if (volatile_cache_ && (r.flags & kFua) && r.length > 0) {
      Persist(r.offset / page_size_, (r.offset + r.length - 1) / page_size_ + 1);
    }
    return s;
  }
  if (r.op == Op::kFlush) {
    ++counters_.flushes;
    if (volatile_cache_) Persist(0, UINT64_MAX);
    return Status::Ok();
  }
  return Mutate(r);
}

Status MemoryDevice::Mutate(const IoRequest& r) {
  auto* bytes = static_cast<uint8_t*>(r.data);
  switch (r.op) {
    case Op::kRead: {
      ++counters_.reads;
      uint64_t off = r.offset;
      for (uint32_t done = 0; done < r.length;) {
        const uint64_t page = off / page_size_;
        const uint32_t in_page = off % page_size_;
        const uint32_t n = std::min<uint64_t>(page_size_ - in_page, r.length - done);
        auto it = pages_.find(page);
        if (it == pages_.end()) {
          std::memset(bytes + done, 0, n);
        } else {
          std::memcpy(bytes + done, it->second.get() + in_page, n);
        }
        done += n;
        off += n;
      }
      return Status::Ok();
    }
    case Op::kWrite: {
      ++counters_.writes;
      uint64_t off = r.offset;
      for (uint32_t done = 0; done < r.length;) {
        const uint64_t page = off / page_size_;
        const uint32_t in_page = off % page_size_;
        const uint32_t n = std::min<uint64_t>(page_size_ - in_page, r.length - done);
        auto& p = pages_[page];
        if (!p) p.reset(new uint8_t[page_size_]());
        std::memcpy(p.get() + in_page, bytes + done, n);
        done += n;
        off += n;
      }
      return Status::Ok();
    }
    case Op::kFlush:
      return Status::Ok();
    case Op::kDiscard:
      ++counters_.discards;
      ZeroRange(r.offset, r.length, /*keep_allocated=*/false);
      return Status::Ok();
    case Op::kWriteZeroes:
      ++counters_.write_zeroes;
      ZeroRange(r.offset, r.length, (r.flags & kNoUnmap) != 0);
      return Status::Ok();
  }
  return Status(Code::kInvalidArgument, "unknown block operation");
}

void MemoryDevice::ZeroRange(uint64_t offset, uint64_t length, bool keep_allocated) {
  uint64_t off = offset;
  const uint64_t end = offset + length;
  while (off < end) {
    const uint64_t page = off / page_size_;
    const uint32_t in_page = off % page_size_;
    const uint32_t n = std::min<uint64_t>(page_size_ - in_page, end - off);
    if (keep_allocated) {
      auto& p = pages_[page];
      if (!p) {
        p.reset(new uint8_t[page_size_]());
      } else {
        std::memset(p.get() + in_page, 0, n);
      }
    } else if (n == page_size_) {
      pages_.erase(page);
    } else if (auto it = pages_.find(page); it != pages_.end()) {
      std::memset(it->second.get() + in_page, 0, n);
    }
    off += n;
    // Skip runs of absent pages quickly when unmapping a large range.
    if (!keep_allocated && off < end && off % page_size_ == 0) {
      auto next = pages_.lower_bound(off / page_size_);
      if (next == pages_.end()) break;
      const uint64_t next_off = next->first * page_size_;
      if (next_off > off) off = std::min(next_off, end);
    }
  }
}

Result<std::vector<Extent>> MemoryDevice::BlockStatus(uint64_t offset, uint64_t length) {
  std::lock_guard lock(mu_);
  if (offset > info_.size_bytes || length > info_.size_bytes - offset) {
    return Status(Code::kInvalidArgument, "block status beyond the end of the volume");
  }
  std::vector<Extent> out;
  uint64_t off = offset;
  const uint64_t end = offset + length;
  auto add = [&](uint64_t n, bool hole) {
    if (!out.empty() && out.back().hole == hole) {
      out.back().length += n;
    } else {
      out.push_back(Extent{n, hole, hole});
    }
  };
  auto it = pages_.lower_bound(off / page_size_);
  while (off < end) {
    const uint64_t page = off / page_size_;
    if (it != pages_.end() && it->first < page) ++it;
    if (it != pages_.end() && it->first == page) {
      const uint64_t n = std::min<uint64_t>(page_size_ - off % page_size_, end - off);
      add(n, false);
      off += n;
      ++it;
    } else {
      // A run of absent pages up to the next allocated one (or the end).
      const uint64_t next = it == pages_.end() ? end : std::min(end, it->first * page_size_);
      add(next - off, true);
      off = next;
    }
  }
  return out;
}

}  // namespace opensrd::block
