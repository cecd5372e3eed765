// Drives an NbdSession with arbitrary client bytes over a MemoryDevice: the handshake, option
// parsing and every command path, with device completions applied inline or held and applied
// in reverse order. The property: whatever the client sends, nothing crashes or touches memory
// out of bounds (ASan/UBSan), memory stays bounded (limits), every submission is answered, and
// the output queue's accounting matches what GatherOutput hands out.
//
// Input: byte 0 chooses the setup (bit 0 read-only, bit 1 can_fast_zero, bit 2 hold completions
// and apply them newest first, bits 4-7 the size of the pieces the stream is fed in); the rest is
// the client's byte stream. The committed seeds (fuzz/corpus/nbd, made by make_nbd_corpus.sh) are
// real client transcripts, so the fuzzer starts inside the transmission phase.
#include <sys/uio.h>

#include <cstdint>
#include <cstdlib>
#include <vector>

#include "block/memory_device.h"
#include "block/nbd/nbd_session.h"

using namespace opensrd;
using namespace opensrd::block;

namespace {

void Check(bool ok) {
  if (!ok) std::abort();
}

void DrainOutput(nbd::NbdSession& s) {
  iovec iov[32];
  while (s.HasOutput()) {
    const size_t k = s.GatherOutput(iov, 32);
    size_t n = 0;
    for (size_t i = 0; i < k; ++i) {
      Check(iov[i].iov_len > 0);
      volatile uint8_t touch = static_cast<const uint8_t*>(iov[i].iov_base)[iov[i].iov_len - 1];
      (void)touch;  // every byte handed out must be readable (ASan checks the last)
      n += iov[i].iov_len;
    }
    Check(n > 0 && n <= s.output_bytes());
    s.ConsumeOutput(n);
  }
  Check(s.output_bytes() == 0);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 1) return 0;
  const uint8_t mode = data[0];
  ++data;
  --size;
  VolumeInfo info;
  info.size_bytes = 1 << 20;
  info.block_size = 512;
  info.max_transfer = 64 * 1024;
  info.read_only = mode & 1;
  info.can_fast_zero = mode & 2;
  const bool hold = mode & 4;
  const size_t piece = 1 + (mode >> 4) * 61;
  MemoryDevice device(info);
  nbd::NbdExportConfig config;
  config.name = "disk";
  config.max_in_flight = 8;
  config.max_buffered = 256 * 1024;
  nbd::NbdSession session(device, config);

  std::vector<nbd::NbdSession::Submission> subs, held;
  auto complete = [&](const nbd::NbdSession::Submission& s) {
    device.Submit(s.request, [&, id = s.id](Status st) { session.Complete(id, st); });
  };
  size_t at = 0;
  for (int stalls = 0; stalls < 2;) {
    const size_t n = std::min(piece, size - at);
    const size_t used = session.Feed(n ? data + at : nullptr, n);
    Check(used <= n);
    at += used;
    subs.clear();
    session.TakeSubmissions(&subs);
    Check(session.in_flight() <= config.max_in_flight);
    for (const auto& s : subs) {
      if (hold) {
        held.push_back(s);
      } else {
        complete(s);
      }
    }
    // Held completions are applied once the session stops taking bytes (at a limit or the end).
    if (used == 0 && !held.empty()) {
      for (auto it = held.rbegin(); it != held.rend(); ++it) complete(*it);
      held.clear();
    }
    DrainOutput(session);
    stalls = (used == 0 && subs.empty()) ? stalls + 1 : 0;
    if (session.closing() && held.empty() && session.in_flight() == 0) break;
  }
  for (auto it = held.rbegin(); it != held.rend(); ++it) complete(*it);
  DrainOutput(session);
  Check(session.in_flight() == 0);
  return 0;
}
