#include "block/file_device.h"

#include <fcntl.h>
#include <liburing.h>
#include <linux/fs.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <map>
#include <mutex>
#include <vector>

namespace opensrd::block {
namespace {

// O_DIRECT wants memory, offsets and lengths aligned to the device's logical block; 4096 covers
// every device and file system we run on.
constexpr uint32_t kDirectAlign = 4096;

Status Errno(const std::string& what, int err = errno) {
  return Status(Code::kIoError, what + ": " + std::strerror(err));
}

Status FromErrno(const IoRequest& r, int err) {
  const std::string what = std::string(OpName(r.op)) + " at " + std::to_string(r.offset);
  if (err == ENOSPC) return Status(Code::kResourceExhausted, what + ": no space left");
  if (err == EOPNOTSUPP || err == EINVAL) {
    return Status(Code::kInvalidArgument, what + ": " + std::strerror(err));
  }
  return Errno(what, err);
}

}  // namespace

class FileDevice::Impl {
 public:
  struct Pending {
    IoRequest req;
    IoCallback done;
    bool sync_stage = false;  // the fdatasync after a FUA fallocate
    // WRITE_ZEROES that keeps allocation where FALLOC_FL_ZERO_RANGE is not supported (tmpfs):
    // punch a hole, then allocate the range again.
    int zero_fallback = 0;    // 0 off, 1 punching, 2 re-allocating
    uint32_t done_bytes = 0;  // a short read or write continues from here
    uint8_t* bounce = nullptr;
  };

  ~Impl() {
    // Requests the owner did not wait for: let the kernel finish with their buffers, then free
    // them without calling back (the owner is going away).
    while (ring_ok_ && sqes_out_ > 0) {
      io_uring_cqe* cqe = nullptr;
      __kernel_timespec ts{1, 0};
      if (io_uring_wait_cqe_timeout(&ring_, &cqe, &ts) != 0) break;
      auto* p = static_cast<Pending*>(io_uring_cqe_get_data(cqe));
      io_uring_cqe_seen(&ring_, cqe);
      --sqes_out_;
      std::free(p->bounce);
      delete p;
    }
    for (Pending* p : overflow_) {
      std::free(p->bounce);
      delete p;
    }
    if (ring_ok_) io_uring_queue_exit(&ring_);
    if (efd_ >= 0) close(efd_);
    if (fd_ >= 0) close(fd_);
  }

  Status Open(const FileDeviceOptions& o) {
    opts_ = o;
    struct stat st {};
    const bool exists = stat(o.path.c_str(), &st) == 0;
    if (!exists && errno != ENOENT) return Errno("stat " + o.path);
    if (!exists && o.create_size == 0) {
      return Status(Code::kNotFound, o.path + " does not exist (give a size to create it)");
    }
    const int base = (o.read_only ? O_RDONLY : O_RDWR) | O_CLOEXEC | (exists ? 0 : O_CREAT);
    if (o.direct) {
      fd_ = open(o.path.c_str(), base | O_DIRECT, 0644);
      direct_ = fd_ >= 0;
    }
    if (fd_ < 0) fd_ = open(o.path.c_str(), base, 0644);
    if (fd_ < 0) return Errno("open " + o.path);
    if (fstat(fd_, &st) != 0) return Errno("fstat " + o.path);
    block_device_ = S_ISBLK(st.st_mode);
    if (!block_device_ && !S_ISREG(st.st_mode)) {
      return Status(Code::kInvalidArgument, o.path + " is neither a file nor a block device");
    }
    block_size_ = direct_ ? kDirectAlign : 512;
    uint64_t size = static_cast<uint64_t>(st.st_size);
    if (block_device_) {
      if (ioctl(fd_, BLKGETSIZE64, &size) != 0) return Errno("BLKGETSIZE64 " + o.path);
    } else if (!exists) {
      size = o.create_size / block_size_ * block_size_;
      if (size == 0) return Status(Code::kInvalidArgument, "volume size below one block");
      if (ftruncate(fd_, static_cast<off_t>(size)) != 0) return Errno("ftruncate " + o.path);
    }
    size_.store(size / block_size_ * block_size_);
    efd_ = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (efd_ < 0) return Errno("eventfd");
    const int rc = io_uring_queue_init(o.queue_depth, &ring_, 0);
    if (rc < 0) return Errno("io_uring_queue_init", -rc);
    ring_ok_ = true;
    if (int r = io_uring_register_eventfd(&ring_, efd_); r < 0) {
      return Errno("io_uring_register_eventfd", -r);
    }
    return Status::Ok();
  }

  VolumeInfo Info() const {
    VolumeInfo i;
    i.size_bytes = size_.load();
    i.block_size = block_size_;
    i.read_only = opts_.read_only;
    i.can_fast_zero = false;  // whether fallocate zeroes fast depends on the file system
    return i;
  }

