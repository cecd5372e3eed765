// `opensrd rdma perftest`: RDMA WRITE and READ against perftest's ib_write_bw / ib_read_bw
// (-x GID_INDEX with an IPv4-mapped GID, no -R), in either role, over RoceUdpShell.
//
// perftest's out-of-band exchange on TCP (as in perftest 4.5-0.17, version "6.06"; read from its
// perftest_communication.c), each step "client writes, then reads; server reads, then writes":
//   16 bytes: the version string; 4 + 4 bytes: cycle buffer and cache line size (big-endian
//   ints, both sides take the larger); 2 bytes: the MTU enum as "%d" text;
//   108 bytes, five times (before and after connecting, after RTR, when the client is done,
//   and in close): "%04x:%04x:%06x:%06x:%08x:%016llx:" LID, outstanding reads, QPN, PSN, rkey,
//   address, then the 16 GID bytes as "%02x:" each and "%08x:" SRQN, with the NUL;
//   five 8-byte report values after the fourth (size, iters, peak, average bandwidth, message
//   rate); at the end both sides write "done" with its NUL.
// Verification: perftest never checks its buffers. As the client we WRITE a pattern (perftest's
// server gives remote write only, so it cannot be read back) or READ, and every READ of the
// untouched server buffer must return the same bytes; as the server the count of executed
// WRITEs or READs must equal the iterations and (WRITE) nothing may land outside the two slots
// perftest addresses (its client buffer is never initialised, so the bytes cannot be predicted).
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <algorithm>
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

constexpr size_t kKeysLen = roce::kPerftestDestLen;
constexpr int kMtuEnum1024 = 3;

struct Options {
  std::string bind, connect, op = "write";
  uint32_t size = 65536;
  int iters = 100;
  int timeout_s = 120;
  bool json = false;
  std::string pcap;  // every RoCEv2 datagram sent and received; empty: none
};

// The TCP side. While we wait for the peer's next message, the RoCE queue pair keeps running
// (as the server, the client's WRITEs arrive while we wait for its "finished" handshake).
class Exchange {
 public:
  Exchange(int fd, bool client) : fd_(fd), client_(client) {}
  void set_shell(roce::RoceUdpShell* shell) { shell_ = shell; }
  bool Read(void* p, size_t n) {
    uint8_t* b = static_cast<uint8_t*>(p);
    while (n > 0) {
      if (shell_ != nullptr) {
        (void)shell_->Poll(0);
        pollfd pf{fd_, POLLIN, 0};
        if (poll(&pf, 1, 1) <= 0) continue;
      }
      ssize_t r = read(fd_, b, n);
      if (r <= 0) return false;
      b += r;
      n -= static_cast<size_t>(r);
    }
    return true;
  }
  bool Write(const void* p, size_t n) { return write(fd_, p, n) == ssize_t(n); }
  // perftest's ctx_xchg_data: the client writes first.
  bool Swap(const void* mine, void* theirs, size_t n) {
    return client_ ? Write(mine, n) && Read(theirs, n) : Read(theirs, n) && Write(mine, n);
  }

 private:
  int fd_;
  bool client_;
  roce::RoceUdpShell* shell_ = nullptr;
};

struct Keys {
  uint32_t out_reads = 0, qpn = 0, psn = 0, rkey = 0, ip = 0;
  uint64_t vaddr = 0;
};

std::string FormatKeys(const Keys& k) {
  roce::PerftestDest d;
  d.out_reads = static_cast<uint16_t>(k.out_reads);
  d.qpn = k.qpn;
  d.psn = k.psn;
  d.rkey = k.rkey;
  d.vaddr = k.vaddr;
  d.gid = roce::Ipv4MappedGid(k.ip);
  return roce::FormatPerftestDest(d);
}

