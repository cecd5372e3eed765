// Opens the bridge backend a volume spec names: a file or block device (FileDevice, io_uring)
// or a Ceph RBD image ("rbd:POOL/IMAGE", RbdDevice, librbd).
#pragma once

#include <memory>

#include "block/bridge.h"
#include "block/polled_device.h"

namespace opensrd::block {

// `direct`: try O_DIRECT for files (the bridge's --no-direct turns it off).
Result<std::unique_ptr<PolledDevice>> OpenBackend(const VolumeSpec& spec, bool direct);

}  // namespace opensrd::block
