#include "block/file_device.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <poll.h>
#include <stdlib.h>
#include <unistd.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <vector>

namespace opensrd::block {
namespace {

class TempDir {
 public:
  explicit TempDir(const char* base = "/tmp") {
    std::string t = std::string(base) + "/opensrd-fd-XXXXXX";
    path_ = mkdtemp(t.data());
  }
  ~TempDir() { std::filesystem::remove_all(path_); }
  std::string File(const char* name) const { return path_ + "/" + name; }

 private:
  std::string path_;
};

// Submits and reaps until the request completes.
Status RunIo(FileDevice& d, const IoRequest& r) {
  bool done = false;
  Status out;
  d.Submit(r, [&](Status s) {
    out = s;
    done = true;
  });
  while (!done) {
    pollfd p{d.event_fd(), POLLIN, 0};
    poll(&p, 1, 1000);
    d.Reap();
  }
  return out;
}

std::vector<uint8_t> ReadFile(const std::string& path, size_t off, size_t len) {
  std::vector<uint8_t> v(len);
  int fd = open(path.c_str(), O_RDONLY);
  EXPECT_EQ(pread(fd, v.data(), len, static_cast<off_t>(off)), static_cast<ssize_t>(len));
  close(fd);
  return v;
}

std::unique_ptr<FileDevice> OpenOrDie(const FileDeviceOptions& o) {
  auto d = FileDevice::Open(o);
  EXPECT_TRUE(d.ok()) << d.status().ToString();
  return d.ok() ? std::move(d.value()) : nullptr;
}

// Runs on ext4 (O_DIRECT) and on tmpfs (the buffered fallback).
struct Fs {
  const char* name;
  const char* dir;
  bool direct;
};
class FileDeviceTest : public ::testing::TestWithParam<Fs> {
 protected:
  FileDeviceOptions Opts(const char* file, uint64_t size) {
    return {.path = dir_.File(file), .create_size = size, .direct = GetParam().direct};
  }
  TempDir dir_{GetParam().dir};
};

TEST_P(FileDeviceTest, CreatesAMissingFileAndRefusesOneWithoutSize) {
  auto missing = FileDevice::Open(Opts("none", 0));
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.status().code(), Code::kNotFound);
  auto d = OpenOrDie(Opts("v", 1 << 20));
  ASSERT_TRUE(d);
  EXPECT_EQ(d->Info().size_bytes, 1u << 20);
  EXPECT_EQ(std::filesystem::file_size(dir_.File("v")), 1u << 20);
  if (!GetParam().direct) EXPECT_FALSE(d->direct());
  if (std::string(GetParam().dir) == "/tmp" && GetParam().direct) EXPECT_TRUE(d->direct());
  EXPECT_EQ(d->Info().block_size, d->direct() ? 4096u : 512u);
}

TEST_P(FileDeviceTest, WritesAndReadsBackAlignedAndUnalignedBuffers) {
  auto d = OpenOrDie(Opts("v", 4 << 20));
  ASSERT_TRUE(d);
  alignas(4096) static uint8_t aligned[65536];
  std::vector<uint8_t> unaligned_store(65536 + 1);
  uint8_t* unaligned = unaligned_store.data() + 1;
  for (size_t i = 0; i < 65536; ++i) aligned[i] = static_cast<uint8_t>(i * 7);
  std::memcpy(unaligned, aligned, 65536);
  ASSERT_TRUE(RunIo(*d, {Op::kWrite, 0, 8192, 65536, aligned}).ok());
  ASSERT_TRUE(RunIo(*d, {Op::kWrite, kFua, 131072, 65536, unaligned}).ok());
  std::vector<uint8_t> back(65536 + 1);
  ASSERT_TRUE(RunIo(*d, {Op::kRead, 0, 8192, 65536, back.data() + 1}).ok());
  EXPECT_EQ(0, std::memcmp(back.data() + 1, aligned, 65536));
  ASSERT_TRUE(RunIo(*d, {Op::kRead, 0, 131072, 65536, back.data() + 1}).ok());
  EXPECT_EQ(0, std::memcmp(back.data() + 1, aligned, 65536));
  ASSERT_TRUE(RunIo(*d, {Op::kFlush}).ok());
  EXPECT_EQ(ReadFile(dir_.File("v"), 131072, 65536),
            std::vector<uint8_t>(aligned, aligned + 65536));
}

TEST_P(FileDeviceTest, RejectsOutOfRangeMisalignedAndReadOnly) {
  auto d = OpenOrDie(Opts("v", 1 << 20));
  ASSERT_TRUE(d);
  std::vector<uint8_t> buf(8192);
  const uint32_t bs = d->Info().block_size;
  for (IoRequest r :
       {IoRequest{Op::kRead, 0, (1 << 20) - bs, 2 * bs, buf.data()},
        IoRequest{Op::kWrite, 0, 1 << 20, bs, buf.data()},
        IoRequest{Op::kWrite, 0, 1, bs, buf.data()},
        IoRequest{Op::kWrite, 0, 0, bs - 1, buf.data()}, IoRequest{Op::kWrite, 0, 0, bs, nullptr},
        IoRequest{Op::kDiscard, 0, UINT64_MAX - 511, 1024, nullptr},
        IoRequest{Op::kWriteZeroes, kFastZero, 0, bs, nullptr}}) {
    Status s = RunIo(*d, r);
    EXPECT_EQ(s.code(), Code::kInvalidArgument) << OpName(r.op) << " " << r.offset;
    EXPECT_FALSE(s.message().empty());
  }
  d.reset();
  auto ro = OpenOrDie([&] {
    auto o = Opts("v", 0);
    o.read_only = true;
    return o;
  }());
  ASSERT_TRUE(ro);
  EXPECT_EQ(RunIo(*ro, {Op::kWrite, 0, 0, bs, buf.data()}).code(), Code::kInvalidArgument);
  EXPECT_TRUE(RunIo(*ro, {Op::kRead, 0, 0, bs, buf.data()}).ok());
}

TEST_P(FileDeviceTest, DiscardAndWriteZeroesReadBackZeroes) {
  auto d = OpenOrDie(Opts("v", 1 << 20));
  ASSERT_TRUE(d);
  alignas(4096) static uint8_t data[65536];
  std::memset(data, 0xEE, sizeof data);
  ASSERT_TRUE(RunIo(*d, {Op::kWrite, 0, 0, 65536, data}).ok());
  ASSERT_TRUE(RunIo(*d, {Op::kDiscard, 0, 0, 16384, nullptr}).ok());
  ASSERT_TRUE(RunIo(*d, {Op::kWriteZeroes, kNoUnmap | kFua, 16384, 16384, nullptr}).ok());
  ASSERT_TRUE(RunIo(*d, {Op::kWriteZeroes, 0, 32768, 16384, nullptr}).ok());
  alignas(4096) static uint8_t back[65536];
  ASSERT_TRUE(RunIo(*d, {Op::kRead, 0, 0, 65536, back}).ok());
  for (size_t i = 0; i < 49152; ++i) ASSERT_EQ(back[i], 0) << i;
  for (size_t i = 49152; i < 65536; ++i) ASSERT_EQ(back[i], 0xEE) << i;
  // On ext4 the punched ranges are holes (tmpfs may keep a huge page whole and report data).
  auto ext = d->BlockStatus(0, 1 << 20);
  ASSERT_TRUE(ext.ok());
  ASSERT_GE(ext->size(), 1u);
  if (std::string(GetParam().dir) == "/tmp") EXPECT_TRUE((*ext)[0].hole);
  uint64_t total = 0;
  for (const Extent& e : *ext) total += e.length;
  EXPECT_EQ(total, 1u << 20);
}

TEST_P(FileDeviceTest, ManyRequestsBeyondTheRingDepth) {
  auto d = OpenOrDie([&] {
    auto o = Opts("v", 8 << 20);
    o.queue_depth = 8;
    return o;
  }());
  ASSERT_TRUE(d);
  constexpr int kN = 200;
  const uint32_t bs = 4096;
  std::vector<uint8_t> bufs(kN * bs);
  for (int i = 0; i < kN; ++i) std::memset(&bufs[i * bs], i, bs);
  int completed = 0;
  for (int i = 0; i < kN; ++i) {
    d->Submit({Op::kWrite, 0, uint64_t(i) * bs, bs, &bufs[i * bs]}, [&](Status s) {
      EXPECT_TRUE(s.ok()) << s.ToString();
      ++completed;
    });
  }
  while (completed < kN) {
    pollfd p{d->event_fd(), POLLIN, 0};
    poll(&p, 1, 1000);
    d->Reap();
  }
  EXPECT_EQ(d->in_flight(), 0u);
  std::vector<uint8_t> back(kN * bs);
  ASSERT_TRUE(RunIo(*d, {Op::kRead, 0, 0, uint32_t(kN * bs), back.data()}).ok());
  EXPECT_EQ(back, bufs);
}

TEST_P(FileDeviceTest, GrowsButNeverShrinks) {
  auto d = OpenOrDie(Opts("v", 1 << 20));
  ASSERT_TRUE(d);
  EXPECT_TRUE(d->Resize(2 << 20).ok());
  EXPECT_EQ(d->Info().size_bytes, 2u << 20);
  EXPECT_EQ(std::filesystem::file_size(dir_.File("v")), 2u << 20);
  EXPECT_FALSE(d->Resize(1 << 20).ok());
  EXPECT_FALSE(d->Resize((2 << 20) + 1).ok());
  std::vector<uint8_t> buf(4096, 1);
  EXPECT_TRUE(RunIo(*d, {Op::kWrite, 0, (2 << 20) - 4096, 4096, buf.data()}).ok());
}

// Crash-test mode: only FUA writes and writes before a completed FLUSH reach the file.
TEST_P(FileDeviceTest, VolatileCacheKeepsUnflushedWritesOutOfTheFile) {
  const std::string path = dir_.File("v");
  auto d = OpenOrDie([&] {
    auto o = Opts("v", 1 << 20);
    o.volatile_cache = true;
    return o;
  }());
  ASSERT_TRUE(d);
  const uint32_t bs = d->Info().block_size;
  std::vector<uint8_t> a(bs, 0xAA), b(bs, 0xBB), c(bs, 0xCC), back(bs);
  ASSERT_TRUE(RunIo(*d, {Op::kWrite, 0, 0, bs, a.data()}).ok());
  ASSERT_TRUE(RunIo(*d, {Op::kRead, 0, 0, bs, back.data()}).ok());
  EXPECT_EQ(back, a) << "reads see the cache";
  EXPECT_EQ(ReadFile(path, 0, bs), std::vector<uint8_t>(bs, 0)) << "not in the file yet";
  ASSERT_TRUE(RunIo(*d, {Op::kFlush}).ok());
  EXPECT_EQ(ReadFile(path, 0, bs), a) << "flushed";
  ASSERT_TRUE(RunIo(*d, {Op::kWrite, kFua, bs, bs, b.data()}).ok());
  EXPECT_EQ(ReadFile(path, bs, bs), b) << "FUA goes straight through";
  ASSERT_TRUE(RunIo(*d, {Op::kWrite, 0, 2 * bs, bs, c.data()}).ok());
  ASSERT_TRUE(RunIo(*d, {Op::kWrite, 0, 0, bs, c.data()}).ok());
  d.reset();  // the power cut: the cache is gone
  EXPECT_EQ(ReadFile(path, 0, bs), a);
  EXPECT_EQ(ReadFile(path, bs, bs), b);
  EXPECT_EQ(ReadFile(path, 2 * bs, bs), std::vector<uint8_t>(bs, 0));
}

// ext4 with O_DIRECT, ext4 buffered (the fallback), and tmpfs (O_DIRECT only on newer kernels).
INSTANTIATE_TEST_SUITE_P(Filesystems, FileDeviceTest,
                         ::testing::Values(Fs{"Direct", "/tmp", true},
                                           Fs{"Buffered", "/tmp", false},
                                           Fs{"Tmpfs", "/dev/shm", true}),
                         [](const auto& info) { return std::string(info.param.name); });

void PrintTo(const Fs& fs, std::ostream* os) {
  *os << fs.name;
}

}  // namespace
}  // namespace opensrd::block
