// FileDevice: a BlockDevice on a regular file or a block device, through io_uring (liburing).
//
// The storage bridge's file backend. Requests become io_uring operations: READ/WRITE as
// read/write (RWF_DSYNC for FUA), FLUSH as fdatasync, DISCARD as a punched hole and
// WRITE_ZEROES as a zeroed range (fallocate), with a follow-up fdatasync for FUA. Many requests
// are in flight at once; the ring's depth bounds them and the rest wait in a queue.
//
// O_DIRECT is used where the file system allows it (then the volume's block size is 4096 and
// buffers are bounced when a caller's memory is not aligned); where it does not (tmpfs), the
// device falls back to buffered I/O and says so in `direct()`. Either way a completed WRITE is
// durable against a crash of this process: buffered data sits in the kernel's page cache,
// which outlives the process. Only FUA and FLUSH promise stable storage (a power cut).
//
// Crash-test mode (`volatile_cache`) models a disk's volatile write cache where this device
// issues its writes and syncs: a non-FUA WRITE completes once its data is held in this
// process's memory and reaches the file only at the next FLUSH (or as a FUA write). Killing
// the process is then a power cut: exactly the writes made durable by FUA or an acknowledged
// FLUSH are in the file. Reads see the cached data (a disk cache is coherent).
//
// Threading: Submit may be called from any thread. Completions are delivered by Reap(), which
// the owner calls from its event loop when event_fd() is readable, so a single-threaded
// server runs the transport and the device on one thread.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "block/polled_device.h"
#include "opensrd/block.h"

namespace opensrd::block {

struct FileDeviceOptions {
  std::string path;
  uint64_t create_size = 0;  // a missing file is created with this size (0: missing is an error)
  bool direct = true;        // try O_DIRECT first
  unsigned queue_depth = 256;
  bool volatile_cache = false;  // crash-test mode (see above)
  bool read_only = false;
};

class FileDevice : public PolledDevice {
 public:
  static Result<std::unique_ptr<FileDevice>> Open(const FileDeviceOptions& options);
  ~FileDevice() override;

  VolumeInfo Info() const override;
  void Submit(const IoRequest& request, IoCallback done) override;
  Result<std::vector<Extent>> BlockStatus(uint64_t offset, uint64_t length) override;

  // Readable (an eventfd) when completions are waiting; Reap() runs them on the calling thread
  // and returns how many completed.
  int event_fd() const override;
  size_t Reap() override;
  // Requests submitted and not yet completed.
  size_t in_flight() const override;
  // Grows the volume (a regular file only); shrinking is refused.
  Status Resize(uint64_t new_size) override;
  std::string Describe() const override;
  bool direct() const;
  const std::string& path() const;

 private:
  class Impl;
  explicit FileDevice(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace opensrd::block
