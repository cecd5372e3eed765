#include "block/rbd_device.h"

#include <rados/librados.h>
#include <rbd/librbd.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <mutex>
#include <unordered_set>
#include <vector>

#include "common/log.h"

namespace opensrd::block {
namespace {

// librbd reports a fenced client with -EBLOCKLISTED, which is ESHUTDOWN on Linux.
constexpr int kBlocklisted = ESHUTDOWN;
constexpr int kCloseWaitMs = 5000;
// Image metadata: "SESSION_HEX ATTACH_ID" of the attach that last took the volume.
constexpr const char* kAttachKey = "opensrd.last_attach";
// A fenced bridge's requests are refused by the cluster at once; this only bounds a surprise.
constexpr int kDrainWaitMs = 3000;

Status RbdError(const std::string& what, int r) {
  const int err = -r;
  std::string msg = what + ": " + std::strerror(err);
  if (err == kBlocklisted) {
    msg = what + ": this bridge was fenced (another bridge took the volume over)";
  } else if (err == EROFS) {
    msg = what + ": another client holds the image's exclusive lock";
  }
  if (err == ENOSPC || err == EDQUOT) return Status(Code::kResourceExhausted, msg);
  if (err == EINVAL || err == EOPNOTSUPP) return Status(Code::kInvalidArgument, msg);
  if (err == ENOENT) return Status(Code::kNotFound, msg);
  if (err == EACCES || err == EPERM) return Status(Code::kPermissionDenied, msg);
  return Status(Code::kIoError, msg);
}

}  // namespace

class RbdDevice::Impl {
 public:
  struct Pending {
    Impl* impl = nullptr;
    IoRequest req;
    IoCallback done;
    rbd_completion_t completion = nullptr;
    ssize_t ret = 0;
  };

  explicit Impl(const RbdDeviceOptions& o) : opts_(o) {}

  ~Impl() {
    // Requests the owner did not wait for: librbd still holds their buffers, so wait for them
    // (without calling back: the owner is going away), then close, which releases the lock.
    std::vector<Pending*> left;
    {
      std::lock_guard<std::mutex> lock(mu_);
      left.assign(pending_.begin(), pending_.end());
    }
    for (Pending* op : left) rbd_aio_wait_for_complete(op->completion);
    Reap(/*run_callbacks=*/false);
    Disconnect();
    if (efd_ >= 0) close(efd_);
  }

  Status Init() {
    efd_ = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (efd_ < 0) return Status(Code::kIoError, std::string("eventfd: ") + std::strerror(errno));
    return Connect();
  }

  Status Connect() {
    const char* id = opts_.client_id.empty() ? nullptr : opts_.client_id.c_str();
    if (int r = rados_create(&cluster_, id); r < 0) return RbdError("rados_create", r);
    if (int r = rados_conf_read_file(cluster_, opts_.conf.empty() ? nullptr : opts_.conf.c_str());
        r < 0) {
      return RbdError(
          "reading ceph config '" + (opts_.conf.empty() ? "(default)" : opts_.conf) + "'", r);
    }
    rados_conf_parse_env(cluster_, nullptr);
    // Write-through: a write completes once the OSDs committed it (see the header).
    rados_conf_set(cluster_, "rbd_cache", "false");
    // An unreachable cluster is an error at start, not a hang.
    rados_conf_set(cluster_, "client_mount_timeout", "15");
    if (int r = rados_connect(cluster_); r < 0) return RbdError("connecting to the cluster", r);
    if (int r = rados_ioctx_create(cluster_, opts_.pool.c_str(), &io_); r < 0) {
      return RbdError("pool '" + opts_.pool + "'", r);
    }
    int r = OpenImage();
    if (r == -ENOENT && opts_.create_size > 0 && !opts_.read_only) {
      int order = 0;  // the cluster's default object size and features (exclusive-lock too)
      if (int c = rbd_create(io_, opts_.image.c_str(), opts_.create_size, &order); c < 0) {
        return RbdError("creating image " + Name(), c);
      }
      r = OpenImage();
    }
    if (r < 0) return RbdError("opening image " + Name(), r);
    rbd_image_info_t st{};
    if (int s = rbd_stat(image_, &st, sizeof st); s < 0) return RbdError("rbd_stat", s);
    size_.store(st.size);
    obj_size_ = st.obj_size;
    uint64_t features = 0;
    rbd_get_features(image_, &features);
    exclusive_lock_ = (features & RBD_FEATURE_EXCLUSIVE_LOCK) != 0;
    return Status::Ok();
  }

  int OpenImage() {
    return opts_.read_only ? rbd_open_read_only(io_, opts_.image.c_str(), &image_, nullptr)
                           : rbd_open(io_, opts_.image.c_str(), &image_, nullptr);
  }

