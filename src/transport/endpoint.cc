// Endpoint: demultiplexes datagrams to transport contexts by the context id in the header (not by
// address: paths and NATs change ports), runs the handshake and restart detection, and hands the
// application calls to the context that the (destination, SQ) pair selects.
#include <arpa/inet.h>
#include <sys/random.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstring>
#include <map>
#include <stdexcept>

#include "opensrd/transport.h"
#include "transport/context.h"
#include "transport/endpoint_state.h"
#include "transport/wire.h"

namespace opensrd {

std::string ToString(const NetAddr& a) {
  if (a.v6) {
    char buf[INET6_ADDRSTRLEN] = {};
    inet_ntop(AF_INET6, a.ip6.data(), buf, sizeof buf);
    return "[" + std::string(buf) + "]:" + std::to_string(a.port);
  }
  char buf[INET_ADDRSTRLEN] = {};
  const uint32_t be = htonl(a.ip);
  inet_ntop(AF_INET, &be, buf, sizeof buf);
  return std::string(buf) + ":" + std::to_string(a.port);
}

bool IsLoopback(const NetAddr& a) {
  if (!a.v6) return (a.ip >> 24) == 127;
  static constexpr std::array<uint8_t, 16> kLoop6{0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1};
  return a.ip6 == kLoop6;
}

Result<NetAddr> ParseNetAddr(const std::string& host_port) {
  const auto colon = host_port.rfind(':');
  if (colon == std::string::npos) {
    return Status(Code::kInvalidArgument, "address '" + host_port + "' is not HOST:PORT");
  }
  std::string host = host_port.substr(0, colon);
  const std::string port_s = host_port.substr(colon + 1);
  char* end = nullptr;
  const long port = std::strtol(port_s.c_str(), &end, 10);
  if (port_s.empty() || *end != '\0' || port < 0 || port > 65535) {
    return Status(Code::kInvalidArgument, "port '" + port_s + "' is not 0..65535");
  }
  NetAddr a;
  a.port = static_cast<uint16_t>(port);
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') {
    const std::string h6 = host.substr(1, host.size() - 2);
    if (inet_pton(AF_INET6, h6.c_str(), a.ip6.data()) != 1) {
      return Status(Code::kInvalidArgument, "host '" + h6 + "' is not an IPv6 address");
    }
    a.v6 = true;
    return a;
  }
  if (host.find(':') != std::string::npos) {
    return Status(Code::kInvalidArgument,
                  "address '" + host_port + "': write an IPv6 address as [ADDR]:PORT");
  }
  if (host == "localhost") host = "127.0.0.1";
  uint32_t be = 0;
  if (inet_pton(AF_INET, host.c_str(), &be) != 1) {
    return Status(Code::kInvalidArgument, "host '" + host + "' is not an IPv4 address");
  }
  a.ip = ntohl(be);
  return a;
}

const char* KeyModeName(KeyMode m) {
  switch (m) {
    case KeyMode::kNone:
      return "none";
    case KeyMode::kMac:
      return "mac";
    case KeyMode::kAead:
      return "aead";
  }
  return "?";
}

size_t MaxDatagramSize(const EndpointConfig& c) {
  return size_t{c.max_payload} + wire::kDataHeaderLen + wire::kCrcLen +
         (c.key_mode == KeyMode::kNone ? 0 : PacketProtection::kTrailerLen);
}

const char* PeerEventKindName(PeerEventKind k) {
  switch (k) {
    case PeerEventKind::kConnected:
      return "connected";
    case PeerEventKind::kRestarted:
      return "restarted";
    case PeerEventKind::kGone:
      return "gone";
  }
  return "?";
}

const char* PathStateName(PathState s) {
  return s == PathState::kActive ? "active" : "suspect";
}

namespace {
constexpr size_t kMaxPaths = kMaxPathsPerPeer;

// Identities must differ between processes that share a configuration (two default clients of
// one server would otherwise merge into one peer there), so they come from the kernel's CSPRNG.
// The simulator and tests pass `identity_seed` instead, which keeps their runs reproducible.
uint64_t RandomWord(Rng* seeded) {
  if (seeded != nullptr) return seeded->Next();
  uint64_t v = 0;
  uint8_t* p = reinterpret_cast<uint8_t*>(&v);
  size_t got = 0;
  while (got < sizeof v) {
    const ssize_t n = getrandom(p + got, sizeof v - got, 0);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) throw std::runtime_error(std::string("getrandom: ") + std::strerror(errno));
    got += static_cast<size_t>(n);
  }
  return v;
}

void ValidateConfig(const EndpointConfig& c) {
  auto fail = [](const std::string& what) {
    throw std::invalid_argument("EndpointConfig: " + what);
  };
  if (c.max_payload < 64 ||
      c.max_payload > wire::kMaxDatagram - wire::kDataHeaderLen - wire::kCrcLen)
    fail("max_payload must be 64.." + std::to_string(wire::kMaxDatagram - 56));
  if (c.window_packets < 64 || c.window_packets > (1u << 20) ||
      (c.window_packets & (c.window_packets - 1)) != 0)
    fail("window_packets must be a power of two in 64..2^20");
  if (c.contexts_per_peer == 0 || c.contexts_per_peer > 64) fail("contexts_per_peer must be 1..64");
  if (c.ack_every == 0) fail("ack_every must be >= 1");
  if (c.min_rto_us == 0 || c.min_rto_us > c.max_rto_us) fail("need 0 < min_rto_us <= max_rto_us");
  if (c.suspect_after_losses == 0) fail("suspect_after_losses must be >= 1");
  if (c.peer_timeout_us == 0) fail("peer_timeout_us must be > 0");
}
}  // namespace

