// Ring memory in a sealed memfd, and the producer's side of a ring.
#include <fcntl.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstring>
#include <new>

#include "opensrd/dma.h"

namespace opensrd::dma {
namespace {

constexpr uint64_t kPage = 4096;

uint64_t RoundUp(uint64_t v, uint64_t a) {
  return (v + a - 1) / a * a;
}

struct Layout {
  uint64_t descriptor_offset, completion_offset, total;
};

Layout LayoutFor(uint32_t capacity) {
  Layout l;
  l.descriptor_offset = RoundUp(sizeof(RingHeader), kPage);
  l.completion_offset = l.descriptor_offset + uint64_t{capacity} * sizeof(Descriptor);
  l.total = RoundUp(l.completion_offset + uint64_t{capacity} * sizeof(Completion), kPage);
  return l;
}

bool PowerOfTwo(uint32_t v) {
  return v != 0 && (v & (v - 1)) == 0;
}

Status Errno(const char* what) {
  return Status(Code::kIoError, std::string(what) + ": " + std::strerror(errno));
}

}  // namespace

Result<std::unique_ptr<SharedRing>> SharedRing::Create(uint32_t capacity) {
  if (!PowerOfTwo(capacity) || capacity > kMaxCapacity) {
    return Status(Code::kInvalidArgument, "ring capacity must be a power of two up to 65536");
  }
  const int fd = memfd_create("opensrd-dma-ring", MFD_CLOEXEC | MFD_ALLOW_SEALING);
  if (fd < 0) return Errno("memfd_create");
  const Layout l = LayoutFor(capacity);
  // The size is sealed so that no process sharing the ring can shrink it under another's
  // mapping (which would turn the other's accesses into SIGBUS).
  if (ftruncate(fd, static_cast<off_t>(l.total)) != 0 ||
      fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL) != 0) {
    Status s = Errno("sizing the ring memfd");
    close(fd);
    return s;
  }
  return Map(fd, l.total, true, capacity);
}

Result<std::unique_ptr<SharedRing>> SharedRing::Attach(int fd) {
  const int seals = fcntl(fd, F_GET_SEALS);
  if (seals < 0) return Errno("F_GET_SEALS");
  if ((seals & F_SEAL_SHRINK) == 0) {
    return Status(Code::kInvalidArgument, "ring memfd is not sealed against shrinking");
  }
  struct stat st;
  if (fstat(fd, &st) != 0) return Errno("fstat");
  if (static_cast<uint64_t>(st.st_size) < sizeof(RingHeader)) {
    return Status(Code::kMalformed, "ring memfd smaller than a ring header");
  }
  const int own = fcntl(fd, F_DUPFD_CLOEXEC, 0);
  if (own < 0) return Errno("dup");
  return Map(own, static_cast<size_t>(st.st_size), false, 0);
}

Result<std::unique_ptr<SharedRing>> SharedRing::Map(int fd, size_t bytes, bool init,
                                                    uint32_t capacity) {
  void* base = mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  if (base == MAP_FAILED) {
    Status s = Errno("mmap");
    close(fd);
    return s;
  }
  std::unique_ptr<SharedRing> r(new SharedRing);
  r->fd_ = fd;
  r->base_ = base;
  r->bytes_ = bytes;
  auto* h = static_cast<RingHeader*>(base);
  if (init) {
    const Layout l = LayoutFor(capacity);
    h = new (base) RingHeader{};
    h->magic = kRingMagic;
    h->version = kRingVersion;
    h->descriptor_size = sizeof(Descriptor);
    h->completion_size = sizeof(Completion);
    h->capacity = capacity;
    h->descriptor_offset = l.descriptor_offset;
    h->completion_offset = l.completion_offset;
    h->total_bytes = l.total;
  } else {
    // Everything this mapping relies on is checked once here and copied into the object; later
    // writes to the header by the other side change nothing this side uses.
    capacity = h->capacity;
    if (h->magic != kRingMagic || h->version != kRingVersion ||
        h->descriptor_size != sizeof(Descriptor) || h->completion_size != sizeof(Completion) ||
        !PowerOfTwo(capacity) || capacity > kMaxCapacity) {
      return Status(Code::kMalformed, "not an opensrd DMA ring (header mismatch)");
    }
    const Layout l = LayoutFor(capacity);
    if (h->descriptor_offset != l.descriptor_offset ||
        h->completion_offset != l.completion_offset || h->total_bytes != l.total ||
        bytes != l.total) {
      return Status(Code::kMalformed, "ring layout does not match its memfd");
    }
  }
  const Layout l = LayoutFor(capacity);
  r->capacity_ = capacity;
  r->header_ = h;
  r->descriptors_ =
      reinterpret_cast<Descriptor*>(static_cast<uint8_t*>(base) + l.descriptor_offset);
  r->completions_ =
      reinterpret_cast<Completion*>(static_cast<uint8_t*>(base) + l.completion_offset);
  return r;
}

SharedRing::~SharedRing() {
  if (base_ != nullptr) munmap(base_, bytes_);
  if (fd_ >= 0) close(fd_);
}

RingProducer::RingProducer(SharedRing* ring, int doorbell_fd)
    : ring_(ring),
      doorbell_fd_(doorbell_fd),
      pending_(ring->header()->head.load(std::memory_order_acquire)),
      consumed_(ring->header()->consumed.load(std::memory_order_acquire)) {}

uint32_t RingProducer::free_slots() const {
  return ring_->capacity() - static_cast<uint32_t>(pending_ - consumed_);
}

Status RingProducer::Enqueue(const Descriptor& d) {
  if (pending_ - consumed_ >= ring_->capacity()) {
    return Status(Code::kResourceExhausted, "DMA ring full");
  }
  std::memcpy(&ring_->descriptors()[pending_ & (ring_->capacity() - 1)], &d, sizeof d);
  ++pending_;
  return Status::Ok();
}

void RingProducer::Submit() {
  RingHeader* h = ring_->header();
  if (h->head.load(std::memory_order_relaxed) == pending_) return;
  h->head.store(pending_, std::memory_order_release);
  ++doorbells_;
  if (doorbell_fd_ >= 0) eventfd_write(doorbell_fd_, 1);
}

size_t RingProducer::Reap(Completion* out, size_t max) {
  const uint32_t mask = ring_->capacity() - 1;
  size_t n = 0;
  while (n < max && consumed_ < pending_) {
    Completion* c = &ring_->completions()[consumed_ & mask];
    std::atomic_ref<uint8_t> status(c->status);
    if (status.load(std::memory_order_acquire) == 0) break;
    out[n] = *c;
    status.store(0, std::memory_order_relaxed);
    ++consumed_;
    ++n;
  }
  if (n > 0) ring_->header()->consumed.store(consumed_, std::memory_order_release);
  return n;
}

}  // namespace opensrd::dma
