#include "block/nvme_controller.h"

#include <fcntl.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <mutex>
#include <thread>
#include <vector>

#include "block/nvme_translate.h"
#include "block/nvme_wire.h"

namespace opensrd::nvme {
namespace {

uint64_t NowUs() {
  return std::chrono::duration_cast<std::chrono::microseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

Status Errno(const std::string& what) {
  return Status(Code::kIoError, what + ": " + std::strerror(errno));
}

}  // namespace

class NvmeController::Impl {
 public:
  struct Queue {
    std::mutex mu;                      // posting completions
    std::atomic<uint32_t> sq_head{0};   // written by the controller thread
    std::atomic<uint32_t> cq_tail{0};   // under mu
    uint16_t phase = 1;                 // under mu
    std::atomic<uint32_t> inflight{0};  // fetched, not yet completed
  };

  ~Impl() {
    stop_.store(true);
    const uint64_t one = 1;
    [[maybe_unused]] ssize_t n = write(kick_, &one, sizeof one);
    if (thread_.joinable()) thread_.join();
    // Requests still at the device complete into the region: wait for them.
    for (int i = 0; i < 5000 && TotalInflight() > 0; ++i) usleep(1000);
    if (host_ >= 0) close(host_);
    if (listen_ >= 0) close(listen_);
    unlink(opts_.socket_path.c_str());
    if (base_ != nullptr) munmap(base_, layout_.RegionSize());
    for (int fd : {mem_, kick_, irq_}) {
      if (fd >= 0) close(fd);
    }
  }

  Status Init(const ControllerOptions& o, block::BlockDevice* dev) {
    opts_ = o;
    layout_ = o.layout;
    dev_ = dev;
    if (layout_.num_queues == 0 || layout_.num_queues > kMaxQueues) {
      return Status(Code::kInvalidArgument, "1 to 8 queues");
    }
    if (layout_.sq_entries < 2 || layout_.cq_entries < 2) {
      return Status(Code::kInvalidArgument, "queues need at least 2 entries");
    }
    mem_ = memfd_create("opensrd-nvme", MFD_CLOEXEC);
    if (mem_ < 0) return Errno("memfd_create");
    if (ftruncate(mem_, static_cast<off_t>(layout_.RegionSize())) != 0) return Errno("ftruncate");
    void* p = mmap(nullptr, layout_.RegionSize(), PROT_READ | PROT_WRITE, MAP_SHARED, mem_, 0);
    if (p == MAP_FAILED) return Errno("mmap");
    base_ = static_cast<uint8_t*>(p);
    hdr_ = reinterpret_cast<RegionHeader*>(base_);
    const block::VolumeInfo info = dev->Info();
    hdr_->magic = kRegionMagic;
    hdr_->version = kRegionVersion;
    hdr_->num_queues = layout_.num_queues;
    hdr_->sq_entries = layout_.sq_entries;
    hdr_->cq_entries = layout_.cq_entries;
    hdr_->data_offset = layout_.DataOffset();
    hdr_->data_size = layout_.data_size;
    hdr_->region_size = layout_.RegionSize();
    UpdateGeometry(info);
    data_ = base_ + layout_.DataOffset();
    q_ = std::vector<Queue>(layout_.num_queues);
    kick_ = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    irq_ = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (kick_ < 0 || irq_ < 0) return Errno("eventfd");
    listen_ = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (listen_ < 0) return Errno("socket");
    sockaddr_un sa{};
    sa.sun_family = AF_UNIX;
    if (o.socket_path.empty() || o.socket_path.size() >= sizeof sa.sun_path) {
      return Status(Code::kInvalidArgument, "bad NVMe socket path");
    }
    std::memcpy(sa.sun_path, o.socket_path.data(), o.socket_path.size());
    unlink(o.socket_path.c_str());
    if (bind(listen_, reinterpret_cast<sockaddr*>(&sa), sizeof sa) != 0) {
      return Errno("bind " + o.socket_path);
    }
    if (listen(listen_, 4) != 0) return Errno("listen");
    thread_ = std::thread([this] { Loop(); });
    return Status::Ok();
  }

  void UpdateGeometry(const block::VolumeInfo& info) {
    hdr_->block_size = info.block_size;
    hdr_->atomic_write_unit = info.atomic_write_unit;
    hdr_->max_transfer = info.max_transfer;
    read_only_ = info.read_only;
    block_size_ = info.block_size;
    __atomic_store_n(&hdr_->ns_blocks, info.size_bytes / info.block_size, __ATOMIC_RELEASE);
    __atomic_add_fetch(&hdr_->generation, 1, __ATOMIC_RELEASE);
  }

