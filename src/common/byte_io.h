// Big-endian cursors over byte buffers, for every wire format opensrd encodes by hand (no struct
// is ever cast onto packet bytes). Bounds are the callers' job: they check lengths first, so the
// cursors stay branch-free on the hot path.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>

namespace opensrd {

struct ByteWriter {
  uint8_t* p;
  void U8(uint8_t v) { *p++ = v; }
  void Bytes(const void* b, size_t n) {
    if (n > 0) std::memcpy(p, b, n);
    p += n;
  }
  void Zeros(size_t n) {
    std::memset(p, 0, n);
    p += n;
  }
  void U16(uint16_t v) {
    U8(static_cast<uint8_t>(v >> 8));
    U8(static_cast<uint8_t>(v));
  }
  void U32(uint32_t v) {
    U16(static_cast<uint16_t>(v >> 16));
    U16(static_cast<uint16_t>(v));
  }
  void U64(uint64_t v) {
    U32(static_cast<uint32_t>(v >> 32));
    U32(static_cast<uint32_t>(v));
  }
};

struct ByteReader {
  const uint8_t* p;
  uint8_t U8() { return *p++; }
  void Bytes(void* b, size_t n) {
    if (n > 0) std::memcpy(b, p, n);
    p += n;
  }
  void Skip(size_t n) { p += n; }
  uint16_t U16() {
    uint16_t hi = U8();
    return static_cast<uint16_t>((hi << 8) | U8());
  }
  uint32_t U32() {
    uint32_t hi = U16();
    return (hi << 16) | U16();
  }
  uint64_t U64() {
    uint64_t hi = U32();
    return (hi << 32) | U32();
  }
};

}  // namespace opensrd
