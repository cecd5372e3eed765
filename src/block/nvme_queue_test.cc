// The NVMe-style host interface end to end: a host (the library, in this process or in a forked
// child) drives an NvmeController over shared memory; every opcode, each error status, a full
// queue, wrap-around of both rings, several queues, and one host at a time.
#include <gtest/gtest.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstring>
#include <filesystem>
#include <mutex>
#include <thread>
#include <vector>

#include "block/nvme_controller.h"
#include "common/pattern.h"
#include "opensrd/nvme_queue.h"

namespace opensrd::nvme {
namespace {

// A RAM disk that completes on its own thread, as a remote volume does.
class RamDevice : public block::BlockDevice {
 public:
  RamDevice(uint64_t size, bool read_only = false) : bytes_(size), ro_(read_only) {}
  ~RamDevice() override {
    for (auto& t : threads_) t.join();
  }
  block::VolumeInfo Info() const override {
    block::VolumeInfo i;
    i.size_bytes = bytes_.size();
    i.block_size = 512;
    i.max_transfer = 128 << 10;
    i.read_only = ro_;
    return i;
  }
  void Submit(const block::IoRequest& r, block::IoCallback done) override {
    Status s = block::ValidateRequest(Info(), r);
    if (s.ok()) {
      std::lock_guard<std::mutex> lock(mu_);
      ++ops_[static_cast<int>(r.op)];
      if (r.op == block::Op::kRead) std::memcpy(r.data, &bytes_[r.offset], r.length);
      if (r.op == block::Op::kWrite) std::memcpy(&bytes_[r.offset], r.data, r.length);
      if (r.op == block::Op::kDiscard || r.op == block::Op::kWriteZeroes) {
        std::memset(&bytes_[r.offset], 0, r.length);
      }
    }
    std::lock_guard<std::mutex> lock(mu_);
    threads_.emplace_back([done = std::move(done), s] { done(s); });
  }
  // The device's bytes and op counts, read under its lock (its threads write them).
  std::vector<uint8_t> Bytes() {
    std::lock_guard<std::mutex> lock(mu_);
    return bytes_;
  }
  int Ops(block::Op op) {
    std::lock_guard<std::mutex> lock(mu_);
    return ops_[static_cast<int>(op)];
  }
  std::vector<uint8_t> bytes_;
  int ops_[5] = {};
  bool ro_;
  std::mutex mu_;
  std::vector<std::thread> threads_;
};

std::string SocketPath() {
  return "/tmp/opensrd-nvme-" + std::to_string(getpid()) + "-" +
         std::to_string(reinterpret_cast<uintptr_t>(&SocketPath) & 0xFFFF) + ".sock";
}

struct Rig {
  explicit Rig(Layout l = {}, bool ro = false) : dev(4 << 20, ro) {
    ControllerOptions o;
    o.socket_path = SocketPath();
    o.layout = l;
    auto c = NvmeController::Create(o, &dev);
    EXPECT_TRUE(c.ok()) << c.status().ToString();
    ctrl = std::move(c.value());
    auto h = NvmeHost::Connect(o.socket_path);
    EXPECT_TRUE(h.ok()) << h.status().ToString();
    host = std::move(h.value());
    path = o.socket_path;
  }
  // Submits and waits for its completion.
  Completion Run(const Command& c, uint16_t q = 0) {
    EXPECT_TRUE(host->Submit(q, c).ok());
    Completion e;
    while (host->Reap(q, {&e, 1}) == 0) host->Wait(100);
    EXPECT_EQ(e.cid, c.cid);
    return e;
  }
  RamDevice dev;
  std::unique_ptr<NvmeController> ctrl;
  std::unique_ptr<NvmeHost> host;
  std::string path;
};

uint16_t St(const Completion& e) {
  return e.status & kStatusMask;
}

TEST(NvmeQueue, EveryOpcode) {
  Rig r;
  ASSERT_TRUE(r.host);
  const NamespaceInfo ns = r.host->Info();
  EXPECT_EQ(ns.blocks, (4u << 20) / 512);
  EXPECT_EQ(ns.block_size, 512u);
  std::span<uint8_t> d = r.host->data();
  FillPattern(3, d.data(), 65536);
  EXPECT_EQ(St(r.Run(WriteCommand(1, 100, 128, 0, 512))), kSuccess);
  EXPECT_EQ(St(r.Run(WriteCommand(2, 300, 8, 0, 512, true))), kSuccess);
  std::memset(d.data() + 65536, 0, 65536);
  EXPECT_EQ(St(r.Run(ReadCommand(3, 100, 128, 65536, 512))), kSuccess);
  EXPECT_TRUE(CheckPattern(3, d.data() + 65536, 65536));
  EXPECT_EQ(0, std::memcmp(&r.dev.Bytes()[100 * 512], d.data(), 65536));
  EXPECT_EQ(St(r.Run(FlushCommand(4))), kSuccess);
  EXPECT_EQ(St(r.Run(WriteZeroesCommand(5, 100, 8, false))), kSuccess);
  EXPECT_EQ(St(r.Run(WriteZeroesCommand(6, 108, 8, true))), kSuccess);
  auto* ranges = reinterpret_cast<DsmRange*>(d.data() + 200000);
  ranges[0] = {0, 8, 116};
  ranges[1] = {0, 8, 300};
  EXPECT_EQ(St(r.Run(DiscardCommand(7, 200000, 2))), kSuccess);
  const std::vector<uint8_t> bytes = r.dev.Bytes();
  for (size_t i = 100 * 512; i < 124 * 512; ++i) ASSERT_EQ(bytes[i], 0) << i;
  for (size_t i = 300 * 512; i < 308 * 512; ++i) ASSERT_EQ(bytes[i], 0) << i;
  EXPECT_EQ(r.dev.Ops(block::Op::kDiscard), 2);
  EXPECT_EQ(r.dev.Ops(block::Op::kFlush), 1);
  Command hint = DiscardCommand(8, 200000, 1);
  hint.cdw11 = 0;  // no deallocate: only a hint, nothing done
  EXPECT_EQ(St(r.Run(hint)), kSuccess);
  EXPECT_EQ(r.dev.Ops(block::Op::kDiscard), 2);
}

TEST(NvmeQueue, ErrorStatuses) {
  Rig r;
  ASSERT_TRUE(r.host);
  const uint64_t blocks = r.host->Info().blocks;
  const uint64_t data = r.host->data().size();
  auto before = r.dev.Bytes();
  EXPECT_EQ(St(r.Run(WriteCommand(1, blocks - 1, 2, 0, 512))), kLbaOutOfRange & kStatusMask);
  EXPECT_EQ(St(r.Run(ReadCommand(2, UINT64_MAX - 1, 4, 0, 512))), kLbaOutOfRange & kStatusMask);
  EXPECT_EQ(St(r.Run(WriteCommand(3, 0, 1, data - 256, 512))), kDataTransferError);
  Command shortbuf = WriteCommand(4, 0, 4, 0, 512);
  shortbuf.data_len = 1024;
  EXPECT_EQ(St(r.Run(shortbuf)), kDataTransferError);
  EXPECT_EQ(St(r.Run(WriteCommand(5, 0, 1, UINT64_MAX - 100, 512))), kDataTransferError);
  EXPECT_EQ(St(r.Run(WriteCommand(6, 0, 512, 0, 512))), kInvalidField & kStatusMask)
      << "256 KiB is beyond the 128 KiB max transfer";
  Command bad_op{};
  bad_op.opcode = 0x7F;
  bad_op.cid = 7;
  EXPECT_EQ(St(r.Run(bad_op)), kInvalidOpcode & kStatusMask);
  Command bad_ns = FlushCommand(8);
  bad_ns.nsid = 2;
  EXPECT_EQ(St(r.Run(bad_ns)), kInvalidNamespace & kStatusMask);
  auto* rg = reinterpret_cast<DsmRange*>(r.host->data().data());
  rg[0] = {0, 16, blocks - 8};
  EXPECT_EQ(St(r.Run(DiscardCommand(9, 0, 1))), kLbaOutOfRange & kStatusMask);
  EXPECT_EQ(St(r.Run(DiscardCommand(10, data - 8, 1))), kDataTransferError);
  EXPECT_EQ(r.dev.Bytes(), before) << "no failed command wrote anything";
  EXPECT_NE(std::string(StatusName(kLbaOutOfRange)), "unknown status");
  EXPECT_GE(r.ctrl->stats().errors, 10u);
}

TEST(NvmeQueue, ReadOnlyNamespaceRefusesWrites) {
  Rig r(Layout{}, true);
  ASSERT_TRUE(r.host);
  EXPECT_EQ(St(r.Run(WriteCommand(1, 0, 1, 0, 512))), kWriteToReadOnly & kStatusMask);
  EXPECT_EQ(St(r.Run(WriteZeroesCommand(2, 0, 1, true))), kWriteToReadOnly & kStatusMask);
  EXPECT_EQ(St(r.Run(ReadCommand(3, 0, 1, 0, 512))), kSuccess);
}

TEST(NvmeQueue, FullQueueAndWrapAround) {
  Layout l;
  l.sq_entries = 8;
  l.cq_entries = 8;
  Rig r(l);
  ASSERT_TRUE(r.host);
  // Ten rounds of both rings; each round fills the SQ to its limit first.
  uint16_t cid = 0;
  for (int round = 0; round < 10; ++round) {
    int submitted = 0;
    while (r.host->Submit(0, WriteCommand(cid, cid % 64, 1, (cid % 64) * 512, 512)).ok()) {
      ++cid;
      ++submitted;
      ASSERT_LT(submitted, 100);
    }
    EXPECT_GE(submitted, 1);
    EXPECT_LE(submitted, 7) << "an SQ of 8 holds at most 7 commands";
    EXPECT_EQ(r.host->Submit(0, FlushCommand(999)).code(), Code::kResourceExhausted);
    int reaped = 0;
    Completion e[16];
    while (reaped < submitted) {
      const size_t n = r.host->Reap(0, e);
      for (size_t i = 0; i < n; ++i) EXPECT_EQ(St(e[i]), kSuccess);
      reaped += static_cast<int>(n);
      if (n == 0) r.host->Wait(100);
    }
  }
  EXPECT_GE(cid, 60);
}

TEST(NvmeQueue, SeveralQueuesAndOneHostAtATime) {
  Layout l;
  l.num_queues = 4;
  Rig r(l);
  ASSERT_TRUE(r.host);
  EXPECT_EQ(r.host->num_queues(), 4);
  for (uint16_t q = 0; q < 4; ++q) {
    EXPECT_EQ(St(r.Run(WriteCommand(q, q * 8, 8, q * 4096, 512), q)), kSuccess);
  }
  auto second = NvmeHost::Connect(r.path);
  ASSERT_FALSE(second.ok());
  EXPECT_NE(second.status().message().find("another host"), std::string::npos);
  EXPECT_EQ(r.ctrl->stats().refused, 1u);
  // The first host leaves; the next one gets fresh queues.
  r.host.reset();
  std::unique_ptr<NvmeHost> next;
  for (int i = 0; i < 100 && !next; ++i) {
    auto h = NvmeHost::Connect(r.path);
    if (h.ok()) next = std::move(h.value());
    if (!next) std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  ASSERT_TRUE(next);
  r.host = std::move(next);
  EXPECT_EQ(St(r.Run(ReadCommand(1, 0, 8, 0, 512), 2)), kSuccess);
}

// The host is another process: the queues and data live in shared memory only.
TEST(NvmeQueue, HostInAnotherProcess) {
  RamDevice dev(1 << 20);
  ControllerOptions o;
  o.socket_path = SocketPath() + "x";
  auto c = NvmeController::Create(o, &dev);
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  const pid_t pid = fork();
  if (pid == 0) {
    auto h = NvmeHost::Connect(o.socket_path);
    if (!h.ok()) _exit(2);
    NvmeHost& host = *h.value();
    FillPattern(77, host.data().data(), 8192);
    if (!host.Submit(0, WriteCommand(1, 16, 16, 0, 512)).ok()) _exit(3);
    Completion e;
    while (host.Reap(0, {&e, 1}) == 0) host.Wait(100);
    _exit((e.status & kStatusMask) == kSuccess ? 0 : 4);
  }
  int st = 0;
  ASSERT_EQ(waitpid(pid, &st, 0), pid);
  ASSERT_TRUE(WIFEXITED(st));
  EXPECT_EQ(WEXITSTATUS(st), 0);
  EXPECT_TRUE(CheckPattern(77, &dev.Bytes()[16 * 512], 8192));
}

}  // namespace
}  // namespace opensrd::nvme
