// NbdServer: the epoll shell (see nbd_server.h for why one loop thread).
#include "block/nbd/nbd_server.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <mutex>
#include <unordered_map>
#include <unordered_set>
#include <vector>

namespace opensrd::block::nbd {
namespace {

constexpr size_t kInputBuffer = 256 * 1024;
constexpr int kMaxReadRounds = 16;  // per wake-up, so one busy client cannot starve the others
constexpr size_t kMaxIov = 64;

std::string Errno(const std::string& what) {
  return what + ": " + std::strerror(errno);
}

}  // namespace

class NbdServer::Loop {
 public:
  Loop(BlockDevice& device, NbdExportConfig config, int listen_fd, std::vector<WatchFd> watch)
      : device_(device),
        config_(std::move(config)),
        listen_fd_(listen_fd),
        watch_(std::move(watch)) {}
  ~Loop() {
    if (epfd_ >= 0) close(epfd_);
    if (efd_ >= 0) close(efd_);
    if (listen_fd_ >= 0) close(listen_fd_);
  }

  Status Init() {
    epfd_ = epoll_create1(EPOLL_CLOEXEC);
    efd_ = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (epfd_ < 0 || efd_ < 0) return Status(Code::kIoError, Errno("epoll/eventfd"));
    epoll_event ev{};
    ev.events = EPOLLIN;
    ev.data.u64 = kListenKey;
    if (epoll_ctl(epfd_, EPOLL_CTL_ADD, listen_fd_, &ev) != 0) {
      return Status(Code::kIoError, Errno("epoll_ctl listen"));
    }
    ev.data.u64 = kWakeKey;
    if (epoll_ctl(epfd_, EPOLL_CTL_ADD, efd_, &ev) != 0) {
      return Status(Code::kIoError, Errno("epoll_ctl eventfd"));
    }
    for (size_t i = 0; i < watch_.size(); ++i) {
      ev.data.u64 = kWatchBase + i;
      if (epoll_ctl(epfd_, EPOLL_CTL_ADD, watch_[i].fd, &ev) != 0) {
        return Status(Code::kIoError, Errno("epoll_ctl watched fd"));
      }
    }
    return Status::Ok();
  }

  void RequestStop() {
    stop_.store(true);
    Wake();
  }

  void Run();
  Counters counters() const {
    Counters c;
    c.connections = accepted_.load();
    c.active = active_.load();
    c.requests = requests_.load();
    return c;
  }

 private:
  static constexpr uint64_t kListenKey = 0;
  static constexpr uint64_t kWakeKey = 1;
  static constexpr uint64_t kWatchBase = 1ull << 62;  // + index into watch_; connections below

  struct Connection {
    Connection(Loop* l, uint64_t i, int f, BlockDevice& d, const NbdExportConfig& c)
        : loop(l), id(i), fd(f), session(d, c), in(kInputBuffer) {}
    Loop* loop;
    uint64_t id;
    int fd;
    NbdSession session;
    std::vector<uint8_t> in;
    size_t in_len = 0;
    bool read_closed = false;   // EOF, error, or shutting down: read no more
    bool write_failed = false;  // the peer is gone: drop output
    uint32_t events = 0;        // registered epoll interest (0: not in the epoll set)
  };
  struct Done {
    Connection* conn;
    uint64_t id;
    Status status;
  };

  void Wake() {
    if (!wake_pending_.exchange(true)) {
      const uint64_t one = 1;
      [[maybe_unused]] ssize_t r = write(efd_, &one, sizeof(one));
    }
  }
  // Called from device threads (or inline from Submit). The wake-up happens under the lock: once
  // the loop has taken this completion it may finish the connection and, at Stop, destroy the
  // Loop, so nothing here may touch the Loop after the unlock.
  void Post(Connection* c, uint64_t id, Status s) {
    std::lock_guard lock(mu_);
    done_.push_back(Done{c, id, std::move(s)});
    Wake();
  }
  void Accept();
  void DrainCompletions();
  void Service(Connection* c);
  void SubmitAll(Connection* c);
  void Flush(Connection* c);
  void UpdateInterest(Connection* c);
  void Destroy(Connection* c);

