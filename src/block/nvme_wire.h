// How an NVMe-style region reaches a host: the adapter sends, over a connected unix socket, one
// 16-byte message ("ONVQ", version, region size) carrying three fds (SCM_RIGHTS): the region's
// memfd, the kick eventfd and the interrupt eventfd; or, when it refuses, a message with no fds
// whose text says why. Shared by the controller and the host library; not thread-safe.
#pragma once

#include <cstdint>
#include <string>

#include "common/status.h"
#include "opensrd/nvme_queue.h"

namespace opensrd::nvme {

struct Handoff {
  int memfd = -1;
  int kick = -1;
  int irq = -1;
  uint64_t region_size = 0;
};

Status SendHandoff(int sock, const Handoff& h);
Status SendRefusal(int sock, const std::string& why);
Result<Handoff> ReceiveHandoff(int sock);

inline Doorbells* DoorbellsOf(uint8_t* base, uint16_t q) {
  return reinterpret_cast<Doorbells*>(base + kDoorbellBase + kDoorbellStride * q);
}

}  // namespace opensrd::nvme
