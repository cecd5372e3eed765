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

// Which ATTACH this is: the adapter's session, and the ATTACH's request_id, which grows with
// each attach of a session (docs/WIRE.md).
struct AttachOrder {
  uint64_t session = 0;
  uint64_t request_id = 0;
};

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
  // `attach` orders the attaches of one adapter session: an ATTACH older than one the session
  // already made elsewhere (delivered late, by a bridge that was frozen) must not take the
  // volume from the bridge the adapter uses now.
  virtual Status OnAttach(const AttachOrder& attach) {
    (void)attach;
    return Status::Ok();
  }
  // True while another bridge has fenced this one off the volume: its requests fail because
  // this bridge no longer holds the volume, which says nothing about the request itself. The
  // bridge reads it in each failed request's callback and answers "attach again" (kBadHandle);
  // the next OnAttach takes the volume back. So a device clears it only after it has reaped
  // every request that failed while it was set (OnAttach reaps them first).
  virtual bool fenced() const { return false; }
  // Changes when the device reconnected after it was fenced. Attachments made before belong to
  // the fenced-off era: requests still arriving under them (sent before a freeze, delivered
  // after) must not be applied now that this bridge may hold the volume again.
  virtual uint64_t incarnation() const { return 0; }
};

}  // namespace opensrd::block
