// Raw UDP GSO/GRO blast on loopback: the physical limit of a transport that moves datagrams of
// one size through the kernel's UDP path, as opensrd does. No protocol, no acks, no payload
// generation or checking: a sender thread hands the kernel 64 KB UDP_SEGMENT sends of
// `--segment` byte datagrams as fast as it can; a receiver thread takes them with UDP_GRO and
// recvmmsg and counts payload bytes. Datagrams the receiver's socket cannot queue are dropped by
// the kernel; the figure that matters is what arrived (`received_gbps`).
//
// Usage: bench_udp_blast [--segment BYTES] [--duration SECONDS] [--port PORT]
// Prints one JSON object: segment, segments_per_send, seconds, sent_gbps, received_gbps,
// sent_datagrams, received_datagrams, received_batches (GRO-coalesced receives).
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/udp.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

namespace {

constexpr size_t kMaxUdpPayload = 65507;  // 65535 - 20 (IPv4) - 8 (UDP)
constexpr size_t kMaxGsoSegments = 64;    // UDP_MAX_SEGMENTS in the kernel
constexpr size_t kRecvBatch = 16;         // messages per recvmmsg
constexpr int kSocketBuffer = 64 << 20;

double NowSeconds() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec + ts.tv_nsec * 1e-9;
}

[[noreturn]] void Die(const char* what) {
  std::fprintf(stderr, "bench_udp_blast: %s: %s\n", what, std::strerror(errno));
  std::exit(1);
}

void SetBuffer(int fd, int force_opt, int opt) {
  int bytes = kSocketBuffer;  // the FORCE variant ignores net.core.*mem_max (needs root)
  if (setsockopt(fd, SOL_SOCKET, force_opt, &bytes, sizeof bytes) != 0) {
    setsockopt(fd, SOL_SOCKET, opt, &bytes, sizeof bytes);
  }
}

struct Options {
  size_t segment = 1400;
  double duration = 5;
  uint16_t port = 7799;
};

Options Parse(int argc, char** argv) {
  Options o;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (i + 1 >= argc) {
      std::fprintf(stderr, "usage: bench_udp_blast [--segment B] [--duration S] [--port P]\n");
      std::exit(2);
    }
    const char* v = argv[++i];
    if (a == "--segment") {
      o.segment = std::strtoul(v, nullptr, 10);
    } else if (a == "--duration") {
      o.duration = std::strtod(v, nullptr);
    } else if (a == "--port") {
      o.port = static_cast<uint16_t>(std::strtoul(v, nullptr, 10));
    } else {
      std::fprintf(stderr, "bench_udp_blast: unknown option %s\n", a.c_str());
      std::exit(2);
    }
  }
  if (o.segment < 1 || o.segment > 32768 || o.duration <= 0) {
    std::fprintf(stderr, "bench_udp_blast: --segment 1..32768, --duration > 0\n");
    std::exit(2);
  }
  return o;
}

}  // namespace

