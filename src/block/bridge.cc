#include "block/bridge.h"

#include "common/log.h"

#include <poll.h>
#include <sodium.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <unordered_map>
#include <unordered_set>

#include "block/backend.h"
#include "block/protocol.h"
#include "transport/udp_endpoint.h"

namespace opensrd::block {
namespace {

constexpr size_t kAlign = 4096;
// Write sequence numbers remembered per adapter session, and sessions remembered: enough to
// absorb a reconnecting adapter's replay of everything it had in flight.
constexpr size_t kDedupWindow = 8192;
constexpr size_t kMaxSessions = 1024;
constexpr size_t kMaxAttachmentsPerPeer = 256;
// An attach that had to take a volume over from another bridge (an RBD lock break) is logged.
constexpr auto kSlowAttach = std::chrono::milliseconds(5);

size_t RoundUp(size_t n) {
  return (n + kAlign - 1) / kAlign * kAlign;
}

}  // namespace

class Bridge::Impl {
 public:
  struct Volume {
    VolumeSpec spec;
    std::unique_ptr<PolledDevice> dev;
  };
  struct Attachment {
    PeerId peer = 0;
    size_t volume = 0;
    uint64_t session = 0;
    uint64_t incarnation = 0;  // the device's when it was made (PolledDevice::incarnation)
  };
  // A posted receive buffer: `msg` sits kAlign - kIoHeaderLen bytes into an aligned chunk, so
  // the data of a WRITE that fills it starts on a 4 KiB boundary.
  struct RecvBuf {
    uint8_t* chunk = nullptr;
    uint8_t* msg = nullptr;
  };
  // An outgoing message: header bytes, and for a READ reply the data it read.
  struct Reply {
    uint8_t hdr[proto::kAttachReplyFixedLen + proto::kMaxReplyMessage];
    size_t hdr_len = 0;
    uint8_t* data = nullptr;  // aligned, owned
    uint32_t data_len = 0;
    ~Reply() { std::free(data); }
  };
  struct Dedup {
    std::unordered_set<uint64_t> done;
    std::deque<uint64_t> order;
  };

  ~Impl() {
    // Requests still at a device complete first (their callbacks use this object), then the
    // replies the transport never finished sending are freed.
    for (Volume& v : vols_) {
      for (int i = 0; i < 5000 && v.dev->in_flight() > 0; ++i) {
        pollfd p{v.dev->event_fd(), POLLIN, 0};
        poll(&p, 1, 1);
        v.dev->Reap();
      }
      v.dev->Reap();
    }
    for (Reply* r : replies_) delete r;
    for (RecvBuf& b : bufs_) std::free(b.chunk);
  }

  Status Init(const BridgeOptions& o) {
    opts_ = o;
    if (sodium_init() < 0) return Status(Code::kIoError, "libsodium failed to initialise");
    if (o.volumes.empty()) return Status(Code::kInvalidArgument, "the bridge needs a --volume");
    std::unordered_set<std::string> names;
    for (const VolumeSpec& v : o.volumes) {
      if (!names.insert(v.name).second) {
        return Status(Code::kInvalidArgument, "volume '" + v.name + "' given twice");
      }
      Result<std::unique_ptr<PolledDevice>> dev =
          o.open_device ? o.open_device(v) : OpenBackend(v, o.direct);
      if (!dev.ok()) {
        return Status(dev.status().code(), "volume '" + v.name + "': " + dev.status().message());
      }
      if (!o.quiet) {
        log::Get("bridge").info("volume {} = {}{}", v.name, (*dev)->Describe(),
                                v.token.empty() ? ", no token: any adapter may attach" : "");
      }
      vols_.push_back({v, std::move(dev.value())});
    }
    UdpEndpointOptions uo;
    uo.endpoint = o.endpoint;
    uo.endpoint.max_message =
        std::max<uint32_t>(uo.endpoint.max_message, proto::kIoHeaderLen + o.max_transfer);
    uo.local = o.bind;
    uo.max_path_id = o.paths;
    uo.pcap = o.pcap;
    // A WRITE keeps its receive buffer until the disk is done: one busy adapter may hold at
    // most half of them, so the others always find one.
    if (uo.endpoint.recv_quota_per_peer == 0) {
      uo.endpoint.recv_quota_per_peer = std::max<uint32_t>(1, o.recv_buffers / 2);
    }
    Result<std::unique_ptr<UdpEndpoint>> udp = UdpEndpoint::Create(uo);
    if (!udp.ok()) return udp.status();
    udp_ = std::move(udp.value());
    for (Volume& v : vols_) {
      if (Status s = udp_->AddWakeFd(v.dev->event_fd()); !s.ok()) return s;
    }
    Endpoint& ep = udp_->endpoint();
    cq_ = ep.CreateCompletionQueue();
    Result<SqId> sq = ep.CreateSendQueue({.cq = cq_, .depth = 65535});
    if (!sq.ok()) return sq.status();
    sq_ = *sq;
    recv_len_ = std::max<size_t>(proto::kIoHeaderLen + o.max_transfer, proto::kMaxControlMessage);
    bufs_.resize(o.recv_buffers);
    for (size_t i = 0; i < bufs_.size(); ++i) {
      // The chunk's pages are touched only when a message fills them.
      bufs_[i].chunk =
          static_cast<uint8_t*>(std::aligned_alloc(kAlign, RoundUp(kAlign + recv_len_)));
      if (bufs_[i].chunk == nullptr) return Status(Code::kResourceExhausted, "receive buffers");
      bufs_[i].msg = bufs_[i].chunk + kAlign - proto::kIoHeaderLen;
      Repost(i);
    }
    return Status::Ok();
  }

