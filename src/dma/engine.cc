// DmaEngine: channels over shared rings, the parse-validate-execute loop, completion records,
// the prefetch stage and the worker thread.
#include <poll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstring>
#include <thread>

#include "dma/backend.h"
#include "dma/prefetch.h"
#include "dma/regions.h"
#include "dma/validate.h"
#include "opensrd/dma.h"

namespace opensrd::dma {

const char* StatusName(CompletionStatus s) {
  switch (s) {
    case CompletionStatus::kPending:
      return "pending";
    case CompletionStatus::kSuccess:
      return "success";
    case CompletionStatus::kBadOpcode:
      return "bad_opcode";
    case CompletionStatus::kBadField:
      return "bad_field";
    case CompletionStatus::kNullAddress:
      return "null_address";
    case CompletionStatus::kBadLength:
      return "bad_length";
    case CompletionStatus::kNotRegistered:
      return "not_registered";
    case CompletionStatus::kAccessDenied:
      return "access_denied";
    case CompletionStatus::kOverlap:
      return "overlap";
    case CompletionStatus::kBadSgList:
      return "bad_sg_list";
  }
  return "unknown";
}

Result<PrefetchMode> ParsePrefetchMode(std::string_view s) {
  if (s == "off") return PrefetchMode::kOff;
  if (s == "on") return PrefetchMode::kOn;
  if (s == "auto") return PrefetchMode::kAuto;
  return Status(Code::kInvalidArgument, "prefetch mode must be on, off or auto");
}

const char* PrefetchModeName(PrefetchMode m) {
  switch (m) {
    case PrefetchMode::kOff:
      return "off";
    case PrefetchMode::kOn:
      return "on";
    case PrefetchMode::kAuto:
      return "auto";
  }
  return "unknown";
}

struct DmaEngine::Impl {
  struct Channel {
    Channel(uint32_t id, SharedRing* ring, ChannelOptions o, const PrefetchOptions& p)
        : id(id), ring(ring), options(o), lookahead(p) {}
    uint32_t id;
    SharedRing* ring;
    ChannelOptions options;
    uint64_t tail = 0;  // the engine's own copy; the header's is informational
    bool halted = false;
    ChannelStats stats;
    LookaheadPrefetcher lookahead;
    std::atomic<uint64_t> executing{0};  // for the helper thread
  };

  explicit Impl(EngineOptions o) : options(o), backend(MakeCpuBackend()), governor(o.prefetch) {
    options.budget = std::max<uint32_t>(options.budget, 1);
    wake_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  }
  ~Impl() {
    StopWorker();
    toucher.reset();
    if (wake_fd >= 0) close(wake_fd);
  }

  Channel* Find(uint32_t id) {
    for (auto& c : channels) {
      if (c->id == id) return c.get();
    }
    return nullptr;
  }

  // Changes to regions or channels happen with no helper running; the next Poll restarts it.
  Status Mutable() {
    if (worker.joinable()) return Status(Code::kInvalidArgument, "engine worker is running");
    toucher.reset();
    return Status::Ok();
  }

  bool PrefetchNow() const {
    if (!backend->info().runs_on_cpu || options.prefetch.helper_thread) return false;
    switch (options.prefetch.mode) {
      case PrefetchMode::kOff:
        return false;
      case PrefetchMode::kOn:
        return true;
      case PrefetchMode::kAuto:
        return governor.enabled();
    }
    return false;
  }

  void WriteCompletion(Channel& ch, uint64_t index, uint64_t user_data, const OpResult& r) {
    Completion* c = &ch.ring->completions()[index & (ch.ring->capacity() - 1)];
    c->result = r.result;
    c->reserved = 0;
    c->bytes_completed = r.status == CompletionStatus::kSuccess ? r.bytes : 0;
    c->user_data = user_data;
    c->offset = r.offset;
    c->crc = r.crc;
    c->reserved2 = 0;
    std::atomic_ref<uint8_t>(c->status).store(static_cast<uint8_t>(r.status),
                                              std::memory_order_release);
    ++ch.stats.completed;
    if (r.status != CompletionStatus::kSuccess) {
      ++ch.stats.errors;
    } else {
      ch.stats.bytes += r.bytes;
    }
  }

  // Collects what the backend finished. user_data is looked up from the ring's slot snapshot
  // kept in `user` (a device backend could finish after the producer touched the slot).
  void Drain(Channel& ch, const uint64_t* user, uint64_t first, bool* notify) {
    OpResult results[64];
    size_t n;
    while ((n = backend->Completed(results, std::size(results))) > 0) {
      for (size_t i = 0; i < n; ++i) {
        const uint64_t index = results[i].cookie;
        WriteCompletion(ch, index, user[index - first], results[i]);
        *notify |= (results[i].flags & kFlagNotify) != 0;
      }
    }
  }

