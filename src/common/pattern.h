// Deterministic payload patterns: a message's bytes are a function of (message key, offset),
// so tests and `opensrd perf` verify every byte without keeping a copy. Thread-safe.
//
// Word i (bytes 8i..8i+7, little-endian) of message `key` is x ^ (x >> 29) with
// x = PatternSeed(key) + i * kPatternStep: one hash per message, then an add, a shift and an
// xor per word, which pattern.cc runs in the widest vector registers the CPU has. Fill and check
// run near memory speed (bench_pattern), so `opensrd perf` measures the transport rather than
// its own payload. Every word differs between two keys unless their seeds happen to differ by a
// multiple of kPatternStep below the message length (odds ~2^-50), and a word never matches the
// same message's word at another offset (a misplaced fragment shows).
#pragma once
#include <cstddef>
#include <cstdint>

namespace opensrd {

inline constexpr uint64_t kPatternStep = 0x9E3779B97F4A7C15ull;  // odd: x never repeats

inline uint64_t PatternSeed(uint64_t key) {  // splitmix64
  uint64_t z = key + 0x9E3779B97F4A7C15ull;
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

inline uint64_t PatternWord(uint64_t key, uint64_t word_index) {
  const uint64_t x = PatternSeed(key) + word_index * kPatternStep;
  return x ^ (x >> 29);
}

// Fills dst with the pattern of message `key` (offsets 0..len).
void FillPattern(uint64_t key, uint8_t* dst, size_t len);

// Returns true if src holds the pattern of message `key`.
bool CheckPattern(uint64_t key, const uint8_t* src, size_t len);

}  // namespace opensrd
