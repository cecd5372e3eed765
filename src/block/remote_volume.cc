#include "block/remote_volume.h"

#include <sodium.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <mutex>
#include <thread>
#include <unordered_map>
#include <unordered_set>

#include "block/protocol.h"
#include "common/log.h"
#include "transport/udp_endpoint.h"

namespace opensrd::block {
namespace {

// Send tags: a request's pointer, or an attach message's pointer with this bit set.
constexpr uint64_t kAttachTag = 1;
// Between a bridge's refusal of a re-attach for a passing cause and the next attach.
constexpr Nanos kAttachRetryDelay = 100'000'000;

Nanos UsNs(Micros us) {
  return UsToNs(us);
}

}  // namespace

const char* VolumeStateName(VolumeState s) {
  switch (s) {
    case VolumeState::kOk:
      return "ok";
    case VolumeState::kImpaired:
      return "impaired";
    case VolumeState::kIoDisabled:
      return "io-disabled";
  }
  return "?";
}

class RemoteVolume::Impl {
 public:
  struct Req {
    IoRequest io;
    IoCallback done;
    uint64_t id = 0;
    uint64_t seq = 0;  // WRITE: per-session sequence number
    uint8_t hdr[proto::kIoHeaderLen];
    int sends = 0;         // PostSends the transport has not completed: it may read our buffers
    bool on_wire = false;  // sent under the current attachment, no reply yet
    bool replied = false;
    bool sent_once = false;
    Nanos sent_at = 0;  // the latest send
    Status result;
  };
  struct AttachMsg {
    uint8_t bytes[proto::kAttachFixedLen + proto::kMaxName + proto::kMaxToken];
    size_t len = 0;
  };

  ~Impl() {
    stop_.store(true);
    Wake();
    if (thread_.joinable()) thread_.join();
    for (AttachMsg* m : attach_msgs_) delete m;  // sends the transport never completed
    for (uint8_t* b : bufs_) std::free(b);
    if (efd_ >= 0) close(efd_);
  }

  Status Init(const RemoteVolumeOptions& o) {
    opts_ = o;
    if (sodium_init() < 0) return Status(Code::kIoError, "libsodium failed to initialise");
    if (o.bridges.empty()) return Status(Code::kInvalidArgument, "no bridge given");
    if (o.volume.empty() || o.volume.size() > proto::kMaxName) {
      return Status(Code::kInvalidArgument, "volume name must be 1-255 bytes");
    }
    if (o.token.size() > proto::kMaxToken) {
      return Status(Code::kInvalidArgument, "token longer than 255 bytes");
    }
    efd_ = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (efd_ < 0) return Status(Code::kIoError, "eventfd failed");
    UdpEndpointOptions uo;
    uo.endpoint = o.endpoint;
    uo.endpoint.max_message =
        std::max<uint32_t>(uo.endpoint.max_message, proto::kIoHeaderLen + o.max_transfer);
    NetAddr local = o.local;
    local.port = 0;
    if (local.ip == 0 && !local.v6 && o.bridges[0].v6) local.v6 = true;
    uo.local.assign(o.paths, local);
    uo.pcap = o.pcap;
    if (o.local.port != 0) {
      for (uint32_t i = 0; i < o.paths; ++i) uo.local[i].port = o.local.port + i;
    }
    Result<std::unique_ptr<UdpEndpoint>> udp = UdpEndpoint::Create(uo);
    if (!udp.ok()) return udp.status();
    udp_ = std::move(udp.value());
    if (Status s = udp_->AddWakeFd(efd_); !s.ok()) return s;
    Endpoint& ep = udp_->endpoint();
    cq_ = ep.CreateCompletionQueue();
    Result<SqId> sq = ep.CreateSendQueue({.cq = cq_, .depth = 65535});
    if (!sq.ok()) return sq.status();
    sq_ = *sq;
    for (const NetAddr& b : o.bridges) {
      std::vector<PathSpec> paths;
      for (uint32_t i = 0; i < o.paths; ++i) paths.push_back({static_cast<uint16_t>(i), b});
      Result<PeerId> p = ep.AddPeer(paths, udp_->NowNs());
      if (!p.ok()) return p.status();
      peers_.push_back(*p);
    }
    recv_len_ = std::max<size_t>(proto::kIoReplyLen + o.max_transfer, proto::kMaxControlMessage);
    bufs_.resize(o.max_inflight + 16);
    for (size_t i = 0; i < bufs_.size(); ++i) {
      bufs_[i] = static_cast<uint8_t*>(std::malloc(recv_len_));  // touched only when used
      if (bufs_[i] == nullptr) return Status(Code::kResourceExhausted, "receive buffers");
      (void)ep.PostRecv(cq_, bufs_[i], recv_len_, i);
    }
    randombytes_buf(&session_, sizeof session_);
    request_timeout_ =
        UsNs(o.request_timeout_us ? o.request_timeout_us : 2 * o.endpoint.peer_timeout_us);
    open_started_ = udp_->NowNs();
    thread_ = std::thread([this] { Loop(); });
    std::unique_lock<std::mutex> lock(mu_);
    cv_.wait(lock, [&] { return first_attach_done_; });
    return first_attach_status_;
  }