  // Returns descriptors completed and adds the bytes they moved to *bytes.
  size_t RunChannel(Channel& ch, bool prefetch, uint64_t* bytes) {
    if (ch.halted) return 0;
    RingHeader* h = ch.ring->header();
    const uint64_t head = h->head.load(std::memory_order_acquire);
    const uint64_t avail = head - ch.tail;  // unsigned: a head that went back is huge
    if (avail == 0) return 0;
    const uint32_t cap = ch.ring->capacity();
    if (avail > cap) {
      // More published than the ring holds: the producer overwrote descriptors not yet parsed.
      // Nothing of this channel runs until ResetChannel().
      ch.halted = true;
      h->error.store(static_cast<uint32_t>(RingError::kOverflow), std::memory_order_release);
      return 0;
    }
    const uint32_t n = static_cast<uint32_t>(std::min<uint64_t>(avail, options.budget));
    const Descriptor* ring = ch.ring->descriptors();
    const uint64_t bytes_before = ch.stats.bytes;
    uint64_t user[kMaxBudget];
    bool notify = false;
    const bool helper = toucher != nullptr;
    for (uint32_t k = 0; k < n; ++k) {
      const uint64_t index = ch.tail + k;
      if (helper) ch.executing.store(index, std::memory_order_release);
      Descriptor d;
      std::memcpy(&d, &ring[index & (cap - 1)], sizeof d);  // the parser's private snapshot
      if (prefetch) {
        ch.stats.prefetched_bytes += ch.lookahead.Advance(ring, cap - 1, index, head, regions);
      }
      user[k] = d.user_data;
      Op op;
      const CompletionStatus st = Validate(d, regions, &scratch, &op);
      if (st != CompletionStatus::kSuccess) {
        OpResult r{};
        r.status = st;
        WriteCompletion(ch, index, d.user_data, r);
        notify |= (d.flags & kFlagNotify) != 0;
        continue;
      }
      op.cookie = index;
      while (!backend->Enqueue(op)) {
        backend->Submit();
        Drain(ch, user, ch.tail, &notify);
      }
    }
    backend->Submit();
    Drain(ch, user, ch.tail, &notify);
    ch.tail += n;
    if (helper) ch.executing.store(ch.tail, std::memory_order_release);
    h->tail.store(ch.tail, std::memory_order_release);
    if (notify && ch.options.completion_fd >= 0) {
      eventfd_write(ch.options.completion_fd, 1);
      ++ch.stats.notifications;
    }
    *bytes += ch.stats.bytes - bytes_before;
    return n;
  }

  size_t Poll() {
    if (options.prefetch.helper_thread && !toucher && !channels.empty()) {
      std::vector<SourceToucher::Channel> views;
      for (auto& c : channels) {
        c->executing.store(c->tail, std::memory_order_relaxed);
        views.push_back({c->ring, &c->executing});
      }
      toucher = std::make_unique<SourceToucher>(options.prefetch, &regions, std::move(views));
    }
    size_t done = 0;
    const bool possible = backend->info().runs_on_cpu && !toucher;
    for (auto& c : channels) {
      // The batch this round will run: what is published, up to the budget (an overflowed
      // ring reads as huge here; RunChannel halts it).
      const uint64_t batch = std::min<uint64_t>(
          c->ring->header()->head.load(std::memory_order_acquire) - c->tail, options.budget);
      const BatchPrefetch plan = DecideBatchPrefetch(options.prefetch.mode, possible, batch);
      ++batches_by_plan[static_cast<size_t>(plan)];
      uint64_t bytes = 0;
      if (plan != BatchPrefetch::kGovernor) {
        done += RunChannel(*c, plan == BatchPrefetch::kOn, &bytes);
        continue;
      }
      // Only the governor's trial windows read the clock.
      const bool timed = governor.measuring();
      const auto t0 =
          timed ? std::chrono::steady_clock::now() : std::chrono::steady_clock::time_point{};
      const size_t n = RunChannel(*c, governor.enabled(), &bytes);
      if (n == 0) continue;
      const uint64_t ns = timed ? std::chrono::duration_cast<std::chrono::nanoseconds>(
                                      std::chrono::steady_clock::now() - t0)
                                      .count()
                                : 0;
      governor.Record(n, bytes, ns);
      done += n;
    }
    return done;
  }

