#include "common/pattern.h"

#include <cstring>

namespace opensrd {
namespace {

// The loops work on V, a GCC/Clang vector of 64-bit words (16 bytes: SSE2, 32: AVX2), four of
// them per round (written out: -O2 keeps arrays of vectors in memory); the target-specific
// wrappers below instantiate them where those registers exist. What is left after the last
// whole round goes word by word in the callers.
template <typename V>
__attribute__((always_inline)) inline void SetX(V& x, uint64_t seed, size_t first_word) {
  for (size_t l = 0; l < sizeof(V) / 8; ++l) x[l] = seed + (first_word + l) * kPatternStep;
}

template <typename V>
__attribute__((always_inline)) inline size_t FillRounds(uint64_t seed, uint8_t* dst, size_t len) {
  constexpr size_t kLanes = sizeof(V) / 8;
  V x0, x1, x2, x3;
  SetX(x0, seed, 0);
  SetX(x1, seed, kLanes);
  SetX(x2, seed, 2 * kLanes);
  SetX(x3, seed, 3 * kLanes);
  const uint64_t step = 4 * kLanes * kPatternStep;
  size_t i = 0;
  for (; i + 4 * sizeof(V) <= len; i += 4 * sizeof(V)) {
    const V w0 = x0 ^ (x0 >> 29), w1 = x1 ^ (x1 >> 29), w2 = x2 ^ (x2 >> 29), w3 = x3 ^ (x3 >> 29);
    std::memcpy(dst + i, &w0, sizeof(V));
    std::memcpy(dst + i + sizeof(V), &w1, sizeof(V));
    std::memcpy(dst + i + 2 * sizeof(V), &w2, sizeof(V));
    std::memcpy(dst + i + 3 * sizeof(V), &w3, sizeof(V));
    x0 += step;
    x1 += step;
    x2 += step;
    x3 += step;
  }
  return i;
}

template <typename V>
__attribute__((always_inline)) inline bool CheckRounds(uint64_t seed, const uint8_t* src,
                                                       size_t len, size_t& done) {
  constexpr size_t kLanes = sizeof(V) / 8;
  V x0, x1, x2, x3;
  SetX(x0, seed, 0);
  SetX(x1, seed, kLanes);
  SetX(x2, seed, 2 * kLanes);
  SetX(x3, seed, 3 * kLanes);
  const uint64_t step = 4 * kLanes * kPatternStep;
  V d0{}, d1{}, d2{}, d3{};  // OR of (got ^ want): zero while everything matches
  size_t i = 0;
  for (; i + 4 * sizeof(V) <= len; i += 4 * sizeof(V)) {
    V g0, g1, g2, g3;
    std::memcpy(&g0, src + i, sizeof(V));
    std::memcpy(&g1, src + i + sizeof(V), sizeof(V));
    std::memcpy(&g2, src + i + 2 * sizeof(V), sizeof(V));
    std::memcpy(&g3, src + i + 3 * sizeof(V), sizeof(V));
    d0 |= g0 ^ x0 ^ (x0 >> 29);
    d1 |= g1 ^ x1 ^ (x1 >> 29);
    d2 |= g2 ^ x2 ^ (x2 >> 29);
    d3 |= g3 ^ x3 ^ (x3 >> 29);
    x0 += step;
    x1 += step;
    x2 += step;
    x3 += step;
  }
  done = i;
  const V d = d0 | d1 | d2 | d3;
  uint64_t bad = 0;
  for (size_t l = 0; l < kLanes; ++l) bad |= d[l];
  return bad == 0;
}

using V2 = uint64_t __attribute__((vector_size(16)));
size_t FillSse2(uint64_t seed, uint8_t* dst, size_t len) {
  return FillRounds<V2>(seed, dst, len);
}
bool CheckSse2(uint64_t seed, const uint8_t* src, size_t len, size_t& done) {
  return CheckRounds<V2>(seed, src, len, done);
}

#if defined(__x86_64__)
using V4 = uint64_t __attribute__((vector_size(32)));
__attribute__((target("avx2"))) size_t FillAvx2(uint64_t seed, uint8_t* dst, size_t len) {
  return FillRounds<V4>(seed, dst, len);
}
__attribute__((target("avx2"))) bool CheckAvx2(uint64_t seed, const uint8_t* src, size_t len,
                                               size_t& done) {
  return CheckRounds<V4>(seed, src, len, done);
}
const bool kHaveAvx2 = __builtin_cpu_supports("avx2");
#endif

}  // namespace

void FillPattern(uint64_t key, uint8_t* dst, size_t len) {
  const uint64_t seed = PatternSeed(key);
  size_t i;
#if defined(__x86_64__)
  if (kHaveAvx2) {
    i = FillAvx2(seed, dst, len);
  } else
#endif
  {
    i = FillSse2(seed, dst, len);
  }
  uint64_t x = seed + (i / 8) * kPatternStep;
  for (; i + 8 <= len; i += 8, x += kPatternStep) {
    const uint64_t w = x ^ (x >> 29);
    std::memcpy(dst + i, &w, 8);
  }
  if (i < len) {
    const uint64_t w = x ^ (x >> 29);
    std::memcpy(dst + i, &w, len - i);
  }
}

bool CheckPattern(uint64_t key, const uint8_t* src, size_t len) {
  const uint64_t seed = PatternSeed(key);
  size_t i;
  bool ok;
#if defined(__x86_64__)
  if (kHaveAvx2) {
    ok = CheckAvx2(seed, src, len, i);
  } else
#endif
  {
    ok = CheckSse2(seed, src, len, i);
  }
  uint64_t bad = ok ? 0 : 1;
  uint64_t x = seed + (i / 8) * kPatternStep;
  for (; i + 8 <= len; i += 8, x += kPatternStep) {
    uint64_t got;
    std::memcpy(&got, src + i, 8);
    bad |= got ^ (x ^ (x >> 29));
  }
  if (i < len) {
    const uint64_t w = x ^ (x >> 29);
    bad |= std::memcmp(src + i, &w, len - i) != 0;
  }
  return bad == 0;
}

}  // namespace opensrd
