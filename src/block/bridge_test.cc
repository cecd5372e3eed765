// The storage bridge and the adapter's RemoteVolume over real loopback sockets: every operation,
// access control, live resize, and the faults an adapter must ride out (bridge restart with
// requests in flight, failover to a second bridge, a bridge that never comes back).
#include <fcntl.h>
#include <gtest/gtest.h>
#include <stdlib.h>
#include <unistd.h>

#include <sys/eventfd.h>

#include <atomic>
#include <cstring>
#include <deque>
#include <filesystem>
#include <future>
#include <mutex>
#include <thread>
#include <vector>

#include "block/bridge.h"
#include "block/remote_volume.h"
#include "common/pattern.h"

namespace opensrd::block {
namespace {

constexpr uint32_t kLoopback = 0x7F000001;

class TempDir {
 public:
  TempDir() {
    std::string t = "/tmp/opensrd-bridge-XXXXXX";
    path_ = mkdtemp(t.data());
  }
  ~TempDir() { std::filesystem::remove_all(path_); }
  std::string File(const char* name) const { return path_ + "/" + name; }

 private:
  std::string path_;
};

// A bridge serving on its own thread.
class RunningBridge {
 public:
  RunningBridge(std::vector<VolumeSpec> volumes, uint16_t port = 0,
                decltype(BridgeOptions::open_device) open_device = nullptr) {
    BridgeOptions o;
    o.bind = {NetAddr{kLoopback, port}};
    o.volumes = std::move(volumes);
    o.open_device = std::move(open_device);
    o.quiet = true;
    o.endpoint.max_payload = 8192;
    auto b = Bridge::Create(o);
    EXPECT_TRUE(b.ok()) << b.status().ToString();
    if (!b.ok()) return;
    bridge_ = std::move(b.value());
    thread_ = std::thread([this] { EXPECT_TRUE(bridge_->Run().ok()); });
  }
  ~RunningBridge() { Kill(); }
  void Kill() {
    if (!bridge_) return;
    bridge_->Stop();
    thread_.join();
    bridge_.reset();
  }
  NetAddr address() const { return bridge_->local_address(0); }
  Bridge& bridge() { return *bridge_; }