// Only IPv4-mapped GIDs (-x 1 on rxe): RoCEv2 over IPv4.
bool ParseKeys(const char* m, Keys* k) {
  Result<roce::PerftestDest> d = roce::ParsePerftestDest(
      std::span<const uint8_t>(reinterpret_cast<const uint8_t*>(m), kKeysLen));
  if (!d.ok() || !roce::GidToIpv4(d->gid, &k->ip)) return false;
  k->out_reads = d->out_reads;
  k->qpn = d->qpn;
  k->psn = d->psn;
  k->rkey = d->rkey;
  k->vaddr = d->vaddr;
  return true;
}

uint64_t Be64(uint64_t v) {
  uint64_t r = 0;
  for (int i = 0; i < 8; ++i) r = r << 8 | ((v >> (8 * i)) & 0xFF);
  return r;
}

int Run(const Options& o) {
  bool server = !o.bind.empty();
  bool read_op = o.op == "read";
  bool cas_op = o.op == "cas";  // ib_atomic_bw -A CMP_AND_SWAP
  bool atomic_op = o.op == "atomic" || cas_op;
  uint32_t size = atomic_op ? 8 : o.size;  // ib_atomic_bw works on 8-byte words
  sockaddr_in addr{};
  std::string where = server ? o.bind : o.connect;
  size_t colon = where.rfind(':');
  addr.sin_family = AF_INET;
  if (colon == std::string::npos ||
      inet_pton(AF_INET, where.substr(0, colon).c_str(), &addr.sin_addr) != 1) {
    std::fprintf(stderr, "perftest: bad address (want IPv4:PORT)\n");
    return 2;
  }
  addr.sin_port = htons(static_cast<uint16_t>(std::stoi(where.substr(colon + 1))));
  int conn = -1;
  if (server) {
    int lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    int one = 1;
    setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (bind(lfd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 || listen(lfd, 1) != 0) {
      std::perror("perftest: listen");
      return 1;
    }
    conn = accept(lfd, nullptr, nullptr);
    close(lfd);
  } else {
    conn = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (connect(conn, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
      std::perror("perftest: connect");
      return 1;
    }
  }
  if (conn < 0) return 1;
  sockaddr_in me{};
  socklen_t len = sizeof me;
  getsockname(conn, reinterpret_cast<sockaddr*>(&me), &len);
  uint32_t local_ip = ntohl(me.sin_addr.s_addr);
  Exchange x(conn, !server);

  char version[16] = "6.06", peer_version[16];
  uint32_t sys[2] = {htonl(4096), htonl(64)}, peer_sys[2];
  char mtu[2] = {char('0' + kMtuEnum1024), 0}, peer_mtu[2];
  if (!x.Swap(version, peer_version, 16) || !x.Swap(&sys[0], &peer_sys[0], 4) ||
      !x.Swap(&sys[1], &peer_sys[1], 4) || !x.Swap(mtu, peer_mtu, 2)) {
    std::fprintf(stderr, "perftest: parameter exchange failed\n");
    return 1;
  }
  uint32_t mtu_bytes = 256u << (std::min(kMtuEnum1024, peer_mtu[0] - '0') - 1);

  std::mt19937_64 rng(std::random_device{}());
  // Our region: what the peer WRITEs into or READs from; 0xEE so written bytes show.
  size_t region = std::max<size_t>(o.size, 4096) * 4;
  MemoryTarget target(0x7f0000000000ull, static_cast<uint32_t>(rng()), region);
  std::fill(target.memory().begin(), target.memory().end(), 0xEE);
  Keys mine;
  mine.out_reads = 16;
  mine.qpn = 0x100 + static_cast<uint32_t>(rng() % 0xFFFE00);
  mine.psn = static_cast<uint32_t>(rng()) & roce::kPsnMask;
  mine.rkey = target.rkey();
  mine.vaddr = target.base_va();
  mine.ip = local_ip;
  std::string my_keys = FormatKeys(mine);
  char their[kKeysLen];
  Keys peer;
  if (!x.Swap(my_keys.data(), their, kKeysLen) || !ParseKeys(their, &peer)) {
    std::fprintf(stderr, "perftest: key exchange failed\n");
    return 1;
  }
  roce::RoceUdpShell::Options so;
  so.local_ip = local_ip;
  auto shell_or = roce::RoceUdpShell::Open(so);
  if (!shell_or.ok()) {
    std::fprintf(stderr, "perftest: %s\n", shell_or.status().ToString().c_str());
    return 1;
  }
  std::unique_ptr<roce::RoceUdpShell> shell = std::move(shell_or.value());
  std::unique_ptr<opensrd::PcapWriter> pcap;
  if (!o.pcap.empty()) {
    opensrd::PcapWriterOptions po;
    po.path = o.pcap;
    auto w = opensrd::PcapWriter::Open(po);
    if (!w.ok()) {
      std::fprintf(stderr, "%s: %s\n", "perftest", w.status().ToString().c_str());
      return 1;
    }
    pcap = std::move(w.value());
    shell->set_capture(pcap->NewSource());
  }
  roce::RcConfig cfg;
  cfg.local_qpn = mine.qpn;
  cfg.remote_qpn = peer.qpn;
  cfg.send_psn = mine.psn;
  cfg.expected_psn = peer.psn;
  cfg.mtu = mtu_bytes;
  roce::RcQueuePair qp(cfg, &target);
  if (!shell->Attach(&qp, mine.qpn, peer.ip).ok()) return 1;
  x.set_shell(shell.get());
  // Two more handshakes before the data phase: after connecting, and after RTR.
  if (!x.Swap(my_keys.data(), their, kKeysLen) || !x.Swap(my_keys.data(), their, kKeysLen)) {
    return 1;
  }

  int bad = 0, done = 0;
  std::vector<uint8_t> first_read;
  uint64_t last_original = 0;
  // CMP_SWAP chain on the one word: each swaps `cas_value` for `cas_value + 1`, one at a time.
  // perftest never initialises its buffer, so the first may miss; its original names the
  // word's value and every later one must hit.
  uint64_t cas_value = 0;
  uint64_t t0 = roce::RoceUdpShell::NowMicros();
  if (!server) {
    // READs and atomics count against the responder's outstanding-read resources.
    size_t limit =
        read_op || atomic_op ? std::max<uint32_t>(1, std::min<uint32_t>(peer.out_reads, 16)) : 64;
    if (cas_op) limit = 1;
    int posted = 0;
    uint64_t deadline = t0 + uint64_t(o.timeout_s) * 1'000'000;
    while (done < o.iters) {
      while (posted < o.iters && qp.outstanding() < limit) {
        roce::WorkRequest w;
        w.wr_id = uint64_t(posted);
        w.remote_va = peer.vaddr;  // the one slot every perftest server has
        w.rkey = peer.rkey;
        if (cas_op) {
          w.opcode = roce::WrOpcode::kCmpSwap;
          w.compare = cas_value;
          w.swap_add = cas_value + 1;
        } else if (atomic_op) {
          w.opcode = roce::WrOpcode::kFetchAdd;
          w.swap_add = 1;
        } else if (read_op) {
          w.opcode = roce::WrOpcode::kRead;
          w.read_length = o.size;
        } else {
          w.opcode = roce::WrOpcode::kWrite;
          w.data.resize(o.size);
          for (uint32_t j = 0; j < o.size; ++j) w.data[j] = uint8_t(posted + j * 3);
        }
        qp.PostSend(std::move(w), roce::RoceUdpShell::NowMicros());
        ++posted;
      }
      if (!shell->Poll(5).ok()) return 1;
      for (const roce::Completion& c : qp.TakeCompletions()) {
        if (c.status != roce::WcStatus::kSuccess) {
          std::fprintf(stderr, "perftest: op %llu failed: %s\n", (unsigned long long)c.wr_id,
                       roce::WcStatusName(c.status));
          return 1;
        }
        // The server's buffer is not touched during the test (perftest leaves it as
        // allocated): every READ of the one slot must return the same bytes.
        if (read_op) {
          if (c.read_data.size() != o.size) {
            ++bad;
          } else if (first_read.empty()) {
            first_read = c.read_data;
          } else if (c.read_data != first_read) {
            ++bad;
          }
        }
        // FETCH_ADD 1 on one word, in order: each original is the one before plus 1.
        if (cas_op) {
          if (c.atomic_original == cas_value) {
            ++cas_value;  // swapped
          } else if (done == 0) {
            cas_value = c.atomic_original;  // the buffer's first value: chain from it
          } else {
            ++bad;
          }
        } else if (atomic_op) {
          if (done > 0 && c.atomic_original != last_original + 1) ++bad;
          last_original = c.atomic_original;
        }
        ++done;
      }
      if (roce::RoceUdpShell::NowMicros() > deadline) {
        const roce::RcStats& st = qp.stats();
        std::fprintf(stderr,
                     "perftest: timed out after %d of %d (sent %llu, resent %llu, timeouts %llu, "
                     "NAKs received %llu, RNR NAKs %llu)\n",
                     done, o.iters, (unsigned long long)st.packets_sent,
                     (unsigned long long)st.retransmitted_packets, (unsigned long long)st.timeouts,
                     (unsigned long long)st.naks_received,
                     (unsigned long long)st.rnr_naks_received);
        return 1;
      }
    }
  }
  uint64_t t1 = roce::RoceUdpShell::NowMicros();
  // The client says it is finished; as the server this is where its operations have ended.
  if (!x.Swap(my_keys.data(), their, kKeysLen)) return 1;
  if (server) t1 = roce::RoceUdpShell::NowMicros();
  double secs = double(t1 - t0) / 1e6;
  {  // both tools exchange their reports
    double mbps = secs > 0 ? double(size) * o.iters / secs / 1e6 : 0;
    uint64_t mine_r[5] = {Be64(size), Be64(uint64_t(o.iters)), 0, 0, 0};
    std::memcpy(&mine_r[2], &mbps, 8);
    mine_r[2] = Be64(mine_r[2]);
    mine_r[3] = mine_r[2];
    double rate = secs > 0 ? o.iters / secs / 1e6 : 0;
    std::memcpy(&mine_r[4], &rate, 8);
    mine_r[4] = Be64(mine_r[4]);
    uint64_t theirs_r[5];
    for (int i = 0; i < 5; ++i) {
      if (!x.Swap(&mine_r[i], &theirs_r[i], 8)) return 1;
    }
  }
  if (!x.Swap(my_keys.data(), their, kKeysLen)) return 1;
  (void)x.Write("done", 5);
  close(conn);
  // Keep answering briefly: a lost final ACK makes the peer resend.
  uint64_t linger = roce::RoceUdpShell::NowMicros() + 200'000;
  while (roce::RoceUdpShell::NowMicros() < linger) (void)shell->Poll(5);

  const roce::RcStats& qs = qp.stats();
  uint64_t executed = qs.messages_executed;
  if (server) {
    done = static_cast<int>(executed);
    if (executed != uint64_t(o.iters)) {
      std::fprintf(stderr, "perftest: the client's %d operations, %llu executed here\n", o.iters,
                   (unsigned long long)executed);
      ++bad;
    }
    if (atomic_op && !cas_op) {
      // ib_atomic_bw adds 1 per FETCH_ADD: the words' growth over 0xEE.. sums to the count.
      uint64_t added = 0;
      for (size_t off = 0; off + 8 <= target.memory().size(); off += 8) {
        uint64_t v;
        std::memcpy(&v, target.memory().data() + off, 8);
        added += v - 0xEEEEEEEEEEEEEEEEull;
      }
      if (added != uint64_t(o.iters)) ++bad;
    } else if (!read_op) {
      // (CMP_SWAP: perftest's operands are its own; what is checked is the count and that no
      // word outside the slots it addresses changed.)
      // perftest's client sends whatever its buffer holds (never initialised), so the bytes
      // cannot be predicted; what can be checked is where they went: nothing may land beyond
      // the two cycle-buffer slots perftest addresses.
      size_t slots = 2 * std::max<size_t>(size, 4096);
      if (std::any_of(target.memory().begin() + slots, target.memory().end(),
                      [](uint8_t v) { return v != 0xEE; })) {
        ++bad;
      }
    }
  }
  const roce::RoceUdpShell::Stats& ss = shell->stats();
  bool verified = bad == 0 && ss.icrc_bad == 0;
  double gbps = secs > 0 ? double(size) * done * 8 / secs / 1e9 : 0;
  if (o.json) {
    std::printf(
        "{\"role\":\"%s\",\"op\":\"%s\",\"size\":%u,\"ops\":%d,\"bytes\":%llu,\"seconds\":%.6f,"
        "\"goodput_gbps\":%.4f,\"retransmits\":%llu,\"timeouts\":%llu,\"messages_executed\":%llu,"
        "\"icrc_checked\":%llu,\"icrc_bad\":%llu,\"icrc_unchecked\":%llu,\"errors\":%d,"
        "\"verified\":%s}\n",
        server ? "server" : "client", o.op.c_str(), size, done,
        (unsigned long long)(uint64_t(size) * uint64_t(done)), secs, gbps,
        (unsigned long long)qs.retransmitted_packets, (unsigned long long)qs.timeouts,
        (unsigned long long)executed, (unsigned long long)ss.icrc_checked,
        (unsigned long long)ss.icrc_bad, (unsigned long long)ss.icrc_unchecked, bad,
        verified ? "true" : "false");
  } else {
    std::printf("%s %d x %u bytes in %.3f s = %.3f Gbit/s; %s\n", o.op.c_str(), done, size, secs,
                gbps, verified ? "verified" : "NOT verified");
  }
  return verified ? 0 : 1;
}

}  // namespace

void AddRocePerftestCommand(CLI::App* rdma_cmd) {
  auto opt = std::make_shared<Options>();
  CLI::App* cmd = rdma_cmd->add_subcommand(
      "perftest",
      "RDMA WRITE/READ against perftest's ib_write_bw / ib_read_bw -x <IPv4-mapped GID index> "
      "(server: --bind, client: --connect; UDP 4791 on the exchange's local address)");
  auto* b = cmd->add_option("--bind", opt->bind, "serve perftest's exchange on IPv4:PORT");
  auto* c = cmd->add_option("--connect", opt->connect, "connect to a perftest server IPv4:PORT");
  b->excludes(c);
  cmd->add_option("--op", opt->op,
                  "write (ib_write_bw), read (ib_read_bw), atomic (ib_atomic_bw, FETCH_ADD) or "
                  "cas (ib_atomic_bw -A CMP_AND_SWAP)")
      ->check(CLI::IsMember({"write", "read", "atomic", "cas"}));
  cmd->add_option("-s,--size", opt->size, "bytes per operation (as perftest -s)")
      ->check(CLI::Range(1u, 1u << 23));
  cmd->add_option("-n,--iters", opt->iters, "operations (as perftest -n)")
      ->check(CLI::Range(1, 1 << 24));
  cmd->add_option("--timeout", opt->timeout_s, "give up after this many seconds");
  cmd->add_flag("--json", opt->json, "one JSON object on stdout at the end");
  cmd->add_option("--pcap", opt->pcap,
                  "write every RoCEv2 datagram sent and received to this pcap file (real "
                  "addresses and ports; synthesized IP headers, so check ICRCs on tcpdump)");
  cmd->callback([opt] {
    if (opt->bind.empty() == opt->connect.empty()) {
      throw CLI::ValidationError("perftest", "give exactly one of --bind and --connect");
    }
    SetRdmaCommandExitCode(Run(*opt));
  });
}
