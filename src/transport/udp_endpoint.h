// UdpEndpoint: the I/O shell that drives a sans-I/O `Endpoint` over real UDP sockets.
//
// It owns the Endpoint, one non-blocking UDP socket per local address (socket i is PathSpec's
// `local_socket` i) and an epoll fd. `Poll` is a run-to-completion step for the application's
// thread: it receives batches with recvmmsg, feeds them to the core, fires the core's timer,
// drains PollTransmit into per-socket sendmmsg batches, and, when nothing is happening, waits.
// Waiting is adaptive: it spins (non-blocking polls) while something happened within `spin_us`
// or datagrams wait to be sent, then blocks in epoll_pwait2 (microsecond timeout) until a socket
// is readable or the next core deadline, so a waiting endpoint does not burn a core.
//
// Optional fault injection (`--fault`) applies a FaultInjector to this endpoint's packet I/O of
// each path, both directions: the fault path of a datagram is the local socket index it leaves
// from or arrives on (for a socket-per-path client that is the wire path id). Delayed packets
// wait in a small time-ordered hold queue inside the shell; corruption flips one bit after the
// CRC was computed, so the receiver's checksum must catch it.
//
// A datagram the core produced is never dropped silently: EAGAIN/ENOBUFS keeps it queued for a
// later retry; any other send error drops it and counts it in `send_errors`.
//
// Clock: CLOCK_MONOTONIC in microseconds since the UdpEndpoint was created (plus one, so that
// "now" is never zero). Thread-safety: none; one thread drives a UdpEndpoint and its Endpoint.
#pragma once

#include <cstdint>
#include <memory>
#include <vector>

#include "common/pcap_writer.h"
#include "common/status.h"
#include "opensrd/transport.h"
#include "transport/fault.h"

