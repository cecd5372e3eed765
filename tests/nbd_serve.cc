// nbd_serve: serves an in-memory sparse volume (MemoryDevice), or a file through FileDevice
// (io_uring, reaped on the server's loop thread), over NBD, so the real clients (qemu-io,
// qemu-img, nbdcopy, nbdinfo, fio) can be pointed at opensrd's NBD server in tests and the
// front's cost measured beside qemu-nbd on the same file. Test-only; the production front is
// `opensrd adapter --nbd`.
//
// Usage: nbd_serve --listen unix:PATH|HOST:PORT [--name EXPORT] [--size BYTES[K|M|G]]
//          [--block-size N] [--max-transfer N] [--read-only] [--no-multi-conn]
//          [--no-fast-zero] [--no-sparse-reads] [--file PATH [--buffered]]
// Prints "listening on ADDR" once ready; runs until SIGINT or SIGTERM. Exit 2 on bad usage.
#include <signal.h>

#include <cstdio>
#include <cstdlib>
#include <string>

#include "block/file_device.h"
#include "block/memory_device.h"
#include "block/nbd/nbd_server.h"

namespace {

bool ParseSize(const std::string& s, uint64_t* out) {
  char* end = nullptr;
  const unsigned long long v = std::strtoull(s.c_str(), &end, 10);
  if (end == s.c_str()) return false;
  const std::string suffix(end);
  uint64_t mult = 1;
  if (suffix == "K") {
    mult = 1ull << 10;
  } else if (suffix == "M") {
    mult = 1ull << 20;
  } else if (suffix == "G") {
    mult = 1ull << 30;
  } else if (!suffix.empty()) {
    return false;
  }
  *out = v * mult;
  return true;
}

int Usage(const std::string& why) {
  std::fprintf(stderr,
               "nbd_serve: %s\nusage: nbd_serve --listen unix:PATH|HOST:PORT [--name EXPORT] "
               "[--size BYTES[K|M|G]] [--block-size N] [--max-transfer N] [--read-only] "
               "[--no-multi-conn] [--no-fast-zero]\n",
               why.c_str());
  return 2;
}

}  // namespace

int main(int argc, char** argv) {
  using namespace opensrd::block;
  std::string listen, file;
  bool buffered = false;
  nbd::NbdExportConfig config;
  config.name = "disk";
  config.description = "opensrd nbd_serve memory volume";
  VolumeInfo info;
  info.size_bytes = 64ull << 20;
  info.can_fast_zero = true;
  info.max_transfer = 32u << 20;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    auto value = [&](std::string* v) {
      if (i + 1 >= argc) return false;
      *v = argv[++i];
      return true;
    };
    std::string v;
    uint64_t n = 0;
    if (a == "--listen") {
      if (!value(&listen)) return Usage("--listen needs a value");
    } else if (a == "--name") {
      if (!value(&config.name)) return Usage("--name needs a value");
    } else if (a == "--size") {
      if (!value(&v) || !ParseSize(v, &n)) return Usage("bad --size");
      info.size_bytes = n;
    } else if (a == "--block-size") {
      if (!value(&v) || !ParseSize(v, &n) || n == 0 || (n & (n - 1)) || n > 65536) {
        return Usage("bad --block-size (a power of two up to 64K)");
      }
      info.block_size = static_cast<uint32_t>(n);
    } else if (a == "--max-transfer") {
      if (!value(&v) || !ParseSize(v, &n) || n == 0 || n > (1u << 30)) {
        return Usage("bad --max-transfer");
      }
      info.max_transfer = static_cast<uint32_t>(n);
    } else if (a == "--read-only") {
      info.read_only = true;
    } else if (a == "--no-multi-conn") {
      config.multi_conn = false;
    } else if (a == "--no-fast-zero") {
      info.can_fast_zero = false;
    } else if (a == "--file") {
      if (!value(&file)) return Usage("--file needs a path");
    } else if (a == "--buffered") {
      buffered = true;
    } else if (a == "--no-sparse-reads") {
      config.sparse_reads = false;
    } else {
      return Usage("unknown argument " + a);
    }
  }
  if (listen.empty()) return Usage("--listen is required");
  if (info.size_bytes % info.block_size != 0)
    return Usage("--size must be a multiple of the block");

  // Block the stop signals before any thread starts, so only sigwait sees them.
  sigset_t stop;
  sigemptyset(&stop);
  sigaddset(&stop, SIGINT);
  sigaddset(&stop, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &stop, nullptr);

  std::unique_ptr<BlockDevice> owned;
  std::vector<nbd::NbdServer::WatchFd> watch;
  MemoryDevice* memory = nullptr;
  if (file.empty()) {
    auto m = std::make_unique<MemoryDevice>(info, std::max<uint32_t>(4096, info.block_size));
    memory = m.get();
    owned = std::move(m);
  } else {
    FileDeviceOptions fo;
    fo.path = file;
    fo.create_size = info.size_bytes;
    fo.direct = !buffered;
    fo.read_only = info.read_only;
    auto f = FileDevice::Open(fo);
    if (!f.ok()) {
      std::fprintf(stderr, "nbd_serve: %s\n", f.status().ToString().c_str());
      return 1;
    }
    FileDevice* raw = f.value().get();
    watch.push_back({raw->event_fd(), [raw] { raw->Reap(); }});
    owned = std::move(f.value());
  }
  BlockDevice& device = *owned;
  auto server = nbd::NbdServer::Start(device, listen, config, std::move(watch));
  if (!server.ok()) {
    std::fprintf(stderr, "nbd_serve: %s\n", server.status().ToString().c_str());
    return 1;
  }
  std::printf("listening on %s\n", server.value()->address().c_str());
  std::fflush(stdout);
  int sig = 0;
  sigwait(&stop, &sig);
  server.value()->Stop();
  const auto c = server.value()->counters();
  const auto d = memory ? memory->counters() : MemoryDevice::Counters{};
  std::fprintf(stderr,
               "nbd_serve: %llu connections, %llu requests (reads %llu writes %llu flushes %llu "
               "discards %llu write_zeroes %llu fua %llu)\n",
               (unsigned long long)c.connections, (unsigned long long)c.requests,
               (unsigned long long)d.reads, (unsigned long long)d.writes,
               (unsigned long long)d.flushes, (unsigned long long)d.discards,
               (unsigned long long)d.write_zeroes, (unsigned long long)d.fua);
  return 0;
}