class Endpoint::Impl {
 public:
  explicit Impl(const EndpointConfig& cfg) : sh_(cfg) {
    // (sh_.secrets is built from identity_seed and static_key_seed in EndpointShared.)
    ValidateConfig(cfg);
    Rng seeded(cfg.identity_seed);
    Rng* ids = cfg.identity_seed != 0 ? &seeded : nullptr;
    if (sh_.cfg.node_id == 0) sh_.cfg.node_id = RandomWord(ids) | 1;
    sh_.incarnation = cfg.incarnation;
    while (sh_.incarnation == 0) sh_.incarnation = static_cast<uint32_t>(RandomWord(ids));
  }

  EndpointShared sh_;
  std::vector<std::unique_ptr<Peer>> peers_;
  std::vector<std::unique_ptr<TransportContext>> ctxs_;  // context id = index + 1; null = free
  std::vector<uint32_t> free_ids_;
  size_t live_ = 0;
  std::map<uint64_t, PeerId> by_node_;
  // Replies the endpoint itself owes (RESET, RETRY, PATH_CHALLENGE, PATH_RESPONSE), encoded
  // when queued. Bounded: under a flood the excess is dropped, never queued without limit.
  struct ControlOut {
    uint16_t local_socket;
    NetAddr remote;
    uint8_t len;
    std::array<uint8_t, 64> bytes;
  };
  static constexpr size_t kMaxControl = 1024;
  std::deque<ControlOut> control_;
  std::vector<uint8_t> opened_;  // the datagram being handled, after the cluster key's check

  // Scheduling, so per-event cost does not grow with the number of contexts: a timer set ordered
  // by deadline (each context's NextTimeout, cached in timer_at_) and a ready list of contexts
  // that may have something to send (touched since they last had nothing).
  std::set<std::pair<Nanos, uint32_t>> timers_;
  std::vector<Nanos> timer_at_;  // by context id - 1; kNever: not in timers_
  std::deque<uint32_t> ready_;
  std::vector<uint8_t> in_ready_;  // by context id - 1

  // Queues a datagram built by `encode(common, buf)`; `trigger_len` is the size of the datagram
  // that provoked it: no reply is larger than its request (no amplification).
  template <typename Encode>
  bool QueueControl(Nanos now, uint16_t sock, const NetAddr& to, wire::Common c, size_t trigger_len,
                    Encode encode) {
    if (control_.size() >= kMaxControl) return false;
    ControlOut co{sock, to, 0, {}};
    c.tx_ts = static_cast<uint32_t>(now);
    const size_t n = encode(c, std::span<uint8_t>(co.bytes));
    if (n == 0 || n > trigger_len) return false;
    co.len = static_cast<uint8_t>(n);
    control_.push_back(co);
    return true;
  }

  // A context id is its slot (1-based, low bits) and how often the slot was used before (high
  // bits): ids are never reused within an incarnation, so a RESET token, which derives from the
  // id, belongs to one session only (a captured RESET of a reclaimed context could otherwise tear
  // down the next session that got the same id).
  static constexpr uint32_t kSlotBits = 20;
  static constexpr uint32_t kSlotMask = (1u << kSlotBits) - 1;
  static size_t SlotOf(uint32_t id) { return (id & kSlotMask) - 1; }
  // Room for one more context (about a million at once; beyond, slots would alias).
  bool ContextRoom() const { return ctxs_.size() < kSlotMask || !free_ids_.empty(); }

  TransportContext* FindContext(uint32_t id) {
    const uint32_t slot = id & kSlotMask;
    if (slot == 0 || slot > ctxs_.size()) return nullptr;
    TransportContext* c = ctxs_[slot - 1].get();
    return c != nullptr && c->local_id() == id ? c : nullptr;
  }

  // Earliest time the endpoint must act for `c`: its own timers, and reclaiming it when idle.
  Nanos Deadline(TransportContext& c) const {
    Nanos t = c.NextTimeout();
    const Nanos idle = sh_.t.idle_timeout;
    if (idle > 0 && c.peer().learns_paths && c.Idle()) t = std::min(t, c.last_heard() + idle);
    return t;
  }
  void Reschedule(TransportContext& c) {
    const size_t i = SlotOf(c.local_id());
    const Nanos t = Deadline(c);
    if (t == timer_at_[i]) return;
    if (timer_at_[i] != kNever) timers_.erase({timer_at_[i], c.local_id()});
    timer_at_[i] = t;
    if (t != kNever) timers_.insert({t, c.local_id()});
  }
  void MarkReady(TransportContext& c) {
    const size_t i = SlotOf(c.local_id());
    if (in_ready_[i]) return;
    in_ready_[i] = 1;
    ready_.push_back(c.local_id());
  }
  // Something happened to `c`: it may have something to send, and its timers may have moved.
  void Touch(TransportContext& c) {
    MarkReady(c);
    Reschedule(c);
  }
  // Peer-level events (a path's state or address, a restart) concern all of its contexts.
  void TouchPeer(Peer& peer) {
    for (uint32_t id : peer.contexts) Touch(*FindContext(id));
  }
  void Unschedule(uint32_t id) {
    const size_t i = SlotOf(id);
    if (timer_at_[i] != kNever) timers_.erase({timer_at_[i], id});
    timer_at_[i] = kNever;
    in_ready_[i] = 0;  // a stale entry in ready_ is skipped (its slot is null or reused)
  }

