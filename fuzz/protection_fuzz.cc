// The cluster key's check runs on every datagram before the parser (src/transport/protection.h):
// arbitrary bytes must be refused without reading or writing out of bounds, and nothing but a
// datagram sealed with the key may open. Input: [mode byte][datagram]. Mode bit 0 picks mac or
// aead; bit 1 seals the rest first (a real protected datagram, which must open to itself,
// and must not open after one byte flips).
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <vector>

#include "common/rng.h"
#include "transport/protection.h"

using namespace opensrd;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 1) return 0;
  const KeyMode mode = (data[0] & 1) ? KeyMode::kAead : KeyMode::kMac;
  std::array<uint8_t, 32> key;
  key.fill(0x3C);
  Rng seeded(5);
  PacketProtection p(mode, key, &seeded);
  std::vector<uint8_t> in(data + 1, data + size);
  if (data[0] & 2) {
    const size_t len = in.size();
    if (len < 28) return 0;  // Seal refuses anything shorter than the clear header
    std::vector<uint8_t> sealed(len + PacketProtection::kTrailerLen);
    std::memcpy(sealed.data(), in.data(), len);
    const size_t n = p.Seal(sealed, len);
    if (n == 0) return 0;  // shorter than the clear header
    std::vector<uint8_t> out(n);
    if (p.Open({sealed.data(), n}, out) != len) std::abort();
    if (std::memcmp(out.data(), in.data(), len) != 0) std::abort();
    sealed[len / 2] ^= 1;
    if (p.Open({sealed.data(), n}, out) != 0) std::abort();
    return 0;
  }
  std::vector<uint8_t> out(in.size());
  (void)p.Open(in, out);
  return 0;
}