  // Closing flushes and unwatches through the cluster; a cluster that is gone would hang it
  // (and the bridge's exit) forever. So the close is asynchronous and bounded: after
  // kCloseWait the handles are abandoned, which only matters to a process about to exit.
  void Disconnect() {
    bool closed = true;
    if (image_ != nullptr) {
      rbd_completion_t c = nullptr;
      rbd_aio_create_completion(nullptr, nullptr, &c);
      if (rbd_aio_close(image_, c) == 0) {
        closed = false;
        for (int i = 0; i < kCloseWaitMs / 10 && !closed; ++i) {
          closed = rbd_aio_is_complete(c);
          if (!closed) usleep(10'000);
        }
      }
      if (closed) rbd_aio_release(c);
    }
    if (closed) {
      if (io_ != nullptr) rados_ioctx_destroy(io_);
      if (cluster_ != nullptr) rados_shutdown(cluster_);
    } else {
      log::Get("bridge").warn("image {} did not close within {} ms (cluster gone?)", Name(),
                              kCloseWaitMs);
    }
    image_ = nullptr;
    io_ = nullptr;
    cluster_ = nullptr;
  }

  std::string Name() const { return opts_.pool + "/" + opts_.image; }

  VolumeInfo Info() const {
    VolumeInfo i;
    i.size_bytes = size_.load();
    i.block_size = 512;
    i.atomic_write_unit = static_cast<uint32_t>(std::min<uint64_t>(16384, obj_size_));
    i.read_only = opts_.read_only;
    i.can_fast_zero = false;
    return i;
  }

  void Submit(const IoRequest& req, IoCallback done) {
    if (Status s = ValidateRequest(Info(), req); !s.ok()) {
      done(s);
      return;
    }
    if (image_ == nullptr) {
      done(Status(Code::kIoError, "image " + Name() + " is not open (fenced; reconnecting)"));
      return;
    }
    auto* op = new Pending{.impl = this, .req = req, .done = std::move(done)};
    {
      std::lock_guard<std::mutex> lock(mu_);
      pending_.insert(op);
    }
    rbd_aio_create_completion(op, &Impl::OnComplete, &op->completion);
    int r = 0;
    switch (req.op) {
      case Op::kRead:
        r = rbd_aio_read2(image_, req.offset, req.length, static_cast<char*>(req.data),
                          op->completion, 0);
        break;
      case Op::kWrite:
        r = rbd_aio_write2(image_, req.offset, req.length, static_cast<const char*>(req.data),
                           op->completion, (req.flags & kFua) ? LIBRADOS_OP_FLAG_FADVISE_FUA : 0);
        break;
      case Op::kFlush:
        r = rbd_aio_flush(image_, op->completion);
        break;
      case Op::kDiscard:
        r = rbd_aio_discard(image_, req.offset, req.length, op->completion);
        break;
      case Op::kWriteZeroes:
        // Without the cache every write is committed on completion, FUA included.
        r = rbd_aio_write_zeroes(image_, req.offset, req.length, op->completion, 0, 0);
        break;
    }
    if (r < 0) {
      // Not queued: complete it through the same path so `done` runs on the owner's loop.
      op->ret = r;
      Complete(op);
    }
  }

  // librbd's thread: hand the result to the owner's loop.
  static void OnComplete(rbd_completion_t c, void* arg) {
    auto* op = static_cast<Pending*>(arg);
    op->ret = rbd_aio_get_return_value(c);
    op->impl->Complete(op);
  }

  void Complete(Pending* op) {
    {
      std::lock_guard<std::mutex> lock(mu_);
      done_.push_back(op);
    }
    const uint64_t one = 1;
    (void)!write(efd_, &one, sizeof one);
  }

  size_t Reap(bool run_callbacks = true) {
    uint64_t v;
    while (read(efd_, &v, sizeof v) > 0) {
    }
    std::vector<Pending*> ready;
    {
      std::lock_guard<std::mutex> lock(mu_);
      ready.swap(done_);
      for (Pending* op : ready) pending_.erase(op);
    }
    for (Pending* op : ready) {
      if (op->completion != nullptr) rbd_aio_release(op->completion);
      Status s = Status::Ok();
      if (op->ret < 0) {
        if (-op->ret == kBlocklisted) MarkFenced();
        s = RbdError(std::string(OpName(op->req.op)) + " at " + std::to_string(op->req.offset),
                     static_cast<int>(op->ret));
      } else if (op->req.op == Op::kRead && static_cast<uint64_t>(op->ret) < op->req.length) {
        // Past the end of an image another bridge shrank: reads as zeroes, as a sparse file.
        std::memset(static_cast<char*>(op->req.data) + op->ret, 0, op->req.length - op->ret);
      }
      if (run_callbacks) op->done(s);
      delete op;
    }
    return ready.size();
  }

  size_t in_flight() const {
    std::lock_guard<std::mutex> lock(mu_);
    return pending_.size();
  }

  Status Resize(uint64_t new_size) {
    if (opts_.read_only) return Status(Code::kInvalidArgument, "volume is read-only");
    if (new_size % 512 != 0)
      return Status(Code::kInvalidArgument, "size must be a multiple of 512");
    uint64_t now = 0;
    if (int r = rbd_get_size(image_, &now); r < 0) return RbdError("rbd_get_size", r);
    if (new_size < now) return Status(Code::kInvalidArgument, "shrinking is refused");
    if (int r = rbd_resize(image_, new_size); r < 0) return RbdError("rbd_resize", r);
    size_.store(new_size);
    return Status::Ok();
  }

  bool fenced() const { return fenced_; }

  uint64_t incarnation() const { return incarnation_; }

  Status OnAttach(const AttachOrder& attach) {
    if (fenced_) {
      if (Status s = Reconnect(); !s.ok()) return s;
    }
    uint64_t size = 0;
    if (rbd_get_size(image_, &size) == 0) size_.store(size);  // another bridge may have grown it
    if (opts_.read_only || !exclusive_lock_) return Status::Ok();
    Status s = TakeOver(attach);
    if (!s.ok() && fenced_) {
      // Fenced while it was idle, so no request told it: reconnect once and try again.
      if (Status r = Reconnect(); !r.ok()) return r;
      s = TakeOver(attach);
    }
    return s;
  }

  Status TakeOver(const AttachOrder& attach) {
    if (Status s = RefuseStale(attach); !s.ok()) return s;
    if (Status s = TakeLock(); !s.ok()) return s;
    RecordAttach(attach);
    return Status::Ok();
  }

  // The image remembers the attach that last took it (RecordAttach). An older attach of the
  // same adapter session is one it gave up on (this bridge was frozen and answers it only now):
  // taking the volume for it would fence the bridge the adapter uses now. Checked before the
  // lock is broken, so a stale attach breaks nothing. Not atomic with the break: a stale attach
  // read between another bridge's takeover and its record still fences that bridge, whose
  // adapter then attaches to it again (PolledDevice::fenced).
  Status RefuseStale(const AttachOrder& attach) {
    char value[64];
    size_t len = sizeof value;
    int r = rbd_metadata_get(image_, kAttachKey, value, &len);
    if (r == -ENOENT) return Status::Ok();
    if (r < 0) {
      if (-r == kBlocklisted) MarkFenced();
      return RbdError("reading " + std::string(kAttachKey) + " of " + Name(), r);
    }
    unsigned long long session = 0, id = 0;
    value[sizeof value - 1] = '\0';
    if (std::sscanf(value, "%llx %llu", &session, &id) != 2) return Status::Ok();
    if (session == attach.session && id > attach.request_id) {
      return Status(Code::kIoError, "stale attach " + std::to_string(attach.request_id) +
                                        ": the adapter attached elsewhere since (attach " +
                                        std::to_string(id) + ")");
    }
    return Status::Ok();
  }

  void RecordAttach(const AttachOrder& attach) {
    char value[64];
    std::snprintf(value, sizeof value, "%016llx %llu",
                  static_cast<unsigned long long>(attach.session),
                  static_cast<unsigned long long>(attach.request_id));
    if (int r = rbd_metadata_set(image_, kAttachKey, value); r < 0) {
      // The takeover stands; a stale attach is then checked against an older record.
      log::Get("bridge").warn("image {}: recording the attach: {}", Name(), std::strerror(-r));
    }
  }

  Status TakeLock() {
    // Reading the lock's owners is a round trip to the OSD holding the image header, which
    // refuses a blocklisted client: so this also tells a bridge that was fenced while idle
    // (librbd may still believe it owns the lock).
    rbd_lock_mode_t mode;
    char* owners[8];
    size_t n = 8;
    int r = rbd_lock_get_owners(image_, &mode, owners, &n);
    if (r < 0 && r != -ENOENT) {
      if (-r == kBlocklisted) MarkFenced();
      return RbdError("reading the lock owners of " + Name(), r);
    }
    int owner = 0;
    if (int o = rbd_is_exclusive_lock_owner(image_, &owner); o < 0) {
      if (r == 0) rbd_lock_get_owners_cleanup(owners, n);
      if (-o == kBlocklisted) MarkFenced();
      return RbdError("checking the lock of " + Name(), o);
    }
    if (r == 0) {
      for (size_t i = 0; i < n && !owner; ++i) {
        // Blocklists that client: it can no longer write, whatever state it is in.
        int b = rbd_lock_break(image_, RBD_LOCK_MODE_EXCLUSIVE, owners[i]);
        if (b < 0 && b != -ENOENT) {
          rbd_lock_get_owners_cleanup(owners, n);
          if (-b == kBlocklisted) MarkFenced();
          return RbdError("breaking the lock of " + Name(), b);
        }
      }
      rbd_lock_get_owners_cleanup(owners, n);
    }
    if (owner) return Status::Ok();
    if (int a = rbd_lock_acquire(image_, RBD_LOCK_MODE_EXCLUSIVE); a < 0) {
      if (-a == kBlocklisted) MarkFenced();
      return RbdError("taking the lock of " + Name(), a);
    }
    return Status::Ok();
  }

  // The cluster refused this bridge's client (another bridge broke its lock): said once.
  void MarkFenced() {
    if (!fenced_) {
      log::Get("bridge").warn("image {}: fenced (blocklisted): another bridge took it", Name());
    }
    fenced_ = true;
  }

  // Called on the owner's loop, from OnAttach. Requests the fenced client still holds are
  // refused by the cluster; they are waited for (bounded) and answered first, since their
  // buffers belong to the image about to close. Refusing the attach while they drained (as
  // this did) told the adapter the volume was broken.
  Status Reconnect() {
    log::Get("bridge").info("image {}: reconnecting to the cluster ({} requests in flight)", Name(),
                            in_flight());
    if (!WaitAllCompleted(kDrainWaitMs)) {
      return Status(Code::kIoError, "image " + Name() + ": fenced, requests still draining");
    }
    Reap();  // fenced_ still set: their owners are told to attach again
    {
      std::lock_guard<std::mutex> lock(mu_);
      Disconnect();
    }
    std::lock_guard<std::mutex> lock(mu_);
    // fenced_ stays set until a new connection is up, so a request that finds no image is
    // answered "attach again", and the next attach tries again.
    ++incarnation_;  // from here on, requests under earlier attachments are void
    if (Status s = Connect(); !s.ok()) return s;
    fenced_ = false;
    return Status::Ok();
  }

  // True once librbd has completed every request in flight (their callbacks not yet run).
  bool WaitAllCompleted(int max_ms) {
    for (int i = 0;; ++i) {
      {
        std::lock_guard<std::mutex> lock(mu_);
        if (done_.size() == pending_.size()) return true;
      }
      if (i >= max_ms) return false;
      usleep(1000);
    }
  }

  std::string Describe() const {
    std::string d = "rbd:" + Name() + ", " + std::to_string(size_.load()) + " bytes, object " +
                    std::to_string(obj_size_) + " bytes, librbd cache off";
    if (!exclusive_lock_ && !opts_.read_only) {
      d += ", no exclusive-lock feature: a failover cannot fence the previous bridge";
    }
    return d;
  }

  RbdDeviceOptions opts_;
  int efd_ = -1;
  rados_t cluster_ = nullptr;
  rados_ioctx_t io_ = nullptr;
  rbd_image_t image_ = nullptr;
  std::atomic<uint64_t> size_{0};
  uint64_t obj_size_ = 4u << 20;
  bool exclusive_lock_ = false;
  bool fenced_ = false;       // owner's thread only
  uint64_t incarnation_ = 0;  // owner's thread only: reconnects so far
  mutable std::mutex mu_;
  std::unordered_set<Pending*> pending_;
  std::vector<Pending*> done_;
};

RbdDevice::RbdDevice(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
RbdDevice::~RbdDevice() = default;

Result<std::unique_ptr<RbdDevice>> RbdDevice::Open(const RbdDeviceOptions& options) {
  if (options.pool.empty() || options.image.empty()) {
    return Status(Code::kInvalidArgument, "an RBD volume needs POOL/IMAGE");
  }
  auto impl = std::make_unique<Impl>(options);
  if (Status s = impl->Init(); !s.ok()) return s;
  return std::unique_ptr<RbdDevice>(new RbdDevice(std::move(impl)));
}

VolumeInfo RbdDevice::Info() const {
  return impl_->Info();
}
void RbdDevice::Submit(const IoRequest& request, IoCallback done) {
  impl_->Submit(request, std::move(done));
}
int RbdDevice::event_fd() const {
  return impl_->efd_;
}
size_t RbdDevice::Reap() {
  return impl_->Reap();
}
size_t RbdDevice::in_flight() const {
  return impl_->in_flight();
}
Status RbdDevice::Resize(uint64_t new_size) {
  return impl_->Resize(new_size);
}
std::string RbdDevice::Describe() const {
  return impl_->Describe();
}
Status RbdDevice::OnAttach(const AttachOrder& attach) {
  return impl_->OnAttach(attach);
}
uint64_t RbdDevice::incarnation() const {
  return impl_->incarnation();
}
bool RbdDevice::fenced() const {
  return impl_->fenced();
}

}  // namespace opensrd::block