  Peer& NewPeer() {
    auto p = std::make_unique<Peer>();
    p->id = static_cast<PeerId>(peers_.size() + 1);
    peers_.push_back(std::move(p));
    return *peers_.back();
  }

  // A new context toward `peer`, placed in `slot` (or in the first free slot if `slot` < 0 and
  // one is free: a context the peer opened then also carries our sends, rather than us opening
  // a second one).
  TransportContext& NewContext(Peer& peer, int slot) {
    uint32_t id = 0;
    while (id == 0 && !free_ids_.empty()) {
      // A freed slot comes back under a new id (the next use count); a slot whose count would
      // wrap is retired for the rest of the incarnation (a few bytes, once per 4096 uses).
      const uint32_t old = free_ids_.back();
      free_ids_.pop_back();
      if ((old >> kSlotBits) != (~0u >> kSlotBits)) id = old + (1u << kSlotBits);
    }
    if (id == 0) {
      // Slots beyond kSlotMask would alias: the endpoint holds at most ~1M contexts at once.
      id = static_cast<uint32_t>(ctxs_.size() + 1);
      ctxs_.emplace_back();
      timer_at_.push_back(kNever);
      in_ready_.push_back(0);
    }
    ctxs_[SlotOf(id)] = std::make_unique<TransportContext>(sh_, peer, id);
    peer.contexts.push_back(id);
    if (peer.slots.empty()) peer.slots.assign(sh_.cfg.contexts_per_peer, 0);
    if (slot < 0) {
      auto free = std::find(peer.slots.begin(), peer.slots.end(), 0u);
      if (free != peer.slots.end()) *free = id;
    } else {
      peer.slots[static_cast<size_t>(slot)] = id;
    }
    ++live_;
    return *ctxs_[SlotOf(id)];
  }

  // Frees a context a peer opened toward us once it has been idle for idle_timeout_us, and the
  // peer with its last context. Contexts we opened stay: the application holds their peer id.
  bool MaybeReclaim(TransportContext& c, Nanos now) {
    const Nanos idle = sh_.t.idle_timeout;
    Peer& peer = c.peer();
    if (idle == 0 || !peer.learns_paths || !c.Idle() || now < c.last_heard() + idle) return false;
    const uint32_t id = c.local_id();
    auto& ids = peer.contexts;
    ids.erase(std::find(ids.begin(), ids.end(), id));
    std::replace(peer.slots.begin(), peer.slots.end(), id, 0u);
    Unschedule(id);
    free_ids_.push_back(id);
    ctxs_[SlotOf(id)].reset();
    --live_;
    ++sh_.stats.contexts_reclaimed;
    if (ids.empty()) {
      // Nothing left toward this peer: forget it. Its id is not reused; posting to it fails.
      sh_.NotePeerGone(peer, Code::kOk);
      by_node_.erase(peer.node_id);
      sh_.suspect_peers.erase(peer.id);
      peers_[peer.id - 1].reset();
      ++sh_.stats.peers_freed;
    }
    return true;
  }

  // Records (local socket, address) for `path_id` of an accepting peer, without checking: only
  // for addresses already proven (the HELLO that passed address validation, a path response).
  void LearnPath(Peer& peer, uint8_t path_id, uint16_t local_socket, const NetAddr& from) {
    if (!peer.learns_paths || path_id >= kMaxPaths) return;
    if (path_id >= peer.paths.size()) peer.paths.resize(path_id + 1, Path(sh_.t.initial_rtt));
    Path& p = peer.paths[path_id];
    if (p.known && !(p.spec.remote == from && p.spec.local_socket == local_socket)) {
      ++sh_.stats.path_migrations;
    }
    p.known = true;
    p.spec = {local_socket, from};
    p.stats.id = path_id;
    p.challenge_pending = false;
  }

  // The common header of a packet the endpoint sends itself within `ctx`'s session.
  wire::Common SessionCommon(TransportContext& ctx, wire::Type type, uint8_t path) const {
    wire::Common c;
    c.type = type;
    c.path_id = path;
    c.dst_ctx = ctx.remote_id();
    c.src_ctx = ctx.local_id();
    c.src_incarnation = sh_.incarnation;
    c.dst_incarnation = ctx.peer().remote_incarnation;
    return c;
  }