  VolumeInfo Info() const {
    std::lock_guard<std::mutex> lock(mu_);
    return info_;
  }
  VolumeState state() const {
    std::lock_guard<std::mutex> lock(mu_);
    return state_;
  }
  RemoteVolumeStats stats() const {
    std::lock_guard<std::mutex> lock(mu_);
    return stats_;
  }
  void SetInfoListener(std::function<void(const VolumeInfo&)> l) {
    std::lock_guard<std::mutex> lock(mu_);
    listener_ = std::move(l);
  }

  void Submit(const IoRequest& r, IoCallback done) {
    Status s = ValidateRequest(Info(), r);
    if (s.ok() && r.op == Op::kWriteZeroes && (r.flags & kFastZero) && !Info().can_fast_zero) {
      s = Status(Code::kInvalidArgument, "fast zero not supported");
    }
    {
      std::lock_guard<std::mutex> lock(mu_);
      ++stats_.requests;
      if (s.ok() && state_ == VolumeState::kIoDisabled) {
        s = Status(Code::kIoError, "volume is io-disabled: " + disabled_reason_);
      }
      if (s.ok()) {
        auto* q = new Req();
        q->io = r;
        q->done = std::move(done);
        inbox_.push_back(q);
      } else {
        ++stats_.errors;
      }
    }
    if (!s.ok()) {
      done(s);  // rejected before it was queued: complete on the caller's thread
      return;
    }
    Wake();
  }

 private:
  void Wake() {
    const uint64_t one = 1;
    [[maybe_unused]] ssize_t n = write(efd_, &one, sizeof one);
  }
  Endpoint& ep() { return udp_->endpoint(); }
  Nanos Now() const { return udp_->NowNs(); }

