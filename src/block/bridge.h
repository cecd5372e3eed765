// The storage bridge: serves named volumes to storage adapters over SRD (seed US10075524B1:
// the network protocol in, the storage device's protocol out).
//
// One thread runs everything: the UDP shell (`UdpEndpoint`), and each volume's io_uring, whose
// eventfds wake the shell's wait (UdpEndpoint::AddWakeFd). A request message lands in a posted
// receive buffer laid out so that a WRITE's data is 4 KiB-aligned there, and goes to the device
// from that buffer (no copy, O_DIRECT-ready); a READ is read into an aligned buffer that is
// sent behind a 32-byte reply header (a two-element SGL). A receive buffer returns to the
// transport when the request it holds completes, so the posted buffers bound what is in flight
// and the transport's fair share keeps one adapter from taking them all.
//
// Access: an ATTACH must present the volume's token (compared in constant time); it returns a
// random handle bound to the attaching peer, so no other peer can use it. Peer events drop a
// peer's attachments when it restarts or goes away. A WRITE replayed by an adapter after a
// reconnection (same session and sequence number) is acknowledged without being applied again.
//
// Thread-safety: Create and Run on one thread; Stop from any thread (or a signal handler).
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "block/polled_device.h"
#include "common/pcap_writer.h"
#include "common/status.h"
#include "opensrd/transport.h"

namespace opensrd {
class UdpEndpoint;
}

namespace opensrd::block {

// NAME=PATH[,size=BYTES][,token=SECRET|,token-file=PATH][,ro][,crash-test]
// NAME=rbd:POOL/IMAGE[,conf=PATH][,id=CLIENT][,size=BYTES][,token...][,ro]
struct VolumeSpec {
  std::string name;
  std::string path;   // a file or block device; for RBD "rbd:POOL/IMAGE"
  uint64_t size = 0;  // create a missing file (or image) with this size
  std::string token;  // empty: any adapter may attach
  bool read_only = false;
  bool crash_test = false;  // FileDevice's volatile write cache (power-cut tests)
  // RBD volumes (path "rbd:..."): the image, and how to reach its cluster.
  std::string rbd_pool, rbd_image;
  std::string rbd_conf;  // ceph.conf (empty: $CEPH_CONF, then /etc/ceph/ceph.conf)
  std::string rbd_id;    // cephx client id (empty: admin)
  bool is_rbd() const { return !rbd_image.empty(); }
};
// Parses the CLI's volume spec; sizes take K/M/G/T (powers of 1024), KiB/MiB/GiB/TiB or none.
Result<VolumeSpec> ParseVolumeSpec(const std::string& spec);
Result<uint64_t> ParseByteSize(const std::string& s);
// A volume token from a file: its first line (1-255 bytes).
Result<std::string> ReadTokenFile(const std::string& path);

struct BridgeOptions {
  std::vector<NetAddr> bind;
  std::vector<VolumeSpec> volumes;
  EndpointConfig endpoint;
  uint32_t paths = 64;          // paths accepted per adapter
  uint32_t recv_buffers = 128;  // requests in flight across all adapters
  uint32_t max_transfer = 1u << 20;
  bool direct = true;  // O_DIRECT where the file system allows it
  bool quiet = false;
  PcapWriter::Source* pcap = nullptr;  // --pcap (UdpEndpointOptions::pcap); not owned
  // Called on Run's thread after every turn of its loop (at least every 20 ms): --metrics reads
  // the transport's counters and Bridge::stats there. Must not block.
  std::function<void(const UdpEndpoint&)> on_poll;
  // Opens a volume's backend; empty: OpenBackend (a file or an RBD image). Tests put devices
  // here that no file or cluster gives on demand (a shared volume one bridge fences another
  // off).
  std::function<Result<std::unique_ptr<PolledDevice>>(const VolumeSpec&)> open_device;
};

struct BridgeStats {
  uint64_t attaches = 0;
  uint64_t attach_denied = 0;  // wrong token or unknown volume
  uint64_t reads = 0, writes = 0, flushes = 0, discards = 0, write_zeroes = 0;
  uint64_t bytes_read = 0, bytes_written = 0;
  uint64_t errors = 0;            // requests answered with an error status
  uint64_t fenced_replies = 0;    // of those: failed while fenced, answered "attach again"
  uint64_t malformed = 0;         // messages that did not parse (dropped or answered)
  uint64_t replays_absorbed = 0;  // WRITEs seen before (same session and sequence)
  uint64_t resizes = 0;
  uint64_t peers_dropped = 0;  // attachments dropped by peer events
};

class Bridge {
 public:
  static Result<std::unique_ptr<Bridge>> Create(const BridgeOptions& options);
  ~Bridge();
  Bridge(const Bridge&) = delete;
  Bridge& operator=(const Bridge&) = delete;

  // Serves until Stop(); returns an error if a system call fails unrecoverably.
  Status Run();
  void Stop();
  BridgeStats stats() const;
  NetAddr local_address(size_t i) const;

 private:
  class Impl;
  explicit Bridge(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace opensrd::block
