// ECMP: a switch picks among equal-cost uplinks by a hash of the packet's 5-tuple, salted per
// switch (as vendors seed their hash per device, so that tiers do not make the same choice and
// polarize). The transport's source ports are the entropy: one SRD path is one 5-tuple.
#pragma once
#include <cstdint>

#include "sim/fabric/packet_pool.h"

namespace opensrd::fabric {

inline uint64_t Mix64(uint64_t z) {
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

// The protocol number is UDP's (17) for every packet; it is hashed anyway so the function is the
// 5-tuple hash real switches compute.
inline uint64_t EcmpHash(const PacketHeader& h, uint64_t switch_salt) {
  uint64_t x = (uint64_t{h.src_ip} << 32) | h.dst_ip;
  x = Mix64(x ^ switch_salt);
  x ^= (uint64_t{h.sport} << 32) | (uint64_t{h.dport} << 16) | 17u;
  return Mix64(x);
}

}  // namespace opensrd::fabric