  // A packet of an established session arrived on `path_id` from (sock, from). If that is not
  // the path's validated address, the path does not move there until the peer answers a
  // challenge sent to the new address: a packet replayed from elsewhere cannot redirect it.
  void CheckPathAddress(Nanos now, TransportContext& ctx, uint8_t path_id, uint16_t sock,
                        const NetAddr& from, size_t trigger_len) {
    Peer& peer = ctx.peer();
    if (!peer.learns_paths || path_id >= kMaxPaths) return;
    if (path_id < peer.paths.size()) {
      const Path& p = peer.paths[path_id];
      if (p.known && p.spec.remote == from && p.spec.local_socket == sock) return;
    } else {
      peer.paths.resize(path_id + 1, Path(sh_.t.initial_rtt));
      peer.paths[path_id].stats.id = path_id;
    }
    Path& p = peer.paths[path_id];
    // One challenge in flight per path, re-sent at most every handshake retry interval.
    if (p.challenge_pending && p.challenge_addr == from && p.challenge_sock == sock &&
        now < p.challenge_sent + sh_.t.handshake_retry) {
      return;
    }
    const wire::Common c = SessionCommon(ctx, wire::Type::kPathChallenge, path_id);
    const uint64_t token = sh_.secrets.RandomToken();
    if (!QueueControl(now, sock, from, c, trigger_len,
                      [&](const wire::Common& cc, std::span<uint8_t> b) {
                        return wire::EncodePath(cc, {.token = token}, b);
                      })) {
      return;
    }
    p.challenge_pending = true;
    p.challenge_token = token;
    p.challenge_addr = from;
    p.challenge_sock = sock;
    p.challenge_sent = now;
    ++sh_.stats.path_challenges_sent;
  }

  void OnPathChallenge(Nanos now, TransportContext& ctx, uint16_t sock, const NetAddr& from,
                       const wire::Packet& p, size_t trigger_len) {
    // Answer from the path the challenge names, so the answer leaves from the address the
    // challenger wants proven. A path we have no address for: answer to where it came from.
    Peer& peer = ctx.peer();
    const uint8_t path = p.common.path_id;
    uint16_t out_sock = sock;
    NetAddr to = from;
    if (path < peer.paths.size() && peer.paths[path].known) {
      out_sock = peer.paths[path].spec.local_socket;
      to = peer.paths[path].spec.remote;
    }
    const wire::Common c = SessionCommon(ctx, wire::Type::kPathResponse, path);
    QueueControl(now, out_sock, to, c, trigger_len,
                 [&](const wire::Common& cc, std::span<uint8_t> b) {
                   return wire::EncodePath(cc, {.token = p.path.token}, b);
                 });
  }

  void OnPathResponse(TransportContext& ctx, uint16_t sock, const NetAddr& from,
                      const wire::Packet& p) {
    Peer& peer = ctx.peer();
    const uint8_t path = p.common.path_id;
    if (path >= peer.paths.size()) return;
    Path& pp = peer.paths[path];
    if (!pp.challenge_pending || pp.challenge_token != p.path.token ||
        !(pp.challenge_addr == from) || pp.challenge_sock != sock) {
      ++sh_.stats.forged_dropped;
      return;
    }
    LearnPath(peer, path, sock, from);
    ++sh_.stats.paths_validated;
  }

  void QueueReset(Nanos now, uint16_t local_socket, const NetAddr& from,
                  const wire::Common& offending, size_t trigger_len) {
    wire::Common c;
    c.type = wire::Type::kReset;
    c.dst_ctx = offending.src_ctx;
    c.src_ctx = offending.dst_ctx;
    c.src_incarnation = sh_.incarnation;
    c.dst_incarnation = offending.src_incarnation;
    c.path_id = offending.path_id;
    wire::ResetExt r{.addressed_incarnation = offending.dst_incarnation};
    // The token of the context the packet was addressed to, as we would have given it then:
    // derived from the static key, so this works for contexts we no longer have.
    sh_.secrets.ResetToken(offending.dst_incarnation, offending.dst_ctx, r.token);
    if (QueueControl(now, local_socket, from, c, trigger_len,
                     [&](const wire::Common& cc, std::span<uint8_t> b) {
                       return wire::EncodeReset(cc, r, b);
                     })) {
      ++sh_.stats.resets_sent;
    }
  }

  void QueueRetry(Nanos now, uint16_t sock, const NetAddr& from, const wire::Packet& p,
                  size_t trigger_len) {
    wire::Common c;
    c.type = wire::Type::kRetry;
    c.path_id = p.common.path_id;
    c.dst_ctx = p.common.src_ctx;
    c.dst_incarnation = p.common.src_incarnation;
    c.src_incarnation = sh_.incarnation;
    wire::RetryExt r;
    sh_.secrets.MintCookie(now, CookieFor(sock, from, p), r.cookie);
    if (QueueControl(now, sock, from, c, trigger_len,
                     [&](const wire::Common& cc, std::span<uint8_t> b) {
                       return wire::EncodeRetry(cc, r, b);
                     })) {
      ++sh_.stats.retries_sent;
    }
  }

  static Secrets::CookieInput CookieFor(uint16_t sock, const NetAddr& from, const wire::Packet& p) {
    return {.from = from,
            .local_socket = sock,
            .src_ctx = p.common.src_ctx,
            .src_incarnation = p.common.src_incarnation,
            .node_id = p.hello.node_id};
  }

  // The peer came back with a new incarnation (or forgot us): fail everything toward it.
  void RestartPeer(Peer& peer, Nanos now, TransportContext* except) {
    ++sh_.stats.peer_restarts;
    if (peer.announced_incarnation != 0) {
      peer.announced_incarnation = 0;
      sh_.PushPeerEvent(PeerEventKind::kRestarted, peer.id, Code::kPeerRestarted);
    }
    for (uint32_t id : peer.contexts) {
      TransportContext* c = FindContext(id);
      if (c == except) continue;
      if (c->state() != TransportContext::State::kIdle) c->Close(now, Code::kPeerRestarted);
      c->ForgetLastPartner();  // a new incarnation numbers its contexts and generations anew
    }
    peer.remote_incarnation = 0;
  }

