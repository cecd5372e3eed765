// Packets in flight in the fabric simulator: fixed-size slots recycled through a free list, in
// chunks that never move (a slot's bytes stay put while its index travels through the event
// queue). Memory follows the peak number of packets in flight. Header-only. Not thread-safe.
#pragma once
#include <cstdint>
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
  explicit PacketPool(size_t slot_bytes) : slot_(slot_bytes) {}

  uint32_t Alloc() {
    if (free_.empty()) Grow();
    const uint32_t i = free_.back();
    free_.pop_back();
    ++live_;
    if (live_ > peak_) peak_ = live_;
    return i;
  }
  void Free(uint32_t i) {
    free_.push_back(i);
    --live_;
  }
  PacketHeader& header(uint32_t i) { return headers_[i]; }
  uint8_t* data(uint32_t i) { return chunks_[i / kChunk].get() + (i % kChunk) * slot_; }
  size_t slot_bytes() const { return slot_; }
  size_t live() const { return live_; }
  size_t peak() const { return peak_; }
  size_t capacity() const { return headers_.size(); }

 private:
  static constexpr uint32_t kChunk = 1024;
  void Grow() {
    const uint32_t base = static_cast<uint32_t>(headers_.size());
    chunks_.push_back(std::make_unique<uint8_t[]>(kChunk * slot_));
    headers_.resize(base + kChunk);
    for (uint32_t k = kChunk; k > 0; --k) free_.push_back(base + k - 1);
  }
  size_t slot_;
  std::vector<std::unique_ptr<uint8_t[]>> chunks_;
  std::vector<PacketHeader> headers_;
  std::vector<uint32_t> free_;
  size_t live_ = 0;
  size_t peak_ = 0;
};

}  // namespace opensrd::fabric