  void Submit(const IoRequest& r, IoCallback done) {
    if (Status s = ValidateRequest(Info(), r); !s.ok()) {
      Complete(std::move(done), s);
      return;
    }
    if (r.op == Op::kWriteZeroes && (r.flags & kFastZero)) {
      Complete(std::move(done), Status(Code::kInvalidArgument, "fast zero not supported"));
      return;
    }
    auto* p = new Pending{r, std::move(done)};
    if (opts_.volatile_cache && CacheSubmit(p)) return;
    if (direct_ && (r.op == Op::kRead || r.op == Op::kWrite) &&
        reinterpret_cast<uintptr_t>(r.data) % kDirectAlign != 0) {
      p->bounce = static_cast<uint8_t*>(std::aligned_alloc(kDirectAlign, RoundUp(r.length)));
      if (r.op == Op::kWrite) std::memcpy(p->bounce, r.data, r.length);
    }
    std::lock_guard<std::mutex> lock(mu_);
    ++in_flight_;
    Queue(p);
  }

  size_t Reap() {
    uint64_t v;
    while (read(efd_, &v, sizeof v) > 0) {
    }
    std::vector<std::pair<IoCallback, Status>> ready;
    {
      std::lock_guard<std::mutex> lock(mu_);
      io_uring_cqe* cqe;
      unsigned head;
      unsigned n = 0;
      io_uring_for_each_cqe(&ring_, head, cqe) {
        ++n;
        auto* p = static_cast<Pending*>(io_uring_cqe_get_data(cqe));
        --sqes_out_;
        Finish(p, cqe->res, ready);
      }
      io_uring_cq_advance(&ring_, n);
      while (!overflow_.empty() && sqes_out_ < opts_.queue_depth) {
        Pending* p = overflow_.front();
        overflow_.pop_front();
        Prepare(p);
      }
      if (io_uring_sq_ready(&ring_) > 0) io_uring_submit(&ring_);
      for (auto& x : ready_) ready.push_back(std::move(x));
      ready_.clear();
    }
    for (auto& [cb, st] : ready) cb(st);
    return ready.size();
  }

  Result<std::vector<Extent>> BlockStatus(uint64_t offset, uint64_t length) {
    const uint64_t size = size_.load();
    if (offset >= size) return Status(Code::kInvalidArgument, "block status beyond the end");
    const uint64_t end = std::min(size, offset + length);
    std::vector<Extent> out;
    if (block_device_) return std::vector<Extent>{Extent{end - offset, false, false}};
    uint64_t pos = offset;
    while (pos < end && out.size() < 1024) {
      off_t data = lseek(fd_, static_cast<off_t>(pos), SEEK_DATA);
      if (data < 0 && errno != ENXIO) return Errno("SEEK_DATA");
      const uint64_t d = data < 0 ? end : std::min<uint64_t>(data, end);
      if (d > pos) {
        out.push_back(Extent{d - pos, true, true});
        pos = d;
        continue;
      }
      off_t hole = lseek(fd_, static_cast<off_t>(pos), SEEK_HOLE);
      if (hole < 0) return Errno("SEEK_HOLE");
      const uint64_t h = std::min<uint64_t>(hole, end);
      out.push_back(Extent{h - pos, false, false});
      pos = h;
    }
    return out;
  }

  Status Resize(uint64_t new_size) {
    if (block_device_) return Status(Code::kInvalidArgument, "cannot resize a block device");
    if (opts_.read_only) return Status(Code::kInvalidArgument, "volume is read-only");
    if (new_size % block_size_ != 0) {
      return Status(Code::kInvalidArgument,
                    "size must be a multiple of " + std::to_string(block_size_));
    }
    if (new_size < size_.load()) return Status(Code::kInvalidArgument, "shrinking is refused");
    if (ftruncate(fd_, static_cast<off_t>(new_size)) != 0) return Errno("ftruncate");
    size_.store(new_size);
    return Status::Ok();
  }

  int efd_ = -1;
  bool direct_ = false;
  size_t in_flight_ = 0;
  std::mutex mu_;
  FileDeviceOptions opts_;

 private:
  static uint32_t RoundUp(uint32_t n) {
    return (n + kDirectAlign - 1) / kDirectAlign * kDirectAlign;
  }

  // Completes outside io_uring: delivered by the next Reap (signalled through the eventfd).
  void Complete(IoCallback done, Status s) {
    {
      std::lock_guard<std::mutex> lock(mu_);
      ready_.emplace_back(std::move(done), std::move(s));
    }
    const uint64_t one = 1;
    [[maybe_unused]] ssize_t n = write(efd_, &one, sizeof one);
  }

