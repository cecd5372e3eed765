// RbdDevice: a PolledDevice on a Ceph RBD image, through librbd's asynchronous C API.
//
// The bridge's second backend. Requests become librbd aio calls (no thread per request): READ
// rbd_aio_read2, WRITE rbd_aio_write2 (FUA passed on as LIBRADOS_OP_FLAG_FADVISE_FUA), FLUSH
// rbd_aio_flush, DISCARD rbd_aio_discard, WRITE_ZEROES rbd_aio_write_zeroes. librbd completes
// them on its own threads; the completions are queued and the bridge runs them on its loop
// (event_fd/Reap), as it does for io_uring.
//
// Durability: the client cache is turned off (rbd_cache = false), so a write completes only
// once the OSDs have committed it; an acknowledged write survives the bridge's crash exactly as
// RADOS promises. A write inside one RADOS object is applied atomically by the OSD, so an
// aligned write no larger than the atomic write unit (min(16 KiB, object size)) is never torn.
//
// Failover between bridges: several bridges may open the same image; librbd's exclusive lock
// decides which one writes. OnAttach (an adapter attached here) makes this bridge the owner:
// if another client holds the lock, it is broken, which blocklists that client in the cluster
// (fencing: a bridge the adapter gave up on can no longer write, even if it was only slow),
// then the lock is acquired in librbd's manual mode, so it is not handed back to another
// bridge on request. Without this a killed owner's lock stays until its watch expires
// (osd_client_watch_timeout, 30 s by default) and every write waits for it. A bridge that was
// fenced reconnects to the cluster when an adapter attaches to it again.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "block/polled_device.h"

namespace opensrd::block {

struct RbdDeviceOptions {
  std::string pool;
  std::string image;
  std::string conf;          // ceph.conf path; empty: librbd's search ($CEPH_CONF, /etc/ceph)
  std::string client_id;     // cephx user without "client." (empty: admin)
  uint64_t create_size = 0;  // a missing image is created with this size (0: missing is an error)
  bool read_only = false;
};

class RbdDevice : public PolledDevice {
 public:
  static Result<std::unique_ptr<RbdDevice>> Open(const RbdDeviceOptions& options);
  ~RbdDevice() override;

  VolumeInfo Info() const override;
  void Submit(const IoRequest& request, IoCallback done) override;
  int event_fd() const override;
  size_t Reap() override;
  size_t in_flight() const override;
  Status Resize(uint64_t new_size) override;
  std::string Describe() const override;
  Status OnAttach(const AttachOrder& attach) override;
  bool fenced() const override;
  uint64_t incarnation() const override;

 private:
  class Impl;
  explicit RbdDevice(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace opensrd::block