  ControllerStats stats() const {
    std::lock_guard<std::mutex> lock(stats_mu_);
    return stats_;
  }

 private:
  uint32_t TotalInflight() const {
    uint32_t n = 0;
    for (const Queue& q : q_) n += q.inflight.load();
    return n;
  }

  void Loop() {
    uint64_t last_work = NowUs();
    uint64_t last_socket_check = 0;
    while (!stop_.load(std::memory_order_relaxed)) {
      bool work = false;
      if (host_ >= 0) {
        for (uint16_t q = 0; q < layout_.num_queues; ++q) work |= ProcessQueue(q);
      }
      const uint64_t now = NowUs();
      if (work) last_work = now;
      if (now - last_socket_check > 10'000) {
        last_socket_check = now;
        CheckSockets(0);
      }
      if (work || now - last_work < opts_.spin_us) continue;
      // Idle: announce sleep, look once more (a host that rang before seeing the flag), block.
      SetSleeping(1);
      bool pending = false;
      if (host_ >= 0) {
        for (uint16_t q = 0; q < layout_.num_queues; ++q) {
          pending |=
              __atomic_load_n(&DoorbellsOf(base_, q)->sq_tail, __ATOMIC_SEQ_CST) != q_[q].sq_head;
        }
      }
      if (!pending) CheckSockets(100);
      SetSleeping(0);
      uint64_t v;
      while (read(kick_, &v, sizeof v) > 0) {
      }
      last_work = NowUs();
    }
  }

  void SetSleeping(uint32_t v) {
    for (uint16_t q = 0; q < layout_.num_queues; ++q) {
      __atomic_store_n(&DoorbellsOf(base_, q)->sleeping, v, __ATOMIC_SEQ_CST);
    }
  }

  // Accepts a host, notices a host that left; blocks up to `timeout_ms` (also for a kick).
  void CheckSockets(int timeout_ms) {
    pollfd p[3] = {{listen_, POLLIN, 0}, {kick_, POLLIN, 0}, {host_, POLLIN, 0}};
    const int n = host_ >= 0 ? 3 : 2;
    if (poll(p, n, timeout_ms) <= 0) return;
    if (n == 3 && (p[2].revents & (POLLIN | POLLHUP | POLLERR))) {
      char buf[64];
      if (recv(host_, buf, sizeof buf, MSG_DONTWAIT) <= 0) {  // the host closed its end
        close(host_);
        host_ = -1;
      }
    }
    if (p[0].revents & POLLIN) Accept();
  }

  void Accept() {
    const int fd = accept4(listen_, nullptr, nullptr, SOCK_CLOEXEC);
    if (fd < 0) return;
    if (host_ >= 0 || TotalInflight() > 0) {
      {
        std::lock_guard<std::mutex> lock(stats_mu_);
        ++stats_.refused;
      }
      SendRefusal(fd, host_ >= 0 ? "another host is attached"
                                 : "the previous host's commands are still completing; retry");
      close(fd);
      return;
    }
    // A fresh start for the new host: empty queues, phase 1.
    for (uint16_t q = 0; q < layout_.num_queues; ++q) {
      Queue& s = q_[q];
      std::lock_guard<std::mutex> lock(s.mu);
      s.sq_head = 0;
      s.cq_tail = 0;
      s.phase = 1;
      std::memset(base_ + layout_.CqOffset(q), 0, size_t{layout_.cq_entries} * sizeof(Completion));
      Doorbells* db = DoorbellsOf(base_, q);
      __atomic_store_n(&db->sq_tail, 0, __ATOMIC_SEQ_CST);
      __atomic_store_n(&db->cq_head, 0, __ATOMIC_SEQ_CST);
    }
    Handoff h{mem_, kick_, irq_, layout_.RegionSize()};
    if (!SendHandoff(fd, h).ok()) {
      close(fd);
      return;
    }
    host_ = fd;
    std::lock_guard<std::mutex> lock(stats_mu_);
    ++stats_.hosts;
  }

