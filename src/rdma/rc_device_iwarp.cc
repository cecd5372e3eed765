// Placeholder until the Iwarp backend lands (this session): Open fails with a clear error.
#include "rdma/rc_backend.h"

namespace opensrd::rdma {

Result<std::unique_ptr<RcBackend>> OpenIwarpBackend(const RcDeviceConfig&, MemoryRegistry&,
                                                    RcBackend::Sink&) {
  return Status(Code::kInvalidArgument, "rdma: the iwarp RcDevice is not built yet");
}

}  // namespace opensrd::rdma