  void OnHello(Nanos now, uint16_t sock, const NetAddr& from, const wire::Packet& p, size_t len) {
    const wire::Common& c = p.common;
    PeerId pid = 0;
    if (auto it = by_node_.find(p.hello.node_id); it != by_node_.end()) pid = it->second;

    // 1. A HELLO of a session we have (its partner context, same incarnation): a retransmission
    // or a newer generation. It must carry the partner's reset token; generations only move
    // forward (an older one is a replay or a straggler).
    if (pid != 0 && peers_[pid - 1]->remote_incarnation == c.src_incarnation) {
      Peer& peer = *peers_[pid - 1];
      for (uint32_t id : peer.contexts) {
        TransportContext* ctx = FindContext(id);
        if (ctx->remote_id() != c.src_ctx || ctx->state() == TransportContext::State::kIdle) {
          continue;
        }
        if (!ctx->PartnerTokenIs(p.hello.reset_token)) {
          ++sh_.stats.forged_dropped;
          return;
        }
        const int32_t d = static_cast<int32_t>(p.hello.generation - ctx->remote_generation());
        if (d < 0) {
          ++sh_.stats.stale_dropped;
          return;
        }
        if (d > 0) ctx->Close(now, Code::kPeerRestarted);  // the peer gave up on the old session
        ctx->OnHello(now, p);
        return TouchPeer(peer);
      }
    }

    // 2. Anything else creates state (a peer, a context, a session, a new incarnation): only for
    // an address that proved it receives what we send there (the cookie of a RETRY).
    if (sh_.cfg.validate_addresses &&
        !sh_.secrets.CheckCookie(now, CookieFor(sock, from, p), p.hello.cookie)) {
      QueueRetry(now, sock, from, p, len);
      return;
    }
    if (pid == 0) {
      // A peer we declared ourselves (AddPeer) opening toward us at the same time.
      for (auto& peer : peers_) {
        if (!peer || peer->node_id != 0) continue;
        for (auto& path : peer->paths) {
          if (path.known && path.spec.remote == from) pid = peer->id;
        }
      }
    }
    if (pid != 0) {
      Peer& peer = *peers_[pid - 1];
      if (peer.remote_incarnation != 0 && peer.remote_incarnation != c.src_incarnation) {
        // A restart of a peer we talk to. Only from an address the peer already used: anyone
        // can claim a node id, and this tears down every session with it.
        bool known_address = false;
        for (const Path& path : peer.paths) {
          known_address |= path.known && path.spec.remote == from;
        }
        if (!known_address) {
          ++sh_.stats.forged_dropped;
          return;
        }
        RestartPeer(peer, now, nullptr);
      }
    }
    Peer& peer = pid ? *peers_[pid - 1] : NewPeer();
    if (!pid) peer.learns_paths = true;
    peer.node_id = p.hello.node_id;
    by_node_[peer.node_id] = peer.id;
    LearnPath(peer, c.path_id, sock, from);
    peer.remote_incarnation = c.src_incarnation;

    TransportContext* ctx = nullptr;
    for (uint32_t id : peer.contexts) {
      TransportContext* cand = FindContext(id);
      if (cand->last_partner() == c.src_ctx &&
          static_cast<int32_t>(p.hello.generation - cand->last_partner_generation()) <= 0) {
        ++sh_.stats.stale_dropped;  // a session with that context already ended at or after it
        return;
      }
    }
    // Adopt a context of ours that has no partner yet (simultaneous open), else make one.
    for (uint32_t id : peer.contexts) {
      TransportContext* cand = FindContext(id);
      if (!ctx && cand->remote_id() == 0) ctx = cand;
    }
    if (!ctx) {
      if (!ContextRoom()) return;  // the peer's HELLO times out; it retries later
      ctx = &NewContext(peer, -1);
    }
    ctx->OnHello(now, p);
    TouchPeer(peer);
  }

  void OnRetry(Nanos now, const wire::Packet& p) {
    TransportContext* ctx = FindContext(p.common.dst_ctx);
    if (!ctx || p.common.dst_incarnation != sh_.incarnation ||
        ctx->state() != TransportContext::State::kConnecting) {
      ++sh_.stats.stale_dropped;
      return;
    }
    ctx->OnRetry(now, p);
    Touch(*ctx);
  }

  void OnHelloAck(Nanos now, uint16_t sock, const NetAddr& from, const wire::Packet& p) {
    const wire::Common& c = p.common;
    TransportContext* ctx = FindContext(c.dst_ctx);
    if (!ctx || c.dst_incarnation != sh_.incarnation) {
      ++sh_.stats.stale_dropped;
      return;
    }
    if (p.hello.echo_generation != ctx->generation() ||
        ctx->state() != TransportContext::State::kConnecting) {
      ++sh_.stats.stale_dropped;  // answers a handshake of an earlier session, or a duplicate
      return;
    }
    Peer& peer = ctx->peer();
    if (peer.remote_incarnation != 0 && peer.remote_incarnation != c.src_incarnation) {
      RestartPeer(peer, now, ctx);
    }
    peer.remote_incarnation = c.src_incarnation;
    if (peer.node_id == 0) {
      peer.node_id = p.hello.node_id;
      by_node_[peer.node_id] = peer.id;
    }
    LearnPath(peer, c.path_id, sock, from);
    ctx->OnHelloAck(now, p);
    TouchPeer(peer);
  }

