// An example host program for the storage adapter's NVMe-style queues: it attaches to an
// adapter (`opensrd adapter ... --nvme unix:PATH`), writes a pattern over a range of blocks with
// a queue depth of --qd, flushes, reads everything back and verifies it. Exit 0 when every
// byte matched, 1 otherwise, 2 for bad usage.
//
//   opensrd-nvme-example --socket /tmp/nvme.sock [--blocks N] [--io-blocks K] [--qd D]
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "common/pattern.h"
#include "opensrd/nvme_queue.h"

using namespace opensrd;
using namespace opensrd::nvme;

namespace {

// Runs `n` commands made by `make(i, slot)` with at most `qd` in flight (each owns data-area
// slot `slot` until it completes, when `done(i, slot)` runs); false on any error.
template <typename Make, typename Done>
bool RunAll(NvmeHost& host, uint32_t n, uint32_t qd, Make make, Done done_cb) {
  uint32_t next = 0, done = 0, inflight = 0;
  std::vector<uint32_t> free_slots;
  for (uint32_t s = 0; s < qd; ++s) free_slots.push_back(s);
  std::vector<uint32_t> slot_of(65536);
  while (done < n) {
    while (next < n && inflight < qd) {
      const uint32_t slot = free_slots.back();
      Command c = make(next, slot);
      c.cid = static_cast<uint16_t>(next);
      if (!host.Submit(0, c).ok()) break;  // queue full: reap first
      free_slots.pop_back();
      slot_of[c.cid] = slot;
      ++next;
      ++inflight;
    }
    Completion e[64];
    const size_t got = host.Reap(0, e);
    if (got == 0) host.Wait(10);
    for (size_t i = 0; i < got; ++i) {
      if ((e[i].status & kStatusMask) != kSuccess) {
        std::fprintf(stderr, "command %u failed: %s\n", e[i].cid, StatusName(e[i].status));
        return false;
      }
      done_cb(e[i].cid, slot_of[e[i].cid]);
      free_slots.push_back(slot_of[e[i].cid]);
      --inflight;
      ++done;
    }
  }
  return true;
}

}  // namespace

int main(int argc, char** argv) {
  std::string socket;
  uint32_t blocks = 4096, io_blocks = 8, qd = 16;
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string k = argv[i];
    if (k == "--socket")
      socket = argv[i + 1];
    else if (k == "--blocks")
      blocks = static_cast<uint32_t>(std::atoi(argv[i + 1]));
    else if (k == "--io-blocks")
      io_blocks = static_cast<uint32_t>(std::atoi(argv[i + 1]));
    else if (k == "--qd")
      qd = static_cast<uint32_t>(std::atoi(argv[i + 1]));
    else {
      std::fprintf(stderr, "unknown option %s\n", k.c_str());
      return 2;
    }
  }
  if (socket.empty() || io_blocks == 0 || qd == 0 || blocks < io_blocks ||
      blocks / io_blocks > 65535) {
    std::fprintf(stderr, "usage: %s --socket PATH [--blocks N] [--io-blocks K] [--qd D]\n",
                 argv[0]);
    return 2;
  }
  auto h = NvmeHost::Connect(socket);
  if (!h.ok()) {
    std::fprintf(stderr, "%s\n", h.status().ToString().c_str());
    return 1;
  }
  NvmeHost& host = *h.value();
  const NamespaceInfo ns = host.Info();
  const uint32_t bs = ns.block_size;
  const uint64_t io_bytes = uint64_t{io_blocks} * bs;
  qd = std::min<uint32_t>(qd, host.sq_entries() - 1);
  if (blocks > ns.blocks || io_bytes > ns.max_transfer || io_bytes * qd > host.data().size()) {
    std::fprintf(stderr, "the namespace (%llu blocks of %u) or data area is too small\n",
                 static_cast<unsigned long long>(ns.blocks), bs);
    return 2;
  }
  const uint32_t ios = blocks / io_blocks;
  uint8_t* area = host.data().data();
  auto nothing = [](uint32_t, uint32_t) {};
  bool ok = RunAll(
      host, ios, qd,
      [&](uint32_t i, uint32_t slot) {
        FillPattern(i, area + slot * io_bytes, io_bytes);
        return WriteCommand(0, uint64_t{i} * io_blocks, io_blocks, slot * io_bytes, bs);
      },
      nothing);
  ok = ok && RunAll(
                 host, 1, 1, [](uint32_t, uint32_t) { return FlushCommand(0); }, nothing);
  uint32_t bad = 0;
  ok = ok && RunAll(
                 host, ios, qd,
                 [&](uint32_t i, uint32_t slot) {
                   std::memset(area + slot * io_bytes, 0, io_bytes);
                   return ReadCommand(0, uint64_t{i} * io_blocks, io_blocks, slot * io_bytes, bs);
                 },
                 [&](uint32_t i, uint32_t slot) {
                   bad += !CheckPattern(i, area + slot * io_bytes, io_bytes);
                 });
  std::printf("{\"ios\": %u, \"bytes\": %llu, \"verified\": %s, \"bad\": %u}\n", ios,
              static_cast<unsigned long long>(uint64_t{ios} * io_bytes),
              ok && bad == 0 ? "true" : "false", bad);
  return ok && bad == 0 ? 0 : 1;
}
