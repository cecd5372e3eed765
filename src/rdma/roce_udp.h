// RoceUdpShell: the thin I/O shell that carries RcQueuePairs over IPv4/UDP port 4791.
//
// Sending: each queue pair gets its own unconnected UDP socket bound to an ephemeral port (the
// UDP source port is the flow entropy, as rxe keeps one per QP) with IP_PMTUDISC_DO, so the
// kernel sends DF and IP identification 0; the ICRC, which covers the identification, is
// computed for exactly those headers before sending. The kernel fills in the UDP checksum.
// Everything a queue pair has queued when Flush runs leaves in one sendmmsg (RoceSendBatch),
// and the receive side reads with recvmmsg: one system call per batch, not per 1 KiB packet.
// UDP GSO (UDP_SEGMENT) is not used: on loopback the GSO packet reaches the raw socket
// unsegmented, one IP packet holding many RoCEv2 packets (docs/PERF.md, session 23).
//
// Receiving: a plain UDP socket never shows the IP header, and rxe sends random IP IDs, so the
// ICRC of a received packet cannot be checked from it. With CAP_NET_RAW the shell reads whole
// IPv4 packets from a raw IPPROTO_UDP socket and checks every ICRC (roce::ParsePacket); the UDP
// socket bound to 4791 only claims the port (no ICMP port unreachable) and drops everything
// through a "return 0" socket filter. Without CAP_NET_RAW it reads the UDP socket and counts
// the packets whose ICRC went unchecked (stats().icrc_unchecked). docs/RDMA.md has the reasons.
//
// Fault injection (tests): Options::reorder holds a queue pair's packet back with that
// probability and sends it right after the queue pair's next packet, so the peer sees the two
// swapped; a held packet goes out alone once it has waited reorder_hold_us (never held forever).
// QP1 (connection manager) packets are never held. The choices come from reorder_seed alone, so
// one seed and one packet sequence give one order.
//
// Single-threaded: Poll() runs everything on the caller's thread.
#pragma once
#include <array>
#include <cstdint>
#include <functional>
#include <memory>
#include <random>
#include <span>
#include <vector>

#include "common/pcap_writer.h"
#include "common/status.h"
#include "rdma/roce_qp.h"
#include "rdma/roce_send_batch.h"

namespace opensrd::rdma::roce {

class RoceUdpShell {
 public:
  struct Options {
    uint32_t local_ip = 0;  // host byte order; the address the peer sends to (our GID)
    uint16_t port = 4791;
    bool raw_receive = true;          // try the raw socket (falls back if not permitted)
    double reorder = 0;               // probability in [0, 1] that a QP's packet is held back
    uint64_t reorder_seed = 1;        // seeds the hold choices
    uint64_t reorder_hold_us = 1000;  // a held packet with no successor goes out after this
    // Poll spins (checks without sleeping, yielding the CPU every few rounds) this long after
    // the last packet sent or received before it sleeps in poll: while traffic flows, the
    // shell is not woken once per packet. 0: always sleep (as UdpEndpoint's spin_us).
    uint64_t spin_us = 60;
  };
  struct Stats {
    uint64_t rx_packets = 0;
    uint64_t tx_packets = 0;
    uint64_t icrc_checked = 0;
    uint64_t icrc_bad = 0;
    uint64_t icrc_unchecked = 0;
    uint64_t malformed = 0;
    uint64_t unknown_qp = 0;
    uint64_t send_errors = 0;
    uint64_t gsi_rx = 0;  // UD packets to QP1 (connection manager MADs) handed to the handler
    uint64_t gsi_tx = 0;
    uint64_t reordered = 0;        // held packets sent after their queue pair's next packet
    uint64_t reorder_expired = 0;  // held packets sent alone after reorder_hold_us (delayed only)
    uint64_t raw_foreign = 0;  // raw-socket datagrams for another address or port (read, dropped)
  };
  // Receives every packet to QP1 (BTH opcode UD SEND ONLY, dest QP 1) whose ICRC checked (or
  // could not be checked, see icrc_unchecked): the sender's IP and the bytes from the BTH to
  // the end of the pad. Without a handler such packets count as unknown_qp.
  using GsiHandler = std::function<void(uint32_t src_ip, std::span<const uint8_t> bth_onward)>;

