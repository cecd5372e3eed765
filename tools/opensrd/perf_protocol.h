// The tiny application protocol that `opensrd perf` runs inside transport messages.
//
// Every message starts with a 24-byte AppHeader, little-endian (both ends are this program):
//   offset 0  u8  kind     kData (bw), kPing (lat), kPong (the server's echo of a kPing),
//                          kEnd (client: "I am done"), kReport (server: what it verified)
//   offset 1  u8  flags    0
//   offset 2  u16 reserved 0
//   offset 4  u32 length   the whole message length, header included (so truncation shows)
//   offset 8  u64 key      the pattern key of the bytes that follow (unique per message)
//   offset 16 u64 seq      the client's message number
// kData / kPing / kPong: bytes [24, length) are FillPattern(key, ...). The server checks every
// byte with CheckPattern; it echoes a kPing back unchanged except for the kind (kPong) and the
// client checks the echo too.
// kEnd: `seq` = data messages the client completed; no payload.
// kReport: a ReportBody follows the header: what the server verified for this client since its
// first message, and its endpoint counters over the same span.
// Header-only; plain functions, thread-safe.
#pragma once
#include <cstdint>
#include <cstring>

#include "common/pattern.h"

namespace opensrd::cli {

enum class AppKind : uint8_t { kData = 1, kPing = 2, kPong = 3, kEnd = 4, kReport = 5 };

struct AppHeader {
  AppKind kind = AppKind::kData;
  uint8_t flags = 0;
  uint16_t reserved = 0;
  uint32_t length = 0;
  uint64_t key = 0;
  uint64_t seq = 0;
};
static_assert(sizeof(AppHeader) == 24);
inline constexpr size_t kAppHeaderLen = sizeof(AppHeader);

struct ReportBody {
  uint64_t messages_ok = 0;   // data or ping messages whose length and every byte checked out
  uint64_t messages_bad = 0;  // wrong length, wrong pattern, truncated or failed completion
  uint64_t bytes_ok = 0;
  uint64_t corrupt_dropped = 0;     // server endpoint counters (deltas since the client's first
  uint64_t duplicates_dropped = 0;  // message; endpoint-wide when clients run concurrently)
  uint64_t retransmits = 0;
  // Data messages delivered after a message the client posted later (the client's `seq`): the
  // transport's out-of-order delivery made visible; 0 with --in-order.
  uint64_t overtaken = 0;
};
static_assert(sizeof(ReportBody) == 56);

inline void WriteHeader(uint8_t* dst, const AppHeader& h) {
  std::memcpy(dst, &h, sizeof h);
}
inline bool ReadHeader(const uint8_t* src, size_t len, AppHeader& h) {
  if (len < sizeof h) return false;
  std::memcpy(&h, src, sizeof h);
  return true;
}

// A full message: header + pattern of `key`.
inline void FillMessage(uint8_t* dst, uint32_t len, AppKind kind, uint64_t key, uint64_t seq) {
  WriteHeader(dst, AppHeader{.kind = kind, .length = len, .key = key, .seq = seq});
  FillPattern(key, dst + kAppHeaderLen, len - kAppHeaderLen);
}

// Checks a received data/ping/pong message of `len` bytes against its own header.
inline bool CheckMessage(const uint8_t* src, size_t len, AppHeader& h) {
  if (!ReadHeader(src, len, h) || h.length != len) return false;
  return CheckPattern(h.key, src + kAppHeaderLen, len - kAppHeaderLen);
}

}  // namespace opensrd::cli
