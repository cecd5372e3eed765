// Packets in flight in the fabric simulator: fixed-size slots recycled through free lists, in
// chunks that never move (a slot's bytes stay put while its index travels through the event
// queue). Two slot sizes: full data packets, and small ones for acks and control datagrams
// (about half of all packets), so memory follows the bytes in flight rather than the count.
// Header-only. Not thread-safe.
#pragma once
#include <cstdint>
#include <cstring>
#include <memory>
#include <vector>

namespace opensrd::fabric {

struct PacketHeader {
  uint32_t src_ip = 0;
  uint32_t dst_ip = 0;
  uint16_t sport = 0;
  uint16_t dport = 0;
  uint16_t len = 0;  // datagram bytes (the SRD packet, without IP/UDP/Ethernet)
  bool ecn = false;  // marked Congestion Experienced by a switch
};

class PacketPool {
 public:
  static constexpr size_t kSmallSlot = 256;
  explicit PacketPool(size_t slot_bytes) : large_(slot_bytes), small_(kSmallSlot) {}

  // A slot of the large size (PollTransmit needs room for the largest datagram).
  uint32_t Alloc() { return Take(large_, 0); }
  // Once the datagram's length is known: a short one moves to a small slot (returns its id).
  uint32_t Shrink(uint32_t id, size_t len) {
    if (len > kSmallSlot || (id & kSmallBit)) return id;
    const uint32_t s = Take(small_, kSmallBit);
    std::memcpy(data(s), data(id), len);
    header(s) = header(id);
    Free(id);
    return s;
  }
  void Free(uint32_t id) {
    Class& c = id & kSmallBit ? small_ : large_;
    c.free.push_back(id & ~kSmallBit);
    --live_;
    live_bytes_ -= c.slot;
  }
  PacketHeader& header(uint32_t id) {
    return (id & kSmallBit ? small_ : large_).headers[id & ~kSmallBit];
  }
  uint8_t* data(uint32_t id) {
    Class& c = id & kSmallBit ? small_ : large_;
    const uint32_t i = id & ~kSmallBit;
    return c.chunks[i / kChunk].get() + (i % kChunk) * c.slot;
  }
  size_t slot_bytes() const { return large_.slot; }
  size_t live() const { return live_; }
  size_t peak() const { return peak_; }
  size_t peak_bytes() const { return peak_bytes_; }

 private:
  static constexpr uint32_t kChunk = 1024;
  static constexpr uint32_t kSmallBit = 1u << 31;
  struct Class {
    explicit Class(size_t s) : slot(s) {}
    size_t slot;
    std::vector<std::unique_ptr<uint8_t[]>> chunks;
    std::vector<PacketHeader> headers;
    std::vector<uint32_t> free;
  };
  uint32_t Take(Class& c, uint32_t bit) {
    if (c.free.empty()) {
      const uint32_t base = static_cast<uint32_t>(c.headers.size());
      c.chunks.push_back(std::make_unique<uint8_t[]>(kChunk * c.slot));
      c.headers.resize(base + kChunk);
      for (uint32_t k = kChunk; k > 0; --k) c.free.push_back(base + k - 1);
    }
    const uint32_t i = c.free.back();
    c.free.pop_back();
    ++live_;
    live_bytes_ += c.slot;
    if (live_ > peak_) peak_ = live_;
    if (live_bytes_ > peak_bytes_) peak_bytes_ = live_bytes_;
    return i | bit;
  }
  Class large_, small_;
  size_t live_ = 0, peak_ = 0;
  size_t live_bytes_ = 0, peak_bytes_ = 0;
};

}  // namespace opensrd::fabric