  // Caller holds mu_.
  void Queue(Pending* p) {
    if (sqes_out_ >= opts_.queue_depth) {
      overflow_.push_back(p);
      return;
    }
    Prepare(p);
    io_uring_submit(&ring_);
  }

  // Caller holds mu_ and has checked that the ring has room.
  void Prepare(Pending* p) {
    io_uring_sqe* sqe = io_uring_get_sqe(&ring_);
    if (sqe == nullptr) {  // the kernel has not consumed the SQ yet: submit and retry
      io_uring_submit(&ring_);
      sqe = io_uring_get_sqe(&ring_);
    }
    const IoRequest& r = p->req;
    uint8_t* buf = p->bounce ? p->bounce : static_cast<uint8_t*>(r.data);
    const uint64_t off = r.offset + p->done_bytes;
    if (p->sync_stage || r.op == Op::kFlush) {
      io_uring_prep_fsync(sqe, fd_, IORING_FSYNC_DATASYNC);
    } else if (r.op == Op::kRead) {
      io_uring_prep_read(sqe, fd_, buf + p->done_bytes, r.length - p->done_bytes, off);
    } else if (r.op == Op::kWrite) {
      io_uring_prep_write(sqe, fd_, buf + p->done_bytes, r.length - p->done_bytes, off);
      if (r.flags & kFua) sqe->rw_flags = RWF_DSYNC;
    } else {
      int mode = FALLOC_FL_KEEP_SIZE;
      if (p->zero_fallback == 2) {
        mode = FALLOC_FL_KEEP_SIZE;  // allocate: the punched range reads back as zeroes
      } else if (r.op == Op::kDiscard || !(r.flags & kNoUnmap) || p->zero_fallback == 1) {
        mode |= FALLOC_FL_PUNCH_HOLE;  // a hole reads back as zeroes
      } else {
        mode = FALLOC_FL_ZERO_RANGE | FALLOC_FL_KEEP_SIZE;
      }
      io_uring_prep_fallocate(sqe, fd_, mode, static_cast<off_t>(r.offset), r.length);
    }
    io_uring_sqe_set_data(sqe, p);
    ++sqes_out_;
  }

  // One CQE of `p`: continue a short transfer, add the FUA sync, or complete. Holds mu_.
  void Finish(Pending* p, int res, std::vector<std::pair<IoCallback, Status>>& ready) {
    const IoRequest& r = p->req;
    if (res == -EOPNOTSUPP && r.op == Op::kWriteZeroes && p->zero_fallback == 0) {
      p->zero_fallback = 1;
      Requeue(p);
      return;
    }
    if (res < 0) {
      Done(p, FromErrno(r, -res), ready);
      return;
    }
    if (p->zero_fallback == 1) {
      p->zero_fallback = 2;
      Requeue(p);
      return;
    }
    if (!p->sync_stage && (r.op == Op::kRead || r.op == Op::kWrite)) {
      p->done_bytes += static_cast<uint32_t>(res);
      if (res == 0 && p->done_bytes < r.length) {
        if (r.op == Op::kRead) {  // past the end of a file that shrank under us: zeroes
          std::memset((p->bounce ? p->bounce : static_cast<uint8_t*>(r.data)) + p->done_bytes, 0,
                      r.length - p->done_bytes);
        } else {
          Done(p, Errno("write made no progress", EIO), ready);
          return;
        }
      } else if (p->done_bytes < r.length) {
        Requeue(p);
        return;
      }
      if (r.op == Op::kRead && p->bounce) std::memcpy(r.data, p->bounce, r.length);
      if (r.op == Op::kRead && opts_.volatile_cache) OverlayCache(r);
    } else if (!p->sync_stage && (r.flags & kFua) &&
               (r.op == Op::kDiscard || r.op == Op::kWriteZeroes)) {
      p->sync_stage = true;
      Requeue(p);
      return;
    }
    Done(p, Status::Ok(), ready);
  }

  void Requeue(Pending* p) {
    if (sqes_out_ >= opts_.queue_depth) {
      overflow_.push_back(p);
    } else {
      Prepare(p);
    }
  }

  void Done(Pending* p, Status s, std::vector<std::pair<IoCallback, Status>>& ready) {
    ready.emplace_back(std::move(p->done), std::move(s));
    std::free(p->bounce);
    delete p;
    --in_flight_;
  }

  // ---- crash-test mode: the volatile write cache ----