  BlockDevice& device_;
  const NbdExportConfig config_;
  int listen_fd_ = -1;
  const std::vector<WatchFd> watch_;
  int epfd_ = -1;
  int efd_ = -1;
  std::atomic<bool> stop_{false};
  bool listen_paused_ = false;  // the listener left the epoll set (out of descriptors)
  std::atomic<bool> wake_pending_{false};
  std::mutex mu_;
  std::vector<Done> done_;  // guarded by mu_
  std::vector<Done> draining_;
  std::unordered_map<uint64_t, std::unique_ptr<Connection>> conns_;
  std::unordered_set<Connection*> dirty_;
  std::vector<NbdSession::Submission> subs_;
  uint64_t next_conn_ = 2;  // 0 and 1 are the listener's and the eventfd's epoll keys
  std::atomic<uint64_t> accepted_{0}, active_{0}, requests_{0};
};

void NbdServer::Loop::Run() {
  epoll_event events[64];
  bool stopping = false;
  for (;;) {
    if (stop_.load() && !stopping) {
      stopping = true;
      epoll_ctl(epfd_, EPOLL_CTL_DEL, listen_fd_, nullptr);
      for (auto& [id, c] : conns_) {
        shutdown(c->fd, SHUT_RDWR);
        c->read_closed = true;
        dirty_.insert(c.get());
      }
    }
    if (stopping && conns_.empty()) return;
    if (dirty_.empty()) {
      const int n = epoll_wait(epfd_, events, 64, -1);
      if (n < 0 && errno != EINTR) return;
      for (int i = 0; i < n; ++i) {
        const uint64_t key = events[i].data.u64;
        if (key == kListenKey) {
          if (!stopping) Accept();
        } else if (key == kWakeKey) {
          uint64_t v;
          [[maybe_unused]] ssize_t r = read(efd_, &v, sizeof(v));
          wake_pending_.store(false);
        } else if (key >= kWatchBase) {
          watch_[key - kWatchBase].ready();  // completions it runs are queued, drained below
        } else if (auto it = conns_.find(key); it != conns_.end()) {
          dirty_.insert(it->second.get());
        }
      }
    }
    DrainCompletions();
    while (!dirty_.empty()) {
      Connection* c = *dirty_.begin();
      dirty_.erase(dirty_.begin());
      Service(c);
      DrainCompletions();
    }
  }
}

void NbdServer::Loop::Accept() {
  for (;;) {
    const int fd = accept4(listen_fd_, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0) {
      if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM) {
        // Out of descriptors or memory: the pending connection would make the listener report
        // readable on every wait. Stop listening until a connection closes.
        epoll_ctl(epfd_, EPOLL_CTL_DEL, listen_fd_, nullptr);
        listen_paused_ = true;
      }
      return;  // EAGAIN (or a transient error: the listener stays armed)
    }
    const int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));  // fails harmlessly on unix
    const uint64_t id = next_conn_++;
    auto c = std::make_unique<Connection>(this, id, fd, device_, config_);
    Connection* raw = c.get();
    conns_.emplace(id, std::move(c));
    epoll_event ev{};
    ev.events = EPOLLIN;
    ev.data.u64 = id;
    epoll_ctl(epfd_, EPOLL_CTL_ADD, fd, &ev);
    raw->events = EPOLLIN;
    accepted_.fetch_add(1);
    active_.fetch_add(1);
    dirty_.insert(raw);  // the greeting is waiting to be sent
  }
}

void NbdServer::Loop::DrainCompletions() {
  {
    std::lock_guard lock(mu_);
    draining_.swap(done_);
  }
  for (Done& d : draining_) {
    d.conn->session.Complete(d.id, d.status);
    dirty_.insert(d.conn);
  }
  draining_.clear();
}

void NbdServer::Loop::SubmitAll(Connection* c) {
  subs_.clear();
  c->session.TakeSubmissions(&subs_);
  for (const auto& s : subs_) {
    requests_.fetch_add(1, std::memory_order_relaxed);
    const uint64_t id = s.id;
    // Two words of capture: fits std::function's inline storage, so no allocation per request.
    // `c` stays alive until the session has seen this completion (Destroy waits for in_flight).
    device_.Submit(s.request, [c, id](Status st) { c->loop->Post(c, id, std::move(st)); });
  }
}