  static Result<std::unique_ptr<RoceUdpShell>> Open(const Options& options);
  ~RoceUdpShell();
  RoceUdpShell(const RoceUdpShell&) = delete;
  RoceUdpShell& operator=(const RoceUdpShell&) = delete;

  // Carries `qp` (not owned; it must outlive the shell) whose packets go to peer_ip:peer_port
  // (4791 for every real RoCEv2 peer; tests on one address use two ports). Returns the UDP
  // source port its packets use.
  Result<uint16_t> Attach(RcQueuePair* qp, uint32_t local_qpn, uint32_t peer_ip,
                          uint16_t peer_port = 4791);
  // Stops carrying `qp` (its packets are no longer sent or delivered) and closes its socket.
  void Detach(const RcQueuePair* qp);
  // Sends what the queue pairs have queued, waits up to timeout_ms (less if a queue pair's
  // deadline comes sooner) for packets, feeds them in, fires due timers, sends again.
  Status Poll(int timeout_ms);

  void set_gsi_handler(GsiHandler h) { gsi_handler_ = std::move(h); }
  // Sends a QP1 packet (BTH onward, without ICRC: the shell adds it) to peer_ip:peer_port from
  // its own socket (DF, IP identification 0, as every queue pair's).
  Status SendGsi(uint32_t peer_ip, std::vector<uint8_t> bth_onward, uint16_t peer_port = 4791);

  // Records every datagram sent and received (UDP payload: BTH ... ICRC) with its real addresses
  // and ports (--pcap; the writer synthesizes the IP header, so the captured IP identification
  // is not the one the ICRC covered: check ICRCs on a tcpdump capture instead). Null: none.
  void set_capture(PcapWriter::Source* capture) { capture_ = capture; }
  bool raw_receive() const { return raw_fd_ >= 0; }
  const Stats& stats() const { return stats_; }
  static uint64_t NowMicros();  // CLOCK_MONOTONIC

 private:
  struct Attached {
    RcQueuePair* qp;
    uint32_t qpn;
    uint32_t peer_ip;
    uint16_t peer_port;
    int fd;
    uint16_t src_port;
    std::vector<uint8_t> held;  // a packet held back by Options::reorder (empty: none)
    uint64_t held_since_us = 0;
  };
  RoceUdpShell() = default;
  // Datagrams read per recvmmsg, rounds of it per Receive, and bytes per datagram (the largest
  // IPv4 packet: one that is too long for RoCEv2 is read whole and counted as malformed).
  static constexpr size_t kRecvBatch = 32;
  static constexpr int kRecvRounds = 8;
  static constexpr size_t kRecvSlot = 65536;
  static constexpr uint32_t kSpinsPerYield = 4;  // empty spin rounds between sched_yield calls

  void Flush();
  void Queue(Attached& q, std::vector<uint8_t> pkt);  // adds the ICRC, queues in batch_
  void SendQueued(const Attached& q);                 // sends batch_, counts, captures
  bool HoldNext();                                    // draws one reorder choice
  size_t Receive();                                   // datagrams read
  void OnRawDatagram(std::span<const uint8_t> ip_packet, uint64_t now_us);
  void OnUdpDatagram(std::span<const uint8_t> payload, const sockaddr_in& from, uint64_t now_us);
  void Dispatch(const RdmaCommand& cmd, uint64_t now_us);
  bool DeliverGsi(uint32_t src_ip, std::span<const uint8_t> body);  // false: not a QP1 packet
  Result<int> SendSocket();

  Options opt_;
  int udp_fd_ = -1;
  int raw_fd_ = -1;
  std::vector<Attached> qps_;
  RoceSendBatch batch_;          // one queue pair's packets of one Flush
  std::vector<uint8_t> rx_buf_;  // kRecvBatch slots of kRecvSlot bytes
  std::array<iovec, kRecvBatch> rx_iov_;
  std::array<mmsghdr, kRecvBatch> rx_msgs_;
  std::array<sockaddr_in, kRecvBatch> rx_from_;
  PcapWriter::Source* capture_ = nullptr;
  Stats stats_;
  GsiHandler gsi_handler_;
  int gsi_fd_ = -1;
  uint16_t gsi_port_ = 0;
  std::mt19937_64 reorder_rng_;
  uint64_t last_activity_us_ = 0;  // NowMicros() of the last batch sent or received
};

}  // namespace opensrd::rdma::roce