  Status Run() {
    while (!stop_.load(std::memory_order_relaxed)) {
      Result<size_t> r = udp_->Poll(20'000);  // wakes for datagrams, timers and device eventfds
      if (!r.ok()) return r.status();
      for (Volume& v : vols_) v.dev->Reap();
      Drain();
      if (opts_.on_poll) opts_.on_poll(*udp_);
    }
    return Status::Ok();
  }

  void Stop() { stop_.store(true); }
  BridgeStats stats() const { return stats_; }
  NetAddr local_address(size_t i) const { return udp_->local_address(i); }

 private:
  Endpoint& ep() { return udp_->endpoint(); }

  void Repost(size_t i) { (void)ep().PostRecv(cq_, bufs_[i].msg, recv_len_, i); }

  void Drain() {
    Completion c[32];
    size_t n;
    while ((n = ep().PollCompletions(cq_, c)) > 0) {
      for (size_t k = 0; k < n; ++k) {
        if (c[k].kind == CompletionKind::kSend) {
          auto* r = reinterpret_cast<Reply*>(c[k].tag);
          replies_.erase(r);
          delete r;
        } else {
          OnMessage(c[k]);
        }
      }
    }
    PeerEvent ev[16];
    while ((n = ep().PollPeerEvents(ev)) > 0) {
      for (size_t k = 0; k < n; ++k) {
        if (ev[k].kind != PeerEventKind::kConnected) DropPeer(ev[k].peer);
      }
    }
  }

  void DropPeer(PeerId peer) {
    for (auto it = attached_.begin(); it != attached_.end();) {
      if (it->second.peer == peer) {
        it = attached_.erase(it);
        ++stats_.peers_dropped;
      } else {
        ++it;
      }
    }
    per_peer_.erase(peer);
  }

  void Send(PeerId peer, Reply* r) {
    Sge sgl[2] = {{r->hdr, r->hdr_len}, {r->data, r->data_len}};
    const size_t n = r->data_len > 0 ? 2 : 1;
    Status s = ep().PostSend(sq_, peer, {sgl, n}, reinterpret_cast<uint64_t>(r), udp_->NowNs());
    if (!s.ok()) {
      delete r;  // the peer is gone: nobody to answer
      return;
    }
    replies_.insert(r);
  }

  void OnMessage(const Completion& c) {
    const size_t idx = c.tag;
    if (c.status != Code::kOk) {
      Repost(idx);
      return;
    }
    std::span<const uint8_t> msg(bufs_[idx].msg, c.length);
    Result<proto::Type> t = proto::PeekType(msg);
    if (!t.ok()) {
      ++stats_.malformed;
      Repost(idx);
      return;
    }
    switch (*t) {
      case proto::Type::kIo:
        OnIo(c.peer, idx, msg);  // reposts when the request no longer needs the buffer
        return;
      case proto::Type::kAttach:
        OnAttach(c.peer, msg);
        break;
      case proto::Type::kResize:
        OnResize(c.peer, msg);
        break;
      default:
        ++stats_.malformed;  // replies and notices are not for a bridge
        break;
    }
    Repost(idx);
  }

  // Token check in constant time; an empty configured token admits everyone.
  static bool TokenOk(const VolumeSpec& v, const std::string& presented) {
    if (v.token.empty()) return true;
    if (presented.size() != v.token.size()) return false;
    return sodium_memcmp(presented.data(), v.token.data(), v.token.size()) == 0;
  }

  // Finds the volume and checks the token; on failure fills `status` and `why`.
  Volume* Authorize(const std::string& name, const std::string& token, proto::WireStatus& status,
                    std::string& why) {
    for (Volume& v : vols_) {
      if (v.spec.name != name) continue;
      if (TokenOk(v.spec, token)) return &v;
      status = proto::WireStatus::kDenied;
      why = "wrong token for volume '" + name + "'";
      return nullptr;
    }
    status = proto::WireStatus::kNoVolume;
    why = "no volume named '" + name + "'";
    return nullptr;
  }

  void OnAttach(PeerId peer, std::span<const uint8_t> msg) {
    Result<proto::Attach> a = proto::ParseAttach(msg);
    if (!a.ok()) {
      ++stats_.malformed;
      return;
    }
    proto::AttachReply rep{.request_id = a->request_id};
    Volume* v = Authorize(a->volume, a->token, rep.status, rep.message);
    if (v != nullptr && per_peer_[peer] >= kMaxAttachmentsPerPeer) {
      v = nullptr;
      rep.status = proto::WireStatus::kNoSpace;
      rep.message = "too many attachments from one adapter";
    }
    if (v != nullptr) {
      // A shared backend (RBD) makes this bridge the volume's writer here, fencing another.
      const auto t0 = std::chrono::steady_clock::now();
      if (Status s = v->dev->OnAttach({.session = a->session, .request_id = a->request_id});
          !s.ok()) {
        v = nullptr;
        rep.status = proto::FromCode(s.code());
        rep.message = s.message();
      } else if (!opts_.quiet && std::chrono::steady_clock::now() - t0 > kSlowAttach) {
        log::Get("bridge").info("volume {} taken over in {} ms", a->volume,
                                std::chrono::duration_cast<std::chrono::milliseconds>(
                                    std::chrono::steady_clock::now() - t0)
                                    .count());
      }
    }
    if (v == nullptr) {
      ++stats_.attach_denied;
      // One line per refused ATTACH, rate-limited: anyone can send them.
      uint64_t unlogged = 0;
      if (!opts_.quiet && attach_log_.Allow(udp_->Now(), unlogged)) {
        log::Get("bridge").warn("attach refused volume='{}' peer={} reason=\"{}\" unlogged={}",
                                a->volume, peer, rep.message, unlogged);
      }
    } else {
      const size_t vi = static_cast<size_t>(v - vols_.data());
      const uint64_t incarnation = v->dev->incarnation();
      uint32_t h = 0;
      for (auto it = attached_.begin(); it != attached_.end();) {  // the same adapter again
        const Attachment& att = it->second;
        if (att.peer != peer || att.session != a->session || att.volume != vi) {
          ++it;
        } else if (att.incarnation == incarnation) {
          h = (it++)->first;
        } else {  // from before a fence: void (see OnIo)
          --per_peer_[peer];
          it = attached_.erase(it);
        }
      }
      if (h == 0) {
        while (h == 0 || attached_.count(h)) h = randombytes_random();
        attached_[h] = {peer, vi, a->session, incarnation};
        ++per_peer_[peer];
      }
      rep.handle = h;
      if (!opts_.quiet) {
        log::Get("bridge").info("volume {} attached: peer={} session={:016x} attach={}", a->volume,
                                peer, a->session, a->request_id);
      }
      rep.info = v->dev->Info();
      rep.info.max_transfer = std::min(rep.info.max_transfer, opts_.max_transfer);
      ++stats_.attaches;
    }
    auto* r = new Reply;
    Result<size_t> len = proto::EncodeAttachReply(rep, r->hdr);
    r->hdr_len = len.ok() ? *len : 0;
    Send(peer, r);
  }

  void OnResize(PeerId peer, std::span<const uint8_t> msg) {
    Result<proto::Resize> rz = proto::ParseResize(msg);
    if (!rz.ok()) {
      ++stats_.malformed;
      return;
    }
    proto::ResizeReply rep{.request_id = rz->request_id};
    Volume* v = Authorize(rz->volume, rz->token, rep.status, rep.message);
    if (v != nullptr) {
      Status s = v->dev->Resize(rz->new_size);
      rep.status = proto::FromCode(s.code());
      rep.message = s.message();
      rep.size = v->dev->Info().size_bytes;
      if (s.ok()) {
        ++stats_.resizes;
        Announce(static_cast<size_t>(v - vols_.data()), rep.size);
      }
    }
    auto* r = new Reply;
    Result<size_t> len = proto::EncodeResizeReply(rep, r->hdr);
    r->hdr_len = len.ok() ? *len : 0;
    Send(peer, r);
  }

  // Tells every adapter attached to `volume` its new size.
  void Announce(size_t volume, uint64_t size) {
    for (const auto& [handle, att] : attached_) {
      if (att.volume != volume) continue;
      auto* r = new Reply;
      proto::EncodeInfo({.handle = handle, .size = size},
                        std::span<uint8_t, proto::kInfoLen>(r->hdr, proto::kInfoLen));
      r->hdr_len = proto::kInfoLen;
      Send(att.peer, r);
    }
  }

  void ReplyIo(PeerId peer, uint32_t handle, uint64_t id, proto::WireStatus st, uint8_t* data,
               uint32_t len) {
    auto* r = new Reply;
    // Only a READ that succeeded carries data; an error frees the buffer it would have sent.
    r->data = st == proto::WireStatus::kOk ? data : nullptr;
    r->data_len = r->data != nullptr ? len : 0;
    if (r->data == nullptr) std::free(data);
    proto::EncodeIoReply({.handle = handle, .request_id = id, .status = st, .length = r->data_len},
                         std::span<uint8_t, proto::kIoReplyLen>(r->hdr, proto::kIoReplyLen));
    r->hdr_len = proto::kIoReplyLen;
    if (st != proto::WireStatus::kOk) ++stats_.errors;
    Send(peer, r);
  }

  bool SeenWrite(uint64_t session, uint64_t seq) {
    auto it = dedup_.find(session);
    return it != dedup_.end() && it->second.done.count(seq) > 0;
  }

  void RememberWrite(uint64_t session, uint64_t seq) {
    if (dedup_.size() >= kMaxSessions && !dedup_.count(session)) dedup_.erase(dedup_.begin());
    Dedup& d = dedup_[session];
    if (!d.done.insert(seq).second) return;
    d.order.push_back(seq);
    if (d.order.size() > kDedupWindow) {
      d.done.erase(d.order.front());
      d.order.pop_front();
    }
  }

  void OnIo(PeerId peer, size_t idx, std::span<const uint8_t> msg) {
    std::span<const uint8_t> data;
    Result<proto::IoHeader> h = proto::ParseIo(msg, &data);
    if (!h.ok()) {
      ++stats_.malformed;
      // The prefix parsed (PeekType), so the id is where it always is: answer it.
      if (msg.size() >= 16) {
        uint64_t id = 0;
        for (int i = 8; i < 16; ++i) id = id << 8 | msg[i];
        ReplyIo(peer, 0, id, proto::WireStatus::kMalformed, nullptr, 0);
      }
      Repost(idx);
      return;
    }
    auto it = attached_.find(h->handle);
    if (it == attached_.end() || it->second.peer != peer) {
      ReplyIo(peer, h->handle, h->request_id, proto::WireStatus::kBadHandle, nullptr, 0);
      Repost(idx);
      return;
    }
    const Attachment att = it->second;
    if (att.incarnation != vols_[att.volume].dev->incarnation()) {
      // Made before this bridge was fenced and reconnected: a request sent then (and delivered
      // only now) is void here; the adapter attaches again if it still wants this bridge.
      if (--per_peer_[peer] == 0) per_peer_.erase(peer);
      attached_.erase(it);
      ReplyIo(peer, h->handle, h->request_id, proto::WireStatus::kBadHandle, nullptr, 0);
      Repost(idx);
      return;
    }
    if (h->op == Op::kWrite && h->sequence != 0 && SeenWrite(att.session, h->sequence)) {
      ++stats_.replays_absorbed;
      ReplyIo(peer, h->handle, h->request_id, proto::WireStatus::kOk, nullptr, 0);
      Repost(idx);
      return;
    }
    IoRequest r{h->op, h->flags, h->offset, h->length, nullptr};
    uint8_t* read_buf = nullptr;
    if (h->op == Op::kRead) {
      if (h->length > opts_.max_transfer) {
        ReplyIo(peer, h->handle, h->request_id, proto::WireStatus::kInvalid, nullptr, 0);
        Repost(idx);
        return;
      }
      read_buf = static_cast<uint8_t*>(std::aligned_alloc(kAlign, RoundUp(h->length + 1)));
      r.data = read_buf;
    } else if (h->op == Op::kWrite) {
      r.data = const_cast<uint8_t*>(data.data());  // the device only reads a WRITE's buffer
    }
    const bool holds_buffer = h->op == Op::kWrite;
    if (!holds_buffer) Repost(idx);
    Count(*h);
    const proto::IoHeader hdr = *h;
    PolledDevice* dev = vols_[att.volume].dev.get();
    dev->Submit(
        r, [this, peer, hdr, idx, read_buf, holds_buffer, dev, session = att.session](Status s) {
          if (holds_buffer) Repost(idx);
          if (s.ok() && hdr.op == Op::kWrite && hdr.sequence != 0)
            RememberWrite(session, hdr.sequence);
          proto::WireStatus st = proto::FromCode(s.code());
          if (!s.ok() && dev->fenced()) {
            // Another bridge took the volume: not an answer for the client, whose adapter attaches
            // again (here, taking the volume back, or elsewhere) and resends.
            st = proto::WireStatus::kBadHandle;
            ++stats_.fenced_replies;
          }
          ReplyIo(peer, hdr.handle, hdr.request_id, st, read_buf, hdr.length);
        });
  }

  void Count(const proto::IoHeader& h) {
    switch (h.op) {
      case Op::kRead:
        ++stats_.reads;
        stats_.bytes_read += h.length;
        break;
      case Op::kWrite:
        ++stats_.writes;
        stats_.bytes_written += h.length;
        break;
      case Op::kFlush:
        ++stats_.flushes;
        break;
      case Op::kDiscard:
        ++stats_.discards;
        break;
      case Op::kWriteZeroes:
        ++stats_.write_zeroes;
        break;
    }
  }

  BridgeOptions opts_;
  std::unique_ptr<UdpEndpoint> udp_;
  log::RateLimit attach_log_{10, 10};
  CqId cq_ = 0;
  SqId sq_ = 0;
  size_t recv_len_ = 0;
  std::vector<Volume> vols_;
  std::vector<RecvBuf> bufs_;
  std::unordered_map<uint32_t, Attachment> attached_;
  std::unordered_set<Reply*> replies_;  // posted, send not completed
  std::unordered_map<PeerId, size_t> per_peer_;
  std::unordered_map<uint64_t, Dedup> dedup_;
  std::atomic<bool> stop_{false};
  BridgeStats stats_;
};

Result<std::unique_ptr<Bridge>> Bridge::Create(const BridgeOptions& options) {
  auto impl = std::make_unique<Impl>();
  if (Status s = impl->Init(options); !s.ok()) return s;
  return std::unique_ptr<Bridge>(new Bridge(std::move(impl)));
}

Bridge::Bridge(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Bridge::~Bridge() = default;
Status Bridge::Run() {
  return impl_->Run();
}
void Bridge::Stop() {
  impl_->Stop();
}
BridgeStats Bridge::stats() const {
  return impl_->stats();
}
NetAddr Bridge::local_address(size_t i) const {
  return impl_->local_address(i);
}

}  // namespace opensrd::block