  void OnReset(Nanos now, const wire::Packet& p) {
    ++sh_.stats.resets_received;
    const wire::Common& c = p.common;
    TransportContext* ctx = FindContext(c.dst_ctx);
    if (!ctx || c.dst_incarnation != sh_.incarnation) return;
    Peer& peer = ctx->peer();
    // Only a reset provoked by a packet addressed to the incarnation we talk to now counts;
    // others answer packets that were still in flight from before a restart.
    if (peer.remote_incarnation == 0 || p.reset.addressed_incarnation != peer.remote_incarnation) {
      return;
    }
    // Believed only with the reset token the partner gave us for the context it resets.
    if (ctx->remote_id() != c.src_ctx || !ctx->PartnerTokenIs(p.reset.token)) {
      ++sh_.stats.forged_dropped;
      return;
    }
    if (peer.remote_incarnation != c.src_incarnation) {
      RestartPeer(peer, now, nullptr);
    } else if (ctx->state() != TransportContext::State::kIdle && ctx->remote_id() == c.src_ctx) {
      ctx->Close(now, Code::kPeerRestarted);  // same incarnation, but it dropped this context
    }
    TouchPeer(peer);
  }

  void HandleDatagram(Nanos now, uint16_t sock, const NetAddr& from,
                      std::span<const uint8_t> bytes) {
    ++sh_.stats.datagrams_in;
    if (sh_.protection.mode() != KeyMode::kNone) {
      // Checked (and decrypted) before the parser sees a byte: a datagram without the cluster
      // key's tag has no effect at all.
      if (opened_.size() < bytes.size()) opened_.resize(bytes.size());
      const size_t n = sh_.protection.Open(bytes, opened_);
      if (n == 0) {
        ++sh_.stats.auth_failed;
        return;
      }
      bytes = {opened_.data(), n};
    }
    wire::Packet p;
    const wire::ParseError err = wire::Parse(bytes, p);
    if (err == wire::ParseError::kBadChecksum) {
      ++sh_.stats.corrupt_dropped;
      return;
    }
    if (err != wire::ParseError::kNone) {
      ++sh_.stats.malformed_dropped;
      return;
    }
    const wire::Common& c = p.common;
    switch (c.type) {
      case wire::Type::kHello:
        return OnHello(now, sock, from, p, bytes.size());
      case wire::Type::kHelloAck:
        return OnHelloAck(now, sock, from, p);
      case wire::Type::kReset:
        return OnReset(now, p);
      case wire::Type::kRetry:
        return OnRetry(now, p);
      default:
        break;
    }
    TransportContext* ctx = FindContext(c.dst_ctx);
    if (!ctx || c.dst_incarnation != sh_.incarnation) {
      ++sh_.stats.stale_dropped;  // meant for a context we do not have, or our previous life
      QueueReset(now, sock, from, c, bytes.size());
      return;
    }
    Peer& peer = ctx->peer();
    if (c.src_incarnation != peer.remote_incarnation || c.src_ctx != ctx->remote_id()) {
      ++sh_.stats.stale_dropped;
      if (ctx->state() == TransportContext::State::kIdle) {
        QueueReset(now, sock, from, c, bytes.size());
      }
      return;
    }
    if (c.type == wire::Type::kPathResponse) {
      OnPathResponse(*ctx, sock, from, p);
      return TouchPeer(peer);
    }
    CheckPathAddress(now, *ctx, c.path_id, sock, from, bytes.size());
    ctx->NotePeerAlive(now);
    switch (c.type) {
      case wire::Type::kPathChallenge:
        OnPathChallenge(now, *ctx, sock, from, p, bytes.size());
        break;
      case wire::Type::kData:
        ctx->OnData(now, p);
        break;
      case wire::Type::kAck:
        ctx->OnAck(now, p);
        break;
      case wire::Type::kNack:
        ctx->OnNack(now, p);
        break;
      case wire::Type::kProbe:
        ctx->OnProbe(now, p);
        break;
      default:
        break;
    }
    // A packet can change path state the peer's other contexts share.
    TouchPeer(peer);
  }

  // Probes of suspect paths. Only peers with a suspect path are visited (sh_.suspect_peers).
  bool PollProbe(Nanos now, std::span<uint8_t> buf, Transmit& out) {
    for (auto it = sh_.suspect_peers.begin(); it != sh_.suspect_peers.end();) {
      Peer* peer = peers_[*it - 1].get();
      bool any = false;
      for (size_t i = 0; peer && i < peer->paths.size(); ++i) {
        Path& path = peer->paths[i];
        if (path.state != PathState::kSuspect) continue;
        any = true;
        if (path.probe_due > now) continue;
        path.probe_due = now + path.probe_interval;
        path.probe_interval = std::min(path.probe_interval * 2, sh_.t.max_rto);
        for (uint32_t id : peer->contexts) {
          if (FindContext(id)->EmitProbe(now, static_cast<int>(i), buf, out)) return true;
        }
      }
      it = any ? std::next(it) : sh_.suspect_peers.erase(it);
    }
    return false;
  }

