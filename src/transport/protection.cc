#include "transport/protection.h"

#include <sodium.h>

#include <cstring>
#include <stdexcept>

#include "transport/secrets.h"
#include "transport/wire.h"

namespace opensrd {

namespace {
constexpr size_t kClearLen = wire::kCommonLen;  // kAead: header in clear, as associated data

void Nonce24(const uint8_t* sent, uint8_t out[24]) {
  std::memcpy(out, sent, PacketProtection::kNonceLen);
  std::memset(out + PacketProtection::kNonceLen, 0, 24 - PacketProtection::kNonceLen);
}
}  // namespace

PacketProtection::PacketProtection(KeyMode mode, const std::array<uint8_t, 32>& key, Rng* seeded)
    : mode_(mode), key_(key) {
  if (sodium_init() < 0) throw std::runtime_error("libsodium failed to initialize");
  Secrets::Fill(prefix_, sizeof prefix_, seeded);
}

size_t PacketProtection::Seal(std::span<uint8_t> buf, size_t len) {
  if (mode_ == KeyMode::kNone) return len;
  if (buf.size() < len + kTrailerLen || len < kClearLen) return 0;
  uint8_t* nonce = buf.data() + len;
  std::memcpy(nonce, prefix_, sizeof prefix_);
  const uint64_t n = counter_++;
  for (int i = 0; i < 8; ++i) nonce[8 + i] = static_cast<uint8_t>(n >> (8 * (7 - i)));
  uint8_t n24[24];
  Nonce24(nonce, n24);
  // The nonce is authenticated too (it is part of the associated data).
  uint8_t* tag = nonce + kNonceLen;
  unsigned long long tag_len = 0;
  if (mode_ == KeyMode::kMac) {
    // Nothing to encrypt, but libsodium declares the message pointers non-null.
    uint8_t none = 0;
    crypto_aead_xchacha20poly1305_ietf_encrypt_detached(&none, tag, &tag_len, &none, 0, buf.data(),
                                                        len + kNonceLen, nullptr, n24, key_.data());
  } else {
    // Encrypt [28, len) in place; associated data: the clear header and the nonce.
    uint8_t ad[kClearLen + kNonceLen];
    std::memcpy(ad, buf.data(), kClearLen);
    std::memcpy(ad + kClearLen, nonce, kNonceLen);
    crypto_aead_xchacha20poly1305_ietf_encrypt_detached(buf.data() + kClearLen, tag, &tag_len,
                                                        buf.data() + kClearLen, len - kClearLen, ad,
                                                        sizeof ad, nullptr, n24, key_.data());
  }
  return len + kTrailerLen;
}

size_t PacketProtection::Open(std::span<const uint8_t> in, std::span<uint8_t> out) const {
  if (mode_ == KeyMode::kNone) {
    if (out.size() < in.size() || in.empty()) return 0;
    std::memcpy(out.data(), in.data(), in.size());
    return in.size();
  }
  if (in.size() < kClearLen + kTrailerLen) return 0;
  const size_t len = in.size() - kTrailerLen;
  if (out.size() < len) return 0;
  const uint8_t* nonce = in.data() + len;
  const uint8_t* tag = nonce + kNonceLen;
  uint8_t n24[24];
  Nonce24(nonce, n24);
  if (mode_ == KeyMode::kMac) {
    uint8_t none = 0;  // no ciphertext, but the pointer must not be null (libsodium's nonnull)
    if (crypto_aead_xchacha20poly1305_ietf_decrypt_detached(
            &none, nullptr, &none, 0, tag, in.data(), len + kNonceLen, n24, key_.data()) != 0) {
      return 0;
    }
    std::memcpy(out.data(), in.data(), len);
    return len;
  }
  uint8_t ad[kClearLen + kNonceLen];
  std::memcpy(ad, in.data(), kClearLen);
  std::memcpy(ad + kClearLen, nonce, kNonceLen);
  if (crypto_aead_xchacha20poly1305_ietf_decrypt_detached(
          out.data() + kClearLen, nullptr, in.data() + kClearLen, len - kClearLen, tag, ad,
          sizeof ad, n24, key_.data()) != 0) {
    return 0;
  }
  std::memcpy(out.data(), in.data(), kClearLen);
  return len;
}

}  // namespace opensrd
