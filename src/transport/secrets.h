// Secrets: the endpoint's keyed hashes (BLAKE2b from libsodium, never hand-written crypto).
//  - Address-validation cookies (QUIC's Retry): a HELLO from an address we have not validated
//    gets a cookie bound to that address, its claimed identity and the time; state is created
//    only for a HELLO that echoes a fresh one. Nothing is stored per unvalidated source.
//  - Reset tokens: 16 bytes per (incarnation, context), derived from the endpoint's static key
//    and sent to the partner in the handshake. A RESET or a newer-generation HELLO is believed
//    only if it carries the token, so an off-path attacker cannot forge one. With a static key
//    that survives a restart (a key file; the simulator's per-host seed), a restarted endpoint
//    can still reset the sessions of its previous life at once; with a random one its peers
//    time them out instead.
// Random material comes from getrandom, or from a seed in the simulator. Not thread-safe.
#pragma once
#include <array>
#include <cstdint>

#include "common/rng.h"
#include "opensrd/transport.h"
#include "transport/wire.h"

namespace opensrd {

class Secrets {
 public:
  // `random_seed` 0: cookie key and nonces from getrandom; else derived from it.
  // `static_seed` 0: static key from getrandom; else derived from it.
  Secrets(uint64_t random_seed, uint64_t static_seed);

  void ResetToken(uint32_t incarnation, uint32_t ctx, uint8_t out[wire::kTokenLen]) const;
  // Cookies are bound to the address and socket a HELLO came from and the identity it claims.
  struct CookieInput {
    NetAddr from;
    uint16_t local_socket = 0;
    uint32_t src_ctx = 0;
    uint32_t src_incarnation = 0;
    uint64_t node_id = 0;
  };
  void MintCookie(Nanos now, const CookieInput& in, uint8_t out[wire::kCookieLen]) const;
  // Valid for 2-3 s after minting (a cookie older than that, or from the future, is refused).
  bool CheckCookie(Nanos now, const CookieInput& in, const uint8_t cookie[wire::kCookieLen]) const;
  uint64_t RandomToken() { return rng_.Next(); }

  // Fills `out` with random bytes (getrandom, or the seeded generator).
  static void Fill(uint8_t* out, size_t n, Rng* seeded);

 private:
  void CookieMac(uint64_t stamp, const CookieInput& in, uint8_t out[16]) const;

  std::array<uint8_t, 32> cookie_key_{};
  std::array<uint8_t, 32> static_key_{};
  Rng rng_;
};

}  // namespace opensrd