void NbdServer::Loop::Service(Connection* c) {
  for (int round = 0; round < kMaxReadRounds; ++round) {
    bool progress = false;
    if (!c->read_closed && !c->session.closing() && c->in_len < c->in.size()) {
      const ssize_t r = read(c->fd, c->in.data() + c->in_len, c->in.size() - c->in_len);
      if (r > 0) {
        c->in_len += r;
        progress = true;
      } else if (r == 0 || (errno != EAGAIN && errno != EINTR)) {
        c->read_closed = true;
      }
    }
    const size_t used = c->session.Feed(c->in_len ? c->in.data() : nullptr, c->in_len);
    if (used > 0) {
      std::memmove(c->in.data(), c->in.data() + used, c->in_len - used);
      c->in_len -= used;
      progress = true;
    }
    SubmitAll(c);
    // Inline completions are already queued: apply them now, they may make room for more input.
    {
      std::lock_guard lock(mu_);
      draining_.swap(done_);
    }
    for (Done& d : draining_) {
      d.conn->session.Complete(d.id, d.status);
      if (d.conn == c) {
        progress = true;
      } else {
        dirty_.insert(d.conn);
      }
    }
    draining_.clear();
    Flush(c);
    if (!progress) break;
  }
  const bool gone = c->read_closed || c->write_failed;
  if (c->session.in_flight() == 0 &&
      (c->session.Finished() || (gone && (c->write_failed || !c->session.HasOutput())))) {
    return Destroy(c);
  }
  UpdateInterest(c);
}

void NbdServer::Loop::Flush(Connection* c) {
  if (c->write_failed) {
    c->session.ConsumeOutput(c->session.output_bytes());
    return;
  }
  iovec iov[kMaxIov];
  while (c->session.HasOutput()) {
    const size_t k = c->session.GatherOutput(iov, kMaxIov);
    msghdr msg{};
    msg.msg_iov = iov;
    msg.msg_iovlen = k;
    const ssize_t r = sendmsg(c->fd, &msg, MSG_NOSIGNAL);
    if (r < 0) {
      if (errno == EAGAIN || errno == EINTR) return;
      c->write_failed = true;
      c->read_closed = true;
      c->session.ConsumeOutput(c->session.output_bytes());
      return;
    }
    c->session.ConsumeOutput(static_cast<size_t>(r));
  }
}

void NbdServer::Loop::UpdateInterest(Connection* c) {
  uint32_t want = 0;
  // Read while the session may take more and there is room to read into; a full buffer the
  // session will not consume is the backpressure.
  if (!c->read_closed && !c->session.closing() && c->in_len < c->in.size()) want |= EPOLLIN;
  if (c->session.HasOutput() && !c->write_failed) want |= EPOLLOUT;
  if (want == c->events) return;
  epoll_event ev{};
  ev.events = want;
  ev.data.u64 = c->id;
  // A socket with nothing to wait for leaves the epoll set: a hung-up socket would otherwise
  // report EPOLLHUP on every wait while its last requests are still with the device.
  if (want == 0) {
    epoll_ctl(epfd_, EPOLL_CTL_DEL, c->fd, nullptr);
  } else {
    epoll_ctl(epfd_, c->events == 0 ? EPOLL_CTL_ADD : EPOLL_CTL_MOD, c->fd, &ev);
  }
  c->events = want;
}

void NbdServer::Loop::Destroy(Connection* c) {
  if (c->events != 0) epoll_ctl(epfd_, EPOLL_CTL_DEL, c->fd, nullptr);
  close(c->fd);
  dirty_.erase(c);
  active_.fetch_sub(1);
  conns_.erase(c->id);
  if (listen_paused_ && !stop_.load()) {
    epoll_event ev{};
    ev.events = EPOLLIN;
    ev.data.u64 = kListenKey;
    if (epoll_ctl(epfd_, EPOLL_CTL_ADD, listen_fd_, &ev) == 0) listen_paused_ = false;
  }
}

