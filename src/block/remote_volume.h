// RemoteVolume: the storage adapter's view of a volume on a storage bridge, as a BlockDevice
// (seed US10162793B1: the host's requests, translated to the network protocol toward remote
// storage). Fronts (the NBD server, the NVMe-style queues) drive it like a local disk.
//
// A private thread runs the SRD transport (UdpEndpoint) toward one or more bridges. Submit
// queues a request and wakes that thread through an eventfd; the thread sends it as one SRD
// message (a WRITE's data straight from the caller's buffer: no copy), and completes it when the
// bridge's reply has arrived and the transport is done with the caller's buffer. A READ's data
// is copied from the receive buffer into the caller's.
//
// Faults: when the bridge restarts, times out or forgets the attachment, the volume is
// *impaired*: it attaches again (to the next bridge in the list, if several are given) and
// replays every request in flight with its original request id and write sequence number, so
// the bridge absorbs a write it already applied. Clients see latency, not errors, if a bridge
// is back within `reconnect_timeout_us`; after that every request in flight fails with an I/O
// error and the volume is *io-disabled* (as EBS reports it) until an attach succeeds again. A
// bridge that answers "not attached" (it restarted, or another bridge fenced it) is attached
// again and the request replayed; one that refuses a re-attach for a passing cause is left for
// the next bridge, the volume still impaired; a wrong token or missing volume disables it.
//
// Thread-safety: Submit, Info, state and stats from any thread; `done` callbacks run on the
// volume's thread and must not block.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "common/pcap_writer.h"
#include "opensrd/block.h"
#include "opensrd/transport.h"

namespace opensrd {
class UdpEndpoint;
}

namespace opensrd::block {

struct RemoteVolumeOptions {
  std::vector<NetAddr> bridges;  // failover order
  std::string volume;
  std::string token;
  NetAddr local;  // address to send from (port 0: ephemeral); default 0.0.0.0
  uint32_t paths = 4;
  EndpointConfig endpoint;
  Micros attach_timeout_us = 5'000'000;      // Open() gives up after this
  Micros reconnect_timeout_us = 30'000'000;  // impaired longer than this: io-disabled
  // A request (or an attach) unanswered this long although the transport delivered it: the
  // bridge may have died after taking it, unseen while nothing else is in flight. The volume
  // attaches again (which finds a restarted bridge) and replays. 0: twice the peer timeout.
  Micros request_timeout_us = 0;
  uint32_t max_inflight = 64;          // requests outstanding at the bridge
  uint32_t max_transfer = 1u << 20;    // receive buffers for READ replies
  PcapWriter::Source* pcap = nullptr;  // --pcap (UdpEndpointOptions::pcap); not owned
  // Called on the volume's thread after every turn of its loop (at least every 20 ms), with no
  // lock held: --metrics reads the transport's counters there. Must not block.
  std::function<void(const UdpEndpoint&)> on_poll;
};

enum class VolumeState : uint8_t { kOk, kImpaired, kIoDisabled };
const char* VolumeStateName(VolumeState s);

struct RemoteVolumeStats {
  uint64_t requests = 0;
  uint64_t completed_ok = 0;
  uint64_t errors = 0;
  uint64_t attaches = 0;   // successful attaches (the first and every re-attach)
  uint64_t replayed = 0;   // requests sent again after a re-attach
  uint64_t failovers = 0;  // moves to another bridge
  uint64_t resizes_seen = 0;
  // Of the requests completed kOk: READs and WRITEs, and the bytes they moved.
  uint64_t reads = 0, writes = 0;
  uint64_t bytes_read = 0, bytes_written = 0;
};

class RemoteVolume : public BlockDevice {
 public:
  // Attaches (blocking up to attach_timeout_us); a refused attach (wrong token, unknown volume)
  // fails with the bridge's reason.
  static Result<std::unique_ptr<RemoteVolume>> Open(const RemoteVolumeOptions& options);
  ~RemoteVolume() override;  // fails requests still queued with kCancelled

  VolumeInfo Info() const override;
  void Submit(const IoRequest& request, IoCallback done) override;
  VolumeState state() const;
  RemoteVolumeStats stats() const;
  // Called on the volume's thread when the bridge announces a new geometry (live resize). Once
  // this returns, the previous listener is neither running nor called again (so what it points
  // to may be destroyed); the listener must not call back into the volume.
  void SetInfoListener(std::function<void(const VolumeInfo&)> listener);

 private:
  class Impl;
  explicit RemoteVolume(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

// Asks a bridge to grow a volume (opensrd volume resize); returns the new size.
Result<uint64_t> ResizeRemoteVolume(const NetAddr& bridge, const std::string& volume,
                                    const std::string& token, uint64_t new_size,
                                    const EndpointConfig& endpoint, Micros timeout_us);

}  // namespace opensrd::block