namespace opensrd {

struct UdpEndpointOptions {
  EndpointConfig endpoint;
  std::vector<NetAddr> local;  // socket i binds local[i]; port 0 = ephemeral
  // Requested SO_RCVBUF / SO_SNDBUF (SO_*BUFFORCE is tried first, which works as root).
  int socket_buffer_bytes = 8 << 20;
  // Keep spinning this long after the last datagram or timer before blocking in epoll, also
  // while the core has work in flight: on a machine with fewer cores than busy threads a
  // spinner holds its core for a whole scheduler slice and the thread it waits for (the peer,
  // the disk's completions, the application) gets none. Spinning without limit while busy put
  // ~1% of 4 KiB reads at queue depth 32 through adapter -> bridge at ~10 ms (p99 9.9-10.2 ms);
  // 60 us leaves small-message latency and bandwidth as they were (docs/PERF.md).
  Micros spin_us = 60;
  // Datagrams whose wire path id is >= this are dropped on arrival (a server accepting at most N
  // paths per client). 0 = no limit.
  uint32_t max_path_id = 0;
  // UDP GSO/GRO: consecutive datagrams to one address leave as one send, and the kernel may
  // hand us coalesced batches, which the shell splits. Off or unsupported: one per buffer.
  bool gso = true;
  // GSO corking, for bulk senders: a socket's queue of full-size datagrams may wait up to this
  // long for more, so that it leaves in fewer, larger UDP_SEGMENT sends (like TCP_CORK). Acks,
  // control packets and short datagrams (a message's last packet) are never held; a queue that
  // would fill one send leaves at once. 0 = off: everything the core produced leaves in the
  // same Poll step. Costs up to this much added latency per packet. Experimental: 40 us took
  // loopback bw at 1400 B packets from ~13 to ~20 Gbit/s on an idle machine, but with another
  // process on the cores it fell into retransmission timeouts (~1 Gbit/s); docs/PERF.md.
  Micros gso_cork_us = 0;
  bool inject_faults = false;
  FaultSpec fault;
  uint64_t fault_seed = 1;
  // Packet capture (--pcap): every datagram that crosses a socket, with the socket's bound
  // address as the local end. Sends are recorded when the kernel took them, after the fault
  // injector (dropped ones are missing, duplicates appear twice, corrupted ones corrupted);
  // receives as they come off the socket, before the injector (one record per datagram of a
  // GRO batch). Not owned; must outlive the UdpEndpoint. Null: no capture (one branch).
  PcapWriter::Source* pcap = nullptr;
};

// What the shell itself did; the protocol's counters are in Endpoint::stats().
struct UdpStats {
  uint64_t datagrams_received = 0;
  uint64_t datagrams_sent = 0;
  uint64_t recv_calls = 0;      // recvmmsg calls that returned datagrams
  uint64_t send_calls = 0;      // sendmmsg calls
  uint64_t send_retries = 0;    // EAGAIN/ENOBUFS: kept and retried
  uint64_t send_errors = 0;     // other send failures: the datagram was dropped (counted here)
  uint64_t recv_truncated = 0;  // larger than any datagram we accept: dropped
  uint64_t path_filtered = 0;   // wire path id >= max_path_id: dropped
  uint64_t waits = 0;           // times Poll blocked in epoll_pwait2
  uint64_t gso_batches = 0;     // sends that carried several datagrams (UDP_SEGMENT)
  uint64_t gro_batches = 0;     // receives that carried several datagrams (UDP_GRO)
  // Fault injector, both directions.
  uint64_t fault_dropped = 0;
  uint64_t fault_duplicated = 0;
  uint64_t fault_corrupted = 0;
  uint64_t fault_delayed = 0;
  // The send side alone, and of it the DATA packets (all, and those flagged as retransmissions),
  // so that a capture taken after the injector can be checked exactly against the core's
  // counters (tests/wireshark_capture_test.sh).
  uint64_t fault_out_dropped = 0;
  uint64_t fault_out_duplicated = 0;
  uint64_t fault_out_data_dropped = 0;
  uint64_t fault_out_data_duplicated = 0;
  uint64_t fault_out_retx_dropped = 0;
  uint64_t fault_out_retx_duplicated = 0;
};

class UdpEndpoint {
 public:
  // Creates the sockets (bound), the epoll fd and the Endpoint.
  static Result<std::unique_ptr<UdpEndpoint>> Create(const UdpEndpointOptions& options);
  ~UdpEndpoint();
  UdpEndpoint(const UdpEndpoint&) = delete;
  UdpEndpoint& operator=(const UdpEndpoint&) = delete;

  Endpoint& endpoint();
  const Endpoint& endpoint() const;
  // Microseconds since creation (never 0), and the same clock in nanoseconds: the core's clock,
  // what Endpoint calls (PostSend, AddPeer) take.
  Micros Now() const;
  Nanos NowNs() const;
  size_t num_sockets() const;
  // The address socket i is bound to (with the ephemeral port filled in).
  NetAddr local_address(size_t i) const;
  const UdpStats& stats() const;
  bool gso_enabled() const;  // the kernel took UDP_SEGMENT and UDP_GRO on every socket

  // One driving step: receive, run timers, transmit. If that did no work and nothing happened
  // for `spin_us`, blocks up to `max_wait_us` or until the core's next
  // deadline, whichever is first; pass 0 never to block. Returns the number of datagrams moved
  // (in + out), or an error when a system call fails unrecoverably.
  Result<size_t> Poll(Micros max_wait_us);

  // Sharing the thread with other event sources (an io_uring's eventfd, a queue's eventfd):
  // Poll's blocking wait also ends when `fd` is readable. The caller drains it after Poll
  // returns (it is level-triggered, so an undrained fd makes Poll return at once).
  Status AddWakeFd(int fd);
  // An fd that is readable when a socket or a wake fd is (the shell's epoll fd), for callers
  // that block in their own poll loop instead of in Poll.
  int poll_fd() const;

 private:
  class Impl;
  explicit UdpEndpoint(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace opensrd
