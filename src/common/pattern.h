// Deterministic payload patterns: a message's bytes are a function of (message key, offset),
// so tests and `opensrd perf` verify every byte without keeping a copy. Thread-safe.
#pragma once
#include <cstddef>
#include <cstdint>
#include <cstring>

namespace opensrd {

inline uint64_t PatternWord(uint64_t key, uint64_t word_index) {
  uint64_t z = key * 0x9E3779B97F4A7C15ull + word_index * 0xBF58476D1CE4E5B9ull + 1;
  z ^= z >> 31;
  z *= 0x94D049BB133111EBull;
  return z ^ (z >> 29);
}

// Fills dst with the pattern of message `key` (offsets 0..len).
inline void FillPattern(uint64_t key, uint8_t* dst, size_t len) {
  size_t i = 0;
  for (; i + 8 <= len; i += 8) {
    const uint64_t w = PatternWord(key, i / 8);
    std::memcpy(dst + i, &w, 8);
  }
  if (i < len) {
    const uint64_t w = PatternWord(key, i / 8);
    std::memcpy(dst + i, &w, len - i);
  }
}

// Returns true if src holds the pattern of message `key`.
inline bool CheckPattern(uint64_t key, const uint8_t* src, size_t len) {
  size_t i = 0;
  for (; i + 8 <= len; i += 8) {
    uint64_t w;
    std::memcpy(&w, src + i, 8);
    if (w != PatternWord(key, i / 8)) return false;
  }
  if (i < len) {
    const uint64_t w = PatternWord(key, i / 8);
    if (std::memcmp(src + i, &w, len - i) != 0) return false;
  }
  return true;
}

}  // namespace opensrd
