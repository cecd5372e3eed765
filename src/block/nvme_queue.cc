// The NVMe-style region layout, command builders and the host library (NvmeHost).
#include "opensrd/nvme_queue.h"

#include <poll.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <vector>

#include "block/nvme_wire.h"

namespace opensrd::nvme {
namespace {

size_t RoundUp(size_t n, size_t to) {
  return (n + to - 1) / to * to;
}

}  // namespace

const char* StatusName(uint16_t status) {
  switch (status & kStatusMask & 0x7FFF) {
    case kSuccess:
      return "success";
    case kInvalidOpcode & 0x7FFF:
      return "invalid opcode";
    case kInvalidField & 0x7FFF:
      return "invalid field in command";
    case kDataTransferError:
      return "data transfer error";
    case kInternalError:
      return "internal error";
    case kInvalidNamespace & 0x7FFF:
      return "invalid namespace";
    case kLbaOutOfRange & 0x7FFF:
      return "LBA out of range";
    case kWriteToReadOnly & 0x7FFF:
      return "write to read-only namespace";
    case kWriteFault:
      return "write fault";
    case kUnrecoveredReadError:
      return "unrecovered read error";
    case kAccessDenied & 0x7FFF:
      return "access denied";
  }
  return "unknown status";
}

size_t Layout::QueueBytes() const {
  return RoundUp(size_t{sq_entries} * sizeof(Command) + size_t{cq_entries} * sizeof(Completion),
                 4096);
}
size_t Layout::SqOffset(uint16_t q) const {
  return 4096 + q * QueueBytes();
}
size_t Layout::CqOffset(uint16_t q) const {
  return SqOffset(q) + size_t{sq_entries} * sizeof(Command);
}
size_t Layout::DataOffset() const {
  return 4096 + num_queues * QueueBytes();
}
size_t Layout::RegionSize() const {
  return DataOffset() + RoundUp(data_size, 4096);
}

namespace {

Command Rw(uint8_t op, uint16_t cid, uint64_t slba, uint32_t blocks, uint64_t off, uint32_t bs) {
  Command c;
  c.opcode = op;
  c.cid = cid;
  c.data_offset = off;
  c.data_len = uint64_t{blocks} * bs;
  c.cdw10 = static_cast<uint32_t>(slba);
  c.cdw11 = static_cast<uint32_t>(slba >> 32);
  c.cdw12 = (blocks - 1) & 0xFFFF;
  return c;
}

}  // namespace

Command ReadCommand(uint16_t cid, uint64_t slba, uint32_t blocks, uint64_t off, uint32_t bs) {
  return Rw(kRead, cid, slba, blocks, off, bs);
}
Command WriteCommand(uint16_t cid, uint64_t slba, uint32_t blocks, uint64_t off, uint32_t bs,
                     bool fua) {
  Command c = Rw(kWrite, cid, slba, blocks, off, bs);
  if (fua) c.cdw12 |= kCdw12Fua;
  return c;
}
Command FlushCommand(uint16_t cid) {
  Command c;
  c.opcode = kFlush;
  c.cid = cid;
  return c;
}
Command WriteZeroesCommand(uint16_t cid, uint64_t slba, uint32_t blocks, bool deallocate) {
  Command c = Rw(kWriteZeroes, cid, slba, blocks, 0, 0);
  c.data_len = 0;
  if (deallocate) c.cdw12 |= kCdw12Deallocate;
  return c;
}
Command DiscardCommand(uint16_t cid, uint64_t ranges_offset, uint32_t num_ranges) {
  Command c;
  c.opcode = kDatasetManagement;
  c.cid = cid;
  c.data_offset = ranges_offset;
  c.data_len = uint64_t{num_ranges} * sizeof(DsmRange);
  c.cdw10 = (num_ranges - 1) & 0xFF;
  c.cdw11 = kDsmDeallocate;
  return c;
}

class NvmeHost::Impl {
 public:
  ~Impl() {
    if (base_ != nullptr) munmap(base_, size_);
    for (int fd : {sock_, mem_, kick_, irq_}) {
      if (fd >= 0) close(fd);
    }
  }

  Status Connect(const std::string& path) {
    sock_ = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (sock_ < 0) return Status(Code::kIoError, std::string("socket: ") + strerror(errno));
    sockaddr_un sa{};
    sa.sun_family = AF_UNIX;
    if (path.size() >= sizeof sa.sun_path) return Status(Code::kInvalidArgument, "path too long");
    std::memcpy(sa.sun_path, path.data(), path.size());
    if (connect(sock_, reinterpret_cast<sockaddr*>(&sa), sizeof sa) != 0) {
      return Status(Code::kNotFound, "cannot connect to " + path + ": " + strerror(errno));
    }
    Result<Handoff> h = ReceiveHandoff(sock_);
    if (!h.ok()) return h.status();
    mem_ = h->memfd;
    kick_ = h->kick;
    irq_ = h->irq;
    size_ = h->region_size;
    base_ =
        static_cast<uint8_t*>(mmap(nullptr, size_, PROT_READ | PROT_WRITE, MAP_SHARED, mem_, 0));
    if (base_ == MAP_FAILED) {
      base_ = nullptr;
      return Status(Code::kIoError, std::string("mmap: ") + strerror(errno));
    }
    hdr_ = reinterpret_cast<RegionHeader*>(base_);
    if (hdr_->magic != kRegionMagic || hdr_->version != kRegionVersion ||
        hdr_->region_size != size_ || hdr_->num_queues == 0 || hdr_->num_queues > kMaxQueues) {
      return Status(Code::kMalformed, "not an opensrd NVMe region");
    }
    layout_ = {hdr_->num_queues, hdr_->sq_entries, hdr_->cq_entries, hdr_->data_size};
    if (layout_.RegionSize() != size_) return Status(Code::kMalformed, "region size mismatch");
    q_.resize(layout_.num_queues);
    return Status::Ok();
  }

