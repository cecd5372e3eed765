#include "tools/opensrd/roce_cm_node.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <fstream>

#include "rdma/ib_cm.h"
#include "tools/opensrd/capture.h"

namespace opensrd::cli {

namespace roce = rdma::roce;
namespace cm = rdma::cm;

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

Status Node::Open(uint32_t ip, uint16_t udp_port, const std::string& pcap, uint64_t seed,
                  uint64_t cm_resend_us) {
  port = udp_port;
  roce::RoceUdpShell::Options so;
  so.local_ip = ip;
  so.port = udp_port;
  so.reorder = reorder;
  if (reorder_seed == 0) reorder_seed = (seed * 0x9E3779B97F4A7C15ull) | 1;
  so.reorder_seed = reorder_seed;
  Result<std::unique_ptr<roce::RoceUdpShell>> s = roce::RoceUdpShell::Open(so);
  if (!s.ok()) return s.status();
  shell = std::move(s.value());
  Result<std::unique_ptr<PcapWriter>> w = OpenCapture(pcap);
  if (!w.ok()) return w.status();
  capture = std::move(w.value());
  if (capture) shell->set_capture(capture->NewSource());
  cm::CmAgent::Config cc;
  cc.local_ip = ip;
  cc.ca_guid = 0x02000000'00000000ull | (seed & 0xFFFFFFFFFFFFull);
  cc.resend_us = cm_resend_us;
  cc.max_resends = 15;
  cc.seed = static_cast<uint32_t>(seed);
  agent = std::make_unique<cm::CmAgent>(cc);
  gsi_psn = static_cast<uint32_t>(seed >> 32) & roce::kPsnMask;
  shell->set_gsi_handler([this](uint32_t src, std::span<const uint8_t> bytes) {
    Result<cm::Message> m = cm::DecodeGsiPacket(bytes);
    if (!m.ok()) {
      ++cm_malformed;
      return;
    }
    agent->OnMessage(src, *m, NowUs());
  });
  return Status::Ok();
}

Status Node::Step(int timeout_ms) {
  Status st = shell->Poll(timeout_ms);
  if (!st.ok()) return st;
  agent->OnTimer(NowUs());
  for (cm::Outgoing& o : agent->TakeOutgoing()) {
    st = shell->SendGsi(o.peer_ip, cm::EncodeGsiPacket(o.message, gsi_psn), port);
    gsi_psn = (gsi_psn + 1) & roce::kPsnMask;
    if (!st.ok()) return st;
  }
  return Status::Ok();
}

nlohmann::json Node::Counters() const {
  const roce::RoceUdpShell::Stats& s = shell->stats();
  nlohmann::json j = {{"rx_packets", s.rx_packets},          {"tx_packets", s.tx_packets},
                      {"icrc_checked", s.icrc_checked},      {"icrc_bad", s.icrc_bad},
                      {"icrc_unchecked", s.icrc_unchecked},  {"malformed", s.malformed},
                      {"cm_mads_received", s.gsi_rx},        {"cm_mads_sent", s.gsi_tx},
                      {"cm_malformed", cm_malformed},        {"reordered", s.reordered},
                      {"reorder_expired", s.reorder_expired}};
  if (reorder > 0) j["reorder_seed"] = reorder_seed;
  return j;
}

}  // namespace opensrd::cli
