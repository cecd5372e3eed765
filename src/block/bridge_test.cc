// The storage bridge and the adapter's RemoteVolume over real loopback sockets: every operation,
// access control, live resize, and the faults an adapter must ride out (bridge restart with
// requests in flight, failover to a second bridge, a bridge that never comes back).
#include <fcntl.h>
#include <gtest/gtest.h>
#include <stdlib.h>
#include <unistd.h>

#include <atomic>
#include <cstring>
#include <filesystem>
#include <future>
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
  RunningBridge(std::vector<VolumeSpec> volumes, uint16_t port = 0) {
    BridgeOptions o;
    o.bind = {NetAddr{kLoopback, port}};
    o.volumes = std::move(volumes);
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