int main(int argc, char** argv) {
  const Options o = Parse(argc, argv);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = htons(o.port);

  const int rx = socket(AF_INET, SOCK_DGRAM, 0);
  if (rx < 0) Die("socket");
  SetBuffer(rx, SO_RCVBUFFORCE, SO_RCVBUF);
  const int one = 1;
  if (setsockopt(rx, SOL_UDP, UDP_GRO, &one, sizeof one) != 0) Die("UDP_GRO");
  timeval tv{0, 100000};  // lets the receiver notice the end of the run
  setsockopt(rx, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  if (bind(rx, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) Die("bind");

  const int tx = socket(AF_INET, SOCK_DGRAM, 0);
  if (tx < 0) Die("socket");
  SetBuffer(tx, SO_SNDBUFFORCE, SO_SNDBUF);
  const int seg = static_cast<int>(o.segment);
  if (setsockopt(tx, SOL_UDP, UDP_SEGMENT, &seg, sizeof seg) != 0) Die("UDP_SEGMENT");
  if (connect(tx, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) Die("connect");

  const size_t per_send = std::min(kMaxGsoSegments, kMaxUdpPayload / o.segment);
  std::atomic<bool> stop{false};
  uint64_t rx_bytes = 0, rx_datagrams = 0, rx_batches = 0;
  double rx_first = 0, rx_last = 0;

  std::thread receiver([&] {
    std::vector<std::vector<uint8_t>> bufs(kRecvBatch, std::vector<uint8_t>(kMaxUdpPayload + 1));
    std::vector<iovec> iov(kRecvBatch);
    std::vector<mmsghdr> msgs(kRecvBatch);
    std::vector<std::array<char, CMSG_SPACE(sizeof(uint16_t))>> ctl(kRecvBatch);
    while (!stop.load(std::memory_order_relaxed)) {
      for (size_t i = 0; i < kRecvBatch; ++i) {
        iov[i] = {bufs[i].data(), bufs[i].size()};
        msgs[i].msg_hdr = {};
        msgs[i].msg_hdr.msg_iov = &iov[i];
        msgs[i].msg_hdr.msg_iovlen = 1;
        msgs[i].msg_hdr.msg_control = ctl[i].data();
        msgs[i].msg_hdr.msg_controllen = ctl[i].size();
      }
      const int n = recvmmsg(rx, msgs.data(), kRecvBatch, MSG_WAITFORONE, nullptr);
      if (n <= 0) continue;  // timeout: look at `stop` again
      const double now = NowSeconds();
      if (rx_batches == 0) rx_first = now;
      rx_last = now;
      for (int i = 0; i < n; ++i) {
        const size_t len = msgs[i].msg_len;
        size_t gso = len;  // no UDP_GRO cmsg: a single datagram
        for (cmsghdr* c = CMSG_FIRSTHDR(&msgs[i].msg_hdr); c != nullptr;
             c = CMSG_NXTHDR(&msgs[i].msg_hdr, c)) {
          if (c->cmsg_level == SOL_UDP && c->cmsg_type == UDP_GRO) {
            uint16_t g;
            std::memcpy(&g, CMSG_DATA(c), sizeof g);
            gso = g;
          }
        }
        rx_bytes += len;
        rx_datagrams += gso == 0 ? 1 : (len + gso - 1) / gso;
        ++rx_batches;
      }
    }
  });

  std::vector<uint8_t> payload(per_send * o.segment, 0x5A);
  uint64_t tx_sends = 0, tx_errors = 0;
  const double start = NowSeconds();
  double end = start;
  while (true) {
    if ((tx_sends & 63) == 0) {
      end = NowSeconds();
      if (end - start >= o.duration) break;
    }
    if (send(tx, payload.data(), payload.size(), 0) < 0) {
      if (errno != ENOBUFS && errno != EAGAIN && errno != ECONNREFUSED) Die("send");
      ++tx_errors;
      continue;
    }
    ++tx_sends;
  }
  stop = true;
  receiver.join();

  const double tx_secs = end - start;
  const double rx_secs = rx_last > rx_first ? rx_last - rx_first : tx_secs;
  const uint64_t tx_datagrams = tx_sends * per_send;
  std::printf(
      "{\"segment\": %zu, \"segments_per_send\": %zu, \"seconds\": %.3f, \"sent_gbps\": %.3f, "
      "\"received_gbps\": %.3f, \"sent_datagrams\": %llu, \"received_datagrams\": %llu, "
      "\"received_batches\": %llu, \"send_errors\": %llu}\n",
      o.segment, per_send, tx_secs, tx_datagrams * o.segment * 8 / tx_secs / 1e9,
      rx_bytes * 8 / rx_secs / 1e9, static_cast<unsigned long long>(tx_datagrams),
      static_cast<unsigned long long>(rx_datagrams), static_cast<unsigned long long>(rx_batches),
      static_cast<unsigned long long>(tx_errors));
  close(tx);
  close(rx);
  return 0;
}
