// NbdServer over real sockets: pipelined requests on several connections against a device that
// completes on its own thread (the cross-thread completion path, under TSan in CI), clients that
// vanish with requests in flight, Stop with connections open, TCP on loopback.
#include "block/nbd/nbd_server.h"

#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <chrono>
#include <condition_variable>
#include <cstdlib>
#include <deque>
#include <filesystem>
#include <mutex>
#include <thread>

#include "block/file_device.h"
#include "block/memory_device.h"
#include "block/nbd/nbd_test_client.h"

namespace opensrd::block::nbd {
namespace {

using namespace client;  // NOLINT

// Completes every request on a worker thread, newest first within a batch, so replies come back
// out of order and from a thread other than the server's.
class ThreadedDevice : public BlockDevice {
 public:
  explicit ThreadedDevice(BlockDevice& inner) : inner_(inner), worker_([this] { Work(); }) {}
  ~ThreadedDevice() override {
    {
      std::lock_guard lock(mu_);
      stop_ = true;
    }
    cv_.notify_all();
    worker_.join();
  }
  VolumeInfo Info() const override { return inner_.Info(); }
  Result<std::vector<Extent>> BlockStatus(uint64_t o, uint64_t l) override {
    return inner_.BlockStatus(o, l);
  }
  void Submit(const IoRequest& r, IoCallback done) override {
    {
      std::lock_guard lock(mu_);
      q_.emplace_back(r, std::move(done));
    }
    cv_.notify_one();
  }

 private:
  void Work() {
    std::unique_lock lock(mu_);
    for (;;) {
      cv_.wait(lock, [&] { return stop_ || !q_.empty(); });
      if (q_.empty()) return;
      auto batch = std::move(q_);
      q_.clear();
      lock.unlock();
      std::this_thread::sleep_for(std::chrono::microseconds(200));
      for (auto it = batch.rbegin(); it != batch.rend(); ++it) {
        inner_.Submit(it->first, std::move(it->second));
      }
      lock.lock();
    }
  }
  BlockDevice& inner_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::pair<IoRequest, IoCallback>> q_;
  bool stop_ = false;
  std::thread worker_;
};

class Client {
 public:
  explicit Client(const std::string& address) {
    if (address.rfind("unix:", 0) == 0) {
      fd_ = socket(AF_UNIX, SOCK_STREAM, 0);
      sockaddr_un sa{};
      sa.sun_family = AF_UNIX;
      const std::string path = address.substr(5);
      std::memcpy(sa.sun_path, path.data(), path.size());
      ok_ = connect(fd_, reinterpret_cast<sockaddr*>(&sa), sizeof(sa)) == 0;
    } else {
      fd_ = socket(AF_INET, SOCK_STREAM, 0);
      sockaddr_in sa{};
      sa.sin_family = AF_INET;
      sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
      sa.sin_port = htons(std::stoi(address.substr(address.rfind(':') + 1)));
      ok_ = connect(fd_, reinterpret_cast<sockaddr*>(&sa), sizeof(sa)) == 0;
    }
  }
  ~Client() { Close(); }
  void Close() {
    if (fd_ >= 0) close(fd_);
    fd_ = -1;
  }
  bool ok() const { return ok_; }
  void Send(const Bytes& b) {
    size_t at = 0;
    while (at < b.size()) {
      const ssize_t n = write(fd_, b.data() + at, b.size() - at);
      ASSERT_GT(n, 0);
      at += n;
    }
  }
  bool Fill() {  // one read into the reader; false at EOF
    uint8_t buf[65536];
    const ssize_t n = read(fd_, buf, sizeof(buf));
    if (n <= 0) return false;
    r_.Add(buf, n);
    return true;
  }
  OptionReplyMsg Opt() {
    for (;;) {
      if (auto m = r_.NextOption()) return *m;
      if (!Fill()) return {};
    }
  }
  ReplyMsg Reply(uint32_t simple_len = 0) {
    for (;;) {
      if (auto m = r_.NextReply(simple_len)) return *m;
      if (!Fill()) return {};
    }
  }
  bool Handshake(bool structured) {
    if (!Fill() || !r_.Take(kGreetingLen)) return false;
    Send(ClientFlags());
    if (structured) {
      Send(OptionRequest(kOptStructuredReply));
      if (Opt().type != kRepAck) return false;
    }
    Send(OptionRequest(kOptGo, InfoData("vol", {kInfoBlockSize})));
    for (;;) {
      const auto m = Opt();
      if (m.type == kRepAck) return true;
      if (m.type != kRepInfo) return false;
    }
  }

