#include "tools/opensrd/roce_cm_node.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <fstream>

#include "rdma/roce_udp.h"

namespace opensrd::cli {

namespace roce = rdma::roce;

uint64_t NowUs() {
  return roce::RoceUdpShell::NowMicros();
}

// HOST[:PORT]; the port stays as given when absent.
bool ParseHostPort(const std::string& s, uint32_t* ip, uint16_t* port) {
  std::string host = s;
  const size_t colon = s.rfind(':');
  if (colon != std::string::npos) {
    host = s.substr(0, colon);
    const std::string p = s.substr(colon + 1);
    if (p.empty() || p.size() > 5 || p.find_first_not_of("0123456789") != std::string::npos) {
      return false;
    }
    const unsigned long v = std::stoul(p);
    if (v == 0 || v > 65535) return false;
    *port = static_cast<uint16_t>(v);
  }
  in_addr a{};
  if (inet_pton(AF_INET, host.c_str(), &a) != 1) return false;
  *ip = ntohl(a.s_addr);
  return true;
}

std::string IpText(uint32_t ip) {
  in_addr a{htonl(ip)};
  char b[INET_ADDRSTRLEN];
  inet_ntop(AF_INET, &a, b, sizeof b);
  return b;
}

// The source address the kernel would use towards `ip`.
uint32_t RouteSource(uint32_t ip) {
  int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  sockaddr_in to{};
  to.sin_family = AF_INET;
  to.sin_addr.s_addr = htonl(ip);
  to.sin_port = htons(9);
  sockaddr_in me{};
  socklen_t len = sizeof me;
  uint32_t out = 0;
  if (fd >= 0 && connect(fd, reinterpret_cast<sockaddr*>(&to), sizeof to) == 0 &&
      getsockname(fd, reinterpret_cast<sockaddr*>(&me), &len) == 0) {
    out = ntohl(me.sin_addr.s_addr);
  }
  if (fd >= 0) close(fd);
  return out;
}

void PutBe(uint8_t* p, uint64_t v, int n) {
  for (int i = 0; i < n; ++i) p[i] = static_cast<uint8_t>(v >> (8 * (n - 1 - i)));
}
uint64_t GetBe(const uint8_t* p, int n) {
  uint64_t v = 0;
  for (int i = 0; i < n; ++i) v = v << 8 | p[i];
  return v;
}
uint32_t MtuBytes(uint8_t code) {
  return code >= 1 && code <= 5 ? 128u << code : 1024u;
}

std::string CpuModel() {
  std::ifstream f("/proc/cpuinfo");
  for (std::string line; std::getline(f, line);) {
    if (line.rfind("model name", 0) == 0) return line.substr(line.find(':') + 2);
  }
  return "unknown";
}

}  // namespace opensrd::cli
