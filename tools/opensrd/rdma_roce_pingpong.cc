// `opensrd rdma pingpong`: the peer of rdma-core's ibv_rc_pingpong (-g GID_INDEX with an
// IPv4-mapped GID, i.e. RoCEv2) in either role, over RoceUdpShell and one RcQueuePair.
//
// Out-of-band exchange, as ibv_rc_pingpong does it on TCP (default port 18515): the client
// writes "%04x:%06x:%06x:%s" (LID, QPN, PSN, the 16 GID bytes in hex) with its NUL, 52 bytes;
// the server answers the same; the client writes "done" with its NUL. Then the client SENDs
// first and each side SENDs again once its last SEND is acknowledged and a message arrived,
// `iters` times. Every received message is checked: ibv_rc_pingpong sends from the buffer it
// receives into, so it echoes our last message (its first, as client, is all 0x7b).
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <cstdio>
#include <cstring>
#include <random>
#include <string>

#include "common/pcap_writer.h"
#include "rdma/rc_target.h"
#include "rdma/roce_oob.h"
#include "rdma/roce_qp.h"
#include "rdma/roce_udp.h"
#include "tools/opensrd/rdma_commands.h"

namespace {

using opensrd::Result;
using opensrd::Status;
using opensrd::rdma::MemoryTarget;
namespace roce = opensrd::rdma::roce;

constexpr size_t kExchangeLen = opensrd::rdma::roce::kPingpongDestLen;
constexpr int kRxDepth = 500;  // receives kept posted, as ibv_rc_pingpong

struct Options {
  std::string bind;     // server: HOST:PORT for the TCP exchange
  std::string connect;  // client: HOST:PORT
  uint32_t size = 4096;
  int iters = 1000;
  uint32_t mtu = 1024;
  int timeout_s = 60;
  uint64_t seed = 0;  // 0: random QPN and PSN
  bool json = false;
  std::string pcap;  // every RoCEv2 datagram sent and received; empty: none
};

bool SplitHostPort(const std::string& s, sockaddr_in* out) {
  size_t colon = s.rfind(':');
  if (colon == std::string::npos) return false;
  *out = {};
  out->sin_family = AF_INET;
  out->sin_port = htons(static_cast<uint16_t>(std::stoi(s.substr(colon + 1))));
  return inet_pton(AF_INET, s.substr(0, colon).c_str(), &out->sin_addr) == 1;
}

bool ReadFull(int fd, char* p, size_t n) {
  while (n > 0) {
    ssize_t r = read(fd, p, n);
    if (r <= 0) return false;
    p += r;
    n -= static_cast<size_t>(r);
  }
  return true;
}

std::string Describe(uint32_t qpn, uint32_t psn, uint32_t ip) {
  roce::PingpongDest d;
  d.qpn = qpn;
  d.psn = psn;
  d.gid = roce::Ipv4MappedGid(ip);
  return roce::FormatPingpongDest(d);  // with the terminating NUL, as the C program sends
}

// Only IPv4-mapped GIDs (rxe's -g 1): RoCEv2 over IPv4.
bool ParsePeer(const char* msg, uint32_t* qpn, uint32_t* psn, uint32_t* ip) {
  Result<roce::PingpongDest> d = roce::ParsePingpongDest(
      std::span<const uint8_t>(reinterpret_cast<const uint8_t*>(msg), kExchangeLen));
  if (!d.ok() || !roce::GidToIpv4(d->gid, ip)) return false;
  *qpn = d->qpn;
  *psn = d->psn;
  return true;
}

std::vector<uint8_t> Pattern(int k, uint32_t size) {
  std::vector<uint8_t> v(size);
  for (uint32_t j = 0; j < size; ++j) v[j] = static_cast<uint8_t>(k * 131 + j * 7 + j / 1024);
  return v;
}

int Run(const Options& o) {
  bool server = !o.bind.empty();
  sockaddr_in addr;
  if (!SplitHostPort(server ? o.bind : o.connect, &addr)) {
    std::fprintf(stderr, "pingpong: bad address (want IPv4:PORT)\n");
    return 2;
  }
  int conn = -1;
  if (server) {
    int lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    int one = 1;
    setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (bind(lfd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 || listen(lfd, 1) != 0) {
      std::perror("pingpong: listen");
      return 1;
    }
    std::fprintf(stderr, "pingpong: waiting on %s\n", o.bind.c_str());
    conn = accept(lfd, nullptr, nullptr);
    close(lfd);
  } else {
    conn = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (connect(conn, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
      std::perror("pingpong: connect");
      return 1;
    }
  }
  if (conn < 0) return 1;
  // Our RoCE address is the one the exchange runs from.
  sockaddr_in me{};
  socklen_t len = sizeof me;
  getsockname(conn, reinterpret_cast<sockaddr*>(&me), &len);
  uint32_t local_ip = ntohl(me.sin_addr.s_addr);

  std::mt19937_64 rng(o.seed != 0 ? o.seed : std::random_device{}());
  uint32_t my_qpn = 0x100 + static_cast<uint32_t>(rng() % 0xFFFE00);
  uint32_t my_psn = static_cast<uint32_t>(rng()) & roce::kPsnMask;

  roce::RoceUdpShell::Options so;
  so.local_ip = local_ip;
  auto shell_or = roce::RoceUdpShell::Open(so);
  if (!shell_or.ok()) {
    std::fprintf(stderr, "pingpong: %s\n", shell_or.status().ToString().c_str());
    return 1;
  }
  std::unique_ptr<roce::RoceUdpShell> shell = std::move(shell_or.value());
  std::unique_ptr<opensrd::PcapWriter> pcap;
  if (!o.pcap.empty()) {
    opensrd::PcapWriterOptions po;
    po.path = o.pcap;
    auto w = opensrd::PcapWriter::Open(po);
    if (!w.ok()) {
      std::fprintf(stderr, "%s: %s\n", "pingpong", w.status().ToString().c_str());
      return 1;
    }
    pcap = std::move(w.value());
    shell->set_capture(pcap->NewSource());
  }

  char peer_msg[kExchangeLen];
  std::string mine = Describe(my_qpn, my_psn, local_ip);
  if (!server && write(conn, mine.data(), mine.size()) != ssize_t(mine.size())) return 1;
  if (!ReadFull(conn, peer_msg, kExchangeLen)) {
    std::fprintf(stderr, "pingpong: no peer address\n");
    return 1;
  }
  uint32_t peer_qpn, peer_psn, peer_ip;
  if (!ParsePeer(peer_msg, &peer_qpn, &peer_psn, &peer_ip)) {
    std::fprintf(stderr, "pingpong: bad peer address '%.*s'\n", int(kExchangeLen), peer_msg);
    return 2;
  }

  MemoryTarget target(0x1000, static_cast<uint32_t>(rng()), 64);
  for (int i = 0; i < kRxDepth; ++i) target.PostReceive(o.size);
  roce::RcConfig cfg;
  cfg.local_qpn = my_qpn;
  cfg.remote_qpn = peer_qpn;
  cfg.send_psn = my_psn;
  cfg.expected_psn = peer_psn;
  cfg.mtu = o.mtu;
  roce::RcQueuePair qp(cfg, &target);
  Result<uint16_t> sport = shell->Attach(&qp, my_qpn, peer_ip);
  if (!sport.ok()) {
    std::fprintf(stderr, "pingpong: %s\n", sport.status().ToString().c_str());
    return 1;
  }
  if (server) {
    char done[kExchangeLen];
    if (write(conn, mine.data(), mine.size()) != ssize_t(mine.size()) ||
        read(conn, done, sizeof done) <= 0) {
      std::fprintf(stderr, "pingpong: exchange failed\n");
      return 1;
    }
  } else if (write(conn, "done", 5) != 5) {
    return 1;
  }
  close(conn);
  std::fprintf(stderr,
               "pingpong: local QPN 0x%06x PSN 0x%06x UDP source port %u; remote QPN 0x%06x PSN "
               "0x%06x at %s; ICRC receive check: %s\n",
               my_qpn, my_psn, *sport, peer_qpn, peer_psn, inet_ntoa(in_addr{htonl(peer_ip)}),
               shell->raw_receive() ? "on" : "OFF");

  // The ping-pong itself, as ibv_rc_pingpong's completion loop.
  int scnt = 0, rcnt = 0, bad = 0;
  bool send_pending = false, recv_pending = true;
  int last_sent = 0;
  auto post = [&] {
    roce::WorkRequest w;
    w.wr_id = uint64_t(++last_sent);
    w.opcode = roce::WrOpcode::kSend;
    w.data = Pattern(last_sent, o.size);
    qp.PostSend(std::move(w), roce::RoceUdpShell::NowMicros());
    send_pending = recv_pending = true;
  };
  if (!server) post();
  uint64_t t0 = roce::RoceUdpShell::NowMicros();
  uint64_t deadline = t0 + uint64_t(o.timeout_s) * 1'000'000;
  // The last SEND of the exchange may lose its ACK after the peer, done, destroyed its QP:
  // ibv_rc_pingpong exits once its own counts are complete, and nothing answers the resend
  // (two ibv_rc_pingpong programs share this fate under loss). It is the peer's report that says
  // whether it arrived (the interop test checks it); here it is waited for 2 s and then noted.
  bool last_send_unacked = false;
  uint64_t all_received_at = 0;
  while (scnt < o.iters || rcnt < o.iters) {
    if (rcnt == o.iters && scnt == o.iters - 1) {
      uint64_t now = roce::RoceUdpShell::NowMicros();
      if (all_received_at == 0) all_received_at = now;
      if (now - all_received_at > 2'000'000) {
        last_send_unacked = true;
        std::fprintf(stderr, "pingpong: the last send was not acknowledged (peer gone?)\n");
        break;
      }
    }
    if (roce::RoceUdpShell::NowMicros() > deadline) {
      std::fprintf(stderr, "pingpong: timed out after %d of %d sends, %d receives\n", scnt, o.iters,
                   rcnt);
      return 1;
    }
    Status st = shell->Poll(10);
    if (!st.ok()) {
      std::fprintf(stderr, "pingpong: %s\n", st.ToString().c_str());
      return 1;
    }
    for (const roce::Completion& c : qp.TakeCompletions()) {
      if (c.status != roce::WcStatus::kSuccess) {
        std::fprintf(stderr, "pingpong: send %llu failed: %s\n", (unsigned long long)c.wr_id,
                     roce::WcStatusName(c.status));
        return 1;
      }
      ++scnt;
      send_pending = false;
    }
    while (!target.received().empty()) {
      MemoryTarget::Received r = std::move(target.received().front());
      target.received().pop_front();
      target.PostReceive(o.size);
      ++rcnt;
      // The peer echoes our latest message; as a server, its very first one is all 0x7b.
      std::vector<uint8_t> want =
          last_sent == 0 ? std::vector<uint8_t>(o.size, 0x7b) : Pattern(last_sent, o.size);
      if (r.data != want) {
        ++bad;
        std::fprintf(stderr, "pingpong: message %d differs from what was expected\n", rcnt);
      }
      recv_pending = false;
    }
    if (!send_pending && !recv_pending && scnt < o.iters) post();
  }
  uint64_t t1 = roce::RoceUdpShell::NowMicros();
  // Keep answering for a moment: if our last ACK was lost, the peer resends and needs another.
  uint64_t linger = t1 + 300'000;
  while (roce::RoceUdpShell::NowMicros() < linger) (void)shell->Poll(10);

  const roce::RcStats& qs = qp.stats();
  const roce::RoceUdpShell::Stats& ss = shell->stats();
  double secs = double(t1 - t0) / 1e6;
  bool verified = bad == 0 && (ss.icrc_bad == 0);
  if (o.json) {
    std::printf(
        "{\"role\":\"%s\",\"size\":%u,\"iters\":%d,\"messages\":%d,\"bytes\":%llu,"
        "\"seconds\":%.6f,\"usec_per_iter\":%.2f,\"retransmits\":%llu,\"timeouts\":%llu,"
        "\"naks_sent\":%llu,\"naks_received\":%llu,\"duplicates\":%llu,\"rx_packets\":%llu,"
        "\"tx_packets\":%llu,\"icrc_checked\":%llu,\"icrc_bad\":%llu,\"icrc_unchecked\":%llu,"
        "\"errors\":%d,\"last_send_unacked\":%s,\"verified\":%s}\n",
        server ? "server" : "client", o.size, o.iters, rcnt,
        (unsigned long long)(uint64_t(o.size) * uint64_t(rcnt + scnt)), secs, secs * 1e6 / o.iters,
        (unsigned long long)qs.retransmitted_packets, (unsigned long long)qs.timeouts,
        (unsigned long long)qs.naks_sent, (unsigned long long)qs.naks_received,
        (unsigned long long)qs.duplicates, (unsigned long long)ss.rx_packets,
        (unsigned long long)ss.tx_packets, (unsigned long long)ss.icrc_checked,
        (unsigned long long)ss.icrc_bad, (unsigned long long)ss.icrc_unchecked, bad,
        last_send_unacked ? "true" : "false", verified ? "true" : "false");
  } else {
    std::printf(
        "%d iters of %u bytes in %.3f s = %.2f usec/iter; %llu retransmitted packets, "
        "%llu ICRCs checked, %llu bad; %s\n",
        o.iters, o.size, secs, secs * 1e6 / o.iters, (unsigned long long)qs.retransmitted_packets,
        (unsigned long long)ss.icrc_checked, (unsigned long long)ss.icrc_bad,
        verified ? "verified" : "NOT verified");
  }
  return verified ? 0 : 1;
}

}  // namespace

void AddRocePingpongCommand(CLI::App* rdma_cmd) {
  auto opt = std::make_shared<Options>();
  CLI::App* cmd = rdma_cmd->add_subcommand(
      "pingpong",
      "RoCEv2 RC ping-pong compatible with ibv_rc_pingpong -g <IPv4-mapped GID index> "
      "(server: --bind, client: --connect; UDP 4791 on the exchange's local address)");
  auto* b = cmd->add_option("--bind", opt->bind, "serve the out-of-band exchange on IPv4:PORT");
  auto* c = cmd->add_option("--connect", opt->connect, "connect to ibv_rc_pingpong at IPv4:PORT");
  b->excludes(c);
  cmd->add_option("-s,--size", opt->size, "message size in bytes (as ibv_rc_pingpong -s)")
      ->check(CLI::Range(1u, 1u << 24));
  cmd->add_option("-n,--iters", opt->iters, "messages each way (as ibv_rc_pingpong -n)")
      ->check(CLI::Range(1, 1 << 30));
  cmd->add_option("-m,--mtu", opt->mtu, "path MTU (as ibv_rc_pingpong -m)")
      ->check(CLI::IsMember({256u, 512u, 1024u, 2048u, 4096u}));
  cmd->add_option("--timeout", opt->timeout_s, "give up after this many seconds");
  cmd->add_option("--seed", opt->seed, "seed for the QPN and PSN (0: random)");
  cmd->add_flag("--json", opt->json, "one JSON object on stdout at the end");
  cmd->add_option("--pcap", opt->pcap,
                  "write every RoCEv2 datagram sent and received to this pcap file (real "
                  "addresses and ports; synthesized IP headers, so check ICRCs on tcpdump)");
  cmd->callback([opt] {
    if (opt->bind.empty() == opt->connect.empty()) {
      throw CLI::ValidationError("pingpong", "give exactly one of --bind and --connect");
    }
    SetRdmaCommandExitCode(Run(*opt));
  });
}
