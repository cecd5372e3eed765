// RingDeque: a FIFO on a power-of-two circular buffer that allocates nothing while empty and can
// give its memory back (Release). libstdc++'s std::deque allocates ~576 bytes as soon as it is
// constructed, which for a transport context with a queue per path and per purpose was most of
// an idle context's memory. Not thread-safe.
#pragma once
#include <cassert>
#include <cstddef>
#include <vector>

namespace opensrd {

template <typename T>
class RingDeque {
 public:
  bool empty() const { return size_ == 0; }
  size_t size() const { return size_; }
  T& front() {
    assert(size_ > 0);
    return buf_[head_];
  }
  const T& front() const {
    assert(size_ > 0);
    return buf_[head_];
  }
  T& back() {
    assert(size_ > 0);
    return buf_[(head_ + size_ - 1) & (buf_.size() - 1)];
  }
  void push_back(const T& v) {
    if (size_ == buf_.size()) Grow();
    buf_[(head_ + size_) & (buf_.size() - 1)] = v;
    ++size_;
  }
  void pop_front() {
    assert(size_ > 0);
    head_ = (head_ + 1) & (buf_.size() - 1);
    --size_;
  }
  void clear() { head_ = size_ = 0; }
  // Empties the queue and frees its buffer.
  void Release() {
    clear();
    std::vector<T>().swap(buf_);
  }
  size_t memory_bytes() const { return buf_.capacity() * sizeof(T); }

 private:
  void Grow() {
    const size_t n = buf_.empty() ? 4 : buf_.size() * 2;
    std::vector<T> nb(n);
    for (size_t i = 0; i < size_; ++i) nb[i] = buf_[(head_ + i) & (buf_.size() - 1)];
    buf_.swap(nb);
    head_ = 0;
  }

  std::vector<T> buf_;  // size is 0 or a power of two
  size_t head_ = 0;
  size_t size_ = 0;
};

}  // namespace opensrd
