// PolledDevice: a storage bridge backend. A BlockDevice whose completions run on its owner's
// event loop: the bridge waits on event_fd() (with the transport's socket, one thread) and calls
// Reap(), so completion callbacks never race with the transport.
//
// Implementations: FileDevice (io_uring on a file or block device) and RbdDevice (librbd on a
// Ceph image). A new backend implements this and is chosen by OpenBackend from a VolumeSpec.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

#include "opensrd/block.h"

namespace opensrd::block {

class PolledDevice : public BlockDevice {
 public:
  // Readable when completions are waiting.
  virtual int event_fd() const = 0;
  // Runs waiting completions on the calling thread; returns how many ran.
  virtual size_t Reap() = 0;
  // Requests submitted and not yet reaped.
  virtual size_t in_flight() const = 0;
  // Grows the volume; shrinking is refused.
  virtual Status Resize(uint64_t new_size) = 0;
  // One line for the bridge's startup log: what backs the volume and how.
  virtual std::string Describe() const = 0;
  // An adapter attached. A backend that other bridges can serve too (a shared image) makes
  // this bridge the volume's only writer here, fencing a previous one; files need nothing.
  virtual Status OnAttach() { return Status::Ok(); }
};

}  // namespace opensrd::block