 private:
  std::unique_ptr<Bridge> bridge_;
  std::thread thread_;
};

RemoteVolumeOptions AdapterOptions(std::vector<NetAddr> bridges, const std::string& volume,
                                   const std::string& token) {
  RemoteVolumeOptions o;
  o.bridges = std::move(bridges);
  o.volume = volume;
  o.token = token;
  o.local = NetAddr{kLoopback, 0};
  o.paths = 2;
  o.endpoint.max_payload = 8192;
  o.endpoint.peer_timeout_us = 300'000;
  o.attach_timeout_us = 2'000'000;
  return o;
}

Status Do(BlockDevice& d, const IoRequest& r) {
  std::promise<Status> p;
  d.Submit(r, [&](Status s) { p.set_value(s); });
  return p.get_future().get();
}

std::vector<uint8_t> FileBytes(const std::string& path, size_t off, size_t len) {
  std::vector<uint8_t> v(len);
  int fd = open(path.c_str(), O_RDONLY);
  EXPECT_EQ(pread(fd, v.data(), len, static_cast<off_t>(off)), static_cast<ssize_t>(len));
  close(fd);
  return v;
}

TEST(Bridge, EveryOperationEndToEnd) {
  TempDir dir;
  RunningBridge b({{.name = "vol0", .path = dir.File("v0"), .size = 16 << 20, .token = "t0k"}});
  auto v = RemoteVolume::Open(AdapterOptions({b.address()}, "vol0", "t0k"));
  ASSERT_TRUE(v.ok()) << v.status().ToString();
  RemoteVolume& vol = *v.value();
  const VolumeInfo info = vol.Info();
  EXPECT_EQ(info.size_bytes, 16u << 20);
  EXPECT_EQ(info.atomic_write_unit, 16384u);
  EXPECT_EQ(info.max_transfer, 1u << 20);
  const uint32_t bs = info.block_size;

  std::vector<uint8_t> data(1 << 20), back(1 << 20);
  FillPattern(7, data.data(), data.size());
  ASSERT_TRUE(Do(vol, {Op::kWrite, 0, 1 << 20, 1 << 20, data.data()}).ok());
  ASSERT_TRUE(Do(vol, {Op::kRead, 0, 1 << 20, 1 << 20, back.data()}).ok());
  EXPECT_EQ(back, data);
  ASSERT_TRUE(Do(vol, {Op::kFlush}).ok());
  EXPECT_EQ(FileBytes(dir.File("v0"), 1 << 20, 1 << 20), data) << "the bridge wrote the file";

  ASSERT_TRUE(Do(vol, {Op::kWrite, kFua, 0, bs, data.data()}).ok());
  ASSERT_TRUE(Do(vol, {Op::kDiscard, 0, 1 << 20, 64 << 10, nullptr}).ok());
  ASSERT_TRUE(
      Do(vol, {Op::kWriteZeroes, kNoUnmap, (1 << 20) + (64 << 10), 64 << 10, nullptr}).ok());
  ASSERT_TRUE(Do(vol, {Op::kRead, 0, 1 << 20, 128 << 10, back.data()}).ok());
  for (size_t i = 0; i < (128 << 10); ++i) ASSERT_EQ(back[i], 0) << i;

  // Bad requests: refused with a clear error, nothing written.
  Status s = Do(vol, {Op::kWrite, 0, 16 << 20, bs, data.data()});
  EXPECT_EQ(s.code(), Code::kInvalidArgument);
  EXPECT_NE(s.message().find("beyond"), std::string::npos) << s.message();
  EXPECT_EQ(Do(vol, {Op::kRead, 0, 1, bs, back.data()}).code(), Code::kInvalidArgument);
  EXPECT_EQ(Do(vol, {Op::kRead, 0, 0, 2 << 20, back.data()}).code(), Code::kInvalidArgument);
  const BridgeStats st = b.bridge().stats();
  EXPECT_EQ(st.attaches, 1u);
  EXPECT_EQ(st.writes, 2u);
  EXPECT_EQ(st.errors, 0u) << "the adapter refuses bad requests before they travel";
}

TEST(Bridge, WrongTokenAndUnknownVolumeAreRefused) {
  TempDir dir;
  RunningBridge b({{.name = "vol0", .path = dir.File("v0"), .size = 1 << 20, .token = "right"}});
  auto wrong = RemoteVolume::Open(AdapterOptions({b.address()}, "vol0", "wrong"));
  ASSERT_FALSE(wrong.ok());
  EXPECT_EQ(wrong.status().code(), Code::kPermissionDenied);
  EXPECT_NE(wrong.status().message().find("wrong token"), std::string::npos);
  auto none = RemoteVolume::Open(AdapterOptions({b.address()}, "nope", "right"));
  ASSERT_FALSE(none.ok());
  EXPECT_EQ(none.status().code(), Code::kNotFound);
  EXPECT_NE(none.status().message().find("no volume named 'nope'"), std::string::npos);
  EXPECT_EQ(b.bridge().stats().attach_denied, 2u);
  auto nobody = RemoteVolume::Open([] {
    auto o = AdapterOptions({NetAddr{kLoopback, 9}}, "vol0", "right");
    o.attach_timeout_us = 300'000;
    return o;
  }());
  ASSERT_FALSE(nobody.ok());
  EXPECT_EQ(nobody.status().code(), Code::kTimedOut);
}

TEST(Bridge, ManyRequestsInFlightFromSeveralThreads) {
  TempDir dir;
  RunningBridge b({{.name = "v", .path = dir.File("v"), .size = 64 << 20}});
  auto v = RemoteVolume::Open(AdapterOptions({b.address()}, "v", ""));
  ASSERT_TRUE(v.ok()) << v.status().ToString();
  constexpr int kPerThread = 400;
  constexpr uint32_t kLen = 16384;
  std::vector<std::thread> threads;
  std::atomic<int> bad{0};
  for (int t = 0; t < 2; ++t) {
    threads.emplace_back([&, t] {
      std::vector<std::vector<uint8_t>> bufs(kPerThread, std::vector<uint8_t>(kLen));
      std::atomic<int> done{0};
      for (int i = 0; i < kPerThread; ++i) {
        FillPattern(t * kPerThread + i, bufs[i].data(), kLen);
        const uint64_t off = uint64_t(t * kPerThread + i) * kLen;
        v.value()->Submit({Op::kWrite, 0, off, kLen, bufs[i].data()}, [&](Status s) {
          bad += !s.ok();
          ++done;
        });
      }
      while (done < kPerThread) std::this_thread::yield();
      std::vector<uint8_t> back(kLen);
      for (int i = 0; i < kPerThread; ++i) {
        const uint64_t off = uint64_t(t * kPerThread + i) * kLen;
        bad += !Do(*v.value(), {Op::kRead, 0, off, kLen, back.data()}).ok();
        bad += !CheckPattern(t * kPerThread + i, back.data(), kLen);
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(bad.load(), 0);
}

TEST(Bridge, LiveResizeIsAnnouncedToTheAdapter) {
  TempDir dir;
  RunningBridge b({{.name = "v", .path = dir.File("v"), .size = 1 << 20, .token = "tk"}});
  auto v = RemoteVolume::Open(AdapterOptions({b.address()}, "v", "tk"));
  ASSERT_TRUE(v.ok()) << v.status().ToString();
  std::promise<uint64_t> seen;
  v.value()->SetInfoListener([&](const VolumeInfo& i) { seen.set_value(i.size_bytes); });
  EndpointConfig ec;
  auto denied = ResizeRemoteVolume(b.address(), "v", "bad", 4 << 20, ec, 2'000'000);
  ASSERT_FALSE(denied.ok());
  EXPECT_EQ(denied.status().code(), Code::kPermissionDenied);
  auto shrink = ResizeRemoteVolume(b.address(), "v", "tk", 4096, ec, 2'000'000);
  ASSERT_FALSE(shrink.ok());
  EXPECT_NE(shrink.status().message().find("shrinking"), std::string::npos);
  auto grown = ResizeRemoteVolume(b.address(), "v", "tk", 4 << 20, ec, 2'000'000);
  ASSERT_TRUE(grown.ok()) << grown.status().ToString();
  EXPECT_EQ(*grown, 4u << 20);
  auto fut = seen.get_future();
  ASSERT_EQ(fut.wait_for(std::chrono::seconds(5)), std::future_status::ready);
  EXPECT_EQ(fut.get(), 4u << 20);
  EXPECT_EQ(v.value()->Info().size_bytes, 4u << 20);
  std::vector<uint8_t> data(4096, 0x5A);
  EXPECT_TRUE(Do(*v.value(), {Op::kWrite, 0, (4 << 20) - 4096, 4096, data.data()}).ok());
}

// Writes in flight while the bridge process restarts on the same address: they are replayed
// after the adapter attaches again, and every one lands.
TEST(Bridge, RequestsInFlightSurviveABridgeRestart) {
  TempDir dir;
  const VolumeSpec spec{.name = "v", .path = dir.File("v"), .size = 32 << 20};
  auto b = std::make_unique<RunningBridge>(std::vector<VolumeSpec>{spec});
  const NetAddr addr = b->address();
  auto v = RemoteVolume::Open(AdapterOptions({addr}, "v", ""));
  ASSERT_TRUE(v.ok()) << v.status().ToString();
  constexpr int kN = 600;
  constexpr uint32_t kLen = 32768;
  std::vector<std::vector<uint8_t>> bufs(kN, std::vector<uint8_t>(kLen));
  std::atomic<int> done{0}, bad{0};
  for (int i = 0; i < kN; ++i) {
    FillPattern(1000 + i, bufs[i].data(), kLen);
    v.value()->Submit({Op::kWrite, 0, uint64_t(i) * kLen, kLen, bufs[i].data()}, [&](Status s) {
      if (!s.ok()) ADD_FAILURE() << s.ToString();
      bad += !s.ok();
      ++done;
    });
    if (i == kN / 3) {
      b->Kill();  // in the middle of the stream
      b = std::make_unique<RunningBridge>(std::vector<VolumeSpec>{spec}, addr.port);
    }
  }
  for (int i = 0; i < 1000 && done < kN; ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  ASSERT_EQ(done.load(), kN);
  EXPECT_EQ(bad.load(), 0);
  EXPECT_GE(v.value()->stats().attaches, 2u);
  EXPECT_EQ(v.value()->state(), VolumeState::kOk);
  std::vector<uint8_t> back(kLen);
  for (int i = 0; i < kN; ++i) {
    ASSERT_TRUE(Do(*v.value(), {Op::kRead, 0, uint64_t(i) * kLen, kLen, back.data()}).ok());
    ASSERT_TRUE(CheckPattern(1000 + i, back.data(), kLen)) << "block " << i;
  }
}

// Two bridges serve one file (as two bridges serve one RBD image); the first dies with writes
// in flight and the adapter fails over to the second without an error.
TEST(Bridge, AdapterFailsOverToTheSecondBridge) {
  TempDir dir;
  const VolumeSpec spec{.name = "v", .path = dir.File("v"), .size = 16 << 20};
  RunningBridge a({spec}), b2({spec});
  auto v = RemoteVolume::Open(AdapterOptions({a.address(), b2.address()}, "v", ""));
  ASSERT_TRUE(v.ok()) << v.status().ToString();
  constexpr int kN = 300;
  constexpr uint32_t kLen = 16384;
  std::vector<std::vector<uint8_t>> bufs(kN, std::vector<uint8_t>(kLen));
  std::atomic<int> done{0}, bad{0};
  for (int i = 0; i < kN; ++i) {
    FillPattern(i, bufs[i].data(), kLen);
    v.value()->Submit({Op::kWrite, 0, uint64_t(i) * kLen, kLen, bufs[i].data()}, [&](Status s) {
      bad += !s.ok();
      ++done;
    });
    if (i == kN / 2) a.Kill();
  }
  for (int i = 0; i < 1000 && done < kN; ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  ASSERT_EQ(done.load(), kN);
  EXPECT_EQ(bad.load(), 0);
  // One death, one move: every request the dead bridge held fails on its own, and none of
  // those may move the volume again (it flip-flopped between the bridges once per request).
  EXPECT_EQ(v.value()->stats().failovers, 1u);
  EXPECT_EQ(v.value()->stats().attaches, 2u);
  std::vector<uint8_t> back(kLen);
  for (int i = 0; i < kN; ++i) {
    ASSERT_TRUE(Do(*v.value(), {Op::kRead, 0, uint64_t(i) * kLen, kLen, back.data()}).ok());
    ASSERT_TRUE(CheckPattern(i, back.data(), kLen)) << "block " << i;
  }
}

// One volume several bridges serve, as they serve one RBD image: the bridge an adapter attached
// to last owns it, and the others are fenced off (their requests fail, as the cluster refuses a
// blocklisted client) until an adapter attaches to them again.
struct SharedVolume {
  explicit SharedVolume(size_t size) : bytes(size) {}
  std::mutex mu;
  std::vector<uint8_t> bytes;
  std::vector<const void*> devices;  // in the order the bridges opened them
  const void* owner = nullptr;
  int refuse_fenced_attaches = 0;  // the next N attaches to a fenced device fail (reconnecting)
  // Another bridge takes the volume (a stale attach it answered late, say): `i` owns it now.
  void GiveTo(size_t i) {
    std::lock_guard<std::mutex> lock(mu);
    owner = devices.at(i);
  }
};

// A PolledDevice on a SharedVolume; completes on the bridge's loop through its eventfd, as
// RbdDevice does. Everything but the SharedVolume is the bridge thread's.
class FenceableDevice : public PolledDevice {
 public:
  explicit FenceableDevice(SharedVolume& v) : v_(v), efd_(eventfd(0, EFD_NONBLOCK)) {
    std::lock_guard<std::mutex> lock(v_.mu);
    v_.devices.push_back(this);
  }
  ~FenceableDevice() override { close(efd_); }
  VolumeInfo Info() const override {
    std::lock_guard<std::mutex> lock(v_.mu);
    return {.size_bytes = v_.bytes.size()};
  }
  void Submit(const IoRequest& r, IoCallback done) override {
    Status s = ValidateRequest(Info(), r);
    if (s.ok()) {
      std::lock_guard<std::mutex> lock(v_.mu);
      if (v_.owner != this) {
        fenced_ = true;
        s = Status(Code::kIoError, "fenced");
      } else if (r.op == Op::kWrite) {
        std::memcpy(v_.bytes.data() + r.offset, r.data, r.length);
      } else if (r.op == Op::kRead) {
        std::memcpy(r.data, v_.bytes.data() + r.offset, r.length);
      }
    }
    done_.emplace_back(std::move(done), s);
    const uint64_t one = 1;
    EXPECT_EQ(write(efd_, &one, sizeof one), 8);
  }
  int event_fd() const override { return efd_; }
  size_t Reap() override {
    uint64_t n;
    while (read(efd_, &n, sizeof n) > 0) {
    }
    std::deque<std::pair<IoCallback, Status>> ready;
    ready.swap(done_);
    for (auto& [done, s] : ready) done(s);
    return ready.size();
  }
  size_t in_flight() const override { return done_.size(); }
  Status Resize(uint64_t) override { return Status(Code::kInvalidArgument, "fixed size"); }
  std::string Describe() const override { return "shared test volume"; }
  Status OnAttach(const AttachOrder&) override {
    {
      std::lock_guard<std::mutex> lock(v_.mu);
      if (fenced_ && v_.refuse_fenced_attaches > 0) {
        --v_.refuse_fenced_attaches;
        return Status(Code::kIoError, "fenced, still reconnecting");
      }
    }
    Reap();  // what failed while fenced is answered as such (PolledDevice::fenced)
    std::lock_guard<std::mutex> lock(v_.mu);
    v_.owner = this;
    if (fenced_) ++incarnation_;  // as RbdDevice reconnects
    fenced_ = false;
    return Status::Ok();
  }
  bool fenced() const override { return fenced_; }
  uint64_t incarnation() const override { return incarnation_; }

 private:
  SharedVolume& v_;
  int efd_;
  bool fenced_ = false;
  uint64_t incarnation_ = 0;
  std::deque<std::pair<IoCallback, Status>> done_;
};

auto OpenOn(SharedVolume& v) {
  return [&v](const VolumeSpec&) -> Result<std::unique_ptr<PolledDevice>> {
    return std::unique_ptr<PolledDevice>(new FenceableDevice(v));
  };
}

// Writes units [first, first + n) of 16 KiB with pattern seeds equal to their index, qd n.
int WriteUnits(RemoteVolume& vol, int first, int n, std::vector<std::vector<uint8_t>>& bufs) {
  std::atomic<int> done{0}, bad{0};
  for (int i = first; i < first + n; ++i) {
    FillPattern(i, bufs[i].data(), bufs[i].size());
    vol.Submit(
        {Op::kWrite, 0, uint64_t(i) * bufs[i].size(), uint32_t(bufs[i].size()), bufs[i].data()},
        [&](Status s) {
          if (!s.ok()) ADD_FAILURE() << s.ToString();
          bad += !s.ok();
          ++done;
        });
  }
  for (int i = 0; i < 1000 && done < n; ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  EXPECT_EQ(done.load(), n);
  return bad.load();
}

// storage_rbd's fencing phase failed with thousands of I/O errors: a bridge thawed from a freeze
// answered the adapter's stale ATTACH, took the volume and so fenced the bridge the adapter was
// using, which then failed every write with an I/O error. A fenced bridge's failure is no answer
// for the client: the adapter attaches again, the bridge takes the volume back, the writes are
// replayed.
TEST(BridgeFencing, AFencedBridgeTakesTheVolumeBackWithoutClientErrors) {
  SharedVolume shared(4 << 20);
  const VolumeSpec spec{.name = "v"};
  RunningBridge a({spec}, 0, OpenOn(shared)), b({spec}, 0, OpenOn(shared));
  auto v = RemoteVolume::Open(AdapterOptions({a.address(), b.address()}, "v", ""));
  ASSERT_TRUE(v.ok()) << v.status().ToString();
  std::vector<std::vector<uint8_t>> bufs(64, std::vector<uint8_t>(16384));
  EXPECT_EQ(WriteUnits(*v.value(), 0, 32, bufs), 0);
  shared.GiveTo(1);  // bridge b took the volume: a is fenced
  EXPECT_EQ(WriteUnits(*v.value(), 32, 32, bufs), 0)
      << "a fenced bridge's errors reached the client";
  EXPECT_GE(a.bridge().stats().fenced_replies, 1u);
  EXPECT_EQ(v.value()->stats().errors, 0u);
  EXPECT_EQ(v.value()->stats().failovers, 0u) << "the volume stays on its bridge";
  EXPECT_GE(v.value()->stats().attaches, 2u);
  EXPECT_EQ(v.value()->state(), VolumeState::kOk);
  std::lock_guard<std::mutex> lock(shared.mu);
  EXPECT_EQ(shared.owner, shared.devices[0]) << "bridge a took the volume back";
  for (int i = 0; i < 64; ++i) {
    ASSERT_TRUE(CheckPattern(i, shared.bytes.data() + i * 16384, 16384)) << "unit " << i;
  }
}

// A bridge that refuses a re-attach for a passing cause (fenced, still reconnecting to its
// cluster) does not make the volume io-disabled (which failed every request until the next
// attach): the volume stays impaired and the next bridge is tried.
TEST(BridgeFencing, ARefusedReattachIsRetriedNotFatal) {
  SharedVolume shared(4 << 20);
  const VolumeSpec spec{.name = "v"};
  RunningBridge a({spec}, 0, OpenOn(shared)), b({spec}, 0, OpenOn(shared));
  auto v = RemoteVolume::Open(AdapterOptions({a.address(), b.address()}, "v", ""));
  ASSERT_TRUE(v.ok()) << v.status().ToString();
  std::vector<std::vector<uint8_t>> bufs(64, std::vector<uint8_t>(16384));
  EXPECT_EQ(WriteUnits(*v.value(), 0, 32, bufs), 0);
  {
    std::lock_guard<std::mutex> lock(shared.mu);
    shared.refuse_fenced_attaches = 1;
  }
  shared.GiveTo(1);
  EXPECT_EQ(WriteUnits(*v.value(), 32, 32, bufs), 0) << "the volume was disabled";
  EXPECT_EQ(v.value()->stats().errors, 0u);
  EXPECT_EQ(v.value()->stats().failovers, 1u) << "moved to the bridge that did not refuse";
  EXPECT_EQ(v.value()->state(), VolumeState::kOk);
  std::lock_guard<std::mutex> lock(shared.mu);
  EXPECT_EQ(shared.owner, shared.devices[1]);
  for (int i = 0; i < 64; ++i) {
    ASSERT_TRUE(CheckPattern(i, shared.bytes.data() + i * 16384, 16384)) << "unit " << i;
  }
}

// A bridge that stays away longer than the reconnect timeout: requests fail with a clear I/O
// error, the volume reports io-disabled, and it recovers when a bridge answers again.
TEST(Bridge, ABridgeGoneTooLongDisablesIoUntilItReturns) {
  TempDir dir;
  const VolumeSpec spec{.name = "v", .path = dir.File("v"), .size = 1 << 20};
  auto b = std::make_unique<RunningBridge>(std::vector<VolumeSpec>{spec});
  const NetAddr addr = b->address();
  auto o = AdapterOptions({addr}, "v", "");
  o.reconnect_timeout_us = 400'000;
  auto v = RemoteVolume::Open(o);
  ASSERT_TRUE(v.ok()) << v.status().ToString();
  std::vector<uint8_t> data(4096, 1);
  ASSERT_TRUE(Do(*v.value(), {Op::kWrite, 0, 0, 4096, data.data()}).ok());
  b->Kill();
  Status s = Do(*v.value(), {Op::kWrite, 0, 0, 4096, data.data()});
  EXPECT_EQ(s.code(), Code::kIoError) << s.ToString();
  EXPECT_EQ(v.value()->state(), VolumeState::kIoDisabled);
  s = Do(*v.value(), {Op::kRead, 0, 0, 4096, data.data()});
  EXPECT_EQ(s.code(), Code::kIoError) << "fails fast while disabled";
  EXPECT_NE(s.message().find("io-disabled"), std::string::npos) << s.message();
  b = std::make_unique<RunningBridge>(std::vector<VolumeSpec>{spec}, addr.port);
  for (int i = 0; i < 300 && v.value()->state() != VolumeState::kOk; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  EXPECT_EQ(v.value()->state(), VolumeState::kOk);
  EXPECT_TRUE(Do(*v.value(), {Op::kRead, 0, 0, 4096, data.data()}).ok());
}

TEST(VolumeSpec, ParsesAndRefuses) {
  auto v = ParseVolumeSpec("db=/tmp/x.img,size=64MiB,token=abc,ro");
  ASSERT_TRUE(v.ok()) << v.status().ToString();
  EXPECT_EQ(v->name, "db");
  EXPECT_EQ(v->path, "/tmp/x.img");
  EXPECT_EQ(v->size, 64u << 20);
  EXPECT_EQ(v->token, "abc");
  EXPECT_TRUE(v->read_only);
  EXPECT_EQ(*ParseByteSize("4k"), 4096u);
  EXPECT_EQ(*ParseByteSize("1G"), 1u << 30);
  for (const char* bad : {"", "=x", "n=", "n=p,size=12Q", "n=p,size=", "n=p,bogus=1",
                          "n=p,token=a,token=b", "n=p,token-file=/nonexistent/t", "n=p,ro=1"}) {
    EXPECT_FALSE(ParseVolumeSpec(bad).ok()) << bad;
  }
  EXPECT_FALSE(ParseByteSize("99999999999999999999").ok());
}

TEST(VolumeSpec, ParsesRbdAndRefusesBadOnes) {
  auto v = ParseVolumeSpec("vm=rbd:pool1/disk-a,conf=/c/ceph.conf,id=bridge,token=t");
  ASSERT_TRUE(v.ok()) << v.status().ToString();
  EXPECT_TRUE(v->is_rbd());
  EXPECT_EQ(v->rbd_pool, "pool1");
  EXPECT_EQ(v->rbd_image, "disk-a");
  EXPECT_EQ(v->rbd_conf, "/c/ceph.conf");
  EXPECT_EQ(v->rbd_id, "bridge");
  EXPECT_FALSE(ParseVolumeSpec("f=/tmp/x.img")->is_rbd());
  for (const char* bad :
       {"n=rbd:", "n=rbd:pool", "n=rbd:/img", "n=rbd:pool/", "n=rbd:a/b/c", "n=rbd:p/i,crash-test",
        "n=/tmp/x.img,conf=/c", "n=/tmp/x.img,id=u", "n=rbd:p/i,conf="}) {
    EXPECT_FALSE(ParseVolumeSpec(bad).ok()) << bad;
  }
  EXPECT_FALSE(ParseByteSize("17179869184T").ok());
}

}  // namespace
}  // namespace opensrd::block