  void Loop() {
    while (!stop_.load(std::memory_order_relaxed)) {
      if (!udp_->Poll(20'000).ok()) break;
      uint64_t v;
      while (read(efd_, &v, sizeof v) > 0) {
      }
      TakeInbox();
      Drain();
      Tick();
      Issue();
      if (opts_.on_poll) opts_.on_poll(*udp_);
    }
    FailAll(Status(Code::kCancelled, "volume closed"));
    std::deque<Req*> left;
    {
      std::lock_guard<std::mutex> lock(mu_);
      left.swap(inbox_);
    }
    for (Req* r : left) {
      r->done(Status(Code::kCancelled, "volume closed"));
      delete r;
    }
    SignalOpen(Status(Code::kCancelled, "volume closed"));
  }

  void TakeInbox() {
    std::deque<Req*> in;
    {
      std::lock_guard<std::mutex> lock(mu_);
      in.swap(inbox_);
    }
    for (Req* r : in) {
      r->id = next_id_++;
      if (r->io.op == Op::kWrite) r->seq = ++next_seq_;
      outstanding_[r->id] = r;
      to_send_.push_back(r);
    }
  }

  // Sends queued requests while attached and under the in-flight limit.
  void Issue() {
    if (!attached_) return;
    while (!to_send_.empty() && on_wire_ < opts_.max_inflight) {
      Req* r = to_send_.front();
      to_send_.pop_front();
      if (r->replied || r->on_wire) continue;  // answered under an earlier attachment
      proto::EncodeIo({.handle = handle_,
                       .request_id = r->id,
                       .offset = r->io.offset,
                       .length = r->io.length,
                       .op = r->io.op,
                       .flags = r->io.flags,
                       .sequence = r->seq},
                      r->hdr);
      Sge sgl[2] = {{r->hdr, sizeof r->hdr}, {r->io.data, r->io.length}};
      const size_t n = r->io.op == Op::kWrite ? 2 : 1;
      Status s = ep().PostSend(sq_, peers_[cur_], {sgl, n}, reinterpret_cast<uint64_t>(r), Now());
      if (!s.ok()) {
        to_send_.push_front(r);
        Impair(false, "send refused");
        return;
      }
      ++r->sends;
      r->on_wire = true;
      r->sent_once = true;
      r->sent_at = Now();
      ++on_wire_;
    }
  }

  void Drain() {
    Completion c[32];
    size_t n;
    while ((n = ep().PollCompletions(cq_, c)) > 0) {
      for (size_t k = 0; k < n; ++k) {
        if (c[k].kind == CompletionKind::kSend) {
          OnSendDone(c[k]);
        } else {
          OnMessage(c[k]);
          (void)ep().PostRecv(cq_, bufs_[c[k].tag], recv_len_, c[k].tag);
        }
      }
    }
    PeerEvent ev[16];
    while ((n = ep().PollPeerEvents(ev)) > 0) {
      for (size_t k = 0; k < n; ++k) {
        if (ev[k].kind != PeerEventKind::kConnected && ev[k].peer == peers_[cur_] && attached_) {
          Impair(ev[k].kind == PeerEventKind::kRestarted, "transport: peer lost or restarted");
        }
      }
    }
  }

  void OnSendDone(const Completion& c) {
    if (c.tag & kAttachTag) {
      auto* m = reinterpret_cast<AttachMsg*>(c.tag & ~kAttachTag);
      attach_msgs_.erase(m);
      delete m;
      if (c.status != Code::kOk && attach_pending_) {
        attach_pending_ = false;  // the bridge did not take it: try again (or the next one)
        log::Get("adapter").info("volume {}: attach {} not delivered to bridge {} ({})",
                                 opts_.volume, attach_id_, ToString(opts_.bridges[cur_]),
                                 CodeName(c.status));
        NextBridge(c.status == Code::kPeerRestarted);
      }
      return;
    }
    Req* r = reinterpret_cast<Req*>(c.tag);
    --r->sends;
    if (c.status != Code::kOk && !r->replied) {
      // It may not have arrived: send it again once attached again (the bridge absorbs a
      // WRITE it already applied).
      if (r->on_wire) {
        r->on_wire = false;
        --on_wire_;
        to_send_.push_front(r);
      }
      Impair(c.status == Code::kPeerRestarted, "a request's send failed");
    }
    MaybeFinish(r);
  }

  void OnMessage(const Completion& c) {
    if (c.status != Code::kOk) return;
    std::span<const uint8_t> msg(bufs_[c.tag], c.length);
    Result<proto::Type> t = proto::PeekType(msg);
    if (!t.ok()) return;
    if (*t == proto::Type::kIoReply) {
      std::span<const uint8_t> data;
      Result<proto::IoReply> rep = proto::ParseIoReply(msg, &data);
      if (rep.ok()) OnIoReply(c.peer, *rep, data);
    } else if (*t == proto::Type::kAttachReply) {
      Result<proto::AttachReply> rep = proto::ParseAttachReply(msg);
      if (rep.ok()) OnAttachReply(*rep);
    } else if (*t == proto::Type::kInfo) {
      Result<proto::Info> info = proto::ParseInfo(msg);
      if (info.ok() && attached_ && info->handle == handle_) OnInfo(info->size);
    }
  }

  void OnIoReply(PeerId from, const proto::IoReply& rep, std::span<const uint8_t> data) {
    auto it = outstanding_.find(rep.request_id);
    if (it == outstanding_.end()) return;  // already answered (a replay's second reply)
    Req* r = it->second;
    if (r->replied) return;
    // An error from a bridge the volume has left (it froze, the volume moved on, another bridge
    // fenced it, and it woke up to fail what it held) says nothing about the request, which is
    // being replayed on the current bridge: only that bridge's answer counts. A success from
    // the old bridge is a real completion and is kept.
    if (rep.status != proto::WireStatus::kOk && from != peers_[cur_]) return;
    // Not on the wire: an answer to an earlier send, and the request already waits in to_send_
    // for its replay (Impair or a failed send put it there).
    const bool queued = !r->on_wire;
    if (r->on_wire) {
      r->on_wire = false;
      --on_wire_;
    }
    if (rep.status == proto::WireStatus::kBadHandle) {
      // The bridge restarted and forgot us, or lost the volume to another bridge (fenced):
      // attach again (it takes the volume back), then resend. Queued once only: a second entry
      // would outlive the request.
      if (!queued) to_send_.push_front(r);
      Impair(true, "the bridge no longer knows the attachment (restarted or fenced)");
      return;
    }
    if (queued) {
      // Answered before its replay went out: it must not stay queued once it is freed.
      if (auto q = std::find(to_send_.begin(), to_send_.end(), r); q != to_send_.end()) {
        to_send_.erase(q);
      }
    }
    r->replied = true;
    r->result = proto::ToStatus(rep.status, "");
    if (r->result.ok() && r->io.op == Op::kRead) {
      if (data.size() != r->io.length) {
        r->result = Status(Code::kIoError, "bridge returned a short read");
      } else {
        std::memcpy(r->io.data, data.data(), data.size());
      }
    }
    MaybeFinish(r);
  }

  // A request completes when its reply is in and the transport no longer reads its buffers.
  void MaybeFinish(Req* r) {
    if (!r->replied || r->sends > 0) return;
    outstanding_.erase(r->id);
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (r->result.ok()) {
        ++stats_.completed_ok;
        if (r->io.op == Op::kRead) {
          ++stats_.reads;
          stats_.bytes_read += r->io.length;
        } else if (r->io.op == Op::kWrite) {
          ++stats_.writes;
          stats_.bytes_written += r->io.length;
        }
      } else {
        ++stats_.errors;
      }
    }
    r->done(r->result);
    delete r;
  }

  void FailAll(const Status& s) {
    std::vector<Req*> all;
    for (auto& [id, r] : outstanding_) {
      if (!r->replied) all.push_back(r);
    }
    to_send_.clear();
    on_wire_ = 0;
    for (Req* r : all) {
      r->replied = true;
      r->on_wire = false;
      r->result = s;
      r->sends = stop_.load() ? 0 : r->sends;  // closing: the transport goes with us
      MaybeFinish(r);
    }
  }

  // The attachment is lost: requests on the wire go back to the queue; attach again.
  void Impair(bool same_bridge, const char* why) {
    // Every request the lost bridge held fails on its own; only the first of those failures
    // may choose the next bridge (each used to move on again, flip-flopping between bridges).
    const bool lost_now = attached_;
    const size_t lost_from = cur_;
    if (attached_) {
      attached_ = false;
      handle_ = 0;
      for (auto& [id, r] : outstanding_) {
        if (r->on_wire) {
          r->on_wire = false;
          to_send_.push_back(r);
        }
      }
      on_wire_ = 0;
      std::sort(to_send_.begin(), to_send_.end(), [](Req* a, Req* b) { return a->id < b->id; });
      if (impaired_since_ == 0) impaired_since_ = Now();
      std::lock_guard<std::mutex> lock(mu_);
      if (state_ == VolumeState::kOk) state_ = VolumeState::kImpaired;
    }
    if (lost_now && !attach_pending_) NextBridge(same_bridge);
    if (lost_now) {
      log::Get("adapter").info("volume {}: lost bridge {} ({}); attaching to {}", opts_.volume,
                               ToString(opts_.bridges[lost_from]), why,
                               ToString(opts_.bridges[cur_]));
    }
  }

  void NextBridge(bool same_bridge) {
    if (!same_bridge && peers_.size() > 1) {
      cur_ = (cur_ + 1) % peers_.size();
      std::lock_guard<std::mutex> lock(mu_);
      ++stats_.failovers;
    }
    next_attach_at_ = Now();
  }

  void StartAttach() {
    auto* m = new AttachMsg;
    attach_id_ = next_id_++;
    Result<size_t> len = proto::EncodeAttach({.request_id = attach_id_,
                                              .session = session_,
                                              .volume = opts_.volume,
                                              .token = opts_.token},
                                             m->bytes);
    m->len = len.ok() ? *len : 0;
    Sge sge{m->bytes, m->len};
    Status s = ep().PostSend(sq_, peers_[cur_], {&sge, 1},
                             reinterpret_cast<uint64_t>(m) | kAttachTag, Now());
    if (!s.ok()) {
      delete m;
      next_attach_at_ = Now() + UsNs(100'000);
      return;
    }
    attach_msgs_.insert(m);
    attach_pending_ = true;
    attach_sent_at_ = Now();
  }

  void OnAttachReply(const proto::AttachReply& rep) {
    if (!attach_pending_ || rep.request_id != attach_id_) return;
    attach_pending_ = false;
    if (rep.status != proto::WireStatus::kOk) {
      const Status s = proto::ToStatus(rep.status, rep.message);
      if (!first_attach_done_) {
        SignalOpen(s);
        stop_.store(true);
        return;
      }
      if (rep.status == proto::WireStatus::kDenied || rep.status == proto::WireStatus::kNoVolume) {
        // The volume's configuration changed under us: waiting will not mend that.
        Disable("the bridge refused to attach again: " + s.message());
        next_attach_at_ = Now() + UsToNs(opts_.endpoint.peer_timeout_us);
        return;
      }
      // A bridge that cannot serve the volume just now (a fenced RBD bridge still reconnecting
      // to its cluster, say): the volume stays impaired, not io-disabled (that is for
      // reconnect_timeout_us without a bridge); requests wait and the next bridge is tried.
      log::Get("adapter").warn("volume {}: bridge {} refused to attach again: {}", opts_.volume,
                               ToString(opts_.bridges[cur_]), s.message());
      NextBridge(false);
      next_attach_at_ = Now() + kAttachRetryDelay;
      return;
    }
    attached_ = true;
    handle_ = rep.handle;
    if (first_attach_done_) {
      log::Get("adapter").info("volume {}: attached to bridge {} (attach {})", opts_.volume,
                               ToString(opts_.bridges[cur_]), attach_id_);
    }
    size_t replay = 0;
    for (Req* r : to_send_) replay += r->sent_once && !r->replied;
    {
      std::lock_guard<std::mutex> lock(mu_);
      const uint64_t old_size = info_.size_bytes;
      info_ = rep.info;
      state_ = VolumeState::kOk;
      ++stats_.attaches;
      stats_.replayed += replay;
      if (first_attach_done_ && old_size != info_.size_bytes && listener_) listener_(info_);
    }
    impaired_since_ = 0;
    SignalOpen(Status::Ok());
  }

  void OnInfo(uint64_t size) {
    // The listener runs under the lock, so SetInfoListener waits for a call in progress: the
    // adapter destroyed its NVMe controller while a copy of the old listener was still updating
    // it (a use after free TSan caught in storage_nvme at exit).
    std::lock_guard<std::mutex> lock(mu_);
    info_.size_bytes = size;
    ++stats_.resizes_seen;
    if (listener_) listener_(info_);
  }

  void Disable(const std::string& why) {
    {
      std::lock_guard<std::mutex> lock(mu_);
      state_ = VolumeState::kIoDisabled;
      disabled_reason_ = why;
    }
    FailAll(Status(Code::kIoError, why));
    impaired_since_ = 0;
  }

  void Tick() {
    const Nanos now = Now();
    if (!first_attach_done_ && now > open_started_ + UsNs(opts_.attach_timeout_us)) {
      SignalOpen(Status(
          Code::kTimedOut,
          "no bridge answered within " + std::to_string(opts_.attach_timeout_us / 1000) + " ms"));
      stop_.store(true);
      return;
    }
    if (impaired_since_ != 0 && now > impaired_since_ + UsNs(opts_.reconnect_timeout_us)) {
      Disable("no bridge for " + std::to_string(opts_.reconnect_timeout_us / 1000) + " ms");
    }
    if (now >= next_stall_check_) {
      next_stall_check_ = now + UsNs(10'000);
      CheckStalls(now);
    }
    if (!attached_ && !attach_pending_ && now >= next_attach_at_) StartAttach();
  }

  // Delivered but never answered: the bridge died after taking it (a transport with nothing
  // else in flight would not notice). Attach again; a restarted bridge is found that way.
  void CheckStalls(Nanos now) {
    if (attach_pending_ && now > attach_sent_at_ + request_timeout_) {
      attach_pending_ = false;
      log::Get("adapter").info("volume {}: attach {} unanswered by bridge {}", opts_.volume,
                               attach_id_, ToString(opts_.bridges[cur_]));
      NextBridge(false);
      return;
    }
    if (!attached_) return;
    for (const auto& [id, r] : outstanding_) {
      if (r->on_wire && now > r->sent_at + request_timeout_) {
        Impair(true, "a request stayed unanswered");
        return;
      }
    }
  }

  void SignalOpen(const Status& s) {
    std::lock_guard<std::mutex> lock(mu_);
    if (first_attach_done_) return;
    first_attach_done_ = true;
    first_attach_status_ = s;
    cv_.notify_all();
  }

  RemoteVolumeOptions opts_;
  // Shared with submitting threads (mu_).
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::deque<Req*> inbox_;
  VolumeInfo info_;
  VolumeState state_ = VolumeState::kOk;
  std::string disabled_reason_;
  RemoteVolumeStats stats_;
  std::function<void(const VolumeInfo&)> listener_;
  bool first_attach_done_ = false;
  Status first_attach_status_;
  int efd_ = -1;
  std::atomic<bool> stop_{false};
  std::thread thread_;
  // The volume's thread only.
  std::unique_ptr<UdpEndpoint> udp_;
  CqId cq_ = 0;
  SqId sq_ = 0;
  std::vector<PeerId> peers_;
  size_t cur_ = 0;
  std::vector<uint8_t*> bufs_;
  size_t recv_len_ = 0;
  uint64_t session_ = 0;
  uint64_t next_id_ = 1;
  uint64_t next_seq_ = 0;
  uint32_t handle_ = 0;
  bool attached_ = false;
  bool attach_pending_ = false;
  uint64_t attach_id_ = 0;
  Nanos attach_sent_at_ = 0;
  Nanos next_attach_at_ = 0;
  Nanos impaired_since_ = 0;
  Nanos request_timeout_ = 0;
  Nanos next_stall_check_ = 0;
  Nanos open_started_ = 0;
  uint32_t on_wire_ = 0;
  std::unordered_map<uint64_t, Req*> outstanding_;
  std::unordered_set<AttachMsg*> attach_msgs_;  // posted, send not completed
  std::deque<Req*> to_send_;
};

Result<std::unique_ptr<RemoteVolume>> RemoteVolume::Open(const RemoteVolumeOptions& options) {
  auto impl = std::make_unique<Impl>();
  if (Status s = impl->Init(options); !s.ok()) return s;
  return std::unique_ptr<RemoteVolume>(new RemoteVolume(std::move(impl)));
}

RemoteVolume::RemoteVolume(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
RemoteVolume::~RemoteVolume() = default;
VolumeInfo RemoteVolume::Info() const {
  return impl_->Info();
}
void RemoteVolume::Submit(const IoRequest& r, IoCallback done) {
  impl_->Submit(r, std::move(done));
}
VolumeState RemoteVolume::state() const {
  return impl_->state();
}
RemoteVolumeStats RemoteVolume::stats() const {
  return impl_->stats();
}
void RemoteVolume::SetInfoListener(std::function<void(const VolumeInfo&)> l) {
  impl_->SetInfoListener(std::move(l));
}

Result<uint64_t> ResizeRemoteVolume(const NetAddr& bridge, const std::string& volume,
                                    const std::string& token, uint64_t new_size,
                                    const EndpointConfig& endpoint, Micros timeout_us) {
  UdpEndpointOptions uo;
  uo.endpoint = endpoint;
  NetAddr local;
  local.v6 = bridge.v6;
  uo.local = {local};
  Result<std::unique_ptr<UdpEndpoint>> udp = UdpEndpoint::Create(uo);
  if (!udp.ok()) return udp.status();
  UdpEndpoint& u = *udp.value();
  Endpoint& ep = u.endpoint();
  const CqId cq = ep.CreateCompletionQueue();
  Result<SqId> sq = ep.CreateSendQueue({.cq = cq});
  if (!sq.ok()) return sq.status();
  Result<PeerId> peer = ep.AddPeer({{0, bridge}}, u.NowNs());
  if (!peer.ok()) return peer.status();
  std::vector<uint8_t> msg(proto::kResizeFixedLen + proto::kMaxName + proto::kMaxToken);
  Result<size_t> len = proto::EncodeResize(
      {.request_id = 1, .new_size = new_size, .volume = volume, .token = token}, msg);
  if (!len.ok()) return len.status();
  std::vector<uint8_t> reply(proto::kMaxControlMessage);
  (void)ep.PostRecv(cq, reply.data(), reply.size(), 0);
  Sge sge{msg.data(), *len};
  if (Status s = ep.PostSend(*sq, *peer, {&sge, 1}, 0, u.NowNs()); !s.ok()) return s;
  const Micros deadline = u.Now() + timeout_us;
  bool sent = false;
  while (u.Now() < deadline) {
    if (Result<size_t> r = u.Poll(10'000); !r.ok()) return r.status();
    Completion c;
    while (ep.PollCompletions(cq, {&c, 1}) == 1) {
      if (c.kind == CompletionKind::kSend) {
        if (c.status != Code::kOk) {
          return Status(c.status, "bridge " + ToString(bridge) + " did not answer");
        }
        sent = true;
        continue;
      }
      if (c.status != Code::kOk) continue;
      Result<proto::ResizeReply> rep = proto::ParseResizeReply({reply.data(), c.length});
      if (!rep.ok()) return rep.status();
      if (rep->status != proto::WireStatus::kOk) return proto::ToStatus(rep->status, rep->message);
      return rep->size;
    }
  }
  return Status(Code::kTimedOut, sent ? "no reply to the resize" : "bridge did not answer");
}

}  // namespace opensrd::block