  // Handles `p` in the cache if it can; false means "issue it to the file as usual".
  bool CacheSubmit(Pending* p) {
    const IoRequest& r = p->req;
    if (r.op == Op::kRead) return false;  // read the file, overlay the cache on completion
    if (r.op == Op::kFlush) {
      Status s = FlushCache();
      IoCallback done = std::move(p->done);
      delete p;
      if (s.ok()) {
        std::lock_guard<std::mutex> lock(mu_);
        ++in_flight_;
        Queue(new Pending{IoRequest{Op::kFlush}, std::move(done)});
      } else {
        Complete(std::move(done), s);
      }
      return true;
    }
    std::lock_guard<std::mutex> lock(mu_);
    if (r.op != Op::kWrite || (r.flags & kFua)) {
      // Goes to the file now: drop cached blocks it supersedes.
      DropCached(r.offset, r.length);
      return false;
    }
    const auto* src = static_cast<const uint8_t*>(r.data);
    for (uint64_t o = 0; o < r.length; o += block_size_) {
      auto& blk = cache_[(r.offset + o) / block_size_];
      blk.assign(src + o, src + o + block_size_);
    }
    ready_.emplace_back(std::move(p->done), Status::Ok());
    delete p;
    const uint64_t one = 1;
    [[maybe_unused]] ssize_t n = write(efd_, &one, sizeof one);
    return true;
  }

  void DropCached(uint64_t offset, uint64_t length) {
    auto it = cache_.lower_bound(offset / block_size_);
    const uint64_t end = (offset + length) / block_size_;
    while (it != cache_.end() && it->first < end) it = cache_.erase(it);
  }

  void OverlayCache(const IoRequest& r) {
    auto* dst = static_cast<uint8_t*>(r.data);
    auto it = cache_.lower_bound(r.offset / block_size_);
    const uint64_t end = (r.offset + r.length) / block_size_;
    for (; it != cache_.end() && it->first < end; ++it) {
      std::memcpy(dst + (it->first * block_size_ - r.offset), it->second.data(), block_size_);
    }
  }

  // Writes the cached blocks to the file (synchronously: a test backend) before the FLUSH's
  // own fdatasync goes through the ring.
  Status FlushCache() {
    std::map<uint64_t, std::vector<uint8_t>> blocks;
    {
      std::lock_guard<std::mutex> lock(mu_);
      blocks.swap(cache_);
    }
    uint8_t* tmp = static_cast<uint8_t*>(std::aligned_alloc(kDirectAlign, RoundUp(block_size_)));
    Status s;
    for (auto& [index, data] : blocks) {
      std::memcpy(tmp, data.data(), block_size_);
      if (pwrite(fd_, tmp, block_size_, static_cast<off_t>(index * block_size_)) !=
          static_cast<ssize_t>(block_size_)) {
        s = Errno("flush of the write cache");
        break;
      }
    }
    std::free(tmp);
    return s;
  }

  int fd_ = -1;
  bool block_device_ = false;
  uint32_t block_size_ = 512;
  std::atomic<uint64_t> size_{0};
  io_uring ring_{};
  bool ring_ok_ = false;
  unsigned sqes_out_ = 0;
  std::deque<Pending*> overflow_;
  std::vector<std::pair<IoCallback, Status>> ready_;
  std::map<uint64_t, std::vector<uint8_t>> cache_;  // crash-test mode: block -> unflushed data
};

Result<std::unique_ptr<FileDevice>> FileDevice::Open(const FileDeviceOptions& options) {
  auto impl = std::make_unique<Impl>();
  if (Status s = impl->Open(options); !s.ok()) return s;
  return std::unique_ptr<FileDevice>(new FileDevice(std::move(impl)));
}

FileDevice::FileDevice(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
FileDevice::~FileDevice() = default;
VolumeInfo FileDevice::Info() const {
  return impl_->Info();
}
void FileDevice::Submit(const IoRequest& r, IoCallback done) {
  impl_->Submit(r, std::move(done));
}
Result<std::vector<Extent>> FileDevice::BlockStatus(uint64_t offset, uint64_t length) {
  return impl_->BlockStatus(offset, length);
}
int FileDevice::event_fd() const {
  return impl_->efd_;
}
size_t FileDevice::Reap() {
  return impl_->Reap();
}
size_t FileDevice::in_flight() const {
  std::lock_guard<std::mutex> lock(impl_->mu_);
  return impl_->in_flight_;
}
Status FileDevice::Resize(uint64_t new_size) {
  return impl_->Resize(new_size);
}
bool FileDevice::direct() const {
  return impl_->direct_;
}
const std::string& FileDevice::path() const {
  return impl_->opts_.path;
}
std::string FileDevice::Describe() const {
  std::string d = path() + ", " + std::to_string(Info().size_bytes) + " bytes, ";
  d += direct() ? "O_DIRECT I/O" : "buffered I/O (O_DIRECT refused by the file system)";
  if (impl_->opts_.volatile_cache) d += ", crash-test write cache";
  return d;
}

}  // namespace opensrd::block
