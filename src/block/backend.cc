#include "block/backend.h"

#include "block/file_device.h"
#include "block/rbd_device.h"

namespace opensrd::block {

Result<std::unique_ptr<PolledDevice>> OpenBackend(const VolumeSpec& v, bool direct) {
  if (v.is_rbd()) {
    Result<std::unique_ptr<RbdDevice>> dev = RbdDevice::Open({.pool = v.rbd_pool,
                                                              .image = v.rbd_image,
                                                              .conf = v.rbd_conf,
                                                              .client_id = v.rbd_id,
                                                              .create_size = v.size,
                                                              .read_only = v.read_only});
    if (!dev.ok()) return dev.status();
    return std::unique_ptr<PolledDevice>(std::move(dev.value()));
  }
  Result<std::unique_ptr<FileDevice>> dev = FileDevice::Open({.path = v.path,
                                                              .create_size = v.size,
                                                              .direct = direct,
                                                              .volatile_cache = v.crash_test,
                                                              .read_only = v.read_only});
  if (!dev.ok()) return dev.status();
  return std::unique_ptr<PolledDevice>(std::move(dev.value()));
}

}  // namespace opensrd::block