  bool PollTransmit(Nanos now, std::span<uint8_t> buf, Transmit& out) {
    if (buf.size() < MaxDatagramSize(sh_.cfg)) return false;
    const size_t overhead = sh_.protection.overhead();
    if (!PollInner(now, buf.first(buf.size() - overhead), out)) return false;
    if (overhead > 0) {
      out.len = sh_.protection.Seal(buf, out.len);
      if (out.len == 0) return false;
    }
    return true;
  }

  bool PollInner(Nanos now, std::span<uint8_t> buf, Transmit& out) {
    if (!control_.empty()) {
      const ControlOut& co = control_.front();
      std::memcpy(buf.data(), co.bytes.data(), co.len);
      out = {co.local_socket, co.remote, co.len};
      control_.pop_front();
      ++sh_.stats.datagrams_out;
      return true;
    }
    if (PollProbe(now, buf, out)) {
      ++sh_.stats.datagrams_out;
      return true;
    }
    // Contexts that may have something to send, round robin: one that sent goes to the back,
    // one with nothing to send leaves the list until something touches it again (its timers
    // are rescheduled, so pacing and retransmission deadlines bring it back).
    while (!ready_.empty()) {
      const uint32_t id = ready_.front();
      ready_.pop_front();
      TransportContext* c = FindContext(id);
      if (c == nullptr || !in_ready_[SlotOf(id)]) continue;  // reclaimed since it was queued
      if (c->PollTransmit(now, buf, out)) {
        ready_.push_back(id);
        ++sh_.stats.datagrams_out;
        Reschedule(*c);
        return true;
      }
      in_ready_[SlotOf(id)] = 0;
      Reschedule(*c);
    }
    return false;
  }

  Nanos NextTimeout() const {
    if (!control_.empty() || !ready_.empty()) return 0;
    Nanos t = timers_.empty() ? kNever : timers_.begin()->first;
    for (PeerId id : sh_.suspect_peers) {
      const Peer* peer = peers_[id - 1].get();
      if (peer == nullptr) continue;
      for (const auto& path : peer->paths) {
        if (path.state == PathState::kSuspect) t = std::min(t, path.probe_due);
      }
    }
    return t;
  }

  void HandleTimeout(Nanos now) {
    // Only contexts whose deadline has come. They are collected first: a context may still be
    // due after its HandleTimeout (something to send now), and must not be run twice.
    due_.clear();
    for (auto it = timers_.begin(); it != timers_.end() && it->first <= now;) {
      due_.push_back(it->second);
      timer_at_[SlotOf(it->second)] = kNever;
      it = timers_.erase(it);
    }
    for (uint32_t id : due_) {
      TransportContext* c = FindContext(id);
      if (c == nullptr) continue;
      c->HandleTimeout(now);
      if (MaybeReclaim(*c, now)) continue;
      Touch(*c);
    }
  }
  std::vector<uint32_t> due_;
};

Endpoint::Endpoint(const EndpointConfig& config) : impl_(std::make_unique<Impl>(config)) {}
Endpoint::~Endpoint() = default;

const EndpointConfig& Endpoint::config() const {
  return impl_->sh_.cfg;
}
uint32_t Endpoint::incarnation() const {
  return impl_->sh_.incarnation;
}

CqId Endpoint::CreateCompletionQueue() {
  impl_->sh_.cqs.emplace_back();
  return static_cast<CqId>(impl_->sh_.cqs.size() - 1);
}

Result<SqId> Endpoint::CreateSendQueue(const SqOptions& options) {
  auto& sh = impl_->sh_;
  if (options.cq >= sh.cqs.size()) return Status(Code::kNotFound, "no such completion queue");
  if (options.depth == 0) return Status(Code::kInvalidArgument, "send queue depth must be > 0");
  if (sh.sqs.size() >= 0xFFFF) return Status(Code::kResourceExhausted, "too many send queues");
  sh.sqs.push_back(SendQueueState{.options = options});
  return static_cast<SqId>(sh.sqs.size() - 1);
}

Result<PeerId> Endpoint::AddPeer(const std::vector<PathSpec>& paths, Nanos now) {
  if (paths.empty() || paths.size() > kMaxPaths) {
    return Status(Code::kInvalidArgument,
                  "a peer needs 1.." + std::to_string(kMaxPaths) + " paths");
  }
  Peer& peer = impl_->NewPeer();
  for (size_t i = 0; i < paths.size(); ++i) {
    Path p(impl_->sh_.t.initial_rtt);
    p.spec = paths[i];
    p.known = true;
    p.stats.id = static_cast<uint32_t>(i);
    peer.paths.push_back(p);
  }
  for (uint32_t i = 0; i < impl_->sh_.cfg.contexts_per_peer; ++i) {
    if (!impl_->ContextRoom()) break;  // PostSend opens the rest later, or says why it cannot
    TransportContext& c = impl_->NewContext(peer, static_cast<int>(i));
    c.Connect(now);
    impl_->Touch(c);
  }
  return peer.id;
}