  NamespaceInfo Info() const {
    NamespaceInfo i;
    i.blocks = __atomic_load_n(&hdr_->ns_blocks, __ATOMIC_ACQUIRE);
    i.block_size = hdr_->block_size;
    i.atomic_write_unit = hdr_->atomic_write_unit;
    i.max_transfer = hdr_->max_transfer;
    return i;
  }

  Status Submit(uint16_t q, const Command& cmd) {
    if (q >= layout_.num_queues) return Status(Code::kInvalidArgument, "no such queue");
    HostQueue& hq = q_[q];
    const uint32_t next = (hq.sq_tail + 1) % layout_.sq_entries;
    if (next == hq.sq_head) return Status(Code::kResourceExhausted, "submission queue full");
    auto* sq = reinterpret_cast<Command*>(base_ + layout_.SqOffset(q));
    sq[hq.sq_tail] = cmd;
    hq.sq_tail = next;
    Doorbells* db = DoorbellsOf(base_, q);
    // seq_cst: the tail store must be visible before we read `sleeping` (the adapter sets
    // `sleeping` and then re-reads the tail), or both could miss each other.
    __atomic_store_n(&db->sq_tail, next, __ATOMIC_SEQ_CST);
    if (__atomic_load_n(&db->sleeping, __ATOMIC_SEQ_CST)) {
      const uint64_t one = 1;
      [[maybe_unused]] ssize_t n = write(kick_, &one, sizeof one);
    }
    return Status::Ok();
  }

  size_t Reap(uint16_t q, std::span<Completion> out) {
    if (q >= layout_.num_queues) return 0;
    HostQueue& hq = q_[q];
    auto* cq = reinterpret_cast<Completion*>(base_ + layout_.CqOffset(q));
    size_t n = 0;
    while (n < out.size()) {
      Completion& e = cq[hq.cq_head];
      const uint16_t st = __atomic_load_n(&e.status, __ATOMIC_ACQUIRE);
      if ((st & 1) != hq.phase) break;
      out[n] = e;
      hq.sq_head = e.sq_head;
      ++n;
      if (++hq.cq_head == layout_.cq_entries) {
        hq.cq_head = 0;
        hq.phase ^= 1;
      }
    }
    if (n > 0) __atomic_store_n(&DoorbellsOf(base_, q)->cq_head, hq.cq_head, __ATOMIC_RELEASE);
    return n;
  }

  void Wait(int timeout_ms) {
    pollfd p{irq_, POLLIN, 0};
    if (poll(&p, 1, timeout_ms) > 0) {
      uint64_t v;
      [[maybe_unused]] ssize_t n = read(irq_, &v, sizeof v);
    }
  }

  struct HostQueue {
    uint32_t sq_tail = 0;
    uint32_t sq_head = 0;  // from the latest completion
    uint32_t cq_head = 0;
    uint16_t phase = 1;  // the adapter writes phase 1 on its first pass
  };
  Layout layout_;
  RegionHeader* hdr_ = nullptr;
  uint8_t* base_ = nullptr;
  size_t size_ = 0;
  int sock_ = -1, mem_ = -1, kick_ = -1, irq_ = -1;
  std::vector<HostQueue> q_;
};

Result<std::unique_ptr<NvmeHost>> NvmeHost::Connect(const std::string& socket_path) {
  auto impl = std::make_unique<Impl>();
  if (Status s = impl->Connect(socket_path); !s.ok()) return s;
  return std::unique_ptr<NvmeHost>(new NvmeHost(std::move(impl)));
}
NvmeHost::NvmeHost(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
NvmeHost::~NvmeHost() = default;
NamespaceInfo NvmeHost::Info() const {
  return impl_->Info();
}
uint16_t NvmeHost::num_queues() const {
  return impl_->layout_.num_queues;
}
uint16_t NvmeHost::sq_entries() const {
  return impl_->layout_.sq_entries;
}
std::span<uint8_t> NvmeHost::data() {
  return {impl_->base_ + impl_->layout_.DataOffset(), impl_->layout_.data_size};
}
Status NvmeHost::Submit(uint16_t q, const Command& cmd) {
  return impl_->Submit(q, cmd);
}
size_t NvmeHost::Reap(uint16_t q, std::span<Completion> out) {
  return impl_->Reap(q, out);
}
void NvmeHost::Wait(int timeout_ms) {
  impl_->Wait(timeout_ms);
}

}  // namespace opensrd::nvme