Result<std::unique_ptr<NbdServer>> NbdServer::Start(BlockDevice& device, const std::string& listen,
                                                    NbdExportConfig config,
                                                    std::vector<WatchFd> watch) {
  std::unique_ptr<NbdServer> server(new NbdServer());
  int fd = -1;
  if (listen.rfind("unix:", 0) == 0) {
    const std::string path = listen.substr(5);
    sockaddr_un sa{};
    if (path.empty() || path.size() >= sizeof(sa.sun_path)) {
      return Status(Code::kInvalidArgument, "unix socket path empty or too long: " + path);
    }
    struct stat st;
    if (lstat(path.c_str(), &st) == 0 && S_ISSOCK(st.st_mode)) unlink(path.c_str());
    fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    sa.sun_family = AF_UNIX;
    std::memcpy(sa.sun_path, path.data(), path.size());
    if (fd < 0 || bind(fd, reinterpret_cast<sockaddr*>(&sa), sizeof(sa)) != 0) {
      const Status s(Code::kIoError, Errno("bind " + listen));
      if (fd >= 0) close(fd);
      return s;
    }
    server->unix_path_ = path;
    server->address_ = listen;
  } else {
    const size_t colon = listen.rfind(':');
    if (colon == std::string::npos || colon == 0) {
      return Status(Code::kInvalidArgument,
                    "listen address is not unix:PATH or HOST:PORT: " + listen);
    }
    std::string host = listen.substr(0, colon);
    const std::string port = listen.substr(colon + 1);
    if (host.size() >= 2 && host.front() == '[' && host.back() == ']') {
      host = host.substr(1, host.size() - 2);
    }
    addrinfo hints{};
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
    addrinfo* res = nullptr;
    if (const int e = getaddrinfo(host.c_str(), port.c_str(), &hints, &res); e != 0) {
      return Status(Code::kInvalidArgument, "cannot resolve " + listen + ": " + gai_strerror(e));
    }
    fd = socket(res->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    const int one = 1;
    if (fd >= 0) setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    if (fd < 0 || bind(fd, res->ai_addr, res->ai_addrlen) != 0) {
      const Status s(Code::kIoError, Errno("bind " + listen));
      if (fd >= 0) close(fd);
      freeaddrinfo(res);
      return s;
    }
    freeaddrinfo(res);
    sockaddr_storage ss{};
    socklen_t len = sizeof(ss);
    getsockname(fd, reinterpret_cast<sockaddr*>(&ss), &len);
    char buf[INET6_ADDRSTRLEN] = {};
    uint16_t bound_port = 0;
    if (ss.ss_family == AF_INET6) {
      auto* a = reinterpret_cast<sockaddr_in6*>(&ss);
      inet_ntop(AF_INET6, &a->sin6_addr, buf, sizeof(buf));
      bound_port = ntohs(a->sin6_port);
      server->address_ = "[" + std::string(buf) + "]:" + std::to_string(bound_port);
    } else {
      auto* a = reinterpret_cast<sockaddr_in*>(&ss);
      inet_ntop(AF_INET, &a->sin_addr, buf, sizeof(buf));
      bound_port = ntohs(a->sin_port);
      server->address_ = std::string(buf) + ":" + std::to_string(bound_port);
    }
  }
  if (::listen(fd, 128) != 0) {
    const Status s(Code::kIoError, Errno("listen " + listen));
    close(fd);
    return s;
  }
  server->loop_ = std::make_unique<Loop>(device, std::move(config), fd, std::move(watch));
  if (Status s = server->loop_->Init(); !s.ok()) return s;
  server->thread_ = std::thread([l = server->loop_.get()] { l->Run(); });
  return server;
}

void NbdServer::Stop() {
  if (!thread_.joinable()) return;
  loop_->RequestStop();
  thread_.join();
  if (!unix_path_.empty()) unlink(unix_path_.c_str());
}

NbdServer::~NbdServer() {
  Stop();
}

NbdServer::Counters NbdServer::counters() const {
  return loop_ ? loop_->counters() : Counters{};
}

}  // namespace opensrd::block::nbd