 private:
  int fd_ = -1;
  bool ok_ = false;
  ReplyReader r_;
};

// A socket path in a fresh temp dir, removed (with the dir) when the test ends.
class TempSocket {
 public:
  TempSocket() {
    char dir[] = "/tmp/opensrd_nbd_test.XXXXXX";
    EXPECT_NE(mkdtemp(dir), nullptr);
    dir_ = dir;
  }
  ~TempSocket() { std::filesystem::remove_all(dir_); }
  std::string address() const { return "unix:" + dir_ + "/nbd.sock"; }

 private:
  std::string dir_;
};

VolumeInfo Volume() {
  VolumeInfo v;
  v.size_bytes = 8 << 20;
  v.max_transfer = 1 << 20;
  return v;
}

NbdExportConfig Config() {
  NbdExportConfig c;
  c.name = "vol";
  return c;
}

TEST(NbdServer, PipelinedConnectionsWithCompletionsOnAnotherThread) {
  MemoryDevice mem(Volume());
  ThreadedDevice dev(mem);
  TempSocket sock;
  auto server = NbdServer::Start(dev, sock.address(), Config());
  ASSERT_TRUE(server.ok()) << server.status().ToString();
  constexpr int kConns = 4, kRequests = 64, kLen = 4096;
  std::vector<std::thread> threads;
  for (int c = 0; c < kConns; ++c) {
    threads.emplace_back([&, c] {
      Client cl(server.value()->address());
      ASSERT_TRUE(cl.ok());
      ASSERT_TRUE(cl.Handshake(/*structured=*/c % 2 == 0));
      // Every write in flight at once, then a flush, then every read at once.
      Bytes burst;
      for (int i = 0; i < kRequests; ++i) {
        const uint64_t off = (uint64_t(c) * kRequests + i) * kLen;
        burst = Cat({burst, Request(kCmdWrite, i, off, kLen, 0, Bytes(kLen, uint8_t(c * 64 + i)))});
      }
      burst = Cat({burst, Request(kCmdFlush, 1000, 0, 0)});
      cl.Send(burst);
      for (int i = 0; i <= kRequests; ++i) EXPECT_EQ(cl.Reply().error, 0u);
      burst.clear();
      for (int i = 0; i < kRequests; ++i) {
        burst =
            Cat({burst, Request(kCmdRead, 5000 + i, (uint64_t(c) * kRequests + i) * kLen, kLen)});
      }
      cl.Send(burst);
      for (int i = 0; i < kRequests; ++i) {
        const auto m = cl.Reply(kLen);
        ASSERT_GE(m.handle, 5000u);
        const uint8_t want = uint8_t(c * 64 + (m.handle - 5000));
        const Bytes data = m.structured ? Bytes(m.payload.begin() + 8, m.payload.end()) : m.payload;
        ASSERT_EQ(data, Bytes(kLen, want));
      }
      cl.Send(Request(kCmdDisc, 0, 0, 0));
      EXPECT_FALSE(cl.Fill());  // the server closes after DISC
    });
  }
  for (auto& t : threads) t.join();
  const auto counters = server.value()->counters();
  EXPECT_EQ(counters.connections, uint64_t(kConns));
  EXPECT_EQ(counters.requests, uint64_t(kConns) * (2 * kRequests + 1));
  server.value()->Stop();
  EXPECT_EQ(server.value()->counters().active, 0u);
}

// CAN_MULTI_CONN's promise: a FLUSH on one connection makes durable every write acknowledged on
// any connection; FUA makes its own write durable. Checked against a device with a volatile
// write cache and a simulated power cut.
TEST(NbdServer, FlushOnOneConnectionCoversWritesAcknowledgedOnAnother) {
  MemoryDevice dev(Volume(), 4096, /*volatile_cache=*/true);
  TempSocket sock;
  auto server = NbdServer::Start(dev, sock.address(), Config());
  ASSERT_TRUE(server.ok());
  Client a(server.value()->address()), b(server.value()->address());
  ASSERT_TRUE(a.Handshake(true));
  ASSERT_TRUE(b.Handshake(true));
  a.Send(Request(kCmdWrite, 1, 0, 4096, 0, Bytes(4096, 0x11)));
  ASSERT_EQ(a.Reply().error, 0u);
  b.Send(Request(kCmdFlush, 2, 0, 0));  // the other connection's flush
  ASSERT_EQ(b.Reply().error, 0u);
  a.Send(Request(kCmdWrite, 3, 4096, 4096, 0, Bytes(4096, 0x22)));  // acknowledged, unflushed
  ASSERT_EQ(a.Reply().error, 0u);
  b.Send(Request(kCmdWrite, 4, 8192, 4096, kCmdFlagFua, Bytes(4096, 0x33)));
  ASSERT_EQ(b.Reply().error, 0u);
  dev.PowerCut();
  for (const auto& [off, want] :
       std::vector<std::pair<uint64_t, uint8_t>>{{0, 0x11}, {4096, 0x00}, {8192, 0x33}}) {
    a.Send(Request(kCmdRead, 10 + off, off, 4096, kCmdFlagDf));
    const auto m = a.Reply();
    ASSERT_EQ(m.type, kReplyOffsetData);
    EXPECT_EQ(Bytes(m.payload.begin() + 8, m.payload.end()), Bytes(4096, want)) << off;
  }
}

// A device that needs reaping (FileDevice: io_uring completions) is reaped on the server's own
// loop through a watched fd.
TEST(NbdServer, FileDeviceReapedOnTheLoop) {
  TempSocket sock;
  char dir[] = "/tmp/opensrd_nbd_file.XXXXXX";
  ASSERT_NE(mkdtemp(dir), nullptr);
  FileDeviceOptions fo;
  fo.path = std::string(dir) + "/vol";
  fo.create_size = 4 << 20;
  auto file = FileDevice::Open(fo);
  ASSERT_TRUE(file.ok()) << file.status().ToString();
  FileDevice* raw = file.value().get();
  {
    auto server = NbdServer::Start(*raw, sock.address(), Config(),
                                   {NbdServer::WatchFd{raw->event_fd(), [raw] { raw->Reap(); }}});
    ASSERT_TRUE(server.ok());
    Client cl(server.value()->address());
    ASSERT_TRUE(cl.Handshake(/*structured=*/false));
    Bytes burst;
    for (int i = 0; i < 16; ++i) {
      burst = Cat({burst, Request(kCmdWrite, i, i * 4096, 4096, i % 2 ? kCmdFlagFua : 0,
                                  Bytes(4096, uint8_t(i + 1)))});
    }
    cl.Send(Cat({burst, Request(kCmdFlush, 100, 0, 0)}));
    for (int i = 0; i < 17; ++i) EXPECT_EQ(cl.Reply().error, 0u);
    for (int i = 0; i < 16; ++i) {
      cl.Send(Request(kCmdRead, 200 + i, i * 4096, 4096));
      const auto m = cl.Reply(4096);
      EXPECT_EQ(m.payload, Bytes(4096, uint8_t(i + 1)));
    }
  }
  file.value().reset();
  std::filesystem::remove_all(dir);
}

TEST(NbdServer, ClientVanishingWithRequestsInFlight) {
  MemoryDevice mem(Volume());
  ThreadedDevice dev(mem);
  TempSocket sock;
  auto server = NbdServer::Start(dev, sock.address(), Config());
  ASSERT_TRUE(server.ok());
  for (int round = 0; round < 5; ++round) {
    Client cl(server.value()->address());
    ASSERT_TRUE(cl.Handshake(true));
    Bytes burst;
    for (int i = 0; i < 32; ++i) burst = Cat({burst, Request(kCmdRead, i, 0, 65536)});
    cl.Send(burst);
    cl.Close();
  }
  // The server keeps serving.
  Client cl(server.value()->address());
  ASSERT_TRUE(cl.Handshake(false));
  cl.Send(Request(kCmdFlush, 1, 0, 0));
  EXPECT_EQ(cl.Reply().handle, 1u);
  for (int i = 0; i < 200 && server.value()->counters().active > 1; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  EXPECT_EQ(server.value()->counters().active, 1u);
}

TEST(NbdServer, StopWithOpenConnections) {
  MemoryDevice mem(Volume());
  TempSocket sock;
  auto server = NbdServer::Start(mem, sock.address(), Config());
  ASSERT_TRUE(server.ok());
  Client idle(server.value()->address());
  Client mid(server.value()->address());
  ASSERT_TRUE(mid.Handshake(true));
  mid.Send(Bytes{0x25, 0x60});  // half a request header
  server.value()->Stop();
  EXPECT_EQ(server.value()->counters().active, 0u);
}

// Out of descriptors, accept fails with EMFILE; the listener must leave the epoll set rather than
// wake the loop forever, and come back when a connection closes.
TEST(NbdServer, OutOfDescriptorsPausesAcceptingUntilAConnectionCloses) {
  MemoryDevice mem(Volume());
  TempSocket sock;
  auto server = NbdServer::Start(mem, sock.address(), Config());
  ASSERT_TRUE(server.ok());
  int highest = 0;
  for (const auto& e : std::filesystem::directory_iterator("/proc/self/fd")) {
    highest = std::max(highest, std::stoi(e.path().filename().string()));
  }
  rlimit old{};
  ASSERT_EQ(getrlimit(RLIMIT_NOFILE, &old), 0);
  rlimit low = old;
  low.rlim_cur = highest + 64;
  ASSERT_EQ(setrlimit(RLIMIT_NOFILE, &low), 0);
  // Fill every free descriptor, then free exactly three: one served connection (client and
  // server side) and one more client socket, whose server side cannot be accepted.
  std::vector<int> filler;
  for (int fd; (fd = dup(0)) >= 0;) filler.push_back(fd);
  ASSERT_GE(filler.size(), 3u);
  for (int i = 0; i < 3; ++i) {
    close(filler.back());
    filler.pop_back();
  }
  {
    auto first = std::make_unique<Client>(server.value()->address());
    ASSERT_TRUE(first->ok());
    ASSERT_TRUE(first->Handshake(false));
    Client second(server.value()->address());  // queued: the server cannot accept it
    ASSERT_TRUE(second.ok());
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
    // The loop must sleep, not spin on a listener it cannot serve.
    auto cpu_ms = [] {
      timespec ts{};
      clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
      return ts.tv_sec * 1000.0 + ts.tv_nsec / 1e6;
    };
    const double before = cpu_ms();
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
    EXPECT_LT(cpu_ms() - before, 50.0);
    EXPECT_EQ(server.value()->counters().connections, 1u);
    first.reset();  // its server side closes, a descriptor frees, accepting resumes
    EXPECT_TRUE(second.Handshake(false));
    EXPECT_EQ(server.value()->counters().connections, 2u);
  }
  for (int fd : filler) close(fd);
  setrlimit(RLIMIT_NOFILE, &old);
}

TEST(NbdServer, TcpOnLoopback) {
  MemoryDevice mem(Volume());
  auto server = NbdServer::Start(mem, "127.0.0.1:0", Config());
  ASSERT_TRUE(server.ok()) << server.status().ToString();
  const std::string addr = server.value()->address();
  EXPECT_EQ(addr.rfind("127.0.0.1:", 0), 0u);
  EXPECT_NE(addr, "127.0.0.1:0");
  Client cl(addr);
  ASSERT_TRUE(cl.ok());
  ASSERT_TRUE(cl.Handshake(true));
  cl.Send(Request(kCmdWrite, 1, 0, 512, kCmdFlagFua, Bytes(512, 0x77)));
  EXPECT_EQ(cl.Reply().error, 0u);
}

TEST(NbdServer, BadListenAddresses) {
  MemoryDevice mem(Volume());
  EXPECT_FALSE(NbdServer::Start(mem, "nonsense", Config()).ok());
  EXPECT_FALSE(NbdServer::Start(mem, "unix:", Config()).ok());
  EXPECT_FALSE(NbdServer::Start(mem, "unix:/nonexistent/dir/sock", Config()).ok());
  EXPECT_FALSE(NbdServer::Start(mem, "999.1.1.1:1", Config()).ok());
}

}  // namespace
}  // namespace opensrd::block::nbd