  // Fetches and starts the queue's new commands; true if it did any.
  bool ProcessQueue(uint16_t q) {
    Queue& s = q_[q];
    Doorbells* db = DoorbellsOf(base_, q);
    const uint32_t tail = __atomic_load_n(&db->sq_tail, __ATOMIC_ACQUIRE);
    if (tail >= layout_.sq_entries) return false;  // a host bug: nothing valid to fetch
    const auto* sq = reinterpret_cast<const Command*>(base_ + layout_.SqOffset(q));
    const uint32_t n = layout_.cq_entries;
    bool any = false;
    while (s.sq_head != tail) {
      // Room in the CQ for everything in flight plus what the host has not reaped yet.
      const uint32_t head = __atomic_load_n(&db->cq_head, __ATOMIC_ACQUIRE) % n;
      const uint32_t unreaped = (s.cq_tail.load() + n - head) % n;
      if (unreaped + s.inflight.load() + 1 >= n) break;
      Command cmd;
      std::memcpy(&cmd, &sq[s.sq_head], sizeof cmd);  // a copy: the host may scribble on it
      s.sq_head = (s.sq_head.load() + 1) % layout_.sq_entries;
      ++s.inflight;
      Execute(q, cmd);
      any = true;
    }
    return any;
  }

  void Execute(uint16_t q, const Command& c) {
    {
      std::lock_guard<std::mutex> lock(stats_mu_);
      ++stats_.commands;
    }
    const Geometry g{__atomic_load_n(&hdr_->ns_blocks, __ATOMIC_ACQUIRE), block_size_.load(),
                     hdr_->max_transfer, read_only_.load()};
    Translation t = Translate(c, g, {data_, layout_.data_size});
    if (t.status != kSuccess || t.requests.empty()) return Post(q, c.cid, t.status);
    // One completion for all of a command's requests (a discard of several ranges).
    struct Group {
      std::atomic<uint32_t> left;
      std::atomic<uint16_t> status{kSuccess};
    };
    auto group = std::make_shared<Group>();
    group->left = static_cast<uint32_t>(t.requests.size());
    const uint16_t cid = c.cid;
    const uint8_t op = c.opcode;
    for (const block::IoRequest& r : t.requests) {
      dev_->Submit(r, [this, q, cid, op, group](Status s) {
        if (!s.ok()) group->status = StatusFor(s, op);
        if (--group->left == 0) Post(q, cid, group->status);
      });
    }
  }

  void Post(uint16_t q, uint16_t cid, uint16_t status) {
    Queue& s = q_[q];
    if (status != kSuccess) {
      std::lock_guard<std::mutex> lock(stats_mu_);
      ++stats_.errors;
    }
    {
      std::lock_guard<std::mutex> lock(s.mu);
      auto* cq = reinterpret_cast<Completion*>(base_ + layout_.CqOffset(q));
      const uint32_t t = s.cq_tail.load();
      Completion& e = cq[t];
      e.dw0 = 0;
      e.rsvd = 0;
      e.sq_head = static_cast<uint16_t>(s.sq_head.load());
      e.sq_id = q;
      e.cid = cid;
      // The phase bit goes last: the host owns the entry once it sees the new phase.
      __atomic_store_n(&e.status, static_cast<uint16_t>((status & kStatusMask) | s.phase),
                       __ATOMIC_RELEASE);
      const uint32_t next = (t + 1) % layout_.cq_entries;
      if (next == 0) s.phase ^= 1;
      s.cq_tail = next;
    }
    const uint64_t one = 1;
    [[maybe_unused]] ssize_t n = write(irq_, &one, sizeof one);
    // Last: the destructor waits for no command in flight before it closes the eventfds.
    --s.inflight;
  }

  ControllerOptions opts_;
  Layout layout_;
  block::BlockDevice* dev_ = nullptr;
  uint8_t* base_ = nullptr;
  uint8_t* data_ = nullptr;
  RegionHeader* hdr_ = nullptr;
  std::atomic<uint32_t> block_size_{512};  // geometry may change on the listener's thread
  std::atomic<bool> read_only_{false};
  int mem_ = -1, kick_ = -1, irq_ = -1, listen_ = -1, host_ = -1;
  std::vector<Queue> q_;
  std::atomic<bool> stop_{false};
  std::thread thread_;
  mutable std::mutex stats_mu_;
  ControllerStats stats_;
};

Result<std::unique_ptr<NvmeController>> NvmeController::Create(const ControllerOptions& options,
                                                               block::BlockDevice* device) {
  auto impl = std::make_unique<Impl>();
  if (Status s = impl->Init(options, device); !s.ok()) return s;
  return std::unique_ptr<NvmeController>(new NvmeController(std::move(impl)));
}
NvmeController::NvmeController(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
NvmeController::~NvmeController() = default;
void NvmeController::UpdateGeometry(const block::VolumeInfo& info) {
  impl_->UpdateGeometry(info);
}
ControllerStats NvmeController::stats() const {
  return impl_->stats();
}

}  // namespace opensrd::nvme
