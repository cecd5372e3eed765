// PacketProtection: the optional cluster key. Every datagram an endpoint sends is authenticated
// (kMac) or encrypted and authenticated (kAead) with a key all endpoints of a cluster share,
// read from a file; a datagram that fails the check is dropped before the parser sees it, so a
// forged or modified packet (an ACK for data never delivered, a RESET, a path response) has no
// effect. The construction is libsodium's XChaCha20-Poly1305 (IETF): kMac passes the whole
// datagram as associated data and encrypts nothing; kAead leaves the 28-byte common header in
// clear as associated data (demultiplexing and debugging need it) and encrypts the rest.
//
// Trailer after the inner datagram (its CRC included): 16-byte nonce (an 8-byte random prefix
// per endpoint, then a 64-bit counter) and the 16-byte tag. The 24-byte XChaCha nonce is the
// 16 transmitted bytes followed by 8 zero bytes; random prefixes of 64 bits keep two endpoints'
// nonces apart. Replays are not rejected here: the transport drops duplicate PSNs, stale
// contexts and old generations itself. Not thread-safe (one per endpoint).
#pragma once
#include <array>
#include <cstddef>
#include <cstdint>
#include <span>

#include "common/rng.h"
#include "opensrd/transport.h"

namespace opensrd {

class PacketProtection {
 public:
  static constexpr size_t kNonceLen = 16;
  static constexpr size_t kTagLen = 16;
  static constexpr size_t kTrailerLen = kNonceLen + kTagLen;

  // `seeded`: nonce prefix from it (simulator), else from getrandom.
  PacketProtection(KeyMode mode, const std::array<uint8_t, 32>& key, Rng* seeded);

  KeyMode mode() const { return mode_; }
  size_t overhead() const { return mode_ == KeyMode::kNone ? 0 : kTrailerLen; }
  // Protects the `len`-byte datagram at the start of `buf` in place; returns the new length
  // (len + overhead()), or 0 if `buf` has no room.
  size_t Seal(std::span<uint8_t> buf, size_t len);
  // Checks (and decrypts) `in` into `out`; returns the inner length, or 0 if it fails.
  size_t Open(std::span<const uint8_t> in, std::span<uint8_t> out) const;

 private:
  KeyMode mode_;
  std::array<uint8_t, 32> key_;
  uint8_t prefix_[8] = {};
  uint64_t counter_ = 0;
};

}  // namespace opensrd
