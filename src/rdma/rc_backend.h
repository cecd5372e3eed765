// RcBackend: what an RcDevice (include/opensrd/rdma.h) asks of one protocol: the connections
// and queue pairs of RoCEv2 or iWARP on the sockets the backend opens. The device owns the
// verbs objects (the MemoryRegistry, the CQs, which CQs a QP completes on) and checks the
// arguments it can check alone; the backend owns the queue pairs, the wire and the connection
// manager, and reports what happened through the Sink: completions (their `qp` set; the device
// routes receives to the QP's receive CQ and everything else to its send CQ) and connection
// events. Every call runs on the device's thread.
#pragma once
#include <cstdint>
#include <deque>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "common/status.h"
#include "opensrd/rdma.h"
#include "rdma/memory_registry.h"

namespace opensrd::rdma {

class RcBackend {
 public:
  struct Sink {
    std::vector<WorkCompletion> completions;
    std::deque<CmEvent> events;
  };
  virtual ~RcBackend() = default;

  virtual Status Listen() = 0;
  virtual uint16_t local_port() const = 0;
  // A new unconnected QP of protection domain `pd` (the device already checked it exists);
  // returns its number (RoCEv2: the QPN on the wire).
  virtual Result<QpNum> CreateQp(PdHandle pd) = 0;
  // Disconnects if connected and reports every outstanding work request and posted receive as
  // kFlushed through the sink before returning; the QP number is then unknown.
  virtual void DestroyQp(QpNum qp) = 0;
  virtual Status Connect(QpNum qp, const NetAddr& peer, std::span<const uint8_t> pdata) = 0;
  virtual Status Accept(uint32_t request, QpNum qp, std::span<const uint8_t> pdata) = 0;
  virtual Status Reject(uint32_t request) = 0;
  virtual Status Disconnect(QpNum qp) = 0;
  // The device checked that `qp` exists. A bad local SGE completes kLocalProtectionError; an
  // opcode the protocol lacks (iWARP atomics) is kInvalidArgument.
  virtual Status PostSend(QpNum qp, const SendWr& wr) = 0;
  virtual Status PostRecv(QpNum qp, const RecvWr& wr) = 0;
  virtual Status Poll(int timeout_ms) = 0;
  virtual RcDeviceStats stats() const = 0;
  virtual std::string CountersJson() const = 0;
  // See RcDevice::CloseCapture.
  virtual std::string CloseCapture() { return "null"; }
};

// Each opens its sockets (RoCEv2: the UDP port and, with CAP_NET_RAW, a raw socket; iWARP:
// nothing until Listen or Connect). `registry` and `sink` belong to the device and outlive the
// backend.
Result<std::unique_ptr<RcBackend>> OpenRoceBackend(const RcDeviceConfig& config,
                                                   MemoryRegistry& registry, RcBackend::Sink& sink);
Result<std::unique_ptr<RcBackend>> OpenIwarpBackend(const RcDeviceConfig& config,
                                                    MemoryRegistry& registry,
                                                    RcBackend::Sink& sink);

}  // namespace opensrd::rdma
