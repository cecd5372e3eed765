// NvmeController: the adapter's side of the NVMe-style host interface (include/opensrd/
// nvme_queue.h). It creates the shared region, hands it to one host at a time over a unix
// socket, and runs a thread that consumes the submission queues, turns each command into a
// BlockDevice request (the volume: a RemoteVolume in the adapter, any device in tests) and
// posts the completion with the NVMe status the outcome deserves.
//
// The thread polls the doorbells while there is work or there was some within `spin_us`; then
// it says so in the queue's `sleeping` flag and blocks on the kick eventfd, which a host rings
// only when that flag is set. Completions may come from any thread (the device's): posting is
// serialised per queue. A queue never has more commands in flight than its CQ can take, so the
// CQ cannot overflow whatever the host does. Every field a host could have corrupted (offsets,
// lengths, counts) is checked against the region before use: a hostile host can fail its own
// commands, never make the adapter touch memory outside the region.
//
// Thread-safety: Create/Stop/destructor from one thread; the rest is internal.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "common/status.h"
#include "opensrd/block.h"
#include "opensrd/nvme_queue.h"

namespace opensrd::nvme {

struct ControllerOptions {
  std::string socket_path;  // unix socket the host connects to (replaced if it exists)
  Layout layout;
  uint64_t spin_us = 50;  // keep polling this long after the last command
};

struct ControllerStats {
  uint64_t commands = 0;
  uint64_t errors = 0;  // completions with a non-zero status
  uint64_t hosts = 0;   // hosts that attached
  uint64_t refused = 0;
};

class NvmeController {
 public:
  static Result<std::unique_ptr<NvmeController>> Create(const ControllerOptions& options,
                                                        block::BlockDevice* device);
  ~NvmeController();
  // Publishes a new geometry to the host (live resize).
  void UpdateGeometry(const block::VolumeInfo& info);
  ControllerStats stats() const;

 private:
  class Impl;
  explicit NvmeController(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace opensrd::nvme
