// PcapWriter: per-thread lock-free rings drained by one writer thread into a pcap file.
#include "common/pcap_writer.h"

#include <pthread.h>
#include <signal.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <bit>
#include <cerrno>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstring>
#include <mutex>
#include <thread>

namespace opensrd {

namespace {

// pcap file header values (the classic format, nanosecond variant).
constexpr uint32_t kPcapMagicNs = 0xA1B23C4D;
constexpr uint32_t kLinktypeRaw = 101;  // the packet starts with an IPv4 or IPv6 header
constexpr size_t kIp4Len = 20, kIp6Len = 40, kUdpLen = 8, kTcpLen = 20;
constexpr uint8_t kProtoTcp = 6, kProtoUdp = 17;
// The writer thread's nice value (higher is lower priority).
constexpr int kWriterNice = 10;
// A ring record that only says "the rest of the ring up to its end is unused; go to 0".
constexpr uint32_t kSkipMarker = 0xFFFFFFFF;

// What the producer stores before the datagram bytes. Trivially copyable; written with memcpy
// because ring offsets are only 8-byte aligned.
struct RingRecord {
  uint32_t size = 0;          // bytes of this record in the ring, header and padding included
  uint32_t orig_len = 0;      // the datagram's real length
  uint32_t cap_len = 0;       // bytes of it stored after this header
  uint8_t proto = kProtoUdp;  // kProtoTcp: a stream segment with the sequence numbers below
  uint8_t reserved[3] = {};
  uint32_t tcp_seq = 0, tcp_ack = 0;
  int64_t ts_ns = 0;  // CLOCK_REALTIME
  NetAddr src, dst;
};

size_t Align8(size_t n) {
  return (n + 7) & ~size_t{7};
}

void Put16(std::vector<uint8_t>& o, uint16_t v) {  // network byte order
  o.push_back(static_cast<uint8_t>(v >> 8));
  o.push_back(static_cast<uint8_t>(v));
}
void PutLe32(std::vector<uint8_t>& o, uint32_t v) {  // pcap headers: the writer's byte order
  uint8_t b[4];
  std::memcpy(b, &v, 4);
  o.insert(o.end(), b, b + 4);
}
void Put32Be(std::vector<uint8_t>& o, uint32_t v) {
  Put16(o, static_cast<uint16_t>(v >> 16));
  Put16(o, static_cast<uint16_t>(v));
}

// One's-complement sum of 16-bit big-endian words (RFC 1071), not yet folded. Eight bytes per
// step: the sum of the words in host order, byte-swapped once at the end, equals the sum in
// network order (RFC 1071, section 2(B)); a word-at-a-time loop cost the writer thread ~3 us
// per 8 KiB datagram.
uint64_t SumWords(const uint8_t* p, size_t n, uint64_t sum = 0) {
  uint64_t host = 0;
  size_t i = 0;
  for (; i + 8 <= n; i += 8) {
    uint64_t v;
    std::memcpy(&v, p + i, 8);
    host += (v & 0xFFFFFFFF) + (v >> 32);  // two 32-bit halves: no overflow for 2^32 steps
  }
  for (; i + 2 <= n; i += 2) {
    uint16_t v;
    std::memcpy(&v, p + i, 2);
    host += v;
  }
  while (host >> 16) host = (host & 0xFFFF) + (host >> 16);
  uint16_t folded = static_cast<uint16_t>(host);
  if constexpr (std::endian::native == std::endian::little) {
    folded = static_cast<uint16_t>((folded >> 8) | (folded << 8));
  }
  sum += folded;
  if (n & 1) sum += uint32_t{p[n - 1]} << 8;
  return sum;
}
uint16_t Fold(uint64_t sum) {
  while (sum >> 16) sum = (sum & 0xFFFF) + (sum >> 16);
  return static_cast<uint16_t>(~sum & 0xFFFF);
}

void AddrBytes(const NetAddr& a, std::vector<uint8_t>& o) {
  if (a.v6) {
    o.insert(o.end(), a.ip6.begin(), a.ip6.end());
  } else {
    Put32Be(o, a.ip);
  }
}

// Appends the pcap record of `r` (IP header, UDP or TCP header, payload bytes) to `out`.
void AppendPcapRecord(std::vector<uint8_t>& out, const RingRecord& r, const uint8_t* data,
                      uint16_t ip_id) {
  const bool v6 = r.src.v6;
  const bool tcp = r.proto == kProtoTcp;
  const size_t ip_len = v6 ? kIp6Len : kIp4Len;
  const size_t l4_hdr = tcp ? kTcpLen : kUdpLen;
  const uint32_t udp_len = static_cast<uint32_t>(l4_hdr + r.orig_len);  // the L4 length
  PutLe32(out, static_cast<uint32_t>(r.ts_ns / 1'000'000'000));
  PutLe32(out, static_cast<uint32_t>(r.ts_ns % 1'000'000'000));
  PutLe32(out, static_cast<uint32_t>(ip_len + l4_hdr + r.cap_len));
  PutLe32(out, static_cast<uint32_t>(ip_len + udp_len));
  const size_t ip_start = out.size();
  if (v6) {
    Put32Be(out, 0x60000000);  // version 6, no traffic class or flow label
    Put16(out, static_cast<uint16_t>(udp_len));
    out.push_back(r.proto);  // next header
    out.push_back(64);       // hop limit
    AddrBytes(r.src, out);
    AddrBytes(r.dst, out);
  } else {
    out.push_back(0x45);  // version 4, 20-byte header
    out.push_back(0);
    Put16(out, static_cast<uint16_t>(std::min<uint32_t>(kIp4Len + udp_len, 0xFFFF)));
    Put16(out, ip_id);
    Put16(out, 0x4000);      // don't fragment
    out.push_back(64);       // TTL
    out.push_back(r.proto);  // UDP or TCP
    Put16(out, 0);           // checksum, filled below
    AddrBytes(r.src, out);
    AddrBytes(r.dst, out);
    const uint16_t c = Fold(SumWords(out.data() + ip_start, kIp4Len));
    out[ip_start + 10] = static_cast<uint8_t>(c >> 8);
    out[ip_start + 11] = static_cast<uint8_t>(c);
  }
  const size_t udp_start = out.size();
  size_t csum_at = 6;
  Put16(out, r.src.port);
  Put16(out, r.dst.port);
  if (tcp) {
    Put32Be(out, r.tcp_seq);
    Put32Be(out, r.tcp_ack);
    out.push_back(kTcpLen / 4 << 4);  // data offset: no options
    out.push_back(0x18);              // PSH, ACK
    Put16(out, 0xFFFF);               // window (the real one is not known here)
    Put16(out, 0);                    // checksum, filled below
    Put16(out, 0);                    // urgent pointer
    csum_at = 16;
  } else {
    Put16(out, static_cast<uint16_t>(udp_len));
    Put16(out, 0);  // checksum, filled below when the whole datagram is here
  }
  out.insert(out.end(), data, data + r.cap_len);
  if (r.cap_len == r.orig_len) {
    // Pseudo-header: addresses, protocol, L4 length (RFC 768, RFC 9293, RFC 8200 section 8.1).
    const uint8_t* addrs = out.data() + ip_start + (v6 ? 8 : 12);
    uint64_t sum = SumWords(addrs, v6 ? 32 : 8);
    sum += r.proto + udp_len;
    sum = SumWords(out.data() + udp_start, l4_hdr + r.cap_len, sum);
    uint16_t c = Fold(sum);
    if (c == 0 && !tcp) c = 0xFFFF;  // 0 means "no checksum" in IPv4 UDP, illegal in IPv6
    out[udp_start + csum_at] = static_cast<uint8_t>(c >> 8);
    out[udp_start + csum_at + 1] = static_cast<uint8_t>(c);
  }
}

}  // namespace

PcapWriter::Source::Source(size_t ring_bytes, uint32_t snaplen)
    : mask_(std::bit_ceil(std::max<size_t>(ring_bytes, 4096)) - 1),
      snaplen_(snaplen),
      ring_(new uint8_t[mask_ + 1]) {}

void PcapWriter::Source::Append(const NetAddr& src, const NetAddr& dst,
                                std::span<const uint8_t> datagram) {
  Put(src, dst, datagram, kProtoUdp, 0, 0);
}

void PcapWriter::Source::AppendTcp(const NetAddr& src, const NetAddr& dst, uint32_t seq,
                                   uint32_t ack, std::span<const uint8_t> bytes) {
  // One IP packet holds at most 65535 bytes: longer writes become several segments.
  constexpr size_t kMaxSegment = 65535 - kIp6Len - kTcpLen;
  do {
    const size_t n = std::min(bytes.size(), kMaxSegment);
    Put(src, dst, bytes.first(n), kProtoTcp, seq, ack);
    seq += static_cast<uint32_t>(n);
    bytes = bytes.subspan(n);
  } while (!bytes.empty());
}

void PcapWriter::Source::Put(const NetAddr& src, const NetAddr& dst,
                             std::span<const uint8_t> datagram, uint8_t proto, uint32_t seq,
                             uint32_t ack) {
  // Counters are written by this thread only: plain load + store, no locked instruction.
  if (closed_.load(std::memory_order_relaxed)) {
    dropped_.store(dropped_.load(std::memory_order_relaxed) + 1, std::memory_order_relaxed);
    return;
  }
  RingRecord r;
  r.orig_len = static_cast<uint32_t>(datagram.size());
  r.cap_len = std::min<uint32_t>(r.orig_len, snaplen_);
  r.size = static_cast<uint32_t>(Align8(sizeof(RingRecord) + r.cap_len));
  const size_t capacity = mask_ + 1;
  uint64_t head = head_.load(std::memory_order_relaxed);
  const uint64_t tail = tail_.load(std::memory_order_acquire);
  size_t idx = head & mask_;
  // A record never wraps: if it does not fit before the end, the end is skipped.
  const size_t skip = capacity - idx < r.size ? capacity - idx : 0;
  if (head + skip + r.size - tail > capacity) {
    dropped_.store(dropped_.load(std::memory_order_relaxed) + 1, std::memory_order_relaxed);
    return;
  }
  if (skip > 0) {
    std::memcpy(ring_.get() + idx, &kSkipMarker, sizeof kSkipMarker);
    head += skip;
    idx = 0;
  }
  timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  r.ts_ns = int64_t{ts.tv_sec} * 1'000'000'000 + ts.tv_nsec;
  r.src = src;
  r.dst = dst;
  r.proto = proto;
  r.tcp_seq = seq;
  r.tcp_ack = ack;
  std::memcpy(ring_.get() + idx, &r, sizeof r);
  std::memcpy(ring_.get() + idx + sizeof r, datagram.data(), r.cap_len);
  head_.store(head + r.size, std::memory_order_release);
  captured_.store(captured_.load(std::memory_order_relaxed) + 1, std::memory_order_relaxed);
}

uint64_t PcapWriter::Source::DrainInto(std::vector<uint8_t>& out) {
  const size_t capacity = mask_ + 1;
  uint64_t tail = tail_.load(std::memory_order_relaxed);
  const uint64_t head = head_.load(std::memory_order_acquire);
  uint64_t records = 0;
  while (tail < head) {
    const size_t idx = tail & mask_;
    uint32_t size;
    std::memcpy(&size, ring_.get() + idx, sizeof size);
    if (size == kSkipMarker) {
      tail += capacity - idx;
      continue;
    }
    RingRecord r;
    std::memcpy(&r, ring_.get() + idx, sizeof r);
    AppendPcapRecord(out, r, ring_.get() + idx + sizeof r, static_cast<uint16_t>(records));
    tail += r.size;
    ++records;
  }
  tail_.store(tail, std::memory_order_release);
  return records;
}

class PcapWriter::Impl {
 public:
  Impl(const PcapWriterOptions& o, FILE* file) : opts_(o), file_(file) {}

  ~Impl() { Close(); }

  void Start() {
    std::vector<uint8_t> h;
    PutLe32(h, kPcapMagicNs);
    h.push_back(2);  // version 2.4, in the writer's byte order like the magic
    h.push_back(0);
    h.push_back(4);
    h.push_back(0);
    PutLe32(h, 0);  // this zone
    PutLe32(h, 0);  // sigfigs
    PutLe32(h, opts_.snaplen + static_cast<uint32_t>(kIp6Len + kTcpLen));
    PutLe32(h, kLinktypeRaw);
    if (std::fwrite(h.data(), 1, h.size(), file_) != h.size()) ++write_errors_;
    thread_ = std::thread([this] { Run(); });
  }

  Source* NewSource() {
    std::lock_guard<std::mutex> l(mu_);
    sources_.emplace_back(new Source(opts_.ring_bytes, opts_.snaplen));
    if (closed_) sources_.back()->closed_.store(true);
    return sources_.back().get();
  }

  void Close() {
    {
      std::lock_guard<std::mutex> l(mu_);
      if (closed_) return;
      closed_ = true;
    }
    cv_.notify_all();
    if (thread_.joinable()) thread_.join();
  }

  PcapStats stats() const {
    std::lock_guard<std::mutex> l(mu_);
    PcapStats s;
    for (const auto& src : sources_) {
      s.captured += src->captured_.load(std::memory_order_relaxed);
      s.dropped += src->dropped_.load(std::memory_order_relaxed);
    }
    s.written = written_.load(std::memory_order_relaxed);
    s.write_errors = write_errors_.load(std::memory_order_relaxed);
    return s;
  }

  const std::string& path() const { return opts_.path; }

 private:
  void Run() {
    // Signals go to the application's threads: a handler running here (the CLI's SIGTERM
    // handlers touch their command's state) would race with them.
    sigset_t all;
    sigfillset(&all);
    pthread_sigmask(SIG_BLOCK, &all, nullptr);
    // Below the I/O threads: on a busy machine the capture should drop records rather than
    // take CPU time from the data path (Linux: nice is per thread).
    setpriority(PRIO_PROCESS, static_cast<id_t>(gettid()), kWriterNice);
    std::vector<uint8_t> buf;
    std::unique_lock<std::mutex> l(mu_);
    while (true) {
      cv_.wait_for(l, std::chrono::milliseconds(opts_.drain_period_ms), [this] { return closed_; });
      const bool last = closed_;
      // Appends that race with Close land in the ring after this point and are counted as
      // captured but never written; every later append is dropped.
      if (last) {
        for (const auto& s : sources_) s->closed_.store(true);
      }
      // By index: while the lock is released for the write, NewSource may grow the vector
      // (the Sources themselves never move).
      for (size_t i = 0; i < sources_.size(); ++i) {
        Source* s = sources_[i].get();
        buf.clear();
        const uint64_t n = s->DrainInto(buf);
        if (n == 0) continue;
        l.unlock();  // the file write must not hold up NewSource or stats
        if (std::fwrite(buf.data(), 1, buf.size(), file_) == buf.size()) {
          written_.fetch_add(n, std::memory_order_relaxed);
        } else {
          write_errors_.fetch_add(n, std::memory_order_relaxed);
        }
        l.lock();
      }
      if (last) break;
    }
    l.unlock();
    if (std::fclose(file_) != 0) write_errors_.fetch_add(1, std::memory_order_relaxed);
    file_ = nullptr;
  }

  const PcapWriterOptions opts_;
  FILE* file_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  bool closed_ = false;                           // guarded by mu_
  std::vector<std::unique_ptr<Source>> sources_;  // guarded by mu_; never shrinks
  std::thread thread_;
  std::atomic<uint64_t> written_{0};
  std::atomic<uint64_t> write_errors_{0};
};

Result<std::unique_ptr<PcapWriter>> PcapWriter::Open(const PcapWriterOptions& options) {
  if (options.snaplen == 0) return Status(Code::kInvalidArgument, "pcap snaplen must be > 0");
  FILE* f = std::fopen(options.path.c_str(), "wb");
  if (f == nullptr) {
    return Status(Code::kInvalidArgument, options.path + ": " + std::strerror(errno));
  }
  auto impl = std::make_unique<Impl>(options, f);
  impl->Start();
  return std::unique_ptr<PcapWriter>(new PcapWriter(std::move(impl)));
}

PcapWriter::PcapWriter(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
PcapWriter::~PcapWriter() = default;

PcapWriter::Source* PcapWriter::NewSource() {
  return impl_->NewSource();
}
void PcapWriter::Close() {
  impl_->Close();
}
PcapStats PcapWriter::stats() const {
  return impl_->stats();
}
const std::string& PcapWriter::path() const {
  return impl_->path();
}

}  // namespace opensrd