  void WorkerLoop() {
    uint32_t idle = 0;
    std::vector<pollfd> fds;
    while (!stop.load(std::memory_order_acquire)) {
      if (Poll() > 0) {
        idle = 0;
        continue;
      }
      if (++idle < 64) {
        std::this_thread::yield();
        continue;
      }
      // Idle: sleep until a doorbell rings (or 1 ms passes, for producers without a doorbell fd).
      fds.clear();
      fds.push_back({wake_fd, POLLIN, 0});
      for (auto& c : channels) {
        if (c->options.doorbell_fd >= 0) fds.push_back({c->options.doorbell_fd, POLLIN, 0});
      }
      if (poll(fds.data(), fds.size(), 1) > 0) {
        for (const pollfd& p : fds) {
          eventfd_t v;
          if (p.revents & POLLIN) eventfd_read(p.fd, &v);
        }
      }
      idle = 0;
    }
  }

  void StopWorker() {
    if (!worker.joinable()) return;
    stop.store(true, std::memory_order_release);
    eventfd_write(wake_fd, 1);
    worker.join();
    stop.store(false, std::memory_order_relaxed);
  }

  static constexpr uint32_t kMaxBudget = 256;
  EngineOptions options;
  std::unique_ptr<DmaBackend> backend;
  PrefetchGovernor governor;
  uint64_t batches_by_plan[3] = {};  // indexed by BatchPrefetch
  RegionTable regions;
  std::vector<std::unique_ptr<Channel>> channels;
  uint32_t next_channel = 1;
  SgScratch scratch;
  std::unique_ptr<SourceToucher> toucher;
  std::thread worker;
  std::atomic<bool> stop{false};
  int wake_fd = -1;
};

DmaEngine::DmaEngine(EngineOptions options) : impl_(std::make_unique<Impl>(options)) {
  impl_->options.budget = std::min(impl_->options.budget, Impl::kMaxBudget);
}

DmaEngine::~DmaEngine() = default;

Result<uint32_t> DmaEngine::RegisterRegion(void* base, size_t len, uint64_t iova, uint32_t access) {
  if (Status s = impl_->Mutable(); !s.ok()) return s;
  return impl_->regions.Add(base, len, iova, access);
}

Status DmaEngine::UnregisterRegion(uint32_t id) {
  if (Status s = impl_->Mutable(); !s.ok()) return s;
  return impl_->regions.Remove(id);
}

Result<uint32_t> DmaEngine::AddChannel(SharedRing* ring, ChannelOptions options) {
  if (Status s = impl_->Mutable(); !s.ok()) return s;
  if (ring == nullptr) return Status(Code::kInvalidArgument, "no ring");
  auto ch = std::make_unique<Impl::Channel>(impl_->next_channel++, ring, options,
                                            impl_->options.prefetch);
  // Start where the ring is: descriptors published before the channel existed still run.
  ch->tail = ring->header()->tail.load(std::memory_order_acquire);
  ch->lookahead.Reset(ch->tail);
  const uint32_t id = ch->id;
  impl_->channels.push_back(std::move(ch));
  return id;
}

Status DmaEngine::RemoveChannel(uint32_t id) {
  if (Status s = impl_->Mutable(); !s.ok()) return s;
  auto& v = impl_->channels;
  auto it = std::find_if(v.begin(), v.end(), [id](const auto& c) { return c->id == id; });
  if (it == v.end()) return Status(Code::kNotFound, "no such channel");
  v.erase(it);
  return Status::Ok();
}

Status DmaEngine::ResetChannel(uint32_t id) {
  if (Status s = impl_->Mutable(); !s.ok()) return s;
  Impl::Channel* ch = impl_->Find(id);
  if (ch == nullptr) return Status(Code::kNotFound, "no such channel");
  RingHeader* h = ch->ring->header();
  ch->tail = h->head.load(std::memory_order_acquire);
  h->tail.store(ch->tail, std::memory_order_release);
  h->error.store(static_cast<uint32_t>(RingError::kNone), std::memory_order_release);
  ch->halted = false;
  ch->lookahead.Reset(ch->tail);
  return Status::Ok();
}

size_t DmaEngine::Poll() {
  return impl_->Poll();
}

Status DmaEngine::Start() {
  if (impl_->worker.joinable()) return Status(Code::kInvalidArgument, "already started");
  if (impl_->wake_fd < 0) return Status(Code::kIoError, "no eventfd");
  impl_->worker = std::thread([this] { impl_->WorkerLoop(); });
  return Status::Ok();
}

void DmaEngine::Stop() {
  impl_->StopWorker();
}

ChannelStats DmaEngine::stats(uint32_t channel) const {
  Impl::Channel* ch = impl_->Find(channel);
  return ch ? ch->stats : ChannelStats{};
}

bool DmaEngine::prefetch_active() const {
  return impl_->PrefetchNow();
}

uint64_t DmaEngine::prefetch_trials() const {
  return impl_->governor.trials();
}

uint64_t DmaEngine::batches_governed() const {
  return impl_->batches_by_plan[static_cast<size_t>(BatchPrefetch::kGovernor)];
}

const char* DmaEngine::backend_name() const {
  return impl_->backend->info().name;
}

}  // namespace opensrd::dma