Status Endpoint::PostSend(SqId sq, PeerId peer, std::span<const Sge> sgl, uint64_t tag, Nanos now) {
  auto& sh = impl_->sh_;
  if (sq >= sh.sqs.size()) return Status(Code::kNotFound, "no such send queue");
  if (peer == 0 || peer > impl_->peers_.size() || !impl_->peers_[peer - 1]) {
    return Status(Code::kNotFound, "no such peer (never added, or forgotten after being idle)");
  }
  Peer& p = *impl_->peers_[peer - 1];
  if (p.slots.empty()) p.slots.assign(sh.cfg.contexts_per_peer, 0);
  const size_t slot = sq % sh.cfg.contexts_per_peer;
  TransportContext* ctx = impl_->FindContext(p.slots[slot]);
  if (ctx == nullptr) {
    if (p.paths.empty()) return Status(Code::kNotFound, "peer has no known path");
    if (!impl_->ContextRoom()) return Status(Code::kResourceExhausted, "too many contexts");
    ctx = &impl_->NewContext(p, static_cast<int>(slot));  // reclaimed or never opened
  }
  const Status st = ctx->Post(sq, sgl, tag, now);
  impl_->Touch(*ctx);
  return st;
}

void Endpoint::SetPlacementHook(PlacementHook hook) {
  impl_->sh_.placement = std::move(hook);
}

Status Endpoint::PostRecv(CqId cq, void* buffer, size_t len, uint64_t tag) {
  auto& sh = impl_->sh_;
  if (cq >= sh.cqs.size()) return Status(Code::kNotFound, "no such completion queue");
  if (buffer == nullptr && len > 0) return Status(Code::kInvalidArgument, "null receive buffer");
  sh.ReturnRecv(buffer);
  sh.recvs.push_back({cq, buffer, len, tag});
  return Status::Ok();
}

size_t Endpoint::PollCompletions(CqId cq, std::span<Completion> out) {
  auto& sh = impl_->sh_;
  if (cq >= sh.cqs.size()) return 0;
  auto& q = sh.cqs[cq];
  size_t n = 0;
  while (n < out.size() && !q.empty()) {
    out[n++] = q.front();
    q.pop_front();
  }
  return n;
}

size_t Endpoint::PollPeerEvents(std::span<PeerEvent> out) {
  auto& q = impl_->sh_.peer_events;
  size_t n = 0;
  while (n < out.size() && !q.empty()) {
    out[n++] = q.front();
    q.pop_front();
  }
  return n;
}

void Endpoint::HandleDatagram(Nanos now, uint16_t local_socket, const NetAddr& from,
                              std::span<const uint8_t> bytes) {
  impl_->HandleDatagram(now, local_socket, from, bytes);
}

bool Endpoint::PollTransmit(Nanos now, std::span<uint8_t> buf, Transmit& out) {
  return impl_->PollTransmit(now, buf, out);
}

Nanos Endpoint::NextTimeout() const {
  return impl_->NextTimeout();
}

void Endpoint::HandleTimeout(Nanos now) {
  impl_->HandleTimeout(now);
}

bool Endpoint::Busy() const {
  return impl_->sh_.busy_contexts > 0;
}

PayloadCopyStats Endpoint::copy_stats() const {
  return impl_->sh_.copier.stats();
}

EndpointStats Endpoint::stats() const {
  EndpointStats s = impl_->sh_.stats;
  double cwnd = 0;
  for (const auto& c : impl_->ctxs_) {
    if (!c) continue;
    cwnd += c->cwnd();
    const ContextStats cs = c->stats();
    s.inflight_bytes += cs.inflight_bytes;
    s.pacing_rate_bytes_per_s += cs.pacing_rate_bytes_per_s;
  }
  s.cwnd_bytes = static_cast<uint64_t>(cwnd);
  s.contexts_live = impl_->live_;
  size_t mem = sizeof(Impl) + impl_->ctxs_.capacity() * sizeof(void*) +
               impl_->peers_.capacity() * sizeof(void*) + impl_->by_node_.size() * 48 +
               impl_->control_.size() * sizeof(Impl::ControlOut);
  for (const auto& c : impl_->ctxs_) {
    if (c) mem += c->MemoryBytes();
  }
  for (const auto& p : impl_->peers_) {
    if (!p) continue;
    ++s.peers_live;
    mem += sizeof(Peer) + p->paths.capacity() * sizeof(Path) +
           (p->contexts.capacity() + p->slots.capacity()) * sizeof(uint32_t);
  }
  s.memory_bytes = mem;
  return s;
}

std::vector<PathStats> Endpoint::path_stats(PeerId peer) const {
  std::vector<PathStats> out;
  if (peer == 0 || peer > impl_->peers_.size() || !impl_->peers_[peer - 1]) return out;
  const Peer& p = *impl_->peers_[peer - 1];
  for (size_t i = 0; i < p.paths.size(); ++i) {
    PathStats s = p.paths[i].stats;
    s.id = static_cast<uint32_t>(i);
    s.spec = p.paths[i].spec;
    s.state = p.paths[i].state;
    s.srtt_us = p.paths[i].rtt.srtt() / 1000;  // the core keeps nanoseconds
    s.min_rtt_us = p.paths[i].rtt.min() / 1000;
    out.push_back(s);
  }
  return out;
}

std::vector<ContextStats> Endpoint::context_stats(PeerId peer) const {
  std::vector<ContextStats> out;
  if (peer == 0 || peer > impl_->peers_.size() || !impl_->peers_[peer - 1]) return out;
  for (uint32_t id : impl_->peers_[peer - 1]->contexts) {
    const TransportContext* c = impl_->FindContext(id);
    if (c) out.push_back(c->stats());
  }
  return out;
}

std::vector<PeerId> Endpoint::peers() const {
  std::vector<PeerId> out;
  for (const auto& p : impl_->peers_) {
    if (p) out.push_back(p->id);
  }
  return out;
}

}  // namespace opensrd
