#include "transport/secrets.h"

#include <sodium.h>
#include <sys/random.h>

#include <cerrno>
#include <cstring>
#include <stdexcept>
#include <string>

namespace opensrd {

namespace {
constexpr Nanos kCookieStamp = 1'000'000'000;  // cookie time resolution: one second
constexpr uint64_t kCookieMaxAge = 2;          // stamps: valid for 2-3 s

void Keyed(const std::array<uint8_t, 32>& key, const uint8_t* in, size_t n, uint8_t* out,
           size_t out_len) {
  crypto_generichash(out, out_len, in, n, key.data(), key.size());
}

struct Buf {
  uint8_t b[64];
  size_t n = 0;
  void U64(uint64_t v) {
    for (int i = 7; i >= 0; --i) b[n++] = static_cast<uint8_t>(v >> (8 * i));
  }
};
}  // namespace

void Secrets::Fill(uint8_t* out, size_t n, Rng* seeded) {
  if (seeded != nullptr) {
    for (size_t i = 0; i < n; ++i) out[i] = static_cast<uint8_t>(seeded->Next());
    return;
  }
  size_t got = 0;
  while (got < n) {
    const ssize_t r = getrandom(out + got, n - got, 0);
    if (r < 0 && errno == EINTR) continue;
    if (r < 0) throw std::runtime_error(std::string("getrandom: ") + std::strerror(errno));
    got += static_cast<size_t>(r);
  }
}

Secrets::Secrets(uint64_t random_seed, uint64_t static_seed) {
  if (sodium_init() < 0) throw std::runtime_error("libsodium failed to initialize");
  Rng seeded(random_seed ^ 0x5EC2E75ull);
  Rng* r = random_seed != 0 ? &seeded : nullptr;
  Fill(cookie_key_.data(), cookie_key_.size(), r);
  uint8_t s[8];
  Fill(s, sizeof s, r);
  uint64_t nonce_seed = 0;
  std::memcpy(&nonce_seed, s, sizeof s);
  rng_.Seed(nonce_seed);
  Rng st(static_seed ^ 0x57A71Cull);
  Fill(static_key_.data(), static_key_.size(), static_seed != 0 ? &st : nullptr);
}

void Secrets::ResetToken(uint32_t incarnation, uint32_t ctx, uint8_t out[wire::kTokenLen]) const {
  Buf b;
  b.U64((uint64_t{incarnation} << 32) | ctx);
  Keyed(static_key_, b.b, b.n, out, wire::kTokenLen);
}

void Secrets::CookieMac(uint64_t stamp, const CookieInput& in, uint8_t out[16]) const {
  Buf b;
  b.U64(stamp);
  b.U64((uint64_t{in.from.ip} << 32) | (uint64_t{in.from.port} << 16) | in.local_socket);
  if (in.from.v6) {
    for (int half = 0; half < 2; ++half) {
      uint64_t w = 0;
      for (int i = 0; i < 8; ++i) w = (w << 8) | in.from.ip6[static_cast<size_t>(half * 8 + i)];
      b.U64(w);
    }
  }
  b.U64((uint64_t{in.src_ctx} << 32) | in.src_incarnation);
  b.U64(in.node_id);
  Keyed(cookie_key_, b.b, b.n, out, 16);
}

void Secrets::MintCookie(Nanos now, const CookieInput& in, uint8_t out[wire::kCookieLen]) const {
  const uint64_t stamp = now / kCookieStamp + 1;  // never 0: an all-zero cookie means "none"
  for (int i = 0; i < 8; ++i) out[i] = static_cast<uint8_t>(stamp >> (8 * (7 - i)));
  CookieMac(stamp, in, out + 8);
}

bool Secrets::CheckCookie(Nanos now, const CookieInput& in,
                          const uint8_t cookie[wire::kCookieLen]) const {
  uint64_t stamp = 0;
  for (int i = 0; i < 8; ++i) stamp = (stamp << 8) | cookie[i];
  const uint64_t current = now / kCookieStamp + 1;
  if (stamp == 0 || stamp > current || current - stamp > kCookieMaxAge) return false;
  uint8_t mac[16];
  CookieMac(stamp, in, mac);
  return sodium_memcmp(mac, cookie + 8, sizeof mac) == 0;
}

}  // namespace opensrd
